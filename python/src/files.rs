//! (Geo)Parquet files and the command line, from Python: the same code paths as the CLI.

use std::path::PathBuf;
use std::sync::Arc;

use polymatch::io::parquet::{
    match_parquet as core_match_parquet, read_polygons as core_read_polygons, ParquetJob,
};
use polymatch::io::{Keep, PointSpec};
use polymatch::{How, MatchOptions, SpatialIndex};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::PyPolymatchError;
use crate::index::{run_detached, PyPolygonIndex};

/// Load a `PolygonIndex` from a (Geo)Parquet file, keeping the `keep` attribute columns
/// (for `match(..., keep_polygons=...)`).
#[pyfunction]
#[pyo3(signature = (path, geometry=None, keep=None))]
pub fn read_polygons(
    py: Python<'_>,
    path: PathBuf,
    geometry: Option<String>,
    keep: Option<Vec<String>>,
) -> PyResult<PyPolygonIndex> {
    let keep = keep.unwrap_or_default();
    py.detach(|| {
        crate::pool::run(None, || {
            let file = core_read_polygons(&path, geometry.as_deref(), &keep)?;
            Ok(PyPolygonIndex::from_parts(
                file.polygons,
                Some(file.attributes),
                file.crs,
            ))
        })?
    })
    .map_err(|e| PyPolymatchError(e).into())
}

/// Match a Parquet file of points against polygons (a `PolygonIndex` or a (Geo)Parquet
/// path), streaming, into the Parquet file `out` (written atomically). Returns a dict
/// with `points`, `matched`, `rows_written`.
#[pyfunction]
#[pyo3(signature = (polygons, points, out, max_dist=10.0, how="inner", all_candidates=false, *, keep=None, keep_polygons=None, x=None, y=None, point_geometry=None, polygon_geometry=None, threads=None, batch_rows=262_144))]
#[allow(clippy::too_many_arguments)]
pub fn match_parquet<'py>(
    py: Python<'py>,
    polygons: &Bound<'py, PyAny>,
    points: PathBuf,
    out: PathBuf,
    max_dist: f64,
    how: &str,
    all_candidates: bool,
    keep: Option<Vec<String>>,
    keep_polygons: Option<Vec<String>>,
    x: Option<String>,
    y: Option<String>,
    point_geometry: Option<String>,
    polygon_geometry: Option<String>,
    threads: Option<usize>,
    batch_rows: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let options = MatchOptions {
        max_dist,
        how: how.parse::<How>().map_err(PyPolymatchError)?,
        all_candidates,
        ..MatchOptions::default()
    };
    options.validate().map_err(PyPolymatchError)?;
    let keep = keep.unwrap_or_default();
    let keep_polygons = keep_polygons.unwrap_or_default();
    let (index, attributes, crs, polygons_path): (Arc<SpatialIndex>, _, _, Option<PathBuf>) =
        if let Ok(idx) = polygons.cast::<PyPolygonIndex>() {
            let idx = idx.get();
            (
                idx.core().clone(),
                idx.attributes().cloned(),
                idx.crs().cloned(),
                None,
            )
        } else {
            let path: PathBuf = polygons.extract()?;
            let (file, index) = py
                .detach(|| {
                    crate::pool::run(None, || {
                        let file =
                            core_read_polygons(&path, polygon_geometry.as_deref(), &keep_polygons)?;
                        let index = SpatialIndex::new(&file.polygons);
                        Ok((file, index))
                    })?
                })
                .map_err(PyPolymatchError)?;
            (Arc::new(index), Some(file.attributes), file.crs, Some(path))
        };
    let summary = run_detached(py, usize::MAX, |cancel| {
        crate::pool::run(threads, || {
            let job = ParquetJob {
                index: &index,
                polygon_attributes: attributes.as_ref(),
                polygon_crs: crs.as_ref(),
                polygons_path: polygons_path.as_deref(),
                points_path: &points,
                out_path: &out,
                spec: PointSpec {
                    x: x.as_deref(),
                    y: y.as_deref(),
                    geometry: point_geometry.as_deref(),
                },
                keep: Keep {
                    points: &keep,
                    polygons: &keep_polygons,
                },
                options,
                batch_rows,
                cancel,
            };
            core_match_parquet(&job, |_, _| {})
        })?
    })?;
    let d = PyDict::new(py);
    d.set_item("points", summary.points)?;
    d.set_item("matched", summary.matched)?;
    d.set_item("rows_written", summary.rows_written)?;
    Ok(d)
}

/// Run the `polymatch` command line with `args` (without the program name); returns the
/// exit code. This is what the `polymatch` script installed with the package calls.
#[pyfunction]
pub fn run_cli(py: Python<'_>, args: Vec<String>) -> u8 {
    let argv: Vec<std::ffi::OsString> = std::iter::once("polymatch".into())
        .chain(args.into_iter().map(Into::into))
        .collect();
    py.detach(|| {
        crate::pool::run(None, || polymatch::cli::run_from_args(argv))
            .unwrap_or(polymatch::cli::EXIT_INTERNAL)
    })
}
