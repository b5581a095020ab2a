//! (Geo)Parquet in and out: reading polygons, describing files, writing files atomically
//! (a temporary file beside the target, renamed on success). The streaming
//! Parquet-to-Parquet job is [`crate::pipeline`].
//!
//! GeoParquet 1.0/1.1 `geo` metadata is read for the geometry column, its encoding
//! (`WKB`, `polygon`, `multipolygon`, `point`), its CRS and its `edges`; files without it
//! are read by Arrow schema detection (see [`crate::io::arrow_ingest`]).

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

use arrow::array::{
    new_empty_array, Array, ArrayRef, RecordBatch, RecordBatchOptions, RecordBatchReader,
};
use arrow::compute::{concat, concat_batches};
use arrow::datatypes::{FieldRef, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::PageIndexPolicy;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::statistics::Statistics;
use rayon::prelude::*;

use crate::error::{PolymatchError, Result};
use crate::io::arrow_ingest::{polygons_from_array, polygons_from_xy_lists, validate};
use crate::io::crs::Crs;
use crate::io::guard;
use crate::io::schema::{resolve_geometry, CrsEntry, GeometryColumns, Request, Resolved, Role};
use crate::polygons::{PolygonCenters, PolygonColumns};
use crate::sphere::Metric;

/// Rows per batch when loading polygons.
const POLYGON_BATCH_ROWS: usize = 65_536;
/// Rows parsed as one task by [`read_polygon_centers`] (a batch is parsed in parallel).
const PARSE_ROWS: usize = 8_192;

/// Open a Parquet file, naming it in every error.
pub(crate) fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let meta = open_metadata(path, ArrowReaderOptions::new())?;
    let file = File::open(path).map_err(|e| PolymatchError::from(e).in_file(path))?;
    Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(
        file, meta,
    ))
}

/// Read a Parquet file's footer (and what `options` ask for), naming the file in every
/// error.
fn open_metadata(path: &Path, options: ArrowReaderOptions) -> Result<ArrowReaderMetadata> {
    let file = File::open(path).map_err(|e| PolymatchError::from(e).in_file(path))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        let e = std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "is a directory, not a Parquet file",
        );
        return Err(PolymatchError::from(e).in_file(path));
    }
    guard::decoding(DECODER, || Ok(ArrowReaderMetadata::load(&file, options)?))
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

/// A polygon file opened for reading: only the geometry and the kept columns are read.
struct PolygonSource {
    /// The footer, and the offset index if the file has one, read once for every reader.
    meta: ArrowReaderMetadata,
    /// The geometry and kept columns.
    mask: ProjectionMask,
    /// Where the geometry is, its CRS.
    resolved: Resolved,
    /// The kept columns, in the caller's order.
    keep: Vec<String>,
    /// The file's schema metadata (`geo`), which stays on the kept attributes.
    metadata: HashMap<String, String>,
}

/// Rows `skip..skip + rows` of row group `row_group`, which are rows `first_row..` of
/// the file.
#[derive(Debug, Clone, Copy)]
struct Part {
    row_group: usize,
    first_row: usize,
    skip: usize,
    rows: usize,
}

fn open_polygons(
    path: &Path,
    geometry: Option<&str>,
    keep: Option<&[String]>,
) -> Result<PolygonSource> {
    let options = ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Optional);
    let meta = open_metadata(path, options)?;
    let schema = meta.schema().clone();
    let request = Request {
        geometry,
        ..Request::default()
    };
    let resolved =
        resolve_geometry(&schema, Role::Polygons, request).map_err(|e| e.in_file(path))?;
    let keep: Vec<String> = match keep {
        Some(k) => k.to_vec(),
        None => schema.fields().iter().map(|f| f.name().clone()).collect(),
    };
    let geometry_names = resolved.columns.names();
    let mut wanted = geometry_names.clone();
    wanted.extend(
        keep.iter()
            .map(String::as_str)
            .filter(|k| !geometry_names.contains(k)),
    );
    let indices = roots(&schema, &wanted, path)?;
    let mask = ProjectionMask::roots(meta.parquet_schema(), indices.iter().copied());
    Ok(PolygonSource {
        meta,
        mask,
        resolved,
        keep,
        metadata: schema.metadata().clone(),
    })
}

impl PolygonSource {
    /// A reader of the whole file, or of one part of it. Each reader opens the file
    /// anew: readers in parallel must not share a file offset.
    fn reader(&self, path: &Path, part: Option<Part>) -> Result<ParquetRecordBatchReader> {
        let file = File::open(path).map_err(|e| PolymatchError::from(e).in_file(path))?;
        let mut builder =
            ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.meta.clone())
                .with_batch_size(POLYGON_BATCH_ROWS)
                .with_projection(self.mask.clone());
        if let Some(part) = part {
            builder = builder
                .with_row_groups(vec![part.row_group])
                .with_row_selection(RowSelection::from(vec![
                    RowSelector::skip(part.skip),
                    RowSelector::select(part.rows),
                ]));
        }
        build(builder, path)
    }

    /// The file cut into parts to read in parallel, about `want` of them: whole row
    /// groups, or pieces of row groups when the file has an offset index (which lets a
    /// reader skip the pages before its piece instead of decoding them).
    fn parts(&self, want: usize) -> Vec<Part> {
        let meta = self.meta.metadata();
        let groups = meta.row_groups();
        let indexed = meta.offset_index().is_some_and(|index| {
            index.len() == groups.len() && index.iter().all(|g| !g.is_empty())
        });
        let pieces = if indexed && groups.len() < want {
            want.div_ceil(groups.len().max(1))
        } else {
            1
        };
        let mut parts = Vec::new();
        let mut first_row = 0usize;
        for (row_group, group) in groups.iter().enumerate() {
            let n = usize::try_from(group.num_rows()).unwrap_or(0);
            let step = n.div_ceil(pieces).max(1);
            let mut skip = 0;
            while skip < n {
                let rows = step.min(n - skip);
                parts.push(Part {
                    row_group,
                    first_row: first_row.saturating_add(skip),
                    skip,
                    rows,
                });
                skip += rows;
            }
            first_row = first_row.saturating_add(n);
        }
        parts
    }
}

/// The polygons of one batch of a polygon file (rows numbered from 0 in the batch).
fn batch_polygons(batch: &RecordBatch, columns: &GeometryColumns) -> Result<PolygonColumns> {
    let column = |name: &str| -> Result<(FieldRef, ArrayRef)> {
        let i = batch.schema_ref().index_of(name)?;
        Ok((
            batch.schema_ref().fields()[i].clone(),
            batch.column(i).clone(),
        ))
    };
    match columns {
        GeometryColumns::Xy(x, y) => polygons_from_xy_lists(&column(x)?.1, &column(y)?.1),
        GeometryColumns::Geometry(g) => {
            let (field, array) = column(g)?;
            polygons_from_array(&field, &array)
        }
    }
}

/// The kept columns of `batches` (all of them schema `schema`) as one batch of `rows`
/// rows, with the file's metadata.
fn kept_columns(
    schema: &Schema,
    keep: &[String],
    batches: &[RecordBatch],
    rows: usize,
    metadata: HashMap<String, String>,
) -> Result<RecordBatch> {
    let keep_idx: Vec<usize> = keep
        .iter()
        .map(|k| schema.index_of(k))
        .collect::<std::result::Result<_, _>>()?;
    let projected = Arc::new(schema.project(&keep_idx)?.with_metadata(metadata));
    let columns = keep_idx
        .iter()
        .map(|&i| {
            let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
            match parts.as_slice() {
                [] => Ok(new_empty_array(schema.field(i).data_type())),
                [_] => Ok(batches[0].column(i).clone()),
                _ => concat(&parts),
            }
            .map_err(PolymatchError::from)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new_with_options(
        projected,
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
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
    let source = open_polygons(path, geometry, keep)?;
    let mut reader = source.reader(path, None)?;
    let projected = reader.schema();
    let PolygonSource {
        resolved,
        keep,
        metadata,
        ..
    } = source;
    let mut batches = Vec::new();
    while let Some(batch) = next_batch(&mut reader, path)? {
        batches.push(batch);
    }
    let whole =
        concat_batches(&projected, &batches).map_err(|e| PolymatchError::from(e).in_file(path))?;
    drop(batches);
    let polygons = batch_polygons(&whole, &resolved.columns)
        .map_err(|e| e.in_file(path))?
        .with_edges(resolved.edges);
    let attributes = kept_columns(
        &projected,
        &keep,
        std::slice::from_ref(&whole),
        whole.num_rows(),
        metadata,
    )?;
    Ok(PolygonFile {
        polygons,
        attributes,
        crs: resolved.crs,
    })
}

/// What [`read_polygon_centers`] keeps of the rows of one part of a file.
#[derive(Default)]
struct Parsed {
    cx: Vec<f64>,
    cy: Vec<f64>,
    area: Vec<f64>,
    matchable: Vec<bool>,
    /// The kept columns, batch by batch.
    kept: Vec<RecordBatch>,
}

/// Read one part of a polygon file: a reader thread decodes the next batch while this
/// one parses the geometry of the current one (in slices, in parallel), derives the
/// centers and areas and drops the coordinates.
fn parse_part(
    source: &PolygonSource,
    path: &Path,
    part: Part,
    keep_idx: &[usize],
    metric: Metric,
) -> Result<Parsed> {
    let reader = source.reader(path, Some(part))?;
    let mut out = Parsed {
        cx: Vec::with_capacity(part.rows),
        cy: Vec::with_capacity(part.rows),
        area: Vec::with_capacity(part.rows),
        matchable: Vec::with_capacity(part.rows),
        kept: Vec::new(),
    };
    std::thread::scope(|scope| -> Result<()> {
        let (to_parser, from_reader) = sync_channel::<Result<RecordBatch>>(2);
        scope.spawn(move || {
            let mut reader = reader;
            loop {
                let batch = next_batch(&mut reader, path).transpose();
                let Some(batch) = batch else { break };
                let failed = batch.is_err();
                if to_parser.send(batch).is_err() || failed {
                    break; // the parser stopped (an error), or the file did
                }
            }
        });
        for batch in from_reader {
            let batch = batch?;
            let first_row = part.first_row + out.cx.len();
            // The first error in row order wins.
            let slices: Vec<usize> = (0..batch.num_rows()).step_by(PARSE_ROWS).collect();
            let parsed: Vec<Result<PolygonColumns>> = slices
                .par_iter()
                .map(|&start| {
                    let rows = PARSE_ROWS.min(batch.num_rows() - start);
                    batch_polygons(&batch.slice(start, rows), &source.resolved.columns)
                        .and_then(|p| p.with_metric(metric))
                        .map_err(|e| e.rows_from(first_row + start).in_file(path))
                })
                .collect();
            for polygons in parsed {
                let polygons = polygons?;
                out.cx.extend_from_slice(polygons.center_x());
                out.cy.extend_from_slice(polygons.center_y());
                out.area.extend_from_slice(polygons.area());
                out.matchable.extend(polygons.matchable().iter());
            }
            if !keep_idx.is_empty() {
                out.kept.push(batch.project(keep_idx)?);
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// The polygons of a file as centers and areas, with the attribute columns that were
/// asked for: what a streaming match needs (the coordinates are not kept). Index it
/// with [`crate::SpatialIndex::from_polygon_centers`].
#[derive(Debug)]
pub struct PolygonCenterFile {
    /// The polygons' exact centers and areas, and which rows can match.
    pub centers: PolygonCenters,
    /// The kept attribute columns (one batch, possibly with no columns).
    pub attributes: RecordBatch,
    /// The CRS of the geometry column, if the file states one.
    pub crs: Option<Crs>,
}

/// Read the polygons of a (Geo)Parquet file as centers and areas, keeping the `keep`
/// attribute columns: the centers and areas [`read_polygons`] gives, and the same errors
/// (rows numbered in the file), without holding the file's geometry in memory.
///
/// # Implementation
/// Batch by batch: a reader thread decodes the next batch while this one parses the
/// geometry, derives the centers and areas (in parallel) and drops the coordinates.
/// Peak memory is the centers and the kept columns plus a few batches, instead of the
/// whole geometry column twice (decoded and parsed).
///
/// # Errors
/// Any ingest error, wrapped with the file's path.
pub fn read_polygon_centers(
    path: &Path,
    geometry: Option<&str>,
    keep: &[String],
) -> Result<PolygonCenterFile> {
    read_polygon_centers_in(path, geometry, keep, Metric::Planar)
}

/// [`read_polygon_centers`] with the centers and areas measured in `metric`
/// ([`PolygonColumns::with_metric`]).
///
/// # Errors
/// As [`read_polygon_centers`], and the errors of [`PolygonColumns::with_metric`].
pub fn read_polygon_centers_in(
    path: &Path,
    geometry: Option<&str>,
    keep: &[String],
    metric: Metric,
) -> Result<PolygonCenterFile> {
    let source = open_polygons(path, geometry, Some(keep))?;
    source
        .resolved
        .edges
        .check(metric)
        .map_err(|e| e.in_file(path))?;
    if metric == Metric::Sphere {
        // A projected CRS is refused before its coordinates are read as degrees.
        crate::sphere::resolve_metric(Some(metric), source.resolved.crs.as_ref())
            .map_err(|e| e.in_file(path))?;
    }
    let projected = source.reader(path, None)?.schema();
    let keep_idx: Vec<usize> = source
        .keep
        .iter()
        .map(|k| projected.index_of(k))
        .collect::<std::result::Result<_, _>>()?;
    let kept_schema = Arc::new(projected.project(&keep_idx)?);
    let parts = source.parts(2 * rayon::current_num_threads());
    let parsed: Vec<Result<Parsed>> = parts
        .par_iter()
        .map(|&part| parse_part(&source, path, part, &keep_idx, metric))
        .collect();
    // Parts in file order: the first error in row order wins.
    let mut whole = Parsed::default();
    for part in parsed {
        let part = part?;
        whole.cx.extend_from_slice(&part.cx);
        whole.cy.extend_from_slice(&part.cy);
        whole.area.extend_from_slice(&part.area);
        whole.matchable.extend_from_slice(&part.matchable);
        whole.kept.extend(part.kept);
    }
    let Parsed {
        cx,
        cy,
        area,
        matchable,
        kept,
    } = whole;
    if cx.len() >= u32::MAX as usize {
        return Err(PolymatchError::InvalidLayout(format!(
            "more than {} polygons are not supported",
            u32::MAX - 1
        ))
        .in_file(path));
    }
    let rows = cx.len();
    let PolygonSource {
        keep,
        metadata,
        resolved,
        ..
    } = source;
    let attributes = kept_columns(&kept_schema, &keep, &kept, rows, metadata)?;
    Ok(PolygonCenterFile {
        centers: PolygonCenters {
            x: cx.into(),
            y: cy.into(),
            area: area.into(),
            matchable,
            metric,
        },
        attributes,
        crs: resolved.crs,
    })
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
