//! Distances on the sphere from a point to a polygon's edges, each edge the great-circle
//! arc (the shorter one) between its two vertices: the value the `distance` column
//! reports for `predicate="dwithin"` with `metric="sphere"`, and the exact decision
//! "closer than `max_dist`" (docs/SPEC.md, "On the sphere").
//!
//! Points and vertices are the float64 unit vectors of [`crate::sphere::unit`]. With
//! `n = a x b`, the point's nearest point on the arc `a`-`b` is inside the arc iff
//! `ta = (a.a)(p.b) - (a.b)(p.a) > 0` and `tb = (b.b)(p.a) - (a.b)(p.b) > 0` (the
//! projection of `p` on the arc's plane lies strictly between `a` and `b`); the angle to
//! the arc is then the angle to its plane, `sin^2 = (p.n)^2 / (|p|^2 |n|^2)`, else the
//! angle to the nearer end.
//!
//! # The decision
//! With `T` the squared-chord threshold of [`ChordWithin`] (`max_dist` as a chord, the
//! center rule's), the arc is within iff the exact squared chord `|p - a|^2` or
//! `|p - b|^2` of the float vectors is `< T`, or the nearest point is inside the arc
//! and `4 (p.n)^2 < (4T - T^2) |p|^2 |n|^2` (the angle to the plane below the angle
//! whose squared chord is `T`: `sin^2 = T (1 - T/4)`), exactly for the float64 inputs. A
//! filter with an error bound decides nearly every edge in float64 ([`ArcWithin::test`]
//! derives it); big integers decide the rest ([`exact_arc_within`]). The same inputs
//! give the same answer on every machine, thread count and batch size.
//!
//! # Which parts to look at
//! [`cap_box`] bounds, in longitude/latitude, every point within a radius of a part's
//! arcs or inside its vertices' box: the cell lists of a radius are built from these
//! boxes, so a point's cell lists every part it can be near.

use num_bigint::BigInt;
use rayon::prelude::*;

use crate::polygons::PolygonColumns;

use crate::shape::distance::split;
use crate::sphere::{chord_squared, unit, ChordWithin, EARTH_RADIUS};

/// The unit roundoff of float64, `2^-53`.
const U: f64 = f64::EPSILON * 0.5;

#[inline(always)]
fn dot(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// The pieces of the arc computation both the value and the filter use.
struct Arc3 {
    /// `ta`, `tb` (the nearest point is inside the arc iff both are `> 0`).
    ta: f64,
    tb: f64,
    /// `p . n'` and `|n'|^2` with `n' = (a + b) x (b - a) = 2 (a x b)`, computed from the
    /// sum and difference (accurate for short arcs, where `a x b` would cancel).
    pn: f64,
    nn: f64,
    /// `sum |p_i| m_i` and `sum m_i`, `m_i = |s_j d_k| + |s_k d_j|`: the scale of the
    /// error of `pn` and of `n'`.
    k: f64,
    m: f64,
}

#[inline(always)]
fn arc3(p: &[f64; 3], a: &[f64; 3], b: &[f64; 3]) -> Arc3 {
    let (pa, pb, ab) = (dot(p, a), dot(p, b), dot(a, b));
    let (aa, bb) = (dot(a, a), dot(b, b));
    let ta = aa * pb - ab * pa;
    let tb = bb * pa - ab * pb;
    let s = [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
    let d = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    let n = [
        s[1] * d[2] - s[2] * d[1],
        s[2] * d[0] - s[0] * d[2],
        s[0] * d[1] - s[1] * d[0],
    ];
    let m = [
        (s[1] * d[2]).abs() + (s[2] * d[1]).abs(),
        (s[2] * d[0]).abs() + (s[0] * d[2]).abs(),
        (s[0] * d[1]).abs() + (s[1] * d[0]).abs(),
    ];
    Arc3 {
        ta,
        tb,
        pn: dot(p, &n),
        nn: dot(&n, &n),
        k: p[0].abs() * m[0] + p[1].abs() * m[1] + p[2].abs() * m[2],
        m: m[0] + m[1] + m[2],
    }
}

/// The squared chord of the angle from `p` to the arc `a`-`b`, in float64 (SPEC.md's
/// formula): `2 sin^2 / (1 + cos)` of the angle to the arc's plane where the nearest
/// point is inside the arc, else [`chord_squared`] to the nearer end. The same bits on
/// every machine.
#[inline]
pub fn arc_squared(p: &[f64; 3], a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let c = arc3(p, a, b);
    if c.ta > 0.0 && c.tb > 0.0 && c.nn > 0.0 {
        let sin2 = (c.pn * c.pn / (dot(p, p) * c.nn)).min(1.0);
        2.0 * sin2 / (1.0 + (1.0 - sin2).sqrt())
    } else {
        chord_squared(p, a).min(chord_squared(p, b))
    }
}

/// The exact test "the arc `a`-`b` is closer than `max_dist` to `p`" (module docs).
#[derive(Debug, Clone, Copy)]
pub struct ArcWithin {
    ends: ChordWithin,
    /// `T`, and `4T - T^2` in float64 (within `2.01u` of the true value for `T <= 2`).
    t: f64,
    c: f64,
}

impl ArcWithin {
    /// The test for `max_dist` metres (`> 0`; `inf` accepts every arc).
    pub fn new(max_dist: f64) -> Self {
        let ends = ChordWithin::new(max_dist);
        let t = ends.threshold();
        Self {
            ends,
            t,
            c: 4.0 * t - t * t,
        }
    }

    /// The squared-chord threshold `T`.
    pub fn threshold(&self) -> f64 {
        self.t
    }

    /// Whether the arc `a`-`b` is closer than `max_dist` to `p`, exactly. `p`, `a`, `b`
    /// are unit vectors of [`unit`] (components in `[-1, 1]`, norms within `4u` of 1).
    ///
    /// # Why the filter is exact
    /// Every dot product of such vectors is within `3.1u` of the exact one and at most
    /// `1 + 5u` in magnitude, so `ta` and `tb` are within `17u` of theirs: beyond `24u`
    /// their signs are certain. With `s = a + b` and `d = b - a` each rounded once, each
    /// component of `n'` is within `6u m_i` of the exact `(a + b) x (b - a)`, so `|n'|`
    /// is within `7u sum m_i` of its exact norm and `p . n'` within `12u k`. The two
    /// sides `4 (p.n')^2` and `(4T - T^2) |p|^2 |n'|^2` (both exactly 4 times the module
    /// docs' sides) are bounded from these, each bound's own roundings covered by a
    /// factor `1 -+ 16u`; the filter answers only when the bounds do not overlap.
    /// Magnitudes where squares could underflow go to the exact test.
    #[inline]
    pub fn test(&self, p: &[f64; 3], a: &[f64; 3], b: &[f64; 3]) -> bool {
        if self.t == f64::INFINITY || self.ends.test(p, a) || self.ends.test(p, b) {
            return true;
        }
        let c = arc3(p, a, b);
        const ET: f64 = 24.0 * U;
        if c.ta < -ET || c.tb < -ET || (c.ta == 0.0 && c.tb == 0.0 && c.nn == 0.0) {
            // The nearest point is an end (or the arc is a point): decided above.
            return false;
        }
        if !(c.ta > ET && c.tb > ET) {
            return exact_arc_within(p, a, b, self.t);
        }
        if self.t > 2.0 {
            return true; // the angle to a plane is at most 90 degrees
        }
        let e_pn = 12.0 * U * c.k;
        let e_n = 7.0 * U * c.m;
        let ln = c.nn.sqrt();
        let pp = dot(p, p);
        let apn = c.pn.abs();
        let f_hi = 4.0 * (apn + e_pn) * (apn + e_pn) * (1.0 + 16.0 * U);
        let lo_pn = (apn - e_pn).max(0.0);
        let f_lo = 4.0 * lo_pn * lo_pn * (1.0 - 16.0 * U);
        let n_lo = (ln * (1.0 - 3.0 * U) - e_n).max(0.0);
        let n_hi = ln * (1.0 + 3.0 * U) + e_n;
        let g_lo = self.c * pp * n_lo * n_lo * (1.0 - 16.0 * U);
        let g_hi = self.c * pp * n_hi * n_hi * (1.0 + 16.0 * U);
        if g_lo > 1e-280 && f_hi.is_finite() && self.t > f64::powi(2.0, -900) {
            if f_hi < g_lo {
                return true;
            }
            if f_lo > g_hi {
                return false;
            }
        }
        exact_arc_within(p, a, b, self.t)
    }
}

/// `x 2^ex < y 2^ey` for integers `x`, `y`.
fn less_scaled(x: &BigInt, ex: i64, y: &BigInt, ey: i64) -> bool {
    if ex >= ey {
        (x << (ex - ey) as usize) < *y
    } else {
        *x < (y << (ey - ex) as usize)
    }
}

/// The exact decision of [`ArcWithin::test`] (module docs) for finite unit vectors and
/// the squared-chord threshold `t` (`inf`: true), in integer arithmetic: every float64
/// is an integer times a power of two, so after scaling the nine coordinates by the
/// smallest power the dot and cross products are integer polynomials.
pub fn exact_arc_within(p: &[f64; 3], a: &[f64; 3], b: &[f64; 3], t: f64) -> bool {
    if t == f64::INFINITY {
        return true;
    }
    let coords = [p[0], p[1], p[2], a[0], a[1], a[2], b[0], b[1], b[2]];
    if coords.iter().any(|v| !v.is_finite()) || !t.is_finite() {
        return false;
    }
    let parts = coords.map(split);
    let e0 = parts
        .iter()
        .filter(|q| q.0 != 0)
        .map(|q| q.1)
        .min()
        .unwrap_or(0) as i64;
    let v = parts.map(|(m, e)| BigInt::from(m) << (e as i64 - e0) as usize);
    let [p0, p1, p2, a0, a1, a2, b0, b1, b2] = v;
    let (p, a, b) = ([p0, p1, p2], [a0, a1, a2], [b0, b1, b2]);
    let dot = |x: &[BigInt; 3], y: &[BigInt; 3]| &x[0] * &y[0] + &x[1] * &y[1] + &x[2] * &y[2];
    let (mt, et) = split(t);
    let (mt, et) = (BigInt::from(mt), et as i64);
    // The ends: |p - e|^2 (units 2^(2 e0)) < t.
    for e in [&a, &b] {
        let d = [&p[0] - &e[0], &p[1] - &e[1], &p[2] - &e[2]];
        if less_scaled(&dot(&d, &d), 2 * e0, &mt, et) {
            return true;
        }
    }
    let (pa, pb, ab) = (dot(&p, &a), dot(&p, &b), dot(&a, &b));
    let (aa, bb) = (dot(&a, &a), dot(&b, &b));
    let zero = BigInt::from(0);
    let ta = &aa * &pb - &ab * &pa;
    let tb = &bb * &pa - &ab * &pb;
    if ta <= zero || tb <= zero {
        return false;
    }
    if t > 2.0 {
        return true;
    }
    // n = a x b; 4 (p.n)^2 < (4t - t^2) |p|^2 |n|^2 with t = mt 2^et, et <= -51:
    // 4t - t^2 = 2^(2 et) (mt 2^(2 - et) - mt^2), so compare
    // 4 (p.n)^2 2^(-2 et) < (mt 2^(2 - et) - mt^2) |p|^2 |n|^2.
    let n = [
        &a[1] * &b[2] - &a[2] * &b[1],
        &a[2] * &b[0] - &a[0] * &b[2],
        &a[0] * &b[1] - &a[1] * &b[0],
    ];
    let pn = dot(&p, &n);
    let lhs = (&pn * &pn * 4) << (-2 * et) as usize;
    let c = (&mt << (2 - et) as usize) - &mt * &mt;
    lhs < c * dot(&p, &p) * dot(&n, &n)
}

/// A longitude/latitude box `[lon0, lat0, lon1, lat1]` (degrees) holding every point
/// within `radius` metres (great-circle) of a great-circle arc between two of the unit
/// vectors `units`, and every point of the box `vertex_box` (the part's vertices as
/// given: a point a part covers is in it). Longitudes of the arcs' part are in
/// `[-180, 180]`: a part whose reach crosses the antimeridian or a pole gets every
/// longitude.
///
/// The arcs lie in the cap around the normalised mean `c` of the vectors whose angular
/// radius `rho` reaches the farthest vector (a cap below 90 degrees is convex: it holds
/// the arcs between its points), so a point within `radius` lies in the cap of radius
/// `rho + radius / R`, whose box is `lat_c -+ alpha`, `lon_c -+ asin(sin alpha / cos
/// lat_c)`. The box is widened by `1e-9` degrees on each side, far above the float64
/// errors of these formulas (the longitude's `asin` is only used below an argument of
/// 0.99, where its error is a few units in the last place).
pub fn cap_box(units: &[[f64; 3]], vertex_box: &[f64; 4], radius: f64) -> [f64; 4] {
    const WORLD: [f64; 4] = [-180.0, -90.0, 180.0, 90.0];
    const MARGIN: f64 = 1e-9;
    let union = |b: [f64; 4]| {
        [
            b[0].min(vertex_box[0]),
            b[1].min(vertex_box[1]),
            b[2].max(vertex_box[2]),
            b[3].max(vertex_box[3]),
        ]
    };
    let mut sum = [0.0f64; 3];
    for u in units {
        for i in 0..3 {
            sum[i] += u[i];
        }
    }
    let norm = dot(&sum, &sum).sqrt();
    if norm.is_nan() || norm <= 1e-6 * units.len() as f64 || !radius.is_finite() {
        return union(WORLD);
    }
    let c = sum.map(|v| v / norm);
    let far = units
        .iter()
        .map(|u| chord_squared(&c, u))
        .fold(0.0f64, f64::max);
    let rho = 2.0 * libm::asin((far.sqrt() * 0.5).min(1.0));
    let alpha = (rho + radius / EARTH_RADIUS) * (1.0 + 1e-12) + 1e-15;
    if rho * (1.0 + 1e-12) + 1e-15 >= std::f64::consts::FRAC_PI_2 || alpha >= std::f64::consts::PI {
        return union(WORLD);
    }
    let deg = 180.0 / std::f64::consts::PI;
    let lat_c = libm::atan2(c[2], libm::hypot(c[0], c[1])) * deg;
    let lon_c = libm::atan2(c[1], c[0]) * deg;
    let alpha_deg = alpha * deg;
    let (lat0, lat1) = (lat_c - alpha_deg - MARGIN, lat_c + alpha_deg + MARGIN);
    if lat0 <= -90.0 || lat1 >= 90.0 {
        return union([-180.0, lat0.max(-90.0), 180.0, lat1.min(90.0)]);
    }
    let arg = libm::sin(alpha) / libm::cos(lat_c / deg);
    if arg.is_nan() || arg >= 0.99 {
        return union([-180.0, lat0, 180.0, lat1]);
    }
    let dlon = libm::asin(arg) * deg + MARGIN;
    let (lon0, lon1) = (lon_c - dlon, lon_c + dlon);
    if lon0 <= -180.0 || lon1 >= 180.0 {
        return union([-180.0, lat0, 180.0, lat1]);
    }
    union([lon0, lat0, lon1, lat1])
}

/// Per polygon row of `polygons` (longitude/latitude), a box holding every point at a
/// distance `< radius` metres from it under `dwithin` on the sphere ([`cap_box`] of all
/// its vertices; NaN for a row that cannot match): the boxes a partitioned match cuts
/// its tiles by.
pub fn reach_bounds(polygons: &PolygonColumns, radius: f64) -> Vec<[f64; 4]> {
    let (x, y) = (polygons.x().as_ref(), polygons.y().as_ref());
    polygons
        .bounds()
        .into_par_iter()
        .enumerate()
        .map(|(row, b)| {
            if b[0].is_nan() {
                return b;
            }
            let (lo, hi) = polygons.vertices_of(row);
            let units: Vec<[f64; 3]> = (lo..hi).map(|i| unit(x[i], y[i])).collect();
            cap_box(&units, &b, radius)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sphere::metres;

    #[test]
    fn the_three_cases() {
        let (a, b) = (unit(0.0, 0.0), unit(1.0, 0.0));
        // Above the middle of an equatorial arc: the angle to the equator.
        let s = arc_squared(&unit(0.5, 0.25), &a, &b);
        let want = 0.25f64.to_radians() * EARTH_RADIUS;
        assert!((metres(s) - want).abs() < 1e-6, "{} {want}", metres(s));
        // Beyond an end: the chord to it.
        let p = unit(-0.5, 0.1);
        assert_eq!(arc_squared(&p, &a, &b), chord_squared(&p, &a));
        let p = unit(1.5, -0.1);
        assert_eq!(arc_squared(&p, &a, &b), chord_squared(&p, &b));
        // A degenerate arc is its point.
        let p = unit(0.3, 0.3);
        assert_eq!(arc_squared(&p, &a, &a), chord_squared(&p, &a));
    }

    #[test]
    fn the_filter_agrees_with_the_exact_test() {
        // Points near short and long arcs, at distances around the radius: the filter's
        // answer (or its fallback) is the exact one, and the exact one agrees with the
        // float value away from the threshold.
        let mut rng = crate::synth::Rng::new(0x9e37_79b9_7f4a_7c15);
        let mut near = 0;
        for i in 0..20_000 {
            let lon = rng.uniform() * 360.0 - 180.0;
            let lat = rng.uniform() * 170.0 - 85.0;
            let len = [1e-4, 1e-2, 1.0, 20.0][i % 4];
            let a = unit(lon, lat);
            let b = unit(
                lon + len * (rng.uniform() - 0.5),
                lat + len * (rng.uniform() - 0.5),
            );
            let p = unit(
                lon + len * (rng.uniform() * 2.0 - 0.5),
                lat + len * (rng.uniform() - 0.5),
            );
            let s = arc_squared(&p, &a, &b);
            // A radius at the float distance, nudged either way by a few ulps or more.
            let d = metres(s) * (1.0 + (rng.uniform() - 0.5) * [1e-15, 1e-12, 1e-6][i % 3]);
            if d.is_nan() || d <= 0.0 {
                continue;
            }
            let test = ArcWithin::new(d);
            let exact = exact_arc_within(&p, &a, &b, test.threshold());
            assert_eq!(test.test(&p, &a, &b), exact, "{i}: {p:?} {a:?} {b:?} {d}");
            // The float value's error is an angle of a few 1e-15 radians (cancellation in
            // `p . n` for short arcs): beyond 1e-14 the float value decides the same.
            if (s.sqrt() - test.threshold().sqrt()).abs() > 1e-14 {
                assert_eq!(
                    exact,
                    s < test.threshold(),
                    "{i} s={s} t={} len={len} ends={} {}",
                    test.threshold(),
                    chord_squared(&p, &a),
                    chord_squared(&p, &b)
                );
            } else {
                near += 1;
            }
        }
        assert!(near > 1000, "{near} cases near the threshold");
    }

    #[test]
    fn exactly_at_the_radius_is_not_within() {
        // The ends: a radius whose chord is exactly the squared chord to an end.
        let (a, b) = (unit(10.0, 10.0), unit(10.5, 10.0));
        let p = unit(9.0, 10.0);
        let s = chord_squared(&p, &a);
        assert!(!exact_arc_within(&p, &a, &b, s));
        assert!(exact_arc_within(&p, &a, &b, s.next_up()));
        // The interior: a point on the arc's great circle is at 0.
        let p = [1.0, 0.0, 0.0];
        let (a, b) = ([0.6, -0.8, 0.0], [0.6, 0.8, 0.0]);
        assert_eq!(arc_squared(&p, &a, &b), 0.0);
        assert!(exact_arc_within(&p, &a, &b, f64::MIN_POSITIVE));
        assert!(ArcWithin::new(1e-3).test(&p, &a, &b));
    }

    #[test]
    fn the_cap_box_holds_the_points_near_the_arcs() {
        let mut rng = crate::synth::Rng::new(7);
        for i in 0..2_000 {
            let lon = rng.uniform() * 360.0 - 180.0;
            let lat = rng.uniform() * 178.0 - 89.0;
            let size = [1e-3, 0.1, 5.0, 40.0][i % 4];
            let ring: Vec<(f64, f64)> = (0..6)
                .map(|_| {
                    (
                        (lon + size * (rng.uniform() - 0.5)).clamp(-180.0, 180.0),
                        (lat + size * (rng.uniform() - 0.5)).clamp(-90.0, 90.0),
                    )
                })
                .collect();
            let units: Vec<[f64; 3]> = ring.iter().map(|&(x, y)| unit(x, y)).collect();
            let vb = ring.iter().fold(
                [f64::INFINITY, f64::INFINITY, -f64::INFINITY, -f64::INFINITY],
                |b, &(x, y)| [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)],
            );
            let radius = [10.0, 1_000.0, 100_000.0][i % 3];
            let bx = cap_box(&units, &vb, radius);
            let test = ArcWithin::new(radius);
            for _ in 0..50 {
                let span = size + 3.0 * radius / 111_000.0;
                let px = lon + span * (rng.uniform() - 0.5) * 2.0;
                let py = (lat + span * (rng.uniform() - 0.5) * 2.0).clamp(-90.0, 90.0);
                let px = if px > 180.0 {
                    px - 360.0
                } else if px < -180.0 {
                    px + 360.0
                } else {
                    px
                };
                let p = unit(px, py);
                let near = (0..6).any(|k| test.test(&p, &units[k], &units[(k + 1) % 6]));
                if near {
                    assert!(
                        px >= bx[0] && px <= bx[2] && py >= bx[1] && py <= bx[3],
                        "{i}: ({px}, {py}) near the arcs, outside {bx:?}"
                    );
                }
            }
        }
    }
}
