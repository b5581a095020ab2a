//! Containing panics of third-party decoders.
//!
//! The parquet crate is fuzzed upstream, but a corrupt file can still make it panic (found
//! here: a division by zero in its plain byte-array decoder on a mutated file). polymatch
//! promises an error naming the file, never a panic, so every call into the Parquet
//! reader runs in [`decoding`], which turns a panic into
//! [`PolymatchError::Corrupt`](crate::PolymatchError::Corrupt). The reader is dropped
//! afterwards; nothing it half-built is used.
//!
//! The process-wide panic hook is wrapped once: panics inside [`decoding`] on this thread
//! print nothing (they become the error); others go to the previous hook, or are printed
//! as one line when the CLI asked for that ([`set_one_line`]).

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use crate::error::{PolymatchError, Result};

thread_local! {
    static DECODING: Cell<u32> = const { Cell::new(0) };
}
static ONE_LINE: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Wrap the process's panic hook (once).
pub fn install() {
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if DECODING.with(Cell::get) > 0 {
                return;
            }
            if ONE_LINE.load(Ordering::Relaxed) {
                eprintln!("polymatch: internal error: {info} (please report this)");
            } else {
                previous(info);
            }
        }));
    });
}

/// Print other panics as one line (the CLI: no backtrace at a user), or not.
pub fn set_one_line(on: bool) {
    install();
    ONE_LINE.store(on, Ordering::Relaxed);
}

/// Run `f`, a call into a decoder of untrusted bytes; a panic in it becomes
/// [`PolymatchError::Corrupt`] naming `what` failed.
///
/// # Errors
/// `f`'s own errors, or [`PolymatchError::Corrupt`] if it panicked.
pub fn decoding<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    install();
    DECODING.with(|d| d.set(d.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    DECODING.with(|d| d.set(d.get() - 1));
    result.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".into());
        Err(PolymatchError::Corrupt(format!(
            "the {what} failed ({message}): the file is corrupt"
        )))
    })
}
