//! (Geo)Parquet in and out: polygons loaded once, points streamed batch by batch, results
//! written atomically (a temporary file beside the target, renamed on success).
//!
//! GeoParquet 1.0/1.1 `geo` metadata is read for the geometry column, its encoding
//! (`WKB`, `polygon`, `multipolygon`, `point`), its CRS and its `edges`; files without it
//! are read by Arrow schema detection (see [`crate::io::arrow_ingest`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, RecordBatchReader};
use arrow::compute::concat_batches;
use arrow::datatypes::{Schema, SchemaRef};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{KeyValue, ParquetMetaData};
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::Statistics;
use serde_json::Value;

use crate::error::{PolymatchError, Result};
use crate::io::arrow_ingest::{polygons_from_array, polygons_from_xy_lists, validate};
use crate::io::guard;
use crate::io::schema::{resolve_geometry, Crs, CrsEntry, GeometryColumns, Request, Role};
use crate::io::PointSpec;
use crate::matcher::{BoundMatcher, Matcher};
use crate::polygons::PolygonColumns;

/// Rows per batch when loading polygons.
const POLYGON_BATCH_ROWS: usize = 65_536;
/// Rows per row group in files polymatch writes.
pub const OUTPUT_ROW_GROUP_ROWS: usize = 1 << 20;

/// Open a Parquet file, naming it in every error.
fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).map_err(|e| PolymatchError::from(e).in_file(path))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        let e = std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "is a directory, not a Parquet file",
        );
        return Err(PolymatchError::from(e).in_file(path));
    }
    guard::decoding(DECODER, || {
        Ok(ParquetRecordBatchReaderBuilder::try_new(file)?)
    })
    .map_err(|e| e.in_file(path))
}

const DECODER: &str = "Parquet decoder";

/// Build the reader (guarded: it reads the first pages' metadata).
fn build(
    builder: ParquetRecordBatchReaderBuilder<File>,
    path: &Path,
) -> Result<ParquetRecordBatchReader> {
    guard::decoding(DECODER, || Ok(builder.build()?)).map_err(|e| e.in_file(path))
}

/// The next batch of `reader`, decoded under [`guard::decoding`] and checked to be
/// well-formed Arrow data (a corrupt page must not become an out-of-bounds offset).
fn next_batch(reader: &mut ParquetRecordBatchReader, path: &Path) -> Result<Option<RecordBatch>> {
    guard::decoding(DECODER, || {
        let Some(batch) = reader.next().transpose()? else {
            return Ok(None);
        };
        for (field, column) in batch.schema_ref().fields().iter().zip(batch.columns()) {
            validate(column, field.name())?;
        }
        Ok(Some(batch))
    })
    .map_err(|e| e.in_file(path))
}

/// Polygons read from a file, with the attribute columns that were asked for.
#[derive(Debug)]
pub struct PolygonFile {
    /// The polygons.
    pub polygons: PolygonColumns,
    /// The kept attribute columns (one batch, possibly with no columns).
    pub attributes: RecordBatch,
    /// The CRS of the geometry column, if the file states one.
    pub crs: Option<Crs>,
}

/// Root column indices of `names` in `schema`.
fn roots(schema: &Schema, names: &[&str], path: &Path) -> Result<Vec<usize>> {
    names
        .iter()
        .map(|n| {
            schema.index_of(n).map_err(|_| {
                let have: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                PolymatchError::MissingColumn {
                    name: n.to_string(),
                    hint: format!(" (columns: {})", have.join(", ")),
                }
                .in_file(path)
            })
        })
        .collect()
}

/// Load the polygons of a (Geo)Parquet file, plus attribute columns: the `keep` ones, or
/// every column when `keep` is `None` (as `PolygonIndex.from_arrow` keeps every column).
/// Only the geometry and the kept columns are read.
///
/// # Errors
/// Any ingest error, wrapped with the file's path.
pub fn read_polygons(
    path: &Path,
    geometry: Option<&str>,
    keep: Option<&[String]>,
) -> Result<PolygonFile> {
    let builder = open(path)?.with_batch_size(POLYGON_BATCH_ROWS);
    let schema = builder.schema().clone();
    let request = Request {
        geometry,
        ..Request::default()
    };
    let resolved =
        resolve_geometry(&schema, Role::Polygons, request).map_err(|e| e.in_file(path))?;
    let geometry_names: Vec<String> = resolved
        .columns
        .names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let keep: Vec<String> = match keep {
        Some(k) => k.to_vec(),
        None => schema.fields().iter().map(|f| f.name().clone()).collect(),
    };
    let mut wanted: Vec<&str> = geometry_names.iter().map(String::as_str).collect();
    wanted.extend(
        keep.iter()
            .map(String::as_str)
            .filter(|k| !geometry_names.iter().any(|g| g == k)),
    );
    let indices = roots(&schema, &wanted, path)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices.iter().copied());
    let mut reader = build(builder.with_projection(mask), path)?;
    let projected = reader.schema();
    let mut batches = Vec::new();
    while let Some(batch) = next_batch(&mut reader, path)? {
        batches.push(batch);
    }
    let whole =
        concat_batches(&projected, &batches).map_err(|e| PolymatchError::from(e).in_file(path))?;
    drop(batches);
    let column = |name: &str| -> Result<(arrow::datatypes::FieldRef, ArrayRef)> {
        let i = whole
            .schema()
            .index_of(name)
            .map_err(PolymatchError::from)?;
        Ok((whole.schema().fields()[i].clone(), whole.column(i).clone()))
    };
    let polygons = match &resolved.columns {
        GeometryColumns::Xy(x, y) => polygons_from_xy_lists(&column(x)?.1, &column(y)?.1),
        GeometryColumns::Geometry(g) => {
            let (field, array) = column(g)?;
            polygons_from_array(&field, &array)
        }
    }
    .map_err(|e| e.in_file(path))?;
    let keep_idx: Vec<usize> = keep
        .iter()
        .map(|k| whole.schema().index_of(k))
        .collect::<std::result::Result<_, _>>()?;
    // The file's metadata (`geo`) stays on the attributes: it describes kept geometry.
    let projected = whole.schema().project(&keep_idx)?;
    let attributes = RecordBatch::try_new_with_options(
        Arc::new(projected.with_metadata(schema.metadata().clone())),
        keep_idx.iter().map(|&i| whole.column(i).clone()).collect(),
        &RecordBatchOptions::new().with_row_count(Some(whole.num_rows())),
    )?;
    Ok(PolygonFile {
        polygons,
        attributes,
        crs: resolved.crs,
    })
}

/// What a streaming match did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchSummary {
    /// Points read.
    pub points: u64,
    /// Points with a match.
    pub matched: u64,
    /// Rows written.
    pub rows_written: u64,
}

/// A streaming Parquet-to-Parquet match.
pub struct ParquetJob<'a> {
    /// The matcher: polygons, options, kept columns, CRS rules.
    pub matcher: Matcher<'a>,
    /// Path of the polygons file (to refuse it as the output, and for the metadata).
    pub polygons_path: Option<&'a Path>,
    /// Points file.
    pub points_path: &'a Path,
    /// Output file.
    pub out_path: &'a Path,
    /// Where the points are.
    pub spec: PointSpec<'a>,
    /// Points per batch read.
    pub batch_rows: usize,
    /// Set to stop (Ctrl-C).
    pub cancel: &'a AtomicBool,
    /// An identifier of the whole job, recorded in the output's `polymatch` metadata as
    /// `"job"` (Dask's `match_parquet` compares it to decide whether an output is current).
    pub job_id: Option<&'a str>,
}

/// Deletes the temporary output unless committed.
struct TempOutput {
    path: PathBuf,
    committed: bool,
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Total rows of a file, from its metadata.
pub fn total_rows(meta: &ParquetMetaData) -> u64 {
    meta.row_groups()
        .iter()
        .map(|g| g.num_rows().max(0) as u64)
        .sum()
}

/// Stream the points of `job.points_path` through the matcher into `job.out_path`.
/// `progress(points_done, points_total)` is called after every batch.
///
/// Peak memory: the index plus a few batches of `batch_rows` points, whatever the file size.
///
/// # Errors
/// Input, output and matching errors, wrapped with the path they concern; on any error
/// (and on cancel) no output file is left behind and an existing one is untouched.
pub fn match_parquet(
    job: &ParquetJob<'_>,
    mut progress: impl FnMut(u64, u64),
) -> Result<MatchSummary> {
    let options = job.matcher.options;
    options.validate()?;
    if job.batch_rows == 0 {
        return Err(PolymatchError::InvalidArgument(
            "batch rows must be > 0".into(),
        ));
    }
    for input in [Some(job.points_path), job.polygons_path]
        .into_iter()
        .flatten()
    {
        if same_file(input, job.out_path) {
            return Err(PolymatchError::InvalidArgument(format!(
                "the output {} is also an input: refusing to overwrite it",
                job.out_path.display()
            )));
        }
    }
    let path = job.points_path;
    let builder = open(path)?.with_batch_size(job.batch_rows);
    let total = total_rows(builder.metadata());
    let schema = builder.schema().clone();
    let bound = job
        .matcher
        .bind(&schema, job.spec)
        .map_err(|e| e.in_file(path))?;
    // Read only what matching and the kept columns need.
    let wanted = bound.columns_to_read();
    let names: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let indices = roots(&schema, &names, path)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices.iter().copied());
    let reader = build(builder.with_projection(mask), path)?;

    let out = job.out_path;
    let name = out.file_name().ok_or_else(|| {
        PolymatchError::InvalidArgument(format!("output path {} has no file name", out.display()))
    })?;
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(PolymatchError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("the output directory {} does not exist", dir.display()),
        ))
        .in_file(out));
    }
    let mut temp = TempOutput {
        path: out.with_file_name(format!(
            ".{}.polymatch-{}.tmp",
            name.to_string_lossy(),
            std::process::id()
        )),
        committed: false,
    };
    let file = File::create(&temp.path).map_err(|e| PolymatchError::from(e).in_file(out))?;
    let mut metadata = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "max_dist": options.max_dist,
        "how": format!("{:?}", options.how).to_lowercase(),
        "all_candidates": options.all_candidates,
        "keep": job.matcher.keep.points,
        "keep_polygons": job.matcher.keep.polygons,
        "points": job.points_path.display().to_string(),
    });
    if let Some(p) = job.polygons_path {
        metadata["polygons"] = Value::String(p.display().to_string());
    }
    if let Some(crs) = bound.crs() {
        metadata["crs"] = crs.0.clone();
    }
    if let Some(id) = job.job_id {
        metadata["job"] = Value::String(id.to_string());
    }
    let mut kv = vec![KeyValue::new("polymatch".into(), metadata.to_string())];
    // Kept geometry columns stay GeoParquet geometry columns.
    if let Some(geo) = bound.schema().metadata().get("geo") {
        kv.push(KeyValue::new("geo".into(), geo.clone()));
    }
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_max_row_group_row_count(Some(OUTPUT_ROW_GROUP_ROWS))
        .set_key_value_metadata(Some(kv))
        .build();
    let summary = stream(job, &bound, reader, file, props, total, &mut progress)?;
    std::fs::rename(&temp.path, out).map_err(|e| PolymatchError::from(e).in_file(out))?;
    temp.committed = true;
    Ok(summary)
}

/// Batches in flight between the reader, matcher and writer threads.
const PIPELINE_DEPTH: usize = 2;

/// Read, match and write as a pipeline: a reader thread decodes the next batches and a
/// writer thread encodes the previous results while this thread matches. Channels are
/// bounded, so memory stays a few batches whatever the file size. Output order is input
/// order: one matcher, FIFO channels.
fn stream(
    job: &ParquetJob<'_>,
    bound: &BoundMatcher<'_>,
    reader: ParquetRecordBatchReader,
    file: File,
    props: WriterProperties,
    total: u64,
    progress: &mut impl FnMut(u64, u64),
) -> Result<MatchSummary> {
    let path = job.points_path;
    let out = job.out_path;
    // The writer's schema, without the `geo` key (written as file metadata already).
    let out_schema: SchemaRef = Arc::new(Schema::new(bound.schema().fields().clone()));
    std::thread::scope(|scope| {
        let (to_matcher, from_reader) = sync_channel::<Result<RecordBatch>>(PIPELINE_DEPTH);
        scope.spawn(move || {
            let mut reader = reader;
            loop {
                let batch = match next_batch(&mut reader, path) {
                    Ok(Some(batch)) => Ok(batch),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                let failed = batch.is_err();
                if to_matcher.send(batch).is_err() || failed {
                    break; // the matcher stopped (an error), or the file did
                }
            }
        });
        let (to_writer, from_matcher) = sync_channel::<RecordBatch>(PIPELINE_DEPTH);
        let writer = scope.spawn(move || -> Result<()> {
            let mut writer = ArrowWriter::try_new(file.try_clone()?, out_schema, Some(props))
                .map_err(|e| PolymatchError::from(e).in_file(out))?;
            for batch in from_matcher {
                writer
                    .write(&batch)
                    .map_err(|e| PolymatchError::from(e).in_file(out))?;
            }
            writer
                .close()
                .map_err(|e| PolymatchError::from(e).in_file(out))?;
            file.sync_all()
                .map_err(|e| PolymatchError::from(e).in_file(out))?;
            Ok(())
        });
        let mut summary = MatchSummary {
            points: 0,
            matched: 0,
            rows_written: 0,
        };
        let matched = (|| -> Result<()> {
            for batch in from_reader {
                let batch = batch?;
                if job.cancel.load(Ordering::Relaxed) {
                    return Err(PolymatchError::Cancelled);
                }
                let (result, matched) = bound
                    .match_batch(&batch, summary.points, Some(job.cancel))
                    .map_err(|e| e.in_file(path))?;
                summary.points += batch.num_rows() as u64;
                summary.matched += matched;
                summary.rows_written += result.num_rows() as u64;
                if to_writer.send(result).is_err() {
                    break; // the writer failed: its error is reported below
                }
                progress(summary.points, total);
            }
            Ok(())
        })();
        drop(to_writer);
        let written = writer.join().unwrap_or_else(|_| {
            Err(PolymatchError::Io(std::io::Error::other(
                "the Parquet writer thread panicked",
            )))
        });
        matched?;
        written?;
        Ok(summary)
    })
}

/// What `polymatch info` shows about a file.
#[derive(Debug)]
pub struct FileInfo {
    /// Rows.
    pub rows: u64,
    /// Row groups.
    pub row_groups: usize,
    /// Arrow schema.
    pub schema: SchemaRef,
    /// Geometry column and encoding, as detected.
    pub geometry: Option<(String, String)>,
    /// CRS, if stated.
    pub crs: Option<String>,
    /// Bounding box (xmin, ymin, xmax, ymax) from metadata or statistics.
    pub bbox: Option<[f64; 4]>,
}

/// Describe a Parquet file without reading its data pages.
///
/// # Errors
/// If the file cannot be opened or is not Parquet.
pub fn file_info(path: &Path) -> Result<FileInfo> {
    let builder = open(path)?;
    let meta = builder.metadata().clone();
    let schema = builder.schema().clone();
    let (geometry, crs, bbox) = match resolve_geometry(&schema, Role::Any, Request::default()) {
        Err(PolymatchError::NoGeometry(_)) => (None, None, None),
        Err(e @ (PolymatchError::Metadata(_) | PolymatchError::MissingColumn { .. })) => {
            return Err(e.in_file(path))
        }
        Err(_) => (None, None, None),
        Ok(r) => {
            let crs = match (&r.geoparquet, &r.crs) {
                (Some(g), _) if g.crs == CrsEntry::Missing => {
                    Some("not stated; GeoParquet default OGC:CRS84".to_string())
                }
                (_, Some(c)) => Some(c.short()),
                (Some(_), None) => Some("unknown (null)".to_string()),
                (None, None) => None,
            };
            match &r.columns {
                GeometryColumns::Geometry(g) => {
                    let encoding = match &r.geoparquet {
                        Some(c) => format!("GeoParquet {}", c.encoding),
                        None => r.encoding.clone().unwrap_or_default(),
                    };
                    let bbox = r.geoparquet.as_ref().and_then(|c| c.bbox4());
                    (Some((g.clone(), encoding)), crs, bbox)
                }
                GeometryColumns::Xy(x, y) => (
                    Some((
                        format!("{x}, {y}"),
                        format!("{} columns", schema.field_with_name(x)?.data_type()),
                    )),
                    crs,
                    stats_bbox(&meta),
                ),
            }
        }
    };
    Ok(FileInfo {
        rows: total_rows(&meta),
        row_groups: meta.num_row_groups(),
        schema,
        geometry,
        crs,
        bbox,
    })
}

/// Bounding box of float64 `x`/`y` columns from row-group statistics, if all have them.
fn stats_bbox(meta: &ParquetMetaData) -> Option<[f64; 4]> {
    let mut b = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for rg in meta.row_groups() {
        for (axis, name) in [(0usize, "x"), (1, "y")] {
            let col = rg
                .columns()
                .iter()
                .find(|c| c.column_path().string() == name)?;
            match col.statistics()? {
                Statistics::Double(s) => {
                    b[axis] = b[axis].min(*s.min_opt()?);
                    b[axis + 2] = b[axis + 2].max(*s.max_opt()?);
                }
                _ => return None,
            }
        }
    }
    b[0].is_finite().then_some(b)
}

/// Write `batches` to `path` atomically (temporary file, then rename), with optional
/// key-value metadata.
///
/// # Errors
/// I/O or Parquet errors, naming the file.
pub fn write_parquet(
    path: &Path,
    schema: SchemaRef,
    batches: &[RecordBatch],
    kv: Vec<KeyValue>,
) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut temp = TempOutput {
        path: path.with_file_name(format!(".{name}.polymatch-{}.tmp", std::process::id())),
        committed: false,
    };
    let file = File::create(&temp.path).map_err(|e| PolymatchError::from(e).in_file(path))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_max_row_group_row_count(Some(OUTPUT_ROW_GROUP_ROWS))
        .set_key_value_metadata((!kv.is_empty()).then_some(kv))
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(props))
        .map_err(|e| PolymatchError::from(e).in_file(path))?;
    for b in batches {
        writer
            .write(b)
            .map_err(|e| PolymatchError::from(e).in_file(path))?;
    }
    writer
        .close()
        .map_err(|e| PolymatchError::from(e).in_file(path))?;
    std::fs::rename(&temp.path, path).map_err(|e| PolymatchError::from(e).in_file(path))?;
    temp.committed = true;
    Ok(())
}
