//! (Geo)Parquet in and out: reading polygons, describing files, writing files atomically
//! (a temporary file beside the target, renamed on success). The streaming
//! Parquet-to-Parquet job is [`crate::pipeline`].
//!
//! GeoParquet 1.0/1.1 `geo` metadata is read for the geometry column, its encoding
//! (`WKB`, `polygon`, `multipolygon`, `point`), its CRS and its `edges`; files without it
//! are read by Arrow schema detection (see [`crate::io::arrow_ingest`]).

use std::fs::File;
use std::path::{Path, PathBuf};
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

use crate::error::{PolymatchError, Result};
use crate::io::arrow_ingest::{polygons_from_array, polygons_from_xy_lists, validate};
use crate::io::guard;
use crate::io::schema::{resolve_geometry, Crs, CrsEntry, GeometryColumns, Request, Role};
use crate::polygons::PolygonColumns;

/// Rows per batch when loading polygons.
const POLYGON_BATCH_ROWS: usize = 65_536;
/// Rows per row group in files polymatch writes.
pub const OUTPUT_ROW_GROUP_ROWS: usize = 1 << 20;

/// Open a Parquet file, naming it in every error.
pub(crate) fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
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
pub(crate) fn build(
    builder: ParquetRecordBatchReaderBuilder<File>,
    path: &Path,
) -> Result<ParquetRecordBatchReader> {
    guard::decoding(DECODER, || Ok(builder.build()?)).map_err(|e| e.in_file(path))
}

/// The next batch of `reader`, decoded under [`guard::decoding`] and checked to be
/// well-formed Arrow data (a corrupt page must not become an out-of-bounds offset).
pub(crate) fn next_batch(
    reader: &mut ParquetRecordBatchReader,
    path: &Path,
) -> Result<Option<RecordBatch>> {
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
pub(crate) fn roots(schema: &Schema, names: &[&str], path: &Path) -> Result<Vec<usize>> {
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

/// Deletes the temporary output unless committed.
pub(crate) struct TempOutput {
    /// The temporary file.
    pub(crate) path: PathBuf,
    /// Set once renamed to the target.
    pub(crate) committed: bool,
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Total rows of a file, from its metadata.
pub fn total_rows(meta: &ParquetMetaData) -> u64 {
    meta.row_groups()
        .iter()
        .map(|g| g.num_rows().max(0) as u64)
        .sum()
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
