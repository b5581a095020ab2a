//! (Geo)Parquet files and the command line, from Python: the same code paths as the CLI.

use std::path::PathBuf;
use std::sync::Arc;

use polymatch::io::parquet::read_polygons as core_read_polygons;
use polymatch::io::{Keep, PointSpec};
use polymatch::matcher::{Matcher, PolygonSide};
use polymatch::pipeline::{
    load_polygons, match_parquet as core_match_parquet, write_results as core_write_results,
    JobRecord, ParquetJob,
};
use polymatch::Rankings;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::crs::optional_crs;
use crate::error::PyPolymatchError;
use crate::index::{run_detached, PyPolygonIndex};
use crate::input::{match_options, parse_metric, threads as check_threads, warn, Columns};
use polymatch::sphere::resolve_metric;

/// Load a ``PolygonIndex`` from a (Geo)Parquet file.
///
/// Args:
///     path: the file.
///     geometry: the geometry column (default: the GeoParquet primary column, else the
///         rule of ``PolygonIndex.from_arrow``).
///     keep: the attribute columns to load for ``match(..., keep_polygons=...)``: a name
///         or a list; default ``None`` loads every column (as ``from_arrow`` keeps
///         every column), ``[]`` none (the least memory).
///     metric: ``"planar"`` or ``"sphere"``, as for ``PolygonIndex.from_arrow`` (which
///         see for the warning when a geographic file is read without one).
///
/// Returns:
///     A PolygonIndex with the file's CRS.
#[pyfunction]
#[pyo3(signature = (path, geometry=None, keep=None, *, metric=None))]
pub fn read_polygons(
    py: Python<'_>,
    path: PathBuf,
    geometry: Option<String>,
    keep: Option<Columns>,
    metric: Option<&str>,
) -> PyResult<PyPolygonIndex> {
    let given = parse_metric(metric)?;
    let keep = keep.map(|k| k.0);
    let (index, warning) = py
        .detach(|| {
            crate::pool::run(None, || {
                let file = core_read_polygons(&path, geometry.as_deref(), keep.as_deref())?;
                let (metric, warning) =
                    resolve_metric(given, file.crs.as_ref()).map_err(|e| e.in_file(&path))?;
                let polygons = file
                    .polygons
                    .with_metric(metric)
                    .map_err(|e| e.in_file(&path))?;
                Ok((
                    PyPolygonIndex::from_parts(polygons, Some(file.attributes), file.crs),
                    warning,
                ))
            })?
        })
        .map_err(PyPolymatchError)?;
    warn(py, warning)?;
    Ok(index)
}

/// Where `match_parquet`'s polygons come from: the index, attributes, CRS, outlines
/// (shape rules) and file (if any).
type PolygonsFrom = (
    Arc<Rankings>,
    Option<arrow::array::RecordBatch>,
    Option<polymatch::io::crs::Crs>,
    Option<Arc<polymatch::Outlines>>,
    Option<PathBuf>,
);

/// Match a Parquet file of points against polygons, streaming, into a Parquet file.
///
/// The same job as the ``polymatch match`` command line: points are read, matched and
/// written batch by batch, and ``out`` is written to a temporary file and renamed on
/// success (after an error nothing is left; an existing file is untouched).
///
/// Args:
///     polygons: a ``PolygonIndex`` or a (Geo)Parquet path.
///     points: a (Geo)Parquet file of points.
///     out: the output Parquet file.
///     max_dist, how, all_candidates, rank_by, descending, k, allow_crs_mismatch: as for
///         ``PolygonIndex.match`` (a ``rank_by`` column is read from the polygons file,
///         or taken from the index's attributes).
///     keep: point column(s) to carry into the output.
///     keep_polygons: polygon column(s) to carry into the output (kept geometry columns
///         are described in the output's GeoParquet metadata).
///     x, y, point_geometry: the points' columns, as ``match``'s ``x``, ``y``, ``geometry``.
///     polygon_geometry: the polygons' geometry column (when ``polygons`` is a path).
///     threads: rayon threads (1 to 1024; default one per core).
///     batch_rows: points per batch.
///     job_id: a string recorded in the output's ``polymatch`` metadata as ``"job"``.
///
/// Returns:
///     A dict with ``points``, ``matched``, ``rows_written``.
#[pyfunction]
#[pyo3(signature = (polygons, points, out, max_dist=None, how="inner", all_candidates=false, *, predicate="center", rank_by="area", descending=false, k=1, keep=None, keep_polygons=None, x=None, y=None, point_geometry=None, polygon_geometry=None, allow_crs_mismatch=false, threads=None, batch_rows=262_144, job_id=None, metric=None))]
#[allow(clippy::too_many_arguments)]
pub fn match_parquet<'py>(
    py: Python<'py>,
    polygons: &Bound<'py, PyAny>,
    points: PathBuf,
    out: PathBuf,
    max_dist: Option<f64>,
    how: &str,
    all_candidates: bool,
    predicate: &str,
    rank_by: &str,
    descending: bool,
    k: i128,
    keep: Option<Columns>,
    keep_polygons: Option<Columns>,
    x: Option<String>,
    y: Option<String>,
    point_geometry: Option<String>,
    polygon_geometry: Option<String>,
    allow_crs_mismatch: bool,
    threads: Option<i64>,
    batch_rows: usize,
    job_id: Option<String>,
    metric: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let threads = check_threads(threads)?;
    let mut options = match_options(
        predicate,
        max_dist,
        how,
        all_candidates,
        rank_by,
        descending,
        k,
        None,
        metric,
    )?;
    let given = parse_metric(metric)?;
    let mut warning = None;
    let keep = keep.map(|k| k.0).unwrap_or_default();
    let keep_polygons = keep_polygons.map(|k| k.0).unwrap_or_default();
    // The polygons: an index (its outlines prepared if the rule needs them), or a file
    // loaded as the command line loads it.
    let (index, attributes, crs, outlines, polygons_path): PolygonsFrom =
        if let Ok(idx) = polygons.cast::<PyPolygonIndex>() {
            let idx = idx.get();
            if given.is_none() {
                options.metric = idx.core().metric();
            }
            let outlines = match options.predicate.shape_rule() {
                Some(_) => py
                    .detach(|| idx.outlines())
                    .map_err(PyPolymatchError)?
                    .cloned(),
                None => None,
            };
            (
                idx.rankings().clone(),
                idx.attributes().cloned(),
                idx.crs().cloned(),
                outlines,
                None,
            )
        } else {
            let path: PathBuf = polygons.extract()?;
            let (file, w) = py
                .detach(|| {
                    crate::pool::run(None, || {
                        let file = load_polygons(
                            &path,
                            polygon_geometry.as_deref(),
                            &keep_polygons,
                            &options,
                        )?;
                        let (_, w) = resolve_metric(given, file.crs.as_ref())
                            .map_err(|e| e.in_file(&path))?;
                        Ok((file, w))
                    })?
                })
                .map_err(PyPolymatchError)?;
            warning = w;
            (
                Arc::new(file.rankings),
                Some(file.attributes),
                file.crs,
                file.outlines,
                Some(path),
            )
        };
    warn(py, warning)?;
    let summary = run_detached(py, usize::MAX, |cancel| {
        crate::pool::run(threads, || {
            let job = ParquetJob {
                matcher: Matcher {
                    polygons: PolygonSide {
                        index: &index,
                        attributes: attributes.as_ref(),
                        crs: crs.as_ref(),
                        outlines: outlines.as_ref(),
                    },
                    options: options.clone(),
                    keep: Keep {
                        points: &keep,
                        polygons: &keep_polygons,
                    },
                    allow_crs_mismatch,
                },
                polygons_path: polygons_path.as_deref(),
                points_path: &points,
                out_path: &out,
                spec: PointSpec {
                    x: x.as_deref(),
                    y: y.as_deref(),
                    geometry: point_geometry.as_deref(),
                },
                batch_rows,
                cancel,
                job_id: job_id.as_deref(),
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

/// Write a match result to a Parquet file exactly as ``match_parquet`` writes its
/// output: atomically (a temporary file, then a rename), with the result's ``geo``
/// metadata and a ``polymatch`` record of the job (polymatch's version, every option,
/// the kept columns, the input files, the CRS, ``job_id``), stated both as file
/// metadata and in the embedded Arrow schema. ``polymatch.dask`` writes the outputs of
/// a partitioned job with it, so that they are the files one process writes.
///
/// Args:
///     result: the result, an Arrow table in ``PolygonIndex.match``'s schema.
///     out: the output file.
///     max_dist, how, all_candidates, rank_by, descending, k, keep, keep_polygons:
///         the options the result was matched with (checked as ``match`` checks them).
///     crs: the CRS of the result (None: unstated).
///     points, polygons: the input files, if any, recorded as they are.
///     job_id: recorded as ``"job"``.
#[pyfunction]
#[pyo3(signature = (result, out, max_dist=None, how="inner", all_candidates=false, *, predicate="center", rank_by="area", descending=false, k=1, keep=None, keep_polygons=None, crs=None, points=None, polygons=None, job_id=None, metric=None))]
#[allow(clippy::too_many_arguments)]
pub fn write_results(
    py: Python<'_>,
    result: pyo3_arrow::PyTable,
    out: PathBuf,
    max_dist: Option<f64>,
    how: &str,
    all_candidates: bool,
    predicate: &str,
    rank_by: &str,
    descending: bool,
    k: i128,
    keep: Option<Columns>,
    keep_polygons: Option<Columns>,
    crs: Option<&Bound<'_, PyAny>>,
    points: Option<PathBuf>,
    polygons: Option<PathBuf>,
    job_id: Option<String>,
    metric: Option<&str>,
) -> PyResult<()> {
    let options = match_options(
        predicate,
        max_dist,
        how,
        all_candidates,
        rank_by,
        descending,
        k,
        None,
        metric,
    )?;
    let crs = optional_crs(crs)?;
    let keep = keep.map(|k| k.0).unwrap_or_default();
    let keep_polygons = keep_polygons.map(|k| k.0).unwrap_or_default();
    let (batches, schema) = result.into_inner();
    py.detach(|| {
        crate::pool::run(None, || {
            let record = JobRecord {
                options: &options,
                keep: Keep {
                    points: &keep,
                    polygons: &keep_polygons,
                },
                crs: crs.as_ref(),
                points: points.as_deref(),
                polygons: polygons.as_deref(),
                job_id: job_id.as_deref(),
            };
            core_write_results(&out, &schema, &batches, &record)
        })?
    })
    .map_err(|e| PyPolymatchError(e).into())
}

/// Run the `polymatch` command line with `args` (without the program name); returns the
/// exit code. This is what the `polymatch` script installed with the package calls.
/// Ctrl-C is Python's: the call watches for it, stops the job (exit code 130, no output
/// left) and installs no signal handler of its own.
#[pyfunction]
pub fn run_cli(py: Python<'_>, args: Vec<String>) -> PyResult<u8> {
    let argv: Vec<std::ffi::OsString> = std::iter::once("polymatch".into())
        .chain(args.into_iter().map(Into::into))
        .collect();
    run_detached(py, usize::MAX, |cancel| {
        Ok(
            crate::pool::run(None, || polymatch::cli::run_from_args(argv, cancel))
                .unwrap_or(polymatch::cli::EXIT_INTERNAL),
        )
    })
}
