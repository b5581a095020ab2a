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
    #[inline]
    pub fn ring(&mut self, xs: &[f64], ys: &[f64]) {
        let n = xs.len().min(ys.len());
        if n == 0 {
            return;
        }
        let (mut x1, mut y1) = (xs[n - 1], ys[n - 1]);
        for (&x2, &y2) in xs[..n].iter().zip(&ys[..n]) {
            self.edge(x1, y1, x2, y2);
            if self.on_edge {
                return;
            }
            x1 = x2;
            y1 = y2;
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
}
