//! The candidate rules of the shape index: what makes a polygon a point's candidate,
//! as types the index's walks are generic over (monomorphised: one walker, no copy of
//! it per rule; docs/STYLE.md 11).
//!
//! A rule answers the questions a walk asks: how far from the point a candidate can
//! be ([`Rule::reach`], which cells to read), whether anything in a box can be a
//! candidate ([`Rule::may_hold`], the box filter), and whether a part accepts the point
//! ([`Rule::accepts`], exact). The rank rule (area, a column, distance, `k`) is the
//! other axis, chosen by the walk.

use crate::shape::arcs::{arc_squared, ArcWithin};
use crate::shape::distance::{box_holds, box_squared, EdgeWithin};
use crate::shape::locate::Location;
use crate::shape::outlines::{farthest_squared, Outlines};
use crate::shape::spherical::SphericalParts;
use crate::sphere::{metres, unit};

/// A part a rule is asked about.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Its position in [`Outlines::parts`].
    pub part: usize,
    /// For a part of one ring without an edge index: its vertex range, read straight
    /// from the coordinate buffers.
    pub ring: Option<(usize, usize)>,
    /// Its box.
    pub bounds: &'a [f64; 4],
}

/// A candidate rule of the shape index (see the module docs).
pub trait Rule: Copy + Send + Sync {
    /// True if every candidate holds the point (in or on it): its distance is 0.
    const IN_SHAPE: bool;

    /// A candidate is at distance `< reach` from the point (`0`: its box holds the point;
    /// `inf`: anywhere).
    fn reach(&self) -> f64;

    /// False only if no part whose box is `b` can accept `(px, py)`.
    fn may_hold(&self, b: &[f64; 4], px: f64, py: f64) -> bool;

    /// Whether `part` accepts `(px, py)`, exactly; `location` locates the point in it
    /// (the caller knows the fastest way).
    fn accepts(
        &self,
        outlines: &Outlines,
        part: &Candidate<'_>,
        px: f64,
        py: f64,
        location: impl FnOnce() -> Location,
    ) -> bool;

    /// [`Rule::accepts`], and the part's squared distance (SPEC.md's float value, 0 in
    /// or on it) where the test computed it on the way, else NaN.
    #[inline(always)]
    fn accepts_measured(
        &self,
        outlines: &Outlines,
        part: &Candidate<'_>,
        px: f64,
        py: f64,
        location: impl FnOnce() -> Location,
    ) -> (bool, f64) {
        (self.accepts(outlines, part, px, py, location), f64::NAN)
    }

    /// True if the walks may bound distances by the planar box distance (the nearest-
    /// first search); false for the sphere, whose nearest are sorted from the
    /// candidates within the radius.
    const PLANAR: bool = true;

    /// SPEC.md's distance from `(px, py)` to part `part` as a key that orders as the
    /// distance does (0 in or on it): the planar squared distance.
    #[inline(always)]
    fn part_key(&self, outlines: &Outlines, part: usize, px: f64, py: f64) -> f64 {
        outlines.part_squared(part, px, py)
    }

    /// The `distance` column's value of a key of [`Rule::part_key`].
    #[inline(always)]
    fn reported(&self, key: f64) -> f64 {
        key.sqrt()
    }

    /// A key that every polygon this rule does not accept exceeds ([`Rule::part_key`]'s
    /// float value): `k` accepted polygons with keys below it are the `k` nearest of
    /// all. (`0`: no such guarantee.)
    #[inline(always)]
    fn keys_beyond(&self) -> f64 {
        0.0
    }
}

/// The point is in the polygon's interior (GEOS `contains`).
#[derive(Debug, Clone, Copy)]
pub struct Contains;

/// The point is in the interior or on the boundary (GEOS `covers`).
#[derive(Debug, Clone, Copy)]
pub struct Covers;

/// The distance from the point to the polygon (0 where it covers the point) is
/// `< max_dist`, exactly (docs/SPEC.md, "Near the outline").
#[derive(Debug, Clone, Copy)]
pub struct DWithin {
    test: EdgeWithin,
    /// Boxes whose float squared distance is at least this are beyond the radius.
    beyond: f64,
}

impl DWithin {
    /// The rule for `max_dist` (`> 0`; `inf`: every polygon).
    pub fn new(max_dist: f64) -> Self {
        let test = EdgeWithin::new(max_dist);
        // A box's float squared distance is within 3u of its true one, d2 within u of
        // d^2: a float value at least d2 (1 + 8u) is a true one at least d^2.
        // Below 1e-250 the square may have lost bits to underflow: a larger threshold
        // only skips fewer boxes.
        let beyond = (test.squared() * (1.0 + 8.0 * f64::EPSILON)).max(1e-250);
        Self { test, beyond }
    }
}

impl Rule for Contains {
    const IN_SHAPE: bool = true;
    #[inline(always)]
    fn reach(&self) -> f64 {
        0.0
    }
    #[inline(always)]
    fn may_hold(&self, b: &[f64; 4], px: f64, py: f64) -> bool {
        box_holds(b, px, py)
    }
    #[inline(always)]
    fn accepts(
        &self,
        _: &Outlines,
        _: &Candidate<'_>,
        _: f64,
        _: f64,
        location: impl FnOnce() -> Location,
    ) -> bool {
        location() == Location::Inside
    }
}

impl Rule for Covers {
    const IN_SHAPE: bool = true;
    #[inline(always)]
    fn reach(&self) -> f64 {
        0.0
    }
    #[inline(always)]
    fn may_hold(&self, b: &[f64; 4], px: f64, py: f64) -> bool {
        box_holds(b, px, py)
    }
    #[inline(always)]
    fn accepts(
        &self,
        _: &Outlines,
        _: &Candidate<'_>,
        _: f64,
        _: f64,
        location: impl FnOnce() -> Location,
    ) -> bool {
        location() != Location::Outside
    }
}

impl Rule for DWithin {
    const IN_SHAPE: bool = false;
    #[inline(always)]
    fn reach(&self) -> f64 {
        self.test.radius()
    }
    #[inline(always)]
    fn may_hold(&self, b: &[f64; 4], px: f64, py: f64) -> bool {
        // box_squared is rounded down: below the true squared distance (an overflowing
        // threshold keeps every box).
        self.beyond == f64::INFINITY || box_squared(b, px, py) < self.beyond
    }
    #[inline(always)]
    fn accepts(
        &self,
        outlines: &Outlines,
        part: &Candidate<'_>,
        px: f64,
        py: f64,
        location: impl FnOnce() -> Location,
    ) -> bool {
        self.accepts_measured(outlines, part, px, py, location).0
    }

    #[inline(always)]
    fn accepts_measured(
        &self,
        outlines: &Outlines,
        part: &Candidate<'_>,
        px: f64,
        py: f64,
        location: impl FnOnce() -> Location,
    ) -> (bool, f64) {
        if let Some((lo, hi)) = part.ring {
            // A point in or on the part is at distance 0 < max_dist (a point outside
            // the part's box is outside the part). Else the smallest float distance
            // decides unless it is within its error bound of max_dist: every edge's
            // value is within 32u (|w|^2 + |v|^2) <= 64u F^2 of its true one (F: the
            // farthest corner of the part's box; distance.rs), so the smallest value is
            // within that of the true distance to the part. It is the value
            // `Outlines::part_squared` gives: the part's distance.
            if box_holds(part.bounds, px, py) && location() != Location::Outside {
                return (true, 0.0);
            }
            let s = outlines.ring_squared(lo, hi, px, py);
            if self.test.radius() == f64::INFINITY {
                return (true, s);
            }
            let far2 = farthest_squared(part.bounds, px, py);
            let answer = match self.test.decide(s, far2) {
                Some(answer) => answer,
                None => outlines.ring_within(lo, hi, px, py, &self.test),
            };
            return (answer, s);
        }
        if self.test.radius() == f64::INFINITY {
            return (true, f64::NAN);
        }
        // An edge within the radius first (one early exit serves the points near the
        // outline, in or out); then, for a point in the box, whether the part covers it
        // (max_dist > 0: a point in or on the part is at distance 0 < max_dist).
        let near = outlines.edge_within(part.part, px, py, &self.test)
            || (box_holds(part.bounds, px, py) && location() != Location::Outside);
        (near, f64::NAN)
    }
}

/// `contains` or `covers` (`R`: [`Contains`] or [`Covers`]) of polygons whose edges are
/// great-circle arcs (GeoParquet's `"edges": "spherical"`): the point's location is
/// decided on the unit vectors ([`crate::shape::spherical`]), exactly.
///
/// It runs on a shape index whose boxes hold each part's arcs (their cap's box:
/// [`crate::shape::ShapeIndex::new`]), so the box filter is "the box holds the point".
#[derive(Debug, Clone, Copy)]
pub struct GreatCircles<'a, R> {
    /// The rule on the location.
    pub shape: R,
    /// The vertices' unit vectors and the parts' hemispheres.
    pub edges: SphericalParts<'a>,
}

impl<R: Rule> Rule for GreatCircles<'_, R> {
    const IN_SHAPE: bool = R::IN_SHAPE;
    const PLANAR: bool = false;
    #[inline(always)]
    fn reach(&self) -> f64 {
        self.shape.reach()
    }
    #[inline(always)]
    fn may_hold(&self, b: &[f64; 4], px: f64, py: f64) -> bool {
        box_holds(b, px, py)
    }
    #[inline(always)]
    fn accepts(
        &self,
        outlines: &Outlines,
        part: &Candidate<'_>,
        px: f64,
        py: f64,
        _: impl FnOnce() -> Location,
    ) -> bool {
        self.shape.accepts(outlines, part, px, py, || {
            self.edges.locate(outlines, part.part, &unit(px, py))
        })
    }
}

/// `dwithin` on the sphere: the great-circle distance in metres from the point to the
/// polygon (0 where it covers the point; else the distance to the nearest edge, each
/// edge the great-circle arc between its vertices) is `< max_dist`, exactly
/// (docs/SPEC.md, "On the sphere"; [`crate::shape::arcs`]). Whether the polygon covers
/// the point follows its edges: straight in longitude/latitude as `covers` reads them
/// by default, great-circle arcs for spherical edges (then the two readings agree).
///
/// It runs on a view of the shape index widened by `max_dist` on the sphere
/// ([`crate::shape::ShapeIndex::for_radius`]), whose slots' boxes hold every point that
/// can accept: the box filter is then "the box holds the point".
#[derive(Debug, Clone, Copy)]
pub struct SphereDWithin<'a> {
    test: ArcWithin,
    max_dist: f64,
    /// The unit vectors of the polygon columns' vertices (by vertex position).
    units: &'a [[f64; 3]],
    /// With spherical edges: where "covers" is decided.
    edges: Option<SphericalParts<'a>>,
    /// A float squared chord above this is beyond the radius for every edge (its error
    /// is below an angle of 1e-14 radians; arcs.rs's tests check the margin).
    skip_above: f64,
}

impl<'a> SphereDWithin<'a> {
    /// The rule for `max_dist` metres (`> 0`; `inf`: every polygon), with the vertices'
    /// unit vectors, and for polygons with spherical edges their parts' hemispheres.
    pub fn new(max_dist: f64, units: &'a [[f64; 3]], edges: Option<SphericalParts<'a>>) -> Self {
        let test = ArcWithin::new(max_dist);
        let r = test.threshold().sqrt() + 1e-13;
        Self {
            test,
            max_dist,
            units,
            edges,
            skip_above: r * r * (1.0 + 8.0 * f64::EPSILON),
        }
    }

    /// Whether `part` accepts the point, and (with `measure`; else where the scan
    /// stopped) the smallest squared chord to its arcs, 0 where it covers the point.
    #[inline(always)]
    fn decide(
        &self,
        outlines: &Outlines,
        part: &Candidate<'_>,
        px: f64,
        py: f64,
        location: impl FnOnce() -> Location,
        measure: bool,
    ) -> (bool, f64) {
        let p = unit(px, py);
        if self.covers(outlines, part.part, px, py, &p, location) {
            return (true, 0.0);
        }
        self.scan(outlines, part.part, part.ring, &p, measure)
    }

    /// Whether `part` covers the point `(px, py)` (unit vector `p`): distance 0.
    #[inline(always)]
    fn covers(
        &self,
        outlines: &Outlines,
        part: usize,
        px: f64,
        py: f64,
        p: &[f64; 3],
        location: impl FnOnce() -> Location,
    ) -> bool {
        match &self.edges {
            Some(edges) => edges.locate(outlines, part, p) != Location::Outside,
            None => {
                box_holds(&outlines.parts()[part].bounds, px, py) && location() != Location::Outside
            }
        }
    }

    /// The arcs of `part`'s rings (`ring` when it has one): whether one is within the
    /// radius (the scan stops there unless `measure`), and the smallest squared chord.
    #[inline(always)]
    fn scan(
        &self,
        outlines: &Outlines,
        part: usize,
        ring: Option<(usize, usize)>,
        p: &[f64; 3],
        measure: bool,
    ) -> (bool, f64) {
        let mut within = false;
        let mut best = f64::INFINITY;
        let mut edges = |lo: usize, hi: usize| {
            if lo >= hi {
                return false;
            }
            let ring = &self.units[lo..hi];
            let mut a = &ring[ring.len() - 1];
            for b in ring {
                let s = arc_squared(p, a, b);
                best = best.min(s);
                if !within && s < self.skip_above && self.test.test(p, a, b) {
                    within = true;
                    if !measure {
                        return true;
                    }
                }
                a = b;
            }
            false
        };
        match ring {
            Some((lo, hi)) => {
                edges(lo, hi);
            }
            None => {
                for (lo, hi) in outlines.ring_ranges(part) {
                    if edges(lo, hi) {
                        break;
                    }
                }
            }
        }
        (within, best)
    }
}

impl Rule for SphereDWithin<'_> {
    const IN_SHAPE: bool = false;
    const PLANAR: bool = false;
    #[inline(always)]
    fn reach(&self) -> f64 {
        // The radius of the view widened on the sphere that it runs on: one cell each.
        self.max_dist
    }
    #[inline(always)]
    fn may_hold(&self, b: &[f64; 4], px: f64, py: f64) -> bool {
        box_holds(b, px, py)
    }
    #[inline(always)]
    fn accepts(
        &self,
        outlines: &Outlines,
        part: &Candidate<'_>,
        px: f64,
        py: f64,
        location: impl FnOnce() -> Location,
    ) -> bool {
        self.decide(outlines, part, px, py, location, false).0
    }

    #[inline(always)]
    fn accepts_measured(
        &self,
        outlines: &Outlines,
        part: &Candidate<'_>,
        px: f64,
        py: f64,
        location: impl FnOnce() -> Location,
    ) -> (bool, f64) {
        self.decide(outlines, part, px, py, location, true)
    }

    #[inline(always)]
    fn part_key(&self, outlines: &Outlines, part: usize, px: f64, py: f64) -> f64 {
        let p = unit(px, py);
        if self.covers(outlines, part, px, py, &p, || outlines.locate(part, px, py)) {
            return 0.0;
        }
        self.scan(outlines, part, None, &p, true).1
    }

    #[inline(always)]
    fn reported(&self, key: f64) -> f64 {
        metres(key)
    }

    #[inline(always)]
    fn keys_beyond(&self) -> f64 {
        // A rejected polygon's exact distance is at least the radius (squared chord T),
        // and a float key is within an angle of 1e-14 of the exact one (arcs.rs):
        // 2e-13 below sqrt(T) is below every rejected polygon's key.
        let t = self.test.threshold();
        if t == f64::INFINITY {
            return f64::INFINITY;
        }
        let r = t.sqrt() - 2e-13;
        if r > 0.0 {
            r * r * (1.0 - 4.0 * f64::EPSILON)
        } else {
            0.0
        }
    }
}
