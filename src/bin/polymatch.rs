//! `polymatch`: match points to polygons, Parquet in, Parquet out. See `polymatch --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(polymatch::cli::run_from_args(std::env::args_os()))
}
