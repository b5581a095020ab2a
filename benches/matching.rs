//! Criterion benchmarks of polymatch's kernels, on fixed-seed synthetic data.
//!
//! - `index_build`: `SpatialIndex::from_centers` for 1e3, 1e5 and 1e6 polygons;
//! - `match_uniform`: `match_points`, 100k polygons x 1M points, uniform on a square, with
//!   `max_dist` set for ~1, ~30 and ~1000 candidates per point, and `inf` (all);
//! - `match_left_200k`: the SQL engines' workload of benches/compare.py --sql-engines,
//!   100k polygons x 200k uniform points, ~30 candidates, `how = left`: the search alone
//!   (`best_ranks`) and the whole match (`match_points`, output columns included);
//! - `match_clustered`: the same sizes, points and polygons in gaussian clusters, with
//!   `max_dist` calibrated for ~30 candidates per point on average;
//! - `cell_lists`: building the per-radius cell lists (`CellGrid::build`, what the first
//!   calls at a radius pay) for 100k and 1M uniform polygons, ~30 candidates per point;
//! - `polygons_from_rings`: deriving center and area for 1M polygons of 10 vertices;
//! - `rank_rules`: the uniform ~30-candidate match under each rank rule (area, a float
//!   column, descending, distance, k = 5), and preparing a column order
//!   (`SpatialIndex::with_order`).
//!
//! - `shape_pip`, `shape_build`, `shape_match`, `shape_dwithin`: the shape rules (see
//!   [`bench_shapes`]).
//!
//! Run `cargo bench --bench matching`; compare with a saved baseline
//! (`-- --save-baseline main`, then `-- --baseline main`). A quick check that every bench
//! runs: `cargo bench --bench matching -- --test`.

use std::f64::consts::PI;
use std::hint::black_box;
use std::time::Duration;

use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
    Throughput,
};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array};
use polymatch::index::cells::Planar;
use polymatch::index::CellGrid;
use polymatch::matching::{best_ranks, CHUNK};
use polymatch::ranking::column_order;
use polymatch::shape::Location;
use polymatch::{
    match_points, match_shapes, How, MatchOptions, Order, Outlines, PointSlices, PolygonColumns,
    Predicate, RankBy, ShapeIndex, SpatialIndex,
};

/// Side of the square the uniform data lives on.
const SIDE: f64 = 1000.0;
/// Polygons and points of the match benches.
const POLYGONS: usize = 100_000;
const POINTS: usize = 1_000_000;

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fixed-seed generator, no dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 53 random bits.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Standard normal (Box-Muller).
    fn gauss(&mut self) -> f64 {
        let u = 1.0 - self.unit(); // (0, 1]: ln is finite
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * PI * v).cos()
    }
}

/// Centers and areas of polygons (the index needs nothing else).
struct Data {
    cx: Vec<f64>,
    cy: Vec<f64>,
    area: Vec<f64>,
}

fn uniform_xy(n: usize, rng: &mut SplitMix64) -> (Vec<f64>, Vec<f64>) {
    (0..n)
        .map(|_| (rng.uniform(0.0, SIDE), rng.uniform(0.0, SIDE)))
        .unzip()
}

/// Random areas: many distinct values, so the rank order is a real permutation.
fn areas(n: usize, rng: &mut SplitMix64) -> Vec<f64> {
    (0..n).map(|_| rng.uniform(0.5, 2.0)).collect()
}

fn uniform_polygons(n: usize, seed: u64) -> Data {
    let mut rng = SplitMix64(seed);
    let (cx, cy) = uniform_xy(n, &mut rng);
    let area = areas(n, &mut rng);
    Data { cx, cy, area }
}

/// `n` positions in gaussian clusters (sigma = SIDE / 200) around `centers`.
fn clustered_xy(n: usize, centers: &[(f64, f64)], rng: &mut SplitMix64) -> (Vec<f64>, Vec<f64>) {
    let sigma = SIDE / 200.0;
    (0..n)
        .map(|_| {
            let (x, y) = centers[(rng.next_u64() % centers.len() as u64) as usize];
            (x + sigma * rng.gauss(), y + sigma * rng.gauss())
        })
        .unzip()
}

fn index_of(data: &Data) -> SpatialIndex {
    SpatialIndex::from_centers(&data.cx, &data.cy, &data.area, |_| true)
}

/// `max_dist` for about `k` candidates per point, with `p` polygons uniform on the square
/// (`k = p * pi * r^2 / SIDE^2`, ignoring the edges).
fn radius_for(k: f64, p: usize) -> f64 {
    SIDE * (k / (PI * p as f64)).sqrt()
}

/// Mean number of candidates of the sample points within `r`.
fn mean_candidates(index: &SpatialIndex, xs: &[f64], ys: &[f64], r: f64) -> f64 {
    let mut count = 0usize;
    for (&x, &y) in xs.iter().zip(ys) {
        index.for_each_within(x, y, r, |_, _| count += 1);
    }
    count as f64 / xs.len() as f64
}

/// `max_dist` giving about `k` candidates per point on average, by bisection over a sample.
fn calibrate(index: &SpatialIndex, xs: &[f64], ys: &[f64], k: f64) -> f64 {
    let sample = xs.len().min(2000);
    let (xs, ys) = (&xs[..sample], &ys[..sample]);
    let (mut lo, mut hi) = (0.0, SIDE);
    for _ in 0..40 {
        let mid = 0.5 * (lo + hi);
        if mean_candidates(index, xs, ys, mid) < k {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// Ten samples of a fixed number of iterations each (`Flat`: one heavy iteration per
/// sample is enough), so that the whole file runs in a few minutes on 2 cores.
fn configure(group: &mut BenchmarkGroup<'_, WallTime>, measurement_secs: u64) {
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(measurement_secs));
}

fn bench_index_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("index_build");
    configure(&mut group, 4);
    for n in [1_000, 100_000, 1_000_000] {
        let data = uniform_polygons(n, 0x1de5);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &data, |b, data| {
            b.iter(|| index_of(black_box(data)))
        });
    }
    group.finish();
}

fn run_match(index: &SpatialIndex, xs: &[f64], ys: &[f64], max_dist: f64) -> usize {
    let points = PointSlices::new(xs, ys, None).expect("same lengths");
    let options = MatchOptions {
        max_dist,
        ..MatchOptions::default()
    };
    match_points(index, points, &options, 0, None)
        .expect("valid options")
        .num_rows()
}

fn bench_match_uniform(c: &mut Criterion) {
    let data = uniform_polygons(POLYGONS, 0x5eed_0001);
    let index = index_of(&data);
    let (xs, ys) = uniform_xy(POINTS, &mut SplitMix64(0x5eed_0002));
    let mut group = c.benchmark_group("match_uniform");
    configure(&mut group, 8);
    group.throughput(Throughput::Elements(POINTS as u64));
    for (label, max_dist) in [
        ("1", radius_for(1.0, POLYGONS)),
        ("30", radius_for(30.0, POLYGONS)),
        ("1000", radius_for(1000.0, POLYGONS)),
        ("all", f64::INFINITY),
    ] {
        group.bench_function(BenchmarkId::new("candidates", label), |b| {
            b.iter(|| run_match(&index, black_box(&xs), black_box(&ys), max_dist))
        });
    }
    group.finish();
}

fn bench_match_left_200k(c: &mut Criterion) {
    const POINTS_200K: usize = 200_000;
    let data = uniform_polygons(POLYGONS, 0x5eed_0003);
    let index = index_of(&data);
    let (xs, ys) = uniform_xy(POINTS_200K, &mut SplitMix64(0x5eed_0004));
    let max_dist = radius_for(30.0, POLYGONS);
    let points = PointSlices::new(&xs, &ys, None).expect("same lengths");
    let options = MatchOptions {
        max_dist,
        how: How::Left,
        ..MatchOptions::default()
    };
    // The cell lists are built on the first calls at a radius: build them before timing.
    match_points(&index, points, &options, 0, None).expect("valid options");
    let mut group = c.benchmark_group("match_left_200k");
    configure(&mut group, 5);
    group.throughput(Throughput::Elements(POINTS_200K as u64));
    group.bench_function("search", |b| {
        b.iter(|| {
            best_ranks(&index, black_box(points), max_dist, CHUNK, None)
                .expect("no cancel")
                .len()
        })
    });
    group.bench_function("match", |b| {
        b.iter(|| {
            match_points(&index, black_box(points), &options, 0, None)
                .expect("valid options")
                .num_rows()
        })
    });
    group.finish();
}

fn bench_cell_lists(c: &mut Criterion) {
    let mut group = c.benchmark_group("cell_lists");
    configure(&mut group, 5);
    for n in [100_000, 1_000_000] {
        let data = uniform_polygons(n, 0x5eed_0005);
        let index = index_of(&data);
        let max_dist = radius_for(30.0, n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("build", n), &index, |b, index| {
            b.iter(|| {
                CellGrid::<Planar>::build(black_box(index), max_dist).expect("lists pay here")
            })
        });
    }
    group.finish();
}

fn bench_match_clustered(c: &mut Criterion) {
    let mut rng = SplitMix64(0xc105_7e45);
    let centers: Vec<(f64, f64)> = (0..200)
        .map(|_| (rng.uniform(0.0, SIDE), rng.uniform(0.0, SIDE)))
        .collect();
    let (cx, cy) = clustered_xy(POLYGONS, &centers, &mut rng);
    let area = areas(POLYGONS, &mut rng);
    let index = index_of(&Data { cx, cy, area });
    let (xs, ys) = clustered_xy(POINTS, &centers, &mut rng);
    let max_dist = calibrate(&index, &xs, &ys, 30.0);
    let mut group = c.benchmark_group("match_clustered");
    configure(&mut group, 8);
    group.throughput(Throughput::Elements(POINTS as u64));
    group.bench_function(BenchmarkId::new("candidates", "30"), |b| {
        b.iter(|| run_match(&index, black_box(&xs), black_box(&ys), max_dist))
    });
    group.finish();
}

fn bench_from_rings(c: &mut Criterion) {
    const N: usize = 1_000_000;
    const VERTICES: usize = 10;
    let mut rng = SplitMix64(0x7269_6e67);
    let mut x = Vec::with_capacity(N * VERTICES);
    let mut y = Vec::with_capacity(N * VERTICES);
    for _ in 0..N {
        let (ox, oy) = (rng.uniform(0.0, SIDE), rng.uniform(0.0, SIDE));
        let radius = rng.uniform(0.1, 1.0);
        for k in 0..VERTICES {
            let angle = 2.0 * PI * (k as f64 + rng.uniform(0.0, 0.5)) / VERTICES as f64;
            x.push(ox + radius * angle.cos());
            y.push(oy + radius * angle.sin());
        }
    }
    let x = ScalarBuffer::from(x);
    let y = ScalarBuffer::from(y);
    let offsets = OffsetBuffer::new(ScalarBuffer::from(
        (0..=N as i64)
            .map(|i| i * VERTICES as i64)
            .collect::<Vec<_>>(),
    ));
    let mut group = c.benchmark_group("polygons_from_rings");
    configure(&mut group, 8);
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function(BenchmarkId::new("vertices", VERTICES), |b| {
        // Cloning the buffers bumps reference counts; no coordinate is copied.
        b.iter(|| {
            PolygonColumns::from_rings(x.clone(), y.clone(), offsets.clone(), None)
                .expect("valid rings")
        })
    });
    group.finish();
}

fn bench_rank_rules(c: &mut Criterion) {
    let data = uniform_polygons(POLYGONS, 0x5eed_0001);
    let index = index_of(&data);
    let (xs, ys) = uniform_xy(POINTS, &mut SplitMix64(0x5eed_0002));
    let max_dist = radius_for(30.0, POLYGONS);
    let mut rng = SplitMix64(0x7a1e);
    let column: ArrayRef = Arc::new(Float64Array::from(
        (0..POLYGONS).map(|_| rng.unit()).collect::<Vec<_>>(),
    ));
    let ranked = |descending: bool| {
        let rows = column_order(&index, "value", &column, descending).expect("numeric");
        let order = Order::Column {
            name: "value".into(),
            descending,
        };
        index.with_order(order, rows).expect("a permutation")
    };
    let (by_value, by_value_desc) = (ranked(false), ranked(true));
    let area_desc = {
        let mut rows: Vec<u32> = (0..POLYGONS as u32).collect();
        rows.sort_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            data.area[b].total_cmp(&data.area[a]).then(a.cmp(&b))
        });
        index
            .with_order(Order::Area { descending: true }, rows)
            .expect("by area")
    };
    let column_rule = |descending| MatchOptions {
        max_dist,
        rank_by: RankBy::Column("value".into()),
        descending,
        ..MatchOptions::default()
    };
    let cases: Vec<(&str, &SpatialIndex, MatchOptions)> = vec![
        (
            "area",
            &index,
            MatchOptions {
                max_dist,
                ..MatchOptions::default()
            },
        ),
        (
            "area_descending",
            &area_desc,
            MatchOptions {
                max_dist,
                descending: true,
                ..MatchOptions::default()
            },
        ),
        ("column", &by_value, column_rule(false)),
        ("column_descending", &by_value_desc, column_rule(true)),
        (
            "distance",
            &index,
            MatchOptions {
                max_dist,
                rank_by: RankBy::Distance,
                ..MatchOptions::default()
            },
        ),
        (
            "area_k5",
            &index,
            MatchOptions {
                max_dist,
                k: 5,
                ..MatchOptions::default()
            },
        ),
        (
            "distance_k5",
            &index,
            MatchOptions {
                max_dist,
                rank_by: RankBy::Distance,
                k: 5,
                ..MatchOptions::default()
            },
        ),
    ];
    let mut group = c.benchmark_group("rank_rules");
    configure(&mut group, 8);
    group.throughput(Throughput::Elements(POINTS as u64));
    let points = PointSlices::new(&xs, &ys, None).expect("same lengths");
    for (label, index, options) in &cases {
        group.bench_function(BenchmarkId::new("candidates_30", label), |b| {
            b.iter(|| {
                match_points(index, black_box(points), options, 0, None)
                    .expect("valid options")
                    .num_rows()
            })
        });
    }
    group.bench_function("prepare_column_order", |b| b.iter(|| ranked(false)));
    group.finish();
}

/// `n` rings of `vertices` vertices each shaped like a real boundary: a wobbly circle of
/// radius about `r` (two slow harmonics) with jitter of a fraction of the vertex
/// spacing, centers uniform on the square; one polygon per ring. (A ring whose every
/// vertex jumps by a large fraction of the radius is a worst case, not a boundary: its
/// edges are long and cross each other's stripes.)
fn jittered_rings(n: usize, vertices: usize, r: f64, side: f64, seed: u64) -> PolygonColumns {
    let mut rng = SplitMix64(seed);
    let mut x = Vec::with_capacity(n * vertices);
    let mut y = Vec::with_capacity(n * vertices);
    for _ in 0..n {
        let (ox, oy) = (rng.uniform(0.0, side), rng.uniform(0.0, side));
        let (p1, p2) = (rng.uniform(0.0, 2.0 * PI), rng.uniform(0.0, 2.0 * PI));
        let spacing = 2.0 * PI / vertices as f64;
        for k in 0..vertices {
            let angle = spacing * k as f64;
            let wobble = 1.0 + 0.08 * (3.0 * angle + p1).sin() + 0.03 * (11.0 * angle + p2).sin();
            let rr = r * (wobble + 0.25 * spacing * rng.uniform(-1.0, 1.0));
            x.push(ox + rr * angle.cos());
            y.push(oy + rr * angle.sin());
        }
    }
    let offsets = OffsetBuffer::new(ScalarBuffer::from(
        (0..=n as i64)
            .map(|i| i * vertices as i64)
            .collect::<Vec<_>>(),
    ));
    PolygonColumns::from_rings(x.into(), y.into(), offsets, None).expect("valid rings")
}

/// The shape rules (`covers`, smallest area):
/// - `shape_pip/vertices/V`: one exact point-in-polygon test against a polygon of V
///   vertices (10 to 20,000; edge index above 48 edges), points uniform in its box, one
///   thread (`Outlines::locate`): the per-test cost;
/// - `shape_build/100000`: preparing 100k 10-gons for the shape rules (outlines and the
///   shape index; compare with `index_build/100000`, the center index);
/// - `shape_match/100000x1000000`: `match_shapes`, 100k jittered 10-gons x 1M uniform
///   points (about one covering polygon per point), prepared index.
/// - `shape_dwithin/*`: `predicate = dwithin` on those polygons: the smallest area with
///   about three candidates per point (1M points), the nearest within that cap, and the
///   1 and 5 nearest with no cap (200k points).
fn bench_shapes(c: &mut Criterion) {
    let mut group = c.benchmark_group("shape_pip");
    configure(&mut group, 3);
    const TESTS: usize = 100_000;
    for vertices in [10, 100, 1_000, 20_000] {
        let polygons = Arc::new(jittered_rings(
            1,
            vertices,
            10.0,
            0.0,
            0x5ade + vertices as u64,
        ));
        let outlines = Outlines::new(polygons).expect("outlines");
        let mut rng = SplitMix64(9);
        let pts: Vec<(f64, f64)> = (0..TESTS)
            .map(|_| (rng.uniform(-11.0, 11.0), rng.uniform(-11.0, 11.0)))
            .collect();
        group.throughput(Throughput::Elements(TESTS as u64));
        group.bench_function(BenchmarkId::new("vertices", vertices), |b| {
            b.iter(|| {
                pts.iter()
                    .filter(|p| outlines.locate(0, p.0, p.1) != Location::Outside)
                    .count()
            })
        });
    }
    group.finish();

    const P: usize = 100_000;
    let side = (P as f64 * PI).sqrt(); // ~1 covering polygon per point
    let polygons = Arc::new(jittered_rings(P, 10, 1.0, side, 0x5a9e));
    let index = SpatialIndex::new(&polygons);
    let mut group = c.benchmark_group("shape_build");
    configure(&mut group, 4);
    group.throughput(Throughput::Elements(P as u64));
    group.bench_function(BenchmarkId::from_parameter(P), |b| {
        b.iter(|| {
            let outlines = Arc::new(Outlines::new(polygons.clone()).expect("outlines"));
            ShapeIndex::new(outlines, &index).expect("shape index")
        })
    });
    group.finish();

    let outlines = Arc::new(Outlines::new(polygons.clone()).expect("outlines"));
    let shapes = ShapeIndex::new(outlines, &index).expect("shape index");
    let mut rng = SplitMix64(0x9017);
    let (xs, ys): (Vec<f64>, Vec<f64>) = (0..1_000_000)
        .map(|_| (rng.uniform(0.0, side), rng.uniform(0.0, side)))
        .unzip();
    let options = MatchOptions {
        predicate: Predicate::Covers,
        max_dist: f64::NAN,
        how: How::Left,
        ..MatchOptions::default()
    };
    let mut group = c.benchmark_group("shape_match");
    configure(&mut group, 6);
    group.throughput(Throughput::Elements(xs.len() as u64));
    group.bench_function(BenchmarkId::from_parameter("100000x1000000"), |b| {
        b.iter(|| {
            let points = PointSlices::new(&xs, &ys, None).expect("same lengths");
            match_shapes(&shapes, points, &options, 0, None)
                .expect("valid options")
                .num_rows()
        })
    });
    group.finish();

    // dwithin on the same polygons: a few candidates per point (rings of radius ~1 at
    // 1/pi per unit area: a polygon is within r of the point when the point is in its
    // r-buffer, of area about pi (1 + r)^2, so about (1 + r)^2 of them; r = 0.35 gives
    // about 1.8, less the jitter), the 5 smallest of them, all of them, the nearest
    // within that cap, and the 1 and 5 nearest with no cap (200k points).
    let mut group = c.benchmark_group("shape_dwithin");
    configure(&mut group, 6);
    let near = |rank_by: RankBy, max_dist: f64, k: u32| MatchOptions {
        predicate: Predicate::Dwithin,
        max_dist,
        how: How::Left,
        rank_by,
        k,
        ..MatchOptions::default()
    };
    let few = 200_000;
    for (name, options, n) in [
        ("area_1000000", near(RankBy::Area, 0.35, 1), xs.len()),
        ("area_k5_200000", near(RankBy::Area, 0.35, 5), few),
        (
            "all_200000",
            MatchOptions {
                all_candidates: true,
                ..near(RankBy::Area, 0.35, 1)
            },
            few,
        ),
        (
            "nearest_capped_200000",
            near(RankBy::Distance, 0.35, 1),
            few,
        ),
        (
            "nearest_k1_200000",
            near(RankBy::Distance, f64::INFINITY, 1),
            few,
        ),
        (
            "nearest_k5_200000",
            near(RankBy::Distance, f64::INFINITY, 5),
            few,
        ),
    ] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let points = PointSlices::new(&xs[..n], &ys[..n], None).expect("same lengths");
                match_shapes(&shapes, points, &options, 0, None)
                    .expect("valid options")
                    .num_rows()
            })
        });
    }
    group.finish();
}

/// The per-point kernels that run several lanes per vector instruction, each beside
/// the scalar loop it must equal bit for bit (the dispatch picks AVX-512, AVX2 or SSE2
/// at run time; the scalar reference is compiled for the x86_64 baseline):
/// - `kernels/unit_vectors/*`: 4,096 longitude/latitude unit vectors (`sphere::units`
///   against `sphere::unit` per point);
/// - `kernels/metres/*`: 4,096 squared chords to great-circle metres
///   (`sphere::metres_many` against `sphere::metres` per chord);
/// - `kernels/ring_squared/*`: a point's squared distance to a 10-gon's and to a
///   40-gon's edges (`shape::distance::ring_squared` against `ring_squared_scalar`),
///   4,096 pairs;
/// - `kernels/crossings/*`: the point-in-polygon test's crossings of the same rings by
///   points in their boxes (`shape::locate::Crossings::ring` against `ring_scalar`).
fn bench_kernels(c: &mut Criterion) {
    use polymatch::shape::distance::{ring_squared, ring_squared_scalar};
    use polymatch::shape::locate::Crossings;
    use polymatch::sphere;
    const N: usize = 4_096;
    let mut group = c.benchmark_group("kernels");
    configure(&mut group, 2);
    group.throughput(Throughput::Elements(N as u64));
    let mut rng = SplitMix64(0x5ec7);
    let (lon, lat): (Vec<f64>, Vec<f64>) = (0..N)
        .map(|_| (rng.uniform(-10.0, 30.0), rng.uniform(35.0, 60.0)))
        .unzip();
    let mut out = vec![[0.0; 3]; N];
    group.bench_function(BenchmarkId::new("unit_vectors", "vector"), |b| {
        b.iter(|| {
            sphere::units(&lon, &lat, &mut out);
            out[N - 1][0]
        })
    });
    group.bench_function(BenchmarkId::new("unit_vectors", "scalar"), |b| {
        b.iter(|| {
            for ((o, &x), &y) in out.iter_mut().zip(&lon).zip(&lat) {
                *o = sphere::unit(std::hint::black_box(x), y);
            }
            out[N - 1][0]
        })
    });
    let chords: Vec<f64> = (0..N).map(|_| rng.uniform(0.0, 1e-5)).collect();
    let mut d = chords.clone();
    group.bench_function(BenchmarkId::new("metres", "vector"), |b| {
        b.iter(|| {
            d.copy_from_slice(&chords);
            sphere::metres_many(&mut d);
            d[N - 1]
        })
    });
    group.bench_function(BenchmarkId::new("metres", "scalar"), |b| {
        b.iter(|| {
            for (o, &s) in d.iter_mut().zip(&chords) {
                *o = sphere::metres(std::hint::black_box(s));
            }
            d[N - 1]
        })
    });
    for vertices in [10, 40] {
        // rings of radius 0.5-1.5, each with a point within 2 of its center
        let (mut x, mut y, mut pts) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..N {
            let (ox, oy, r) = (
                rng.uniform(0.0, 100.0),
                rng.uniform(0.0, 100.0),
                rng.uniform(0.5, 1.5),
            );
            for k in 0..vertices {
                let angle = 2.0 * PI * k as f64 / vertices as f64;
                x.push(ox + r * angle.cos());
                y.push(oy + r * angle.sin());
            }
            pts.push((ox + rng.uniform(-2.0, 2.0), oy + rng.uniform(-2.0, 2.0)));
        }
        let ring = |k: usize| {
            let (lo, hi) = (k * vertices, (k + 1) * vertices);
            (&x[lo..hi], &y[lo..hi])
        };
        group.bench_function(
            BenchmarkId::new("ring_squared", format!("{vertices}_vector")),
            |b| {
                b.iter(|| {
                    (0..N)
                        .map(|k| {
                            let (xs, ys) = ring(k);
                            ring_squared(xs, ys, pts[k].0, pts[k].1)
                        })
                        .fold(f64::INFINITY, f64::min)
                })
            },
        );
        group.bench_function(
            BenchmarkId::new("ring_squared", format!("{vertices}_scalar")),
            |b| {
                b.iter(|| {
                    (0..N)
                        .map(|k| {
                            let (xs, ys) = ring(k);
                            ring_squared_scalar(xs, ys, pts[k].0, pts[k].1)
                        })
                        .fold(f64::INFINITY, f64::min)
                })
            },
        );
        // Points in the ring's box: the ones the test is run for.
        let inside: Vec<(f64, f64)> = (0..N)
            .map(|k| {
                let (xs, ys) = ring(k);
                let (ox, oy) = (xs.iter().sum::<f64>(), ys.iter().sum::<f64>());
                let r = (xs[0] - ox / vertices as f64).hypot(ys[0] - oy / vertices as f64);
                (
                    ox / vertices as f64 + rng.uniform(-r, r),
                    oy / vertices as f64 + rng.uniform(-r, r),
                )
            })
            .collect();
        for (name, vector) in [("vector", true), ("scalar", false)] {
            group.bench_function(
                BenchmarkId::new("crossings", format!("{vertices}_{name}")),
                |b| {
                    b.iter(|| {
                        (0..N)
                            .map(|k| {
                                let (xs, ys) = ring(k);
                                let mut c = Crossings::new(inside[k].0, inside[k].1);
                                if vector {
                                    c.ring(xs, ys);
                                } else {
                                    c.ring_scalar(xs, ys);
                                }
                                c.location() as u32
                            })
                            .sum::<u32>()
                    })
                },
            );
        }
    }
    group.finish();
}

// `criterion_group!` defines a `pub fn`; inside a private module it needs no docs.
mod groups {
    use super::*;

    criterion_group!(
        benches,
        bench_index_build,
        bench_match_uniform,
        bench_match_left_200k,
        bench_match_clustered,
        bench_cell_lists,
        bench_from_rings,
        bench_rank_rules,
        bench_shapes,
        bench_kernels
    );
}

criterion_main!(groups::benches);
