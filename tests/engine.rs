//! Integration tests of polymatch's public Rust API.
//!
//! - the spatial index against a brute-force oracle of SPEC.md's match (proptest);
//! - `match_points` independent of chunk size and thread count, and equal to the oracle;
//! - derived columns (center, area) against an *exact* rational oracle, on the seed
//!   article's workload and on random polygons (holes, parts, large offsets);
//! - GeoArrow / WKB ingest from hand-built Arrow arrays, and every error variant.
#![allow(clippy::unwrap_used)] // in a test, a panic is a failure with a message

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, FixedSizeListArray, Float64Array, Int32Array,
    LargeBinaryArray, LargeListArray, ListArray, RecordBatch, StringArray, StructArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, Fields, Float64Type, Schema, UInt32Type, UInt64Type};
use polymatch::index::{distance, NO_MATCH};
use polymatch::io::arrow_ingest::polygons_from_array;
use polymatch::io::{points_from_batch, polygons_from_batch, PointSpec};
use polymatch::matching::with_threads;
use polymatch::{
    match_points, How, MatchOptions, PointSlices, PolygonColumns, PolymatchError, SpatialIndex,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// The brute-force oracle of SPEC.md's match.
// ---------------------------------------------------------------------------------------

/// Rows `j` (with `keep[j]`) whose center is a candidate: `distance < max_dist`, strictly.
fn brute_candidates(
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

/// The candidate with the smallest area (numeric order: `-0.0 == 0.0`), lowest row on ties.
fn brute_best(
    cx: &[f64],
    cy: &[f64],
    area: &[f64],
    keep: &[bool],
    px: f64,
    py: f64,
    max_dist: f64,
) -> Option<u32> {
    brute_candidates(cx, cy, keep, px, py, max_dist)
        .into_iter()
        .min_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            area[a].partial_cmp(&area[b]).unwrap().then(a.cmp(&b))
        })
}

fn index_best(index: &SpatialIndex, px: f64, py: f64, max_dist: f64) -> Option<u32> {
    let rank = index.best_within(px, py, max_dist);
    (rank != NO_MATCH).then(|| index.row_of(rank))
}

/// Every candidate the index reports, as (row, distance), sorted by row.
fn index_candidates(index: &SpatialIndex, px: f64, py: f64, max_dist: f64) -> Vec<(u32, f64)> {
    let mut out = Vec::new();
    index.for_each_within(px, py, max_dist, |rank, d| {
        out.push((index.row_of(rank), d))
    });
    out.sort_by_key(|&(row, _)| row);
    out
}

/// Centers, areas and points for one index test.
#[derive(Debug, Clone)]
struct IndexCase {
    cx: Vec<f64>,
    cy: Vec<f64>,
    area: Vec<f64>,
    keep: Vec<bool>,
    points: Vec<(f64, f64)>,
    /// Radii tried for every point, on top of the fixed ones and the point's exact
    /// distances to some centers (the strict `<` boundary).
    radii: Vec<f64>,
}

/// Fixed radii from tiny to infinite.
const FIXED_RADII: [f64; 11] = [
    f64::MIN_POSITIVE,
    1e-9,
    0.25,
    1.0,
    std::f64::consts::SQRT_2,
    2.0,
    10.0,
    60.0,
    1e3,
    1e300,
    f64::INFINITY,
];

/// A point strategy: anywhere, on a center, next to a center, or not finite.
fn points_near(cx: Vec<f64>, cy: Vec<f64>, span: f64) -> impl Strategy<Value = Vec<(f64, f64)>> {
    let n = cx.len();
    let one = (
        0u8..10,
        -span..span,
        -span..span,
        0usize..n.max(1),
        -1e-6..1e-6f64,
    )
        .prop_map(move |(kind, x, y, j, eps)| match kind {
            0 | 1 if n > 0 => (cx[j], cy[j]),
            2 | 3 if n > 0 => (cx[j] + eps, cy[j] - eps),
            4 => (f64::NAN, y),
            5 => (x, f64::INFINITY),
            _ => (x, y),
        });
    prop::collection::vec(one, 1..12)
}

fn radii() -> impl Strategy<Value = Vec<f64>> {
    // 10^u for u in [-12, 4): tiny to larger than the data.
    prop::collection::vec((-12.0..4.0f64).prop_map(|u| 10f64.powf(u)), 0..4)
}

/// Uniform centers, distinct random areas.
fn uniform_case() -> impl Strategy<Value = IndexCase> {
    (0usize..300)
        .prop_flat_map(|n| {
            (
                prop::collection::vec(-100.0..100.0f64, n),
                prop::collection::vec(-100.0..100.0f64, n),
                prop::collection::vec(0.0..1000.0f64, n),
                prop::collection::vec(prop::bool::weighted(0.9), n),
            )
        })
        .prop_flat_map(|(cx, cy, area, keep)| {
            let pts = points_near(cx.clone(), cy.clone(), 120.0);
            (
                Just(IndexCase {
                    cx,
                    cy,
                    area,
                    keep,
                    points: vec![],
                    radii: vec![],
                }),
                pts,
                radii(),
            )
        })
        .prop_map(|(case, points, radii)| IndexCase {
            points,
            radii,
            ..case
        })
}

/// Few distinct centers on an integer grid, many duplicates, few distinct areas:
/// exact ties in both distance and area, and points at exact integer distances.
fn clustered_case() -> impl Strategy<Value = IndexCase> {
    (
        prop::collection::vec((-3i32..=3, -3i32..=3), 1..5),
        1usize..250,
    )
        .prop_flat_map(|(distinct, n)| {
            let k = distinct.len();
            (
                Just(distinct),
                prop::collection::vec(0..k, n),
                prop::collection::vec(prop::sample::select(vec![0.0, 1.0, 2.0, 2.5]), n),
                prop::collection::vec(prop::bool::weighted(0.8), n),
                prop::collection::vec((-6i32..=6, -6i32..=6), 1..10),
                radii(),
            )
        })
        .prop_map(|(distinct, pick, area, keep, pts, radii)| {
            let cx = pick.iter().map(|&i| f64::from(distinct[i].0)).collect();
            let cy = pick.iter().map(|&i| f64::from(distinct[i].1)).collect();
            let points = pts
                .iter()
                .map(|&(x, y)| (f64::from(x) * 0.5, f64::from(y) * 0.5))
                .collect();
            IndexCase {
                cx,
                cy,
                area,
                keep,
                points,
                radii,
            }
        })
}

/// Uniform centers, areas nearly all equal (one value, or its neighbour): the tie rule
/// decides almost every point.
fn equal_area_case() -> impl Strategy<Value = IndexCase> {
    (
        0usize..300,
        prop::sample::select(vec![0.0, 1.0, std::f64::consts::FRAC_PI_4]),
    )
        .prop_flat_map(|(n, a)| {
            let other = f64::from_bits(a.to_bits() + 1);
            (
                prop::collection::vec(0.0..50.0f64, n),
                prop::collection::vec(0.0..50.0f64, n),
                prop::collection::vec(prop::sample::select(vec![a, a, a, other]), n),
                prop::collection::vec(prop::bool::weighted(0.95), n),
            )
        })
        .prop_flat_map(|(cx, cy, area, keep)| {
            let pts = points_near(cx.clone(), cy.clone(), 60.0);
            (
                Just(IndexCase {
                    cx,
                    cy,
                    area,
                    keep,
                    points: vec![],
                    radii: vec![],
                }),
                pts,
                radii(),
            )
        })
        .prop_map(|(case, points, radii)| IndexCase {
            points,
            radii,
            ..case
        })
}

/// The radii tried for one point: fixed, random, and exact distances to a few centers
/// with their float neighbours (so `d == max_dist` is exercised, which must not match).
fn radii_for(case: &IndexCase, px: f64, py: f64) -> Vec<f64> {
    let mut out: Vec<f64> = FIXED_RADII.iter().chain(&case.radii).copied().collect();
    for j in (0..case.cx.len()).step_by(case.cx.len() / 5 + 1) {
        let d = distance(px, py, case.cx[j], case.cy[j]);
        if d > 0.0 && d.is_finite() {
            out.extend([d, next_up(d), next_down(d)]);
        }
    }
    out.retain(|&r| r > 0.0);
    out
}

fn check_index_case(case: &IndexCase) -> Result<(), TestCaseError> {
    let keep = case.keep.clone();
    let index = SpatialIndex::from_centers(&case.cx, &case.cy, &case.area, |i| keep[i]);
    prop_assert_eq!(index.rows(), case.cx.len());
    prop_assert_eq!(index.matchable(), keep.iter().filter(|&&k| k).count());
    for &(px, py) in &case.points {
        for r in radii_for(case, px, py) {
            let want = brute_best(&case.cx, &case.cy, &case.area, &keep, px, py, r);
            prop_assert_eq!(
                index_best(&index, px, py, r),
                want,
                "best_within({}, {}, {})",
                px,
                py,
                r
            );
            let got = index_candidates(&index, px, py, r);
            let want: Vec<(u32, f64)> = brute_candidates(&case.cx, &case.cy, &keep, px, py, r)
                .into_iter()
                .map(|j| {
                    (
                        j,
                        distance(px, py, case.cx[j as usize], case.cy[j as usize]),
                    )
                })
                .collect();
            prop_assert_eq!(got, want, "for_each_within({}, {}, {})", px, py, r);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn index_equals_brute_force_uniform(case in uniform_case()) {
        check_index_case(&case)?;
    }

    #[test]
    fn index_equals_brute_force_clustered(case in clustered_case()) {
        check_index_case(&case)?;
    }

    #[test]
    fn index_equals_brute_force_equal_areas(case in equal_area_case()) {
        check_index_case(&case)?;
    }

    #[test]
    fn index_bytes_round_trip(case in uniform_case()) {
        let keep = case.keep.clone();
        let index = SpatialIndex::from_centers(&case.cx, &case.cy, &case.area, |i| keep[i]);
        let back = SpatialIndex::from_bytes(&index.to_bytes()).unwrap();
        prop_assert_eq!(&back, &index);
    }
}

#[test]
fn index_on_many_identical_centers() {
    // 5000 copies of one center (every k-d split is degenerate), areas in a few values.
    let n = 5000;
    let cx = vec![1.0; n];
    let cy = vec![-2.0; n];
    let area: Vec<f64> = (0..n).map(|i| [3.0, 1.0, 2.0, 1.0][i % 4]).collect();
    let keep: Vec<bool> = (0..n).map(|i| i % 7 != 1).collect();
    let k = keep.clone();
    let index = SpatialIndex::from_centers(&cx, &cy, &area, |i| k[i]);
    for (px, py) in [(1.0, -2.0), (1.5, -2.0), (4.0, 2.0), (1.0, 3.0)] {
        for r in [0.5, 5.0, next_up(5.0), f64::INFINITY] {
            assert_eq!(
                index_best(&index, px, py, r),
                brute_best(&cx, &cy, &area, &keep, px, py, r)
            );
            assert_eq!(
                index_candidates(&index, px, py, r).len(),
                brute_candidates(&cx, &cy, &keep, px, py, r).len()
            );
        }
    }
    // (4, 2) is at distance exactly 5 of (1, -2): excluded at max_dist = 5.
    assert_eq!(index_best(&index, 4.0, 2.0, 5.0), None);
    assert_eq!(index_best(&index, 4.0, 2.0, next_up(5.0)), Some(3));
}

#[test]
fn index_of_nothing() {
    let index = SpatialIndex::from_centers(&[], &[], &[], |_| true);
    assert_eq!(index.best_within(0.0, 0.0, f64::INFINITY), NO_MATCH);
    let none = SpatialIndex::from_centers(&[0.0], &[0.0], &[1.0], |_| false);
    assert_eq!(none.best_within(0.0, 0.0, f64::INFINITY), NO_MATCH);
    assert!(index_candidates(&none, 0.0, 0.0, f64::INFINITY).is_empty());
}

// ---------------------------------------------------------------------------------------
// match_points: identical answers for every chunk size and thread count, equal to the oracle.
// ---------------------------------------------------------------------------------------

/// Polygon columns with one ring per row.
fn ring_polygons_result(rings: &[Vec<(f64, f64)>]) -> polymatch::Result<PolygonColumns> {
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut offsets = vec![0i64];
    for ring in rings {
        x.extend(ring.iter().map(|p| p.0));
        y.extend(ring.iter().map(|p| p.1));
        offsets.push(x.len() as i64);
    }
    PolygonColumns::from_rings(x.into(), y.into(), OffsetBuffer::new(offsets.into()), None)
}

fn ring_polygons(rings: &[Vec<(f64, f64)>]) -> PolygonColumns {
    ring_polygons_result(rings).unwrap()
}

#[derive(Debug, Clone)]
struct MatchCase {
    rings: Vec<Vec<(f64, f64)>>,
    px: Vec<f64>,
    py: Vec<f64>,
    point_valid: Vec<bool>,
    max_dist: f64,
}

fn match_case() -> impl Strategy<Value = MatchCase> {
    // A ring: a triangle or quad of random size around a center; duplicates of a few
    // shapes (equal areas) at random centers make the tie rule matter.
    let shape = prop::sample::select(vec![
        vec![(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)],
        vec![(0.0, 0.0), (2.0, 0.0), (2.0, 1.0), (0.0, 1.0)],
        vec![(0.0, 0.0), (0.5, 0.0), (0.5, 0.5), (0.0, 0.5), (0.0, 0.0)],
    ]);
    let ring = (
        shape,
        0.0..40.0f64,
        0.0..40.0f64,
        prop::sample::select(vec![1.0, 1.0, 0.5, 3.0]),
    )
        .prop_map(|(s, ox, oy, k)| {
            s.iter()
                .map(|&(x, y)| (ox + k * x, oy + k * y))
                .collect::<Vec<_>>()
        });
    let point = (0u8..20, -5.0..45.0f64, -5.0..45.0f64).prop_map(|(kind, x, y)| match kind {
        0 => (f64::NAN, y),
        1 => (x, f64::NEG_INFINITY),
        _ => (x, y),
    });
    (
        prop::collection::vec(ring, 0..60),
        prop::collection::vec((point, prop::bool::weighted(0.9)), 0..300),
        prop::sample::select(vec![0.3, 2.0, 5.0, 15.0, f64::INFINITY]),
    )
        .prop_map(|(rings, pts, max_dist)| MatchCase {
            rings,
            px: pts.iter().map(|p| p.0 .0).collect(),
            py: pts.iter().map(|p| p.0 .1).collect(),
            point_valid: pts.iter().map(|p| p.1).collect(),
            max_dist,
        })
}

const MODES: [(How, bool); 4] = [
    (How::Inner, false),
    (How::Left, false),
    (How::Inner, true),
    (How::Left, true),
];

fn run_all_chunkings(
    index: &SpatialIndex,
    points: PointSlices<'_>,
    max_dist: f64,
) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for (how, all_candidates) in MODES {
        for chunk_size in [1, 7, 8192] {
            let options = MatchOptions {
                max_dist,
                how,
                all_candidates,
                chunk_size,
            };
            out.push(match_points(index, points, &options, 1000, None).unwrap());
        }
    }
    out
}

/// Check a best-match result (`how`) against the oracle over the polygon columns.
fn check_against_oracle(
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn match_points_independent_of_chunks_and_threads(case in match_case()) {
        let polygons = ring_polygons(&case.rings);
        let index = SpatialIndex::new(&polygons);
        let nulls = NullBuffer::from(case.point_valid.clone());
        let points = PointSlices::new(&case.px, &case.py, Some(&nulls)).unwrap();
        let reference = run_all_chunkings(&index, points, case.max_dist);
        for threads in [Some(1), Some(2), None] {
            let got = with_threads(threads, || run_all_chunkings(&index, points, case.max_dist)).unwrap();
            prop_assert_eq!(got.len(), reference.len());
            for (k, (g, r)) in got.iter().zip(&reference).enumerate() {
                prop_assert_eq!(g, r, "threads {:?}, run {}", threads, k);
            }
        }
        for (m, &(how, all)) in MODES.iter().enumerate() {
            check_against_oracle(&reference[3 * m], &polygons, &case, how, all)?;
        }
    }
}

#[test]
fn match_points_with_null_and_empty_polygons() {
    // Row 1 is null, row 2 is EMPTY (a polygon with no rings): neither can match,
    // and row numbers of the others do not shift.
    let x = vec![0.0, 2.0, 0.0, 5.0, 7.0, 5.0];
    let y = vec![0.0, 0.0, 2.0, 5.0, 5.0, 7.0];
    let rings = OffsetBuffer::new(vec![0i64, 3, 6].into());
    let polys = OffsetBuffer::new(vec![0i64, 1, 1, 1, 2].into());
    let nulls = NullBuffer::from(vec![true, false, true, true]);
    let polygons =
        PolygonColumns::from_polygons(x.into(), y.into(), polys, rings, Some(nulls)).unwrap();
    assert_eq!(polygons.len(), 4);
    let matchable: Vec<bool> = (0..4).map(|i| polygons.matchable().is_valid(i)).collect();
    assert_eq!(matchable, [true, false, false, true]);
    let index = SpatialIndex::new(&polygons);
    let (px, py) = ([0.5, 5.5, 100.0], [0.5, 5.5, 100.0]);
    let points = PointSlices::new(&px, &py, None).unwrap();
    let options = MatchOptions {
        max_dist: f64::INFINITY,
        how: How::Left,
        ..MatchOptions::default()
    };
    let out = match_points(&index, points, &options, 0, None).unwrap();
    let rows: Vec<Option<u32>> = out.column(1).as_primitive::<UInt32Type>().iter().collect();
    // Both matchable polygons have area 2; row 0 wins every tie.
    assert_eq!(rows, [Some(0), Some(0), Some(0)]);
    let all = MatchOptions {
        all_candidates: true,
        ..options
    };
    let out = match_points(&index, points, &all, 0, None).unwrap();
    let rows: Vec<Option<u32>> = out.column(1).as_primitive::<UInt32Type>().iter().collect();
    assert_eq!(rows, [Some(0), Some(3), Some(0), Some(3), Some(0), Some(3)]);
}

/// Large inputs (at least 4096 points and 32768 polygons) take other code paths in the
/// kernel (points matched in a spatial order, then put back): same answers, in point
/// order, for every chunk size and thread count; checked per point against `best_within`
/// (itself checked against brute force above) and against brute force on a sample.
#[test]
fn match_points_large_inputs() {
    let mut rng = Lcg(0x1a_2b3c);
    let mut unit = move || rng.below(1 << 30) as f64 / f64::from(1u32 << 30);
    let p = 40_000;
    let uniform: Vec<(f64, f64)> = (0..p).map(|_| (1000.0 * unit(), 1000.0 * unit())).collect();
    // Degenerate bounds: every center on one vertical line.
    let on_a_line: Vec<(f64, f64)> = (0..p).map(|_| (5.0, 1000.0 * unit())).collect();
    let area: Vec<f64> = (0..p).map(|_| (50.0 * unit()).floor()).collect();
    let n = 10_000;
    let (mut px, mut py): (Vec<f64>, Vec<f64>) = (0..n)
        .map(|_| (-50.0 + 1100.0 * unit(), -50.0 + 1100.0 * unit()))
        .unzip();
    for i in (0..n).step_by(97) {
        px[i] = f64::NAN;
    }
    for i in (5..n).step_by(89) {
        py[i] = f64::INFINITY;
    }
    for i in (0..n).step_by(211) {
        px[i] = 5.0; // on the line of centers
    }
    let valid: Vec<bool> = (0..n).map(|i| i % 13 != 4).collect();
    let nulls = NullBuffer::from(valid.clone());
    let points = PointSlices::new(&px, &py, Some(&nulls)).unwrap();
    let keep: Vec<bool> = (0..p).map(|j| j % 11 != 3).collect();
    for centers in [&uniform, &on_a_line] {
        let (cx, cy): (Vec<f64>, Vec<f64>) = centers.iter().copied().unzip();
        let k = keep.clone();
        let index = SpatialIndex::from_centers(&cx, &cy, &area, |j| k[j]);
        for max_dist in [3.0, 30.0, f64::INFINITY] {
            let run = |chunk_size: usize| {
                let options = MatchOptions {
                    max_dist,
                    how: How::Left,
                    chunk_size,
                    ..MatchOptions::default()
                };
                match_points(&index, points, &options, 0, None).unwrap()
            };
            let reference = run(8192);
            let rows: Vec<Option<u32>> = reference
                .column(1)
                .as_primitive::<UInt32Type>()
                .iter()
                .collect();
            for i in 0..n {
                let want = if valid[i] {
                    index_best(&index, px[i], py[i], max_dist)
                } else {
                    None
                };
                assert_eq!(rows[i], want, "point {i}, max_dist {max_dist}");
                if i % 50 == 0 {
                    let brute = brute_best(&cx, &cy, &area, &keep, px[i], py[i], max_dist);
                    assert_eq!(
                        rows[i],
                        brute.filter(|_| valid[i]),
                        "point {i}, max_dist {max_dist}"
                    );
                }
            }
            assert_eq!(run(1000), reference);
            for threads in [Some(1), Some(2)] {
                assert_eq!(with_threads(threads, || run(777)).unwrap(), reference);
            }
        }
    }
}

#[test]
fn match_points_on_empty_inputs() {
    let polygons = ring_polygons(&[]);
    let index = SpatialIndex::new(&polygons);
    let points = PointSlices::new(&[1.0], &[1.0], None).unwrap();
    for (how, all_candidates) in MODES {
        let options = MatchOptions {
            max_dist: f64::INFINITY,
            how,
            all_candidates,
            ..MatchOptions::default()
        };
        let out = match_points(&index, points, &options, 0, None).unwrap();
        assert_eq!(out.num_rows(), usize::from(how == How::Left));
        let none = PointSlices::new(&[], &[], None).unwrap();
        assert_eq!(
            match_points(&index, none, &options, 0, None)
                .unwrap()
                .num_rows(),
            0
        );
    }
}

// ---------------------------------------------------------------------------------------
// Exact oracle for the derived columns.
// ---------------------------------------------------------------------------------------

/// An exact sum of products of float64s: a big integer in units of 2^-2148 (the smallest
/// product of two subnormals), held as 32-bit digits in `i128` limbs that may run over
/// until [`Exact::signum`] propagates the carries.
#[derive(Clone)]
struct Exact {
    limbs: Vec<i128>,
}

/// 2^-BIAS is the unit; 140 digits of 32 bits reach past 2^2048 (the largest product).
const BIAS: i32 = 2148;
const LIMBS: usize = 140;

/// `x = sign * mantissa * 2^exponent` exactly, for finite `x`.
fn decompose(x: f64) -> (i128, u128, i32) {
    assert!(x.is_finite());
    let bits = x.to_bits();
    let sign = if bits >> 63 == 1 { -1 } else { 1 };
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = u128::from(bits & ((1u64 << 52) - 1));
    if exp == 0 {
        (sign, frac, -1074)
    } else {
        (sign, frac | 1 << 52, exp - 1075)
    }
}

impl Exact {
    fn new() -> Self {
        Self {
            limbs: vec![0; LIMBS],
        }
    }

    /// `self += a * b`, exactly.
    fn add_product(&mut self, a: f64, b: f64) {
        let (sa, ma, ea) = decompose(a);
        let (sb, mb, eb) = decompose(b);
        let m = ma * mb; // < 2^106
        if m == 0 {
            return;
        }
        let shift = (ea + eb + BIAS) as usize;
        let (limb, bit) = (shift / 32, shift % 32);
        for k in 0..4 {
            let digit = ((m >> (32 * k)) & 0xffff_ffff) as i128;
            self.limbs[limb + k] += sa * sb * (digit << bit); // < 2^63 per term
        }
    }

    fn add(&mut self, a: f64) {
        self.add_product(a, 1.0);
    }

    /// `self += k * other`.
    fn add_scaled(&mut self, other: &Exact, k: i128) {
        for (a, b) in self.limbs.iter_mut().zip(&other.limbs) {
            *a += k * b;
        }
    }

    /// The sign of the exact value: -1, 0 or 1.
    fn signum(&self) -> i32 {
        let base = 1i128 << 32;
        let mut carry = 0i128;
        let mut nonzero = false;
        for &l in &self.limbs {
            let t = l + carry;
            nonzero |= t.rem_euclid(base) != 0;
            carry = t.div_euclid(base);
        }
        if carry < 0 {
            -1
        } else if carry > 0 || nonzero {
            1
        } else {
            0
        }
    }
}

/// The next float64 up (finite input; written out because `f64::next_up` is newer than
/// the crate's MSRV).
fn next_up(x: f64) -> f64 {
    if x == 0.0 {
        f64::from_bits(1)
    } else if x > 0.0 {
        f64::from_bits(x.to_bits() + 1)
    } else {
        f64::from_bits(x.to_bits() - 1)
    }
}

fn next_down(x: f64) -> f64 {
    -next_up(-x)
}

/// True iff `got` is `value / scale` (`scale > 0`) rounded to the nearest float64, ties
/// to even: `got` lies within half an ulp on each side, the sides computed exactly.
fn is_rounding_of(value: &Exact, scale: f64, got: f64) -> bool {
    if !got.is_finite() {
        return false;
    }
    let even = got.to_bits() & 1 == 0;
    // sign of 2 * value - scale * (got + neighbour)
    let side = |neighbour: f64| {
        let mut t = Exact::new();
        t.add_scaled(value, 2);
        t.add_product(-scale, got);
        t.add_product(-scale, neighbour);
        t.signum()
    };
    let above = side(next_up(got));
    let below = side(next_down(got));
    (above < 0 || (above == 0 && even)) && (below > 0 || (below == 0 && even))
}

/// A ring taken open (SPEC.md): a last vertex equal to the first is dropped.
fn open(ring: &[(f64, f64)]) -> &[(f64, f64)] {
    match ring {
        [first, .., last] if first == last => &ring[..ring.len() - 1],
        _ => ring,
    }
}

/// Twice the signed shoelace area of a ring, exactly.
fn ring_area2(ring: &[(f64, f64)]) -> Exact {
    let ring = open(ring);
    let mut s = Exact::new();
    for i in 0..ring.len() {
        let (x, y) = ring[i];
        let (px, py) = ring[(i + ring.len() - 1) % ring.len()];
        s.add_product(x, py);
        s.add_product(-y, px);
    }
    s
}

/// A polygon part: its exterior ring, then its holes.
type Part = Vec<Vec<(f64, f64)>>;
/// A polygon as parts.
type Multi = Vec<Part>;

/// Twice SPEC.md's area of `polygon`, exactly: per part, |exterior| minus |holes|.
fn exact_area2(polygon: &[Part]) -> Exact {
    let mut area2 = Exact::new();
    for part in polygon {
        for (k, ring) in part.iter().enumerate() {
            let a = ring_area2(ring);
            let sign = i128::from(a.signum());
            area2.add_scaled(&a, if k == 0 { sign } else { -sign });
        }
    }
    area2
}

/// Assert that row `row` of `p` has SPEC.md's center (and area, if `check_area`) for
/// `polygon`, exactly.
fn assert_exact_parts(p: &PolygonColumns, row: usize, polygon: &[Part], check_area: bool) {
    let (mut sx, mut sy, mut n) = (Exact::new(), Exact::new(), 0usize);
    for part in polygon {
        for &(x, y) in open(&part[0]) {
            sx.add(x);
            sy.add(y);
            n += 1;
        }
    }
    let (cx, cy, area) = (p.center_x()[row], p.center_y()[row], p.area()[row]);
    assert!(
        !check_area || is_rounding_of(&exact_area2(polygon), 2.0, area),
        "row {row}: area {area:e} is not the exact area rounded"
    );
    assert!(
        is_rounding_of(&sx, n as f64, cx),
        "row {row}: center x {cx:e} is not the exact mean rounded"
    );
    assert!(
        is_rounding_of(&sy, n as f64, cy),
        "row {row}: center y {cy:e} is not the exact mean rounded"
    );
}

fn assert_exact(p: &PolygonColumns, row: usize, polygon: &[Part]) {
    assert_exact_parts(p, row, polygon, true);
}

/// Polygon columns in the full multipolygon layout.
fn multi_polygons(polygons: &[Multi]) -> PolygonColumns {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let (mut geoms, mut parts, mut rings) = (vec![0i64], vec![0i64], vec![0i64]);
    for polygon in polygons {
        for part in polygon {
            for ring in part {
                x.extend(ring.iter().map(|p| p.0));
                y.extend(ring.iter().map(|p| p.1));
                rings.push(x.len() as i64);
            }
            parts.push(rings.len() as i64 - 1);
        }
        geoms.push(parts.len() as i64 - 1);
    }
    let off = |v: Vec<i64>| OffsetBuffer::new(ScalarBuffer::from(v));
    PolygonColumns::try_new(x.into(), y.into(), off(geoms), off(parts), off(rings), None).unwrap()
}

#[test]
fn exact_oracle_self_check() {
    // 0.1 + 0.2 is not 0.3 in float64; the oracle must know the difference.
    let mut s = Exact::new();
    s.add(0.1);
    s.add(0.2);
    assert!(is_rounding_of(&s, 1.0, 0.1 + 0.2));
    assert!(!is_rounding_of(&s, 1.0, 0.3));
    let mut third = Exact::new();
    third.add(1.0);
    assert!(is_rounding_of(&third, 3.0, 1.0 / 3.0));
    assert!(!is_rounding_of(&third, 3.0, next_up(1.0 / 3.0)));
    // A tie: 2^53 + 1 is half-way between 2^53 and 2^53 + 2; even wins.
    let mut tie = Exact::new();
    tie.add(9_007_199_254_740_992.0);
    tie.add(1.0);
    assert!(is_rounding_of(&tie, 1.0, 9_007_199_254_740_992.0));
    assert!(!is_rounding_of(&tie, 1.0, 9_007_199_254_740_994.0));
    let mut neg = Exact::new();
    neg.add_product(-3.0, 1e-300);
    neg.add_product(1e-300, 1e-300);
    assert_eq!(neg.signum(), -1);
    assert_eq!(Exact::new().signum(), 0);
}

/// A tiny deterministic generator (Knuth's MMIX LCG), for the article-like workload.
struct Lcg(u64);

impl Lcg {
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn shuffle(&mut self, v: &mut [f64]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

/// The seed article's base polygon: `x = arange(0, 1, 0.1)` (numpy computes `i * 0.1`),
/// `y = sqrt(1 - x**2)`, an open ring of 10 vertices.
fn article_base() -> Vec<(f64, f64)> {
    (0..10)
        .map(|i| {
            let x = f64::from(i) * 0.1;
            (x, (1.0 - x * x).sqrt())
        })
        .collect()
}

#[test]
fn article_workload_areas_and_centers_are_exact() {
    let base = article_base();
    assert_eq!(base[3].0, 0.30000000000000004); // what numpy's arange gives
    let mut rng = Lcg(6);
    let rings: Vec<Vec<(f64, f64)>> = (0..1000)
        .map(|_| {
            let dx = rng.below(100) as f64;
            let dy = rng.below(100) as f64;
            base.iter().map(|&(x, y)| (x + dx, y + dy)).collect()
        })
        .collect();
    let polygons = ring_polygons(&rings);
    for (row, ring) in rings.iter().enumerate() {
        assert_exact(&polygons, row, &[vec![ring.clone()]]);
    }
    // Equal in exact arithmetic up to the rounding of the translated coordinates.
    let area = polygons.area();
    let (lo, hi) = area.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &a| {
        (lo.min(a), hi.max(a))
    });
    assert!(hi - lo < 1e-10 && lo > 0.0, "areas spread {lo} .. {hi}");

    // The match on it, max_dist = 10, against the oracle: ties decided by row.
    let mut xs: Vec<f64> = (0..100).map(f64::from).collect();
    let mut ys = xs.clone();
    rng.shuffle(&mut xs);
    rng.shuffle(&mut ys);
    let index = SpatialIndex::new(&polygons);
    let case = MatchCase {
        rings,
        px: xs.clone(),
        py: ys.clone(),
        point_valid: vec![true; 100],
        max_dist: 10.0,
    };
    let points = PointSlices::new(&xs, &ys, None).unwrap();
    for (how, all) in MODES {
        let options = MatchOptions {
            max_dist: 10.0,
            how,
            all_candidates: all,
            ..MatchOptions::default()
        };
        let out = match_points(&index, points, &options, 1000, None).unwrap();
        check_against_oracle(&out, &polygons, &case, how, all).unwrap();
    }
}

/// A coordinate: an offset (sometimes large, so translation rounds) plus a small part.
fn coordinate() -> impl Strategy<Value = f64> {
    (
        prop::sample::select(vec![0.0, 0.0, 1.0, 1e6, -3.5e9, 123.456]),
        -10.0..10.0f64,
        prop::sample::select(vec![1.0, 1e-6, 1e3]),
    )
        .prop_map(|(base, small, scale)| base + small * scale)
}

fn ring_strategy() -> impl Strategy<Value = Vec<(f64, f64)>> {
    (
        prop::collection::vec((coordinate(), coordinate()), 1..9),
        any::<bool>(),
    )
        .prop_map(|(mut ring, close)| {
            if close {
                ring.push(ring[0]);
            }
            ring
        })
}

fn multi_strategy() -> impl Strategy<Value = Multi> {
    // 1-3 parts of an exterior and 0-2 holes (holes may be larger than the exterior:
    // the formula then gives a negative area, which is still exact).
    prop::collection::vec(prop::collection::vec(ring_strategy(), 1..4), 1..4)
}

fn int_ring() -> impl Strategy<Value = Vec<(i64, i64)>> {
    prop::collection::vec((-1_000_000i64..1_000_000, -1_000_000i64..1_000_000), 3..12)
}

fn to_f64(ring: &[(i64, i64)]) -> Vec<(f64, f64)> {
    ring.iter().map(|&(x, y)| (x as f64, y as f64)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn derived_columns_are_exact(polygons in prop::collection::vec(multi_strategy(), 1..6)) {
        let p = multi_polygons(&polygons);
        for (row, polygon) in polygons.iter().enumerate() {
            // Holes larger than their exterior make SPEC.md's area negative: that case
            // has its own test (`holes_larger_than_the_exterior_give_a_negative_area`).
            let negative = exact_area2(polygon).signum() < 0;
            assert_exact_parts(&p, row, polygon, !negative);
        }
    }

    #[test]
    fn integer_polygons_match_i128_shoelace(ring in int_ring(), shift in -1_000_000i64..1_000_000) {
        let n = ring.len();
        // A first vertex repeated last (or second) would be a closing vertex in some of
        // the variants below.
        prop_assume!(ring[0] != ring[n - 1] && ring[0] != ring[1]);
        let twice: i128 = (0..n)
            .map(|i| {
                let (x, y) = ring[i];
                let (px, py) = ring[(i + n - 1) % n];
                i128::from(x) * i128::from(py) - i128::from(y) * i128::from(px)
            })
            .sum();
        let sx: i128 = ring.iter().map(|p| i128::from(p.0)).sum();
        let sy: i128 = ring.iter().map(|p| i128::from(p.1)).sum();
        let mut reversed = ring.clone();
        reversed.reverse();
        let mut rotated = ring.clone();
        rotated.rotate_left(1);
        let mut closed = ring.clone();
        closed.push(ring[0]);
        let shifted: Vec<(i64, i64)> = ring.iter().map(|&(x, y)| (x + shift, y - shift)).collect();
        let rings: Vec<Vec<(f64, f64)>> =
            [&ring, &reversed, &rotated, &closed, &shifted].iter().map(|r| to_f64(r)).collect();
        let p = ring_polygons(&rings);
        // |sum| < 2^53 and halving is exact; the sums of coordinates are exact integers
        // below 2^53, and IEEE division rounds them correctly.
        let area = twice.unsigned_abs() as f64 / 2.0;
        let (cx, cy) = (sx as f64 / n as f64, sy as f64 / n as f64);
        for row in 0..4 {
            prop_assert_eq!(p.area()[row].to_bits(), area.to_bits(), "row {}", row);
            prop_assert_eq!(p.center_x()[row].to_bits(), cx.to_bits(), "row {}", row);
            prop_assert_eq!(p.center_y()[row].to_bits(), cy.to_bits(), "row {}", row);
        }
        prop_assert_eq!(p.area()[4].to_bits(), area.to_bits(), "translated");
    }

    #[test]
    fn orientation_closing_and_start_do_not_matter(ring in ring_strategy()) {
        let open_ring = open(&ring).to_vec();
        let n = open_ring.len();
        prop_assume!(n < 2 || (open_ring[0] != open_ring[1] && open_ring[0] != open_ring[n - 1]));
        let mut reversed = open_ring.clone();
        reversed.reverse();
        let mut rotated = open_ring.clone();
        rotated.rotate_left(1);
        let mut closed = open_ring.clone();
        closed.push(open_ring[0]);
        let p = ring_polygons(&[open_ring, reversed, rotated, closed]);
        for row in 1..4 {
            prop_assert_eq!(p.area()[row].to_bits(), p.area()[0].to_bits(), "row {}", row);
            prop_assert_eq!(p.center_x()[row].to_bits(), p.center_x()[0].to_bits(), "row {}", row);
            prop_assert_eq!(p.center_y()[row].to_bits(), p.center_y()[0].to_bits(), "row {}", row);
        }
    }
}

#[test]
fn holes_are_subtracted_whatever_their_orientation() {
    let outer = vec![(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0), (0.0, 0.0)];
    let hole_ccw = vec![(1.0, 1.0), (2.0, 1.0), (2.0, 2.0), (1.0, 2.0), (1.0, 1.0)];
    let hole_cw: Vec<_> = hole_ccw.iter().rev().copied().collect();
    let p = multi_polygons(&[
        vec![vec![outer.clone(), hole_ccw]],
        vec![vec![outer, hole_cw]],
    ]);
    for row in 0..2 {
        assert_eq!(
            (p.center_x()[row], p.center_y()[row], p.area()[row]),
            (2.0, 2.0, 15.0)
        );
    }
}

/// SPEC.md: area = |exterior| minus the sum of |holes|, which is negative when the holes
/// are larger (an invalid polygon, but SPEC.md does not reject it). The smallest area
/// then wins as for any other.
#[test]
fn holes_larger_than_the_exterior_give_a_negative_area() {
    let small = vec![(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)];
    let big_hole = vec![(-1.0, -1.0), (3.0, -1.0), (3.0, 3.0), (-1.0, 3.0)];
    let p = multi_polygons(&[vec![vec![small.clone()]], vec![vec![small, big_hole]]]);
    assert_eq!(p.area()[0], 1.0);
    assert_eq!(p.area()[1], -15.0);
    let index = SpatialIndex::new(&p);
    assert_eq!(index_best(&index, 0.5, 0.5, 1.0), Some(1));
}

/// SPEC.md: "on equal area the lowest polygon row wins", and `-0.0 == 0.0`.
///
/// Row 0 is a one-vertex polygon (area `+0.0`); row 1 is the same vertex with a
/// zero-area hole, whose area once came out as `-0.0` (an `ExactSum` whose only partial
/// was the negated `+0.0` of the hole), which `total_cmp` ranks before `+0.0`.
#[test]
fn signed_zero_areas_tie() {
    let point = vec![(5.0, 5.0)];
    let flat_hole = vec![(0.0, 0.0), (1.0, 0.0), (2.0, 0.0)];
    let p = multi_polygons(&[vec![vec![point.clone()]], vec![vec![point, flat_hole]]]);
    assert_eq!(p.area()[0], 0.0);
    assert_eq!(p.area()[1], 0.0);
    let index = SpatialIndex::new(&p);
    assert_eq!(index_best(&index, 5.0, 5.0, 1.0), Some(0));
}

/// `SpatialIndex::from_centers` takes any finite areas and ranks them as numbers:
/// `-0.0 == 0.0` (ties go to the lower row), and negative areas come first.
#[test]
fn from_centers_ranks_areas_as_numbers() {
    let cases: [(&[f64], u32); 5] = [
        (&[0.0, -0.0], 0),
        (&[-0.0, 0.0], 0),
        (&[5.0, -0.0], 1),
        (&[1.0, -1.0], 1),
        (&[-1.0, -2.0, 0.5], 1),
    ];
    for (area, want) in cases {
        let zeros = vec![0.0; area.len()];
        let index = SpatialIndex::from_centers(&zeros, &zeros, area, |_| true);
        assert_eq!(
            index_best(&index, 0.0, 0.0, 1.0),
            Some(want),
            "areas {area:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// GeoArrow and WKB ingest, from hand-built arrays.
// ---------------------------------------------------------------------------------------

/// The test polygons, as parts of rings, and what each row must give.
/// Row 0: two unit squares (closed rings) -> center of 8 vertices (2, 0.5), area 2.
/// Row 1: a 4x4 square with a 1x1 hole -> (12, 12), 15.
/// Row 2: null.
/// Row 3: an open triangle -> (21, 1), 4.5.
fn sample_multipolygons() -> Vec<Option<Multi>> {
    let square = |x0: f64, y0: f64, s: f64| {
        vec![
            (x0, y0),
            (x0 + s, y0),
            (x0 + s, y0 + s),
            (x0, y0 + s),
            (x0, y0),
        ]
    };
    vec![
        Some(vec![
            vec![square(0.0, 0.0, 1.0)],
            vec![square(3.0, 0.0, 1.0)],
        ]),
        Some(vec![vec![square(10.0, 10.0, 4.0), square(11.0, 11.0, 1.0)]]),
        None,
        Some(vec![vec![vec![(20.0, 0.0), (23.0, 0.0), (20.0, 3.0)]]]),
    ]
}

const SAMPLE_WANT: [Option<(f64, f64, f64)>; 4] = [
    Some((2.0, 0.5, 2.0)),
    Some((12.0, 12.0, 15.0)),
    None,
    Some((21.0, 1.0, 4.5)),
];

/// The same as polygons (one part each); row 0 is just its first square.
fn sample_polygons() -> Vec<Option<Part>> {
    sample_multipolygons()
        .into_iter()
        .map(|m| m.map(|mut parts| parts.swap_remove(0)))
        .collect()
}

const POLYGON_WANT: [Option<(f64, f64, f64)>; 4] = [
    Some((0.5, 0.5, 1.0)),
    Some((12.0, 12.0, 15.0)),
    None,
    Some((21.0, 1.0, 4.5)),
];

fn assert_derived(p: &PolygonColumns, want: &[Option<(f64, f64, f64)>]) {
    assert_eq!(p.len(), want.len());
    for (row, w) in want.iter().enumerate() {
        match w {
            Some(w) => {
                assert!(p.matchable().is_valid(row), "row {row} should be matchable");
                assert_eq!(
                    (p.center_x()[row], p.center_y()[row], p.area()[row]),
                    *w,
                    "row {row}"
                );
            }
            None => assert!(
                p.matchable().is_null(row),
                "row {row} should not be matchable"
            ),
        }
    }
}

/// How coordinates are laid out.
#[derive(Clone, Copy, Debug)]
enum Coords {
    Separated,
    Interleaved,
    InterleavedXyz,
}

fn coord_array(points: &[(f64, f64)], layout: Coords) -> ArrayRef {
    match layout {
        Coords::Separated => {
            let fields = Fields::from(vec![
                Field::new("x", DataType::Float64, false),
                Field::new("y", DataType::Float64, false),
            ]);
            let xs = Float64Array::from(points.iter().map(|p| p.0).collect::<Vec<_>>());
            let ys = Float64Array::from(points.iter().map(|p| p.1).collect::<Vec<_>>());
            Arc::new(StructArray::new(
                fields,
                vec![Arc::new(xs) as ArrayRef, Arc::new(ys)],
                None,
            ))
        }
        Coords::Interleaved | Coords::InterleavedXyz => {
            let xyz = matches!(layout, Coords::InterleavedXyz);
            let mut flat = Vec::new();
            for &(x, y) in points {
                flat.extend([x, y]);
                if xyz {
                    flat.push(-7.0);
                }
            }
            let field = Arc::new(Field::new(
                if xyz { "xyz" } else { "xy" },
                DataType::Float64,
                false,
            ));
            let size = if xyz { 3 } else { 2 };
            Arc::new(FixedSizeListArray::new(
                field,
                size,
                Arc::new(Float64Array::from(flat)),
                None,
            ))
        }
    }
}

/// A List (or LargeList) array over `values` with the given offsets and validity.
fn list_array(
    values: ArrayRef,
    offsets: Vec<usize>,
    nulls: Option<NullBuffer>,
    large: bool,
) -> ArrayRef {
    let field = Arc::new(Field::new("item", values.data_type().clone(), true));
    if large {
        let offsets = offsets.into_iter().map(|o| o as i64).collect::<Vec<_>>();
        Arc::new(LargeListArray::new(
            field,
            OffsetBuffer::new(offsets.into()),
            values,
            nulls,
        ))
    } else {
        let offsets = offsets.into_iter().map(|o| o as i32).collect::<Vec<_>>();
        Arc::new(ListArray::new(
            field,
            OffsetBuffer::new(offsets.into()),
            values,
            nulls,
        ))
    }
}

/// GeoArrow polygon array: list<list<coord>>.
fn polygon_array(rows: &[Option<Part>], layout: Coords, large: bool) -> ArrayRef {
    let (mut coords, mut ring_offsets, mut poly_offsets, mut valid) =
        (Vec::new(), vec![0], vec![0], Vec::new());
    for row in rows {
        for ring in row.iter().flatten() {
            coords.extend_from_slice(ring);
            ring_offsets.push(coords.len());
        }
        poly_offsets.push(ring_offsets.len() - 1);
        valid.push(row.is_some());
    }
    let rings = list_array(coord_array(&coords, layout), ring_offsets, None, large);
    list_array(rings, poly_offsets, Some(NullBuffer::from(valid)), large)
}

/// GeoArrow multipolygon array: list<list<list<coord>>>.
fn multipolygon_array(rows: &[Option<Multi>], layout: Coords, large: bool) -> ArrayRef {
    let (mut coords, mut ring_offsets, mut part_offsets, mut geom_offsets) =
        (Vec::new(), vec![0], vec![0], vec![0]);
    let mut valid = Vec::new();
    for row in rows {
        for part in row.iter().flatten() {
            for ring in part {
                coords.extend_from_slice(ring);
                ring_offsets.push(coords.len());
            }
            part_offsets.push(ring_offsets.len() - 1);
        }
        geom_offsets.push(part_offsets.len() - 1);
        valid.push(row.is_some());
    }
    let rings = list_array(coord_array(&coords, layout), ring_offsets, None, large);
    let parts = list_array(rings, part_offsets, None, large);
    list_array(parts, geom_offsets, Some(NullBuffer::from(valid)), large)
}

fn field_for(name: &str, array: &ArrayRef, extension: Option<&str>) -> Field {
    let field = Field::new(name, array.data_type().clone(), true);
    match extension {
        Some(ext) => {
            field.with_metadata([("ARROW:extension:name".to_string(), ext.to_string())].into())
        }
        None => field,
    }
}

fn batch_of(columns: Vec<(Field, ArrayRef)>) -> RecordBatch {
    let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

fn from_array(array: &ArrayRef) -> PolygonColumns {
    polygons_from_array(&field_for("geometry", array, None), array).unwrap()
}

#[test]
fn geoarrow_polygon_and_multipolygon_every_layout() {
    for layout in [
        Coords::Separated,
        Coords::Interleaved,
        Coords::InterleavedXyz,
    ] {
        for large in [false, true] {
            let polys = polygon_array(&sample_polygons(), layout, large);
            assert_derived(&from_array(&polys), &POLYGON_WANT);
            let multi = multipolygon_array(&sample_multipolygons(), layout, large);
            assert_derived(&from_array(&multi), &SAMPLE_WANT);
            // Sliced: rows 1..3 of the original.
            assert_derived(&from_array(&polys.slice(1, 2)), &POLYGON_WANT[1..3]);
            assert_derived(&from_array(&multi.slice(1, 2)), &SAMPLE_WANT[1..3]);
            assert_derived(&from_array(&multi.slice(2, 2)), &SAMPLE_WANT[2..4]);
            assert_derived(&from_array(&multi.slice(4, 0)), &[]);
        }
    }
}

#[test]
fn geoarrow_ingest_agrees_with_exact_oracle() {
    let rows: Vec<Option<Multi>> = (0..20)
        .map(|i| {
            let t = 1e6 + f64::from(i) * 0.37;
            let ring = vec![(t, 0.1), (t + 0.3, 0.2), (t + 0.25, 0.7), (t - 0.01, 0.4)];
            Some(vec![vec![ring]])
        })
        .collect();
    let multi = multipolygon_array(&rows, Coords::Interleaved, true);
    let p = from_array(&multi);
    for (row, polygon) in rows.iter().enumerate() {
        assert_exact(&p, row, polygon.as_ref().unwrap());
    }
}

#[test]
fn sliced_coordinate_children() {
    // A polygon list over a coordinate array that is itself a slice (offset 3).
    let pts = [
        (9.0, 9.0),
        (9.0, 9.0),
        (9.0, 9.0),
        (0.0, 0.0),
        (2.0, 0.0),
        (2.0, 2.0),
        (0.0, 2.0),
    ];
    for layout in [Coords::Separated, Coords::Interleaved] {
        let coords = coord_array(&pts, layout).slice(3, 4);
        let rings = list_array(coords, vec![0, 4], None, false);
        let polys = list_array(rings, vec![0, 1], None, false);
        assert_derived(&from_array(&polys), &[Some((1.0, 1.0, 4.0))]);
    }
}

// --- WKB -------------------------------------------------------------------------------

fn wkb_rings(out: &mut Vec<u8>, rings: &[Vec<(f64, f64)>], big: bool, z: bool) {
    let u = |v: u32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let f = |v: f64| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    out.extend(u(rings.len() as u32));
    for ring in rings {
        out.extend(u(ring.len() as u32));
        for &(x, y) in ring {
            out.extend(f(x));
            out.extend(f(y));
            if z {
                out.extend(f(42.0));
            }
        }
    }
}

/// WKB Polygon; `ewkb` writes big-endian EWKB with Z and an SRID.
fn wkb_polygon(rings: &[Vec<(f64, f64)>], ewkb: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if ewkb {
        out.push(0);
        out.extend((3u32 | 0x8000_0000 | 0x2000_0000).to_be_bytes());
        out.extend(4326u32.to_be_bytes());
    } else {
        out.push(1);
        out.extend(3u32.to_le_bytes());
    }
    wkb_rings(&mut out, rings, ewkb, ewkb);
    out
}

/// WKB MultiPolygon (ISO Z code 1006 when `z`).
fn wkb_multipolygon(parts: &[Part], z: bool) -> Vec<u8> {
    let mut out = vec![1];
    out.extend((if z { 1006u32 } else { 6 }).to_le_bytes());
    out.extend((parts.len() as u32).to_le_bytes());
    for part in parts {
        out.push(1);
        out.extend((if z { 1003u32 } else { 3 }).to_le_bytes());
        wkb_rings(&mut out, part, false, z);
    }
    out
}

fn wkb_point(x: f64, y: f64) -> Vec<u8> {
    let mut out = vec![1];
    out.extend(1u32.to_le_bytes());
    out.extend(x.to_le_bytes());
    out.extend(y.to_le_bytes());
    out
}

fn wkb_linestring(points: &[(f64, f64)]) -> Vec<u8> {
    let mut out = vec![1];
    out.extend(2u32.to_le_bytes());
    out.extend((points.len() as u32).to_le_bytes());
    for &(x, y) in points {
        out.extend(x.to_le_bytes());
        out.extend(y.to_le_bytes());
    }
    out
}

fn binary_array(values: &[Option<Vec<u8>>], large: bool) -> ArrayRef {
    let refs: Vec<Option<&[u8]>> = values.iter().map(|v| v.as_deref()).collect();
    if large {
        Arc::new(LargeBinaryArray::from_opt_vec(refs))
    } else {
        Arc::new(BinaryArray::from_opt_vec(refs))
    }
}

/// The sample rows as WKB: row 0 a MultiPolygon (with Z), row 1 a big-endian EWKB Polygon.
fn sample_wkb() -> Vec<Option<Vec<u8>>> {
    let m = sample_multipolygons();
    vec![
        Some(wkb_multipolygon(m[0].as_ref().unwrap(), true)),
        Some(wkb_polygon(&m[1].as_ref().unwrap()[0], true)),
        None,
        Some(wkb_polygon(&m[3].as_ref().unwrap()[0], false)),
    ]
}

#[test]
fn wkb_binary_and_large_binary() {
    for large in [false, true] {
        let array = binary_array(&sample_wkb(), large);
        assert_derived(&from_array(&array), &SAMPLE_WANT);
        assert_derived(&from_array(&array.slice(1, 2)), &SAMPLE_WANT[1..3]);
        assert_derived(&from_array(&array.slice(3, 1)), &SAMPLE_WANT[3..]);
    }
    // MULTIPOLYGON EMPTY and POLYGON EMPTY are rows that never match.
    let empty = binary_array(
        &[
            Some(wkb_multipolygon(&[], false)),
            Some(wkb_polygon(&[], false)),
        ],
        false,
    );
    assert_derived(&from_array(&empty), &[None, None]);
}

// --- Whole batches: detection, then a match ---------------------------------------------

#[test]
fn polygons_from_batch_detects_the_geometry_column() {
    let ids: ArrayRef = Arc::new(Int32Array::from(vec![10, 11, 12, 13]));
    let wkb = binary_array(&sample_wkb(), false);
    let native = multipolygon_array(&sample_multipolygons(), Coords::Separated, false);
    // By conventional name.
    for name in ["geometry", "geom", "wkb", "wkb_geometry"] {
        let batch = batch_of(vec![
            (field_for("id", &ids, None), ids.clone()),
            (field_for(name, &wkb, None), wkb.clone()),
        ]);
        assert_derived(&polygons_from_batch(&batch, None).unwrap(), &SAMPLE_WANT);
    }
    // By GeoArrow extension metadata, under any name, before a conventional name.
    let decoy: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c", "d"]));
    for (array, ext) in [(&wkb, "geoarrow.wkb"), (&native, "geoarrow.multipolygon")] {
        let batch = batch_of(vec![
            (field_for("geometry", &decoy, None), decoy.clone()),
            (field_for("shape", array, Some(ext)), array.clone()),
        ]);
        assert_derived(&polygons_from_batch(&batch, None).unwrap(), &SAMPLE_WANT);
    }
    // By the caller's name.
    let batch = batch_of(vec![
        (field_for("geometry", &decoy, None), decoy.clone()),
        (field_for("footprint", &native, None), native.clone()),
    ]);
    assert_derived(
        &polygons_from_batch(&batch, Some("footprint")).unwrap(),
        &SAMPLE_WANT,
    );
    // The article's representation: list columns x and y, one open ring per row, with
    // x and y sliced differently.
    let xs = Float64Array::from(vec![99.0, 0.0, 2.0, 2.0, 0.0, 5.0, 6.0, 5.0]);
    let ys = Float64Array::from(vec![0.0, 0.0, 2.0, 2.0, 5.0, 5.0, 6.0]);
    let x = list_array(
        Arc::new(xs),
        vec![1, 5, 5, 8],
        Some(NullBuffer::from(vec![true, false, true])),
        false,
    );
    let y = list_array(
        Arc::new(ys),
        vec![0, 4, 4, 7],
        Some(NullBuffer::from(vec![true, false, true])),
        true,
    );
    let batch = batch_of(vec![
        (field_for("x", &x, None), x.clone()),
        (field_for("y", &y, None), y.clone()),
    ]);
    let p = polygons_from_batch(&batch, None).unwrap();
    assert_derived(
        &p,
        &[
            Some((1.0, 1.0, 4.0)),
            None,
            Some((16.0 / 3.0, 16.0 / 3.0, 0.5)),
        ],
    );
    let sliced = batch.slice(1, 2);
    assert_derived(
        &polygons_from_batch(&sliced, None).unwrap(),
        &[None, Some((16.0 / 3.0, 16.0 / 3.0, 0.5))],
    );
}

/// The points must be (1, 4), (2, 5), (3, 6), with `null_row` null.
fn check_points(batch: &RecordBatch, spec: PointSpec<'_>, null_row: Option<usize>) {
    let p = points_from_batch(batch, spec).unwrap();
    assert_eq!(p.x.len(), 3);
    for i in 0..3 {
        let valid = !matches!(&p.nulls, Some(n) if n.is_null(i));
        assert_eq!(valid, Some(i) != null_row, "row {i}");
        if valid {
            assert_eq!((p.x[i], p.y[i]), (1.0 + i as f64, 4.0 + i as f64));
        }
    }
}

#[test]
fn points_from_batch_every_encoding() {
    let want_x = [1.0, 2.0, 3.0];
    let want_y = [4.0, 5.0, 6.0];
    let check = check_points;
    // x/y columns, one of them Int32 (cast) and nullable.
    let x: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.0), None, Some(3.0)]));
    let y: ArrayRef = Arc::new(Int32Array::from(vec![4, 5, 6]));
    let batch = batch_of(vec![
        (field_for("x", &x, None), x.clone()),
        (field_for("y", &y, None), y.clone()),
    ]);
    check(&batch, PointSpec::default(), Some(1));
    let renamed = batch_of(vec![
        (field_for("lon", &x, None), x.clone()),
        (field_for("lat", &y, None), y.clone()),
    ]);
    check(
        &renamed,
        PointSpec {
            x: Some("lon"),
            y: Some("lat"),
            geometry: None,
        },
        Some(1),
    );
    // A sliced batch keeps the caller's rows.
    let p = points_from_batch(&batch.slice(1, 2), PointSpec::default()).unwrap();
    assert_eq!((p.x.len(), p.x[1], p.y[1]), (2, 3.0, 6.0));
    // WKB points, named or detected.
    let wkb = binary_array(
        &[Some(wkb_point(1.0, 4.0)), Some(wkb_point(2.0, 5.0)), None],
        true,
    );
    let batch = batch_of(vec![(field_for("geometry", &wkb, None), wkb.clone())]);
    check(&batch, PointSpec::default(), Some(2));
    let batch = batch_of(vec![(field_for("pt", &wkb, None), wkb.clone())]);
    check(
        &batch,
        PointSpec {
            geometry: Some("pt"),
            ..PointSpec::default()
        },
        Some(2),
    );
    // GeoArrow points, separated and interleaved.
    let pts: Vec<(f64, f64)> = want_x.iter().zip(&want_y).map(|(&x, &y)| (x, y)).collect();
    for layout in [
        Coords::Separated,
        Coords::Interleaved,
        Coords::InterleavedXyz,
    ] {
        let array = coord_array(&pts, layout);
        let batch = batch_of(vec![(
            field_for("geometry", &array, Some("geoarrow.point")),
            array.clone(),
        )]);
        check(&batch, PointSpec::default(), None);
    }
}

#[test]
fn end_to_end_from_batches() {
    let wkb = binary_array(&sample_wkb(), false);
    let polygons = polygons_from_batch(
        &batch_of(vec![(field_for("geometry", &wkb, None), wkb.clone())]),
        None,
    )
    .unwrap();
    let index = SpatialIndex::new(&polygons);
    let x: ArrayRef = Arc::new(Float64Array::from(vec![2.0, 12.0, 21.0, 500.0]));
    let y: ArrayRef = Arc::new(Float64Array::from(vec![0.5, 12.0, 1.0, 500.0]));
    let batch = batch_of(vec![
        (field_for("x", &x, None), x.clone()),
        (field_for("y", &y, None), y.clone()),
    ]);
    let pts = points_from_batch(&batch, PointSpec::default()).unwrap();
    let points = PointSlices::new(&pts.x, &pts.y, pts.nulls.as_ref()).unwrap();
    let options = MatchOptions {
        max_dist: 1.0,
        how: How::Left,
        ..MatchOptions::default()
    };
    let out = match_points(&index, points, &options, 0, None).unwrap();
    let rows: Vec<Option<u32>> = out.column(1).as_primitive::<UInt32Type>().iter().collect();
    assert_eq!(rows, [Some(0), Some(1), Some(3), None]);
    let areas: Vec<Option<f64>> = out.column(3).as_primitive::<Float64Type>().iter().collect();
    assert_eq!(areas, [Some(2.0), Some(15.0), Some(4.5), None]);
    let distances: Vec<Option<f64>> = out.column(2).as_primitive::<Float64Type>().iter().collect();
    assert_eq!(distances, [Some(0.0), Some(0.0), Some(0.0), None]);
}

// ---------------------------------------------------------------------------------------
// Every error variant.
// ---------------------------------------------------------------------------------------

#[test]
fn error_missing_column() {
    let wkb = binary_array(&sample_wkb(), false);
    let batch = batch_of(vec![(field_for("geometry", &wkb, None), wkb.clone())]);
    let err = polygons_from_batch(&batch, Some("nope")).unwrap_err();
    assert!(
        matches!(&err, PolymatchError::MissingColumn { name, .. } if name == "nope"),
        "{err}"
    );
    assert!(
        err.to_string().contains("geometry"),
        "the message lists the columns: {err}"
    );
    let x: ArrayRef = Arc::new(Float64Array::from(vec![1.0]));
    let batch = batch_of(vec![(field_for("x", &x, None), x.clone())]);
    let err = points_from_batch(
        &batch,
        PointSpec {
            x: Some("x"),
            y: Some("lat"),
            geometry: None,
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, PolymatchError::MissingColumn { name, .. } if name == "lat"),
        "{err}"
    );
    let err = points_from_batch(
        &batch,
        PointSpec {
            geometry: Some("pt"),
            ..PointSpec::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, PolymatchError::MissingColumn { name, .. } if name == "pt"),
        "{err}"
    );
}

#[test]
fn error_column_type() {
    let text: ArrayRef = Arc::new(StringArray::from(vec!["POLYGON EMPTY"]));
    let batch = batch_of(vec![(field_for("geometry", &text, None), text.clone())]);
    let err = polygons_from_batch(&batch, None).unwrap_err();
    assert!(
        matches!(&err, PolymatchError::ColumnType { column, .. } if column == "geometry"),
        "{err}"
    );
    // A list of numbers is not a polygon list.
    let numbers = list_array(
        Arc::new(Float64Array::from(vec![1.0, 2.0])),
        vec![0, 2],
        None,
        false,
    );
    let err = polygons_from_array(&field_for("g", &numbers, None), &numbers).unwrap_err();
    assert!(
        matches!(&err, PolymatchError::ColumnType { column, .. } if column == "g"),
        "{err}"
    );
    // Four levels of lists is not a multipolygon.
    let deep = multipolygon_array(&sample_multipolygons(), Coords::Separated, false);
    let deeper = list_array(deep, vec![0, 4], None, false);
    assert!(matches!(
        polygons_from_array(&field_for("g", &deeper, None), &deeper),
        Err(PolymatchError::ColumnType { .. })
    ));
    // A polygon layout tagged as multipolygon.
    let polys = polygon_array(&sample_polygons(), Coords::Separated, false);
    let field = field_for("g", &polys, Some("geoarrow.multipolygon"));
    assert!(matches!(
        polygons_from_array(&field, &polys),
        Err(PolymatchError::ColumnType { .. })
    ));
    // Article x/y columns that are not lists; string coordinates.
    let x: ArrayRef = Arc::new(Float64Array::from(vec![1.0]));
    let batch = batch_of(vec![
        (field_for("x", &x, None), x.clone()),
        (field_for("y", &x, None), x.clone()),
    ]);
    assert!(matches!(
        polygons_from_batch(&batch, None),
        Err(PolymatchError::ColumnType { .. })
    ));
    let s: ArrayRef = Arc::new(StringArray::from(vec!["1"]));
    let batch = batch_of(vec![
        (field_for("x", &s, None), s.clone()),
        (field_for("y", &x, None), x.clone()),
    ]);
    let err = points_from_batch(&batch, PointSpec::default()).unwrap_err();
    assert!(
        matches!(&err, PolymatchError::ColumnType { column, .. } if column == "x"),
        "{err}"
    );
    let batch = batch_of(vec![(field_for("pt", &x, None), x.clone())]);
    let err = points_from_batch(
        &batch,
        PointSpec {
            geometry: Some("pt"),
            ..PointSpec::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, PolymatchError::ColumnType { column, .. } if column == "pt"),
        "{err}"
    );
}

#[test]
fn error_no_geometry() {
    let ids: ArrayRef = Arc::new(Int32Array::from(vec![1, 2]));
    let batch = batch_of(vec![(field_for("id", &ids, None), ids.clone())]);
    let err = polygons_from_batch(&batch, None).unwrap_err();
    assert!(
        matches!(&err, PolymatchError::NoGeometry(msg) if msg.contains("id")),
        "{err}"
    );
    let err = points_from_batch(&batch, PointSpec::default()).unwrap_err();
    assert!(matches!(err, PolymatchError::NoGeometry(_)), "{err}");
}

#[test]
fn error_unsupported_geometry() {
    // A GeoArrow column tagged as a non-polygon type.
    let pts = coord_array(&[(0.0, 0.0)], Coords::Separated);
    let batch = batch_of(vec![(
        field_for("geometry", &pts, Some("geoarrow.point")),
        pts.clone(),
    )]);
    let err = polygons_from_batch(&batch, None).unwrap_err();
    assert!(
        matches!(&err, PolymatchError::UnsupportedGeometry { column, .. } if column == "geometry"),
        "{err}"
    );
    let lines = list_array(
        coord_array(&[(0.0, 0.0), (1.0, 1.0)], Coords::Separated),
        vec![0, 2],
        None,
        false,
    );
    let field = field_for("route", &lines, Some("geoarrow.linestring"));
    assert!(matches!(
        polygons_from_array(&field, &lines),
        Err(PolymatchError::UnsupportedGeometry { .. })
    ));
    // A WKB LineString among polygons; a WKB Polygon among points.
    let wkb = binary_array(
        &[
            Some(wkb_polygon(&[vec![(0.0, 0.0)]], false)),
            Some(wkb_linestring(&[(0.0, 0.0), (1.0, 1.0)])),
        ],
        false,
    );
    let err = from_array_err(&wkb);
    assert!(
        matches!(&err, PolymatchError::UnsupportedGeometry { column, found, .. }
            if column.contains("geometry") && found.starts_with("LineString")),
        "{err}"
    );
    assert!(
        err.to_string().contains("row 1"),
        "the message names the row: {err}"
    );
    let batch = batch_of(vec![(field_for("geometry", &wkb, None), wkb.clone())]);
    let err = points_from_batch(&batch, PointSpec::default()).unwrap_err();
    assert!(
        matches!(&err, PolymatchError::UnsupportedGeometry { found, .. } if found.starts_with("Polygon")),
        "{err}"
    );
}

fn from_array_err(array: &ArrayRef) -> PolymatchError {
    polygons_from_array(&field_for("geometry", array, None), array).unwrap_err()
}

fn invalid_row(err: &PolymatchError) -> Option<usize> {
    match err {
        PolymatchError::InvalidGeometry { row, .. } => Some(*row),
        _ => None,
    }
}

#[test]
fn error_invalid_geometry_names_the_row() {
    // Truncated WKB at row 2 (row 1 is null), also in a slice where it is row 1.
    let mut bad = wkb_polygon(&[vec![(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]], false);
    bad.truncate(bad.len() - 3);
    let good = wkb_polygon(&[vec![(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]], false);
    for large in [false, true] {
        let wkb = binary_array(
            &[
                Some(good.clone()),
                None,
                Some(bad.clone()),
                Some(good.clone()),
            ],
            large,
        );
        assert_eq!(
            invalid_row(&from_array_err(&wkb)),
            Some(2),
            "{}",
            from_array_err(&wkb)
        );
        assert_eq!(invalid_row(&from_array_err(&wkb.slice(1, 3))), Some(1));
    }
    // Trailing bytes; a MultiPolygon holding a Point.
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        invalid_row(&from_array_err(&binary_array(&[Some(trailing)], false))),
        Some(0)
    );
    let mut holds_point = vec![1];
    holds_point.extend(6u32.to_le_bytes());
    holds_point.extend(1u32.to_le_bytes());
    holds_point.extend(wkb_point(0.0, 0.0));
    let wkb = binary_array(&[Some(good.clone()), Some(holds_point)], false);
    assert_eq!(invalid_row(&from_array_err(&wkb)), Some(1));
    // A NaN or infinite coordinate, in GeoArrow, at row 1, and at row 0 of a slice.
    for bad_value in [f64::NAN, f64::INFINITY] {
        let mut rows = sample_polygons();
        rows[1].as_mut().unwrap()[1][2].0 = bad_value;
        for layout in [Coords::Separated, Coords::Interleaved] {
            let polys = polygon_array(&rows, layout, false);
            assert_eq!(invalid_row(&from_array_err(&polys)), Some(1));
            assert_eq!(invalid_row(&from_array_err(&polys.slice(1, 3))), Some(0));
        }
    }
    // An empty ring at row 3 (a ring needs at least 1 vertex).
    let mut rows = sample_polygons();
    rows[3].as_mut().unwrap().push(vec![]);
    assert_eq!(
        invalid_row(&from_array_err(&polygon_array(
            &rows,
            Coords::Separated,
            true
        ))),
        Some(3)
    );
    // Article x/y lists of different lengths at row 1.
    let x = list_array(
        Arc::new(Float64Array::from(vec![0.0, 1.0, 2.0, 3.0, 4.0])),
        vec![0, 1, 3],
        None,
        false,
    );
    let y = list_array(
        Arc::new(Float64Array::from(vec![0.0, 1.0, 2.0, 3.0, 4.0])),
        vec![0, 1, 4],
        None,
        false,
    );
    let batch = batch_of(vec![
        (field_for("x", &x, None), x.clone()),
        (field_for("y", &y, None), y.clone()),
    ]);
    assert_eq!(
        invalid_row(&polygons_from_batch(&batch, None).unwrap_err()),
        Some(1)
    );
    // Coordinates so large that the area overflows float64.
    let huge = ring_polygons_result(&[
        vec![(0.0, 0.0)],
        vec![(0.0, 0.0), (1e300, 0.0), (0.0, 1e300)],
    ]);
    assert_eq!(invalid_row(&huge.unwrap_err()), Some(1));
}

#[test]
fn error_invalid_layout() {
    // Null coordinates inside a polygon.
    let fields = Fields::from(vec![
        Field::new("x", DataType::Float64, true),
        Field::new("y", DataType::Float64, true),
    ]);
    let coords: ArrayRef = Arc::new(StructArray::new(
        fields,
        vec![
            Arc::new(Float64Array::from(vec![0.0, 1.0, 0.0])) as ArrayRef,
            Arc::new(Float64Array::from(vec![0.0, 0.0, 1.0])),
        ],
        Some(NullBuffer::from(vec![true, false, true])),
    ));
    let polys = list_array(
        list_array(coords, vec![0, 3], None, false),
        vec![0, 1],
        None,
        false,
    );
    // A null vertex inside a polygon names the row.
    assert_eq!(invalid_row(&from_array_err(&polys)), Some(0));
    // Raw columns that do not fit together.
    let off = |v: Vec<i64>| OffsetBuffer::new(ScalarBuffer::from(v));
    let xy = |n: usize| ScalarBuffer::from(vec![0.0; n]);
    let cases = [
        PolygonColumns::from_rings(xy(3), xy(2), off(vec![0, 2]), None),
        PolygonColumns::from_rings(xy(3), xy(3), off(vec![0, 4]), None),
        PolygonColumns::from_rings(
            xy(3),
            xy(3),
            off(vec![0, 3]),
            Some(NullBuffer::from(vec![true, true])),
        ),
        PolygonColumns::from_polygons(xy(3), xy(3), off(vec![0, 2]), off(vec![0, 3]), None),
        PolygonColumns::try_new(
            xy(3),
            xy(3),
            off(vec![0, 2]),
            off(vec![0, 1]),
            off(vec![0, 3]),
            None,
        ),
    ];
    for (k, result) in cases.into_iter().enumerate() {
        assert!(
            matches!(result, Err(PolymatchError::InvalidLayout(_))),
            "case {k}"
        );
    }
    assert!(matches!(
        polymatch::polygons::checked_offsets(vec![0, 3, 2], "ring"),
        Err(PolymatchError::InvalidLayout(_))
    ));
    assert!(matches!(
        polymatch::polygons::checked_offsets(vec![], "ring"),
        Err(PolymatchError::InvalidLayout(_))
    ));
    // Points whose columns differ in length.
    assert!(matches!(
        PointSlices::new(&[0.0, 1.0], &[0.0], None),
        Err(PolymatchError::InvalidLayout(_))
    ));
    let nulls = NullBuffer::from(vec![true]);
    assert!(matches!(
        PointSlices::new(&[0.0, 1.0], &[0.0, 1.0], Some(&nulls)),
        Err(PolymatchError::InvalidLayout(_))
    ));
}

#[test]
fn error_invalid_argument() {
    let index = SpatialIndex::new(&ring_polygons(&[vec![(0.0, 0.0)]]));
    let points = PointSlices::new(&[0.0], &[0.0], None).unwrap();
    for max_dist in [0.0, -0.0, -1.0, f64::NAN, f64::NEG_INFINITY] {
        for (how, all_candidates) in MODES {
            let options = MatchOptions {
                max_dist,
                how,
                all_candidates,
                ..MatchOptions::default()
            };
            let err = match_points(&index, points, &options, 0, None).unwrap_err();
            assert!(
                matches!(err, PolymatchError::InvalidArgument(_)),
                "max_dist {max_dist}: {err}"
            );
        }
    }
    let options = MatchOptions {
        chunk_size: 0,
        ..MatchOptions::default()
    };
    assert!(matches!(
        match_points(&index, points, &options, 0, None),
        Err(PolymatchError::InvalidArgument(_))
    ));
    assert!(matches!(
        with_threads(Some(0), || ()),
        Err(PolymatchError::InvalidArgument(_))
    ));
    assert!(matches!(
        "outer".parse::<How>(),
        Err(PolymatchError::InvalidArgument(_))
    ));
    assert_eq!("left".parse::<How>().unwrap(), How::Left);
    assert_eq!("inner".parse::<How>().unwrap(), How::Inner);
    // The smallest positive max_dist is valid: only a point on a center can match.
    let options = MatchOptions {
        max_dist: f64::from_bits(1),
        ..MatchOptions::default()
    };
    assert_eq!(
        match_points(&index, points, &options, 0, None)
            .unwrap()
            .num_rows(),
        1
    );
}

/// FNV-1a over 8-byte little-endian words, then the remaining bytes: the checksum
/// `SpatialIndex::to_bytes` appends (rewritten here to forge a consistent file).
fn index_checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0x0100_0000_01b3);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// STYLE.md: no panic may reach Python (`PolygonIndex.from_bytes`, pickling) from any
/// input. Index bytes carry no tree since format 2, so what can be forged is the ranked
/// data: a NaN center (checksum recomputed) must be refused, not rebuilt into a tree whose
/// first query panics in `f64::clamp` ("min > max, or either was NaN").
#[test]
fn forged_index_bytes_are_refused_not_panicking() {
    let index = SpatialIndex::from_centers(&[0.0], &[0.0], &[1.0], |_| true);
    let clean = index.to_bytes();
    // header: magic 8, rows 8, n 8; then rank_row 4, area 8, x 8, y 8; checksum 8.
    for (at, value) in [(28usize, f64::NAN), (36, f64::NAN), (44, f64::INFINITY)] {
        let mut bytes = clean.clone();
        bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
        let body = bytes.len() - 8;
        let sum = index_checksum(&bytes[..body]);
        bytes[body..].copy_from_slice(&sum.to_le_bytes());
        let outcome = std::panic::catch_unwind(|| SpatialIndex::from_bytes(&bytes));
        match outcome {
            Ok(Err(PolymatchError::InvalidIndexBytes(why))) => {
                assert!(why.contains("non-finite"), "{why}")
            }
            Ok(other) => panic!("byte {at}: a forged index was not refused: {other:?}"),
            Err(_) => panic!("byte {at}: a forged index panicked instead of being refused"),
        }
    }
    // a row out of range, and two ranks out of order
    let two = SpatialIndex::from_centers(&[0.0, 1.0], &[0.0, 1.0], &[1.0, 2.0], |_| true);
    let row_out_of_range = |b: &mut Vec<u8>| b[24] = 9;
    let areas_swapped = |b: &mut Vec<u8>| {
        let (lo, hi) = b.split_at_mut(40);
        lo[32..40].swap_with_slice(&mut hi[..8]);
    };
    type Edit<'a> = &'a dyn Fn(&mut Vec<u8>);
    let edits: [Edit<'_>; 2] = [&row_out_of_range, &areas_swapped];
    for edit in edits {
        let mut bytes = two.to_bytes();
        edit(&mut bytes);
        let body = bytes.len() - 8;
        let sum = index_checksum(&bytes[..body]);
        bytes[body..].copy_from_slice(&sum.to_le_bytes());
        assert!(matches!(
            SpatialIndex::from_bytes(&bytes),
            Err(PolymatchError::InvalidIndexBytes(_))
        ));
    }
}

#[test]
fn error_invalid_index_bytes_and_cancelled() {
    let index = SpatialIndex::from_centers(&[0.0, 1.0], &[0.0, 1.0], &[2.0, 1.0], |_| true);
    let bytes = index.to_bytes();
    let mut flipped = bytes.clone();
    flipped[40] ^= 0x10;
    for bad in [&b"nonsense"[..], &bytes[..bytes.len() - 1], &flipped, &[]] {
        assert!(matches!(
            SpatialIndex::from_bytes(bad),
            Err(PolymatchError::InvalidIndexBytes(_))
        ));
    }
    // A cancel flag already set stops the kernel, in every mode.
    let flag = std::sync::atomic::AtomicBool::new(true);
    let xs = vec![0.5; 20_000];
    let points = PointSlices::new(&xs, &xs, None).unwrap();
    for (how, all_candidates) in MODES {
        let options = MatchOptions {
            max_dist: 1.0,
            how,
            all_candidates,
            chunk_size: 1000,
        };
        assert!(matches!(
            match_points(&index, points, &options, 0, Some(&flag)),
            Err(PolymatchError::Cancelled)
        ));
    }
}
