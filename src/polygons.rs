//! The polygon columns: flat x/y coordinates, part/ring offsets, and the derived
//! `center_x`, `center_y`, `area` columns, computed once when the set is built.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, LargeListArray, RecordBatch, StructArray};
use arrow::buffer::{BooleanBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Fields, Schema};
use rayon::prelude::*;

use crate::error::{PolymatchError, Result};
use crate::geometry::{open_len, vertex_bounds, PolygonAccumulator};
use crate::sphere::{center_area, check_lon_lat, Edges, Metric};

/// Rows per rayon task when deriving centers and areas.
const DERIVE_CHUNK: usize = 2048;

/// Polygons reduced to what matching by center needs: exact centers and areas (SPEC.md)
/// and which rows can match, without their coordinates. What a polygon file streamed
/// for a match, or a table of precomputed centers, is read into.
#[derive(Debug, Clone, Default)]
pub struct PolygonCenters {
    /// Center x, one per polygon row.
    pub x: ScalarBuffer<f64>,
    /// Center y.
    pub y: ScalarBuffer<f64>,
    /// Area.
    pub area: ScalarBuffer<f64>,
    /// Whether each row can match (not null, not EMPTY, finite center and area).
    pub matchable: Vec<bool>,
    /// What the centers and areas were measured in.
    pub metric: Metric,
}

/// A set of polygons as structure-of-arrays columns.
///
/// Layout (GeoArrow's multipolygon, with separated coordinates): polygon `i` has parts
/// `geom_offsets[i]..geom_offsets[i + 1]`, part `j` has rings
/// `part_offsets[j]..part_offsets[j + 1]` (the first is the exterior, the rest holes),
/// ring `k` has vertices `ring_offsets[k]..ring_offsets[k + 1]` of `x` and `y`.
/// A plain polygon is a multipolygon of one part.
///
/// Rows that are null, or have no vertex at all (an EMPTY geometry), are kept (row numbers
/// never shift) but are not *matchable*: their center and area are null.
#[derive(Debug, Clone)]
pub struct PolygonColumns {
    x: ScalarBuffer<f64>,
    y: ScalarBuffer<f64>,
    geom_offsets: OffsetBuffer<i64>,
    part_offsets: OffsetBuffer<i64>,
    ring_offsets: OffsetBuffer<i64>,
    nulls: Option<NullBuffer>,
    center_x: ScalarBuffer<f64>,
    center_y: ScalarBuffer<f64>,
    area: ScalarBuffer<f64>,
    matchable: NullBuffer,
    metric: Metric,
    edges: Edges,
}

/// Build an [`OffsetBuffer`] from `values`, checking what `OffsetBuffer::new` would
/// otherwise panic on.
pub fn checked_offsets(values: Vec<i64>, what: &str) -> Result<OffsetBuffer<i64>> {
    if values.is_empty() {
        return Err(PolymatchError::InvalidLayout(format!(
            "{what} offsets are empty (they need one more entry than rows)"
        )));
    }
    if values[0] < 0 {
        return Err(PolymatchError::InvalidLayout(format!(
            "{what} offsets start at {}, below 0",
            values[0]
        )));
    }
    if let Some(i) = values.windows(2).position(|w| w[1] < w[0]) {
        return Err(PolymatchError::InvalidLayout(format!(
            "{what} offsets decrease at position {}: {} then {}",
            i + 1,
            values[i],
            values[i + 1]
        )));
    }
    Ok(OffsetBuffer::new(ScalarBuffer::from(values)))
}

/// `0, 1, ..., n`: one child per row.
fn identity_offsets(n: usize) -> OffsetBuffer<i64> {
    OffsetBuffer::new(ScalarBuffer::from((0..=n as i64).collect::<Vec<_>>()))
}

impl PolygonColumns {
    /// Build from the full multipolygon layout (see the type's docs) and compute the
    /// derived columns.
    ///
    /// # Errors
    /// [`PolymatchError::InvalidLayout`] if lengths or offsets do not fit together;
    /// [`PolymatchError::InvalidGeometry`] (with the row) for an empty ring, a non-finite
    /// coordinate, or a center/area that overflows float64.
    ///
    /// # Implementation
    /// O(coordinates), parallel over rows; the coordinate buffers are not copied.
    pub fn try_new(
        x: ScalarBuffer<f64>,
        y: ScalarBuffer<f64>,
        geom_offsets: OffsetBuffer<i64>,
        part_offsets: OffsetBuffer<i64>,
        ring_offsets: OffsetBuffer<i64>,
        nulls: Option<NullBuffer>,
    ) -> Result<Self> {
        check(
            &x,
            &y,
            &geom_offsets,
            &part_offsets,
            &ring_offsets,
            nulls.as_ref(),
        )?;
        let rows = geom_offsets.len() - 1;
        let (center_x, center_y, area, ok) = derive_rows(
            rows,
            |row| nulls.as_ref().is_some_and(|n| n.is_null(row)),
            PolygonAccumulator::default,
            |row, acc| {
                derive_row(
                    row,
                    &x,
                    &y,
                    &geom_offsets,
                    &part_offsets,
                    &ring_offsets,
                    acc,
                )
            },
        )?;
        Ok(Self {
            x,
            y,
            geom_offsets,
            part_offsets,
            ring_offsets,
            nulls,
            center_x,
            center_y,
            area,
            matchable: ok,
            metric: Metric::Planar,
            edges: Edges::Planar,
        })
    }

    /// The same polygons with centers and areas measured in `metric`: for
    /// [`Metric::Sphere`], coordinates are longitude/latitude degrees, centers the
    /// normalised mean of the exterior vertices' unit vectors and areas square metres
    /// ([`crate::sphere::center_area`]).
    ///
    /// # Errors
    /// [`PolymatchError::InvalidGeometry`] (with the row) for a latitude outside
    /// `[-90, 90]` or a longitude outside `[-180, 360]`, or vertices with no mean
    /// direction; only [`Metric::Sphere`] can be asked of planar polygons.
    pub fn with_metric(self, metric: Metric) -> Result<Self> {
        self.edges.check(metric)?;
        if metric == self.metric {
            return Ok(self);
        }
        if metric == Metric::Planar {
            return Err(PolymatchError::InvalidArgument(
                "these polygons were measured on the sphere; build them again for planar".into(),
            ));
        }
        let (center_x, center_y, area, ok) = derive_rows(
            self.len(),
            |row| !self.matchable.is_valid(row),
            || (),
            |row, _| self.sphere_row(row).map(Some),
        )?;
        Ok(Self {
            center_x,
            center_y,
            area,
            matchable: ok,
            metric,
            ..self
        })
    }

    /// What the centers and areas are measured in.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The same polygons with edges `edges` (as their data states them; set before
    /// [`PolygonColumns::with_metric`], which refuses spherical edges on the plane).
    /// Centers and areas do not change: on the sphere they already take edges as
    /// great-circle arcs (the area) or read only the vertices (the center).
    pub fn with_edges(self, edges: Edges) -> Self {
        Self { edges, ..self }
    }

    /// How the edges run between the vertices: what `contains`, `covers` and
    /// `dwithin` read.
    pub fn edges(&self) -> Edges {
        self.edges
    }

    /// Center and area on the sphere of a matchable row (its rings open).
    fn sphere_row(&self, row: usize) -> Result<(f64, f64, f64)> {
        let (x, y) = (&self.x[..], &self.y[..]);
        let (p0, p1) = (
            self.geom_offsets[row] as usize,
            self.geom_offsets[row + 1] as usize,
        );
        let ring = |k: usize| -> (&[f64], &[f64]) {
            let (c0, c1) = (
                self.ring_offsets[k] as usize,
                self.ring_offsets[k + 1] as usize,
            );
            let n = open_len(&x[c0..c1], &y[c0..c1]);
            (&x[c0..c0 + n], &y[c0..c0 + n])
        };
        for k in self.part_offsets[p0] as usize..self.part_offsets[p1] as usize {
            let (xs, ys) = ring(k);
            if let Some((v, why)) = xs
                .iter()
                .zip(ys)
                .enumerate()
                .find_map(|(v, (&lon, &lat))| check_lon_lat(lon, lat).map(|w| (v, w)))
            {
                return Err(PolymatchError::invalid_geometry(
                    row,
                    format!("vertex {v}: {why}"),
                ));
            }
        }
        let firsts = |part: usize| self.part_offsets[part] as usize;
        let exteriors = (p0..p1).map(|part| ring(firsts(part)));
        let holes = (p0..p1)
            .flat_map(|part| (firsts(part) + 1..self.part_offsets[part + 1] as usize).map(ring));
        center_area(exteriors, holes).map_err(|why| PolymatchError::invalid_geometry(row, why))
    }

    /// Polygons with holes: polygon `i` has rings `polygon_offsets[i]..polygon_offsets[i+1]`
    /// (GeoArrow's `polygon` layout).
    ///
    /// # Errors
    /// As [`PolygonColumns::try_new`].
    pub fn from_polygons(
        x: ScalarBuffer<f64>,
        y: ScalarBuffer<f64>,
        polygon_offsets: OffsetBuffer<i64>,
        ring_offsets: OffsetBuffer<i64>,
        nulls: Option<NullBuffer>,
    ) -> Result<Self> {
        let rows = polygon_offsets.len().saturating_sub(1);
        Self::try_new(
            x,
            y,
            identity_offsets(rows),
            polygon_offsets,
            ring_offsets,
            nulls,
        )
    }

    /// One ring per polygon: polygon `i` is the ring `x[offsets[i]..offsets[i+1]]` (the
    /// article's representation, and `PolygonIndex.from_coords`).
    ///
    /// # Errors
    /// As [`PolygonColumns::try_new`].
    pub fn from_rings(
        x: ScalarBuffer<f64>,
        y: ScalarBuffer<f64>,
        ring_offsets: OffsetBuffer<i64>,
        nulls: Option<NullBuffer>,
    ) -> Result<Self> {
        let rows = ring_offsets.len().saturating_sub(1);
        Self::try_new(
            x,
            y,
            identity_offsets(rows),
            identity_offsets(rows),
            ring_offsets,
            nulls,
        )
    }

    /// Number of polygon rows (null and empty rows included).
    pub fn len(&self) -> usize {
        self.center_x.len()
    }

    /// True if there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Flat x coordinates.
    pub fn x(&self) -> &ScalarBuffer<f64> {
        &self.x
    }

    /// Flat y coordinates.
    pub fn y(&self) -> &ScalarBuffer<f64> {
        &self.y
    }

    /// The closed bounds `[xmin, ymin, xmax, ymax]` of each row's vertices (NaN for a
    /// row that is not matchable).
    pub fn bounds(&self) -> Vec<[f64; 4]> {
        let (x, y) = (self.x.as_ref(), self.y.as_ref());
        (0..self.len())
            .into_par_iter()
            .with_min_len(DERIVE_CHUNK)
            .map(|row| {
                if !self.matchable.is_valid(row) {
                    return [f64::NAN; 4];
                }
                let (lo, hi) = self.vertices_of(row);
                vertex_bounds(x, y, lo, hi)
            })
            .collect()
    }

    /// The vertices of row `row` (all its parts and rings): `lo..hi` of [`Self::x`] and
    /// [`Self::y`].
    pub fn vertices_of(&self, row: usize) -> (usize, usize) {
        let parts = self.geom_offsets[row] as usize..self.geom_offsets[row + 1] as usize;
        let rings = self.part_offsets[parts.start] as usize..self.part_offsets[parts.end] as usize;
        (
            self.ring_offsets[rings.start] as usize,
            self.ring_offsets[rings.end] as usize,
        )
    }

    /// Which rows are null (`None`: none is).
    pub fn nulls(&self) -> Option<&NullBuffer> {
        self.nulls.as_ref()
    }

    /// Row `i` has parts `geom_offsets[i]..geom_offsets[i + 1]`.
    pub fn geom_offsets(&self) -> &OffsetBuffer<i64> {
        &self.geom_offsets
    }

    /// Part `j` has rings `part_offsets[j]..part_offsets[j + 1]` (the first the shell).
    pub fn part_offsets(&self) -> &OffsetBuffer<i64> {
        &self.part_offsets
    }

    /// Ring `k` has vertices `ring_offsets[k]..ring_offsets[k + 1]`.
    pub fn ring_offsets(&self) -> &OffsetBuffer<i64> {
        &self.ring_offsets
    }

    /// Vertex mean of the exterior rings, per row (NaN where not matchable).
    pub fn center_x(&self) -> &ScalarBuffer<f64> {
        &self.center_x
    }

    /// See [`PolygonColumns::center_x`].
    pub fn center_y(&self) -> &ScalarBuffer<f64> {
        &self.center_y
    }

    /// Exact shoelace area, correctly rounded, per row (NaN where not matchable).
    pub fn area(&self) -> &ScalarBuffer<f64> {
        &self.area
    }

    /// Which rows can match (non-null and non-empty).
    pub fn matchable(&self) -> &NullBuffer {
        &self.matchable
    }

    /// The geometry as a GeoArrow `multipolygon` array (separated coordinates,
    /// `LargeList` offsets). No copy of the coordinates.
    pub fn geometry_array(&self) -> LargeListArray {
        let coord_fields = Fields::from(vec![
            Field::new("x", DataType::Float64, false),
            Field::new("y", DataType::Float64, false),
        ]);
        let coords = StructArray::new(
            coord_fields,
            vec![
                Arc::new(Float64Array::new(self.x.clone(), None)) as ArrayRef,
                Arc::new(Float64Array::new(self.y.clone(), None)),
            ],
            None,
        );
        let ring_field = Arc::new(Field::new("vertices", coords.data_type().clone(), false));
        let rings = LargeListArray::new(
            ring_field,
            self.ring_offsets.clone(),
            Arc::new(coords),
            None,
        );
        let part_field = Arc::new(Field::new("rings", rings.data_type().clone(), false));
        let parts =
            LargeListArray::new(part_field, self.part_offsets.clone(), Arc::new(rings), None);
        let geom_field = Arc::new(Field::new("polygons", parts.data_type().clone(), false));
        LargeListArray::new(
            geom_field,
            self.geom_offsets.clone(),
            Arc::new(parts),
            self.nulls.clone(),
        )
    }

    /// The polygon columns as a record batch: `geometry` (GeoArrow multipolygon),
    /// `center_x`, `center_y`, `area` (null where the row is not matchable).
    ///
    /// The geometry has `List` offsets (GeoArrow's usual layout, which every reader takes,
    /// geoarrow-pyarrow's extension types included) where they fit in `i32`, `LargeList`
    /// otherwise; converting copies the offsets, not the coordinates.
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        let large: ArrayRef = Arc::new(self.geometry_array());
        let geometry = cast(&large, &small_lists(large.data_type())).unwrap_or(large);
        let mut columns: Vec<ArrayRef> = vec![geometry];
        let mut fields = vec![geometry_field(columns[0].data_type().clone(), self.edges)];
        for (name, values) in [
            ("center_x", &self.center_x),
            ("center_y", &self.center_y),
            ("area", &self.area),
        ] {
            columns.push(Arc::new(Float64Array::new(
                values.clone(),
                Some(self.matchable.clone()),
            )));
            fields.push(Field::new(name, DataType::Float64, true));
        }
        Ok(RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns,
        )?)
    }
}

/// `data_type` with every `LargeList` made a `List`.
fn small_lists(data_type: &DataType) -> DataType {
    match data_type {
        DataType::LargeList(f) => DataType::List(Arc::new(Field::new(
            f.name(),
            small_lists(f.data_type()),
            f.is_nullable(),
        ))),
        other => other.clone(),
    }
}

/// The `geometry` field with GeoArrow extension metadata (stating spherical edges).
fn geometry_field(data_type: DataType, edges: Edges) -> Field {
    let meta = match edges {
        Edges::Planar => "{}",
        Edges::Spherical => r#"{"edges":"spherical"}"#,
    };
    Field::new("geometry", data_type, true).with_metadata(
        [
            (
                "ARROW:extension:name".to_string(),
                "geoarrow.multipolygon".to_string(),
            ),
            ("ARROW:extension:metadata".to_string(), meta.to_string()),
        ]
        .into(),
    )
}

fn check(
    x: &ScalarBuffer<f64>,
    y: &ScalarBuffer<f64>,
    geom_offsets: &OffsetBuffer<i64>,
    part_offsets: &OffsetBuffer<i64>,
    ring_offsets: &OffsetBuffer<i64>,
    nulls: Option<&NullBuffer>,
) -> Result<()> {
    if x.len() != y.len() {
        return Err(PolymatchError::InvalidLayout(format!(
            "x has {} values but y has {}",
            x.len(),
            y.len()
        )));
    }
    let fits = |offsets: &OffsetBuffer<i64>, child_len: usize, what: &str, child: &str| {
        let last = *offsets.last().unwrap_or(&0);
        // `<=`, not `==`: sliced arrays may not use their whole child.
        if last as u64 > child_len as u64 {
            Err(PolymatchError::InvalidLayout(format!(
                "{what} offsets end at {last}, beyond the {child_len} {child}"
            )))
        } else {
            Ok(())
        }
    };
    fits(geom_offsets, part_offsets.len() - 1, "polygon", "parts")?;
    fits(part_offsets, ring_offsets.len() - 1, "part", "rings")?;
    fits(ring_offsets, x.len(), "ring", "coordinates")?;
    let rows = geom_offsets.len() - 1;
    if rows >= u32::MAX as usize {
        return Err(PolymatchError::InvalidLayout(format!(
            "{rows} polygons: at most {} are supported",
            u32::MAX - 1
        )));
    }
    if let Some(n) = nulls {
        if n.len() != rows {
            return Err(PolymatchError::InvalidLayout(format!(
                "validity has {} entries for {rows} polygons",
                n.len()
            )));
        }
    }
    Ok(())
}

/// Center and area of one row; `None` for an EMPTY geometry (no vertex at all).
fn derive_row(
    row: usize,
    x: &[f64],
    y: &[f64],
    geom_offsets: &OffsetBuffer<i64>,
    part_offsets: &OffsetBuffer<i64>,
    ring_offsets: &OffsetBuffer<i64>,
    acc: &mut PolygonAccumulator,
) -> Result<Option<(f64, f64, f64)>> {
    acc.reset();
    let (p0, p1) = (geom_offsets[row] as usize, geom_offsets[row + 1] as usize);
    // The common case, one part with one ring: the fast, filtered arithmetic.
    if p1 == p0 + 1 && part_offsets[p0 + 1] == part_offsets[p0] + 1 {
        let ring = part_offsets[p0] as usize;
        let (c0, c1) = (ring_offsets[ring] as usize, ring_offsets[ring + 1] as usize);
        let (xs, ys) = (&x[c0..c1], &y[c0..c1]);
        check_ring(row, 0, 0, xs, ys)?;
        let n = open_len(xs, ys);
        let (cx, cy, area) = acc.single_ring(&xs[..n], &ys[..n]);
        return finite(row, cx, cy, area);
    }
    let mut vertices = 0usize;
    for part in p0..p1 {
        let (r0, r1) = (part_offsets[part] as usize, part_offsets[part + 1] as usize);
        for ring in r0..r1 {
            let (c0, c1) = (ring_offsets[ring] as usize, ring_offsets[ring + 1] as usize);
            let (xs, ys) = (&x[c0..c1], &y[c0..c1]);
            check_ring(row, ring - r0, part - p0, xs, ys)?;
            let n = open_len(xs, ys);
            vertices += n;
            if ring == r0 {
                acc.add_exterior(&xs[..n], &ys[..n]);
            } else {
                acc.add_hole(&xs[..n], &ys[..n]);
            }
        }
    }
    if vertices == 0 {
        return Ok(None);
    }
    let (cx, cy, area) = acc.finish();
    finite(row, cx, cy, area)
}

/// The derived columns of `rows` rows, in parallel chunks: `derive(row, scratch)` gives
/// a row's `(center_x, center_y, area)` (`None`: not matchable), rows with `skip(row)`
/// are left unmatchable; the first error in row order wins.
#[allow(clippy::type_complexity)]
fn derive_rows<S>(
    rows: usize,
    skip: impl Fn(usize) -> bool + Sync,
    scratch: impl Fn() -> S + Sync,
    derive: impl Fn(usize, &mut S) -> Result<Option<(f64, f64, f64)>> + Sync,
) -> Result<(
    ScalarBuffer<f64>,
    ScalarBuffer<f64>,
    ScalarBuffer<f64>,
    NullBuffer,
)> {
    let mut center_x = vec![f64::NAN; rows];
    let mut center_y = vec![f64::NAN; rows];
    let mut area = vec![f64::NAN; rows];
    let mut ok = vec![false; rows];
    let first_error = center_x
        .par_chunks_mut(DERIVE_CHUNK)
        .zip(center_y.par_chunks_mut(DERIVE_CHUNK))
        .zip(area.par_chunks_mut(DERIVE_CHUNK))
        .zip(ok.par_chunks_mut(DERIVE_CHUNK))
        .enumerate()
        .filter_map(|(chunk, (((cx, cy), ar), ok))| {
            let mut s = scratch();
            let start = chunk * DERIVE_CHUNK;
            for i in 0..cx.len() {
                let row = start + i;
                if skip(row) {
                    continue;
                }
                match derive(row, &mut s) {
                    Ok(Some((a, b, c))) => (cx[i], cy[i], ar[i], ok[i]) = (a, b, c, true),
                    Ok(None) => {}
                    Err(e) => return Some((row, e)),
                }
            }
            None
        })
        .min_by_key(|(row, _)| *row);
    if let Some((_, e)) = first_error {
        return Err(e);
    }
    Ok((
        ScalarBuffer::from(center_x),
        ScalarBuffer::from(center_y),
        ScalarBuffer::from(area),
        NullBuffer::new(BooleanBuffer::from(ok)),
    ))
}

/// Check one ring on its own (the article's polygon: one ring, open or closed) and give
/// its center and area, exactly as a one-ring row of [`PolygonColumns`] gets them. Used by
/// the `compat` module, so its checks and messages are these.
///
/// # Errors
/// [`PolymatchError::InvalidGeometry`] (row 0) if `xs` and `ys` differ in length, the
/// ring is empty, a coordinate is not finite, or the area overflows.
pub fn ring_center_area(xs: &[f64], ys: &[f64]) -> Result<(f64, f64, f64)> {
    if xs.len() != ys.len() {
        return Err(PolymatchError::invalid_geometry(
            0,
            format!("x has {} values but y has {}", xs.len(), ys.len()),
        ));
    }
    check_ring(0, 0, 0, xs, ys)?;
    let n = open_len(xs, ys);
    let (cx, cy, area) = PolygonAccumulator::default().single_ring(&xs[..n], &ys[..n]);
    Ok(finite(0, cx, cy, area)?.unwrap_or((cx, cy, area)))
}

/// A ring needs a vertex, and every coordinate must be finite.
fn check_ring(row: usize, ring: usize, part: usize, xs: &[f64], ys: &[f64]) -> Result<()> {
    if xs.is_empty() {
        return Err(PolymatchError::invalid_geometry(
            row,
            format!("ring {ring} of part {part} is empty (a ring needs at least 1 vertex)"),
        ));
    }
    if let Some(v) = xs
        .iter()
        .zip(ys)
        .position(|(a, b)| !a.is_finite() || !b.is_finite())
    {
        return Err(PolymatchError::invalid_geometry(
            row,
            format!(
                "vertex {v} of ring {ring} of part {part} is not finite ({}, {})",
                xs[v], ys[v]
            ),
        ));
    }
    Ok(())
}

fn finite(row: usize, cx: f64, cy: f64, area: f64) -> Result<Option<(f64, f64, f64)>> {
    // The center is a mean of finite values, so only the area can overflow.
    if !(cx.is_finite() && cy.is_finite() && area.is_finite()) {
        return Err(PolymatchError::invalid_geometry(
            row,
            "its area overflows float64 (larger than 1.8e308: coordinates too large)",
        ));
    }
    Ok(Some((cx, cy, area)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(v: &[f64]) -> ScalarBuffer<f64> {
        ScalarBuffer::from(v.to_vec())
    }

    #[test]
    fn rings_with_null_and_closing_vertex() {
        let x = buf(&[0.0, 2.0, 2.0, 0.0, 0.0, 9.0, 10.0, 10.0]);
        let y = buf(&[0.0, 0.0, 2.0, 2.0, 0.0, 9.0, 9.0, 10.0]);
        let offsets = checked_offsets(vec![0, 5, 5, 8], "ring").unwrap();
        // row 1 would be an empty ring, but it is null: skipped.
        let nulls = NullBuffer::from(vec![true, false, true]);
        let p = PolygonColumns::from_rings(x, y, offsets, Some(nulls)).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(
            (p.center_x()[0], p.center_y()[0], p.area()[0]),
            (1.0, 1.0, 4.0)
        );
        assert!(!p.matchable().is_valid(1));
        assert_eq!(p.area()[2], 0.5);
        let batch = p.to_record_batch().unwrap();
        assert_eq!(batch.num_rows(), 3);
        assert_eq!(batch.column(3).null_count(), 1);
        // GeoArrow's usual (i32) offsets where they fit
        assert!(matches!(batch.column(0).data_type(), DataType::List(_)));
    }

    #[test]
    fn errors_name_the_row() {
        let x = buf(&[0.0, 1.0, f64::NAN]);
        let y = buf(&[0.0, 1.0, 1.0]);
        let offsets = checked_offsets(vec![0, 1, 1, 3], "ring").unwrap();
        let err = PolygonColumns::from_rings(x.clone(), y.clone(), offsets, None).unwrap_err();
        assert!(
            matches!(err, PolymatchError::InvalidGeometry { row: 1, .. }),
            "{err}"
        );
        let offsets = checked_offsets(vec![0, 1, 3], "ring").unwrap();
        let err = PolygonColumns::from_rings(x, y, offsets, None).unwrap_err();
        assert!(
            matches!(err, PolymatchError::InvalidGeometry { row: 1, .. }),
            "{err}"
        );
        assert!(checked_offsets(vec![0, 2, 1], "ring").is_err());
        let offsets = checked_offsets(vec![0, 4], "ring").unwrap();
        assert!(matches!(
            PolygonColumns::from_rings(buf(&[0.0]), buf(&[0.0]), offsets, None),
            Err(PolymatchError::InvalidLayout(_))
        ));
    }

    #[test]
    fn sliced_offsets_and_multipolygon_parts() {
        // Two unit squares as one multipolygon: center is the mean of 8 vertices, area 2.
        let x = buf(&[0.0, 1.0, 1.0, 0.0, 3.0, 4.0, 4.0, 3.0]);
        let y = buf(&[0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
        let geom = checked_offsets(vec![0, 2], "polygon").unwrap();
        let parts = checked_offsets(vec![0, 1, 2], "part").unwrap();
        let rings = checked_offsets(vec![0, 4, 8], "ring").unwrap();
        let p = PolygonColumns::try_new(x.clone(), y.clone(), geom, parts, rings, None).unwrap();
        assert_eq!(
            (p.center_x()[0], p.center_y()[0], p.area()[0]),
            (2.0, 0.5, 2.0)
        );
        // A slice of a ring list: offsets start at 4.
        let rings = checked_offsets(vec![4, 8], "ring").unwrap();
        let p = PolygonColumns::from_rings(x, y, rings, None).unwrap();
        assert_eq!(p.center_x()[0], 3.5);
    }
}
