//! The polygons' outlines prepared for point-in-polygon tests: each part of each
//! matchable polygon with its box, and for a part with many edges an edge index built
//! once (y-stripes, as tg's `YStripes`), so that a test against a part of 20,000
//! vertices reads a handful of edges.
//!
//! The coordinates are the polygon columns' own buffers (no copy); what is added is a
//! box per part and, for large parts, the stripes: two `u32` vertex indexes per edge
//! and stripe it spans (about three per edge) plus one offset per stripe.

use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{PolymatchError, Result};
use crate::geometry::vertex_bounds;
use crate::polygons::PolygonColumns;
use crate::shape::cells::Cells;
use crate::shape::distance::{box_holds, ring_squared, segment_squared, EdgeWithin};
use crate::shape::locate::{locate_part, Crossings, Location};

/// The squared distance from `(px, py)` to the farthest corner of the box `b`.
#[inline]
pub fn farthest_squared(b: &[f64; 4], px: f64, py: f64) -> f64 {
    let dx = (px - b[0]).abs().max((b[2] - px).abs());
    let dy = (py - b[1]).abs().max((b[3] - py).abs());
    dx * dx + dy * dy
}

/// Parts with more edges than this get an edge index; smaller ones are tested edge by
/// edge, which is faster than any lookup for them.
pub const STRIPE_MIN_EDGES: usize = 48;

/// Edges per stripe the index aims at (stripes = edges / this).
const EDGES_PER_STRIPE: usize = 2;

/// One part of one polygon.
#[derive(Debug, Clone, Copy)]
pub struct Part {
    /// The polygon row.
    pub row: u32,
    /// Its rings: `ring_offsets` positions `rings.0..rings.1` of the polygon columns.
    pub rings: (usize, usize),
    /// Closed bounds `[xmin, ymin, xmax, ymax]` of its vertices.
    pub bounds: [f64; 4],
    /// Its vertices: `vertices.0..vertices.1` of the coordinate buffers (all rings).
    pub vertices: (usize, usize),
    /// Its edge index in [`Outlines`]'s list, if it has one.
    stripes: Option<u32>,
}

impl Part {
    /// The vertex range of a part of one ring without an edge index (tested edge by
    /// edge straight from the coordinates).
    pub fn simple_ring(&self) -> Option<(usize, usize)> {
        (self.rings.1 - self.rings.0 == 1 && self.stripes.is_none()).then_some(self.vertices)
    }
}

/// The edges of one part, by horizontal stripe of its bounds: the edges that a
/// horizontal line at `y` can cross or touch are all in the stripe of `y`.
///
/// The stripe of a value is a non-decreasing function of it (a subtraction and a
/// multiplication by a positive factor, both monotone in floating point, then a
/// saturating cast and a clamp), so an edge listed in the stripes of its lowest and
/// highest y and all between is in the stripe of every y it spans.
#[derive(Debug, Clone)]
struct Stripes {
    y0: f64,
    scale: f64,
    /// Stripe `s` holds `edges[offsets[s]..offsets[s + 1]]`.
    offsets: Vec<u32>,
    /// `(from, to)` vertex indexes into the coordinate buffers.
    edges: Vec<[u32; 2]>,
    /// Cells known inside or outside, checked before the stripes.
    raster: Option<Raster>,
}

impl Stripes {
    #[inline]
    fn stripe(&self, y: f64) -> usize {
        let last = self.offsets.len() - 2;
        (((y - self.y0) * self.scale) as usize).min(last)
    }

    fn build(x: &[f64], y: &[f64], rings: &[(usize, usize)], bounds: [f64; 4]) -> Result<Self> {
        let edges: usize = rings.iter().map(|(lo, hi)| hi - lo).sum();
        if x.len() > u32::MAX as usize {
            return Err(PolymatchError::InvalidLayout(
                "more than 2**32 vertices: no edge index".into(),
            ));
        }
        let height = bounds[3] - bounds[1];
        // About EDGES_PER_STRIPE edges per stripe; fewer stripes where edges are tall
        // (a jagged ring: an edge is listed in every stripe it spans), so that the lists
        // hold at most about four entries per edge.
        let spans: f64 = rings
            .iter()
            .flat_map(|&(lo, hi)| (lo..hi).map(move |i| (i, if i == lo { hi - 1 } else { i - 1 })))
            .map(|(i, j)| (y[i] - y[j]).abs())
            .sum();
        let mut n = (edges / EDGES_PER_STRIPE).max(1);
        if spans > 0.0 && height > 0.0 {
            let cap = 3.0 * edges as f64 * height / spans;
            n = n.min(cap.max(1.0) as usize);
        }
        let scale = if height > 0.0 { n as f64 / height } else { 0.0 };
        let mut s = Stripes {
            y0: bounds[1],
            scale,
            offsets: vec![0; n + 1],
            edges: Vec::new(),
            raster: None,
        };
        let each = |f: &mut dyn FnMut(usize, usize, usize, usize)| {
            for &(lo, hi) in rings {
                let mut prev = hi - 1;
                for i in lo..hi {
                    let (a, b) = (s.stripe(y[prev]), s.stripe(y[i]));
                    f(prev, i, a.min(b), a.max(b));
                    prev = i;
                }
            }
        };
        // Count, then place (a CSR list).
        let mut counts = vec![0u32; n + 1];
        each(&mut |_, _, a, b| {
            for c in &mut counts[a + 1..=b + 1] {
                *c += 1;
            }
        });
        for i in 1..=n {
            counts[i] += counts[i - 1];
        }
        let mut next = counts.clone();
        let mut edges_out = vec![[0u32; 2]; counts[n] as usize];
        each(&mut |from, to, a, b| {
            for stripe in a..=b {
                edges_out[next[stripe] as usize] = [from as u32, to as u32];
                next[stripe] += 1;
            }
        });
        s.offsets = counts;
        s.edges = edges_out;
        // About one raster cell per edge: most cells are then wholly in or out.
        s.raster = Raster::build(x, y, rings, bounds, edges, 0.0, |px, py| {
            s.locate_edges(x, y, px, py)
        });
        Ok(s)
    }

    #[inline]
    fn locate(&self, x: &[f64], y: &[f64], px: f64, py: f64) -> Location {
        if let Some(known) = self.raster.as_ref().and_then(|r| r.known(px, py)) {
            return known;
        }
        self.locate_edges(x, y, px, py)
    }

    /// The location from the edges of the point's stripe (no raster).
    #[inline]
    fn locate_edges(&self, x: &[f64], y: &[f64], px: f64, py: f64) -> Location {
        let s = self.stripe(py);
        let mut c = Crossings::new(px, py);
        for &[a, b] in &self.edges[self.offsets[s] as usize..self.offsets[s + 1] as usize] {
            let (a, b) = (a as usize, b as usize);
            c.edge(x[a], y[a], x[b], y[b]);
            if c.on_edge() {
                return Location::Boundary;
            }
        }
        c.location()
    }

    /// The edges listed in the stripes of `y_lo` to `y_hi` (an edge may come more than
    /// once): every edge with a point whose y is in `[y_lo, y_hi]` is among them.
    #[inline]
    fn edges_between(&self, y_lo: f64, y_hi: f64) -> &[[u32; 2]] {
        let (a, b) = (self.stripe(y_lo), self.stripe(y_hi));
        &self.edges[self.offsets[a] as usize..self.offsets[b + 1] as usize]
    }

    /// The edges of stripe `s`.
    #[inline]
    fn stripe_edges(&self, s: usize) -> &[[u32; 2]] {
        &self.edges[self.offsets[s] as usize..self.offsets[s + 1] as usize]
    }

    /// A lower bound of `|y - py|` for every `y` that maps to a stripe beyond `s` on the
    /// side `up` (the stripe of a value is monotone; the margin covers the rounding of
    /// the boundary and of the stripe's computation).
    #[inline]
    fn gap(&self, s: usize, up: bool, py: f64) -> f64 {
        let edge = if up {
            self.y0 + (s + 1) as f64 / self.scale
        } else {
            self.y0 + s as f64 / self.scale
        };
        let g = if up { edge - py } else { py - edge };
        let margin = 1e-9 * (edge.abs() + py.abs() + 1.0 / self.scale);
        (g - margin).max(0.0)
    }

    fn bytes(&self) -> usize {
        self.offsets.len() * 4
            + self.edges.len() * 8
            + self.raster.as_ref().map_or(0, Raster::bytes)
    }
}

/// A raster over a large part's box whose cells no edge touches are known to lie wholly
/// inside or wholly outside the part: a point in such a cell needs no edge test
/// (interior cells, as tg and the adaptive cell trie use them).
///
/// Why it is exact: the cell of a coordinate is a non-decreasing function of it (as for
/// the stripes), so every point of an edge, being inside the edge's box, falls in a cell
/// between the cells of the box's corners; all those cells are marked *mixed*. An
/// unmarked cell (the set of points that map to it, connected: an interval on each
/// axis) then holds no boundary point, so every point in it has the location of any one
/// of them, which is tested exactly. A cell whose test point does not map back to it
/// (rounding at a cell's edge) stays mixed.
///
/// With `margin > 0` ([`Raster::build`]) the same holds for coordinates known only to
/// within `margin / 2`, as the gnomonic coordinates of spherical parts are
/// ([`crate::shape::spherical`]).
#[derive(Debug, Clone)]
pub(crate) struct Raster {
    grid: Cells,
    /// [`MIXED`], or the location every point of the cell has.
    cells: Vec<u8>,
}

const MIXED: u8 = 0;
const INSIDE: u8 = 1;
const OUTSIDE: u8 = 2;

impl Raster {
    /// The raster of a part (its rings' vertex ranges, its bounds), about `cells` cells,
    /// its unmarked cells located with `locate`; each edge marks the cells of its box
    /// widened by `margin` (0 for exact coordinates).
    pub(crate) fn build(
        x: &[f64],
        y: &[f64],
        rings: &[(usize, usize)],
        b: [f64; 4],
        cells: usize,
        margin: f64,
        locate: impl Fn(f64, f64) -> Location,
    ) -> Option<Self> {
        if !(b[2] > b[0] && b[3] > b[1]) {
            return None;
        }
        let grid = Cells::over(b, cells as f64, 4096);
        let mut r = Raster {
            grid,
            cells: vec![u8::MAX; grid.count()],
        };
        for &(lo, hi) in rings {
            let mut prev = hi - 1;
            for i in lo..hi {
                let edge = [
                    x[prev].min(x[i]) - margin,
                    y[prev].min(y[i]) - margin,
                    x[prev].max(x[i]) + margin,
                    y[prev].max(y[i]) + margin,
                ];
                for c in grid.span(&edge) {
                    r.cells[c] = MIXED;
                }
                prev = i;
            }
        }
        for c in 0..r.cells.len() {
            if r.cells[c] == MIXED {
                continue;
            }
            r.cells[c] = match grid.center(c).map(|(px, py)| locate(px, py)) {
                Some(Location::Inside) => INSIDE,
                Some(Location::Outside) => OUTSIDE,
                // A center that rounds into a neighbour; or on the boundary, which
                // cannot happen: no edge touches the cell.
                _ => MIXED,
            };
        }
        Some(r)
    }

    /// Bytes its cells take.
    pub(crate) fn bytes(&self) -> usize {
        self.cells.len()
    }

    /// The location every point of `(px, py)`'s cell has, if its cell is not mixed.
    #[inline]
    pub(crate) fn known(&self, px: f64, py: f64) -> Option<Location> {
        match self.cells[self.grid.cell(px, py)] {
            INSIDE => Some(Location::Inside),
            OUTSIDE => Some(Location::Outside),
            _ => None,
        }
    }
}

/// The outlines of a polygon set, ready for point-in-polygon tests.
#[derive(Debug)]
pub struct Outlines {
    polygons: Arc<PolygonColumns>,
    parts: Vec<Part>,
    stripes: Vec<Stripes>,
}

impl Outlines {
    /// Prepare the outlines of `polygons`: a [`Part`] for every part with a vertex of
    /// every matchable row, and the edge index of every part with more than
    /// [`STRIPE_MIN_EDGES`] edges.
    ///
    /// # Errors
    /// [`PolymatchError::InvalidLayout`] beyond `u32` vertex indexes.
    ///
    /// # Implementation
    /// O(vertices), the edge indexes built in parallel; no copy of the coordinates.
    pub fn new(polygons: Arc<PolygonColumns>) -> Result<Self> {
        let (x, y) = (polygons.x().as_ref(), polygons.y().as_ref());
        let geoms = polygons.geom_offsets();
        let part_offsets = polygons.part_offsets();
        let ring_offsets = polygons.ring_offsets();
        let matchable = polygons.matchable();
        let mut parts = Vec::new();
        for row in 0..polygons.len() {
            if !matchable.is_valid(row) {
                continue;
            }
            for part in geoms[row] as usize..geoms[row + 1] as usize {
                let rings = (part_offsets[part] as usize, part_offsets[part + 1] as usize);
                let (lo, hi) = (
                    ring_offsets[rings.0] as usize,
                    ring_offsets[rings.1] as usize,
                );
                if lo == hi {
                    continue; // an EMPTY part
                }
                let b = vertex_bounds(x, y, lo, hi);
                parts.push(Part {
                    row: row as u32,
                    rings,
                    bounds: b,
                    vertices: (lo, hi),
                    stripes: None,
                });
            }
        }
        let large: Vec<usize> = (0..parts.len())
            .filter(|&j| {
                let p = &parts[j];
                ring_offsets[p.rings.1] - ring_offsets[p.rings.0] > STRIPE_MIN_EDGES as i64
            })
            .collect();
        let stripes = large
            .par_iter()
            .map(|&j| {
                let p = &parts[j];
                let rings: Vec<(usize, usize)> = (p.rings.0..p.rings.1)
                    .map(|k| (ring_offsets[k] as usize, ring_offsets[k + 1] as usize))
                    .filter(|(lo, hi)| hi > lo)
                    .collect();
                Stripes::build(x, y, &rings, p.bounds)
            })
            .collect::<Result<Vec<_>>>()?;
        for (s, &j) in large.iter().enumerate() {
            parts[j].stripes = Some(s as u32);
        }
        Ok(Self {
            polygons,
            parts,
            stripes,
        })
    }

    /// The polygons these are the outlines of.
    pub fn polygons(&self) -> &Arc<PolygonColumns> {
        &self.polygons
    }

    /// Every part, polygon rows ascending.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Bytes the edge indexes take (the coordinates are the polygon columns').
    pub fn index_bytes(&self) -> usize {
        self.stripes.iter().map(Stripes::bytes).sum::<usize>()
            + self.parts.len() * std::mem::size_of::<Part>()
    }

    /// Where `(px, py)` is relative to part `part` (exact; see [`crate::shape::locate`]).
    #[inline]
    pub fn locate(&self, part: usize, px: f64, py: f64) -> Location {
        let p = &self.parts[part];
        let (x, y) = (self.polygons.x().as_ref(), self.polygons.y().as_ref());
        match p.stripes {
            Some(s) => self.stripes[s as usize].locate(x, y, px, py),
            // One ring (the common case): its vertices are the part's, no offsets read.
            None if p.rings.1 - p.rings.0 == 1 => {
                let (lo, hi) = p.vertices;
                let mut c = Crossings::new(px, py);
                c.ring(&x[lo..hi], &y[lo..hi]);
                c.location()
            }
            None => {
                let ring_offsets = self.polygons.ring_offsets();
                let rings = (p.rings.0..p.rings.1)
                    .map(|k| (ring_offsets[k] as usize, ring_offsets[k + 1] as usize));
                locate_part(x, y, rings, px, py)
            }
        }
    }

    /// The parts of polygon `row`: a range of [`Outlines::parts`] (empty if it has none).
    pub fn parts_of(&self, row: u32) -> std::ops::Range<usize> {
        let lo = self.parts.partition_point(|p| p.row < row);
        let hi = lo + self.parts[lo..].partition_point(|p| p.row == row);
        lo..hi
    }

    /// The vertex ranges of the rings of `part`.
    fn rings_of(&self, part: &Part) -> impl Iterator<Item = (usize, usize)> + '_ {
        let ring_offsets = self.polygons.ring_offsets();
        (part.rings.0..part.rings.1)
            .map(move |k| (ring_offsets[k] as usize, ring_offsets[k + 1] as usize))
    }

    /// The vertex ranges `lo..hi` of the rings of part `part` (each ring open: its
    /// closing edge joins `hi - 1` to `lo`).
    pub fn ring_ranges(&self, part: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.rings_of(&self.parts[part])
    }

    /// Whether some edge of `part` is at a distance `< test.radius()` from `(px, py)`,
    /// exactly ([`EdgeWithin`]). With an edge index, only the stripes within the radius
    /// of the point's y are read.
    #[inline]
    pub fn edge_within(&self, part: usize, px: f64, py: f64, test: &EdgeWithin) -> bool {
        let p = &self.parts[part];
        let (x, y) = (self.polygons.x().as_ref(), self.polygons.y().as_ref());
        if let Some(s) = p.stripes {
            let d = test.radius();
            return self.stripes[s as usize]
                .edges_between(py - d, py + d)
                .iter()
                .any(|&[a, b]| {
                    let (a, b) = (a as usize, b as usize);
                    test.test(px, py, x[a], y[a], x[b], y[b])
                });
        }
        self.rings_of(p)
            .any(|(lo, hi)| self.ring_within(lo, hi, px, py, test))
    }

    /// The smallest [`segment_squared`] from `(px, py)` to the edges of the ring of
    /// vertices `lo..hi` (closing edge included; `inf` for an empty range).
    #[inline]
    pub fn ring_squared(&self, lo: usize, hi: usize, px: f64, py: f64) -> f64 {
        if lo >= hi {
            return f64::INFINITY;
        }
        let (x, y) = (&self.polygons.x()[lo..hi], &self.polygons.y()[lo..hi]);
        ring_squared(x, y, px, py)
    }

    /// Whether an edge of the ring of vertices `lo..hi` (closing edge included) is at a
    /// distance `< test.radius()` from `(px, py)`, exactly.
    #[inline]
    pub fn ring_within(&self, lo: usize, hi: usize, px: f64, py: f64, test: &EdgeWithin) -> bool {
        if lo >= hi {
            return false;
        }
        let (x, y) = (&self.polygons.x()[lo..hi], &self.polygons.y()[lo..hi]);
        let (mut ax, mut ay) = (x[x.len() - 1], y[y.len() - 1]);
        for (&bx, &by) in x.iter().zip(y) {
            if test.test(px, py, ax, ay, bx, by) {
                return true;
            }
            (ax, ay) = (bx, by);
        }
        false
    }

    /// SPEC.md's squared distance from `(px, py)` to part `part` in float64: 0 where the
    /// part covers the point, else the smallest [`segment_squared`] over its edges.
    ///
    /// With an edge index, the stripes are read outwards from the point's y and the
    /// search stops where no edge in the stripes left can have a float value below the
    /// smallest found (the value is the same as the edge-by-edge minimum).
    pub fn part_squared(&self, part: usize, px: f64, py: f64) -> f64 {
        let p = &self.parts[part];
        let (x, y) = (self.polygons.x().as_ref(), self.polygons.y().as_ref());
        let edge = |best: f64, &[a, b]: &[u32; 2]| {
            let (a, b) = (a as usize, b as usize);
            best.min(segment_squared(px, py, x[a], y[a], x[b], y[b]))
        };
        let Some(s) = p.stripes else {
            // A point outside the part's box is outside the part: only the distance
            // counts.
            if box_holds(&p.bounds, px, py) && self.locate(part, px, py) != Location::Outside {
                return 0.0;
            }
            return self
                .rings_of(p)
                .map(|(lo, hi)| self.ring_squared(lo, hi, px, py))
                .fold(f64::INFINITY, f64::min);
        };
        if self.locate(part, px, py) != Location::Outside {
            return 0.0;
        }
        let stripes = &self.stripes[s as usize];
        let last = stripes.offsets.len() - 2;
        let s0 = stripes.stripe(py);
        let mut best = stripes.stripe_edges(s0).iter().fold(f64::INFINITY, edge);
        // Every edge's float value is within 64u F^2 below its true one, F the distance
        // to the farthest corner of the part's box (distance.rs).
        let slack = 64.0
            * f64::EPSILON
            * 0.5
            * (1.0 + 4.0 * f64::EPSILON)
            * farthest_squared(&p.bounds, px, py);
        let (mut lo, mut hi) = (s0, s0);
        loop {
            let down = (lo > 0).then(|| stripes.gap(lo, false, py));
            let up = (hi < last).then(|| stripes.gap(hi, true, py));
            let next_up = match (down, up) {
                (None, None) => break,
                (Some(d), Some(u)) => u <= d,
                (None, Some(_)) => true,
                (Some(_), None) => false,
            };
            let g = if next_up { up } else { down }.unwrap_or(0.0);
            if g * g * (1.0 - 4.0 * f64::EPSILON) - slack > best {
                break;
            }
            let edges = if next_up {
                hi += 1;
                stripes.stripe_edges(hi)
            } else {
                lo -= 1;
                stripes.stripe_edges(lo)
            };
            best = edges.iter().fold(best, edge);
        }
        best
    }

    /// Where `(px, py)` is relative to part `part`, edge by edge (no edge index): the
    /// reference the indexed path is tested against.
    pub fn locate_unindexed(&self, part: usize, px: f64, py: f64) -> Location {
        let p = &self.parts[part];
        let ring_offsets = self.polygons.ring_offsets();
        let rings = (p.rings.0..p.rings.1)
            .map(|k| (ring_offsets[k] as usize, ring_offsets[k + 1] as usize));
        locate_part(self.polygons.x(), self.polygons.y(), rings, px, py)
    }
}
