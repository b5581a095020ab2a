//! Cell lists: for one `max_dist`, a uniform grid over the index's centers where each cell
//! keeps, in rank order, the short list of polygons that can be a candidate of a point in
//! the cell, cut after the first one that is a candidate of *every* point in the cell.
//!
//! A point then finds its cell (two comparisons per axis against stored edges) and tests
//! the list in order: the first entry that is a candidate is its match, and the entry that
//! covers the whole cell ends the list. With cells a fraction of `max_dist` wide, a list
//! holds a few entries however many candidates a disk has, so a match costs a handful of
//! distance tests instead of a tree walk.
//!
//! # Exactness
//! A point is assigned to cell `(i, j)` only if `xe[i] <= x < xe[i + 1]` and
//! `ye[j] <= y < ye[j + 1]`, compared with the stored edges themselves: the cell's closed
//! box contains every point assigned to it, whatever the rounding of the arithmetic that
//! guessed `i`. Lists are built with the group search's tests (see
//! [`SpatialIndex::best_within_group`]): a polygon is left out only if
//! [`box_gap`] of its center to the box exceeds `max_dist (1 + 1e-9)`, which is never
//! more than SPEC's distance from the center to any point of the box; an entry is marked
//! as covering only if [`box_span`] is below `max_dist (1 - 1e-9)`, never less than
//! any such distance. Entries are pushed polygon by polygon in rank order, so each list is
//! in rank order and every polygon of better rank than the covering entry that reaches the
//! cell is on it. Each point's own decisions are [`Within`]'s exact test. Points outside
//! the grid (or non-finite) are answered by the tree ([`SpatialIndex::best_within`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::{box_gap, box_span, SpatialIndex, Within, NO_MATCH};
use crate::sphere::{sincos_deg, unit, ChordWithin, EARTH_RADIUS};

/// Radians per degree.
const RAD: f64 = std::f64::consts::PI / 180.0;

/// Cell width as a fraction of `max_dist`, where the cell count allows (measured: see
/// docs/benchmarks.md).
const CELL_FRACTION: f64 = 0.35;
/// Never more cells than this many per matchable polygon (plus a floor): sparse or widely
/// spread centers with a small radius use the tree instead.
const CELLS_PER_POLYGON: usize = 4;
const MIN_CELLS: usize = 1 << 14;
/// Widest cells, as a multiple of `max_dist`.
const MAX_CELL_WIDTH: f64 = 2.0;
/// Most list entries per matchable polygon (24 bytes each on the plane, 16 on the
/// sphere). 16 rather than 12 since the sphere's entries shrank to 16 bytes: at 10 km
/// (12.96 entries per polygon at the first width) the lists then build at once instead
/// of after a refused try, first call 105-143 -> 76-77 ms, and the narrower cells match
/// faster, 29.1-34.0 -> 27.6-27.9 ms (docs/benchmarks.md).
const ENTRIES_PER_POLYGON: usize = 16;
/// When the lists would hold too many entries, cells this many times wider are tried
/// (each polygon then reaches fewer cells), up to [`MAX_CELL_WIDTH`].
const WIDEN: f64 = 1.5;
/// Lists are built once a radius has been asked for this many points per polygon: the
/// build visits about 70 cells per polygon, and each point then saves most of a tree walk
/// (measured break-even: a few points per polygon).
const BUILD_AFTER: usize = 2;
/// Radii whose cell lists (or whose refusal) an index keeps.
const CACHED_RADII: usize = 4;

/// What the cell lists need of a metric (docs/STYLE.md 11): the grid's reach around a
/// center, what an entry keeps of a center, where a center stands against a cell, and
/// the exact test of a point. The planar center rule ([`Planar`]) and the sphere's
/// ([`Sphere`]) share the grid, its build and its scans.
pub trait CellMetric: Copy + Send + Sync + std::fmt::Debug {
    /// A center as the build places it against the cells.
    type Center: Copy + Send + Sync + std::fmt::Debug;
    /// What a list entry keeps of a center for [`CellMetric::test`] (the sphere: a
    /// compact copy, so that more of the lists stay in the cache).
    type Stored: Copy + Send + Sync + std::fmt::Debug;
    /// A point as the test reads it.
    type Point: Copy;
    /// The metric's geometry for `max_dist` over `index`, or `None` where lists cannot be
    /// built exactly.
    fn new(index: &SpatialIndex, max_dist: f64) -> Option<Self>;
    /// The radius the cell size is a fraction of, in coordinate units.
    fn radius(&self) -> f64;
    /// How far, along x and along y (coordinate units, rounded outwards), a point can be
    /// from a center it is a candidate of.
    fn reach(&self) -> (f64, f64);
    /// The entry's view of rank `rank`'s center.
    fn center(&self, index: &SpatialIndex, rank: u32) -> Self::Center;
    /// What an entry stores of the center `c`.
    fn store(&self, c: &Self::Center) -> Self::Stored;
    /// What [`CellMetric::place`] precomputes per column and per row of the grid.
    type Axes: Sync;
    /// The per-column and per-row data of the grid with edges `xe` and `ye`.
    fn axes(&self, xe: &[f64], ye: &[f64]) -> Self::Axes;
    /// `None` if no point of the closed cell `(i, j)`, `cell = [x0, y0, x1, y1]`, can be
    /// a candidate of the center `c`, else whether every point of it is.
    fn place(
        &self,
        axes: &Self::Axes,
        i: usize,
        j: usize,
        c: &Self::Center,
        cell: &[f64; 4],
    ) -> Option<bool>;
    /// A point's coordinates as the grid locates them (the sphere wraps longitudes).
    fn locate_xy(&self, x: f64, y: f64) -> (f64, f64);
    /// A point as the test reads it.
    fn point(&self, x: f64, y: f64) -> Self::Point;
    /// [`CellMetric::point`] of many points, `out[k]` for `(xs[k], ys[k])`.
    #[inline(always)]
    fn points(&self, xs: &[f64], ys: &[f64], out: &mut [Self::Point]) {
        for ((o, &x), &y) in out.iter_mut().zip(xs).zip(ys) {
            *o = self.point(x, y);
        }
    }
    /// Whether the point is a candidate of the center of rank `rank`, stored in its entry
    /// as `c`, exactly.
    fn test(&self, index: &SpatialIndex, p: &Self::Point, c: &Self::Stored, rank: u32) -> bool;
    /// The answer for a point outside the grid, from the tree.
    fn fallback(&self, index: &SpatialIndex, x: f64, y: f64) -> u32;
    /// A placeholder center.
    fn empty() -> Self::Stored;
    /// The point's key against the center of rank `rank` it matched (what the `distance`
    /// column is made from: the sphere's float64 squared chord), for
    /// [`CellGrid::best_within_many_keyed`]; `c` is that center as the matching entry
    /// stored it (`None` for an answer of the tree).
    fn key(
        &self,
        index: &SpatialIndex,
        p: &Self::Point,
        c: Option<&Self::Stored>,
        rank: u32,
    ) -> f64;
}

/// The planar center rule's cell metric: SPEC.md's distance.
#[derive(Debug, Clone, Copy)]
pub struct Planar {
    max_dist: f64,
    within: Within,
    reach: f64,
    shrink: f64,
}

impl CellMetric for Planar {
    type Center = (f64, f64);
    type Stored = (f64, f64);
    type Point = (f64, f64);

    fn new(_index: &SpatialIndex, max_dist: f64) -> Option<Self> {
        if !max_dist.is_finite() || !SpatialIndex::group_search_applies(max_dist) {
            return None;
        }
        Some(Self {
            max_dist,
            within: Within::new(max_dist),
            reach: max_dist * (1.0 + 1e-9),
            shrink: max_dist * (1.0 - 1e-9),
        })
    }
    fn radius(&self) -> f64 {
        self.max_dist
    }
    fn reach(&self) -> (f64, f64) {
        (self.reach, self.reach)
    }
    #[inline]
    fn center(&self, index: &SpatialIndex, rank: u32) -> (f64, f64) {
        index.center_of(rank)
    }
    #[inline]
    fn store(&self, c: &(f64, f64)) -> (f64, f64) {
        *c
    }
    type Axes = ();
    fn axes(&self, _xe: &[f64], _ye: &[f64]) {}
    #[inline]
    fn place(
        &self,
        _axes: &(),
        _i: usize,
        _j: usize,
        c: &(f64, f64),
        cell: &[f64; 4],
    ) -> Option<bool> {
        let (cx, cy) = *c;
        let center = [cx, cy, cx, cy];
        if box_gap(&center, cell) > self.reach {
            return None;
        }
        Some(box_span(&center, cell) < self.shrink)
    }
    #[inline(always)]
    fn locate_xy(&self, x: f64, y: f64) -> (f64, f64) {
        (x, y)
    }
    #[inline(always)]
    fn point(&self, x: f64, y: f64) -> (f64, f64) {
        (x, y)
    }
    #[inline(always)]
    fn test(&self, _index: &SpatialIndex, p: &(f64, f64), c: &(f64, f64), _rank: u32) -> bool {
        self.within.test(p.0, p.1, c.0, c.1)
    }
    #[inline]
    fn fallback(&self, index: &SpatialIndex, x: f64, y: f64) -> u32 {
        index.best_within(x, y, self.max_dist)
    }
    fn empty() -> (f64, f64) {
        (f64::NAN, f64::NAN)
    }
    #[inline]
    fn key(&self, index: &SpatialIndex, p: &(f64, f64), c: Option<&(f64, f64)>, rank: u32) -> f64 {
        let (cx, cy) = c.copied().unwrap_or_else(|| index.center_of(rank));
        super::squared(p.0, p.1, cx, cy)
    }
}

/// The sphere's cell metric: longitude/latitude cells, and for each cell the 3-D box of
/// the unit vectors of its points (widened by `1e-15` for the rounding of [`unit`]), so
/// that a center is placed against a cell exactly as [`crate::sphere::SphereCap`] places
/// a node: out if the float squared chord to the box's nearest point is above the
/// chord filter's upper bound, covering if the chord to its farthest corner is below its
/// lower bound. Lists apply where no cap can wrap around the antimeridian or over a
/// pole: the grid's longitudes, widened by the reach, stay inside `(-180, 180)`, and its
/// latitudes inside `(-89, 89)`; elsewhere the tree answers.
#[derive(Debug, Clone, Copy)]
pub struct Sphere {
    within: ChordWithin,
    /// A float64 squared chord from a point to an entry's `f32` copy of a center below
    /// `sure_in` proves the point a candidate, above `sure_out` proves it is not
    /// ([`Sphere::bounds_of_copies`]); between them the test reads the center's float64
    /// vector.
    sure_in: f64,
    sure_out: f64,
    /// Degrees of latitude and of longitude (at the grid's largest |latitude|) a point can
    /// be from a center it is a candidate of, rounded outwards.
    reach_y: f64,
    reach_x: f64,
}

impl Sphere {
    /// `(sure_in, sure_out)` for the squared-chord threshold `t` (finite and at least
    /// `1e-24`: [`Sphere::new`] refuses other radii).
    ///
    /// A unit vector's components are in `[-1, 1]`, so rounding each to `f32` moves it by
    /// at most `2^-25`, and the vector by `e = sqrt(3) 2^-25`: the chord `D` to the
    /// float64 center and the chord `D'` to its copy differ by at most `e`. The float64
    /// sum `s` of the three squares is within `5u` (relative) of `D'^2`, plus at most
    /// `3 2^-1074` of underflow. So with `r = sqrt(t)` (rounded, within `u`):
    /// - `s < (r - e)^2 (1 - 1e-12)` gives `D' < r - e`, so `D < sqrt(t)`;
    /// - `s > (r + e)^2 (1 + 1e-12)` gives `D' > r + e`, so `D > sqrt(t)`.
    ///
    /// The `1e-12` covers those roundings, the rounding of the bounds themselves, and
    /// the underflow (both bounds are `e^2 = 2.7e-15` or more, where not `-1`).
    fn bounds_of_copies(t: f64) -> (f64, f64) {
        let e = 3f64.sqrt() * f64::powi(2.0, -25) * (1.0 + 1e-12);
        let r = t.sqrt();
        let (r_lo, r_hi) = (r * (1.0 - 1e-15), r * (1.0 + 1e-15));
        let sure_in = if r_lo > e * 2.0 {
            (r_lo - e) * (r_lo - e) * (1.0 - 1e-12)
        } else {
            -1.0 // a radius of a few metres: every test reads the float64 vector
        };
        (sure_in, (r_hi + e) * (r_hi + e) * (1.0 + 1e-12))
    }
}

impl CellMetric for Sphere {
    type Center = [f64; 3];
    type Stored = [f32; 3];
    type Point = [f64; 3];

    fn new(index: &SpatialIndex, max_dist: f64) -> Option<Self> {
        let theta = max_dist / EARTH_RADIUS;
        if !(theta.is_finite() && theta > 1e-12 && theta < 0.1) {
            return None;
        }
        let [bx0, by0, bx1, by1] = index.bounds()?;
        let deg = theta / RAD;
        let reach_y = deg * (1.0 + 1e-6) + 1e-9;
        let far_lat = by0.abs().max(by1.abs()) + reach_y;
        if far_lat >= 89.0 {
            return None;
        }
        // The widest longitude span of a cap of radius theta whose center is at most
        // `far_lat` from the equator: asin(sin theta / cos far_lat).
        let ratio = libm::sin(theta) / libm::cos(far_lat * RAD);
        if ratio >= 0.5 {
            return None;
        }
        let reach_x = libm::asin(ratio) / RAD * (1.0 + 1e-6) + 1e-9;
        if bx0 - reach_x <= -180.0 || bx1 + reach_x >= 180.0 {
            return None; // a cap could wrap around the antimeridian
        }
        let within = ChordWithin::new(max_dist);
        let (sure_in, sure_out) = Self::bounds_of_copies(within.threshold());
        Some(Self {
            within,
            sure_in,
            sure_out,
            reach_y,
            reach_x,
        })
    }
    fn radius(&self) -> f64 {
        self.reach_y
    }
    fn reach(&self) -> (f64, f64) {
        (self.reach_x, self.reach_y)
    }
    #[inline]
    fn center(&self, index: &SpatialIndex, rank: u32) -> [f64; 3] {
        index.units()[rank as usize]
    }
    /// The vector in `f32`: 16-byte entries instead of 32, so a grid's lists take half
    /// the cache (measured: docs/benchmarks.md, "On the sphere").
    #[inline]
    fn store(&self, c: &[f64; 3]) -> [f32; 3] {
        c.map(|v| v as f32)
    }
    /// Per column, the ranges of `cos lon` and `sin lon`; per row, of `cos lat` and
    /// `sin lat` ([`lon_ranges`], [`lat_ranges`]): a cell's 3-D box is then a few
    /// products, where computing it from its corners took eight sines and cosines per
    /// (polygon, cell) visit, most of the build.
    type Axes = (Vec<[f64; 4]>, Vec<[f64; 4]>);
    fn axes(&self, xe: &[f64], ye: &[f64]) -> Self::Axes {
        (
            xe.windows(2).map(|w| lon_ranges(w[0], w[1])).collect(),
            ye.windows(2).map(|w| lat_ranges(w[0], w[1])).collect(),
        )
    }
    #[inline]
    fn place(
        &self,
        axes: &Self::Axes,
        i: usize,
        j: usize,
        c: &[f64; 3],
        _cell: &[f64; 4],
    ) -> Option<bool> {
        let (near, far) = crate::sphere::box_chords(c, &unit_box(&axes.0[i], &axes.1[j]));
        match self.within.place(near, far) {
            super::Reach::Outside => None,
            super::Reach::Inside => Some(true),
            super::Reach::Partial => Some(false),
        }
    }
    #[inline(always)]
    fn locate_xy(&self, x: f64, y: f64) -> (f64, f64) {
        (if x > 180.0 { x - 360.0 } else { x }, y)
    }
    #[inline(always)]
    fn point(&self, x: f64, y: f64) -> [f64; 3] {
        unit(x, y)
    }
    /// [`crate::sphere::units`]: several points per vector instruction.
    #[inline(always)]
    fn points(&self, xs: &[f64], ys: &[f64], out: &mut [[f64; 3]]) {
        crate::sphere::units(xs, ys, out);
    }
    #[inline(always)]
    fn test(&self, index: &SpatialIndex, p: &[f64; 3], c: &[f32; 3], rank: u32) -> bool {
        let (dx, dy, dz) = (
            p[0] - f64::from(c[0]),
            p[1] - f64::from(c[1]),
            p[2] - f64::from(c[2]),
        );
        let s = dx * dx + dy * dy + dz * dz;
        if s < self.sure_in {
            true
        } else if s > self.sure_out {
            false
        } else {
            // Near the threshold, or a NaN: the float64 vector decides.
            self.within.test(p, &index.units()[rank as usize])
        }
    }
    #[inline]
    fn fallback(&self, index: &SpatialIndex, x: f64, y: f64) -> u32 {
        let cap = crate::sphere::SphereCap::new(&self.within, index, x, y);
        index.best_by(&cap, x, y)
    }
    fn empty() -> [f32; 3] {
        [f32::NAN; 3]
    }
    #[inline]
    fn key(&self, index: &SpatialIndex, p: &[f64; 3], _c: Option<&[f32; 3]>, rank: u32) -> f64 {
        // the float64 vector: the entry's copy is rounded
        crate::sphere::chord_squared(p, &index.units()[rank as usize])
    }
}

/// The range of `f` (from [`sincos_deg`]) over the degrees `[a, b]`, with the values at
/// the `peaks` inside it (where `f` turns).
fn range(f: fn(f64) -> f64, a: f64, b: f64, peaks: &[(f64, f64)]) -> (f64, f64) {
    let (fa, fb) = (f(a), f(b));
    let (mut lo, mut hi) = (fa.min(fb), fa.max(fb));
    for &(at, v) in peaks {
        if a <= at && at <= b {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    (lo, hi)
}

fn sin_deg(x: f64) -> f64 {
    sincos_deg(x).0
}

fn cos_deg(x: f64) -> f64 {
    sincos_deg(x).1
}

/// `[min cos, max cos, min sin, max sin]` over the longitudes `[l0, l1]` (each monotone
/// between its extremes at 0 and +-90 degrees).
fn lon_ranges(l0: f64, l1: f64) -> [f64; 4] {
    let (c0, c1) = range(cos_deg, l0, l1, &[(0.0, 1.0)]);
    let (s0, s1) = range(sin_deg, l0, l1, &[(90.0, 1.0), (-90.0, -1.0)]);
    [c0, c1, s0, s1]
}

/// `[min cos, max cos, min sin, max sin]` over the latitudes `[p0, p1]`.
fn lat_ranges(p0: f64, p1: f64) -> [f64; 4] {
    let (c0, c1) = range(cos_deg, p0, p1, &[(0.0, 1.0)]);
    let (s0, s1) = range(sin_deg, p0, p1, &[]);
    [c0, c1, s0, s1]
}

/// A 3-D box holding the unit vectors [`unit`] computes for every longitude/latitude of
/// a closed cell (inside `[-180, 180] x [-90, 90]`), from its longitudes' and latitudes'
/// ranges of `cos` and `sin` ([`lon_ranges`], [`lat_ranges`]): their products' ranges,
/// widened by `1e-15` for the rounding of the trigonometry and the products.
fn unit_box(lon: &[f64; 4], lat: &[f64; 4]) -> [f64; 6] {
    let [cl0, cl1, sl0, sl1] = *lon;
    let [cp0, cp1, sp0, sp1] = *lat;
    let product = |a0: f64, a1: f64, b0: f64, b1: f64| -> (f64, f64) {
        let v = [a0 * b0, a0 * b1, a1 * b0, a1 * b1];
        (
            v.iter().copied().fold(f64::INFINITY, f64::min),
            v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        )
    };
    let (x0, x1) = product(cp0, cp1, cl0, cl1);
    let (y0, y1) = product(cp0, cp1, sl0, sl1);
    const E: f64 = 1e-15;
    [x0 - E, y0 - E, sp0 - E, x1 + E, y1 + E, sp1 + E]
}

/// One list entry: a polygon's center (as the metric stores it) and rank, and whether it
/// is a candidate of every point of the cell (then it is the last entry), in the rank's
/// top bit (ranks stay below `2^31`: [`CellGrid::build`]), so that a sphere entry is 16
/// bytes.
#[derive(Debug, Clone, Copy)]
struct Entry<C> {
    c: C,
    tag: u32,
}

/// The covering bit of [`Entry::tag`].
const COVERS: u32 = 1 << 31;

impl<C> Entry<C> {
    #[inline(always)]
    fn new(c: C, rank: u32, covers: bool) -> Self {
        debug_assert!(rank < COVERS);
        Self {
            c,
            tag: if covers { rank | COVERS } else { rank },
        }
    }
    /// A slot to be overwritten before it is read: not covering, and no rank of an
    /// index that has lists.
    fn placeholder(c: C) -> Self {
        Self { c, tag: !COVERS }
    }
    #[inline(always)]
    fn rank(&self) -> u32 {
        self.tag & !COVERS
    }
    #[inline(always)]
    fn covers(&self) -> bool {
        self.tag & COVERS != 0
    }
}

/// One band of cell rows as built: the count per cell and the entries, by cell.
type Band<M> = (Vec<u32>, Vec<Entry<<M as CellMetric>::Stored>>);

/// One try of [`CellGrid::build`].
enum Attempt<M: CellMetric> {
    Built(CellGrid<M>),
    /// More entries than [`ENTRIES_PER_POLYGON`]: wider cells may do.
    TooMany,
    /// The lists do not apply.
    Refused,
}

/// The cell lists of one index for one `max_dist`, in metric `M`.
#[derive(Debug)]
pub struct CellGrid<M: CellMetric = Planar> {
    max_dist: f64,
    metric: M,
    /// Cell edges: `nx + 1` and `ny + 1` strictly increasing values.
    xe: Vec<f64>,
    ye: Vec<f64>,
    /// Origin and inverse width, to guess a cell before checking it against the edges.
    x0: f64,
    y0: f64,
    inv_x: f64,
    inv_y: f64,
    /// Cell `c = j * nx + i` has `entries[starts[c]..starts[c + 1]]`.
    starts: Vec<u32>,
    entries: Vec<Entry<M::Stored>>,
}

impl<M: CellMetric> CellGrid<M> {
    /// The cell lists of `index` for `max_dist`, or `None` where they would not pay or
    /// cannot be built exactly: no matchable polygon, a radius whose square is not a normal
    /// float (or infinite), cells that would have to be wider than [`MAX_CELL_WIDTH`]
    /// radii to stay within [`CELLS_PER_POLYGON`] or, widened [`WIDEN`] times at each
    /// try, to stay within [`ENTRIES_PER_POLYGON`] entries, or edges that do not increase
    /// (cells narrower than the float spacing of the coordinates). Few candidates per
    /// point close few cells, so most polygons list themselves in every cell they reach:
    /// wider cells then hold fewer entries in all (measured: the sphere at 10 km with ~4
    /// candidates, 13.0 entries per polygon at the first width, 9.8 at 1.5 times it,
    /// docs/benchmarks.md).
    ///
    /// # Implementation
    /// In parallel over bands of cell rows: one pass over the band's polygons in rank
    /// order, each visiting the cells around its center (about
    /// `(2 / CELL_FRACTION + 3)^2`), skipping cells already covered; then a counting sort
    /// of the band's entries by cell.
    pub fn build(index: &SpatialIndex, max_dist: f64) -> Option<Self> {
        let metric = M::new(index, max_dist)?;
        let mut widen = 1.0;
        loop {
            match Self::build_with(index, max_dist, metric, widen) {
                Attempt::Built(grid) => return Some(grid),
                Attempt::Refused => return None,
                Attempt::TooMany => widen *= WIDEN,
            }
        }
    }

    /// [`CellGrid::build`] with cells at least `widen` times as wide as the first choice.
    fn build_with(index: &SpatialIndex, max_dist: f64, metric: M, widen: f64) -> Attempt<M> {
        // Ranks below 2^31: an entry's top bit is its covering flag ([`Entry`]).
        let Some([bx0, by0, bx1, by1]) = index.bounds().filter(|_| index.matchable() < 1 << 31)
        else {
            return Attempt::Refused;
        };
        let radius = metric.radius();
        let (reach_x, reach_y) = metric.reach();
        let (x0, y0) = (bx0 - reach_x, by0 - reach_y);
        // Cells a fraction of the radius wide, or wider where that would make too many
        // (centers sparse for the radius: then few reach a cell anyway), up to a limit.
        let limit = (index.matchable() * CELLS_PER_POLYGON).max(MIN_CELLS) as f64;
        // Cells as much wider than tall as the reach is (1 on the plane; on the sphere,
        // square in metres where the caps are widest), sized along y.
        let aspect = reach_x / reach_y;
        let extent = (bx1 + reach_x - x0) / aspect * (by1 + reach_y - y0);
        let s = (radius * CELL_FRACTION).max((extent / limit).sqrt()) * widen;
        if s.is_nan() || s > radius * MAX_CELL_WIDTH {
            return Attempt::Refused;
        }
        let sx = s * aspect;
        let nx = ((bx1 + reach_x - x0) / sx).ceil() + 1.0;
        let ny = ((by1 + reach_y - y0) / s).ceil() + 1.0;
        let cells = nx * ny;
        if !cells.is_finite() || cells > 2.0 * limit {
            return Attempt::Refused;
        }
        let (nx, ny) = (nx as usize, ny as usize);
        let xe: Vec<f64> = (0..=nx).map(|i| x0 + i as f64 * sx).collect();
        let ye: Vec<f64> = (0..=ny).map(|j| y0 + j as f64 * s).collect();
        let increasing = |e: &[f64]| e.windows(2).all(|w| w[0] < w[1]);
        if !increasing(&xe) || !increasing(&ye) {
            return Attempt::Refused;
        }
        let (inv_x, inv_y) = (1.0 / sx, 1.0 / s);
        let axes = metric.axes(&xe, &ye);
        // A generous range of cells around a coordinate: the exact tests below decide.
        let span = |v: f64, reach: f64, o: f64, inv: f64, n: usize| -> (usize, usize) {
            let lo = ((v - reach - o) * inv).floor() - 1.0;
            let hi = ((v + reach - o) * inv).floor() + 1.0;
            (lo.max(0.0) as usize, (hi.max(0.0) as usize).min(n - 1))
        };
        // Bands of cell rows, built in parallel: each band takes the polygons whose reach
        // overlaps its rows, in rank order, and lists its own cells. The lists do not
        // depend on the bands (each cell's list is a function of the polygons alone), so
        // neither on the thread count.
        let rows_per_band = ny.div_ceil((rayon::current_num_threads() * 4).clamp(1, ny));
        let bands = ny.div_ceil(rows_per_band);
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); bands];
        for rank in 0..index.matchable() as u32 {
            let (j0, j1) = span(index.center_of(rank).1, reach_y, y0, inv_y, ny);
            for band in members
                .iter_mut()
                .take(j1 / rows_per_band + 1)
                .skip(j0 / rows_per_band)
            {
                band.push(rank);
            }
        }
        // Entries pushed by all bands so far: a band stops once the sum is over the
        // budget. The outcome does not depend on the threads' timing: each band's own
        // entries do not depend on the others, so the sum is over the budget at some
        // point iff the final sum would be.
        let budget = ENTRIES_PER_POLYGON * index.matchable() + MIN_CELLS;
        let pushed_by_all = AtomicUsize::new(0);
        let band = |b: usize| -> Option<Band<M>> {
            let (r0, r1) = (b * rows_per_band, ((b + 1) * rows_per_band).min(ny));
            let cells = (r1 - r0) * nx;
            let mut closed = vec![false; cells];
            // Open cells per block of BLOCK_CELLS x BLOCK_CELLS: a polygon whose span
            // has none left is skipped whole. In rank order, cells close early (each is
            // covered by ~20 polygons at ~30 candidates), so most polygons of the later
            // ranks find only closed cells.
            let bx = nx.div_ceil(BLOCK_CELLS);
            let by = (r1 - r0).div_ceil(BLOCK_CELLS);
            let mut open: Vec<u32> = (0..bx * by)
                .map(|k| {
                    let (i, j) = ((k % bx) * BLOCK_CELLS, (k / bx) * BLOCK_CELLS);
                    let w = BLOCK_CELLS.min(nx - i);
                    let h = BLOCK_CELLS.min(r1 - r0 - j);
                    (w * h) as u32
                })
                .collect();
            let mut cell_of: Vec<u32> = Vec::new();
            let mut pushed: Vec<Entry<M::Stored>> = Vec::new();
            for &rank in &members[b] {
                let before = pushed.len();
                let (cx, cy) = index.center_of(rank);
                let center = metric.center(index, rank);
                let stored = metric.store(&center);
                let (i0, i1) = span(cx, reach_x, x0, inv_x, nx);
                let (j0, j1) = span(cy, reach_y, y0, inv_y, ny);
                let (j0, j1) = (j0.max(r0), j1.min(r1 - 1));
                if j0 > j1 {
                    continue;
                }
                let (bj0, bj1) = ((j0 - r0) / BLOCK_CELLS, (j1 - r0) / BLOCK_CELLS);
                let (bi0, bi1) = (i0 / BLOCK_CELLS, i1 / BLOCK_CELLS);
                if (bj0..=bj1).all(|bj| open[bj * bx + bi0..=bj * bx + bi1].iter().all(|&n| n == 0))
                {
                    continue;
                }
                for j in j0..=j1 {
                    for i in i0..=i1 {
                        let c = (j - r0) * nx + i;
                        if closed[c] {
                            continue;
                        }
                        let cell = [xe[i], ye[j], xe[i + 1], ye[j + 1]];
                        let Some(covers) = metric.place(&axes, i, j, &center, &cell) else {
                            continue;
                        };
                        closed[c] = covers;
                        if covers {
                            open[((j - r0) / BLOCK_CELLS) * bx + i / BLOCK_CELLS] -= 1;
                        }
                        cell_of.push(c as u32);
                        pushed.push(Entry::new(stored, rank, covers));
                    }
                }
                let added = pushed.len() - before;
                if added > 0 && pushed_by_all.fetch_add(added, Ordering::Relaxed) + added > budget {
                    return None; // too many entries in all: wider cells, or the tree
                }
            }
            // Counting sort by cell; stable, so each list stays in rank order.
            let mut counts = vec![0u32; cells];
            for &c in &cell_of {
                counts[c as usize] += 1;
            }
            let mut next: Vec<usize> = Vec::with_capacity(cells);
            let mut at = 0usize;
            for &n in &counts {
                next.push(at);
                at += n as usize;
            }
            let empty = Entry::placeholder(M::empty());
            let mut entries = vec![empty; pushed.len()];
            for (&c, e) in cell_of.iter().zip(pushed) {
                let slot = &mut next[c as usize];
                entries[*slot] = e;
                *slot += 1;
            }
            Some((counts, entries))
        };
        let Some(built) = (0..bands)
            .into_par_iter()
            .map(band)
            .collect::<Option<Vec<Band<M>>>>()
        else {
            return Attempt::TooMany;
        };
        let total: usize = built.iter().map(|b| b.1.len()).sum();
        if total >= u32::MAX as usize || total > budget {
            return Attempt::TooMany;
        }
        let mut starts = Vec::with_capacity(nx * ny + 1);
        let mut entries = Vec::with_capacity(total);
        starts.push(0u32);
        for (counts, list) in built {
            for n in counts {
                starts.push(starts[starts.len() - 1] + n);
            }
            entries.extend_from_slice(&list);
        }
        Attempt::Built(Self {
            max_dist,
            metric,
            xe,
            ye,
            x0,
            y0,
            inv_x,
            inv_y,
            starts,
            entries,
        })
    }

    /// The radius these lists are for.
    pub fn max_dist(&self) -> f64 {
        self.max_dist
    }

    /// Number of cells and of list entries (for sizing and tests).
    pub fn size(&self) -> (usize, usize) {
        (self.starts.len() - 1, self.entries.len())
    }

    /// The cell edges along x and along y (for tests: points placed on them).
    pub fn edges(&self) -> (&[f64], &[f64]) {
        (&self.xe, &self.ye)
    }

    /// The cell holding `v` along one axis, or `None` outside the edges (NaN included).
    #[inline(always)]
    fn locate(edges: &[f64], origin: f64, inv: f64, v: f64) -> Option<usize> {
        let n = edges.len() - 1;
        if !(v >= edges[0] && v < edges[n]) {
            return None;
        }
        let mut i = (((v - origin) * inv) as usize).min(n - 1);
        while v < edges[i] {
            i -= 1;
        }
        while v >= edges[i + 1] {
            i += 1;
        }
        Some(i)
    }

    /// The best rank within `max_dist` of `(px, py)`, or [`NO_MATCH`]: the answer of
    /// [`SpatialIndex::best_within`] (`index` must be the one these lists were built from).
    #[inline]
    pub fn best_within(&self, index: &SpatialIndex, px: f64, py: f64) -> u32 {
        let (lx, ly) = self.metric.locate_xy(px, py);
        let (Some(i), Some(j)) = (
            Self::locate(&self.xe, self.x0, self.inv_x, lx),
            Self::locate(&self.ye, self.y0, self.inv_y, ly),
        ) else {
            return self.metric.fallback(index, px, py);
        };
        let c = j * (self.xe.len() - 1) + i;
        let list = &self.entries[self.starts[c] as usize..self.starts[c + 1] as usize];
        let p = self.metric.point(px, py);
        for e in list {
            if e.covers() || self.metric.test(index, &p, &e.c, e.rank()) {
                return e.rank();
            }
        }
        NO_MATCH
    }

    /// [`CellGrid::best_within`] for many points, `out[i]` for `(xs[i], ys[i])`.
    ///
    /// # Implementation
    /// In blocks of [`BLOCK`] points, three passes: locate each point's cell (the edges
    /// are small and cached); load each cell's list bounds; load each list's first entry;
    /// then scan. Each pass's loads are independent of one another, so their cache misses
    /// overlap instead of queueing behind each point's scan (measured: the scan of points
    /// in input order was otherwise mostly waiting for its first entry).
    pub fn best_within_many(&self, index: &SpatialIndex, xs: &[f64], ys: &[f64], out: &mut [u32]) {
        self.scan_many(index, xs, ys, out, |_, _, _, _| {});
    }

    /// [`CellGrid::best_within_many`], also writing each matched point's key
    /// ([`CellMetric::key`]) to `keys[i]` (NaN where there is no match): the sphere's
    /// squared chord, from the unit vector the scan computed.
    pub fn best_within_many_keyed(
        &self,
        index: &SpatialIndex,
        xs: &[f64],
        ys: &[f64],
        out: &mut [u32],
        keys: &mut [f64],
    ) {
        self.scan_many(index, xs, ys, out, |i, p, rank, c| {
            keys[i] = match (p, rank) {
                (_, NO_MATCH) => f64::NAN,
                (Some(p), r) => self.metric.key(index, &p, c, r),
                (None, r) => {
                    let p = self.metric.point(xs[i], ys[i]);
                    self.metric.key(index, &p, c, r)
                }
            };
        });
    }

    /// The scan of [`CellGrid::best_within_many`], calling `record(i, point, rank,
    /// center)` for each point with the point as the test reads it (if it was made) and
    /// the matching entry's center (if an entry matched).
    #[inline(always)]
    fn scan_many(
        &self,
        index: &SpatialIndex,
        xs: &[f64],
        ys: &[f64],
        out: &mut [u32],
        mut record: impl FnMut(usize, Option<M::Point>, u32, Option<&M::Stored>),
    ) {
        const OUTSIDE: u32 = u32::MAX;
        let nx = self.xe.len() - 1;
        let mut cell = [0u32; BLOCK];
        let mut lo = [0u32; BLOCK];
        let mut hi = [0u32; BLOCK];
        let mut first = [Entry::placeholder(M::empty()); BLOCK];
        let mut pts = [self.metric.point(0.0, 0.0); BLOCK];
        for (b, ((out, xs), ys)) in out
            .chunks_mut(BLOCK)
            .zip(xs.chunks(BLOCK))
            .zip(ys.chunks(BLOCK))
            .enumerate()
        {
            let n = out.len();
            for k in 0..n {
                let (lx, ly) = self.metric.locate_xy(xs[k], ys[k]);
                cell[k] = match (
                    Self::locate(&self.xe, self.x0, self.inv_x, lx),
                    Self::locate(&self.ye, self.y0, self.inv_y, ly),
                ) {
                    (Some(i), Some(j)) => (j * nx + i) as u32,
                    _ => OUTSIDE,
                };
            }
            for k in 0..n {
                let c = cell[k] as usize;
                (lo[k], hi[k]) = if cell[k] == OUTSIDE {
                    (0, 0)
                } else {
                    (self.starts[c], self.starts[c + 1])
                };
            }
            for k in 0..n {
                if lo[k] < hi[k] {
                    first[k] = self.entries[lo[k] as usize];
                    // and a hint for the line of the list's fourth entry: the next line
                    // where the list crosses into it, which half the points at 10 km
                    // read (their first entry does not match). Measured: 10 km on the
                    // sphere 31.8-34.4 -> 28.6-31.7 ms, ~30 candidates 4% faster;
                    // prefetching the matched center's float64 vector as well was
                    // slower (docs/benchmarks.md).
                    prefetch(&self.entries[(lo[k] + 3).min(hi[k] - 1) as usize]);
                }
            }
            // Every point as the test reads it, in a loop of its own: the sphere's unit
            // vectors (two sines and cosines each) then run several per vector
            // instruction instead of waiting on the scan's branches.
            self.metric.points(xs, ys, &mut pts[..n]);
            for k in 0..n {
                let (px, py) = (xs[k], ys[k]);
                let (rank, p, hit) = if cell[k] == OUTSIDE {
                    (self.metric.fallback(index, px, py), None, None)
                } else if lo[k] == hi[k] {
                    (NO_MATCH, None, None)
                } else if first[k].covers() {
                    (first[k].rank(), Some(pts[k]), Some(&first[k]))
                } else {
                    let p = pts[k];
                    if self.metric.test(index, &p, &first[k].c, first[k].rank()) {
                        (first[k].rank(), Some(p), Some(&first[k]))
                    } else {
                        let rest = &self.entries[lo[k] as usize + 1..hi[k] as usize];
                        let e = rest
                            .iter()
                            .find(|e| e.covers() || self.metric.test(index, &p, &e.c, e.rank()));
                        (e.map_or(NO_MATCH, Entry::rank), Some(p), e)
                    }
                };
                out[k] = rank;
                record(b * BLOCK + k, p, rank, hit.map(|e| &e.c));
            }
        }
    }
}

/// A hint to bring `v`'s cache line in (no effect on any result).
#[inline(always)]
fn prefetch<T>(v: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch of the address of a live reference; it reads nothing itself.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((v as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// Side, in cells, of the blocks whose open cells [`CellGrid::build`] counts.
const BLOCK_CELLS: usize = 4;

/// Points per block in [`CellGrid::best_within_many`].
const BLOCK: usize = 64;

/// The cell lists an index has built, per radius, and how many points each radius has
/// been asked for (lists are built once a radius has served [`BUILD_AFTER`] points per
/// polygon, when building costs about what it saves).
pub(crate) struct CellCache<M: CellMetric = Planar> {
    state: Mutex<Vec<Slot<M>>>,
}

impl<M: CellMetric> Default for CellCache<M> {
    fn default() -> Self {
        Self {
            state: Mutex::new(Vec::new()),
        }
    }
}

struct Slot<M: CellMetric> {
    bits: u64,
    /// Points asked for at this radius so far.
    points: usize,
    /// Points announced for it ([`CellCache::expect`]): a job's total, counting the
    /// points it will ask for, so it is compared with `points`, not added to it.
    expected: usize,
    grid: Option<Option<Arc<CellGrid<M>>>>,
}

impl<M: CellMetric> CellCache<M> {
    /// The lists of `index` for `max_dist` if they exist or now pay, counting `points`
    /// toward that radius.
    pub(crate) fn get(
        &self,
        index: &SpatialIndex,
        max_dist: f64,
        points: usize,
    ) -> Option<Arc<CellGrid<M>>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let slot = Self::slot(&mut state, max_dist);
        if let Some(grid) = &slot.grid {
            return grid.clone();
        }
        slot.points = slot.points.saturating_add(points);
        // Announced points include those asked for since: the larger count is the job's.
        if slot.points.max(slot.expected) < BUILD_AFTER * index.matchable() {
            return None;
        }
        let grid = CellGrid::build(index, max_dist).map(Arc::new);
        slot.grid = Some(grid.clone());
        grid
    }

    /// Count `points` toward `max_dist` without building: points a caller will ask for
    /// later (see [`SpatialIndex::expect_points`]).
    pub(crate) fn expect(&self, max_dist: f64, points: usize) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let slot = Self::slot(&mut state, max_dist);
        slot.expected = slot.expected.saturating_add(points);
    }

    /// The slot of `max_dist`, made (dropping the oldest beyond [`CACHED_RADII`]) if new.
    fn slot(state: &mut Vec<Slot<M>>, max_dist: f64) -> &mut Slot<M> {
        let bits = max_dist.to_bits();
        let at = match state.iter().position(|s| s.bits == bits) {
            Some(at) => at,
            None => {
                if state.len() == CACHED_RADII {
                    state.remove(0);
                }
                state.push(Slot {
                    bits,
                    points: 0,
                    expected: 0,
                    grid: None,
                });
                state.len() - 1
            }
        };
        &mut state[at]
    }
}

impl<M: CellMetric> Clone for CellCache<M> {
    /// A copy starts empty (the lists belong to one index's ranks).
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<M: CellMetric> PartialEq for CellCache<M> {
    /// A cache never makes two indexes differ.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<M: CellMetric> std::fmt::Debug for CellCache<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.state.lock().map(|s| s.len()).unwrap_or(0);
        write!(f, "CellCache({n} radii)")
    }
}
