//! The one Matcher: an index, the match options, the columns to keep and the CRS rules,
//! bound once to a points schema and then run batch by batch. Every entry point (the
//! Parquet pipeline and the CLI, `PolygonIndex.match` in Python, Dask) matches through
//! it, so they resolve the same columns, refuse the same CRS mismatches and produce the
//! same output schema.
//!
//! Binding computes the output schema before any row is read: an empty input (no
//! batches at all) still gets every column, and kept columns whose names collide are
//! renamed the same way everywhere (`_left` for point columns, `_right` for polygon
//! columns, pandas' suffix convention as geopandas' `sjoin` uses it).

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array, UInt64Array};
use arrow::compute::take;
use arrow::datatypes::{Field, Schema, SchemaRef, UInt64Type};
use serde_json::Value;

use crate::error::{PolymatchError, Result};
use crate::index::SpatialIndex;
use crate::io::arrow_ingest::points_from_columns;
use crate::io::crs::{common_crs, Crs};
use crate::io::schema::{
    column_names, describe_column, is_geometry_field, resolve_geometry, GeoParquetMetadata,
    GeometryColumns, Request, Role,
};
use crate::io::{Keep, PointSpec};
use crate::matching::{match_points, match_shapes, result_schema, MatchOptions, PointSlices};
use crate::ranking::Rankings;
use crate::shape::{Outlines, ShapeIndex};

/// Suffix of a kept point column whose name another output column has.
pub const POINT_SUFFIX: &str = "_left";
/// Suffix of a kept polygon column whose name another output column has.
pub const POLYGON_SUFFIX: &str = "_right";

/// The polygon side of a match: the index, its attribute columns and its CRS.
#[derive(Debug, Clone, Copy)]
pub struct PolygonSide<'a> {
    /// The index, and the orders prepared from it (the rank rule picks one).
    pub index: &'a Rankings,
    /// Attribute columns, one row per polygon (for `keep.polygons`). Its schema's `geo`
    /// metadata and GeoArrow field metadata describe kept polygon geometry columns.
    pub attributes: Option<&'a RecordBatch>,
    /// The CRS the polygons were stated in (`None`: not stated).
    pub crs: Option<&'a Crs>,
    /// The polygons' outlines, which the shape rules (`contains`, `covers`) need
    /// (`None`: polygons known by their centers only, e.g. read from bytes without
    /// outlines).
    pub outlines: Option<&'a Arc<Outlines>>,
}

/// What to match and what to carry along; bind it to a points schema with [`Matcher::bind`].
#[derive(Debug, Clone)]
pub struct Matcher<'a> {
    /// The polygons.
    pub polygons: PolygonSide<'a>,
    /// Match options.
    pub options: MatchOptions,
    /// Columns to carry into the result.
    pub keep: Keep<'a>,
    /// Match even if the points and polygons state different CRS.
    pub allow_crs_mismatch: bool,
}

/// A [`Matcher`] bound to one points schema: the resolved point columns, the output
/// schema and the CRS of the result.
#[derive(Debug, Clone)]
pub struct BoundMatcher<'a> {
    matcher: Matcher<'a>,
    index: Arc<SpatialIndex>,
    /// The shape index, for a shape rule.
    shapes: Option<Arc<ShapeIndex>>,
    columns: GeometryColumns,
    schema: SchemaRef,
    crs: Option<Crs>,
}

impl<'a> Matcher<'a> {
    /// Resolve the point columns of `points` (the rule of [`resolve_geometry`]), check
    /// the CRS of both sides, pick the index ranked by the options' rule (prepared and
    /// cached on first use, see [`Rankings::get`]), and compute the output schema.
    ///
    /// # Errors
    /// Invalid options, resolution errors, a CRS mismatch
    /// ([`PolymatchError::Metadata`]), a kept column that does not exist
    /// ([`PolymatchError::MissingColumn`]) or that is named twice
    /// ([`PolymatchError::InvalidArgument`]).
    pub fn bind(&self, points: &Schema, spec: PointSpec<'_>) -> Result<BoundMatcher<'a>> {
        self.options.validate()?;
        let request = Request {
            geometry: spec.geometry,
            x: spec.x,
            y: spec.y,
        };
        let resolved = resolve_geometry(points, Role::Points, request)?;
        let crs = common_crs(
            self.polygons.crs,
            resolved.crs.as_ref(),
            self.allow_crs_mismatch,
        )?;
        let schema = self.output_schema(points, crs.as_ref())?;
        let index = self.ranked_index()?;
        let shapes = self.shape_index()?;
        Ok(BoundMatcher {
            matcher: self.clone(),
            index,
            shapes,
            columns: resolved.columns,
            schema,
            crs,
        })
    }

    /// The index ranked by the options' rule (prepared and cached on first use, see
    /// [`Rankings::get`]). [`Matcher::bind`] calls it; a caller that reads the polygons
    /// from a file calls it first, so that a bad rank column is reported against the
    /// polygons, not the points.
    ///
    /// # Errors
    /// A rank column missing from the polygons or not numeric.
    pub fn ranked_index(&self) -> Result<Arc<SpatialIndex>> {
        Ok(match self.options.index_order() {
            Some(order) => self.polygons.index.get(&order, self.polygons.attributes)?,
            None => self.polygons.index.base().clone(),
        })
    }

    /// The shape index for a shape rule (ranked as the options ask, built on first use
    /// and cached, see [`Rankings::shapes`]), `None` for the center rule.
    ///
    /// # Errors
    /// [`PolymatchError::InvalidArgument`] for a shape rule on polygons without
    /// outlines; as [`Matcher::ranked_index`].
    pub fn shape_index(&self) -> Result<Option<Arc<ShapeIndex>>> {
        if self.options.predicate.shape_rule().is_none() {
            return Ok(None);
        }
        let outlines = self.polygons.outlines.ok_or_else(|| {
            PolymatchError::InvalidArgument(format!(
                "predicate {:?} tests the polygons' outlines, and these polygons have none \
                 (built from centers, or read from index bytes without them: \
                 to_bytes(outlines=False), or bytes of index format 3 or older, which \
                 polymatch wrote before it kept the outlines): build the index from the \
                 polygons themselves, or re-save it with to_bytes() of this version to keep \
                 the outlines",
                self.options.predicate.as_str()
            ))
        })?;
        let order = self.options.index_order();
        self.polygons
            .index
            .shapes(order.as_ref(), self.polygons.attributes, outlines)
            .map(Some)
    }

    fn output_schema(&self, points: &Schema, crs: Option<&Crs>) -> Result<SchemaRef> {
        let base = result_schema(&self.options);
        let keep = self.keep;
        for (names, side) in [(keep.points, "points"), (keep.polygons, "polygons")] {
            let mut seen = std::collections::HashSet::new();
            if let Some(d) = names.iter().find(|n| !seen.insert(n.as_str())) {
                return Err(PolymatchError::InvalidArgument(format!(
                    "column {d:?} is kept twice from the {side}"
                )));
            }
        }
        let attributes = match (keep.polygons.is_empty(), self.polygons.attributes) {
            (true, _) => None,
            (false, Some(a)) => Some(a.schema()),
            (false, None) => return Err(PolymatchError::MissingColumn {
                name: keep.polygons.join(", "),
                hint:
                    " (these polygons have no attribute columns: built from coordinates or bytes)"
                        .into(),
            }),
        };
        let result_names: Vec<&str> = base.fields().iter().map(|f| f.name().as_str()).collect();
        let mut fields: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
        // (output name, GeoParquet description) of every kept geometry column
        let mut geometry: Vec<(String, Value)> = Vec::new();
        // Kept columns of one side: renamed with `suffix` where another output column has
        // the name, described in `geometry` where they are geometry columns.
        let mut keep_side = |schema: &Schema,
                             names: &[String],
                             others: &[String],
                             suffix: &str,
                             from: &str|
         -> Result<()> {
            let geo = GeoParquetMetadata::from_schema(schema)?;
            for name in names {
                let f = schema
                    .field_with_name(name)
                    .map(|f| f.clone().with_nullable(true))
                    .map_err(|_| PolymatchError::MissingColumn {
                        name: name.to_string(),
                        hint: format!(
                            " (asked to keep it from the {from}; columns: {})",
                            column_names(schema)
                        ),
                    })?;
                let taken = result_names.contains(&name.as_str()) || others.contains(name);
                let out = if taken {
                    format!("{name}{suffix}")
                } else {
                    name.clone()
                };
                if is_geometry_field(&f, geo.as_ref()) {
                    let src = geo.as_ref().and_then(|g| g.columns.get(name));
                    geometry.push((out.clone(), describe_column(&f, src, crs)));
                }
                fields.push(f.with_name(out));
            }
            Ok(())
        };
        keep_side(points, keep.points, keep.polygons, POINT_SUFFIX, "points")?;
        if let Some(attrs) = &attributes {
            keep_side(
                attrs,
                keep.polygons,
                keep.points,
                POLYGON_SUFFIX,
                "polygons",
            )?;
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = fields.iter().find(|f| !seen.insert(f.name().clone())) {
            return Err(PolymatchError::InvalidArgument(format!(
                "kept column {:?} collides with another output column even after adding the suffix \
                 {POINT_SUFFIX:?}/{POLYGON_SUFFIX:?}; rename it before matching",
                dup.name()
            )));
        }
        let mut metadata = HashMap::new();
        if let Some((primary, _)) = geometry.first() {
            let columns: serde_json::Map<String, Value> = geometry.iter().cloned().collect();
            let geo = serde_json::json!({
                "version": "1.1.0",
                "primary_column": primary,
                "columns": columns,
            });
            metadata.insert("geo".to_string(), geo.to_string());
        }
        Ok(Arc::new(Schema::new_with_metadata(fields, metadata)))
    }
}

impl BoundMatcher<'_> {
    /// The output schema (result columns, kept columns, `geo` metadata describing kept
    /// geometry columns).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The CRS of the result: the one the inputs state (`None`: neither does).
    pub fn crs(&self) -> Option<&Crs> {
        self.crs.as_ref()
    }

    /// The match options.
    pub fn options(&self) -> &MatchOptions {
        &self.matcher.options
    }

    /// The point columns that were resolved.
    pub fn point_columns(&self) -> &GeometryColumns {
        &self.columns
    }

    /// Every column of the points that matching reads: the resolved point columns, then
    /// the kept ones (for a file reader's projection).
    pub fn columns_to_read(&self) -> Vec<String> {
        let mut out: Vec<String> = self.columns.names().iter().map(|s| s.to_string()).collect();
        for k in self.matcher.keep.points {
            if !out.contains(k) {
                out.push(k.clone());
            }
        }
        out
    }

    /// Match one batch of points whose first row is point `first_point` of the whole
    /// input; returns the result rows (in [`Self::schema`]) and the number of points
    /// that matched.
    ///
    /// # Errors
    /// Ingest errors (rows numbered within the whole input), matching errors,
    /// [`PolymatchError::Cancelled`].
    pub fn match_batch(
        &self,
        batch: &RecordBatch,
        first_point: u64,
        cancel: Option<&AtomicBool>,
    ) -> Result<(RecordBatch, u64)> {
        let m = &self.matcher;
        let cols = points_from_columns(batch, &self.columns)
            .map_err(|e| e.rows_from(first_point as usize))?;
        let slices = PointSlices::new(&cols.x, &cols.y, cols.nulls.as_ref())?;
        let result = match &self.shapes {
            Some(shapes) => match_shapes(shapes, slices, &m.options, first_point, cancel)?,
            None => match_points(&self.index, slices, &m.options, first_point, cancel)?,
        };
        let matched = matched_points(&result, &m.options);
        let mut columns: Vec<ArrayRef> = result.columns().to_vec();
        if !m.keep.points.is_empty() {
            let local: UInt64Array = result
                .column(0)
                .as_primitive::<UInt64Type>()
                .unary(|i| i - first_point);
            for name in m.keep.points {
                let c =
                    batch
                        .column_by_name(name)
                        .ok_or_else(|| PolymatchError::MissingColumn {
                            name: name.clone(),
                            hint: " (asked to keep it from the points)".into(),
                        })?;
                columns.push(take(c.as_ref(), &local, None)?);
            }
        }
        if let (false, Some(attrs)) = (m.keep.polygons.is_empty(), m.polygons.attributes) {
            let rows: &UInt32Array = result.column(1).as_primitive();
            for name in m.keep.polygons {
                let c =
                    attrs
                        .column_by_name(name)
                        .ok_or_else(|| PolymatchError::MissingColumn {
                            name: name.clone(),
                            hint: " (asked to keep it from the polygons)".into(),
                        })?;
                columns.push(take(c.as_ref(), rows, None)?);
            }
        }
        // A kept column's type may differ between batches only if the input's schema does,
        // which a stream's schema rules out; nullability is relaxed in the output schema.
        let out = RecordBatch::try_new(self.schema.clone(), columns)?;
        Ok((out, matched))
    }

    /// Announce the number of points the batches to come hold in all (see
    /// [`SpatialIndex::expect_points`]), so that a streamed job takes the cell lists from
    /// its first batch when it has enough points to make them pay.
    /// Nothing is counted for options that do not use the lists, or for no points.
    pub fn expect_points(&self, points: u64) {
        let options = &self.matcher.options;
        if points == 0 || !options.best_rank_path() {
            return;
        }
        let points = usize::try_from(points).unwrap_or(usize::MAX);
        self.index.expect_points(options.max_dist, points);
    }

    /// Match every batch, in order, numbering points across batches.
    ///
    /// # Errors
    /// As [`Self::match_batch`].
    pub fn match_all(
        &self,
        batches: &[RecordBatch],
        cancel: Option<&AtomicBool>,
    ) -> Result<Vec<RecordBatch>> {
        let mut first = 0u64;
        let mut out = Vec::with_capacity(batches.len());
        for batch in batches {
            out.push(self.match_batch(batch, first, cancel)?.0);
            first += batch.num_rows() as u64;
        }
        Ok(out)
    }
}

/// The polygon columns a match needs besides the geometry: the kept ones, then the rank
/// column (for a reader's projection, e.g. [`crate::io::parquet::read_polygons`]).
pub fn polygon_columns_to_read(keep_polygons: &[String], options: &MatchOptions) -> Vec<String> {
    let mut out = keep_polygons.to_vec();
    if let crate::matching::RankBy::Column(name) = &options.rank_by {
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

/// Points with at least one match in a result (rows are grouped by point).
fn matched_points(result: &RecordBatch, options: &MatchOptions) -> u64 {
    if options.k == 1 && !options.all_candidates {
        // At most one row per point, null where it has no match.
        return (result.num_rows() - result.column(1).null_count()) as u64;
    }
    // Rows come grouped by point, in point order; a point without a match has one row,
    // with a null polygon (a left join). So: the runs of equal point_index among the
    // valid rows.
    let points = result.column(0).as_primitive::<UInt64Type>().values();
    match result.column(1).logical_nulls() {
        None => {
            let steps = points.windows(2).filter(|w| w[0] != w[1]).count();
            (steps + usize::from(!points.is_empty())) as u64
        }
        Some(nulls) => {
            let mut count = 0u64;
            let mut last = None;
            for (i, &p) in points.iter().enumerate() {
                if nulls.is_valid(i) && last != Some(p) {
                    count += 1;
                    last = Some(p);
                }
            }
            count
        }
    }
}
