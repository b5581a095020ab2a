//! `polymatch`: match points to polygons, Parquet in, Parquet out. See `polymatch --help`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by Ctrl-C; the running job stops at its next batch and leaves no output.
static CANCEL: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    // The process-wide handler belongs to the binary, never to the library. If it cannot
    // be installed, Ctrl-C still kills the process, and the temporary output is left
    // beside the target: nothing at the target path changes either way.
    let _ = ctrlc::set_handler(|| CANCEL.store(true, Ordering::Relaxed));
    ExitCode::from(polymatch::cli::run_from_args(std::env::args_os(), &CANCEL))
}
