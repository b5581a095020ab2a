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
//!
//! # Edge index
//! A part with more than [`STRIPE_MIN_EDGES`] edges whose vertices lie within 60 degrees
//! of `c` gets stripes ([`ArcStripes`], tg's idea as the planar y-stripes): with `e1`,
//! `e2` float vectors completing `c` to a frame, its edges by the range of their
//! vertices' gnomonic `y = (v·e2) / (v·c)` (float, widened by `1e-9`: projected
//! coordinates are below 2 here, so their rounding is below `1e-15`). The ray then runs
//! along the great circle through `p` and `e1`, horizontal in that plane up to the
//! rounding of the frame: every edge that can straddle or touch it is in the stripe of
//! `p`'s own `y`, and the others lie strictly on one side. Sides are `det[e1, p, v]`
//! (`orient3d`), the edge-on-the-line test uses `q = e2` (`det[e1, p, e2]` is about
//! `-c·p`, far from 0), and the rest is the test above, exact. Before the stripes, a
//! raster over the float gnomonic `(x, y)` answers the points whose cell no edge's
//! widened box touches ([`ArcStripes::raster`]: interior cells, as planar parts have).

use robust::{orient2d, orient3d, Coord, Coord3D};

use crate::error::{PolymatchError, Result};
use crate::shape::locate::Location;
use crate::shape::outlines::{Outlines, Raster};

/// The smallest `c·v` a part's vertex may have (`c` its [`Frame`]'s center).
pub const HEMISPHERE_MARGIN: f64 = 1e-9;

/// Parts with more edges than this get an edge index (as planar parts do).
pub const STRIPE_MIN_EDGES: usize = crate::shape::outlines::STRIPE_MIN_EDGES;

/// Edges per stripe the index aims at.
const EDGES_PER_STRIPE: usize = 2;

/// The smallest `c·v` of a part with an edge index (within 60 degrees of `c`).
const STRIPED_MIN_DOT: f64 = 0.5;

/// How far beyond its vertices' float gnomonic `y` an edge is listed.
const STRIPE_MARGIN: f64 = 1e-9;

/// A part's hemisphere: the normalised mean `c` of its exterior ring's unit vectors,
/// and the float64 `c·v` of the vertex of its rings farthest from `c`.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    center: [f64; 3],
    min_dot: f64,
    /// Its edge index in the list [`frames`] returns, if it has one.
    stripes: Option<u32>,
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
        Ok(Self {
            center,
            min_dot,
            stripes: None,
        })
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
    /// The ray's great circle runs through `p` and `e`: a coordinate axis (`axis`), or a
    /// part's frame vector `e1`.
    e: [f64; 3],
    axis: Option<usize>,
    /// A vector off that great circle.
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
        let mut e = [0.0; 3];
        e[k] = 1.0;
        Self {
            p,
            e,
            axis: Some(k),
            q,
            count: 0,
            on_edge: false,
        }
    }

    /// No edge counted yet, for the point `p`, the ray along the great circle through
    /// `p` and `e`, and `q` off it (`det[e, p, q] != 0`).
    #[inline]
    fn along(p: [f64; 3], e: [f64; 3], q: [f64; 3]) -> Self {
        Self {
            p,
            e,
            axis: None,
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

    /// Which side of the ray's great circle `v` is on: `det[e, p, v]` signed exactly
    /// (for a coordinate axis `e_k`: component `k` of `p × v`).
    #[inline(always)]
    fn side(&self, v: &[f64; 3]) -> f64 {
        match self.axis {
            Some(k) => cross_k(&self.p, v, k),
            None => det3(&self.e, &self.p, v),
        }
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
        Location::even_odd(self.on_edge, self.count)
    }
}

/// The edges of a large part by stripe of their gnomonic `y` in the part's frame (see
/// the module docs).
#[derive(Debug, Clone)]
pub struct ArcStripes {
    c: [f64; 3],
    e1: [f64; 3],
    e2: [f64; 3],
    y0: f64,
    scale: f64,
    /// Stripe `s` holds `edges[offsets[s]..offsets[s + 1]]`.
    offsets: Vec<u32>,
    /// `(from, to)` vertex positions.
    edges: Vec<[u32; 2]>,
    /// Cells of the gnomonic plane known inside or outside, checked before the stripes.
    raster: Option<Raster>,
}

impl ArcStripes {
    /// Bytes it takes.
    pub fn bytes(&self) -> usize {
        self.offsets.len() * 4
            + self.edges.len() * 8
            + self.raster.as_ref().map_or(0, Raster::bytes)
            + std::mem::size_of::<Self>()
    }

    #[inline]
    fn x(&self, v: &[f64; 3]) -> f64 {
        dot(v, &self.e1) / dot(v, &self.c)
    }

    #[inline]
    fn y(&self, v: &[f64; 3]) -> f64 {
        dot(v, &self.e2) / dot(v, &self.c)
    }

    /// [`ArcStripes::x`] and [`ArcStripes::y`] (the same values), `v·c` computed once.
    #[inline]
    fn xy(&self, v: &[f64; 3]) -> (f64, f64) {
        let vc = dot(v, &self.c);
        (dot(v, &self.e1) / vc, dot(v, &self.e2) / vc)
    }

    #[inline]
    fn stripe(&self, y: f64) -> usize {
        let last = self.offsets.len() - 2;
        let s = (y - self.y0) * self.scale;
        if s > 0.0 {
            (s as usize).min(last)
        } else {
            0
        }
    }

    /// The stripes of the part with frame center `c` and rings `rings` (vertex ranges of
    /// `units`), or `None` if it is too large for them or too far from `c`.
    fn build(c: [f64; 3], units: &[[f64; 3]], rings: &[(usize, usize)]) -> Option<Self> {
        if units.len() > u32::MAX as usize {
            return None;
        }
        // e1: c crossed with the axis of c's smallest component, normalised; e2 = c × e1.
        let a = c.map(f64::abs);
        let k = if a[0] <= a[1] && a[0] <= a[2] {
            0
        } else if a[1] <= a[2] {
            1
        } else {
            2
        };
        let mut axis = [0.0; 3];
        axis[k] = 1.0;
        let cross = |u: &[f64; 3], v: &[f64; 3]| {
            [
                u[1] * v[2] - u[2] * v[1],
                u[2] * v[0] - u[0] * v[2],
                u[0] * v[1] - u[1] * v[0],
            ]
        };
        let e1 = cross(&c, &axis);
        let n = dot(&e1, &e1).sqrt();
        let e1 = e1.map(|x| x / n);
        let e2 = cross(&c, &e1);
        let mut s = Self {
            c,
            e1,
            e2,
            y0: 0.0,
            scale: 0.0,
            offsets: Vec::new(),
            edges: Vec::new(),
            raster: None,
        };
        let ys: Vec<(usize, f64)> = rings
            .iter()
            .flat_map(|&(lo, hi)| lo..hi)
            .map(|i| (i, s.y(&units[i])))
            .collect();
        let (lo_y, hi_y) = ys
            .iter()
            .fold((f64::INFINITY, -f64::INFINITY), |(l, h), &(_, y)| {
                (l.min(y), h.max(y))
            });
        let edges = ys.len();
        let height = hi_y - lo_y + 2.0 * STRIPE_MARGIN;
        // About EDGES_PER_STRIPE edges per stripe; fewer where edges are tall (a jagged
        // ring: an edge is listed in every stripe it spans), as the planar stripes do.
        let mut spans = 0.0;
        for &(lo, hi) in rings {
            let mut prev = hi - 1;
            for i in lo..hi {
                spans += (s.y(&units[i]) - s.y(&units[prev])).abs() + 2.0 * STRIPE_MARGIN;
                prev = i;
            }
        }
        let mut stripes = (edges / EDGES_PER_STRIPE).max(1);
        if spans > 0.0 && height.is_finite() {
            let cap = 3.0 * edges as f64 * height / spans;
            stripes = stripes.min(cap.max(1.0) as usize);
        }
        s.y0 = lo_y - STRIPE_MARGIN;
        s.scale = stripes as f64 / height;
        s.offsets = vec![0; stripes + 1];
        let y_of = |i: usize| s.y(&units[i]);
        // (stripe, edge) pairs: each edge in every stripe its widened y range meets
        let mut listed: Vec<(u32, [u32; 2])> = Vec::with_capacity(edges * 2);
        for &(lo, hi) in rings {
            let mut prev = hi - 1;
            for i in lo..hi {
                let (ya, yb) = (y_of(prev), y_of(i));
                let (a, b) = (
                    s.stripe(ya.min(yb) - STRIPE_MARGIN),
                    s.stripe(ya.max(yb) + STRIPE_MARGIN),
                );
                if listed.len() + (b - a) > 4 * edges + stripes {
                    // tall edges (a jagged ring): the lists would be long, and the scan
                    // of every edge is as good
                    return None;
                }
                for stripe in a..=b {
                    listed.push((stripe as u32, [prev as u32, i as u32]));
                }
                prev = i;
            }
        }
        listed.sort_unstable_by_key(|&(stripe, _)| stripe);
        for &(stripe, _) in &listed {
            s.offsets[stripe as usize + 1] += 1;
        }
        for i in 1..=stripes {
            s.offsets[i] += s.offsets[i - 1];
        }
        s.edges = listed.into_iter().map(|(_, e)| e).collect();
        s.raster = s.raster(units, rings);
        Some(s)
    }

    /// Interior cells (as planar parts have them, [`Raster`]) over the float gnomonic
    /// coordinates of the part's vertices, about one cell per edge.
    ///
    /// Why it is exact: a point's float coordinates are within `1e-15` of its true
    /// image, and so are the ends of an edge's image, a segment. Each edge marks the
    /// cells of its float box widened by [`STRIPE_MARGIN`] (`1e-9`), so an unmarked cell,
    /// widened by half that, holds no true image of a boundary point; the true images of
    /// the points that fall in it form a connected set with no boundary in it, and all
    /// have one location. That location is tested exactly at a unit vector whose float
    /// coordinates are within `1e-12` of the cell's center (else the cell stays mixed).
    fn raster(&self, units: &[[f64; 3]], rings: &[(usize, usize)]) -> Option<Raster> {
        let (mut xs, mut ys, mut local) = (Vec::new(), Vec::new(), Vec::new());
        for &(lo, hi) in rings {
            let start = xs.len();
            for v in &units[lo..hi] {
                xs.push(self.x(v));
                ys.push(self.y(v));
            }
            local.push((start, xs.len()));
        }
        let fold = |v: &[f64]| {
            v.iter()
                .fold((f64::INFINITY, -f64::INFINITY), |(l, h), &a| {
                    (l.min(a), h.max(a))
                })
        };
        let ((x0, x1), (y0, y1)) = (fold(&xs), fold(&ys));
        let b = [x0, y0, x1, y1];
        Raster::build(&xs, &ys, &local, b, xs.len(), STRIPE_MARGIN, |gx, gy| {
            let v = [0, 1, 2].map(|k| self.c[k] + gx * self.e1[k] + gy * self.e2[k]);
            let n = dot(&v, &v).sqrt();
            let v = v.map(|a| a / n);
            if (self.x(&v) - gx).abs() > 1e-12 || (self.y(&v) - gy).abs() > 1e-12 {
                return Location::Boundary; // stays mixed
            }
            self.locate_edges(units, &v)
        })
    }

    /// Where the unit vector `p` (with `c·p > 0`) is relative to the part: its raster
    /// cell if that is known, else the edges of the stripe of its `y`, exactly.
    #[inline]
    fn locate(&self, units: &[[f64; 3]], p: &[f64; 3]) -> Location {
        let (x, y) = self.xy(p);
        if let Some(known) = self.raster.as_ref().and_then(|r| r.known(x, y)) {
            return known;
        }
        self.locate_in_stripe(units, p, y)
    }

    /// [`ArcStripes::locate`] without the raster.
    #[inline]
    fn locate_edges(&self, units: &[[f64; 3]], p: &[f64; 3]) -> Location {
        self.locate_in_stripe(units, p, self.y(p))
    }

    /// The edges of the stripe of `y` (`p`'s float gnomonic y) against `p`, exactly.
    #[inline]
    fn locate_in_stripe(&self, units: &[[f64; 3]], p: &[f64; 3], y: f64) -> Location {
        let s = self.stripe(y);
        let mut c = ArcCrossings::along(*p, self.e1, self.e2);
        for &[a, b] in &self.edges[self.offsets[s] as usize..self.offsets[s + 1] as usize] {
            let (a, b) = (&units[a as usize], &units[b as usize]);
            let (sa, sb) = (c.side(a), c.side(b));
            c.edge(a, sa, b, sb);
            if c.on_edge {
                return Location::Boundary;
            }
        }
        c.location()
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
    /// The edge indexes the frames point to.
    pub stripes: &'a [ArcStripes],
}

impl SphericalParts<'_> {
    /// Where the unit vector `p` is relative to part `part` (exact; module docs).
    #[inline]
    pub fn locate(&self, outlines: &Outlines, part: usize, p: &[f64; 3]) -> Location {
        let frame = &self.frames[part];
        if !frame.may_hold(p) {
            return Location::Outside;
        }
        if let Some(s) = frame.stripes {
            return self.stripes[s as usize].locate(self.units, p);
        }
        self.scan(outlines, part, p)
    }

    /// [`SphericalParts::locate`] by every edge of the part (no edge index).
    #[inline]
    pub fn scan(&self, outlines: &Outlines, part: usize, p: &[f64; 3]) -> Location {
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
/// vectors `units`, and the edge indexes of the large ones.
///
/// # Errors
/// [`PolymatchError::InvalidGeometry`] naming the first row with a part that does not
/// lie in an open hemisphere.
pub fn frames(outlines: &Outlines, units: &[[f64; 3]]) -> Result<(Vec<Frame>, Vec<ArcStripes>)> {
    use rayon::prelude::*;
    let built: Vec<(Frame, Option<ArcStripes>)> = (0..outlines.parts().len())
        .into_par_iter()
        .with_min_len(64)
        .map(|j| {
            let rings: Vec<(usize, usize)> = outlines.ring_ranges(j).collect();
            let (lo, hi) = rings.first().copied().unwrap_or((0, 0));
            let frame = Frame::new(
                &units[lo..hi],
                rings.iter().map(|&(lo, hi)| &units[lo..hi]),
                outlines.parts()[j].row as usize,
            )?;
            let edges: usize = rings.iter().map(|(lo, hi)| hi - lo).sum();
            let stripes = (edges > STRIPE_MIN_EDGES && frame.min_dot >= STRIPED_MIN_DOT)
                .then(|| ArcStripes::build(frame.center, units, &rings))
                .flatten();
            Ok((frame, stripes))
        })
        .collect::<Result<_>>()?;
    let mut frames = Vec::with_capacity(built.len());
    let mut stripes = Vec::new();
    for (mut frame, s) in built {
        if let Some(s) = s {
            frame.stripes = Some(stripes.len() as u32);
            stripes.push(s);
        }
        frames.push(frame);
    }
    Ok((frames, stripes))
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

    /// Star-shaped rings of `n` vertices around `(lon, lat)` of radius up to `r`
    /// degrees, and a hole, as unit vectors with their ranges.
    fn star(
        lon: f64,
        lat: f64,
        r: f64,
        n: usize,
        seed: u64,
    ) -> (Vec<[f64; 3]>, Vec<(usize, usize)>) {
        let mut rng = crate::synth::Rng::new(seed);
        let mut units = Vec::new();
        let mut rings = Vec::new();
        for (scale, count) in [(1.0, n), (0.2, n / 4)] {
            let lo = units.len();
            for k in 0..count {
                let a = k as f64 * std::f64::consts::TAU / count as f64;
                let rr = r * scale * (0.6 + 0.4 * rng.uniform());
                let y = (lat + rr * a.sin()).clamp(-90.0, 90.0);
                let x = lon + rr * a.cos() / lat.to_radians().cos().max(0.05);
                units.push(unit(x, y));
            }
            rings.push((lo, units.len()));
        }
        (units, rings)
    }

    #[test]
    fn the_edge_index_equals_the_scan_of_every_edge() {
        let mut rng = crate::synth::Rng::new(7);
        let mut striped = 0;
        let mut known = 0;
        for (i, &(lon, lat, r, n)) in [
            (10.0, 50.0, 5.0, 2000),
            (179.5, -16.0, 3.0, 600),
            (0.0, 88.0, 1.5, 800),
            (-60.0, -30.0, 30.0, 5000),
            (100.0, 0.0, 0.01, 200),
        ]
        .iter()
        .enumerate()
        {
            let (units, rings) = star(lon, lat, r, n, i as u64 + 1);
            let (lo, hi) = rings[0];
            let frame =
                Frame::new(&units[lo..hi], rings.iter().map(|&(a, b)| &units[a..b]), 0).unwrap();
            let Some(stripes) = ArcStripes::build(frame.center, &units, &rings) else {
                continue;
            };
            striped += 1;
            let scan = |p: &[f64; 3]| {
                if !frame.may_hold(p) {
                    return Location::Outside;
                }
                let mut c = ArcCrossings::new(*p);
                for &(a, b) in &rings {
                    c.ring(&units[a..b]);
                }
                c.location()
            };
            let mut seen = [0usize; 3];
            for k in 0..20_000 {
                // near a vertex, on one (every 10th), or anywhere in the part's box
                let v = units[k * 7919 % units.len()];
                let p = if k % 10 == 0 {
                    v
                } else if k % 2 == 0 {
                    let d = r * 0.02;
                    let (x, y) = (
                        libm::atan2(v[1], v[0]).to_degrees() + d * (rng.uniform() - 0.5),
                        libm::asin(v[2]).to_degrees() + d * (rng.uniform() - 0.5),
                    );
                    unit(x, y.clamp(-90.0, 90.0))
                } else {
                    let (x, y) = (
                        lon + 2.5 * r * (rng.uniform() - 0.5),
                        lat + 2.5 * r * (rng.uniform() - 0.5),
                    );
                    unit(x, y.clamp(-90.0, 90.0))
                };
                let want = scan(&p);
                let got = if frame.may_hold(&p) {
                    stripes.locate(&units, &p)
                } else {
                    Location::Outside
                };
                assert_eq!(got, want, "part {i}, point {k}");
                seen[want as usize] += 1;
                let cell = stripes
                    .raster
                    .as_ref()
                    .and_then(|r| r.known(stripes.x(&p), stripes.y(&p)));
                known += usize::from(frame.may_hold(&p) && cell.is_some());
            }
            assert!(seen.iter().all(|&s| s > 100), "part {i}: {seen:?}");
        }
        // The interior cells answered a good share of the points (the rest: near edges).
        assert!(known > 5_000, "{known} points answered by the raster");
        assert!(striped >= 4, "{striped} parts got stripes");
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
