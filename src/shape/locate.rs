//! Where a point lies relative to a polygon's rings: inside, on the boundary, or
//! outside, decided exactly for the float64 coordinates.
//!
//! # The rule (docs/SPEC.md, "Shape rules")
//! A part of a polygon (a shell and its holes) is the set of points that a ray from the
//! point towards +x crosses an odd number of times, counting the edges of all the
//! part's rings (the even-odd rule). For a valid polygon that is "inside the shell and
//! in none of its holes"; for an invalid one it is still one answer, the same on every
//! path: a self-intersecting ring alternates in and out, a hole outside its shell adds
//! an island, overlapping holes cancel. A point on an edge of any ring (a vertex
//! included) is on the part's boundary. A polygon is the union of its parts: it
//! *contains* a point that is inside (not on the boundary of) one of its parts, and
//! *covers* a point that one of its parts contains or has on its boundary.
//!
//! # Exactness
//! Each edge is classified as GEOS's `RayCrossingCounter` does, with one orientation
//! test per edge that straddles the point's y: `robust::orient2d` (Shewchuk's adaptive
//! predicate) gives the exact sign of the 2x2 determinant for any float64 input. The
//! other decisions are comparisons of input coordinates, exact too. Rings need not be
//! closed: the closing edge (last vertex to first) is always tested, and where the ring
//! repeats its first vertex that edge has length zero and changes nothing. Repeated and
//! collinear vertices are edges like any other.

use robust::{orient2d, Coord};

/// Edges per vector in [`Crossings::ring`]'s AVX2 copy.
#[cfg(target_arch = "x86_64")]
const LANES: usize = 4;

/// Where a point is relative to a part or a polygon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// Outside (or, for a part, inside none of its parts).
    Outside,
    /// On an edge of a ring.
    Boundary,
    /// In the interior.
    Inside,
}

impl Location {
    /// The even-odd rule's verdict: on the boundary if an edge touched the point, else
    /// inside iff the ray crossed an odd number of edges.
    #[inline]
    pub fn even_odd(on_edge: bool, crossings: u32) -> Self {
        if on_edge {
            Location::Boundary
        } else if crossings % 2 == 1 {
            Location::Inside
        } else {
            Location::Outside
        }
    }
}

/// The crossings of the ray from a point towards +x with edges, and whether the point
/// lies on one of them (then the count no longer matters).
#[derive(Debug, Clone, Copy)]
pub struct Crossings {
    px: f64,
    py: f64,
    count: u32,
    on_edge: bool,
}

impl Crossings {
    /// No edge counted yet.
    #[inline]
    pub fn new(px: f64, py: f64) -> Self {
        Self {
            px,
            py,
            count: 0,
            on_edge: false,
        }
    }

    /// True once the point was found on an edge.
    #[inline]
    pub fn on_edge(&self) -> bool {
        self.on_edge
    }

    /// Count the edge from `(x1, y1)` to `(x2, y2)`.
    ///
    /// An upward edge includes its start and excludes its end, a downward edge the
    /// reverse, so a ray through a vertex counts it once; horizontal edges are never
    /// crossed, only tested for the point.
    #[inline]
    pub fn edge(&mut self, x1: f64, y1: f64, x2: f64, y2: f64) {
        let (px, py) = (self.px, self.py);
        // Strictly left of the point: neither crossed by the ray nor touching the point.
        if x1 < px && x2 < px {
            return;
        }
        // Every vertex is the end of some edge: the point on a vertex is caught here.
        if px == x2 && py == y2 {
            self.on_edge = true;
            return;
        }
        if y1 == py && y2 == py {
            if (x1 <= px && px <= x2) || (x2 <= px && px <= x1) {
                self.on_edge = true;
            }
            return;
        }
        if (y1 > py && y2 <= py) || (y2 > py && y1 <= py) {
            let o = orient2d(
                Coord { x: x1, y: y1 },
                Coord { x: x2, y: y2 },
                Coord { x: px, y: py },
            );
            if o == 0.0 {
                self.on_edge = true;
                return;
            }
            // Upward: the point left of the edge (counter-clockwise) means the ray
            // crosses it; a downward edge is the same test reversed.
            if (o > 0.0) == (y2 > y1) {
                self.count += 1;
            }
        }
    }

    /// Count every edge of the ring of vertices `xs`, `ys` (closing edge included).
    ///
    /// Where the CPU has AVX2, four edges at a time ([`Crossings::ring_avx2`]: the same
    /// answer; the crossings and the boundary do not depend on the order of the edges).
    #[inline]
    pub fn ring(&mut self, xs: &[f64], ys: &[f64]) {
        let n = xs.len().min(ys.len());
        if n == 0 {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if n > LANES && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, the only feature the copy is compiled for.
            unsafe { self.ring_avx2(&xs[..n], &ys[..n]) };
            return;
        }
        self.ring_scalar(xs, ys);
    }

    /// [`Crossings::ring`] one edge at a time: the reference every vector copy must
    /// equal (public for the tests and benchmarks).
    pub fn ring_scalar(&mut self, xs: &[f64], ys: &[f64]) {
        let n = xs.len().min(ys.len());
        if n > 0 {
            self.edges(&xs[..n], &ys[..n], 0, n);
        }
    }

    /// Count the edges ending at vertices `from..to` of the ring `xs`, `ys` (`n` vertices,
    /// `from < to <= n`: edge `i` runs from vertex `i - 1`, the last for `i = 0`, to `i`),
    /// one at a time, stopping on the boundary.
    #[inline(always)]
    fn edges(&mut self, xs: &[f64], ys: &[f64], from: usize, to: usize) {
        let n = xs.len().min(ys.len());
        let prev = if from == 0 { n - 1 } else { from - 1 };
        let (mut x1, mut y1) = (xs[prev], ys[prev]);
        for (&x2, &y2) in xs[from..to].iter().zip(&ys[from..to]) {
            self.edge(x1, y1, x2, y2);
            if self.on_edge {
                return;
            }
            x1 = x2;
            y1 = y2;
        }
    }

    /// [`Crossings::ring`] four edges per 256-bit vector (`xs.len() == ys.len() > 4`).
    ///
    /// Each lane runs the first stage of `robust::orient2d` with its operations in the
    /// same order (no fused multiply-add), so the same float value: where that stage
    /// decides the sign, the sign is the predicate's, and the sign alone counts the
    /// crossing. A vector with a lane where [`Crossings::edge`] takes a special branch
    /// (an end at the point's y: the point on a vertex, a horizontal edge, a ray
    /// through a vertex) or where the sign is undecided or 0 (the point on or near the
    /// edge's line: the adaptive stage decides) is counted edge by edge by the scalar
    /// code. An edge left of the point is never crossed and never holds it, in every
    /// copy. The edges after the last full vector go in one more, with the closing edge,
    /// its unused lanes masked.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn ring_avx2(&mut self, xs: &[f64], ys: &[f64]) {
        use std::arch::x86_64::*;
        let n = xs.len().min(ys.len());
        let (px, py) = (_mm256_set1_pd(self.px), _mm256_set1_pd(self.py));
        // robust 1.2's orient2d: `det` decides when |det| >= THETA |detleft + detright|.
        let theta = _mm256_set1_pd(3.3306690621773722e-16);
        let sign = _mm256_set1_pd(-0.0);
        let zero = _mm256_setzero_pd();
        let all = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
        // The crossings of four edges, `None` if one needs the scalar code; lanes set in
        // `unused` count nothing.
        let lanes = |x1: __m256d, y1: __m256d, x2: __m256d, y2: __m256d, unused: __m256d| {
            let ignored = _mm256_or_pd(
                unused,
                _mm256_and_pd(
                    _mm256_cmp_pd::<_CMP_LT_OQ>(x1, px),
                    _mm256_cmp_pd::<_CMP_LT_OQ>(x2, px),
                ),
            );
            // orient2d(a = (x1, y1), b = (x2, y2), c = (px, py)), first stage.
            let detleft = _mm256_mul_pd(_mm256_sub_pd(x1, px), _mm256_sub_pd(y2, py));
            let detright = _mm256_mul_pd(_mm256_sub_pd(y1, py), _mm256_sub_pd(x2, px));
            let det = _mm256_sub_pd(detleft, detright);
            let bound = _mm256_mul_pd(
                theta,
                _mm256_andnot_pd(sign, _mm256_add_pd(detleft, detright)),
            );
            let decided = _mm256_or_pd(
                _mm256_cmp_pd::<_CMP_GE_OQ>(det, bound),
                _mm256_cmp_pd::<_CMP_GE_OQ>(_mm256_xor_pd(det, sign), bound),
            );
            let special = _mm256_andnot_pd(
                ignored,
                _mm256_or_pd(
                    _mm256_or_pd(
                        _mm256_cmp_pd::<_CMP_EQ_OQ>(y1, py),
                        _mm256_cmp_pd::<_CMP_EQ_OQ>(y2, py),
                    ),
                    _mm256_or_pd(
                        _mm256_cmp_pd::<_CMP_EQ_UQ>(det, zero),
                        _mm256_xor_pd(decided, all),
                    ),
                ),
            );
            if _mm256_movemask_pd(special) != 0 {
                return None;
            }
            // No end at the point's y: the edge straddles it iff exactly one end is
            // above; crossed iff (det > 0) == (y2 > y1).
            let straddles = _mm256_xor_pd(
                _mm256_cmp_pd::<_CMP_GT_OQ>(y1, py),
                _mm256_cmp_pd::<_CMP_GT_OQ>(y2, py),
            );
            let same = _mm256_xor_pd(
                _mm256_cmp_pd::<_CMP_GT_OQ>(det, zero),
                _mm256_cmp_pd::<_CMP_GT_OQ>(y2, y1),
            );
            let crossed = _mm256_andnot_pd(_mm256_or_pd(same, ignored), straddles);
            Some((_mm256_movemask_pd(crossed) as u32).count_ones())
        };
        // Edges 1.. (edge `i` from vertex `i - 1` to `i`) in full vectors.
        let mut i = 1;
        while i + LANES <= n {
            // SAFETY: `1 <= i` and `i + 4 <= n`: the loads of four f64 at `i - 1` and at
            // `i` are within `xs` and `ys`.
            let counted = unsafe {
                lanes(
                    _mm256_loadu_pd(xs.as_ptr().add(i - 1)),
                    _mm256_loadu_pd(ys.as_ptr().add(i - 1)),
                    _mm256_loadu_pd(xs.as_ptr().add(i)),
                    _mm256_loadu_pd(ys.as_ptr().add(i)),
                    zero,
                )
            };
            match counted {
                Some(k) => self.count += k,
                None => {
                    self.edges(xs, ys, i, i + LANES);
                    if self.on_edge {
                        return;
                    }
                }
            }
            i += LANES;
        }
        // The edges left (0 to 3) and the closing edge (edge 0), in one vector: lane `k`
        // holds edge `i + k` up to `n - 1`, then edge 0 (again, masked, in the lanes
        // after it).
        let tail = n - i;
        let end = |k: usize| if i + k < n { i + k } else { 0 };
        let start = |k: usize| if i + k < n { i + k - 1 } else { n - 1 };
        let unused = _mm256_castsi256_pd(_mm256_cmpgt_epi64(
            _mm256_setr_epi64x(0, 1, 2, 3),
            _mm256_set1_epi64x(tail as i64),
        ));
        let counted = lanes(
            _mm256_setr_pd(xs[start(0)], xs[start(1)], xs[start(2)], xs[start(3)]),
            _mm256_setr_pd(ys[start(0)], ys[start(1)], ys[start(2)], ys[start(3)]),
            _mm256_setr_pd(xs[end(0)], xs[end(1)], xs[end(2)], xs[end(3)]),
            _mm256_setr_pd(ys[end(0)], ys[end(1)], ys[end(2)], ys[end(3)]),
            unused,
        );
        match counted {
            Some(k) => self.count += k,
            None => {
                self.edges(xs, ys, i, n);
                if !self.on_edge {
                    self.edges(xs, ys, 0, 1);
                }
            }
        }
    }

    /// The location the counted edges give (even-odd).
    #[inline]
    pub fn location(&self) -> Location {
        Location::even_odd(self.on_edge, self.count)
    }
}

/// Where `(px, py)` is relative to the part made of `rings` (each a vertex range of
/// `x`/`y`): the even-odd rule over all of them, boundary first.
pub fn locate_part(
    x: &[f64],
    y: &[f64],
    rings: impl Iterator<Item = (usize, usize)>,
    px: f64,
    py: f64,
) -> Location {
    let mut c = Crossings::new(px, py);
    for (lo, hi) in rings {
        c.ring(&x[lo..hi], &y[lo..hi]);
        if c.on_edge() {
            return Location::Boundary;
        }
    }
    c.location()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locate(ring: &[(f64, f64)], holes: &[&[(f64, f64)]], p: (f64, f64)) -> Location {
        let mut x = Vec::new();
        let mut y = Vec::new();
        let mut ranges = Vec::new();
        for r in std::iter::once(ring).chain(holes.iter().copied()) {
            let lo = x.len();
            x.extend(r.iter().map(|v| v.0));
            y.extend(r.iter().map(|v| v.1));
            ranges.push((lo, x.len()));
        }
        locate_part(&x, &y, ranges.into_iter(), p.0, p.1)
    }

    const SQUARE: [(f64, f64); 4] = [(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0)];
    const HOLE: [(f64, f64); 4] = [(1.0, 1.0), (1.0, 3.0), (3.0, 3.0), (3.0, 1.0)];

    #[test]
    fn inside_boundary_outside() {
        use Location::*;
        for (p, want) in [
            ((2.0, 0.5), Inside),
            ((0.0, 0.0), Boundary),
            ((4.0, 2.0), Boundary),
            ((2.0, 4.0), Boundary),
            ((5.0, 2.0), Outside),
            ((-1.0, 0.0), Outside), // on the line of the bottom edge, left of it
            ((5.0, 0.0), Outside),  // and right of it
            ((2.0, 2.0), Outside),  // in the hole
            ((1.0, 2.0), Boundary), // on the hole's edge
            ((3.0, 3.0), Boundary), // on the hole's vertex
            ((0.5, 1.0), Inside),   // at the y of the hole's bottom edge
            ((3.5, 3.0), Inside),   // at the y of the hole's top vertex
        ] {
            assert_eq!(locate(&SQUARE, &[&HOLE], p), want, "{p:?}");
        }
    }

    #[test]
    fn orientation_closed_rings_repeats_and_collinear_vertices() {
        let cw: Vec<_> = SQUARE.iter().rev().copied().collect();
        let mut closed = SQUARE.to_vec();
        closed.push(SQUARE[0]);
        let messy = [
            (0.0, 0.0),
            (2.0, 0.0), // collinear
            (2.0, 0.0), // repeated
            (4.0, 0.0),
            (4.0, 4.0),
            (0.0, 4.0),
            (0.0, 4.0),
            (0.0, 0.0),
        ];
        for ring in [&SQUARE[..], &cw[..], &closed[..], &messy[..]] {
            assert_eq!(locate(ring, &[], (1.0, 1.0)), Location::Inside);
            assert_eq!(locate(ring, &[], (2.0, 0.0)), Location::Boundary);
            assert_eq!(locate(ring, &[], (0.0, 2.0)), Location::Boundary);
            assert_eq!(locate(ring, &[], (4.5, 4.0)), Location::Outside);
            assert_eq!(locate(ring, &[], (-0.5, 4.0)), Location::Outside);
        }
    }

    #[test]
    fn the_ray_through_vertices_counts_once() {
        // A diamond: the ray from the center passes through the right vertex.
        let diamond = [(0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0)];
        assert_eq!(locate(&diamond, &[], (0.0, 0.0)), Location::Inside);
        assert_eq!(locate(&diamond, &[], (-2.0, 0.0)), Location::Outside);
        // An arrowhead with a notch: the ray from inside passes through the notch's
        // vertex, where both edges lie on one side of the ray.
        let arrow = [(0.0, 0.0), (3.0, 1.0), (2.0, 0.0), (3.0, -1.0)];
        assert_eq!(locate(&arrow, &[], (1.0, 0.0)), Location::Inside);
        assert_eq!(locate(&arrow, &[], (2.0, 0.0)), Location::Boundary);
        assert_eq!(locate(&arrow, &[], (2.5, 0.0)), Location::Outside);
        assert_eq!(locate(&arrow, &[], (-1.0, 0.0)), Location::Outside);
    }

    #[test]
    fn exact_near_an_edge() {
        // One ulp off the edge from (0, 0) to (1, 1), either side.
        let x = f64::from_bits(0x3fe0_0000_0000_0001); // 0.5 + 1 ulp
        let tri = [(0.0, 0.0), (1.0, 1.0), (0.0, 1.0)];
        assert_eq!(locate(&tri, &[], (0.5, 0.5)), Location::Boundary);
        assert_eq!(locate(&tri, &[], (x, 0.5)), Location::Outside);
        assert_eq!(locate(&tri, &[], (0.5, x)), Location::Inside);
    }

    /// The edges one at a time: what [`Crossings::ring`] must agree with.
    fn scalar(xs: &[f64], ys: &[f64], px: f64, py: f64) -> (bool, u32) {
        let mut c = Crossings::new(px, py);
        c.ring_scalar(xs, ys);
        (c.on_edge, c.count)
    }

    #[test]
    fn every_copy_of_the_ring_test_gives_the_scalar_answer() {
        // Rings of 0-20 vertices on a coarse grid (points on vertices and edges,
        // horizontal edges at the point's y, repeated and collinear vertices), the same
        // with random floats, with points one ulp off edges (the adaptive predicate's
        // cases), and with odd values.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let odd = [f64::NAN, f64::INFINITY, -f64::INFINITY, -0.0, 5e-324, 1e300];
        let mut checked = 0usize;
        for case in 0..60_000 {
            let n = (next() % 21) as usize;
            let kind = case % 4;
            let value = |r: u64| -> f64 {
                match kind {
                    0 | 3 => (r % 9) as f64 * 0.5,
                    1 => (r >> 11) as f64 / (1u64 << 53) as f64 * 4.0,
                    _ => ((r % 7) as f64 - 3.0) * 1e-3,
                }
            };
            let mut xs: Vec<f64> = (0..n).map(|_| value(next())).collect();
            let mut ys: Vec<f64> = (0..n).map(|_| value(next())).collect();
            if kind == 3 && n > 0 && next() % 3 == 0 {
                let k = (next() % n as u64) as usize;
                let v = odd[(next() % odd.len() as u64) as usize];
                if next() % 2 == 0 {
                    xs[k] = v;
                } else {
                    ys[k] = v;
                }
            }
            for t in 0..12 {
                let (mut px, mut py) = (value(next()), value(next()));
                if n > 1 && t >= 6 {
                    // On an edge (its midpoint, exact on this grid), or one ulp beside it.
                    let k = (next() % n as u64) as usize;
                    let j = (k + 1) % n;
                    px = 0.5 * (xs[k] + xs[j]);
                    py = 0.5 * (ys[k] + ys[j]);
                    match t % 3 {
                        0 => {}
                        1 => px = px.next_up(),
                        _ => py = py.next_down(),
                    }
                }
                if n > 0 && t == 5 {
                    let k = (next() % n as u64) as usize;
                    (px, py) = (xs[k], ys[k]);
                }
                let (want_edge, want) = scalar(&xs, &ys, px, py);
                let mut c = Crossings::new(px, py);
                c.ring(&xs, &ys);
                assert_eq!(c.on_edge, want_edge, "{xs:?} {ys:?} ({px}, {py})");
                if !want_edge {
                    assert_eq!(c.count, want, "{xs:?} {ys:?} ({px}, {py})");
                }
                checked += 1;
            }
        }
        assert!(checked > 500_000);
    }
}
