//! The `dwithin` rule (distance to the outline) against brute force: candidates decided
//! by the location oracle of shapes.rs and the exact per-edge test, distances by the
//! per-edge float formula; on grid polygons and half-integer points, where distances
//! exactly equal to `max_dist` are common. Then the edge index's distance paths against
//! the edge-by-edge ones on large rings, and `match_shapes` with every rank rule.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Float64Type;
use polymatch::shape::distance::{exact_within, segment_squared};
use polymatch::shape::index::ShapeNearScratch;
use polymatch::shape::rule::DWithin;
use polymatch::shape::{Location, Outlines, ShapeIndex};
use polymatch::synth::Rng;
use polymatch::{match_shapes, How, PointSlices, Predicate, RankBy, SpatialIndex};
use proptest::prelude::*;

use crate::common::arrays::multi_polygons;
use crate::common::Multi;
use crate::shapes::{index_of, options, oracle, points, polygons, triples};

/// Every edge of a polygon, closing edges included.
fn edges(poly: &Multi) -> impl Iterator<Item = ((f64, f64), (f64, f64))> + '_ {
    poly.iter().flatten().flat_map(|ring| {
        (0..ring.len()).map(move |i| (ring[(i + ring.len() - 1) % ring.len()], ring[i]))
    })
}

/// Brute force: is the polygon a `dwithin` candidate, and its float squared distance.
fn brute(poly: &Multi, p: (f64, f64), d: f64) -> (bool, f64) {
    let inside = oracle(poly, p) != Location::Outside;
    brute_located(poly, p, d, inside)
}

/// [`brute`] for a point known to be in or on the polygon, or not.
fn brute_located(poly: &Multi, p: (f64, f64), d: f64, inside: bool) -> (bool, f64) {
    let near = edges(poly).any(|(a, b)| exact_within(p.0, p.1, a.0, a.1, b.0, b.1, d));
    let s = if inside {
        0.0
    } else {
        edges(poly)
            .map(|(a, b)| segment_squared(p.0, p.1, a.0, a.1, b.0, b.1))
            .fold(f64::INFINITY, f64::min)
    };
    (inside || near || d == f64::INFINITY, s)
}

const RADII: [f64; 6] = [0.5, 1.0, 2.5, 3.0, 12.0, f64::INFINITY];

#[test]
fn dwithin_queries_equal_brute_force() {
    for seed in 0..3 {
        let polys = polygons(seed + 30, 100);
        let (outlines, index) = index_of(&polys);
        let shapes = ShapeIndex::new(outlines, &index).unwrap();
        let (mut got, mut best, mut near, mut seen) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            ShapeNearScratch::default(),
        );
        for p in points(seed + 40, 150) {
            let inside: Vec<bool> = polys
                .iter()
                .map(|q| oracle(q, p) != Location::Outside)
                .collect();
            for d in RADII {
                let rule = DWithin::new(d);
                let mut want = Vec::new();
                let mut nearest = Vec::new();
                for r in 0..index.matchable() as u32 {
                    let row = index.row_of(r);
                    let (ok, s) = brute_located(&polys[row as usize], p, d, inside[row as usize]);
                    if ok {
                        want.push(r);
                        nearest.push((s, row, r));
                        assert_eq!(shapes.squared_distance(r, p.0, p.1), s, "{p:?} row {row}");
                    }
                }
                shapes.candidates(rule, p.0, p.1, &mut got);
                assert_eq!(got, want, "{p:?} d={d}");
                shapes.best_k(rule, p.0, p.1, 3, &mut best);
                assert_eq!(best, want[..want.len().min(3)], "{p:?} d={d}");
                assert_eq!(
                    shapes.best(rule, p.0, p.1),
                    want.first().copied().unwrap_or(u32::MAX)
                );
                nearest.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                nearest.truncate(4);
                shapes.nearest_k(rule, p.0, p.1, 4, &mut near, &mut seen);
                assert_eq!(near, nearest, "{p:?} d={d}");
            }
        }
    }
}

#[test]
fn a_point_at_exactly_max_dist_is_not_a_candidate() {
    // The unit square; points at distance exactly 0.5 from an edge, a vertex, and a
    // diagonal distance of exactly 5 (3-4-5) from a corner.
    let polys: Vec<Multi> = vec![vec![vec![vec![
        (0.0, 0.0),
        (1.0, 0.0),
        (1.0, 1.0),
        (0.0, 1.0),
    ]]]];
    let (outlines, index) = index_of(&polys);
    let shapes = ShapeIndex::new(outlines, &index).unwrap();
    for (p, d, want) in [
        ((0.5, -0.5), 0.5, false),
        ((0.5, -0.5), 0.5f64.next_up(), true),
        ((1.5, 0.5), 0.5, false),
        ((4.0, 5.0), 5.0, false),
        ((4.0, 5.0), 5.0f64.next_up(), true),
        ((0.5, 0.5), f64::MIN_POSITIVE, true), // inside: distance 0
        ((1.0, 0.5), f64::MIN_POSITIVE, true), // on the boundary
    ] {
        assert_eq!(
            shapes.best(DWithin::new(d), p.0, p.1) == 0,
            want,
            "{p:?} {d}"
        );
    }
    assert_eq!(shapes.squared_distance(0, 4.0, 5.0), 25.0);
    assert_eq!(
        shapes.best(DWithin::new(f64::INFINITY), f64::NAN, 0.0),
        u32::MAX
    );
    assert_eq!(
        shapes.best(DWithin::new(f64::INFINITY), f64::INFINITY, 0.0),
        u32::MAX
    );
}

/// Jagged circles of many vertices (edge-indexed), with a hole.
fn large(seed: u64, n: usize) -> Vec<Multi> {
    let mut rng = Rng::new(seed);
    (0..4)
        .map(|k| {
            let (cx, cy) = (k as f64 * 50.0, (k % 2) as f64 * 30.0);
            let ring = |r: f64, rng: &mut Rng| -> Vec<(f64, f64)> {
                (0..n)
                    .map(|i| {
                        let t = std::f64::consts::TAU * i as f64 / n as f64;
                        let rr = r * (0.8 + 0.2 * rng.uniform());
                        (cx + rr * t.cos(), cy + rr * t.sin())
                    })
                    .collect()
            };
            let shell = ring(20.0, &mut rng);
            let hole: Vec<_> = ring(5.0, &mut rng).into_iter().rev().collect();
            vec![vec![shell, hole]]
        })
        .collect()
}

#[test]
fn edge_indexed_distances_equal_the_edge_by_edge_ones() {
    let polys = large(7, 1000);
    let columns = multi_polygons(&polys);
    let index = SpatialIndex::new(&columns);
    let outlines = Arc::new(Outlines::new(Arc::new(columns)).unwrap());
    let shapes = ShapeIndex::new(outlines.clone(), &index).unwrap();
    let mut rng = Rng::new(8);
    for _ in 0..150 {
        let p = (rng.uniform() * 240.0 - 40.0, rng.uniform() * 100.0 - 35.0);
        for r in 0..index.matchable() as u32 {
            let row = index.row_of(r) as usize;
            let inside = oracle(&polys[row], p) != Location::Outside;
            for d in [0.3, 2.0, 9.0] {
                let (ok, s) = brute_located(&polys[row], p, d, inside);
                assert_eq!(shapes.squared_distance(r, p.0, p.1), s);
                let mut got = Vec::new();
                shapes.candidates(DWithin::new(d), p.0, p.1, &mut got);
                assert_eq!(got.contains(&r), ok, "{p:?} row {row} d {d}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// `match_shapes` with `dwithin` for every rank rule, k, how, all candidates and
    /// chunk size equals brute force, distances included.
    #[test]
    fn match_dwithin_equals_brute_force(seed in 0u64..1000, k in 1u32..4, chunk in 1usize..300,
                                        left in any::<bool>(), mode in 0u8..4, di in 0usize..6) {
        let d = RADII[di];
        let polys = polygons(seed, 40);
        let (outlines, index) = index_of(&polys);
        let shapes = ShapeIndex::new(outlines, &index).unwrap();
        let pts = points(seed + 1, 120);
        let (xs, ys): (Vec<f64>, Vec<f64>) = pts.iter().copied().unzip();
        let how = if left { How::Left } else { How::Inner };
        let (rank_by, all, descending) = match mode {
            0 => (RankBy::Area, false, false),
            1 => (RankBy::Distance, false, false),
            2 => (RankBy::Distance, false, true),
            _ => (RankBy::Area, true, false),
        };
        let k = if all { 1 } else { k };
        let mut o = options(Predicate::Dwithin, rank_by.clone(), k, all, how, chunk);
        o.max_dist = d;
        o.descending = descending;
        let got = match_shapes(&shapes, PointSlices::new(&xs, &ys, None).unwrap(), &o, 5, None).unwrap();
        let mut want = Vec::new();
        let mut want_distance = Vec::new();
        for (i, &p) in pts.iter().enumerate() {
            let mut c: Vec<(f64, u32, u32)> = (0..index.matchable() as u32)
                .filter_map(|r| {
                    let row = index.row_of(r);
                    let (ok, s) = brute(&polys[row as usize], p, d);
                    ok.then_some((s, row, r))
                })
                .collect();
            match (all, &rank_by, descending) {
                (true, _, _) => c.sort_by_key(|e| e.1),
                (_, RankBy::Distance, false) => c.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))),
                (_, RankBy::Distance, true) => c.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))),
                _ => c.sort_by_key(|e| e.2),
            }
            if !all {
                c.truncate(k as usize);
            }
            if c.is_empty() && left {
                want.push((i as u64 + 5, None, None));
                want_distance.push(None);
            }
            for (j, e) in c.iter().enumerate() {
                want.push((i as u64 + 5, Some(e.1), (k > 1).then_some(j as u32 + 1)));
                want_distance.push(Some(e.0.sqrt()));
            }
        }
        prop_assert_eq!(triples(&got), want);
        let distance = got.column(2).as_primitive::<Float64Type>();
        let got_distance: Vec<Option<f64>> = (0..got.num_rows())
            .map(|i| distance.is_valid(i).then(|| distance.value(i)))
            .collect();
        prop_assert_eq!(got_distance, want_distance);
    }
}
