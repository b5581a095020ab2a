//! Distances from a point to a polygon's edges: the float64 value the `distance` column
//! reports, and the exact decision "closer than `max_dist`" the `dwithin` rule takes.
//!
//! # The value (docs/SPEC.md, "Near the outline")
//! [`segment_squared`] is the squared distance from the point to a segment computed in
//! float64 by one fixed formula (the projection's sign decides between the two ends and
//! the perpendicular), so it is the same bits on every machine. A polygon's distance is
//! the square root of the smallest of these over its edges, or 0 where it covers the
//! point.
//!
//! # The decision
//! "The true distance from the point to the segment is `< d`" is decided exactly for
//! the float64 inputs. A filter compares the float value with `d^2` and answers when
//! the gap exceeds the value's error bound ([`EdgeWithin::test`] derives it); the rare
//! points within the bound of the threshold are decided in exact integer arithmetic
//! ([`exact_within`]: every float64 is an integer times a power of two, so after
//! scaling all seven inputs by the smallest power, the distances are integer
//! polynomials). The same inputs give the same answer on every machine and path.

use num_bigint::BigInt;

/// The unit roundoff of float64, `2^-53`.
const U: f64 = f64::EPSILON * 0.5;

/// Below this, squared magnitudes may have lost bits to underflow: decided exactly.
const TINY: f64 = 1e-250;

/// The squared distance from `(px, py)` to the segment from `(ax, ay)` to `(bx, by)`, in
/// float64 (SPEC.md's formula): the squared distance to `a` if the projection of the
/// point falls before `a`, to `b` if it falls after `b`, else the squared perpendicular
/// distance `cross^2 / len^2`.
#[inline(always)]
pub fn segment_squared(px: f64, py: f64, ax: f64, ay: f64, bx: f64, by: f64) -> f64 {
    let (ex, ey) = (bx - ax, by - ay);
    let (wx, wy) = (px - ax, py - ay);
    let dot = ex * wx + ey * wy;
    if dot <= 0.0 {
        return wx * wx + wy * wy;
    }
    let len2 = ex * ex + ey * ey;
    if dot >= len2 {
        let (vx, vy) = (px - bx, py - by);
        return vx * vx + vy * vy;
    }
    let cross = ex * wy - ey * wx;
    cross * cross / len2
}

/// The smallest [`segment_squared`] from `(px, py)` to the edges of the ring `xs`, `ys`
/// (closing edge from the last vertex to the first included; `inf` for no vertex),
/// edge by edge in one fixed order: the reference [`ring_squared`] must equal.
#[inline(always)]
pub fn ring_squared_scalar(xs: &[f64], ys: &[f64], px: f64, py: f64) -> f64 {
    let n = xs.len().min(ys.len());
    if n == 0 {
        return f64::INFINITY;
    }
    let (mut ax, mut ay) = (xs[n - 1], ys[n - 1]);
    let mut best = f64::INFINITY;
    for (&bx, &by) in xs[..n].iter().zip(&ys[..n]) {
        best = best.min(segment_squared(px, py, ax, ay, bx, by));
        (ax, ay) = (bx, by);
    }
    best
}

/// [`ring_squared_scalar`]'s value, bit for bit, two edges at a time.
///
/// Each lane computes the three cases of [`segment_squared`] with the same operations in
/// the same order (IEEE sums, products and quotients are correctly rounded, in a vector
/// lane as in a scalar register) and selects the one the projection picks; no branch
/// depends on the data. The minimum ignores a NaN value as `f64::min` does, and no value
/// is `-0` (sums of squares and squares over a positive length), so the order in which
/// the edges are combined does not change the result.
///
/// Where the CPU has AVX2, four edges at a time ([`ring_squared_avx2`]): a 10-gon took
/// 14.5 ns instead of 21.9, a 40-gon 36 instead of 69 (one core, 10,000 rings,
/// docs/benchmarks.md). Neither copy uses a fused multiply-add, so both give the scalar
/// bits (tested).
#[inline]
pub fn ring_squared(xs: &[f64], ys: &[f64], px: f64, py: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, the only feature the copy is compiled for.
            return unsafe { ring_squared_avx2(xs, ys, px, py) };
        }
        ring_squared_sse2(xs, ys, px, py)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        ring_squared_scalar(xs, ys, px, py)
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn ring_squared_sse2(xs: &[f64], ys: &[f64], px: f64, py: f64) -> f64 {
    use std::arch::x86_64::*;
    let n = xs.len().min(ys.len());
    if n == 0 {
        return f64::INFINITY;
    }
    let (xs, ys) = (&xs[..n], &ys[..n]);
    // SAFETY: SSE2 is part of the x86_64 baseline. Every load reads two f64 at `i - 1`
    // or `i`, with `i + 1 < n`: within `xs` and `ys`.
    unsafe {
        let (pxv, pyv) = (_mm_set1_pd(px), _mm_set1_pd(py));
        let zero = _mm_setzero_pd();
        // The squared distances from the point to two edges, `a` to `b` in each lane.
        let lanes = |ax: __m128d, ay: __m128d, bx: __m128d, by: __m128d| {
            let (ex, ey) = (_mm_sub_pd(bx, ax), _mm_sub_pd(by, ay));
            let (wx, wy) = (_mm_sub_pd(pxv, ax), _mm_sub_pd(pyv, ay));
            let (vx, vy) = (_mm_sub_pd(pxv, bx), _mm_sub_pd(pyv, by));
            let dot = _mm_add_pd(_mm_mul_pd(ex, wx), _mm_mul_pd(ey, wy));
            let len2 = _mm_add_pd(_mm_mul_pd(ex, ex), _mm_mul_pd(ey, ey));
            let to_a = _mm_add_pd(_mm_mul_pd(wx, wx), _mm_mul_pd(wy, wy));
            let to_b = _mm_add_pd(_mm_mul_pd(vx, vx), _mm_mul_pd(vy, vy));
            let cross = _mm_sub_pd(_mm_mul_pd(ex, wy), _mm_mul_pd(ey, wx));
            let perp = _mm_div_pd(_mm_mul_pd(cross, cross), len2);
            // dot <= 0: the end a; else dot >= len2: the end b; else the perpendicular
            // (ordered comparisons: a NaN projection takes the perpendicular, as the
            // scalar branches do).
            let at_a = _mm_cmple_pd(dot, zero);
            let at_b = _mm_cmpge_pd(dot, len2);
            let not_a = _mm_or_pd(_mm_and_pd(at_b, to_b), _mm_andnot_pd(at_b, perp));
            _mm_or_pd(_mm_and_pd(at_a, to_a), _mm_andnot_pd(at_a, not_a))
        };
        // Edge i runs from vertex i - 1 to i, two at a time from edge 1; then the closing
        // edge (vertex n - 1 to 0) beside the one left over, or beside itself.
        let mut acc = _mm_set1_pd(f64::INFINITY);
        let mut i = 1;
        while i + 1 < n {
            let ax = _mm_loadu_pd(xs.as_ptr().add(i - 1));
            let ay = _mm_loadu_pd(ys.as_ptr().add(i - 1));
            let bx = _mm_loadu_pd(xs.as_ptr().add(i));
            let by = _mm_loadu_pd(ys.as_ptr().add(i));
            // min(s, acc) is acc where s is NaN, as `f64::min` ignores it.
            acc = _mm_min_pd(lanes(ax, ay, bx, by), acc);
            i += 2;
        }
        let k = if i < n { i } else { 0 }; // the edge beside the closing one
        let last = if k == 0 { n - 1 } else { k - 1 };
        let s = lanes(
            _mm_set_pd(xs[last], xs[n - 1]),
            _mm_set_pd(ys[last], ys[n - 1]),
            _mm_set_pd(xs[k], xs[0]),
            _mm_set_pd(ys[k], ys[0]),
        );
        acc = _mm_min_pd(s, acc);
        let mut out = [0.0f64; 2];
        _mm_storeu_pd(out.as_mut_ptr(), acc);
        out[0].min(out[1])
    }
}

/// [`ring_squared_sse2`] four edges at a time: the same lanes in 256-bit registers, and
/// the edges left over beside the closing edge in one last vector, padded with copies of
/// the closing edge.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn ring_squared_avx2(xs: &[f64], ys: &[f64], px: f64, py: f64) -> f64 {
    use std::arch::x86_64::*;
    let n = xs.len().min(ys.len());
    if n == 0 {
        return f64::INFINITY;
    }
    let (xs, ys) = (&xs[..n], &ys[..n]);
    let (pxv, pyv) = (_mm256_set1_pd(px), _mm256_set1_pd(py));
    let zero = _mm256_setzero_pd();
    // The squared distances from the point to four edges, `a` to `b` in each lane, as
    // in `ring_squared_sse2`.
    let lanes = |ax: __m256d, ay: __m256d, bx: __m256d, by: __m256d| {
        let (ex, ey) = (_mm256_sub_pd(bx, ax), _mm256_sub_pd(by, ay));
        let (wx, wy) = (_mm256_sub_pd(pxv, ax), _mm256_sub_pd(pyv, ay));
        let (vx, vy) = (_mm256_sub_pd(pxv, bx), _mm256_sub_pd(pyv, by));
        let dot = _mm256_add_pd(_mm256_mul_pd(ex, wx), _mm256_mul_pd(ey, wy));
        let len2 = _mm256_add_pd(_mm256_mul_pd(ex, ex), _mm256_mul_pd(ey, ey));
        let to_a = _mm256_add_pd(_mm256_mul_pd(wx, wx), _mm256_mul_pd(wy, wy));
        let to_b = _mm256_add_pd(_mm256_mul_pd(vx, vx), _mm256_mul_pd(vy, vy));
        let cross = _mm256_sub_pd(_mm256_mul_pd(ex, wy), _mm256_mul_pd(ey, wx));
        let perp = _mm256_div_pd(_mm256_mul_pd(cross, cross), len2);
        // ordered comparisons: false for a NaN projection, as in the scalar branches
        let at_a = _mm256_cmp_pd::<_CMP_LE_OQ>(dot, zero);
        let at_b = _mm256_cmp_pd::<_CMP_GE_OQ>(dot, len2);
        _mm256_blendv_pd(_mm256_blendv_pd(perp, to_b, at_b), to_a, at_a)
    };
    let mut acc = _mm256_set1_pd(f64::INFINITY);
    let mut i = 1;
    while i + 3 < n {
        // SAFETY: the loads read four f64 at `i - 1` and at `i`, with `i + 3 < n`.
        let (ax, ay, bx, by) = unsafe {
            (
                _mm256_loadu_pd(xs.as_ptr().add(i - 1)),
                _mm256_loadu_pd(ys.as_ptr().add(i - 1)),
                _mm256_loadu_pd(xs.as_ptr().add(i)),
                _mm256_loadu_pd(ys.as_ptr().add(i)),
            )
        };
        // min(s, acc) is acc where s is NaN, as `f64::min` ignores it.
        acc = _mm256_min_pd(lanes(ax, ay, bx, by), acc);
        i += 4;
    }
    // The edges left (`i..n`, at most three) and the closing edge (vertex n - 1 to 0).
    let mut a = [(xs[n - 1], ys[n - 1]); 4];
    let mut b = [(xs[0], ys[0]); 4];
    for (l, e) in (i..n).enumerate() {
        a[l + 1] = (xs[e - 1], ys[e - 1]);
        b[l + 1] = (xs[e], ys[e]);
    }
    let s = lanes(
        _mm256_set_pd(a[3].0, a[2].0, a[1].0, a[0].0),
        _mm256_set_pd(a[3].1, a[2].1, a[1].1, a[0].1),
        _mm256_set_pd(b[3].0, b[2].0, b[1].0, b[0].0),
        _mm256_set_pd(b[3].1, b[2].1, b[1].1, b[0].1),
    );
    acc = _mm256_min_pd(s, acc);
    let mut out = [0.0f64; 4];
    // SAFETY: `out` holds four f64.
    unsafe { _mm256_storeu_pd(out.as_mut_ptr(), acc) };
    out[0].min(out[1]).min(out[2].min(out[3]))
}

/// Whether the closed box `b` (`[xmin, ymin, xmax, ymax]`) holds `(px, py)`: a point
/// outside a part's vertex box is outside the part.
#[inline(always)]
pub fn box_holds(b: &[f64; 4], px: f64, py: f64) -> bool {
    px >= b[0] && px <= b[2] && py >= b[1] && py <= b[3]
}

/// The squared distance from `(px, py)` to the box `b` (0 inside it), rounded down
/// enough to be a lower bound of every float value [`segment_squared`] gives for a
/// segment in the box, and of the true squared distance.
#[inline(always)]
pub fn box_squared(b: &[f64; 4], px: f64, py: f64) -> f64 {
    let dx = (b[0] - px).max(px - b[2]).max(0.0);
    let dy = (b[1] - py).max(py - b[3]).max(0.0);
    // Each difference is within a relative `u` of the true one, the sum of squares
    // within `3u`; a segment's float value is at most `32u` below its true one
    // ([`EdgeWithin::test`]): `1 - 64u` covers both.
    (dx * dx + dy * dy) * (1.0 - 64.0 * U)
}

/// The exact test "the distance from a point to a segment is `< d`" for one `d`.
#[derive(Debug, Clone, Copy)]
pub struct EdgeWithin {
    d: f64,
    /// `d * d` in float64 (within a relative `u` of the true square), and the
    /// thresholds below and above which the float value decides.
    d2: f64,
    lo: f64,
    hi: f64,
}

impl EdgeWithin {
    /// The test for the radius `d` (`> 0`; `inf` accepts every segment).
    pub fn new(d: f64) -> Self {
        let d2 = d * d;
        Self {
            d,
            d2,
            lo: d2 * (1.0 - 2.0 * U),
            hi: d2 * (1.0 + 2.0 * U),
        }
    }

    /// The radius.
    pub fn radius(&self) -> f64 {
        self.d
    }

    /// `d * d` in float64.
    pub fn squared(&self) -> f64 {
        self.d2
    }

    /// Decide "the true squared distance from a point to a set of edges is `< d^2`" from
    /// `s`, the smallest [`segment_squared`] over them, where every vertex is within
    /// `sqrt(far2)` of the point: each edge's value is within `32u (|w|^2 + |v|^2) <=
    /// 64u far2` of its true one ([`EdgeWithin::test`]), so `s` is within that of the
    /// true smallest. `None`: too close to call, or magnitudes where the bound may not
    /// hold (decide edge by edge then).
    #[inline(always)]
    pub fn decide(&self, s: f64, far2: f64) -> Option<bool> {
        if self.d == f64::INFINITY {
            return Some(true);
        }
        let e = 64.0 * U * (1.0 + 4.0 * U) * far2;
        if !(e.is_finite() && far2 > TINY && self.d2 > TINY && self.d2.is_finite()) {
            return None;
        }
        if s + e < self.lo {
            Some(true)
        } else if s - e > self.hi {
            Some(false)
        } else {
            None
        }
    }

    /// Whether the true distance from `(px, py)` to the segment `a`-`b` is `< d`.
    ///
    /// # Why the filter is exact
    /// With `e = b - a`, `w = p - a`, `v = p - b`, each float difference is within a
    /// relative `u` (unit roundoff) of the true one. The perpendicular case computes
    /// `cross = ex*wy - ey*wx` within `4.1u * (|ex wy| + |ey wx|) <= 4.1u |e||w|` (the
    /// sum bounded by Cauchy-Schwarz); its square within `9.3u |e|^2 |w|^2`; `len^2`
    /// within `3u`; the quotient then within `15u |w|^2`. The end cases are within `3u`
    /// of `|w|^2` or `|v|^2`. Where the float projection picks another case than the
    /// true one, the projection is within its error (`4.1u |e||w|`) of an end, and the
    /// two cases' values differ by at most its square over `len^2`: `17u^2 |w|^2`. So
    /// the float value is within `E = 32u (|w|^2 + |v|^2)` of the true squared
    /// distance; `d2` is within `u` of `d^2`. The filter answers only when the value is
    /// more than `E` plus that margin from `d2`; the bound assumes no underflow or
    /// overflow, so tiny or non-finite magnitudes go to [`exact_within`].
    #[inline(always)]
    pub fn test(&self, px: f64, py: f64, ax: f64, ay: f64, bx: f64, by: f64) -> bool {
        if self.d == f64::INFINITY {
            return true;
        }
        let s = segment_squared(px, py, ax, ay, bx, by);
        let (wx, wy, vx, vy) = (px - ax, py - ay, px - bx, py - by);
        let (ex, ey) = (bx - ax, by - ay);
        let mag = wx * wx + wy * wy + vx * vx + vy * vy;
        let len2 = ex * ex + ey * ey;
        let e = 32.0 * U * mag;
        if mag.is_finite()
            && mag > TINY
            && (len2 > TINY || len2 == 0.0)
            && self.d2 > TINY
            && self.d2.is_finite()
        {
            if s + e < self.lo {
                return true;
            }
            if s - e > self.hi {
                return false;
            }
        }
        exact_within(px, py, ax, ay, bx, by, self.d)
    }
}

/// A float64 as `m * 2^e` with an integer `m`.
pub(crate) fn split(v: f64) -> (i64, i32) {
    if v == 0.0 {
        return (0, 0);
    }
    let bits = v.to_bits();
    let sign = if bits >> 63 == 1 { -1 } else { 1 };
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = (bits & ((1u64 << 52) - 1)) as i64;
    if exp == 0 {
        (sign * frac, -1074) // subnormal
    } else {
        (sign * (frac | (1i64 << 52)), exp - 1075)
    }
}

/// The exact decision of [`EdgeWithin::test`], in integer arithmetic: the point is
/// closer than `d` to an end, or its projection falls strictly inside the segment and
/// `cross^2 < d^2 len^2`. Finite inputs (a non-finite one answers false, except
/// `d = inf`, which answers true).
pub fn exact_within(px: f64, py: f64, ax: f64, ay: f64, bx: f64, by: f64, d: f64) -> bool {
    if d == f64::INFINITY {
        return true;
    }
    let values = [px, py, ax, ay, bx, by, d];
    if values.iter().any(|v| !v.is_finite()) {
        return false;
    }
    let parts = values.map(split);
    let e0 = parts
        .iter()
        .filter(|p| p.0 != 0)
        .map(|p| p.1)
        .min()
        .unwrap_or(0);
    let [px, py, ax, ay, bx, by, d] = parts.map(|(m, e)| BigInt::from(m) << (e - e0) as usize);
    let (ex, ey) = (&bx - &ax, &by - &ay);
    let (wx, wy) = (&px - &ax, &py - &ay);
    let (vx, vy) = (&px - &bx, &py - &by);
    let d2 = &d * &d;
    if &wx * &wx + &wy * &wy < d2 || &vx * &vx + &vy * &vy < d2 {
        return true;
    }
    let dot = &ex * &wx + &ey * &wy;
    let len2 = &ex * &ex + &ey * &ey;
    let zero = BigInt::from(0);
    if dot <= zero || dot >= len2 {
        return false;
    }
    let cross = &ex * &wy - &ey * &wx;
    &cross * &cross < d2 * len2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_cases() {
        assert_eq!(segment_squared(-1.0, 1.0, 0.0, 0.0, 2.0, 0.0), 2.0);
        assert_eq!(segment_squared(3.0, 1.0, 0.0, 0.0, 2.0, 0.0), 2.0);
        assert_eq!(segment_squared(1.0, 3.0, 0.0, 0.0, 2.0, 0.0), 9.0);
        assert_eq!(segment_squared(1.0, 3.0, 1.0, 1.0, 1.0, 1.0), 4.0);
    }

    #[test]
    fn exactly_at_the_radius_is_not_within() {
        let t = EdgeWithin::new(0.1);
        // The perpendicular foot at (0.5, 0): the distance is exactly the float 0.1.
        assert!(!t.test(0.5, 0.1, 0.0, 0.0, 1.0, 0.0));
        assert!(EdgeWithin::new(0.1f64.next_up()).test(0.5, 0.1, 0.0, 0.0, 1.0, 0.0));
        assert!(t.test(0.5, 0.1f64.next_down(), 0.0, 0.0, 1.0, 0.0));
        // At an end.
        assert!(!t.test(1.1, 0.0, 0.0, 0.0, 1.0, 0.0));
        assert!(t.test(1.1f64.next_down(), 0.0, 0.0, 0.0, 1.0, 0.0));
    }

    #[test]
    fn the_filter_agrees_with_the_exact_test() {
        // A small deterministic generator; points near the threshold on purpose.
        let mut rng = crate::synth::Rng::new(0x9e37_79b9_7f4a_7c15);
        let mut next = || rng.uniform();
        for _ in 0..20_000 {
            let (ax, ay, bx, by) = (next() * 10.0, next() * 10.0, next() * 10.0, next() * 10.0);
            let (px, py) = (next() * 10.0, next() * 10.0);
            let s = segment_squared(px, py, ax, ay, bx, by);
            for d in [
                s.sqrt(),
                s.sqrt().next_up(),
                s.sqrt().next_down(),
                next() * 5.0,
            ] {
                if d > 0.0 {
                    assert_eq!(
                        EdgeWithin::new(d).test(px, py, ax, ay, bx, by),
                        exact_within(px, py, ax, ay, bx, by, d),
                        "{px} {py} {ax} {ay} {bx} {by} {d}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_ring_in_lanes_is_the_ring_edge_by_edge() {
        let mut rng = crate::synth::Rng::new(0x2545_f491_4f6c_dd1d);
        let mut next = || rng.uniform();
        let odd = [
            0.0,
            -0.0,
            1e-300,
            5e-324,
            1e300,
            -1e300,
            f64::INFINITY,
            f64::NAN,
        ];
        for case in 0..40_000 {
            let n = case % 19;
            let mut xs: Vec<f64> = (0..n).map(|_| next() * 4.0 - 2.0).collect();
            let mut ys: Vec<f64> = (0..n).map(|_| next() * 4.0 - 2.0).collect();
            let (mut px, mut py) = (next() * 6.0 - 3.0, next() * 6.0 - 3.0);
            if n > 1 && case % 5 == 0 {
                // repeated vertices (zero-length edges), collinear runs
                xs[1] = xs[0];
                ys[1] = ys[0];
            }
            if n > 2 && case % 7 == 0 {
                let j = (next() * n as f64) as usize % n;
                xs[j] = odd[case % odd.len()];
            }
            if case % 11 == 0 {
                px = odd[(case / 11) % odd.len()];
            }
            if case % 13 == 1 && n > 0 {
                py = ys[0]; // on a vertex's y
                px = xs[0];
            }
            let want = ring_squared_scalar(&xs, &ys, px, py);
            let got = ring_squared(&xs, &ys, px, py);
            assert!(
                want.to_bits() == got.to_bits(),
                "{xs:?} {ys:?} {px} {py}: {want} != {got}"
            );
            #[cfg(target_arch = "x86_64")]
            {
                let got = ring_squared_sse2(&xs, &ys, px, py);
                assert_eq!(
                    want.to_bits(),
                    got.to_bits(),
                    "sse2: {xs:?} {ys:?} {px} {py}"
                );
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2.
                    let got = unsafe { ring_squared_avx2(&xs, &ys, px, py) };
                    assert_eq!(
                        want.to_bits(),
                        got.to_bits(),
                        "avx2: {xs:?} {ys:?} {px} {py}"
                    );
                }
            }
        }
    }

    #[test]
    fn tiny_huge_and_subnormal_inputs() {
        let t = EdgeWithin::new(5e-324);
        assert!(!t.test(0.0, 5e-324, 0.0, 0.0, 1.0, 0.0));
        assert!(t.test(0.0, 0.0, 0.0, 0.0, 1.0, 0.0));
        let big = EdgeWithin::new(1e300);
        assert!(big.test(1e300, 0.0, 1e-300, 0.0, 1e-300, 0.0));
        assert!(!big.test(1e300, 0.0, 0.0, 0.0, 0.0, 0.0));
        assert!(EdgeWithin::new(f64::INFINITY).test(1e308, 1e308, 0.0, 0.0, 0.0, 0.0));
    }
}
