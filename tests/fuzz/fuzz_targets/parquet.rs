//! The Parquet reading paths on arbitrary file contents: `file_info`, `read_polygons`
//! and the streaming `match_parquet` (the CLI's `info` and `match`). Each must return a
//! result or an error, never panic; a failed match must leave no output file.
//! Seeds: the Parquet files of `sample_data/` (see run.sh).
#![no_main]

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use polymatch::io::parquet::{file_info, read_polygons};
use polymatch::matcher::{Matcher, PolygonSide};
use polymatch::pipeline::{match_parquet, ParquetJob};
use polymatch::io::{Keep, PointSpec};
use polymatch::{MatchOptions, PolygonColumns, Rankings, SpatialIndex};

fn paths() -> &'static (PathBuf, PathBuf) {
    static PATHS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    PATHS.get_or_init(|| {
        let dir = std::env::var_os("POLYMATCH_FUZZ_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let pid = std::process::id();
        (
            dir.join(format!("polymatch-fuzz-{pid}.parquet")),
            dir.join(format!("polymatch-fuzz-{pid}-out.parquet")),
        )
    })
}

fn small_index() -> &'static Rankings {
    static INDEX: OnceLock<Rankings> = OnceLock::new();
    INDEX.get_or_init(|| {
        let x = vec![0.0, 1.0, 1.0, 0.0, 5.0, 7.0, 6.0];
        let y = vec![0.0, 0.0, 1.0, 1.0, 5.0, 5.0, 7.0];
        let offsets = polymatch::polygons::checked_offsets(vec![0, 4, 7], "ring")
            .expect("valid offsets");
        let p = PolygonColumns::from_rings(x.into(), y.into(), offsets, None).expect("valid");
        Rankings::new(std::sync::Arc::new(SpatialIndex::new(&p)))
    })
}

fuzz_target!(|data: &[u8]| {
    let (input, output) = paths();
    std::fs::write(input, data).expect("write the fuzz input");
    let _ = file_info(input);
    if let Ok(file) = read_polygons(input, None, Some(&[])) {
        polymatch_fuzz::check_matches(&file.polygons, &data[..data.len().min(64)]);
    }
    let cancel = AtomicBool::new(false);
    let job = ParquetJob {
        matcher: Matcher {
            polygons: PolygonSide {
                index: small_index(),
                attributes: None,
                crs: None,
            },
            options: MatchOptions {
                max_dist: 3.0,
                ..MatchOptions::default()
            },
            keep: Keep::default(),
            allow_crs_mismatch: false,
        },
        polygons_path: None,
        points_path: input,
        out_path: output,
        spec: PointSpec::default(),
        batch_rows: 64,
        cancel: &cancel,
        job_id: None,
    };
    match match_parquet(&job, |_, _| {}) {
        Ok(_) => std::fs::remove_file(output).expect("the output was written"),
        Err(_) => assert!(!output.exists(), "a failed match left an output file"),
    }
});
