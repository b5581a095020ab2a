//! `match_points`: identical answers for every chunk size and thread count, equal to the
//! brute-force oracle, on small random inputs, on inputs large enough for the Z-ordered
//! group search (random, through proptest), and on hand-made edge cases.

use arrow::array::{AsArray, RecordBatch};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{Float64Type, UInt64Type};
use polymatch::index::distance;
use polymatch::matching::with_threads;
use polymatch::{match_points, How, MatchOptions, PointSlices, PolygonColumns, SpatialIndex};
use proptest::prelude::*;

use crate::common::arrays::ring_polygons;
use crate::common::oracle::{
    brute_best, check_against_oracle, index_best, polygon_rows, MatchCase, SlabOracle, MODES,
};
use crate::common::{below, Rng};

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

/// Every mode, each with chunk sizes 1, 7 and 8192 (three results per mode, in order).
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
                ..MatchOptions::default()
            };
            out.push(match_points(index, points, &options, 1000, None).unwrap());
        }
    }
    out
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

// --- Large inputs: the Z-ordered path and its group search ----------------------------

/// `best_ranks` (src/matching.rs) matches points in Z-order when there are at least
/// `SORT_MIN_POINTS` = 4096 points and `SORT_MIN_POLYGONS` = 2^15 matchable polygons and
/// `max_dist` is finite; there, if `SpatialIndex::group_search_applies(max_dist)`, each
/// chunk is searched 32 points at a time by `best_within_group`. These mirror those
/// private constants: the random cases below are built just above them.
const ZORDER_MIN_POINTS: usize = 4096;
const ZORDER_MIN_POLYGONS: usize = 1 << 15;

/// Where the centers lie.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// Uniform over a 1000 x 1000 square.
    Uniform,
    /// Around 16 cluster centers (sigma 5).
    Clustered,
    /// On the vertical line x = 5 (degenerate Z-order bounds).
    OnALine,
    /// On a 200 x 200 integer grid, many duplicates; points on half-integers (exact
    /// distances, and exact ties in distance).
    IntegerGrid,
}

impl Layout {
    /// About the spacing of the centers: `max_dist` is a multiple of it.
    fn unit(self) -> f64 {
        match self {
            Layout::Uniform => 4.0,
            Layout::Clustered => 0.25,
            Layout::OnALine => 0.1,
            Layout::IntegerGrid => 1.0,
        }
    }
}

/// One large case, generated from a seed by `synth::Rng` (proptest shrinks the
/// parameters, not 100k numbers).
#[derive(Debug, Clone)]
struct LargeCase {
    layout: Layout,
    seed: u64,
    /// Distinct area values (few: ties on area; 0: all distinct).
    area_levels: u64,
    /// `max_dist` in units of the layout's spacing.
    scale: f64,
    /// Points beyond 4096 (so the last group of 32 is partial).
    extra_points: usize,
}

/// Centers, areas and keep flags of the polygons; coordinates and validity of the points.
struct LargeData {
    cx: Vec<f64>,
    cy: Vec<f64>,
    area: Vec<f64>,
    keep: Vec<bool>,
    px: Vec<f64>,
    py: Vec<f64>,
    valid: Vec<bool>,
}

impl LargeCase {
    fn max_dist(&self) -> f64 {
        self.scale * self.layout.unit()
    }

    fn data(&self) -> LargeData {
        let mut rng = Rng::new(self.seed);
        // 1 row in 53 unmatchable: still above 2^15 matchable rows.
        let p = ZORDER_MIN_POLYGONS + 1200;
        let clusters: Vec<(f64, f64)> = (0..16)
            .map(|_| (1000.0 * rng.uniform(), 1000.0 * rng.uniform()))
            .collect();
        let (cx, cy): (Vec<f64>, Vec<f64>) = (0..p)
            .map(|_| match self.layout {
                Layout::Uniform => (1000.0 * rng.uniform(), 1000.0 * rng.uniform()),
                Layout::Clustered => {
                    let (x, y) = clusters[below(&mut rng, 16) as usize];
                    (x + 5.0 * rng.normal(), y + 5.0 * rng.normal())
                }
                Layout::OnALine => (5.0, 1000.0 * rng.uniform()),
                Layout::IntegerGrid => (below(&mut rng, 200) as f64, below(&mut rng, 200) as f64),
            })
            .unzip();
        let area: Vec<f64> = (0..p)
            .map(|_| match self.area_levels {
                0 => 1000.0 * rng.uniform(),
                k => below(&mut rng, k) as f64,
            })
            .collect();
        let keep: Vec<bool> = (0..p).map(|j| j % 53 != 7).collect();
        let max_dist = self.max_dist();
        let n = ZORDER_MIN_POINTS + self.extra_points;
        // Clumps: many points on the same few spots make tight groups of 32 in Z-order,
        // whose shared search finds whole subtrees inside every point's disk.
        let clumps: Vec<(f64, f64)> = (0..24)
            .map(|_| {
                let j = below(&mut rng, p as u64) as usize;
                match self.layout {
                    Layout::IntegerGrid => (cx[j] + 0.5, cy[j]),
                    _ => (
                        cx[j] + max_dist * rng.normal(),
                        cy[j] + max_dist * rng.normal(),
                    ),
                }
            })
            .collect();
        let (mut px, mut py): (Vec<f64>, Vec<f64>) = (0..n)
            .map(|_| {
                let j = below(&mut rng, p as u64) as usize;
                match below(&mut rng, 10) {
                    0 => clumps[below(&mut rng, clumps.len() as u64) as usize],
                    // on a center, or just off it
                    1 => (cx[j], cy[j]),
                    2 => (cx[j] + 1e-9 * rng.normal(), cy[j] + 1e-9 * rng.normal()),
                    // near a center, within about the match distance
                    3..=5 => (
                        cx[j] + 2.0 * max_dist * rng.normal(),
                        cy[j] + 2.0 * max_dist * rng.normal(),
                    ),
                    _ => match self.layout {
                        Layout::IntegerGrid => (
                            below(&mut rng, 401) as f64 * 0.5,
                            below(&mut rng, 401) as f64 * 0.5,
                        ),
                        Layout::OnALine => (
                            5.0 + max_dist * (rng.uniform() - 0.5),
                            1100.0 * rng.uniform() - 50.0,
                        ),
                        _ => (1100.0 * rng.uniform() - 50.0, 1100.0 * rng.uniform() - 50.0),
                    },
                }
            })
            .unzip();
        for i in (0..n).step_by(97) {
            px[i] = f64::NAN;
        }
        for i in (5..n).step_by(89) {
            py[i] = f64::INFINITY;
        }
        let valid = (0..n).map(|i| i % 13 != 4).collect();
        LargeData {
            cx,
            cy,
            area,
            keep,
            px,
            py,
            valid,
        }
    }
}

fn large_case() -> impl Strategy<Value = LargeCase> {
    (
        prop::sample::select(vec![
            Layout::Uniform,
            Layout::Clustered,
            Layout::OnALine,
            Layout::IntegerGrid,
        ]),
        any::<u64>(),
        prop::sample::select(vec![0u64, 1, 3, 50]),
        // 1e-160: max_dist^2 is subnormal, the Z-ordered path without the group search.
        prop::sample::select(vec![0.5, 1.0, std::f64::consts::SQRT_2, 2.5, 8.0, 1e-160]),
        0usize..200,
    )
        .prop_map(
            |(layout, seed, area_levels, scale, extra_points)| LargeCase {
                layout,
                seed,
                area_levels,
                scale,
                extra_points,
            },
        )
}

/// The first point where `got` and `want` differ, as an error.
fn same_rows(got: &[Option<u32>], want: &[Option<u32>], what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len(), "{}: number of rows", what);
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        return Err(TestCaseError::fail(format!(
            "{what}: point {i}: got {:?}, the oracle says {:?}",
            got[i], want[i]
        )));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Random inputs above the Z-order thresholds: every point's answer is the
    /// brute-force oracle's, for chunk sizes that split the groups of 32 every way and
    /// on two threads; distances and areas are those of the matched rows.
    #[test]
    fn zorder_group_search_equals_brute_force(case in large_case()) {
        let d = case.data();
        let max_dist = case.max_dist();
        let index = SpatialIndex::from_centers(&d.cx, &d.cy, &d.area, |j| d.keep[j]);
        prop_assert!(index.matchable() >= ZORDER_MIN_POLYGONS);
        prop_assert!(d.px.len() >= ZORDER_MIN_POINTS);
        prop_assert!(max_dist.is_finite());
        let oracle = SlabOracle::new(&d.cx, &d.cy, &d.area, &d.keep);
        let want: Vec<Option<u32>> = (0..d.px.len())
            .map(|i| oracle.best(d.px[i], d.py[i], max_dist).filter(|_| d.valid[i]))
            .collect();
        for i in (0..d.px.len()).step_by(61) {
            let brute = brute_best(&d.cx, &d.cy, &d.area, &d.keep, d.px[i], d.py[i], max_dist);
            prop_assert_eq!(
                oracle.best(d.px[i], d.py[i], max_dist),
                brute,
                "the slab oracle is brute force, point {}",
                i
            );
        }
        prop_assert!(want.iter().any(Option::is_some) || case.scale < 1e-100);
        let nulls = NullBuffer::from(d.valid.clone());
        let points = PointSlices::new(&d.px, &d.py, Some(&nulls)).unwrap();
        let run = |how: How, chunk_size: usize| {
            let options = MatchOptions { max_dist, how, chunk_size, ..MatchOptions::default() };
            match_points(&index, points, &options, 0, None).unwrap()
        };
        for chunk_size in [1, 7, 32, 33, 8192] {
            let out = run(How::Left, chunk_size);
            same_rows(&polygon_rows(&out), &want, &format!("chunk_size {chunk_size}"))?;
            if chunk_size == 33 {
                let dist = out.column(2).as_primitive::<Float64Type>();
                let areas = out.column(3).as_primitive::<Float64Type>();
                for (i, row) in want.iter().enumerate() {
                    if let Some(j) = row.map(|j| j as usize) {
                        let dd = distance(d.px[i], d.py[i], d.cx[j], d.cy[j]);
                        prop_assert_eq!(dist.value(i).to_bits(), dd.to_bits(), "point {}", i);
                        prop_assert_eq!(areas.value(i).to_bits(), d.area[j].to_bits());
                    }
                }
            }
        }
        let inner = with_threads(Some(2), || run(How::Inner, 1000)).unwrap();
        let matched: Vec<u64> = (0..want.len() as u64).filter(|&i| want[i as usize].is_some()).collect();
        let got: Vec<u64> = inner.column(0).as_primitive::<UInt64Type>().values().to_vec();
        prop_assert_eq!(got, matched, "inner: the matched points, in order");
        let inner_rows: Vec<Option<u32>> = want.iter().copied().filter(Option::is_some).collect();
        same_rows(&polygon_rows(&inner), &inner_rows, "inner, 2 threads")?;
    }
}

/// Large inputs (at least 4096 points and 32768 polygons) take other code paths in the
/// kernel (points matched in a spatial order, then put back): same answers, in point
/// order, for every chunk size and thread count; checked per point against `best_within`
/// (itself checked against brute force in `index`) and against brute force on a sample.
#[test]
fn match_points_large_inputs() {
    let mut rng = Rng::new(0x1a_2b3c);
    let mut unit = move || rng.uniform();
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
        let index = SpatialIndex::from_centers(&cx, &cy, &area, |j| keep[j]);
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
            let rows = polygon_rows(&reference);
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

/// With `max_dist = inf` every finite point's candidates are all matchable polygons:
/// each gets the globally smallest-area matchable polygon, the lowest row among equal
/// areas (here rows 5 and 9 share the smallest area; row 2, smaller, is not matchable).
/// Points with a NaN or infinite coordinate, and null points, get none. Small and large
/// (chunked, parallel) inputs alike.
#[test]
fn max_dist_inf_picks_global_smallest() {
    let mut rng = Rng::new(11);
    for (p, n) in [(12usize, 50usize), (40_000, 10_000)] {
        let cx: Vec<f64> = (0..p).map(|_| 100.0 * rng.normal()).collect();
        let cy: Vec<f64> = (0..p).map(|_| 100.0 * rng.normal()).collect();
        let mut area: Vec<f64> = (0..p).map(|_| 2.0 + 1000.0 * rng.uniform()).collect();
        area[2] = 0.5;
        area[5] = 1.0;
        area[9] = 1.0;
        let keep = |j: usize| j != 2;
        let index = SpatialIndex::from_centers(&cx, &cy, &area, keep);
        let (mut px, mut py): (Vec<f64>, Vec<f64>) = (0..n)
            .map(|_| (1e6 * rng.normal(), 1e6 * rng.normal()))
            .unzip();
        px[1] = f64::NAN;
        py[2] = f64::NEG_INFINITY;
        let valid: Vec<bool> = (0..n).map(|i| i != 3).collect();
        let nulls = NullBuffer::from(valid);
        let points = PointSlices::new(&px, &py, Some(&nulls)).unwrap();
        for chunk_size in [1, 1000] {
            let options = MatchOptions {
                max_dist: f64::INFINITY,
                how: How::Left,
                chunk_size,
                ..MatchOptions::default()
            };
            let rows = polygon_rows(&match_points(&index, points, &options, 0, None).unwrap());
            let want: Vec<Option<u32>> = (0..n)
                .map(|i| (!(1..=3).contains(&i)).then_some(5))
                .collect();
            assert_eq!(rows, want, "{p} polygons, chunk_size {chunk_size}");
        }
    }
}

/// With `k = 1`, an inner result where every point matched is built like a left one (a map
/// over the best ranks, no compaction): it must be the left result without a validity
/// bitmap, column for column and bit for bit, for every chunk size and on two threads; an
/// inner result with one unmatched point goes through the compaction and must be the left
/// result's valid rows.
#[test]
fn inner_equals_left_where_every_point_matched() {
    let mut rng = Rng::new(0x1e_f7);
    let p = 5_000;
    let cx: Vec<f64> = (0..p).map(|_| 1000.0 * rng.uniform()).collect();
    let cy: Vec<f64> = (0..p).map(|_| 1000.0 * rng.uniform()).collect();
    let area: Vec<f64> = (0..p).map(|_| 1.0 + rng.uniform()).collect();
    let index = SpatialIndex::from_centers(&cx, &cy, &area, |_| true);
    let n = 20_000;
    let (mut px, mut py): (Vec<f64>, Vec<f64>) = (0..n)
        .map(|_| (1000.0 * rng.uniform(), 1000.0 * rng.uniform()))
        .unzip();
    for max_dist in [f64::INFINITY, 2000.0, 60.0] {
        for chunk_size in [1, 7, 4096, 8192, 1 << 20] {
            let run = |how: How, px: &[f64], py: &[f64]| {
                let points = PointSlices::new(px, py, None).unwrap();
                let options = MatchOptions {
                    max_dist,
                    how,
                    chunk_size,
                    ..MatchOptions::default()
                };
                with_threads(Some(2), || {
                    match_points(&index, points, &options, 3, None).unwrap()
                })
                .unwrap()
            };
            let what = format!("max_dist {max_dist}, chunk_size {chunk_size}");
            let left = run(How::Left, &px, &py);
            assert_eq!(
                left.column(1).null_count(),
                0,
                "{what}: every point matched"
            );
            let inner = run(How::Inner, &px, &py);
            assert_eq!(inner.num_rows(), n, "{what}");
            for c in 0..4 {
                assert!(
                    inner.column(c).nulls().is_none(),
                    "{what}: column {c} has no validity"
                );
                assert_eq!(
                    inner.column(c).to_data().buffers(),
                    left.column(c).to_data().buffers(),
                    "{what}: column {c}"
                );
            }
            // One point far away: it has no match, the others keep theirs.
            (px[17], py[17]) = (1e9, 1e9);
            let left = run(How::Left, &px, &py);
            let inner = run(How::Inner, &px, &py);
            (px[17], py[17]) = (1000.0 * rng.uniform(), 1000.0 * rng.uniform());
            if max_dist.is_finite() {
                assert_eq!(left.column(1).null_count(), 1, "{what}");
                let kept = arrow::compute::filter_record_batch(
                    &left,
                    &arrow::compute::is_not_null(left.column(1)).unwrap(),
                )
                .unwrap();
                for c in 0..4 {
                    assert_eq!(
                        inner.column(c).as_ref().to_data().buffers(),
                        kept.column(c).as_ref().to_data().buffers(),
                        "{what}, one point unmatched: column {c}"
                    );
                }
            }
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
    // Both matchable polygons have area 2; row 0 wins every tie.
    assert_eq!(polygon_rows(&out), [Some(0), Some(0), Some(0)]);
    let all = MatchOptions {
        all_candidates: true,
        ..options
    };
    let out = match_points(&index, points, &all, 0, None).unwrap();
    assert_eq!(
        polygon_rows(&out),
        [Some(0), Some(3), Some(0), Some(3), Some(0), Some(3)]
    );
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
