//! The spatial index against the brute-force oracle of SPEC.md's match (proptest): point
//! by point (`best_within`, `for_each_within`), a group at a time (`best_within_group`,
//! the Z-ordered path's search), and through its bytes.

use polymatch::index::cells::Planar;
use polymatch::index::{distance, CellGrid, GroupEntry, NO_MATCH};
use polymatch::SpatialIndex;
use proptest::prelude::*;

use crate::common::oracle::{
    brute_best, brute_candidates, brute_candidates_with_distance, index_best, index_candidates,
};
use crate::common::{next_down, next_up};

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

impl IndexCase {
    fn index(&self) -> SpatialIndex {
        SpatialIndex::from_centers(&self.cx, &self.cy, &self.area, |i| self.keep[i])
    }
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

/// Points near the centers and random radii added to a case of centers, areas and keeps.
fn with_points(
    centers: impl Strategy<Value = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<bool>)>,
    span: f64,
) -> impl Strategy<Value = IndexCase> {
    centers
        .prop_flat_map(move |(cx, cy, area, keep)| {
            let pts = points_near(cx.clone(), cy.clone(), span);
            (Just((cx, cy, area, keep)), pts, radii())
        })
        .prop_map(|((cx, cy, area, keep), points, radii)| IndexCase {
            cx,
            cy,
            area,
            keep,
            points,
            radii,
        })
}

/// Uniform centers, distinct random areas.
fn uniform_case() -> impl Strategy<Value = IndexCase> {
    let centers = (0usize..300).prop_flat_map(|n| {
        (
            prop::collection::vec(-100.0..100.0f64, n),
            prop::collection::vec(-100.0..100.0f64, n),
            prop::collection::vec(0.0..1000.0f64, n),
            prop::collection::vec(prop::bool::weighted(0.9), n),
        )
    });
    with_points(centers, 120.0)
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
    let centers = (
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
        });
    with_points(centers, 60.0)
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
    let keep = &case.keep;
    let index = case.index();
    prop_assert_eq!(index.rows(), case.cx.len());
    prop_assert_eq!(index.matchable(), keep.iter().filter(|&&k| k).count());
    for &(px, py) in &case.points {
        for r in radii_for(case, px, py) {
            let want = brute_best(&case.cx, &case.cy, &case.area, keep, px, py, r);
            prop_assert_eq!(
                index_best(&index, px, py, r),
                want,
                "best_within({}, {}, {})",
                px,
                py,
                r
            );
            let got = index_candidates(&index, px, py, r);
            let want = brute_candidates_with_distance(&case.cx, &case.cy, keep, px, py, r);
            prop_assert_eq!(got, want, "for_each_within({}, {}, {})", px, py, r);
        }
    }
    Ok(())
}

/// `best_within_group` (what `match_points` runs, 32 points per tree walk, on large
/// inputs in Z-order) against brute force, point by point, for two groups: the case's
/// points as they are (spread out, some not finite), and the same points pulled to
/// within 1e-3 of the first one (a tight group, where whole subtrees lie inside every
/// point's disk). The radii: fixed, random, and exact distances from the first and last
/// points, for which the group search applies.
fn check_group_case(case: &IndexCase) -> Result<(), TestCaseError> {
    let index = case.index();
    let (x0, y0) = case.points[0];
    let tight: Vec<(f64, f64)> = case
        .points
        .iter()
        .map(|&(x, y)| (x0 + (x - x0) * 1e-3, y0 + (y - y0) * 1e-3))
        .collect();
    let (xl, yl) = case.points[case.points.len() - 1];
    let mut radii = radii_for(case, x0, y0);
    radii.extend(radii_for(case, xl, yl));
    radii.retain(|&r| SpatialIndex::group_search_applies(r));
    let mut entries: Vec<GroupEntry> = Vec::new();
    for group in [&case.points, &tight] {
        let (xs, ys): (Vec<f64>, Vec<f64>) = group.iter().copied().unzip();
        let mut out = vec![0u32; xs.len()];
        for &r in &radii {
            index.best_within_group(&xs, &ys, r, &mut out, &mut entries);
            for (k, &rank) in out.iter().enumerate() {
                let got = (rank != NO_MATCH).then(|| index.row_of(rank));
                let want = brute_best(&case.cx, &case.cy, &case.area, &case.keep, xs[k], ys[k], r);
                prop_assert_eq!(
                    got,
                    want,
                    "best_within_group: point {} ({}, {}) of {}, max_dist {}",
                    k,
                    xs[k],
                    ys[k],
                    xs.len(),
                    r
                );
            }
        }
    }
    Ok(())
}

/// Cell lists (`CellGrid`, what `match_points` runs once a radius has served as many
/// points as there are polygons) against brute force, point by point: the case's points,
/// the same points pulled close to the first, and points on cell edges and corners (the
/// half-open cell boundaries), for every radius where the lists apply.
fn check_cells_case(case: &IndexCase) -> Result<(), TestCaseError> {
    let index = case.index();
    let (x0, y0) = case.points[0];
    let mut radii = radii_for(case, x0, y0);
    radii.retain(|&r| r.is_finite());
    for &r in &radii {
        let Some(grid) = CellGrid::<Planar>::build(&index, r) else {
            continue;
        };
        let (xe, ye) = grid.edges();
        let mut points = case.points.clone();
        points.extend(
            case.points
                .iter()
                .map(|&(x, y)| (x0 + (x - x0) * 1e-3, y0 + (y - y0) * 1e-3)),
        );
        let step = xe.len() / 7 + 1;
        for (k, &x) in xe.iter().enumerate().step_by(step) {
            let y = ye[k.min(ye.len() - 1)];
            points.extend([
                (x, y),
                (x, y0),
                (x0, y),
                (next_down(x), y),
                (x, next_down(y)),
            ]);
        }
        let (xs, ys): (Vec<f64>, Vec<f64>) = points.iter().copied().unzip();
        let mut out = vec![0u32; xs.len()];
        grid.best_within_many(&index, &xs, &ys, &mut out);
        for (k, &rank) in out.iter().enumerate() {
            prop_assert_eq!(rank, grid.best_within(&index, xs[k], ys[k]));
            let got = (rank != NO_MATCH).then(|| index.row_of(rank));
            let want = brute_best(&case.cx, &case.cy, &case.area, &case.keep, xs[k], ys[k], r);
            prop_assert_eq!(
                got,
                want,
                "cell lists: point {} ({}, {}), max_dist {}, grid {:?}",
                k,
                xs[k],
                ys[k],
                r,
                grid.size()
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn cell_lists_equal_brute_force_uniform(case in uniform_case()) {
        check_cells_case(&case)?;
    }

    #[test]
    fn cell_lists_equal_brute_force_clustered(case in clustered_case()) {
        check_cells_case(&case)?;
    }

    #[test]
    fn cell_lists_equal_brute_force_equal_areas(case in equal_area_case()) {
        check_cells_case(&case)?;
    }

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
    fn group_search_equals_brute_force_uniform(case in uniform_case()) {
        check_group_case(&case)?;
    }

    #[test]
    fn group_search_equals_brute_force_clustered(case in clustered_case()) {
        check_group_case(&case)?;
    }

    #[test]
    fn group_search_equals_brute_force_equal_areas(case in equal_area_case()) {
        check_group_case(&case)?;
    }

    #[test]
    fn index_bytes_round_trip(case in uniform_case()) {
        let index = case.index();
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
    let index = SpatialIndex::from_centers(&cx, &cy, &area, |i| keep[i]);
    for (px, py) in [(1.0, -2.0), (1.5, -2.0), (4.0, 2.0), (1.0, 3.0)] {
        for r in [0.5, 5.0, next_up(5.0), f64::INFINITY] {
            assert_eq!(
                index_best(&index, px, py, r),
                brute_best(&cx, &cy, &area, &keep, px, py, r)
            );
            assert_eq!(
                index_candidates(&index, px, py, r),
                brute_candidates_with_distance(&cx, &cy, &keep, px, py, r),
                "({px}, {py}), max_dist {r}"
            );
        }
    }
    // (4, 2) is at distance exactly 5 of (1, -2): excluded at max_dist = 5.
    assert_eq!(index_best(&index, 4.0, 2.0, 5.0), None);
    assert!(brute_candidates(&cx, &cy, &keep, 4.0, 2.0, 5.0).is_empty());
    assert_eq!(index_best(&index, 4.0, 2.0, next_up(5.0)), Some(3));
}

#[test]
fn index_of_nothing() {
    let index = SpatialIndex::from_centers(&[], &[], &[], |_| true);
    assert_eq!(index.best_within(0.0, 0.0, f64::INFINITY), NO_MATCH);
    let none = SpatialIndex::from_centers(&[0.0], &[0.0], &[1.0], |_| false);
    assert_eq!(none.best_within(0.0, 0.0, f64::INFINITY), NO_MATCH);
    assert!(index_candidates(&none, 0.0, 0.0, f64::INFINITY).is_empty());
    let mut out = [0u32; 2];
    none.best_within_group(&[0.0, 1.0], &[0.0, 1.0], 5.0, &mut out, &mut Vec::new());
    assert_eq!(out, [NO_MATCH; 2]);
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

#[test]
fn expected_points_make_the_first_call_build_the_cell_lists() {
    // 2,000 centers on a 1000 x 1000 square, ~30 candidates per point at r = 69.
    let n = 2_000usize;
    let mut state = 0x5eed_u64;
    let mut unit = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let cx: Vec<f64> = (0..n).map(|_| unit() * 1000.0).collect();
    let cy: Vec<f64> = (0..n).map(|_| unit() * 1000.0).collect();
    let area: Vec<f64> = (0..n).map(|_| 1.0 + unit()).collect();
    let r = 69.0;
    let index = SpatialIndex::from_centers(&cx, &cy, &area, |_| true);
    // One point asked for: far too few for the lists to pay.
    assert!(index.cell_lists(r, 1).is_none());
    let announced = SpatialIndex::from_centers(&cx, &cy, &area, |_| true);
    announced.expect_points(r, 10 * n);
    let grid = announced
        .cell_lists(r, 1)
        .expect("announced points make the first call build the lists");
    // Another radius is not affected; infinite and NaN radii (no lists) are ignored.
    assert!(announced.cell_lists(2.0 * r, 1).is_none());
    for odd in [f64::INFINITY, f64::NAN] {
        announced.expect_points(odd, 10 * n);
        assert!(announced.cell_lists(odd, 10 * n).is_none());
    }
    // Announced points are a total, not added to the points asked for: announcing 1.5
    // points per polygon and then asking for as many does not build the lists.
    let half = SpatialIndex::from_centers(&cx, &cy, &area, |_| true);
    half.expect_points(r, 3 * n / 2);
    assert!(half.cell_lists(r, 3 * n / 2).is_none());
    assert!(half.cell_lists(r, n).is_some());
    // Same answers as the tree, whichever path computed them.
    for k in 0..500 {
        let (px, py) = (unit() * 1000.0, unit() * 1000.0);
        assert_eq!(
            grid.best_within(&announced, px, py),
            index.best_within(px, py, r),
            "point {k}"
        );
    }
}
