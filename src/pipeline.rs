//! The streaming Parquet-to-Parquet job: points read, matched and written batch by batch
//! (a reader thread, the matcher, a writer thread), the output written atomically. The
//! CLI, `polymatch.match_parquet` and Dask's `match_parquet` all run this.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use crate::error::{PolymatchError, Result};
use crate::io::crs::Crs;
use crate::io::parquet::{
    build, next_batch, open, read_polygon_centers_in, read_polygons, roots, total_rows,
};
use crate::io::writer::{
    result_properties, schema_with_metadata, write_parquet, ParallelWriter, TempOutput,
};
use crate::io::{Keep, PointSpec};
use crate::matcher::{polygon_columns_to_read, BoundMatcher, Matcher};
use crate::matching::MatchOptions;
use crate::ranking::Rankings;
use crate::shape::Outlines;
use crate::SpatialIndex;

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

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
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
    let options = &job.matcher.options;
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
    // The polygons' side first: a bad rank column is about the polygons file.
    job.matcher
        .ranked_index()
        .map_err(|e| match job.polygons_path {
            Some(p) => e.in_file(p),
            None => e,
        })?;
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
    let (temp, file) = TempOutput::create(out)?;
    let record = JobRecord {
        options,
        keep: job.matcher.keep,
        crs: bound.crs(),
        points: Some(job.points_path),
        polygons: job.polygons_path,
        job_id: job.job_id,
    };
    let output = result_file(bound.schema(), &record)?;
    // The file's row count is known: with enough points, the first batch builds the
    // cell lists (measured: 1M polygons x 10M points spent 12% of its samples matching
    // its first 2M points on the tree, before the lists were built).
    bound.expect_points(total);
    let summary = stream(job, &bound, reader, file, output, total, &mut progress)?;
    temp.commit(out)?;
    Ok(summary)
}

/// A polygon file loaded for a match: its index, the attribute columns the match needs,
/// its CRS, and (for the shape rules) its outlines.
#[derive(Debug)]
pub struct LoadedPolygons {
    /// The index and the orders prepared from it.
    pub rankings: Rankings,
    /// The kept and rank columns.
    pub attributes: RecordBatch,
    /// The CRS the file states.
    pub crs: Option<Crs>,
    /// The outlines, loaded only when the options' predicate tests shapes.
    pub outlines: Option<Arc<Outlines>>,
}

/// Load the polygons of a (Geo)Parquet file for a match with `options`, keeping the
/// `keep_polygons` columns and the rank column: as centers and areas only (the
/// coordinates dropped batch by batch, see [`read_polygon_centers_in`]) for the center
/// rule, whole with their outlines for the shape rules.
///
/// # Errors
/// Any ingest error, wrapped with the file's path.
pub fn load_polygons(
    path: &Path,
    geometry: Option<&str>,
    keep_polygons: &[String],
    options: &MatchOptions,
) -> Result<LoadedPolygons> {
    let load = polygon_columns_to_read(keep_polygons, options);
    if options.predicate.shape_rule().is_none() {
        let file = read_polygon_centers_in(path, geometry, &load, options.metric)?;
        return Ok(LoadedPolygons {
            rankings: Rankings::new(Arc::new(SpatialIndex::from_polygon_centers(&file.centers))),
            attributes: file.attributes,
            crs: file.crs,
            outlines: None,
        });
    }
    let file = read_polygons(path, geometry, Some(&load))?;
    // Centers and areas in the match's metric (on the sphere: square metres, the
    // coordinates' ranges checked, errors naming the row and the file).
    let polygons = file
        .polygons
        .with_metric(options.metric)
        .map_err(|e| e.in_file(path))?;
    let index = SpatialIndex::new(&polygons);
    let outlines = Outlines::new(Arc::new(polygons)).map_err(|e| e.in_file(path))?;
    Ok(LoadedPolygons {
        rankings: Rankings::new(Arc::new(index)),
        attributes: file.attributes,
        crs: file.crs,
        outlines: Some(Arc::new(outlines)),
    })
}

/// What a result file records about the job that made it: its `polymatch` metadata.
#[derive(Debug, Clone, Copy)]
pub struct JobRecord<'a> {
    /// The match options.
    pub options: &'a MatchOptions,
    /// The kept columns.
    pub keep: Keep<'a>,
    /// The CRS of the result.
    pub crs: Option<&'a Crs>,
    /// The points file.
    pub points: Option<&'a Path>,
    /// The polygons file (`None`: polygons from memory).
    pub polygons: Option<&'a Path>,
    /// The caller's identifier of the whole job (`"job"`), if any.
    pub job_id: Option<&'a str>,
}

impl JobRecord<'_> {
    /// The `polymatch` metadata: polymatch's version, every option, the kept columns,
    /// the input files, the CRS and the job.
    pub fn to_json(&self) -> Value {
        let options = self.options;
        let mut metadata = serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "predicate": options.predicate.as_str(),
            "max_dist": options.max_dist,
            "how": options.how.as_str(),
            "all_candidates": options.all_candidates,
            "rank_by": options.rank_by.as_str(),
            "descending": options.descending,
            "k": options.k,
            "metric": options.metric.as_str(),
            "keep": self.keep.points,
            "keep_polygons": self.keep.polygons,
        });
        if let Some(p) = self.points {
            metadata["points"] = Value::String(p.display().to_string());
        }
        if let Some(p) = self.polygons {
            metadata["polygons"] = Value::String(p.display().to_string());
        }
        if let Some(crs) = self.crs {
            metadata["crs"] = crs.0.clone();
        }
        if let Some(id) = self.job_id {
            metadata["job"] = Value::String(id.to_string());
        }
        metadata
    }
}

/// The schema and writer properties of a result file: `result`'s columns, its `geo`
/// metadata (kept geometry columns stay GeoParquet geometry columns) and the job's
/// `polymatch` record, as file key-values and in the embedded Arrow schema.
///
/// # Errors
/// None in practice (typed for the writer properties).
pub fn result_file(
    result: &Schema,
    record: &JobRecord<'_>,
) -> Result<(SchemaRef, WriterProperties)> {
    let mut kv = vec![KeyValue::new(
        "polymatch".into(),
        record.to_json().to_string(),
    )];
    if let Some(geo) = result.metadata().get("geo") {
        kv.push(KeyValue::new("geo".into(), geo.clone()));
    }
    let schema = schema_with_metadata(&Schema::new(result.fields().clone()), &kv);
    Ok((schema, result_properties(kv)?))
}

/// Write a whole result (batches of `schema`, e.g. a Dask partitioned job's output put
/// together from its tiles) to `out` as the streaming job writes one: atomically, with
/// [`result_file`]'s metadata.
///
/// # Errors
/// I/O or Parquet errors, naming the file.
pub fn write_results(
    out: &Path,
    schema: &Schema,
    batches: &[RecordBatch],
    record: &JobRecord<'_>,
) -> Result<()> {
    let (schema, props) = result_file(schema, record)?;
    write_parquet(out, &schema, batches, props)
}

/// Batches in flight between the reader thread and the matcher.
const PIPELINE_DEPTH: usize = 2;

/// Read, match and write as a pipeline: a reader thread decodes the next batches while
/// this thread matches batch `k` and, beside it on the same rayon pool, encodes the
/// result of batch `k - 1` (its columns in parallel, [`ParallelWriter`]). The channel is
/// bounded, so memory stays a few batches whatever the file size. Output order is input
/// order: one matcher, one writer, a FIFO channel.
fn stream(
    job: &ParquetJob<'_>,
    bound: &BoundMatcher<'_>,
    reader: ParquetRecordBatchReader,
    file: File,
    (out_schema, props): (SchemaRef, WriterProperties),
    total: u64,
    progress: &mut impl FnMut(u64, u64),
) -> Result<MatchSummary> {
    let path = job.points_path;
    let out = job.out_path;
    let written = |e: PolymatchError| e.in_file(out);
    let mut writer =
        ParallelWriter::try_new(file.try_clone()?, out_schema, props).map_err(written)?;
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
        let mut summary = MatchSummary {
            points: 0,
            matched: 0,
            rows_written: 0,
        };
        let mut pending: Option<RecordBatch> = None;
        for batch in from_reader {
            let batch = batch?;
            if job.cancel.load(Ordering::Relaxed) {
                return Err(PolymatchError::Cancelled);
            }
            let (wrote, matched) = rayon::join(
                || pending.take().map_or(Ok(()), |b| writer.write(&b)),
                || bound.match_batch(&batch, summary.points, Some(job.cancel)),
            );
            let (result, matched) = matched.map_err(|e| e.in_file(path))?;
            wrote.map_err(written)?;
            summary.points += batch.num_rows() as u64;
            summary.matched += matched;
            summary.rows_written += result.num_rows() as u64;
            pending = Some(result);
            progress(summary.points, total);
        }
        if let Some(b) = pending {
            writer.write(&b).map_err(written)?;
        }
        writer.close().map_err(written)?;
        file.sync_all().map_err(|e| written(e.into()))?;
        Ok(summary)
    })
}
