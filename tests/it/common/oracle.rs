//! The brute-force oracle of SPEC.md's match: every center tested with SPEC.md's
//! distance (`polymatch::index::distance`, which *is* the definition), the smallest area
//! (numerically, `-0.0 == 0.0`) winning, the lowest row on ties.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, UInt32Type, UInt64Type};
use polymatch::index::{distance, NO_MATCH};
use polymatch::{How, PolygonColumns, SpatialIndex};
use proptest::prelude::*;

/// Rows `j` (with `keep[j]`) whose center is a candidate: `distance < max_dist`, strictly.
pub fn brute_candidates(
    cx: &[f64],
    cy: &[f64],
    keep: &[bool],
    px: f64,
    py: f64,
    max_dist: f64,
) -> Vec<u32> {
    (0..cx.len())
        .filter(|&j| keep[j] && distance(px, py, cx[j], cy[j]) < max_dist)
        .map(|j| j as u32)
        .collect()
}

/// [`brute_candidates`] with their distances, as (row, distance) sorted by row.
pub fn brute_candidates_with_distance(
    cx: &[f64],
    cy: &[f64],
    keep: &[bool],
    px: f64,
    py: f64,
    max_dist: f64,
) -> Vec<(u32, f64)> {
    brute_candidates(cx, cy, keep, px, py, max_dist)
        .into_iter()
        .map(|j| (j, distance(px, py, cx[j as usize], cy[j as usize])))
        .collect()
}

/// The candidate with the smallest area (numeric order: `-0.0 == 0.0`), lowest row on ties.
pub fn brute_best(
    cx: &[f64],
    cy: &[f64],
    area: &[f64],
    keep: &[bool],
    px: f64,
    py: f64,
    max_dist: f64,
) -> Option<u32> {
    best_of(brute_candidates(cx, cy, keep, px, py, max_dist), area)
}

/// SPEC.md's winner among `rows`.
fn best_of(rows: impl IntoIterator<Item = u32>, area: &[f64]) -> Option<u32> {
    rows.into_iter().min_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        area[a].partial_cmp(&area[b]).unwrap().then(a.cmp(&b))
    })
}

/// [`brute_best`] for many points and one finite `max_dist`: the same test of every
/// center that can be a candidate, over a slab of the rows sorted by one coordinate.
/// Centers outside the slab (`|c - p| > (1 + 1e-6) max_dist` on that axis) cannot be
/// candidates: `|fl(p - c)|` then exceeds `max_dist` by far more than the rounding of
/// the subtraction, squares, sum and root (a few units of 2^-53). Points with a non-finite coordinate have no candidate (their distances
/// are NaN or infinite). Tests self-check it against [`brute_best`] on a sample.
pub struct SlabOracle<'a> {
    cx: &'a [f64],
    cy: &'a [f64],
    area: &'a [f64],
    keep: &'a [bool],
    /// Sort along y instead of x (when the centers spread more along y).
    along_y: bool,
    /// (coordinate, row), sorted.
    sorted: Vec<(f64, u32)>,
}

impl<'a> SlabOracle<'a> {
    /// Sort the rows along the axis on which the centers spread most.
    pub fn new(cx: &'a [f64], cy: &'a [f64], area: &'a [f64], keep: &'a [bool]) -> Self {
        let spread = |v: &[f64]| {
            let (lo, hi) = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                    (lo.min(x), hi.max(x))
                });
            hi - lo
        };
        let along_y = spread(cy) > spread(cx);
        let axis = if along_y { cy } else { cx };
        let mut sorted: Vec<(f64, u32)> = axis
            .iter()
            .enumerate()
            .map(|(j, &c)| (c, j as u32))
            .collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        Self {
            cx,
            cy,
            area,
            keep,
            along_y,
            sorted,
        }
    }

    /// SPEC.md's match of `(px, py)` within a finite `max_dist`.
    pub fn best(&self, px: f64, py: f64, max_dist: f64) -> Option<u32> {
        assert!(max_dist.is_finite() && max_dist > 0.0);
        if !(px.is_finite() && py.is_finite()) {
            return None;
        }
        let p = if self.along_y { py } else { px };
        let reach = max_dist * (1.0 + 1e-6);
        let (lo, hi) = (p - reach, p + reach);
        let start = self.sorted.partition_point(|&(c, _)| c < lo);
        let rows = self.sorted[start..]
            .iter()
            .take_while(|&&(c, _)| c <= hi)
            .map(|&(_, j)| j)
            .filter(|&j| {
                let j = j as usize;
                self.keep[j] && distance(px, py, self.cx[j], self.cy[j]) < max_dist
            });
        best_of(rows, self.area)
    }
}

/// The index's best match, as a polygon row.
pub fn index_best(index: &SpatialIndex, px: f64, py: f64, max_dist: f64) -> Option<u32> {
    let rank = index.best_within(px, py, max_dist);
    (rank != NO_MATCH).then(|| index.row_of(rank))
}

/// Every candidate the index reports, as (row, distance), sorted by row.
pub fn index_candidates(index: &SpatialIndex, px: f64, py: f64, max_dist: f64) -> Vec<(u32, f64)> {
    let mut out = Vec::new();
    index.for_each_within(px, py, max_dist, |rank, d| {
        out.push((index.row_of(rank), d))
    });
    out.sort_by_key(|&(row, _)| row);
    out
}

/// The `polygon_index` column of a result, nulls as `None`.
pub fn polygon_rows(batch: &RecordBatch) -> Vec<Option<u32>> {
    batch
        .column(1)
        .as_primitive::<UInt32Type>()
        .iter()
        .collect()
}

/// Every (how, all_candidates) mode of `match_points`.
pub const MODES: [(How, bool); 4] = [
    (How::Inner, false),
    (How::Left, false),
    (How::Inner, true),
    (How::Left, true),
];

/// Polygons (one ring each) and points for one match test.
#[derive(Debug, Clone)]
pub struct MatchCase {
    /// One ring per polygon row.
    pub rings: Vec<Vec<(f64, f64)>>,
    /// Point x coordinates.
    pub px: Vec<f64>,
    /// Point y coordinates.
    pub py: Vec<f64>,
    /// False for a null point.
    pub point_valid: Vec<bool>,
    /// The match distance.
    pub max_dist: f64,
}

/// Check a result of `match_points(.., first_point = 1000, ..)` in mode
/// (`how`, `all_candidates`) against the oracle over the polygon columns: rows, their
/// order, and the bits of every distance and area.
pub fn check_against_oracle(
    batch: &RecordBatch,
    polygons: &PolygonColumns,
    case: &MatchCase,
    how: How,
    all_candidates: bool,
) -> Result<(), TestCaseError> {
    let (cx, cy, area) = (polygons.center_x(), polygons.center_y(), polygons.area());
    let keep: Vec<bool> = (0..polygons.len())
        .map(|j| polygons.matchable().is_valid(j))
        .collect();
    // Expected rows: (point_index, Some(polygon row) or None).
    let mut want: Vec<(u64, Option<u32>)> = Vec::new();
    for i in 0..case.px.len() {
        let (px, py) = (case.px[i], case.py[i]);
        let rows = if !case.point_valid[i] {
            vec![]
        } else if all_candidates {
            brute_candidates(cx, cy, &keep, px, py, case.max_dist)
        } else {
            brute_best(cx, cy, area, &keep, px, py, case.max_dist)
                .into_iter()
                .collect()
        };
        if rows.is_empty() && how == How::Left {
            want.push((1000 + i as u64, None));
        }
        want.extend(rows.into_iter().map(|j| (1000 + i as u64, Some(j))));
    }
    prop_assert_eq!(batch.num_rows(), want.len());
    let point_index = batch.column(0).as_primitive::<UInt64Type>();
    let polygon = batch.column(1).as_primitive::<UInt32Type>();
    let dist = batch.column(2).as_primitive::<Float64Type>();
    let areas = batch.column(3).as_primitive::<Float64Type>();
    prop_assert_eq!(point_index.null_count(), 0);
    for (k, &(p, row)) in want.iter().enumerate() {
        prop_assert_eq!(point_index.value(k), p);
        match row {
            None => {
                prop_assert!(polygon.is_null(k) && dist.is_null(k) && areas.is_null(k));
            }
            Some(j) => {
                let i = (p - 1000) as usize;
                let j = j as usize;
                prop_assert!(polygon.is_valid(k));
                prop_assert_eq!(polygon.value(k) as usize, j);
                let d = distance(case.px[i], case.py[i], cx[j], cy[j]);
                prop_assert_eq!(dist.value(k).to_bits(), d.to_bits());
                prop_assert_eq!(areas.value(k).to_bits(), area[j].to_bits());
            }
        }
    }
    Ok(())
}
