//! Derived columns (center, area) against the exact oracle (`common::exact`), on the
//! seed article's workload and on random polygons (holes, parts, large offsets); and
//! SPEC.md's area rules (holes, negative areas, signed zeros).

use polymatch::{match_points, MatchOptions, PointSlices, SpatialIndex};
use proptest::prelude::*;

use crate::common::arrays::{multi_polygons, ring_polygons};
use crate::common::exact::{
    assert_exact, assert_exact_parts, exact_area2, is_rounding_of, open, Exact,
};
use crate::common::oracle::{check_against_oracle, index_best, MatchCase, MODES};
use crate::common::{below, next_up, shuffle, Multi, Rng};

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
    // The extremes: the smallest subnormal squared, and the largest finite squared.
    let mut tiny = Exact::new();
    tiny.add_product(5e-324, 5e-324);
    assert_eq!(tiny.signum(), 1);
    tiny.add_product(-5e-324, 5e-324);
    assert_eq!(tiny.signum(), 0);
    let mut huge = Exact::new();
    huge.add_product(f64::MAX, f64::MAX);
    huge.add_product(-f64::MAX, -f64::MAX);
    assert_eq!(huge.signum(), 1);
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
    let mut rng = Rng::new(6);
    let rings: Vec<Vec<(f64, f64)>> = (0..1000)
        .map(|_| {
            let dx = below(&mut rng, 100) as f64;
            let dy = below(&mut rng, 100) as f64;
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
    shuffle(&mut rng, &mut xs);
    shuffle(&mut rng, &mut ys);
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
