//! Where a point lies relative to a polygon whose edges are great-circle arcs
//! (GeoParquet's `"edges": "spherical"`): inside, on the boundary, or outside, decided
//! exactly for the float64 unit vectors of the vertices and the point.
//!
//! # The rule (docs/SPEC.md, "Spherical edges")
//! Each part (a shell and its holes) must lie in an open hemisphere: with `c` the
//! normalised mean of its exterior ring's unit vectors ([`Frame`]), every vertex `v` of
//! every ring of the part has `c·v >= 1e-9` (else an `InvalidGeometryError` naming the
//! row). Seen from the sphere's center, that hemisphere maps one to one onto the plane
//! tangent at `c` (the gnomonic projection), great circles onto straight lines, and an
//! edge, the shorter arc between its vertices, onto the segment between their images.
//! The part is the planar part (crate::shape::locate's even-odd rule, boundary first)
//! of the images of its rings; a point outside the hemisphere is outside.
//!
//! # Exactness
//! The projection is never computed. For `a`, `b`, `p` in the hemisphere, the planar
//! orientation of their images has the sign of the determinant `det[a, b, p]`, which
//! `robust::orient3d` (Shewchuk's adaptive predicate, the origin as fourth point) signs
//! exactly for any float64 vectors. So the crossing test of the planar rule runs on
//! determinants: the ray leaves the point's image along the image of the great circle
//! through `p` and the coordinate axis `e` of `p`'s smallest component (never parallel
//! to `p`); a vertex is above that line iff `det[e, p, v] > 0`, a 2x2 determinant of
//! coordinates (`robust::orient2d`); a vertex on the line counts as below it, as a
//! vertex at the point's y does in the planar rule. Where an edge lies on the line, the
//! point is on it iff `det[q, a, p]` and `det[q, p, b]` do not have opposite signs, with
//! `q = e × p` (exact: its components are `p`'s, permuted and negated) off the line.
//! Whether `c·p` clears the hemisphere's bound is a float filter with a margin far above
//! its rounding: it only decides points that are outside by a wide margin.

use robust::{orient2d, orient3d, Coord, Coord3D};

use crate::error::{PolymatchError, Result};
use crate::shape::locate::Location;
use crate::shape::outlines::Outlines;

/// The smallest `c·v` a part's vertex may have (`c` its [`Frame`]'s center).
pub const HEMISPHERE_MARGIN: f64 = 1e-9;

/// A part's hemisphere: the normalised mean `c` of its exterior ring's unit vectors,
/// and the float64 `c·v` of the vertex of its rings farthest from `c`.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    center: [f64; 3],
    min_dot: f64,
}

#[inline(always)]
fn dot(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

impl Frame {
    /// The frame of a part whose exterior ring is `exterior` and whose rings (the
    /// exterior included) are `rings`, all unit vectors; `row` names it in errors.
    ///
    /// # Errors
    /// [`PolymatchError::InvalidGeometry`] if the part does not lie in an open
    /// hemisphere (see the module docs).
    pub fn new<'a>(
        exterior: &[[f64; 3]],
        rings: impl Iterator<Item = &'a [[f64; 3]]>,
        row: usize,
    ) -> Result<Self> {
        let mut sum = [0.0f64; 3];
        for v in exterior {
            for i in 0..3 {
                sum[i] += v[i];
            }
        }
        let norm = dot(&sum, &sum).sqrt();
        let center = sum.map(|s| s / norm);
        let min_dot =
            rings
                .flat_map(|r| r.iter())
                .map(|v| dot(&center, v))
                .fold(
                    f64::INFINITY,
                    |m, d| if d.is_nan() { f64::NAN } else { m.min(d) },
                );
        if !(norm > 0.0 && min_dot >= HEMISPHERE_MARGIN) {
            return Err(PolymatchError::invalid_geometry(
                row,
                "a part with spherical edges must lie in an open hemisphere (its vertices \
                 within 90 degrees of the mean of its exterior ring's): split it",
            ));
        }
        Ok(Self { center, min_dot })
    }

    /// False only if the unit vector `p` is outside every part this frame holds: its
    /// float `c·p` is below every vertex's by more than the rounding of both (1e-12;
    /// the part lies in the cap of its vertices, which is convex). True says `c·p > 0`,
    /// so the exact test applies.
    #[inline]
    pub fn may_hold(&self, p: &[f64; 3]) -> bool {
        dot(&self.center, p) >= self.min_dot - 1e-12
    }
}

#[inline(always)]
fn c3(v: &[f64; 3]) -> Coord3D<f64> {
    Coord3D {
        x: v[0],
        y: v[1],
        z: v[2],
    }
}

/// The exact sign of `det[a, b, c]` (as a float: negative, zero or positive).
#[inline(always)]
fn det3(a: &[f64; 3], b: &[f64; 3], c: &[f64; 3]) -> f64 {
    const O: Coord3D<f64> = Coord3D {
        x: 0.0,
        y: 0.0,
        z: 0.0,
    };
    orient3d(c3(a), c3(b), c3(c), O)
}

/// The exact sign of component `k` of `p × v`: `p[i] v[j] - p[j] v[i]`, `(k, i, j)` a
/// cyclic order.
#[inline(always)]
fn cross_k(p: &[f64; 3], v: &[f64; 3], k: usize) -> f64 {
    let (i, j) = ((k + 1) % 3, (k + 2) % 3);
    const O: Coord<f64> = Coord { x: 0.0, y: 0.0 };
    orient2d(Coord { x: p[i], y: p[j] }, Coord { x: v[i], y: v[j] }, O)
}

/// The crossings of the ray from a point (a unit vector) with great-circle edges, and
/// whether the point lies on one of them (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct ArcCrossings {
    p: [f64; 3],
    /// The axis of the ray's great circle.
    k: usize,
    /// `e_k × p`: off that great circle.
    q: [f64; 3],
    count: u32,
    on_edge: bool,
}

impl ArcCrossings {
    /// No edge counted yet, for the point `p`.
    #[inline]
    pub fn new(p: [f64; 3]) -> Self {
        let a = p.map(f64::abs);
        let k = if a[0] <= a[1] && a[0] <= a[2] {
            0
        } else if a[1] <= a[2] {
            1
        } else {
            2
        };
        let (i, j) = ((k + 1) % 3, (k + 2) % 3);
        // e_k × p: component i is -p[j], component j is p[i], component k is 0.
        let mut q = [0.0; 3];
        q[i] = -p[j];
        q[j] = p[i];
        Self {
            p,
            k,
            q,
            count: 0,
            on_edge: false,
        }
    }

    /// True once the point was found on an edge.
    #[inline]
    pub fn on_edge(&self) -> bool {
        self.on_edge
    }

    /// Which side of the ray's great circle `v` is on: `det[e_k, p, v]` signed exactly.
    #[inline(always)]
    fn side(&self, v: &[f64; 3]) -> f64 {
        cross_k(&self.p, v, self.k)
    }

    /// Whether `v` is the point (parallel to it: both lie in one hemisphere).
    #[inline]
    fn is_point(&self, v: &[f64; 3]) -> bool {
        (0..3).all(|k| cross_k(&self.p, v, k) == 0.0)
    }

    /// Count every edge of the ring of unit vectors `ring` (closing edge included).
    #[inline]
    pub fn ring(&mut self, ring: &[[f64; 3]]) {
        let Some(last) = ring.last() else {
            return;
        };
        let mut a = last;
        let mut sa = self.side(a);
        for b in ring {
            let sb = self.side(b);
            self.edge(a, sa, b, sb);
            if self.on_edge {
                return;
            }
            a = b;
            sa = sb;
        }
    }

    /// Count the edge from `a` to `b`, whose sides are `sa` and `sb`.
    #[inline(always)]
    fn edge(&mut self, a: &[f64; 3], sa: f64, b: &[f64; 3], sb: f64) {
        // Every vertex is the end of some edge: the point on a vertex is caught here.
        if sb == 0.0 && self.is_point(b) {
            self.on_edge = true;
            return;
        }
        if sa == 0.0 && sb == 0.0 {
            // On the ray's line: the point is on the edge iff it lies between the ends.
            let (s1, s2) = (det3(&self.q, a, &self.p), det3(&self.q, &self.p, b));
            if s1 * s2 >= 0.0 {
                self.on_edge = true;
            }
            return;
        }
        let (above_a, above_b) = (sa > 0.0, sb > 0.0);
        if above_a != above_b {
            let o = det3(a, b, &self.p);
            if o == 0.0 {
                self.on_edge = true;
                return;
            }
            // One half of the line, the same for every edge: the edge crosses it iff
            // the orientation's sign agrees with the direction it crosses the line in.
            if (o > 0.0) == above_b {
                self.count += 1;
            }
        }
    }

    /// The location the counted edges give (even-odd).
    #[inline]
    pub fn location(&self) -> Location {
        if self.on_edge {
            Location::Boundary
        } else if self.count % 2 == 1 {
            Location::Inside
        } else {
            Location::Outside
        }
    }
}

/// The unit vectors of a polygon set's vertices and the frames of its parts: what the
/// rules read to locate a point in a part with spherical edges.
#[derive(Debug, Clone, Copy)]
pub struct SphericalParts<'a> {
    /// The unit vectors, by vertex position of the polygon columns.
    pub units: &'a [[f64; 3]],
    /// The frames, by position in [`Outlines::parts`].
    pub frames: &'a [Frame],
}

impl SphericalParts<'_> {
    /// Where the unit vector `p` is relative to part `part` (exact; module docs).
    #[inline]
    pub fn locate(&self, outlines: &Outlines, part: usize, p: &[f64; 3]) -> Location {
        if !self.frames[part].may_hold(p) {
            return Location::Outside;
        }
        let mut c = ArcCrossings::new(*p);
        for (lo, hi) in outlines.ring_ranges(part) {
            c.ring(&self.units[lo..hi]);
            if c.on_edge() {
                return Location::Boundary;
            }
        }
        c.location()
    }
}

/// The frames of every part of `outlines` (by position), from the vertices' unit
/// vectors `units`.
///
/// # Errors
/// [`PolymatchError::InvalidGeometry`] naming the first row with a part that does not
/// lie in an open hemisphere.
pub fn frames(outlines: &Outlines, units: &[[f64; 3]]) -> Result<Vec<Frame>> {
    use rayon::prelude::*;
    (0..outlines.parts().len())
        .into_par_iter()
        .with_min_len(1024)
        .map(|j| {
            let mut rings = outlines.ring_ranges(j);
            let (lo, hi) = rings.next().unwrap_or((0, 0));
            Frame::new(
                &units[lo..hi],
                outlines.ring_ranges(j).map(|(lo, hi)| &units[lo..hi]),
                outlines.parts()[j].row as usize,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sphere::unit;

    fn locate(rings: &[&[(f64, f64)]], p: (f64, f64)) -> Location {
        let units: Vec<Vec<[f64; 3]>> = rings
            .iter()
            .map(|r| r.iter().map(|&(x, y)| unit(x, y)).collect())
            .collect();
        let frame = Frame::new(&units[0], units.iter().map(Vec::as_slice), 0).unwrap();
        let p = unit(p.0, p.1);
        if !frame.may_hold(&p) {
            return Location::Outside;
        }
        let mut c = ArcCrossings::new(p);
        for r in &units {
            c.ring(r);
        }
        c.location()
    }

    #[test]
    fn orient3d_signs_the_determinant() {
        let (x, y, z) = ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]);
        assert!(det3(&x, &y, &z) != 0.0);
        assert_eq!(det3(&x, &y, &z).signum(), -det3(&y, &x, &z).signum());
        assert_eq!(det3(&x, &y, &x), 0.0);
    }

    #[test]
    fn a_square_on_the_equator_and_its_boundary() {
        use Location::*;
        // Edges on the equator and on the meridians 0 and 10 are exact great circles.
        let sq: &[(f64, f64)] = &[(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)];
        let rev: Vec<_> = sq.iter().rev().copied().collect();
        for ring in [sq, &rev[..]] {
            for (p, want) in [
                ((5.0, 5.0), Inside),
                ((5.0, 0.0), Boundary),   // on the equator edge
                ((0.0, 5.0), Boundary),   // on the meridian 0
                ((0.0, 0.0), Boundary),   // a vertex
                ((10.0, 10.0), Boundary), // a vertex
                ((-1.0, 5.0), Outside),
                ((11.0, 0.0), Outside), // on the equator's line, beyond the edge
                ((5.0, -0.5), Outside),
                ((180.0, 0.0), Outside), // the other side of the planet
                ((185.0, -5.0), Outside),
            ] {
                assert_eq!(locate(&[ring], p), want, "{p:?}");
            }
        }
    }

    #[test]
    fn the_top_edge_bulges_poleward() {
        // The edge from (0, 60) to (20, 60) is a great-circle arc: at longitude 10 it
        // reaches latitude atan(tan 60 / cos 10) = 60.378...; straight in
        // longitude/latitude it would stay at 60.
        let sq: &[(f64, f64)] = &[(0.0, 50.0), (20.0, 50.0), (20.0, 60.0), (0.0, 60.0)];
        assert_eq!(locate(&[sq], (10.0, 60.37)), Location::Inside);
        assert_eq!(locate(&[sq], (10.0, 60.39)), Location::Outside);
        // and the bottom edge bulges poleward too, to 50.431...: below it is outside
        assert_eq!(locate(&[sq], (10.0, 50.4)), Location::Outside);
        assert_eq!(locate(&[sq], (10.0, 50.45)), Location::Inside);
    }

    #[test]
    fn across_the_antimeridian_and_around_a_pole() {
        use Location::*;
        let across: &[(f64, f64)] = &[(170.0, -5.0), (-170.0, -5.0), (-170.0, 5.0), (170.0, 5.0)];
        assert_eq!(locate(&[across], (180.0, 0.0)), Inside);
        assert_eq!(locate(&[across], (-179.0, 1.0)), Inside);
        assert_eq!(locate(&[across], (0.0, 0.0)), Outside);
        assert_eq!(locate(&[across], (165.0, 0.0)), Outside);
        // A cap around the north pole: four vertices at latitude 80.
        let cap: &[(f64, f64)] = &[(0.0, 80.0), (90.0, 80.0), (180.0, 80.0), (-90.0, 80.0)];
        assert_eq!(locate(&[cap], (0.0, 90.0)), Inside);
        // the arc from (0, 80) to (90, 80) passes longitude 45 at latitude 82.89...
        assert_eq!(locate(&[cap], (45.0, 83.0)), Inside);
        assert_eq!(locate(&[cap], (45.0, 82.8)), Outside);
        assert_eq!(locate(&[cap], (0.0, 80.5)), Inside);
        assert_eq!(locate(&[cap], (0.0, 80.0)), Boundary);
        assert_eq!(locate(&[cap], (0.0, 79.0)), Outside);
    }

    #[test]
    fn holes_and_points_on_them() {
        use Location::*;
        let shell: &[(f64, f64)] = &[(0.0, -10.0), (20.0, -10.0), (20.0, 10.0), (0.0, 10.0)];
        let hole: &[(f64, f64)] = &[(5.0, -5.0), (5.0, 5.0), (15.0, 5.0), (15.0, -5.0)];
        assert_eq!(locate(&[shell, hole], (10.0, 0.0)), Outside);
        assert_eq!(locate(&[shell, hole], (10.0, 7.0)), Inside);
        assert_eq!(locate(&[shell, hole], (2.0, 0.0)), Inside);
        assert_eq!(locate(&[shell, hole], (15.0, 5.0)), Boundary);
        assert_eq!(locate(&[shell, hole], (0.0, 0.0)), Boundary);
    }

    #[test]
    fn more_than_a_hemisphere_is_refused() {
        // A band from longitude 0 to 200: its ends are over 90 degrees from its mean.
        let band: Vec<[f64; 3]> = [(0.0, 0.0), (100.0, 0.0), (200.0, 0.0), (200.0, 1.0)]
            .iter()
            .chain(&[(100.0, 1.0), (0.0, 1.0)])
            .map(|&(x, y)| unit(x, y))
            .collect();
        // A ring around the equator: no mean direction at all.
        let around: Vec<[f64; 3]> = [0.0, 90.0, 180.0, 270.0]
            .iter()
            .map(|&x| unit(x, 0.0))
            .collect();
        for ring in [&band, &around] {
            let err = Frame::new(ring, std::iter::once(&ring[..]), 7).unwrap_err();
            assert!(err.to_string().contains("row 7"), "{err}");
            assert!(err.to_string().contains("hemisphere"), "{err}");
        }
    }
}
