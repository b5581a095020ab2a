//! `metric="sphere"` (SPEC.md, "On the sphere") against a brute-force oracle written from
//! the definition: a polygon is a candidate iff the exact chord test
//! ([`ChordWithin::test`]) accepts the unit vectors of the point and of its center;
//! candidates ranked by (area, row), by (squared chord, row) for `rank_by="distance"`,
//! or by row for all candidates. Centers cluster around the antimeridian and the poles,
//! where the index's longitude/latitude boxes wrap and widen, and points use both
//! longitude conventions.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, UInt32Type, UInt64Type};
use polymatch::matching::with_threads;
use polymatch::sphere::{chord_squared, metres, unit, ChordWithin, Edges, Metric, EARTH_RADIUS};
use polymatch::synth::Rng;
use polymatch::{
    match_points, How, MatchOptions, PointSlices, PolymatchError, RankBy, SpatialIndex,
};

use crate::common::arrays::ring_polygons_result;
use crate::common::below;

fn uniform(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * (below(rng, 1 << 40) as f64 / (1u64 << 40) as f64)
}

/// Centers in clusters: around the antimeridian, near both poles, and anywhere.
fn centers(rng: &mut Rng, n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut x, mut y, mut a) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let (lon, lat) = match i % 4 {
            0 => (uniform(rng, 170.0, 190.0), uniform(rng, -60.0, 60.0)),
            1 => (uniform(rng, -180.0, 180.0), uniform(rng, 80.0, 90.0)),
            2 => (uniform(rng, -180.0, 180.0), uniform(rng, -90.0, -80.0)),
            _ => (uniform(rng, -180.0, 180.0), uniform(rng, -90.0, 90.0)),
        };
        let lon = if lon > 180.0 { lon - 360.0 } else { lon };
        x.push(lon);
        y.push(lat);
        // few distinct areas: many ties, broken by row
        a.push(below(rng, 4) as f64);
    }
    (x, y, a)
}

fn points(rng: &mut Rng, n: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..n {
        let (lon, lat) = match i % 4 {
            0 => (uniform(rng, 170.0, 190.0), uniform(rng, -60.0, 60.0)),
            1 => (uniform(rng, -180.0, 360.0), uniform(rng, 80.0, 90.0)),
            2 => (uniform(rng, 0.0, 360.0), uniform(rng, -90.0, -80.0)),
            _ => (uniform(rng, -180.0, 180.0), uniform(rng, -90.0, 90.0)),
        };
        x.push(lon);
        y.push(lat);
    }
    (x, y)
}

/// The oracle: per point, its rows in order, with squared chords.
fn oracle(
    cx: &[f64],
    cy: &[f64],
    area: &[f64],
    options: &MatchOptions,
    px: f64,
    py: f64,
) -> Vec<(u32, f64)> {
    let within = ChordWithin::new(options.max_dist);
    let u = unit(px, py);
    let mut c: Vec<(u32, f64)> = (0..cx.len())
        .filter_map(|j| {
            let v = unit(cx[j], cy[j]);
            within
                .test(&u, &v)
                .then(|| (j as u32, chord_squared(&u, &v)))
        })
        .collect();
    if options.all_candidates {
        c.sort_by_key(|&(j, _)| j);
        return c;
    }
    let sign = if options.descending { -1.0 } else { 1.0 };
    if options.rank_by == RankBy::Distance {
        c.sort_by(|a, b| (sign * a.1).total_cmp(&(sign * b.1)).then(a.0.cmp(&b.0)));
    } else {
        c.sort_by(|a, b| {
            (sign * area[a.0 as usize])
                .total_cmp(&(sign * area[b.0 as usize]))
                .then(a.0.cmp(&b.0))
        });
    }
    c.truncate(options.k as usize);
    c
}

fn check_case(seed: u64, polygons: usize, npoints: usize, max_dist: f64) {
    let mut rng = Rng::new(seed);
    let (cx, cy, area) = centers(&mut rng, polygons);
    let (px, py) = points(&mut rng, npoints);
    let index = SpatialIndex::from_centers(&cx, &cy, &area, |_| true).with_metric(Metric::Sphere);
    let rankings = polymatch::Rankings::new(std::sync::Arc::new(index));
    for (rank_by, descending, k, all) in [
        (RankBy::Area, false, 1, false),
        (RankBy::Area, true, 3, false),
        (RankBy::Distance, false, 1, false),
        (RankBy::Distance, false, 4, false),
        (RankBy::Distance, true, 2, false),
        (RankBy::Area, false, 1, true),
    ] {
        let options = MatchOptions {
            max_dist,
            rank_by: rank_by.clone(),
            descending,
            k,
            all_candidates: all,
            how: How::Left,
            metric: Metric::Sphere,
            chunk_size: 97,
            ..MatchOptions::default()
        };
        let index = match options.index_order() {
            Some(order) => rankings.get(&order, None).unwrap(),
            None => rankings.base().clone(),
        };
        let slices = PointSlices::new(&px, &py, None).unwrap();
        let got = match_points(&index, slices, &options, 0, None).unwrap();
        // The same answer for one thread and big chunks.
        let one = with_threads(Some(1), || {
            let o = MatchOptions {
                chunk_size: 8192,
                ..options.clone()
            };
            match_points(&index, slices, &o, 0, None).unwrap()
        })
        .unwrap();
        assert_eq!(got, one, "threads/chunks, {options:?}");
        let point = got.column(0).as_primitive::<UInt64Type>();
        let row = got.column(1).as_primitive::<UInt32Type>();
        let dist = got.column(2).as_primitive::<Float64Type>();
        let mut at = 0;
        for i in 0..px.len() {
            let want = oracle(&cx, &cy, &area, &options, px[i], py[i]);
            if want.is_empty() {
                assert_eq!(point.value(at), i as u64);
                assert!(row.is_null(at), "point {i} has no candidate, {options:?}");
                at += 1;
                continue;
            }
            for (j, s) in want {
                assert_eq!(
                    (point.value(at), row.value(at)),
                    (i as u64, j),
                    "point {i} ({}, {}), {options:?}",
                    px[i],
                    py[i]
                );
                assert_eq!(dist.value(at).to_bits(), metres(s).to_bits());
                at += 1;
            }
        }
        assert_eq!(at, got.num_rows());
    }
}

#[test]
fn every_rank_rule_against_brute_force_near_the_poles_and_the_antimeridian() {
    check_case(1, 400, 600, 250_000.0);
    check_case(2, 300, 300, 3_000_000.0);
    check_case(3, 200, 200, 1e7);
    // farther than half the circumference: everything
    check_case(4, 50, 50, 2.5e7);
    check_case(5, 500, 400, 1_000.0);
}

#[test]
fn the_reported_distance_is_the_great_circle_to_the_center() {
    // Two points on the equator 1 degree apart: R * pi / 180 metres.
    let a = unit(0.0, 0.0);
    let b = unit(1.0, 0.0);
    let d = metres(chord_squared(&a, &b));
    let want = EARTH_RADIUS * std::f64::consts::PI / 180.0;
    assert!((d - want).abs() < 1e-6, "{d} vs {want}");
}

#[test]
fn polygons_on_the_sphere_and_their_errors() {
    // A 1-degree square straddling the antimeridian, and one at 80N.
    let rings = vec![
        vec![
            (179.5, 0.0),
            (-179.5, 0.0),
            (-179.5, 1.0),
            (179.5, 1.0),
            (179.5, 0.0),
        ],
        vec![(10.0, 80.0), (11.0, 80.0), (11.0, 81.0), (10.0, 81.0)],
    ];
    let p = ring_polygons_result(&rings)
        .unwrap()
        .with_metric(Metric::Sphere)
        .unwrap();
    assert!((p.center_x()[0].abs() - 180.0).abs() < 1e-9);
    assert!(p.area()[1] < p.area()[0] / 5.0, "80N is narrower");
    let index = SpatialIndex::new(&p);
    assert_eq!(index.metric(), Metric::Sphere);
    // Bytes keep the metric, and the answers.
    let back = SpatialIndex::from_bytes(&index.to_bytes()).unwrap();
    assert_eq!(back, index);
    let (with, polys) =
        SpatialIndex::from_bytes_with_polygons(&index.to_bytes_with_polygons(Some(&p)).unwrap())
            .unwrap();
    assert_eq!(with, index);
    assert_eq!(polys.unwrap().metric(), Metric::Sphere);
    // A point 10 km east of the antimeridian matches the first polygon, in either
    // longitude convention.
    let options = MatchOptions {
        max_dist: 100_000.0,
        metric: Metric::Sphere,
        ..MatchOptions::default()
    };
    for lon in [-179.9, 180.1] {
        let r = match_points(
            &index,
            PointSlices::new(&[lon], &[0.5], None).unwrap(),
            &options,
            0,
            None,
        )
        .unwrap();
        assert_eq!(
            r.column(1).as_primitive::<UInt32Type>().value(0),
            0,
            "{lon}"
        );
    }
    // A latitude out of range names the row; so does a point's.
    let bad = vec![rings[0].clone(), vec![(0.0, 0.0), (1.0, 91.0), (1.0, 0.0)]];
    let e = ring_polygons_result(&bad)
        .unwrap()
        .with_metric(Metric::Sphere)
        .unwrap_err();
    assert!(
        matches!(&e, PolymatchError::InvalidGeometry { row: 1, reason } if reason.contains("latitude 91")),
        "{e}"
    );
    let e = match_points(
        &index,
        PointSlices::new(&[0.0, 400.0], &[0.0, 0.0], None).unwrap(),
        &options,
        10,
        None,
    )
    .unwrap_err();
    assert!(
        matches!(&e, PolymatchError::InvalidGeometry { row: 11, reason } if reason.contains("longitude 400")),
        "{e}"
    );
    // The metric of the match must be the index's.
    let planar = MatchOptions::default();
    let e = match_points(
        &index,
        PointSlices::new(&[0.0], &[0.0], None).unwrap(),
        &planar,
        0,
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("metric"), "{e}");
    // Vertices all around the equator have no center.
    let around = vec![vec![(0.0, 0.0), (90.0, 0.0), (180.0, 0.0), (270.0, 0.0)]];
    let e = ring_polygons_result(&around)
        .unwrap()
        .with_metric(Metric::Sphere)
        .unwrap_err();
    assert!(
        matches!(e, PolymatchError::InvalidGeometry { row: 0, .. }),
        "{e}"
    );
}

/// The point `r` metres from `(lon, lat)` at `bearing` degrees (the spherical
/// destination formula, in the platform's float64: only the oracle's answer counts).
fn destination(lon: f64, lat: f64, bearing: f64, r: f64) -> (f64, f64) {
    let (phi, lam, b, a) = (
        lat.to_radians(),
        lon.to_radians(),
        bearing.to_radians(),
        r / polymatch::sphere::EARTH_RADIUS,
    );
    let phi2 = (phi.sin() * a.cos() + phi.cos() * a.sin() * b.cos()).asin();
    let lam2 = lam + (b.sin() * a.sin() * phi.cos()).atan2(a.cos() - phi.sin() * phi2.sin());
    (lam2.to_degrees(), phi2.to_degrees())
}

/// The sphere's cell lists (`CellGrid<Sphere>`, what a match with k = 1 by a rank order
/// runs once a radius has served a few points per polygon) against the oracle: a region
/// away from the antimeridian and the poles, where they apply, with points on the cell
/// edges as well as anywhere; and `None` where a cap could wrap.
#[test]
fn sphere_cell_lists_equal_brute_force() {
    use polymatch::index::cells::Sphere;
    use polymatch::index::CellGrid;
    let mut rng = Rng::new(9);
    let n = 3000;
    let (mut cx, mut cy, mut area) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        cx.push(uniform(&mut rng, -10.0, 30.0));
        cy.push(uniform(&mut rng, 35.0, 60.0));
        area.push(below(&mut rng, 5) as f64);
    }
    let index = SpatialIndex::from_centers(&cx, &cy, &area, |_| true).with_metric(Metric::Sphere);
    let mut built = 0;
    for d in [2_000.0, 10_000.0, 20_000.0, 30_000.0, 150_000.0] {
        // 2 km is too small for 3,000 centers over this region: the lists refuse (the tree
        // answers).
        let Some(grid) = CellGrid::<Sphere>::build(&index, d) else {
            assert_eq!(d, 2_000.0);
            continue;
        };
        built += 1;
        let (xe, ye) = grid.edges();
        let (mut px, mut py) = (Vec::new(), Vec::new());
        for k in 0..3000 {
            if k % 3 == 0 {
                // on a cell edge, or a corner
                px.push(xe[below(&mut rng, xe.len() as u64) as usize]);
                py.push(ye[below(&mut rng, ye.len() as u64) as usize]);
            } else if k % 3 == 1 {
                // about `d` from a center, within the rounding of the entries' `f32`
                // copies of the centers (0.33 m): the float64 vector decides
                let c = below(&mut rng, n as u64) as usize;
                let rel = [
                    -1e-4, -1e-5, -1e-6, -1e-8, -1e-11, 0.0, 1e-11, 1e-8, 1e-6, 1e-5,
                ];
                let r = d * (1.0 + rel[k % rel.len()]);
                let (x, y) = destination(cx[c], cy[c], uniform(&mut rng, 0.0, 360.0), r);
                px.push(x);
                py.push(y);
            } else {
                px.push(uniform(&mut rng, -12.0, 32.0));
                py.push(uniform(&mut rng, 33.0, 62.0));
            }
        }
        let mut got = vec![0u32; px.len()];
        grid.best_within_many(&index, &px, &py, &mut got);
        let (mut keyed, mut keys) = (vec![0u32; px.len()], vec![0.0; px.len()]);
        grid.best_within_many_keyed(&index, &px, &py, &mut keyed, &mut keys);
        assert_eq!(keyed, got);
        for i in 0..px.len() {
            let want = if got[i] == polymatch::index::NO_MATCH {
                f64::NAN
            } else {
                chord_squared(&unit(px[i], py[i]), &index.units()[got[i] as usize])
            };
            assert_eq!(keys[i].to_bits(), want.to_bits(), "key of point {i}");
        }
        let options = MatchOptions {
            max_dist: d,
            metric: Metric::Sphere,
            ..MatchOptions::default()
        };
        for i in 0..px.len() {
            let want = oracle(&cx, &cy, &area, &options, px[i], py[i]);
            let want_rank = want
                .first()
                .map_or(polymatch::index::NO_MATCH, |&(row, _)| {
                    (0..index.matchable() as u32)
                        .find(|&r| index.row_of(r) == row)
                        .unwrap()
                });
            assert_eq!(got[i], want_rank, "{d} m, point ({}, {})", px[i], py[i]);
            assert_eq!(grid.best_within(&index, px[i], py[i]), want_rank);
        }
    }
    assert_eq!(built, 4);
    // Centers near the antimeridian or a pole: the tree answers instead.
    let wrap = SpatialIndex::from_centers(&[179.9, 0.0], &[0.0, 0.0], &[1.0, 1.0], |_| true)
        .with_metric(Metric::Sphere);
    assert!(CellGrid::<Sphere>::build(&wrap, 30_000.0).is_none());
    let pole = SpatialIndex::from_centers(&[0.0, 10.0], &[88.9, 0.0], &[1.0, 1.0], |_| true)
        .with_metric(Metric::Sphere);
    assert!(CellGrid::<Sphere>::build(&pole, 30_000.0).is_none());
}

/// Lists that would be too long at the first cell width are built with wider cells, and
/// answer as the tree does: 100,000 centers at the density of `benches/sphere.py` (100
/// per square degree) and 15 km, ~9 candidates per point, where cells of the first width
/// would hold more than 16 entries per polygon (at 10 km they hold 12.96, and at 12 km
/// they still fit).
#[test]
fn sphere_lists_too_long_at_the_first_width_are_built_with_wider_cells() {
    use polymatch::index::cells::Sphere;
    use polymatch::index::{CellGrid, NO_MATCH};
    let mut rng = Rng::new(17);
    let n = 100_000;
    let (lon1, lat1) = (30.0, 60.0);
    let (mut cx, mut cy, mut area) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        cx.push(uniform(&mut rng, -10.0, lon1));
        cy.push(uniform(&mut rng, 35.0, lat1));
        area.push(1.0 + uniform(&mut rng, 0.0, 1.0));
    }
    let index = SpatialIndex::from_centers(&cx, &cy, &area, |_| true).with_metric(Metric::Sphere);
    let d = 15_000.0;
    let grid = CellGrid::<Sphere>::build(&index, d).expect("wider cells keep the lists short");
    let (xe, ye) = grid.edges();
    let (cells, entries) = grid.size();
    assert!(
        entries <= 16 * n + (1 << 14),
        "{entries} entries in {cells} cells"
    );
    // The first choice is 4 cells per polygon over the grid's extent: these are wider.
    let extent = (xe[xe.len() - 1] - xe[0]) * (ye[ye.len() - 1] - ye[0]);
    assert!(
        cells < 3 * n,
        "{cells} cells: the first width was not widened ({extent})"
    );
    let (mut px, mut py) = (Vec::new(), Vec::new());
    for k in 0..4000 {
        if k % 4 == 0 {
            px.push(xe[below(&mut rng, xe.len() as u64) as usize]);
            py.push(ye[below(&mut rng, ye.len() as u64) as usize]);
        } else {
            px.push(uniform(&mut rng, -10.5, lon1 + 0.5));
            py.push(uniform(&mut rng, 34.5, lat1 + 0.5));
        }
    }
    let within = ChordWithin::new(d);
    let mut got = vec![0u32; px.len()];
    grid.best_within_many(&index, &px, &py, &mut got);
    let mut matched = 0;
    for i in 0..px.len() {
        let cap = polymatch::sphere::SphereCap::new(&within, &index, px[i], py[i]);
        assert_eq!(
            got[i],
            index.best_by(&cap, px[i], py[i]),
            "point ({}, {})",
            px[i],
            py[i]
        );
        matched += usize::from(got[i] != NO_MATCH);
    }
    assert!(matched > 3000, "{matched} of 4000 points matched");
}

/// The grouped walk (`best_by_group` with a `SphereGroup`, what large matches with k = 1
/// run in Z-order) against each point's own walk (`best_by`), on groups of 32 nearby
/// points, around the antimeridian, the poles and anywhere.
#[test]
fn grouped_walk_equals_the_walk_of_each_point() {
    use polymatch::sphere::{SphereCap, SphereGroup};
    let mut rng = Rng::new(21);
    let (cx, cy, area) = centers(&mut rng, 3000);
    let index = SpatialIndex::from_centers(&cx, &cy, &area, |_| true).with_metric(Metric::Sphere);
    let mut entries = Vec::new();
    for d in [5_000.0, 100_000.0, 1_500_000.0, 3e7] {
        let within = ChordWithin::new(d);
        for g in 0..60 {
            // a group around one point, spread by up to 2 degrees (a few NaN)
            let (ox, oy) = points(&mut rng, 1);
            let (mut gx, mut gy, mut us) = (Vec::new(), Vec::new(), Vec::new());
            for k in 0..32 {
                let (x, y) = if g % 7 == 0 && k % 9 == 0 {
                    (f64::NAN, 0.0)
                } else {
                    let y = (oy[0] + uniform(&mut rng, -2.0, 2.0)).clamp(-90.0, 90.0);
                    let x = ox[0] + uniform(&mut rng, -2.0, 2.0);
                    (x.clamp(-180.0, 360.0), y)
                };
                gx.push(x);
                gy.push(y);
                us.push(if x.is_finite() {
                    unit(x, y)
                } else {
                    [f64::NAN; 3]
                });
            }
            let group = SphereGroup::new(&within, &index, &us).unwrap();
            let mut out = vec![0u32; 32];
            index.best_by_group(
                &group,
                |k| SphereCap::from_unit(&within, &index, us[k]),
                &gx,
                &gy,
                &mut out,
                &mut entries,
            );
            for k in 0..32 {
                let want = if gx[k].is_finite() {
                    index.best_by(&SphereCap::new(&within, &index, gx[k], gy[k]), gx[k], gy[k])
                } else {
                    polymatch::index::NO_MATCH
                };
                assert_eq!(out[k], want, "{d} m, ({}, {})", gx[k], gy[k]);
            }
        }
    }
}

/// The shape rules on the sphere: a shape index knows the metric it was ranked in (a
/// match in another is refused), `dwithin` in metres with no cap accepts every polygon,
/// and `covers` ranks by square metres with the points' longitudes wrapped.
#[test]
fn shape_rules_on_the_sphere() {
    use polymatch::{match_shapes, Predicate};
    // two nested boxes and one at 75N wider in degrees than the outer box
    let rings = vec![
        vec![(0.0, -10.0), (30.0, -10.0), (30.0, 10.0), (0.0, 10.0)],
        vec![(-60.0, -60.0), (60.0, -60.0), (60.0, 60.0), (-60.0, 60.0)],
        vec![(170.0, 70.0), (179.0, 70.0), (179.0, 80.0), (170.0, 80.0)],
    ];
    let (shapes, _) = sphere_shapes(&rings);
    assert_eq!(shapes.metric(), Metric::Sphere);
    let options = MatchOptions {
        predicate: Predicate::Covers,
        max_dist: f64::NAN,
        how: How::Left,
        metric: Metric::Sphere,
        ..MatchOptions::default()
    };
    // (10, 0) is in both nested boxes: the inner one is smaller on the ground; 175 and
    // 175 - 360 + 360 are the same fix in either convention; 400 is out of range
    let (xs, ys) = ([10.0, 175.0, 535.0 - 360.0, -100.0], [0.0, 75.0, 75.0, 0.0]);
    let r = match_shapes(
        &shapes,
        PointSlices::new(&xs, &ys, None).unwrap(),
        &options,
        0,
        None,
    )
    .unwrap();
    let rows = r.column(1).as_primitive::<UInt32Type>();
    assert_eq!(
        (0..4)
            .map(|i| rows.is_valid(i).then(|| rows.value(i)))
            .collect::<Vec<_>>(),
        vec![Some(0), Some(2), Some(2), None]
    );
    let planar = MatchOptions {
        metric: Metric::Planar,
        ..options.clone()
    };
    let e = match_shapes(
        &shapes,
        PointSlices::new(&xs, &ys, None).unwrap(),
        &planar,
        0,
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("metric"), "{e}");
    // dwithin with no cap: every polygon, the smallest on the ground first
    let dwithin = MatchOptions {
        predicate: Predicate::Dwithin,
        max_dist: f64::INFINITY,
        ..options.clone()
    };
    let r = match_shapes(
        &shapes,
        PointSlices::new(&xs, &ys, None).unwrap(),
        &dwithin,
        0,
        None,
    )
    .unwrap();
    let rows = r.column(1).as_primitive::<UInt32Type>();
    // the box at 70-80 N is the smallest on the ground
    assert_eq!(
        (0..4).map(|i| rows.value(i)).collect::<Vec<_>>(),
        vec![2, 2, 2, 2]
    );
    let e = match_shapes(
        &shapes,
        PointSlices::new(&[400.0], &[0.0], None).unwrap(),
        &options,
        7,
        None,
    )
    .unwrap_err();
    assert!(
        matches!(e, PolymatchError::InvalidGeometry { row: 7, .. }),
        "{e}"
    );
}

/// The shape index (ranked by area in square metres) and outlines of rings on the sphere.
fn sphere_shapes(
    rings: &[Vec<(f64, f64)>],
) -> (polymatch::ShapeIndex, std::sync::Arc<polymatch::Outlines>) {
    sphere_shapes_with(rings, Edges::Planar)
}

/// [`sphere_shapes`] with edges `edges`.
fn sphere_shapes_with(
    rings: &[Vec<(f64, f64)>],
    edges: Edges,
) -> (polymatch::ShapeIndex, std::sync::Arc<polymatch::Outlines>) {
    use std::sync::Arc;
    let polygons = ring_polygons_result(rings)
        .unwrap()
        .with_edges(edges)
        .with_metric(Metric::Sphere)
        .unwrap();
    let index = SpatialIndex::new(&polygons);
    let outlines = Arc::new(polymatch::Outlines::new(Arc::new(polygons)).unwrap());
    let shapes = polymatch::ShapeIndex::new(outlines.clone(), &index).unwrap();
    (shapes, outlines)
}

/// A result's (point, polygon row, distance) rows, in order.
fn result_rows(batch: &arrow::record_batch::RecordBatch) -> Vec<(u64, u32, f64)> {
    let (pi, rows, dist) = (
        batch.column(0).as_primitive::<UInt64Type>(),
        batch.column(1).as_primitive::<UInt32Type>(),
        batch.column(2).as_primitive::<Float64Type>(),
    );
    (0..batch.num_rows())
        .map(|r| (pi.value(r), rows.value(r), dist.value(r)))
        .collect()
}

/// The `k` nearest of each point's candidates `(squared chord, row)`, by distance then
/// row, as (point, row, metres).
fn k_nearest(candidates: &[Vec<(f64, u32)>], k: usize) -> Vec<(u64, u32, f64)> {
    let mut out = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        let mut c = c.clone();
        c.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        out.extend(c.iter().take(k).map(|&(s, row)| (i as u64, row, metres(s))));
    }
    out
}

/// `match_shapes` of the points `xs`, `ys` on `threads` threads.
fn run_shapes(
    shapes: &polymatch::ShapeIndex,
    xs: &[f64],
    ys: &[f64],
    options: &MatchOptions,
    threads: usize,
) -> arrow::record_batch::RecordBatch {
    with_threads(Some(threads), || {
        polymatch::match_shapes(
            shapes,
            PointSlices::new(xs, ys, None).unwrap(),
            options,
            0,
            None,
        )
    })
    .unwrap()
    .unwrap()
}

/// The batch of `options` on 1 thread, checked equal to those on 2 threads at chunk
/// sizes 1, 7 and 4096 (`run(options, threads)`).
fn same_on_threads_and_chunks(
    run: impl Fn(&MatchOptions, usize) -> arrow::record_batch::RecordBatch,
    options: &MatchOptions,
    what: &str,
) -> arrow::record_batch::RecordBatch {
    let one = run(options, 1);
    for chunk in [1, 7, 4096] {
        let other = run(
            &MatchOptions {
                chunk_size: chunk,
                ..options.clone()
            },
            2,
        );
        assert_eq!(one, other, "{what}, chunk {chunk}");
    }
    one
}

/// Where the unit vector `p` is relative to the ring of unit vectors `ring` with
/// great-circle edges (the kernel, by brute force: every ring's frame and edge).
fn arc_locate(ring: &[[f64; 3]], p: &[f64; 3]) -> polymatch::shape::Location {
    use polymatch::shape::spherical::{ArcCrossings, Frame};
    let frame = Frame::new(ring, std::iter::once(ring), 0).unwrap();
    if !frame.may_hold(p) {
        return polymatch::shape::Location::Outside;
    }
    let mut c = ArcCrossings::new(*p);
    c.ring(ring);
    c.location()
}

/// Rings near the poles, across the antimeridian and at mid latitudes, and points near
/// their vertices (every tenth on a vertex).
type Rings = Vec<Vec<(f64, f64)>>;
fn sphere_case(seed: u64, n: usize, npoints: usize) -> (Rings, Vec<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let mut rings = Vec::new();
    for i in 0..n {
        let (cx, cy) = match i % 4 {
            0 => (
                uniform(&mut rng, 178.0, 180.0),
                uniform(&mut rng, -30.0, 30.0),
            ),
            1 => (
                uniform(&mut rng, -180.0, 180.0),
                uniform(&mut rng, 87.0, 89.5),
            ),
            _ => (
                uniform(&mut rng, -20.0, 20.0),
                uniform(&mut rng, 40.0, 60.0),
            ),
        };
        let r = uniform(&mut rng, 0.001, 0.2);
        let ring: Vec<(f64, f64)> = (0..7)
            .map(|k| {
                let a = k as f64 * std::f64::consts::TAU / 7.0;
                let x = (cx + r * a.cos() / cy.to_radians().cos().max(0.05)).clamp(-180.0, 180.0);
                ((x), (cy + r * a.sin()).clamp(-90.0, 90.0))
            })
            .collect();
        rings.push(ring);
    }
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for k in 0..npoints {
        let ring = &rings[k % rings.len()];
        let (x, y) = ring[k % 7];
        if k % 10 == 0 {
            xs.push(x);
            ys.push(y);
            continue;
        }
        let x = x + uniform(&mut rng, -0.05, 0.05) / y.to_radians().cos().max(0.05);
        xs.push(if x > 180.0 { x - 360.0 } else { x.max(-180.0) });
        ys.push((y + uniform(&mut rng, -0.05, 0.05)).clamp(-90.0, 90.0));
    }
    (rings, xs, ys)
}

/// `contains` and `covers` of polygons with spherical edges against brute force (the
/// kernel on every polygon for every point): every candidate, the best by area, the 2
/// best; the same batches on 1 and 2 threads and at several chunk sizes.
#[test]
fn great_circle_edges_contains_and_covers_equal_brute_force() {
    use polymatch::shape::Location;
    use polymatch::Predicate;
    let (rings, xs, ys) = sphere_case(43, 400, 3000);
    let (shapes, _) = sphere_shapes_with(&rings, Edges::Spherical);
    let units: Vec<Vec<[f64; 3]>> = rings
        .iter()
        .map(|r| r.iter().map(|&(x, y)| unit(x, y)).collect())
        .collect();
    let locations: Vec<Vec<Location>> = xs
        .iter()
        .zip(&ys)
        .map(|(&x, &y)| {
            let p = unit(x, y);
            units.iter().map(|u| arc_locate(u, &p)).collect()
        })
        .collect();
    let boundary = locations
        .iter()
        .flatten()
        .filter(|l| **l == Location::Boundary);
    assert!(
        boundary.count() >= 300,
        "points on vertices are on the boundary"
    );
    for (predicate, accept) in [
        (Predicate::Covers, Location::Boundary),
        (Predicate::Contains, Location::Inside),
    ] {
        let all = MatchOptions {
            predicate,
            max_dist: f64::NAN,
            metric: Metric::Sphere,
            all_candidates: true,
            ..MatchOptions::default()
        };
        let run = |options: &MatchOptions, threads: usize| {
            run_shapes(&shapes, &xs, &ys, options, threads)
        };
        let mut got = result_rows(&run(&all, 2));
        got.sort_by_key(|a| (a.0, a.1));
        let want: Vec<(u64, u32, f64)> = locations
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                l.iter().enumerate().filter_map(move |(row, &l)| {
                    (l == Location::Inside || l == accept).then_some((i as u64, row as u32, 0.0))
                })
            })
            .collect();
        assert!(want.len() > xs.len() / 4, "{predicate:?}: {}", want.len());
        assert_eq!(got, want, "{predicate:?}");
        let best = MatchOptions {
            all_candidates: false,
            how: How::Left,
            ..all.clone()
        };
        let one = same_on_threads_and_chunks(run, &best, &format!("{predicate:?}"));
        // the best by area is one of the candidates, with no smaller one
        let areas = shapes.outlines().polygons().area();
        let rows = one.column(1).as_primitive::<UInt32Type>();
        for (i, l) in locations.iter().enumerate() {
            let smallest = l
                .iter()
                .enumerate()
                .filter(|(_, &l)| l == Location::Inside || l == accept)
                .map(|(row, _)| row as u32)
                .min_by(|&a, &b| {
                    areas[a as usize]
                        .total_cmp(&areas[b as usize])
                        .then(a.cmp(&b))
                });
            assert_eq!(
                rows.is_valid(i).then(|| rows.value(i)),
                smallest,
                "point {i}"
            );
        }
    }
}

/// `dwithin` in metres on the sphere against brute force: every polygon tested with the
/// arcs' exact test (and `covers` for distance 0) for every point, near the poles and
/// across the antimeridian; every candidate, the best by area, the 2 nearest; the same
/// on 1 and 2 threads and at every chunk size.
#[test]
fn dwithin_on_the_sphere_equals_brute_force() {
    for edges in [Edges::Planar, Edges::Spherical] {
        dwithin_case(edges);
    }
}

fn dwithin_case(edges: Edges) {
    use polymatch::shape::arcs::{arc_squared, ArcWithin};
    use polymatch::shape::Location;
    use polymatch::{Predicate, RankBy};
    let (rings, xs, ys) = sphere_case(41, 400, 3000);
    let (shapes, outlines) = sphere_shapes_with(&rings, edges);
    let units: Vec<Vec<[f64; 3]>> = rings
        .iter()
        .map(|r| r.iter().map(|&(x, y)| unit(x, y)).collect())
        .collect();
    for max_dist in [30.0, 2_000.0, 20_000.0, f64::INFINITY] {
        let test = ArcWithin::new(max_dist);
        // Brute force: (point, row, squared chord) of every candidate.
        let mut want: Vec<Vec<(f64, u32)>> = vec![Vec::new(); xs.len()];
        for (i, (&x, &y)) in xs.iter().zip(&ys).enumerate() {
            let p = unit(x, y);
            for (row, u) in units.iter().enumerate() {
                let part = outlines.parts_of(row as u32).start;
                let covered = match edges {
                    Edges::Planar => outlines.locate_unindexed(part, x, y),
                    Edges::Spherical => arc_locate(u, &p),
                } != Location::Outside;
                let near = (0..7).any(|k| test.test(&p, &u[k], &u[(k + 1) % 7]));
                if covered || near {
                    let s = if covered {
                        0.0
                    } else {
                        (0..7)
                            .map(|k| arc_squared(&p, &u[k], &u[(k + 1) % 7]))
                            .fold(f64::INFINITY, f64::min)
                    };
                    want[i].push((s, row as u32));
                }
            }
        }
        let total: usize = want.iter().map(Vec::len).sum();
        assert!(total > xs.len() / 4, "{max_dist} m: {total} candidates");
        let run = |options: &MatchOptions, threads: usize| {
            run_shapes(&shapes, &xs, &ys, options, threads)
        };
        if max_dist == f64::INFINITY {
            // No cap: the k nearest of all, by the views at wider and wider radii.
            assert_eq!(total, xs.len() * rings.len());
            for k in [1, 2, 5] {
                let near = MatchOptions {
                    predicate: Predicate::Dwithin,
                    max_dist,
                    metric: Metric::Sphere,
                    rank_by: RankBy::Distance,
                    k,
                    ..MatchOptions::default()
                };
                let got = result_rows(&run(&near, 2));
                assert_eq!(got, k_nearest(&want, k as usize), "no cap, k = {k}");
            }
            continue;
        }
        let all = MatchOptions {
            predicate: Predicate::Dwithin,
            max_dist,
            metric: Metric::Sphere,
            all_candidates: true,
            ..MatchOptions::default()
        };
        let mut got = result_rows(&run(&all, 2));
        got.sort_by_key(|a| (a.0, a.1));
        let mut expect: Vec<(u64, u32, f64)> = want
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.iter().map(move |&(s, row)| (i as u64, row, metres(s))))
            .collect();
        expect.sort_by_key(|a| (a.0, a.1));
        assert_eq!(got, expect, "{max_dist} m");
        // The 2 nearest (distance, then row), and the best by area, on 1 and 2 threads
        // and at several chunk sizes: the same batches.
        let near = MatchOptions {
            all_candidates: false,
            rank_by: RankBy::Distance,
            k: 2,
            ..all.clone()
        };
        let got = result_rows(&run(&near, 1));
        assert_eq!(got, k_nearest(&want, 2), "{max_dist} m, 2 nearest");
        let best = MatchOptions {
            all_candidates: false,
            how: How::Left,
            ..all.clone()
        };
        same_on_threads_and_chunks(run, &best, &format!("{max_dist} m"));
    }
}
