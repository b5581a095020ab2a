//! rayon and `os.fork()`.
//!
//! A forked child inherits rayon's global pool as state, but not its threads: the first
//! parallel call in the child would wait for ever (tokenizers meets the same problem).
//! A `pthread_atfork` child handler marks the process as forked; from then on polymatch
//! runs its parallel work on a pool created in that process instead of the global one.
//! Dask's nanny processes, `multiprocessing` with "fork", and gunicorn workers are all
//! covered. `RAYON_NUM_THREADS` sizes both pools.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use polymatch::matching::with_threads;
use polymatch::PolymatchError;

static FORKED: AtomicBool = AtomicBool::new(false);
/// The pool of a forked process, with the pid that made it (a grandchild makes its own).
static CHILD_POOL: Mutex<Option<(u32, Arc<rayon::ThreadPool>)>> = Mutex::new(None);

extern "C" fn after_fork_in_child() {
    FORKED.store(true, Ordering::Relaxed);
}

/// Register the fork handler (once, at module import).
pub fn register_fork_handler() {
    // SAFETY: `pthread_atfork` is given a plain function that only stores to an atomic,
    // which is async-signal-safe, as a handler run in a freshly forked child must be.
    unsafe {
        libc::pthread_atfork(None, None, Some(after_fork_in_child));
    }
}

fn child_pool() -> Result<Arc<rayon::ThreadPool>, PolymatchError> {
    let pid = std::process::id();
    // A poisoned lock only means another thread panicked while holding it: the value is
    // still a valid (pid, pool) or None.
    let mut slot = CHILD_POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((p, pool)) = slot.as_ref() {
        if *p == pid {
            return Ok(pool.clone());
        }
    }
    let pool = Arc::new(rayon::ThreadPoolBuilder::new().build().map_err(|e| {
        PolymatchError::InvalidArgument(format!("cannot start worker threads: {e}"))
    })?);
    *slot = Some((pid, pool.clone()));
    Ok(pool)
}

/// Run `f` where its rayon work is safe: on a pool of `threads` threads if given, on this
/// process's own pool after a fork, else on rayon's global pool.
///
/// # Errors
/// If `threads` is 0 or a pool cannot start.
pub fn run<T: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> T + Send,
) -> Result<T, PolymatchError> {
    if threads.is_some() {
        return with_threads(threads, f);
    }
    if FORKED.load(Ordering::Relaxed) {
        return Ok(child_pool()?.install(f));
    }
    Ok(f())
}

/// [`run`] for a job of `size` points matched `chunk_size` at a time: a job of one chunk
/// runs on the calling thread whatever `threads` is (the kernels run one chunk serially,
/// so it uses one thread either way), without handing it to a pool and waiting.
///
/// # Errors
/// As [`run`].
pub fn run_sized<T: Send>(
    threads: Option<usize>,
    size: usize,
    chunk_size: usize,
    f: impl FnOnce() -> T + Send,
) -> Result<T, PolymatchError> {
    if size <= chunk_size && !FORKED.load(Ordering::Relaxed) {
        return Ok(f());
    }
    run(threads, f)
}
