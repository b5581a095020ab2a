//! The shape rules (`contains`, `covers`) against an exact oracle of their own: the
//! crossing rule of docs/SPEC.md with every orientation computed in big integers
//! ([`Exact`], no code shared with polymatch's `robust` predicate), on polygons whose
//! vertices sit on a coarse grid, so that points on vertices, on edges, on horizontal
//! edges at their own y and rays through vertices are the common case, not the rare one.
//! Then the edge index against the edge-by-edge test on large rings, and
//! `match_shapes` (best, k best, all candidates, by distance) against brute force.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, UInt32Type, UInt64Type};
use polymatch::shape::rule::{Contains, Covers};
use polymatch::shape::{Location, Outlines, ShapeIndex, ShapeRule};
use polymatch::synth::Rng;
use polymatch::{
    match_shapes, How, MatchOptions, PointSlices, PolygonColumns, Predicate, RankBy, SpatialIndex,
};
use proptest::prelude::*;

use crate::common::arrays::multi_polygons;
use crate::common::exact::Exact;
use crate::common::{Multi, Part};

/// The exact sign of the orientation of `p` relative to the edge `a -> b`.
fn orientation(a: (f64, f64), b: (f64, f64), p: (f64, f64)) -> i32 {
    // (bx - ax)(py - ay) - (by - ay)(px - ax), expanded into products of inputs.
    let mut e = Exact::new();
    e.add_product(b.0, p.1);
    e.add_product(-b.0, a.1);
    e.add_product(-a.0, p.1);
    e.add_product(-b.1, p.0);
    e.add_product(b.1, a.0);
    e.add_product(a.1, p.0);
    e.signum()
}

/// docs/SPEC.md's location of `p` in one part (the even-odd rule over all its rings,
/// boundary first), exactly.
fn oracle_part(part: &Part, p: (f64, f64)) -> Location {
    let mut crossings = 0;
    for ring in part {
        for i in 0..ring.len() {
            let a = ring[(i + ring.len() - 1) % ring.len()];
            let b = ring[i];
            let (lo_x, hi_x) = (a.0.min(b.0), a.0.max(b.0));
            let (lo_y, hi_y) = (a.1.min(b.1), a.1.max(b.1));
            let o = orientation(a, b, p);
            if o == 0 && lo_x <= p.0 && p.0 <= hi_x && lo_y <= p.1 && p.1 <= hi_y {
                return Location::Boundary;
            }
            // A half-open edge [lower, upper) in y, crossed right of p.
            if (a.1 > p.1) != (b.1 > p.1) {
                let up = b.1 > a.1;
                if (o > 0) == up {
                    crossings += 1;
                }
            }
        }
    }
    if crossings % 2 == 1 {
        Location::Inside
    } else {
        Location::Outside
    }
}

/// The location in a polygon (the union of its parts).
pub(crate) fn oracle(polygon: &Multi, p: (f64, f64)) -> Location {
    let mut best = Location::Outside;
    for part in polygon {
        match oracle_part(part, p) {
            Location::Inside => return Location::Inside,
            Location::Boundary => best = Location::Boundary,
            Location::Outside => {}
        }
    }
    best
}

fn accepts(rule: ShapeRule, l: Location) -> bool {
    match rule {
        ShapeRule::Contains => l == Location::Inside,
        ShapeRule::Covers => l != Location::Outside,
        ShapeRule::DWithin => unreachable!("tests/it/near.rs tests dwithin"),
    }
}

/// A ring of `n` vertices on the integer grid around `(cx, cy)`, radius about `r`,
/// counter-clockwise (or clockwise), with repeated and collinear vertices now and then.
fn grid_ring(
    rng: &mut Rng,
    cx: f64,
    cy: f64,
    r: f64,
    n: usize,
    clockwise: bool,
) -> Vec<(f64, f64)> {
    let mut ring = Vec::with_capacity(n);
    for i in 0..n {
        let t = std::f64::consts::TAU * i as f64 / n as f64;
        let rr = r * (0.6 + 0.4 * rng.uniform());
        ring.push(((cx + rr * t.cos()).round(), (cy + rr * t.sin()).round()));
        if rng.uniform() < 0.1 {
            ring.push(*ring.last().unwrap()); // a repeated vertex
        }
    }
    if clockwise {
        ring.reverse();
    }
    ring
}

/// Polygons on a small grid: star-shaped shells, some with a hole, some with a second
/// part, a few invalid (a hole sticking out, a bow-tie), shells either way round.
pub(crate) fn polygons(seed: u64, n: usize) -> Vec<Multi> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let cx = (rng.uniform() * 40.0).round();
            let cy = (rng.uniform() * 40.0).round();
            let r = 3.0 + rng.uniform() * 8.0;
            let sides = 3 + (rng.uniform() * 9.0) as usize;
            let cw = rng.uniform() < 0.5;
            let mut shell = grid_ring(&mut rng, cx, cy, r, sides, cw);
            let u = rng.uniform();
            if u < 0.05 {
                shell = vec![
                    (cx - 3.0, cy - 3.0),
                    (cx + 3.0, cy + 3.0),
                    (cx + 3.0, cy - 3.0),
                    (cx - 3.0, cy + 3.0),
                ];
            }
            let mut part: Part = vec![shell];
            if (0.05..0.35).contains(&u) {
                let hr = if u < 0.1 { r * 1.2 } else { r * 0.3 };
                let cw = rng.uniform() < 0.5;
                part.push(grid_ring(&mut rng, cx, cy, hr, 4, cw));
            }
            let mut multi: Multi = vec![part];
            if (0.35..0.5).contains(&u) {
                multi.push(vec![grid_ring(
                    &mut rng,
                    cx + 2.0 * r,
                    cy,
                    r * 0.5,
                    5,
                    false,
                )]);
            }
            multi
        })
        .collect()
}

/// Points on the half-integer grid over the polygons: on vertices, on edges, on
/// horizontal edges, and between.
pub(crate) fn points(seed: u64, n: usize) -> Vec<(f64, f64)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            (
                (rng.uniform() * 120.0).round() / 2.0 - 5.0,
                (rng.uniform() * 120.0).round() / 2.0 - 5.0,
            )
        })
        .collect()
}

pub(crate) fn index_of(polys: &[Multi]) -> (Arc<Outlines>, SpatialIndex) {
    let columns: PolygonColumns = multi_polygons(polys);
    let index = SpatialIndex::new(&columns);
    (Arc::new(Outlines::new(Arc::new(columns)).unwrap()), index)
}

#[test]
fn every_part_located_exactly() {
    for seed in 0..4 {
        let polys = polygons(seed, 60);
        let (outlines, _) = index_of(&polys);
        let parts = outlines.parts().to_vec();
        let pts = points(seed + 100, 1500);
        let mut boundary = 0;
        let mut j = 0;
        for (row, polygon) in polys.iter().enumerate() {
            for part in polygon {
                assert_eq!(parts[j].row as usize, row);
                for &p in &pts {
                    let want = oracle_part(part, p);
                    boundary += usize::from(want == Location::Boundary);
                    assert_eq!(
                        outlines.locate(j, p.0, p.1),
                        want,
                        "row {row} part {part:?} {p:?}"
                    );
                }
                j += 1;
            }
        }
        assert!(
            boundary > 100,
            "the grid puts many points on boundaries: {boundary}"
        );
    }
}

#[test]
fn the_edge_index_equals_the_edge_by_edge_test() {
    let mut rng = Rng::new(7);
    // Rings of 2,000 vertices on a grid (many vertices share a y), one with a hole.
    let shell = grid_ring(&mut rng, 0.0, 0.0, 400.0, 2000, false);
    let hole = grid_ring(&mut rng, 0.0, 0.0, 150.0, 800, true);
    let polys: Vec<Multi> = vec![vec![vec![shell.clone(), hole]], vec![vec![shell]]];
    let (outlines, _) = index_of(&polys);
    let mut n = 0;
    for j in 0..outlines.parts().len() {
        for _ in 0..20_000 {
            let p = (
                (rng.uniform() * 900.0).round() - 450.0,
                (rng.uniform() * 900.0).round() - 450.0,
            );
            assert_eq!(
                outlines.locate(j, p.0, p.1),
                outlines.locate_unindexed(j, p.0, p.1),
                "{p:?}"
            );
            n += 1;
        }
        // every vertex and every edge midpoint
        let columns = outlines.polygons();
        let (x, y) = (columns.x(), columns.y());
        for i in 0..x.len() - 1 {
            for p in [
                (x[i], y[i]),
                ((x[i] + x[i + 1]) / 2.0, (y[i] + y[i + 1]) / 2.0),
            ] {
                assert_eq!(
                    outlines.locate(j, p.0, p.1),
                    outlines.locate_unindexed(j, p.0, p.1),
                    "{p:?}"
                );
            }
        }
    }
    assert!(n > 0);
}

/// Every candidate of every point by brute force, for both rules: the ranks in rank
/// order whose polygon contains it, and those that cover it.
fn brute(polys: &[Multi], index: &SpatialIndex, p: (f64, f64)) -> [Vec<u32>; 2] {
    let mut out = [Vec::new(), Vec::new()];
    for r in 0..index.matchable() as u32 {
        let l = oracle(&polys[index.row_of(r) as usize], p);
        for (rule, list) in [ShapeRule::Contains, ShapeRule::Covers]
            .into_iter()
            .zip(&mut out)
        {
            if accepts(rule, l) {
                list.push(r);
            }
        }
    }
    out
}

#[test]
fn shape_index_queries_equal_brute_force() {
    for seed in 0..3 {
        let polys = polygons(seed + 10, 120);
        let (outlines, index) = index_of(&polys);
        let shapes = ShapeIndex::new(outlines, &index).unwrap();
        for p in points(seed + 20, 700) {
            let wants = brute(&polys, &index, p);
            for (rule, want) in [ShapeRule::Contains, ShapeRule::Covers]
                .into_iter()
                .zip(wants)
            {
                let (mut got, mut best2) = (Vec::new(), Vec::new());
                let best = if rule == ShapeRule::Contains {
                    shapes.candidates(Contains, p.0, p.1, &mut got);
                    shapes.best_k(Contains, p.0, p.1, 2, &mut best2);
                    shapes.best(Contains, p.0, p.1)
                } else {
                    shapes.candidates(Covers, p.0, p.1, &mut got);
                    shapes.best_k(Covers, p.0, p.1, 2, &mut best2);
                    shapes.best(Covers, p.0, p.1)
                };
                assert_eq!(got, want, "{rule:?} {p:?}");
                assert_eq!(best2, want[..want.len().min(2)], "{rule:?} {p:?}");
                assert_eq!(best, want.first().copied().unwrap_or(u32::MAX));
            }
        }
    }
}

pub(crate) fn options(
    predicate: Predicate,
    rank_by: RankBy,
    k: u32,
    all: bool,
    how: How,
    chunk: usize,
) -> MatchOptions {
    MatchOptions {
        predicate,
        max_dist: f64::NAN,
        how,
        all_candidates: all,
        chunk_size: chunk,
        rank_by,
        descending: false,
        k,
        ..MatchOptions::default()
    }
}

/// (point, polygon row, rank column) triples of a result.
pub(crate) fn triples(r: &RecordBatch) -> Vec<(u64, Option<u32>, Option<u32>)> {
    let p = r.column(0).as_primitive::<UInt64Type>();
    let g = r.column(1).as_primitive::<UInt32Type>();
    let rank = r
        .column_by_name("rank")
        .map(|c| c.as_primitive::<UInt32Type>().clone());
    (0..r.num_rows())
        .map(|i| {
            (
                p.value(i),
                g.is_valid(i).then(|| g.value(i)),
                rank.as_ref()
                    .and_then(|c| c.is_valid(i).then(|| c.value(i))),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// `match_shapes` for every rank rule, k, how and all candidates equals brute force,
    /// for any chunk size.
    #[test]
    fn match_shapes_equals_brute_force(seed in 0u64..1000, k in 1u32..4, chunk in 1usize..300,
                                       covers in any::<bool>(), left in any::<bool>(),
                                       mode in 0u8..3) {
        let polys = polygons(seed, 40);
        let (outlines, index) = index_of(&polys);
        let shapes = ShapeIndex::new(outlines, &index).unwrap();
        let pts = points(seed + 1, 300);
        let (xs, ys): (Vec<f64>, Vec<f64>) = pts.iter().copied().unzip();
        let predicate = if covers { Predicate::Covers } else { Predicate::Contains };
        let how = if left { How::Left } else { How::Inner };
        let (rank_by, all) = match mode { 0 => (RankBy::Area, false), 1 => (RankBy::Distance, false), _ => (RankBy::Area, true) };
        let k = if all { 1 } else { k };
        let o = options(predicate, rank_by.clone(), k, all, how, chunk);
        let got = match_shapes(&shapes, PointSlices::new(&xs, &ys, None).unwrap(), &o, 5, None).unwrap();
        let distance = got.column(2).as_primitive::<Float64Type>();
        prop_assert!((0..got.num_rows()).all(|i| distance.is_null(i) || distance.value(i) == 0.0));
        let mut want = Vec::new();
        for (i, &p) in pts.iter().enumerate() {
            let [contained, covered] = brute(&polys, &index, p);
            let mut rows: Vec<u32> = (if covers { covered } else { contained }).into_iter().map(|r| index.row_of(r)).collect();
            if all || rank_by == RankBy::Distance {
                rows.sort_unstable();
            }
            if !all {
                rows.truncate(k as usize);
            }
            if rows.is_empty() && left {
                want.push((i as u64 + 5, None, None));
            }
            for (j, &row) in rows.iter().enumerate() {
                want.push((i as u64 + 5, Some(row), (k > 1).then_some(j as u32 + 1)));
            }
        }
        prop_assert_eq!(triples(&got), want);
    }
}
