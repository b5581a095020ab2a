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

use arrow::array::{ArrayRef, RecordBatch, RecordBatchReader};
use arrow::compute::{concat, concat_batches};
use arrow::datatypes::{Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{KeyValue, ParquetMetaData};
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::Statistics;
use serde_json::Value;

use crate::error::{PolymatchError, Result};
use crate::index::SpatialIndex;
use crate::io::arrow_ingest::{
    find_geometry_column, points_from_batch, polygons_from_array, polygons_from_xy_lists, validate,
};
use crate::io::guard;
use crate::io::keep::{append_kept_columns, Keep};
use crate::io::PointSpec;
use crate::matching::{match_points, MatchOptions, PointSlices};
use crate::polygons::PolygonColumns;

/// Rows per batch when loading polygons.
const POLYGON_BATCH_ROWS: usize = 65_536;
/// Rows per row group in files polymatch writes.
pub const OUTPUT_ROW_GROUP_ROWS: usize = 1 << 20;

/// The GeoParquet description of one geometry column.
#[derive(Debug, Clone, PartialEq)]
pub struct GeoColumn {
    /// Column name.
    pub name: String,
    /// `WKB`, `point`, `polygon`, `multipolygon`, ...
    pub encoding: String,
    /// The CRS as given (PROJJSON or a string); `None` means the default, OGC:CRS84.
    pub crs: Option<Value>,
    /// The column's own metadata object, as written.
    pub raw: Value,
}

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

/// The `geo` metadata of a file, parsed, if present.
///
/// # Errors
/// [`PolymatchError::Metadata`] if the `geo` value is not valid JSON.
pub fn geo_metadata(meta: &ParquetMetaData) -> Result<Option<Value>> {
    let kv = meta.file_metadata().key_value_metadata();
    let Some(geo) = kv.and_then(|kv| kv.iter().find(|k| k.key == "geo")) else {
        return Ok(None);
    };
    let text = geo.value.as_deref().unwrap_or("");
    serde_json::from_str(text).map(Some).map_err(|e| {
        PolymatchError::Metadata(format!("GeoParquet 'geo' metadata is not valid JSON: {e}"))
    })
}

/// The GeoParquet geometry column `name` (or the primary column).
///
/// # Errors
/// [`PolymatchError::Metadata`] for malformed metadata or `edges: "spherical"`.
pub fn geo_column(geo: &Value, name: Option<&str>) -> Result<Option<GeoColumn>> {
    let bad = |why: &str| PolymatchError::Metadata(format!("GeoParquet 'geo' metadata: {why}"));
    let columns = geo
        .get("columns")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("no \"columns\" object"))?;
    let (name, primary) = match name {
        Some(n) => (n.to_string(), false),
        None => match geo.get("primary_column").and_then(Value::as_str) {
            Some(p) => (p.to_string(), true),
            None => return Err(bad("no \"primary_column\"")),
        },
    };
    let Some(col) = columns.get(&name) else {
        if primary {
            return Err(bad(&format!(
                "the primary column {name:?} is not described in \"columns\""
            )));
        }
        return Ok(None);
    };
    if !col.is_object() {
        return Err(bad(&format!("column {name:?} is not a JSON object")));
    }
    let encoding = col
        .get("encoding")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(&format!("column {name:?} has no \"encoding\"")))?
        .to_string();
    if col.get("edges").and_then(Value::as_str) == Some("spherical") {
        return Err(PolymatchError::Metadata(format!(
            "geometry column {name:?} has edges \"spherical\": polymatch works on planar coordinates only"
        )));
    }
    let crs = col.get("crs").filter(|c| !c.is_null()).cloned();
    Ok(Some(GeoColumn {
        name,
        encoding,
        crs,
        raw: col.clone(),
    }))
}

/// Polygons read from a file, with the attribute columns that were asked for.
#[derive(Debug)]
pub struct PolygonFile {
    /// The polygons.
    pub polygons: PolygonColumns,
    /// The kept attribute columns (one batch, possibly with no columns).
    pub attributes: RecordBatch,
    /// The CRS of the geometry column, if the file says.
    pub crs: Option<Value>,
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

/// Load the polygons of a (Geo)Parquet file, plus the `keep` attribute columns. Only
/// those columns are read.
///
/// # Errors
/// Any ingest error, wrapped with the file's path.
pub fn read_polygons(path: &Path, geometry: Option<&str>, keep: &[String]) -> Result<PolygonFile> {
    let builder = open(path)?.with_batch_size(POLYGON_BATCH_ROWS);
    let schema = builder.schema().clone();
    let geo = geo_metadata(builder.metadata()).map_err(|e| e.in_file(path))?;
    let geo_col = match &geo {
        Some(g) => geo_column(g, geometry).map_err(|e| e.in_file(path))?,
        None => None,
    };
    if let Some(g) = &geo_col {
        if !matches!(g.encoding.as_str(), "WKB" | "polygon" | "multipolygon") {
            return Err(PolymatchError::UnsupportedGeometry {
                column: g.name.clone(),
                found: format!("GeoParquet encoding {:?}", g.encoding),
                expected: "WKB, polygon or multipolygon".into(),
            }
            .in_file(path));
        }
    }
    let geometry_names: Vec<String> = match (&geo_col, geometry) {
        (Some(g), _) => vec![g.name.clone()],
        (None, Some(n)) => vec![n.to_string()],
        (None, None) => {
            let empty = RecordBatch::new_empty(schema.clone());
            match find_geometry_column(&empty) {
                Some(i) => vec![schema.field(i).name().clone()],
                None if schema.index_of("x").is_ok() && schema.index_of("y").is_ok() => {
                    vec!["x".into(), "y".into()]
                }
                None => {
                    let have: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                    return Err(PolymatchError::NoGeometry(format!(
                        "no GeoParquet metadata, no geometry/WKB column and no x/y list columns (columns: {})",
                        have.join(", ")
                    ))
                    .in_file(path));
                }
            }
        }
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
    let column = |name: &str| -> Result<(Field, ArrayRef)> {
        let i = whole
            .schema()
            .index_of(name)
            .map_err(PolymatchError::from)?;
        Ok((whole.schema().field(i).clone(), whole.column(i).clone()))
    };
    let polygons = if geometry_names.len() == 2 {
        polygons_from_xy_lists(&column("x")?.1, &column("y")?.1)
    } else {
        let (field, array) = column(&geometry_names[0])?;
        polygons_from_array(&field, &array)
    }
    .map_err(|e| e.in_file(path))?;
    let keep_idx: Vec<usize> = keep
        .iter()
        .map(|k| whole.schema().index_of(k))
        .collect::<std::result::Result<_, _>>()?;
    let attributes = whole.project(&keep_idx)?;
    Ok(PolygonFile {
        polygons,
        attributes,
        crs: geo_col.and_then(|g| g.crs),
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
    /// The prepared index.
    pub index: &'a SpatialIndex,
    /// Polygon attributes (for `keep.polygons`).
    pub polygon_attributes: Option<&'a RecordBatch>,
    /// The CRS of the polygons (checked against the points').
    pub polygon_crs: Option<&'a Value>,
    /// Path of the polygons file (to refuse it as the output, and for messages).
    pub polygons_path: Option<&'a Path>,
    /// Points file.
    pub points_path: &'a Path,
    /// Output file.
    pub out_path: &'a Path,
    /// Where the points are.
    pub spec: PointSpec<'a>,
    /// Kept columns.
    pub keep: Keep<'a>,
    /// Match options.
    pub options: MatchOptions,
    /// Points per batch read.
    pub batch_rows: usize,
    /// Set to stop (Ctrl-C).
    pub cancel: &'a AtomicBool,
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
    job.options.validate()?;
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
    let geo = geo_metadata(builder.metadata()).map_err(|e| e.in_file(path))?;
    let geo_col = match &geo {
        Some(g) => geo_column(g, job.spec.geometry).map_err(|e| e.in_file(path))?,
        None => None,
    };
    let points_crs = geo_col.as_ref().and_then(|g| g.crs.clone());
    if geo_col.is_some() || job.polygon_crs.is_some() {
        let default = Value::String("OGC:CRS84".into());
        let (a, b) = (
            job.polygon_crs.unwrap_or(&default),
            points_crs.as_ref().unwrap_or(&default),
        );
        if a != b {
            return Err(PolymatchError::Metadata(format!(
                "the polygons and the points have different CRS ({} vs {}); reproject one of them first",
                short_crs(a),
                short_crs(b)
            ))
            .in_file(path));
        }
    }
    // Read only what matching and the kept columns need.
    let mut spec = job.spec;
    let mut wanted: Vec<String> = Vec::new();
    if spec.x.is_some()
        || spec.y.is_some()
        || (spec.geometry.is_none() && schema.index_of("x").is_ok())
    {
        wanted.push(spec.x.unwrap_or("x").to_string());
        wanted.push(spec.y.unwrap_or("y").to_string());
    } else {
        let g = match (&geo_col, spec.geometry) {
            (Some(g), _) => g.name.clone(),
            (None, Some(n)) => n.to_string(),
            (None, None) => {
                let empty = RecordBatch::new_empty(schema.clone());
                let i = find_geometry_column(&empty).ok_or_else(|| {
                    PolymatchError::NoGeometry("no x/y columns and no point geometry column".into())
                        .in_file(path)
                })?;
                schema.field(i).name().clone()
            }
        };
        if let Some(gc) = &geo_col {
            if !matches!(gc.encoding.as_str(), "WKB" | "point") {
                return Err(PolymatchError::UnsupportedGeometry {
                    column: gc.name.clone(),
                    found: format!("GeoParquet encoding {:?}", gc.encoding),
                    expected: "points (WKB or point encoding)".into(),
                }
                .in_file(path));
            }
        }
        wanted.push(g);
    }
    let geometry_name = (wanted.len() == 1).then(|| wanted[0].clone());
    spec.geometry = geometry_name.as_deref();
    for k in job.keep.points {
        if !wanted.contains(k) {
            wanted.push(k.clone());
        }
    }
    let names: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let indices = roots(&schema, &names, path)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices.iter().copied());
    let reader = build(builder.with_projection(mask), path)?;

    let out = job.out_path;
    let name = out.file_name().ok_or_else(|| {
        PolymatchError::InvalidArgument(format!("output path {} has no file name", out.display()))
    })?;
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
        "max_dist": job.options.max_dist,
        "how": format!("{:?}", job.options.how).to_lowercase(),
        "all_candidates": job.options.all_candidates,
        "points": job.points_path.display().to_string(),
    });
    if let Some(p) = job.polygons_path {
        metadata["polygons"] = Value::String(p.display().to_string());
    }
    if let Some(crs) = job.polygon_crs.or(points_crs.as_ref()) {
        metadata["crs"] = crs.clone();
    }
    let mut kv = vec![KeyValue::new("polymatch".into(), metadata.to_string())];
    // A kept point geometry column stays a GeoParquet geometry column.
    if let (Some(gc), Some(g)) = (&geo_col, &geometry_name) {
        if job.keep.points.contains(g) {
            let geo = serde_json::json!({"version": "1.1.0", "primary_column": g, "columns": {g.as_str(): gc.raw}});
            kv.push(KeyValue::new("geo".into(), geo.to_string()));
        }
    }
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_max_row_group_row_count(Some(OUTPUT_ROW_GROUP_ROWS))
        .set_key_value_metadata(Some(kv))
        .build();
    let summary = stream(job, reader, spec, file, props, total, &mut progress)?;
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
    reader: ParquetRecordBatchReader,
    spec: PointSpec<'_>,
    file: File,
    props: WriterProperties,
    total: u64,
    progress: &mut impl FnMut(u64, u64),
) -> Result<MatchSummary> {
    let path = job.points_path;
    let out = job.out_path;
    let projected: SchemaRef = reader.schema();
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
            let mut writer: Option<ArrowWriter<File>> = None;
            let mut props = Some(props);
            for batch in from_matcher {
                let w = match writer.as_mut() {
                    Some(w) => w,
                    None => writer.insert(
                        ArrowWriter::try_new(file.try_clone()?, batch.schema(), props.take())
                            .map_err(|e| PolymatchError::from(e).in_file(out))?,
                    ),
                };
                w.write(&batch)
                    .map_err(|e| PolymatchError::from(e).in_file(out))?;
            }
            if let Some(w) = writer {
                w.close()
                    .map_err(|e| PolymatchError::from(e).in_file(out))?;
            }
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
            let mut any = false;
            let batches = from_reader
                .into_iter()
                .map(Some)
                .chain(std::iter::once(None));
            for batch in batches {
                let batch = match batch {
                    Some(b) => b?,
                    // An input with no batches still gets an (empty) output with its columns.
                    None if !any => RecordBatch::new_empty(projected.clone()),
                    None => break,
                };
                any = true;
                if job.cancel.load(Ordering::Relaxed) {
                    return Err(PolymatchError::Cancelled);
                }
                let cols = points_from_batch(&batch, spec)
                    .map_err(|e| shift_row(e, summary.points).in_file(path))?;
                let slices = PointSlices::new(&cols.x, &cols.y, cols.nulls.as_ref())?;
                let result = match_points(
                    job.index,
                    slices,
                    &job.options,
                    summary.points,
                    Some(job.cancel),
                )?;
                let matched = match job.options.how {
                    crate::matching::How::Inner if !job.options.all_candidates => {
                        result.num_rows() as u64
                    }
                    _ => (result.num_rows() - result.column(1).null_count()) as u64,
                };
                let result = append_kept_columns(
                    result,
                    &batch,
                    summary.points,
                    job.polygon_attributes,
                    &job.keep,
                )?;
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

/// Make a row number relative to one batch global to the file.
fn shift_row(e: PolymatchError, offset: u64) -> PolymatchError {
    match e {
        PolymatchError::InvalidGeometry { row, reason } => PolymatchError::InvalidGeometry {
            row: row + offset as usize,
            reason,
        },
        other => other,
    }
}

fn short_crs(crs: &Value) -> String {
    if let Some(s) = crs.as_str() {
        return s.to_string();
    }
    let id = crs.get("id");
    match (
        id.and_then(|i| i.get("authority")),
        id.and_then(|i| i.get("code")),
    ) {
        (Some(a), Some(c)) => format!("{}:{}", a.as_str().unwrap_or("?"), c),
        _ => crs
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("a PROJJSON CRS")
            .to_string(),
    }
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
    let geo = geo_metadata(&meta).map_err(|e| e.in_file(path))?;
    let geo_col = match &geo {
        Some(g) => geo_column(g, None).map_err(|e| e.in_file(path))?,
        None => None,
    };
    let mut bbox = None;
    let mut crs = None;
    let geometry = if let Some(g) = &geo_col {
        if let Some(b) = g.raw.get("bbox").and_then(Value::as_array) {
            let v: Vec<f64> = b.iter().filter_map(Value::as_f64).collect();
            if v.len() == 4 {
                bbox = Some([v[0], v[1], v[2], v[3]]);
            }
        }
        crs = Some(
            g.crs
                .as_ref()
                .map(short_crs)
                .unwrap_or_else(|| "OGC:CRS84 (default)".into()),
        );
        Some((g.name.clone(), format!("GeoParquet {}", g.encoding)))
    } else {
        let empty = RecordBatch::new_empty(schema.clone());
        if let Some(i) = find_geometry_column(&empty) {
            Some((
                schema.field(i).name().clone(),
                schema.field(i).data_type().to_string(),
            ))
        } else if schema.index_of("x").is_ok() && schema.index_of("y").is_ok() {
            bbox = stats_bbox(&meta);
            Some((
                "x, y".into(),
                format!("{} columns", schema.field_with_name("x")?.data_type()),
            ))
        } else {
            None
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

/// Concatenate arrays of one column (used by the generator and tests).
///
/// # Errors
/// If the arrays differ in type.
pub fn concat_arrays(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let refs: Vec<&dyn arrow::array::Array> = arrays.iter().map(|a| a.as_ref()).collect();
    Ok(concat(&refs)?)
}
