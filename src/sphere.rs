//! The sphere metric (`metric="sphere"`): longitude/latitude in degrees on a sphere of
//! radius [`EARTH_RADIUS`], distances in great-circle metres, areas in square metres.
//!
//! Every value that decides or is reported comes from float64 arithmetic, the sine and
//! cosine of degrees of [`sincos_deg`], and the pinned pure-Rust `libm` (`sin`, `asin`,
//! `atan2`, `hypot`): no platform maths, so the bits are the same on every machine
//! (SPEC.md, "On the sphere").
//!
//! - A point (and a polygon's center) is the unit vector [`unit`] of its longitude and
//!   latitude.
//! - `distance < max_dist` is decided as S2's `S1ChordAngle` does: the squared chord
//!   length between two unit vectors against a threshold computed once from `max_dist`
//!   ([`ChordWithin`]), exactly for the float64 vectors (a filter with an error bound,
//!   big-integer fallback).
//! - A polygon's center is the normalised mean of its exterior vertices' unit vectors
//!   ([`center_area`]), reported as longitude/latitude; its area the spherical excess of
//!   its rings (edges as great-circle arcs) times `R^2`.
//! - The center index stays the planar tree over the centers' longitude/latitude, with a
//!   3-D box of its centers' unit vectors per node: [`SphereCap`] is its candidate rule
//!   (a node placed by the squared chords to its box, the exact chord test for each
//!   center), [`SphereGroup`] the group search's, and the cell lists have longitude/
//!   latitude cells with a 3-D box each (`index::cells::Sphere`).

use std::f64::consts::PI;
use std::str::FromStr;

use num_bigint::BigInt;

use crate::error::{PolymatchError, Result};
use crate::index::{CenterRule, NearRule, Reach};
use crate::io::crs::{Crs, CrsKind};
use crate::shape::distance::split;

/// The sphere's radius in metres: the IUGG mean Earth radius `R1 = (2a + b) / 3` of
/// WGS84, 6,371,008.8 m.
pub const EARTH_RADIUS: f64 = 6_371_008.8;

/// Degrees per radian and radians per degree, as float64 constants.
const DEG: f64 = 180.0 / PI;
const RAD: f64 = PI / 180.0;

/// How distances and areas are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Metric {
    /// Coordinates are planar: Euclidean distances, areas in squared units (the default).
    #[default]
    Planar,
    /// Coordinates are longitude/latitude in degrees on a sphere: great-circle metres,
    /// square metres.
    Sphere,
}

impl Metric {
    /// The text form, `"planar"` or `"sphere"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Planar => "planar",
            Self::Sphere => "sphere",
        }
    }
}

impl FromStr for Metric {
    type Err = PolymatchError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "planar" => Ok(Self::Planar),
            "sphere" => Ok(Self::Sphere),
            other => Err(PolymatchError::InvalidArgument(format!(
                "metric must be \"planar\" or \"sphere\", got {other:?}"
            ))),
        }
    }
}

/// How a polygon's edges run between its vertices: GeoParquet's and GeoArrow's `edges`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Edges {
    /// Straight lines in the coordinates (the default; in longitude/latitude on the
    /// sphere).
    #[default]
    Planar,
    /// The shorter great-circle arc between the two vertices (longitude/latitude
    /// only: [`Metric::Sphere`]).
    Spherical,
}

impl Edges {
    /// The text form, `"planar"` or `"spherical"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Planar => "planar",
            Self::Spherical => "spherical",
        }
    }

    /// Refuse to measure polygons with these edges in `metric`: great-circle edges
    /// only make sense in longitude/latitude on the sphere.
    ///
    /// # Errors
    /// [`PolymatchError::InvalidArgument`] for spherical edges with [`Metric::Planar`].
    pub fn check(self, metric: Metric) -> Result<()> {
        if self == Self::Spherical && metric == Metric::Planar {
            return Err(PolymatchError::InvalidArgument(
                "the polygons have spherical edges (great-circle arcs between \
                 longitude/latitude vertices): match them with metric=\"sphere\" \
                 (command line: --metric sphere)"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The accepted longitudes, `[-180, 360]` (both the `[-180, 180]` and the `[0, 360]`
/// conventions), and latitudes, `[-90, 90]`.
pub const LON_RANGE: (f64, f64) = (-180.0, 360.0);

/// Why a longitude/latitude pair is not one, or `None` if it is (non-finite values are
/// left to the caller: a point with NaN never matches, a polygon's vertex is checked
/// before this).
pub fn check_lon_lat(lon: f64, lat: f64) -> Option<String> {
    if is_lon_lat(lon, lat) {
        return None;
    }
    if !(-90.0..=90.0).contains(&lat) && lat.is_finite() {
        return Some(format!(
            "latitude {lat} is outside [-90, 90] (metric=\"sphere\" reads x as longitude \
             and y as latitude, in degrees)"
        ));
    }
    if !(LON_RANGE.0..=LON_RANGE.1).contains(&lon) && lon.is_finite() {
        return Some(format!(
            "longitude {lon} is outside [-180, 360] (metric=\"sphere\" reads x as \
             longitude and y as latitude, in degrees)"
        ));
    }
    None
}

/// [`check_lon_lat`] finds nothing wrong, without branches (a loop over many points
/// vectorises).
#[inline(always)]
#[allow(clippy::manual_range_contains)] // `&`, not `&&`: no branch
pub fn is_lon_lat(lon: f64, lat: f64) -> bool {
    let lat_ok = (lat >= -90.0) & (lat <= 90.0) | !lat.is_finite();
    let lon_ok = (lon >= LON_RANGE.0) & (lon <= LON_RANGE.1) | !lon.is_finite();
    lat_ok & lon_ok
}

/// A longitude in `(180, 360]` moved to `(-180, 0]` (exact: Sterbenz), so both
/// conventions give the same bits.
#[inline(always)]
fn wrap(lon: f64) -> f64 {
    if lon > 180.0 {
        lon - 360.0
    } else {
        lon
    }
}

/// The unit vector of a longitude/latitude in degrees, `(cos lat cos lon, cos lat sin
/// lon, sin lat)`, with [`sincos_deg`]; the longitude wrapped to `[-180, 180]` first.
#[inline(always)]
pub fn unit(lon: f64, lat: f64) -> [f64; 3] {
    let (slat, clat) = sincos_deg(lat);
    let (slon, clon) = sincos_deg(wrap(lon));
    [clat * clon, clat * slon, slat]
}

/// [`unit`] of many longitudes/latitudes: `out[k] = unit(xs[k], ys[k])` (the three
/// slices have one length).
///
/// [`sincos_deg`] has no branch, so a loop of it runs several points per vector
/// instruction; where the CPU has AVX-512 or AVX2, a copy compiled for it runs 8 or 4
/// lanes instead of SSE2's 2 (measured: 10.8 ns per point in a scalar loop, 5.5 with
/// AVX2, 4.6 with AVX-512; docs/benchmarks.md). Neither copy enables fused multiply-add
/// and every lane rounds as the scalar code does, so the bits do not depend on which
/// copy ran (tested).
pub fn units(xs: &[f64], ys: &[f64], out: &mut [[f64; 3]]) {
    debug_assert!(xs.len() == out.len() && ys.len() == out.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, the only feature the copy is compiled for.
            return unsafe { units_avx512(xs, ys, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, the only feature the copy is compiled for.
            return unsafe { units_avx2(xs, ys, out) };
        }
    }
    units_generic(xs, ys, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn units_avx512(xs: &[f64], ys: &[f64], out: &mut [[f64; 3]]) {
    units_generic(xs, ys, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn units_avx2(xs: &[f64], ys: &[f64], out: &mut [[f64; 3]]) {
    units_generic(xs, ys, out);
}

#[inline(always)]
fn units_generic(xs: &[f64], ys: &[f64], out: &mut [[f64; 3]]) {
    for ((o, &x), &y) in out.iter_mut().zip(xs).zip(ys) {
        *o = unit(x, y);
    }
}

/// `(sin x, cos x)` of an angle `x` in degrees (`|x| <= 360`; NaN gives NaN), in float64
/// arithmetic alone, so the bits are the same on every machine.
///
/// The angle is reduced to `r = x - 90 q` with `q` the nearest integer to `x / 90`:
/// exact (`r` and `x` are multiples of the same power of two, `|r| <= 45`), unlike a
/// reduction by a rounded `pi / 2`. `r` in radians, `a = fl(r * (pi / 180))` with
/// `|a| <= pi / 4`, goes through fdlibm's kernel polynomials (`__kernel_sin`,
/// `__kernel_cos`, error below one unit in the last place on that interval), and the
/// quadrant `q mod 4` picks and signs the results. Multiples of 90 degrees give exact
/// values (`sin 90 = 1`, `cos 90 = 0`), and zero is never negative. A unit vector (two
/// of these) takes 10 ns where `libm::sincos(x * pi / 180)` twice took 16-17 ns
/// (measured on longitudes/latitudes of Europe: docs/benchmarks.md): `libm` reduces by a
/// rounded `pi / 2` for every `|x| > 45` degrees and branches on the quadrant.
#[inline(always)]
pub fn sincos_deg(x: f64) -> (f64, f64) {
    // Round to the nearest integer (ties to even) by adding and removing 1.5 * 2^52.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let t = x * (1.0 / 90.0) + ROUND;
    let q = t - ROUND;
    let a = (x - 90.0 * q) * RAD;
    let z = a * a;
    // __kernel_sin(a, 0, 0); fdlibm's coefficients, bit for bit
    const S1: f64 = f64::from_bits(0xbfc5_5555_5555_5549);
    const S2: f64 = f64::from_bits(0x3f81_1111_1110_f8a6);
    const S3: f64 = f64::from_bits(0xbf2a_01a0_19c1_61d5);
    const S4: f64 = f64::from_bits(0x3ec7_1de3_57b1_fe7d);
    const S5: f64 = f64::from_bits(0xbe5a_e5e6_8a2b_9ceb);
    const S6: f64 = f64::from_bits(0x3de5_d93a_5acf_d57c);
    let r = S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)));
    let s = a + z * a * (S1 + z * r);
    // __kernel_cos(a, 0); fdlibm's coefficients, bit for bit
    const C1: f64 = f64::from_bits(0x3fa5_5555_5555_554c);
    const C2: f64 = f64::from_bits(0xbf56_c16c_16c1_5177);
    const C3: f64 = f64::from_bits(0x3efa_01a0_19cb_1590);
    const C4: f64 = f64::from_bits(0xbe92_7e4f_809c_52ad);
    const C5: f64 = f64::from_bits(0x3e21_ee9e_bdb4_b1c4);
    const C6: f64 = f64::from_bits(0xbda8_fae9_be88_38d4);
    let w = z * z;
    let r = z * (C1 + z * (C2 + z * C3)) + w * w * (C4 + z * (C5 + z * C6));
    let hz = 0.5 * z;
    let w = 1.0 - hz;
    let c = w + (((1.0 - w) - hz) + z * r);
    // The quadrant, without branches (they would be mispredicted: latitudes near 45
    // degrees take both): odd quadrants swap sine and cosine, quadrants 2 and 3 negate
    // the sine, 1 and 2 the cosine. q is an integer in [-4, 4], and `t = 1.5 2^52 + q`
    // exactly, so the low bits of t's significand are `2^51 + q`: q modulo 4 in its last
    // two bits. Bit operations on t instead of a cast of q to an integer let a loop of
    // these run several points per vector instruction ([`units`]). (NaN: s, c are NaN.)
    let j = t.to_bits();
    let swap = 0u64.wrapping_sub(j & 1);
    let (sb, cb) = (s.to_bits(), c.to_bits());
    let sin_bits = ((sb & !swap) | (cb & swap)) ^ (((j >> 1) & 1) << 63);
    let cos_bits = ((cb & !swap) | (sb & swap)) ^ (((j.wrapping_add(1) >> 1) & 1) << 63);
    let (s, c) = (f64::from_bits(sin_bits), f64::from_bits(cos_bits));
    (s + 0.0, c + 0.0)
}

/// The squared chord length between two unit vectors, `dx^2 + dy^2 + dz^2` in float64 in
/// that order.
#[inline(always)]
pub fn chord_squared(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let (dx, dy, dz) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    dx * dx + dy * dy + dz * dz
}

/// Great-circle metres of a squared chord length: `2 R asin(min(sqrt(s) / 2, 1))`, with
/// `libm`'s (fdlibm's) `asin`.
///
/// Below half a chord of `1/2` (60 degrees), `asin(h)` is fdlibm's `h + h R(h^2)` for the
/// rational `R` ([`asin_r`]); it is written out here, with the same coefficients and
/// operations, so that it inlines and a loop of it ([`metres_many`]) runs several
/// distances per vector instruction. Its bits are `libm::asin`'s (tested): fdlibm returns
/// `h` itself for `2^-1022 <= h < 2^-26`, where `h R(h^2) < 2^-54.5 h` rounds away
/// anyway. Longer chords, NaN and infinity go to `libm::asin`.
#[inline(always)]
pub fn metres(s: f64) -> f64 {
    let h = s.sqrt() * 0.5;
    if h < 0.5 {
        2.0 * EARTH_RADIUS * (h + h * asin_r(h * h))
    } else {
        2.0 * EARTH_RADIUS * libm::asin(h.min(1.0))
    }
}

/// fdlibm's rational approximation of `(asin(x) - x) / x` in `z = x^2` (`comp_r` in
/// `libm` 0.2.16's `asin.rs`), bit for bit: remez error below `2^-58.75` on `[0, 1/4]`.
#[inline(always)]
fn asin_r(z: f64) -> f64 {
    const P_S0: f64 = f64::from_bits(0x3fc5_5555_5555_5555);
    const P_S1: f64 = f64::from_bits(0xbfd4_d612_03eb_6f7d);
    const P_S2: f64 = f64::from_bits(0x3fc9_c155_0e88_4455);
    const P_S3: f64 = f64::from_bits(0xbfa4_8228_b568_8f3b);
    const P_S4: f64 = f64::from_bits(0x3f49_efe0_7501_b288);
    const P_S5: f64 = f64::from_bits(0x3f02_3de1_0dfd_f709);
    const Q_S1: f64 = f64::from_bits(0xc003_3a27_1c8a_2d4b);
    const Q_S2: f64 = f64::from_bits(0x4000_2ae5_9c59_8ac8);
    const Q_S3: f64 = f64::from_bits(0xbfe6_066c_1b8d_0159);
    const Q_S4: f64 = f64::from_bits(0x3fb3_b8c5_b12e_9282);
    let p = z * (P_S0 + z * (P_S1 + z * (P_S2 + z * (P_S3 + z * (P_S4 + z * P_S5)))));
    let q = 1.0 + z * (Q_S1 + z * (Q_S2 + z * (Q_S3 + z * Q_S4)));
    p / q
}

/// [`metres`] of every squared chord in `d`, in place, with the same bits.
///
/// A first pass computes every value by the short-chord formula without a branch (so
/// several per vector instruction, with AVX-512 or AVX2 where the CPU has them, as
/// [`units`]); a block with a chord of 60 degrees or more then goes through [`metres`]
/// one by one.
pub fn metres_many(d: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, the only feature the copy is compiled for.
            return unsafe { metres_many_avx512(d) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, the only feature the copy is compiled for.
            return unsafe { metres_many_avx2(d) };
        }
    }
    metres_many_generic(d);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn metres_many_avx512(d: &mut [f64]) {
    metres_many_generic(d);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn metres_many_avx2(d: &mut [f64]) {
    metres_many_generic(d);
}

#[inline(always)]
fn metres_many_generic(d: &mut [f64]) {
    const BLOCK: usize = 64;
    let mut keep = [0.0; BLOCK];
    // A NaN (a point without a match, whose value the output ignores) still gets
    // `metres`' value, without sending its block to the scalar loop.
    let of_nan = metres(f64::NAN);
    for block in d.chunks_mut(BLOCK) {
        let keep = &mut keep[..block.len()];
        keep.copy_from_slice(block);
        let mut long = false;
        for v in block.iter_mut() {
            let h = v.sqrt() * 0.5;
            long |= h >= 0.5;
            let m = 2.0 * EARTH_RADIUS * (h + h * asin_r(h * h));
            *v = if h.is_nan() { of_nan } else { m };
        }
        if long {
            for (v, &s) in block.iter_mut().zip(keep.iter()) {
                *v = metres(s);
            }
        }
    }
}

/// `great-circle distance < max_dist` between two unit vectors, as squared chords.
///
/// The threshold is `T = fl(2 sin(max_dist / (2R)))^2`, computed once (`inf` when
/// `max_dist / R > pi`: every point is then closer); a pair is within iff the exact
/// squared chord `S` of the two float64 vectors is `< T`.
///
/// # The filter
/// `s = chord_squared(a, b)` is `S (1 + e)` with `|e| <= 5u + O(u^2)` (`u = 2^-53`): each
/// difference, square and sum of non-negative terms adds one rounding. `lo` and `hi`
/// are `T (1 -+ 8u)` rounded, so within `T (1 -+ 6.99u)`: `s < lo` proves `S < T` and
/// `s > hi` proves `S > T`. Between them the sum is compared exactly in big integers.
/// Underflow adds at most `5 * 2^-1074` to `|s - S|`, below `u T` when `T >= 2^-900`;
/// smaller thresholds always take the exact path.
#[derive(Debug, Clone, Copy)]
pub struct ChordWithin {
    t: f64,
    lo: f64,
    hi: f64,
}

impl ChordWithin {
    /// The test for `max_dist` metres (`> 0`, `inf` allowed).
    pub fn new(max_dist: f64) -> Self {
        let theta = max_dist / EARTH_RADIUS;
        // Farther than half the circumference, or inf (NaN is refused before: check_max_dist):
        // every pair is closer.
        if theta > PI || theta.is_nan() {
            return Self {
                t: f64::INFINITY,
                lo: f64::INFINITY,
                hi: f64::INFINITY,
            };
        }
        let c = 2.0 * libm::sin(theta * 0.5);
        let t = c * c;
        const M: f64 = 8.0 * f64::EPSILON * 0.5;
        if t >= f64::powi(2.0, -900) {
            Self {
                t,
                lo: t * (1.0 - M),
                hi: t * (1.0 + M),
            }
        } else {
            Self {
                t,
                lo: -1.0,
                hi: f64::INFINITY,
            }
        }
    }

    /// The squared-chord threshold `T`.
    pub fn threshold(&self) -> f64 {
        self.t
    }

    /// Where a set of vectors lies, given float64 squared chords no larger (`near`) and
    /// no smaller (`far`) than any of theirs: [`Reach::Outside`] if `near` is above the
    /// filter's upper bound (or NaN), [`Reach::Inside`] if `far` is below its lower
    /// bound, exactly as [`ChordWithin::test`] would decide each.
    #[inline(always)]
    pub fn place(&self, near: f64, far: f64) -> Reach {
        if near > self.hi || near.is_nan() {
            Reach::Outside
        } else if far < self.lo {
            Reach::Inside
        } else {
            Reach::Partial
        }
    }

    /// Whether `a` and `b` are closer than `max_dist`, exactly (false if either has a
    /// NaN).
    #[inline(always)]
    pub fn test(&self, a: &[f64; 3], b: &[f64; 3]) -> bool {
        self.test_squared(chord_squared(a, b), a, b)
    }

    /// [`ChordWithin::test`] given `s = chord_squared(a, b)`.
    #[inline(always)]
    pub fn test_squared(&self, s: f64, a: &[f64; 3], b: &[f64; 3]) -> bool {
        if s < self.lo {
            true
        } else if s > self.hi || s.is_nan() {
            false
        } else {
            exact_less(a, b, self.t)
        }
    }
}

/// `v * 2^1074` as an integer (every finite float64 is a multiple of `2^-1074`).
fn scaled(v: f64) -> BigInt {
    let (m, e) = split(v);
    BigInt::from(m) << (e + 1074) as usize
}

/// The exact `sum (a_i - b_i)^2 < t` for finite values (`t = inf`: true).
fn exact_less(a: &[f64; 3], b: &[f64; 3], t: f64) -> bool {
    if t == f64::INFINITY {
        return true;
    }
    if a.iter().chain(b).any(|v| !v.is_finite()) {
        return false;
    }
    let mut sum = BigInt::from(0);
    for i in 0..3 {
        let d = scaled(a[i]) - scaled(b[i]);
        sum += &d * &d;
    }
    sum < (scaled(t) << 1074usize)
}

/// A polygon's center and area on the sphere.
///
/// `exteriors` and `holes` are rings as longitude/latitude slices, open (no closing
/// vertex). The center is the mean of the exterior vertices' unit vectors (summed in
/// order), normalised, as `(lon, lat)` degrees (`atan2`); the area is `R^2` times the sum
/// of the exteriors' spherical excesses less the holes' (each ring the smaller of the
/// two regions it bounds, so its orientation does not matter).
///
/// # Errors
/// A message (the caller adds the row) when the vertices' mean direction is too close to
/// zero (vertices spread around the whole sphere: no center).
pub fn center_area<'a>(
    exteriors: impl Iterator<Item = (&'a [f64], &'a [f64])> + Clone,
    holes: impl Iterator<Item = (&'a [f64], &'a [f64])>,
) -> std::result::Result<(f64, f64, f64), String> {
    let mut sum = [0.0f64; 3];
    let mut n = 0usize;
    for (xs, ys) in exteriors.clone() {
        for (&x, &y) in xs.iter().zip(ys) {
            let u = unit(x, y);
            sum[0] += u[0];
            sum[1] += u[1];
            sum[2] += u[2];
        }
        n += xs.len();
    }
    let norm = (sum[0] * sum[0] + sum[1] * sum[1] + sum[2] * sum[2]).sqrt();
    if n == 0 || norm.is_nan() || norm <= 1e-9 * n as f64 {
        return Err(format!(
            "the mean of its {n} exterior vertices' unit vectors is too close to the \
             sphere's center (vertices all around the sphere): it has no center on the \
             sphere"
        ));
    }
    let c = [sum[0] / norm, sum[1] / norm, sum[2] / norm];
    let lon = libm::atan2(c[1], c[0]) * DEG;
    let lat = libm::atan2(c[2], libm::hypot(c[0], c[1])) * DEG;
    let mut area = 0.0;
    for (xs, ys) in exteriors {
        area += ring_excess(xs, ys, &c);
    }
    for (xs, ys) in holes {
        area -= ring_excess(xs, ys, &c);
    }
    Ok((lon, lat, area * EARTH_RADIUS * EARTH_RADIUS + 0.0))
}

/// The spherical excess (steradians) of the smaller region a ring bounds: the signed
/// excesses of the triangles `(o, a, b)` over its edges `a -> b`, each
/// `2 atan2(o . (a x b), 1 + o.a + a.b + b.o)`, with the triple product computed on
/// `a - o` and `b - o` (it equals `o . ((a - o) x (b - o))`), which keeps it accurate for
/// small rings.
fn ring_excess(xs: &[f64], ys: &[f64], o: &[f64; 3]) -> f64 {
    let n = xs.len();
    if n < 3 {
        return 0.0;
    }
    let vs: Vec<[f64; 3]> = xs.iter().zip(ys).map(|(&x, &y)| unit(x, y)).collect();
    let mut total = 0.0;
    for i in 0..n {
        let (a, b) = (&vs[i], &vs[(i + 1) % n]);
        let p = [a[0] - o[0], a[1] - o[1], a[2] - o[2]];
        let q = [b[0] - o[0], b[1] - o[1], b[2] - o[2]];
        let cross = [
            p[1] * q[2] - p[2] * q[1],
            p[2] * q[0] - p[0] * q[2],
            p[0] * q[1] - p[1] * q[0],
        ];
        let triple = o[0] * cross[0] + o[1] * cross[1] + o[2] * cross[2];
        let dot = |u: &[f64; 3], v: &[f64; 3]| u[0] * v[0] + u[1] * v[1] + u[2] * v[2];
        let den = 1.0 + dot(o, a) + dot(a, b) + dot(b, o);
        total += 2.0 * libm::atan2(triple, den);
    }
    let a = total.abs();
    // A ring around more than half the sphere (as seen from o): the other side.
    a.min(4.0 * PI - a)
}

/// The empty 3-D box (min x, y, z, max x, y, z): [`grow`] makes it hold vectors.
pub const EMPTY_BOX3: [f64; 6] = [
    f64::INFINITY,
    f64::INFINITY,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NEG_INFINITY,
    f64::NEG_INFINITY,
];

/// Grow the 3-D box `b` to hold `u`.
#[inline(always)]
pub fn grow(b: &mut [f64; 6], u: &[f64; 3]) {
    for a in 0..3 {
        b[a] = b[a].min(u[a]);
        b[a + 3] = b[a + 3].max(u[a]);
    }
}

/// The float64 squared chords from `u` to the nearest point and to the farthest corner
/// of the 3-D box `b`: no larger, resp. no smaller, than [`chord_squared`] from `u` to
/// any vector in the box (each coordinate difference is, in magnitude, and rounding is
/// monotone); an empty box is infinitely far.
#[inline(always)]
pub fn box_chords(u: &[f64; 3], b: &[f64; 6]) -> (f64, f64) {
    let (mut near, mut far) = (0.0, 0.0);
    for a in 0..3 {
        let v = u[a];
        let n = v - v.max(b[a]).min(b[a + 3]);
        let f = if v - b[a] > b[a + 3] - v {
            v - b[a]
        } else {
            v - b[a + 3]
        };
        near += n * n;
        far += f * f;
    }
    (near, far)
}

/// The center rule on the sphere for one point: the candidates are the centers closer
/// than `max_dist` great-circle metres ([`ChordWithin`]), and for the index's walks a
/// node is placed by the 3-D box of its centers' unit vectors: the float64 squared chord
/// from the point to the nearest point of the box is no larger than to any center in it,
/// and to the farthest corner no smaller (rounding is monotone: each coordinate
/// difference to the box is no larger, resp. no smaller, in magnitude than to the
/// center, and so are its rounded square and the rounded sum), so a node is outside when
/// that nearest chord is above the filter's upper bound and inside when the farthest is
/// below its lower bound, exactly as [`ChordWithin::test`] would decide each center.
/// The same bounds order the nearest search ([`NearRule`]): the key of a center is its
/// float64 squared chord.
#[derive(Debug, Clone, Copy)]
pub struct SphereCap<'a> {
    within: &'a ChordWithin,
    units: &'a [[f64; 3]],
    items: &'a [[f64; 3]],
    boxes: &'a [[f64; 6]],
    u: [f64; 3],
}

impl<'a> SphereCap<'a> {
    /// The cap of `within` around `(lon, lat)` in the sphere index `index` (its
    /// centers' unit vectors by rank and in tree order, and its nodes' 3-D boxes).
    #[inline]
    pub fn new(
        within: &'a ChordWithin,
        index: &'a crate::SpatialIndex,
        lon: f64,
        lat: f64,
    ) -> Self {
        Self::from_unit(within, index, unit(lon, lat))
    }

    /// [`SphereCap::new`] for a point given by its unit vector.
    #[inline]
    pub fn from_unit(within: &'a ChordWithin, index: &'a crate::SpatialIndex, u: [f64; 3]) -> Self {
        Self {
            within,
            units: index.units(),
            items: index.item_units(),
            boxes: index.unit_node_boxes(),
            u,
        }
    }

    /// The point's unit vector.
    pub fn unit(&self) -> &[f64; 3] {
        &self.u
    }

    /// The float64 squared chords from the point to the nearest point and to the
    /// farthest corner of node `node`'s box (an empty box is infinitely far).
    #[inline(always)]
    fn near_far(&self, node: usize) -> (f64, f64) {
        box_chords(&self.u, &self.boxes[node])
    }
}

/// A group of nearby points on the sphere ([`crate::SpatialIndex::best_by_group`]): the
/// 3-D box of their unit vectors, placed against a node's box of centers by the float
/// squared chords between the boxes' nearest and farthest points (the per-axis gaps and
/// spans bound every pair's differences, and rounding is monotone, as in [`SphereCap`]).
#[derive(Debug, Clone, Copy)]
pub struct SphereGroup<'a> {
    within: &'a ChordWithin,
    boxes: &'a [[f64; 6]],
    g: [f64; 6],
}

impl<'a> SphereGroup<'a> {
    /// The group of the unit vectors `us` (NaN ones left out), or `None` if none is
    /// finite.
    pub fn new(
        within: &'a ChordWithin,
        index: &'a crate::SpatialIndex,
        us: &[[f64; 3]],
    ) -> Option<Self> {
        let mut g = EMPTY_BOX3;
        let mut any = false;
        for u in us.iter().filter(|u| u.iter().all(|v| v.is_finite())) {
            any = true;
            grow(&mut g, u);
        }
        any.then_some(Self {
            within,
            boxes: index.unit_node_boxes(),
            g,
        })
    }
}

impl crate::index::GroupReach for SphereGroup<'_> {
    #[inline(always)]
    fn group_reach(&self, node: usize, _b: &[f64; 4]) -> Reach {
        let (b, g) = (&self.boxes[node], &self.g);
        let (mut near, mut far) = (0.0, 0.0);
        for a in 0..3 {
            let gap = (g[a] - b[a + 3]).max(b[a] - g[a + 3]).max(0.0);
            let span = (g[a + 3] - b[a]).max(b[a + 3] - g[a]);
            near += gap * gap;
            far += span * span;
        }
        self.within.place(near, far)
    }
}

impl CenterRule for SphereCap<'_> {
    #[inline(always)]
    fn reach(&self, node: usize, _b: &[f64; 4], _px: f64, _py: f64) -> Reach {
        let (near, far) = self.near_far(node);
        self.within.place(near, far)
    }

    #[inline(always)]
    fn accepts(&self, item: usize, _rank: u32, _cx: f64, _cy: f64, _px: f64, _py: f64) -> bool {
        self.within.test(&self.u, &self.items[item])
    }
}

impl NearRule for SphereCap<'_> {
    #[inline(always)]
    fn key(&self, rank: u32) -> f64 {
        chord_squared(&self.u, &self.units[rank as usize])
    }
    #[inline(always)]
    fn near_key(&self, node: usize) -> f64 {
        self.near_far(node).0
    }
    #[inline(always)]
    fn far_key(&self, node: usize) -> f64 {
        self.near_far(node).1
    }
}

/// The metric of a match from the caller's choice (`None`: not given) and the CRS the
/// polygons state: the metric, and a warning to show when a geographic CRS is read as
/// planar because no metric was given (GeoParquet's omitted `crs` is OGC:CRS84, so it
/// counts as stated; `"crs": null` is unknown and does not).
///
/// # Errors
/// [`PolymatchError::InvalidArgument`] for `metric="sphere"` with a projected CRS (its
/// coordinates are not longitudes and latitudes).
pub fn resolve_metric(
    given: Option<Metric>,
    crs: Option<&Crs>,
) -> Result<(Metric, Option<String>)> {
    let kind = crs.map(|c| c.kind());
    match (given, kind) {
        (Some(Metric::Sphere), Some(CrsKind::Projected)) => {
            Err(PolymatchError::InvalidArgument(format!(
                "metric=\"sphere\" needs longitude/latitude coordinates, and the polygons' CRS \
                 {} is projected: match it with metric=\"planar\" (its units), or transform \
                 the data to EPSG:4326 / OGC:CRS84 first",
                crs.map(|c| c.short()).unwrap_or_default()
            )))
        }
        (None, Some(CrsKind::Geographic)) => Ok((
            Metric::Planar,
            Some(format!(
                "the polygons' CRS {} is geographic (longitude/latitude in degrees), and \
                 the match measures planar degrees: pass metric=\"sphere\" (command line: \
                 --metric sphere) for distances in metres and areas in square metres, or \
                 metric=\"planar\" to keep degrees and silence this warning",
                crs.map(|c| c.short()).unwrap_or_default()
            )),
        )),
        (given, _) => Ok((given.unwrap_or_default(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_and_cosine_of_degrees() {
        // Multiples of 90 degrees are exact, and zero is never negative.
        for (x, want) in [
            (0.0f64, (0.0f64, 1.0f64)),
            (90.0, (1.0, 0.0)),
            (180.0, (0.0, -1.0)),
            (-90.0, (-1.0, 0.0)),
            (-180.0, (0.0, -1.0)),
            (270.0, (-1.0, 0.0)),
            (360.0, (0.0, 1.0)),
            (-0.0, (0.0, 1.0)),
        ] {
            let (s, c) = sincos_deg(x);
            assert_eq!(
                (s.to_bits(), c.to_bits()),
                (want.0.to_bits(), want.1.to_bits()),
                "{x}"
            );
        }
        let (s, c) = sincos_deg(f64::NAN);
        assert!(s.is_nan() && c.is_nan());
        // Within 3 units in the last place of 1 of libm on radians (whose argument
        // x * pi / 180 carries its own rounding), odd and even exactly, over a sweep of
        // [-360, 360] that crosses every octant boundary.
        let mut worst = 0.0f64;
        for i in -2_000_000i64..=2_000_000 {
            let x = i as f64 * 1.8e-4 + (i % 7) as f64 * 1e-9;
            let (s, c) = sincos_deg(x);
            let (ls, lc) = libm::sincos(x * RAD);
            worst = worst.max((s - ls).abs()).max((c - lc).abs());
            let (ns, nc) = sincos_deg(-x);
            assert_eq!(
                (ns.to_bits(), nc.to_bits()),
                ((-s + 0.0).to_bits(), c.to_bits()),
                "{x}"
            );
        }
        assert!(
            worst <= 3.0 * f64::EPSILON,
            "largest difference from libm: {worst:e}"
        );
        // The bits are pinned: the same on every machine (a fused multiply-add or another
        // polynomial would change them). Both are the correctly rounded values (mpmath).
        let (s, c) = sincos_deg(47.123_456_789);
        assert_eq!(
            (s.to_bits(), c.to_bits()),
            (0x3fe7_7346_1f8a_84be, 0x3fe5_c602_1297_1ace)
        );
    }

    #[test]
    fn threshold_and_exact_ties() {
        // A unit vector against itself: chord 0, within any radius.
        let a = unit(10.0, 20.0);
        assert!(ChordWithin::new(1e-3).test(&a, &a));
        // Exactly at the threshold: the chord between (1,0,0) and (0,1,0) is 2; a
        // radius whose T rounds to 2 is not strictly closer.
        let w = ChordWithin::new(EARTH_RADIUS * PI / 2.0);
        let (x, y) = ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]);
        assert_eq!(
            w.test(&x, &y),
            exact_less(&x, &y, w.threshold()),
            "filter and exact test agree at T = {}",
            w.threshold()
        );
        assert!(!exact_less(&x, &y, 2.0));
        assert!(exact_less(&x, &y, 2.0f64.next_up()));
        // Farther than half the circumference: everything, antipodes included.
        let w = ChordWithin::new(EARTH_RADIUS * 4.0);
        assert!(w.test(&unit(0.0, 0.0), &unit(180.0, 0.0)));
        // NaN never.
        assert!(!w.test(&unit(f64::NAN, 0.0), &x));
    }

    #[test]
    fn filter_agrees_with_exact_near_the_threshold() {
        let w = ChordWithin::new(1000.0);
        let a = unit(2.0, 45.0);
        // Walk a point across the threshold in tiny steps north.
        let step = 1000.0 / EARTH_RADIUS * DEG;
        for k in -200..200 {
            let lat = 45.0 + step + k as f64 * 1e-15;
            let b = unit(2.0, lat);
            assert_eq!(w.test(&a, &b), exact_less(&a, &b, w.threshold()), "{lat}");
        }
    }

    #[test]
    fn every_copy_of_units_gives_the_scalar_bits() {
        // Octant and quadrant boundaries, both longitude conventions, signed zeros, NaN,
        // and a pseudo-random sweep; lengths that are not multiples of any vector width.
        let mut xs = vec![-180.0, 180.0, 360.0, 359.999, -0.0, 0.0, 45.0, -45.0, 135.0];
        let mut ys = vec![
            90.0,
            -90.0,
            0.0,
            -0.0,
            45.0,
            44.999_999_999_999_99,
            89.9,
            -1e-300,
            1.0,
        ];
        xs.push(f64::NAN);
        ys.push(3.0);
        xs.push(12.0);
        ys.push(f64::NAN);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for i in 0..100_003 {
            let k = i % 8;
            xs.push(if k == 0 {
                (i % 17) as f64 * 22.5 - 180.0
            } else {
                next() * 540.0 - 180.0
            });
            ys.push(if k == 1 {
                (i % 9) as f64 * 22.5 - 90.0
            } else {
                next() * 180.0 - 90.0
            });
        }
        let want: Vec<[u64; 3]> = xs
            .iter()
            .zip(&ys)
            .map(|(&x, &y)| unit(x, y).map(f64::to_bits))
            .collect();
        type Units<'a> = &'a dyn Fn(&[f64], &[f64], &mut [[f64; 3]]);
        let check = |name: &str, run: Units| {
            for len in [xs.len(), 1, 3, 7, 64, 65] {
                let mut out = vec![[0.0; 3]; len];
                run(&xs[..len], &ys[..len], &mut out);
                for (k, (o, w)) in out.iter().zip(&want).enumerate() {
                    let same = o.iter().zip(w).all(|(a, &b)| {
                        a.to_bits() == b || (a.is_nan() && f64::from_bits(b).is_nan())
                    });
                    assert!(same, "{name}: point {k} ({}, {})", xs[k], ys[k]);
                }
            }
        };
        check("dispatched", &|x, y, o| units(x, y, o));
        check("generic", &|x, y, o| units_generic(x, y, o));
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2.
                check("avx2", &|x, y, o| unsafe { units_avx2(x, y, o) });
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F.
                check("avx512", &|x, y, o| unsafe { units_avx512(x, y, o) });
            }
        }
    }

    #[test]
    fn metres_are_libm_asin_bit_for_bit() {
        let reference = |s: f64| 2.0 * EARTH_RADIUS * libm::asin((s.sqrt() * 0.5).min(1.0));
        // Squared chords from 0 through subnormals, the fdlibm cut-offs at half-chords of
        // 2^-26 and 1/2 (s = 2^-50 and 1), to antipodes (s = 4), beyond, and NaN/inf.
        let mut s = vec![
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            5e-324,
            1.0,
            4.0,
            5.0,
            f64::INFINITY,
        ];
        s.push(f64::NAN);
        for e in -1074..=3 {
            let p = f64::powi(2.0, e);
            s.extend([
                p,
                p * (1.0 - f64::EPSILON),
                p * (1.0 + f64::EPSILON),
                p * 1.37,
            ]);
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for i in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            // uniform in [0, 4.2], and log-uniform down to 1e-30
            s.push(if i % 2 == 0 {
                u * 4.2
            } else {
                f64::powf(10.0, -30.0 * u)
            });
        }
        let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        for &v in &s {
            assert!(same(metres(v), reference(v)), "metres({v:e})");
        }
        let check = |name: &str, run: &dyn Fn(&mut [f64])| {
            for len in [s.len(), 1, 5, 64, 130] {
                let mut d = s[..len].to_vec();
                run(&mut d);
                for (k, (&got, &v)) in d.iter().zip(&s).enumerate() {
                    assert!(same(got, reference(v)), "{name}: entry {k}, s = {v:e}");
                }
            }
            // blocks whose chords are all short, with and without NaNs (no match)
            let mut d: Vec<f64> = s.iter().copied().filter(|&v| v < 0.9).collect();
            for k in (0..d.len() / 2).step_by(37) {
                d[k] = f64::NAN;
            }
            let want: Vec<f64> = d.iter().map(|&v| reference(v)).collect();
            run(&mut d);
            assert!(
                d.iter().zip(&want).all(|(&a, &b)| same(a, b)),
                "{name}: short"
            );
        };
        check("dispatched", &|d| metres_many(d));
        check("generic", &|d| metres_many_generic(d));
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2.
                check("avx2", &|d| unsafe { metres_many_avx2(d) });
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F.
                check("avx512", &|d| unsafe { metres_many_avx512(d) });
            }
        }
    }

    #[test]
    fn both_longitude_conventions_give_the_same_bits() {
        assert_eq!(unit(190.0, 12.5), unit(-170.0, 12.5));
        assert_eq!(unit(360.0, -3.0), unit(0.0, -3.0));
    }

    #[test]
    fn center_and_area_of_a_small_square_and_across_the_antimeridian() {
        // 1 degree square at the equator: area about (111.2 km)^2.
        let (xs, ys) = ([0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0]);
        let (lon, lat, area) =
            center_area([(&xs[..], &ys[..])].into_iter(), std::iter::empty()).unwrap();
        assert!(
            (lon - 0.5).abs() < 1e-12 && (lat - 0.5).abs() < 1e-4,
            "{lon} {lat}"
        );
        let side = EARTH_RADIUS * RAD;
        assert!((area / (side * side) - 1.0).abs() < 1e-3, "{area}");
        // The same square across the antimeridian: center at 180, same area.
        let xs2 = [179.5, -179.5, -179.5, 179.5];
        let (lon2, _, area2) =
            center_area([(&xs2[..], &ys[..])].into_iter(), std::iter::empty()).unwrap();
        assert!((lon2.abs() - 180.0).abs() < 1e-9, "{lon2}");
        assert!((area2 / area - 1.0).abs() < 1e-9);
        // Orientation does not matter.
        let (xr, yr) = ([0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0]);
        let (_, _, area3) =
            center_area([(&xr[..], &yr[..])].into_iter(), std::iter::empty()).unwrap();
        assert!((area3 - area).abs() <= 1e-9 * area);
        // Vertices around the whole equator: no center.
        let xe = [0.0, 90.0, 180.0, 270.0];
        let ye = [0.0; 4];
        assert!(center_area([(&xe[..], &ye[..])].into_iter(), std::iter::empty()).is_err());
    }

    #[test]
    fn the_walks_equal_brute_force_near_the_poles_and_the_antimeridian() {
        // Centers on a 5-degree grid (poles and the antimeridian included, many exact
        // ties of chord), the index's walks against the exact test of every center.
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for i in 0..72 {
            for j in 0..37 {
                xs.push(-180.0 + 5.0 * i as f64);
                ys.push(-90.0 + 5.0 * j as f64);
            }
        }
        let area = vec![1.0; xs.len()];
        let index = crate::SpatialIndex::from_centers(&xs, &ys, &area, |_| true)
            .with_metric(Metric::Sphere);
        let units = index.units();
        for &d in &[1e5, 1e6, 5e6, 3e7] {
            let w = ChordWithin::new(d);
            for &(px, py) in &[(179.0, 10.0), (-179.0, 80.0), (0.0, -88.0), (300.0, 45.0)] {
                let cap = SphereCap::new(&w, &index, px, py);
                let mut walk = Vec::new();
                index.for_each_by(&cap, px, py, |r, _, _| walk.push(r));
                walk.sort_unstable();
                let brute: Vec<u32> = (0..units.len() as u32)
                    .filter(|&r| w.test(cap.unit(), &units[r as usize]))
                    .collect();
                assert_eq!(walk, brute, "{d} ({px}, {py})");
                // the 7 nearest (farthest), ties to the lowest row
                for descending in [false, true] {
                    let mut near = Vec::new();
                    index.nearest_k_by(&cap, px, py, 7, descending, &mut near);
                    let mut want: Vec<(f64, u32)> =
                        brute.iter().map(|&r| (cap.key(r), r)).collect();
                    want.sort_by(|a, b| {
                        let o = if descending {
                            b.0.total_cmp(&a.0)
                        } else {
                            a.0.total_cmp(&b.0)
                        };
                        o.then(index.row_of(a.1).cmp(&index.row_of(b.1)))
                    });
                    want.truncate(7);
                    assert_eq!(near, want, "{d} ({px}, {py}) descending {descending}");
                }
            }
        }
    }
}
