//! The shape index: the parts of the polygons by rank, in a uniform grid of cell lists
//! over their boxes, for the rules that ask where a point is relative to a polygon's
//! shape (`contains`, `covers`).
//!
//! Every cell lists the parts whose box overlaps it, in rank order (the order of the
//! [`SpatialIndex`] it was built from: area, a column, either direction). A query reads
//! the list of the point's cell, skips parts whose box does not hold the point, and
//! tests the rest exactly; the first part that accepts the point belongs to the best
//! candidate, so the smallest-area match stops at its first hit (the min-rank early
//! exit of the center index, here for free). The `k` best are the first `k` distinct
//! polygons that accept.
//!
//! The cell of a coordinate is a non-decreasing function of it (see
//! [`Cells`]), so a part listed in the cells of its box's corners and all between
//! is listed in the cell of every point its box holds: no candidate is missed.

use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{PolymatchError, Result};
use crate::index::{Order, SpatialIndex, NO_MATCH};
use crate::shape::arcs::cap_box;
use crate::shape::cells::Cells;
use crate::shape::distance::box_squared;
use crate::shape::locate::{Crossings, Location};
use crate::shape::outlines::{farthest_squared, Outlines};
use crate::shape::rule::{Candidate, Rule};
use crate::shape::spherical::{frames, ArcStripes, Frame, SphericalParts};
use crate::sphere::Edges;

/// Cell-list entries the grid may hold per part (beyond one per cell): a finer grid is
/// coarsened until it fits.
const ENTRIES_PER_PART: usize = 8;

/// Which polygons a shape rule accepts (the data form of the [`Rule`] types, which
/// the walks are generic over).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeRule {
    /// The point is in the polygon's interior (GEOS `contains`).
    Contains,
    /// The point is in the interior or on the boundary (GEOS `covers`).
    Covers,
    /// The point is at a distance `< max_dist` from the polygon (0 inside it).
    DWithin,
}

/// A uniform grid over the parts' boxes ([`Cells`]), each cell listing the parts
/// whose box it overlaps.
#[derive(Debug, Clone)]
struct Grid {
    cells: Cells,
    /// Cell `c` lists `entries[offsets[c]..offsets[c + 1]]`, increasing.
    offsets: Vec<u32>,
    /// Positions into the index's parts (rank order).
    entries: Vec<u32>,
}

impl Grid {
    fn build(boxes: &[[f64; 4]]) -> Result<Self> {
        let mut b = [f64::INFINITY, f64::INFINITY, -f64::INFINITY, -f64::INFINITY];
        for p in boxes {
            b[0] = b[0].min(p[0]);
            b[1] = b[1].min(p[1]);
            b[2] = b[2].max(p[2]);
            b[3] = b[3].max(p[3]);
        }
        if boxes.is_empty() {
            b = [0.0, 0.0, 0.0, 0.0];
        }
        // About one cell per part, square cells over the bounds; then coarser while the
        // lists would hold too many entries (large parts span many cells).
        let mut target = boxes.len().max(1) as f64;
        loop {
            let cells = Cells::over(b, target, 1 << 15);
            let total: usize = boxes.par_iter().map(|p| cells.span_len(p)).sum();
            let budget = ENTRIES_PER_PART * boxes.len() + cells.count();
            if total > budget && cells.count() > 1 {
                target /= 4.0;
                continue;
            }
            if total > u32::MAX as usize || boxes.len() > u32::MAX as usize {
                return Err(PolymatchError::InvalidLayout(
                    "too many parts for one shape index".into(),
                ));
            }
            let mut counts = vec![0u32; cells.count() + 1];
            for p in boxes {
                for c in cells.span(p) {
                    counts[c + 1] += 1;
                }
            }
            for i in 1..counts.len() {
                counts[i] += counts[i - 1];
            }
            let mut next = counts.clone();
            let mut entries = vec![0u32; total];
            for (pos, p) in boxes.iter().enumerate() {
                for c in cells.span(p) {
                    entries[next[c] as usize] = pos as u32;
                    next[c] += 1;
                }
            }
            return Ok(Grid {
                cells,
                offsets: counts,
                entries,
            });
        }
    }
}

/// Scratch space of [`ShapeIndex::nearest_k`], reused across queries.
#[derive(Debug, Default)]
pub struct ShapeNearScratch {
    seen: Vec<u32>,
    ring: Vec<(f64, u32)>,
}

/// One listed part: what a query reads, stored in the cell lists themselves so that a
/// cell's parts are one contiguous read (the rank order of the parts is not their
/// spatial order: a list of positions into one array cost a cache miss per part).
///
/// 32 bytes, two to a cache line: the widened views list each part in about nine
/// cells, and their lists outgrow the cache (docs/benchmarks.md).
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Its box, rounded outwards to `f32`: a box that holds the part's, so every filter
    /// on it stays exact (a point outside it is outside the part; its distance is a
    /// lower bound of the part's; its farthest corner is at least as far).
    bounds: [f32; 4],
    rank: u32,
    part: u32,
    /// A part of one ring without an edge index is tested from here: its vertices are
    /// `first..first + count` of the coordinate buffers (`count` 0: ask the outlines).
    first: u32,
    count: u16,
    /// Its polygon has no other part (the test's distance is the polygon's: no read of
    /// the per-rank part ranges, a cache miss per point).
    single: bool,
}

impl Slot {
    /// The slot of `part` (at `rank`) with the box `bounds`; `ring`: its vertex range
    /// if it is one ring without an edge index.
    fn new(
        bounds: &[f64; 4],
        rank: u32,
        part: u32,
        ring: Option<(usize, usize)>,
        single: bool,
    ) -> Self {
        let (first, count) = match ring {
            Some((lo, hi)) if hi <= u32::MAX as usize && hi - lo <= u16::MAX as usize => {
                (lo as u32, (hi - lo) as u16)
            }
            _ => (0, 0),
        };
        Self {
            bounds: outwards(bounds),
            rank,
            part,
            first,
            count,
            single,
        }
    }

    /// Its box (see [`Slot::bounds`]), exactly as stored.
    #[inline(always)]
    fn bounds(&self) -> [f64; 4] {
        self.bounds.map(f64::from)
    }

    /// Its vertex range, if it is tested from the slot.
    #[inline(always)]
    fn ring(&self) -> Option<(usize, usize)> {
        (self.count > 0).then(|| {
            let lo = self.first as usize;
            (lo, lo + self.count as usize)
        })
    }
}

const _: () = assert!(std::mem::size_of::<Slot>() == 32);

/// `b` (`[xmin, ymin, xmax, ymax]`) rounded outwards to `f32`: each minimum to the
/// largest `f32` at most it, each maximum to the smallest at least it (overflow goes to
/// infinity, NaN stays NaN).
fn outwards(b: &[f64; 4]) -> [f32; 4] {
    let down = |v: f64| {
        let r = v as f32;
        if f64::from(r) > v {
            r.next_down()
        } else {
            r
        }
    };
    let up = |v: f64| {
        let r = v as f32;
        if f64::from(r) < v {
            r.next_up()
        } else {
            r
        }
    };
    [down(b[0]), down(b[1]), up(b[2]), up(b[3])]
}

/// The parts of a polygon set in rank order, in a grid; see the module docs.
#[derive(Debug, Clone)]
pub struct ShapeIndex {
    outlines: Arc<Outlines>,
    order: Order,
    /// The metric of the center index it was ranked from (areas in its units).
    metric: crate::sphere::Metric,
    /// The grid's entries as slots: cell `c` lists `slots[grid.offsets[c]..]`, rank
    /// order within a cell.
    slots: Vec<Slot>,
    /// Every part once, in rank order: what a query reaching many cells scans instead.
    by_rank: Arc<Vec<Slot>>,
    /// The largest squared diagonal of a part's box.
    max_extent2: f64,
    /// Per rank: the polygon row and its area.
    rank_row: Arc<Vec<u32>>,
    rank_area: Arc<Vec<f64>>,
    /// Per rank: its polygon's parts, `first..first + count` of the outlines' parts (a
    /// lookup the distance of every output row makes: a binary search over the parts
    /// cost a cache miss per step).
    rank_parts: Arc<Vec<(u32, u32)>>,
    grid: Grid,
    /// The radius the cell lists are widened by: 0 for the index itself, `d` for a
    /// view from [`ShapeIndex::for_radius`] (each part listed in the cells its box
    /// widened by `d` overlaps, so a query at radius `d` reads one cell).
    widened: f64,
    /// Views widened by a radius, built on first use and kept (the most recent few).
    views: Arc<std::sync::Mutex<Vec<Arc<ShapeIndex>>>>,
    /// On the sphere: the vertices' unit vectors, computed on first use (`dwithin`) and
    /// shared with the views.
    units: Arc<std::sync::OnceLock<Vec<[f64; 3]>>>,
    /// With spherical edges: each part's hemisphere (by position in the outlines'
    /// parts) and the edge indexes of the large ones; empty for planar edges.
    frames: Arc<(Vec<Frame>, Vec<ArcStripes>)>,
}

/// The unit vectors ([`crate::sphere::unit`]) of the polygon columns' vertices.
fn unit_vectors(outlines: &Outlines) -> Vec<[f64; 3]> {
    let columns = outlines.polygons();
    let (x, y) = (columns.x().as_ref(), columns.y().as_ref());
    x.par_iter()
        .zip(y.par_iter())
        .with_min_len(1 << 14)
        .map(|(&lon, &lat)| crate::sphere::unit(lon, lat))
        .collect()
}

/// Radii whose widened views an index keeps.
const VIEWS: usize = 4;

impl ShapeIndex {
    /// The shape index of `outlines` ranked as `ranked` is (the same polygon set's center
    /// index, in the order the rank rule asks for).
    ///
    /// # Errors
    /// [`PolymatchError::InvalidLayout`] if `ranked` indexes another number of polygons,
    /// or the grid would be too large.
    ///
    /// # Implementation
    /// O(parts log parts + cell entries).
    pub fn new(outlines: Arc<Outlines>, ranked: &SpatialIndex) -> Result<Self> {
        let rows = outlines.polygons().len();
        if ranked.rows() != rows {
            return Err(PolymatchError::InvalidLayout(format!(
                "the ranked index has {} polygons, the outlines {rows}",
                ranked.rows()
            )));
        }
        let matchable = ranked.matchable() as u32;
        let mut rank_of_row = vec![NO_MATCH; rows];
        let rank_row: Vec<u32> = (0..matchable).map(|r| ranked.row_of(r)).collect();
        let rank_area: Vec<f64> = (0..matchable).map(|r| ranked.area_of(r)).collect();
        for (r, &row) in rank_row.iter().enumerate() {
            rank_of_row[row as usize] = r as u32;
        }
        let parts = outlines.parts();
        let mut rank_parts = vec![(0u32, 0u32); rank_row.len()];
        let mut j = 0;
        while j < parts.len() {
            let row = parts[j].row;
            let first = j;
            while j < parts.len() && parts[j].row == row {
                j += 1;
            }
            let rank = rank_of_row[row as usize];
            if rank != NO_MATCH {
                rank_parts[rank as usize] = (first as u32, (j - first) as u32);
            }
        }
        let units: Arc<std::sync::OnceLock<Vec<[f64; 3]>>> = Arc::default();
        let spherical = outlines.polygons().edges() == Edges::Spherical;
        let frames = if spherical {
            outlines.polygons().edges().check(ranked.metric())?;
            let u = units.get_or_init(|| unit_vectors(&outlines));
            frames(&outlines, u)?
        } else {
            (Vec::new(), Vec::new())
        };
        let mut by_rank: Vec<(u32, u32)> = parts
            .iter()
            .enumerate()
            .filter(|(_, p)| rank_of_row[p.row as usize] != NO_MATCH)
            .map(|(j, p)| (rank_of_row[p.row as usize], j as u32))
            .collect();
        by_rank.par_sort_unstable();
        // With spherical edges a part's arcs can leave its vertices' box (towards the
        // pole): its box is then its cap's (every point of its arcs).
        let boxes: Vec<[f64; 4]> = match units.get() {
            Some(u) if spherical => by_rank
                .par_iter()
                .map(|&(_, j)| {
                    let p = &parts[j as usize];
                    cap_box(&u[p.vertices.0..p.vertices.1], &p.bounds, 0.0)
                })
                .collect(),
            _ => by_rank
                .iter()
                .map(|&(_, j)| parts[j as usize].bounds)
                .collect(),
        };
        let mut grid = Grid::build(&boxes)?;
        let by_position: Vec<Slot> = by_rank
            .iter()
            .zip(&boxes)
            .map(|(&(rank, part), &bounds)| {
                Slot::new(
                    &bounds,
                    rank,
                    part,
                    parts[part as usize].simple_ring(),
                    rank_parts[rank as usize].1 == 1,
                )
            })
            .collect();
        let slots = std::mem::take(&mut grid.entries)
            .into_par_iter()
            .map(|pos| by_position[pos as usize])
            .collect();
        let max_extent2 = boxes
            .iter()
            .map(|b| farthest_squared(b, b[0], b[1]))
            .fold(0.0, f64::max);
        Ok(Self {
            order: ranked.order().clone(),
            metric: ranked.metric(),
            slots,
            by_rank: Arc::new(by_position),
            max_extent2,
            rank_row: Arc::new(rank_row),
            rank_area: Arc::new(rank_area),
            rank_parts: Arc::new(rank_parts),
            widened: 0.0,
            views: Arc::default(),
            units,
            frames: Arc::new(frames),
            grid,
            outlines,
        })
    }

    /// This index with cell lists widened by `radius` (finite, `> 0`): every part is
    /// listed in the cells its box, widened by `radius` and rounded outwards, overlaps,
    /// so every part within `radius` of a point is in that point's cell, and a radius
    /// query reads one list, in rank order, as `contains`/`covers` do. Built on first
    /// use (about what the index's own lists cost) and kept for the most recent radii;
    /// the outlines, parts and ranks are shared, not copied.
    ///
    /// On the sphere `radius` is metres: a part's box is then [`cap_box`]'s (every point
    /// within `radius` of its arcs, or in its vertices' box), and the view's slots carry
    /// that box, so the box filter of [`SphereDWithin`](crate::shape::rule::SphereDWithin)
    /// is "the box holds the point".
    ///
    /// # Errors
    /// [`PolymatchError::InvalidLayout`] if the lists would be too large.
    pub fn for_radius(&self, radius: f64) -> Result<Arc<ShapeIndex>> {
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = views
            .iter()
            .find(|v| v.widened.to_bits() == radius.to_bits())
        {
            return Ok(v.clone());
        }
        let sphere = self.metric == crate::sphere::Metric::Sphere;
        let boxes: Vec<[f64; 4]> = if sphere {
            let units = self.units();
            let parts = self.outlines.parts();
            self.by_rank
                .par_iter()
                .map(|slot| {
                    let p = &parts[slot.part as usize];
                    cap_box(&units[p.vertices.0..p.vertices.1], &p.bounds, radius)
                })
                .collect()
        } else {
            let parts = self.outlines.parts();
            self.by_rank
                .iter()
                .map(|slot| {
                    // The part's own box (the slot's is rounded outwards).
                    let b = parts[slot.part as usize].bounds;
                    [
                        (b[0] - radius).next_down(),
                        (b[1] - radius).next_down(),
                        (b[2] + radius).next_up(),
                        (b[3] + radius).next_up(),
                    ]
                })
                .collect()
        };
        let mut grid = Grid::build(&boxes)?;
        // On the sphere the slots carry the widened boxes (the rule's box filter).
        let by_rank = if sphere {
            Arc::new(
                self.by_rank
                    .iter()
                    .zip(&boxes)
                    .map(|(slot, b)| Slot {
                        bounds: outwards(b),
                        ..*slot
                    })
                    .collect(),
            )
        } else {
            self.by_rank.clone()
        };
        let slots = std::mem::take(&mut grid.entries)
            .into_par_iter()
            .map(|pos| by_rank[pos as usize])
            .collect();
        let view = Arc::new(ShapeIndex {
            outlines: self.outlines.clone(),
            order: self.order.clone(),
            metric: self.metric,
            slots,
            by_rank,
            max_extent2: self.max_extent2,
            rank_row: self.rank_row.clone(),
            rank_area: self.rank_area.clone(),
            rank_parts: self.rank_parts.clone(),
            grid,
            widened: radius,
            views: Arc::default(),
            units: self.units.clone(),
            frames: self.frames.clone(),
        });
        if views.len() == VIEWS {
            views.remove(0);
        }
        views.push(view.clone());
        Ok(view)
    }

    /// The unit vectors ([`crate::sphere::unit`]) of the polygon columns' vertices, by
    /// vertex position: computed on first use, then shared by the index and its views.
    pub fn units(&self) -> &[[f64; 3]] {
        self.units.get_or_init(|| unit_vectors(&self.outlines))
    }

    /// With spherical edges (GeoParquet's `"edges": "spherical"`), what the rules read
    /// to locate a point in a part ([`SphericalParts`]); `None` for planar edges.
    pub fn spherical(&self) -> Option<SphericalParts<'_>> {
        (self.outlines.polygons().edges() == Edges::Spherical).then(|| SphericalParts {
            units: self.units(),
            frames: &self.frames.0,
            stripes: &self.frames.1,
        })
    }

    /// The number of indexed parts.
    pub fn parts(&self) -> usize {
        self.by_rank.len()
    }

    /// The rank order.
    pub fn order(&self) -> &Order {
        &self.order
    }

    /// The metric of the center index it was ranked from: on the sphere, areas are
    /// square metres (the outlines' coordinates stay longitude/latitude degrees).
    pub fn metric(&self) -> crate::sphere::Metric {
        self.metric
    }

    /// The outlines.
    pub fn outlines(&self) -> &Arc<Outlines> {
        &self.outlines
    }

    /// The polygon row of a rank.
    #[inline]
    pub fn row_of(&self, rank: u32) -> u32 {
        self.rank_row[rank as usize]
    }

    /// The area of a rank's polygon.
    #[inline]
    pub fn area_of(&self, rank: u32) -> f64 {
        self.rank_area[rank as usize]
    }

    /// The bounds of every part's box (`None`: no part).
    pub fn bounds(&self) -> Option<[f64; 4]> {
        (!self.by_rank.is_empty()).then(|| self.grid.cells.bounds())
    }

    /// Bytes of the grid and the parts' boxes (besides the outlines').
    pub fn index_bytes(&self) -> usize {
        self.grid.offsets.len() * 4
            + (self.slots.len() + self.by_rank.len()) * std::mem::size_of::<Slot>()
            + self.rank_parts.len() * 8
            + self.frames.0.len() * std::mem::size_of::<Frame>()
            + self.frames.1.iter().map(ArcStripes::bytes).sum::<usize>()
    }

    /// Whether `slot`'s part accepts `(px, py)` under `rule`.
    #[inline(always)]
    fn accepts<R: Rule>(&self, rule: R, slot: &Slot, px: f64, py: f64) -> bool {
        self.accepts_measured(rule, slot, px, py).0
    }

    /// [`ShapeIndex::accepts`], and the part's squared distance where the rule's test
    /// computed it (else NaN; see [`Rule::accepts_measured`]).
    #[inline(always)]
    fn accepts_measured<R: Rule>(&self, rule: R, slot: &Slot, px: f64, py: f64) -> (bool, f64) {
        let bounds = slot.bounds();
        let ring = slot.ring();
        let part = Candidate {
            part: slot.part as usize,
            ring,
            bounds: &bounds,
        };
        rule.accepts_measured(&self.outlines, &part, px, py, || {
            if let Some((lo, hi)) = ring {
                // One ring, no edge index: its vertices straight from the buffers.
                let columns = self.outlines.polygons();
                let mut c = Crossings::new(px, py);
                c.ring(&columns.x()[lo..hi], &columns.y()[lo..hi]);
                c.location()
            } else {
                self.outlines.locate(slot.part as usize, px, py)
            }
        })
    }

    /// The cells a query of `rule` at `(px, py)` reads, as column and row ranges, or
    /// `None` when it would read more than a quarter of the grid (then the parts are
    /// scanned in rank order instead). A point with a NaN or infinite coordinate reads
    /// nothing (it is no polygon's candidate).
    #[inline]
    fn reach<R: Rule>(&self, rule: &R, px: f64, py: f64) -> Option<[usize; 4]> {
        if !(px.is_finite() && py.is_finite()) {
            return Some([1, 1, 0, 0]); // empty
        }
        let r = rule.reach();
        // A view widened by the rule's radius lists every part within it in one cell.
        if r == 0.0 || r == self.widened {
            let (x0, y0) = self.grid.cells.origin();
            if !(px >= x0 && py >= y0) {
                return Some([1, 1, 0, 0]);
            }
            let (cx, cy) = self.grid.cells.col_row(px, py);
            return Some([cx, cy, cx, cy]);
        }
        // Rounded outwards: the true square [p - r, p + r] is inside.
        let (cx0, cy0) = self
            .grid
            .cells
            .col_row((px - r).next_down(), (py - r).next_down());
        let (cx1, cy1) = self
            .grid
            .cells
            .col_row((px + r).next_up(), (py + r).next_up());
        let cells = (cx1 - cx0 + 1) * (cy1 - cy0 + 1);
        (cells <= 4 || cells * 4 <= self.grid.cells.count()).then_some([cx0, cy0, cx1, cy1])
    }

    /// The slots of the cells `[cx0, cy0, cx1, cy1]`, cell by cell (a part spanning
    /// several cells comes once per cell).
    #[inline]
    fn lists(&self, [cx0, cy0, cx1, cy1]: [usize; 4]) -> impl Iterator<Item = &[Slot]> + '_ {
        let (nx, _) = self.grid.cells.dims();
        (cy0..=cy1).flat_map(move |cy| {
            (cx0..=cx1).map(move |cx| {
                let c = cy * nx + cx;
                &self.slots[self.grid.offsets[c] as usize..self.grid.offsets[c + 1] as usize]
            })
        })
    }

    /// The `k` best ranks (rank order) of the polygons that accept `(px, py)` under
    /// `rule`, into `out` (cleared first).
    ///
    /// Each cell lists its parts in rank order, so the scan of a cell stops at the
    /// first rank no better than the `k`-th found: the smallest-area match reads its
    /// cell up to its first hit.
    pub fn best_k<R: Rule>(&self, rule: R, px: f64, py: f64, k: usize, out: &mut Vec<u32>) {
        self.best_k_measured(rule, px, py, k, out, &mut Vec::new());
    }

    /// [`ShapeIndex::best_k`], and in `measured` (cleared first, as long as `out`) each
    /// one's squared distance where the rule's test computed it on the way and the
    /// polygon has one part, else NaN (as [`ShapeIndex::best_measured`]): the output's
    /// `distance` column then needs no second pass over those outlines.
    #[inline]
    pub fn best_k_measured<R: Rule>(
        &self,
        rule: R,
        px: f64,
        py: f64,
        k: usize,
        out: &mut Vec<u32>,
        measured: &mut Vec<f64>,
    ) {
        out.clear();
        measured.clear();
        let mut scan = |slots: &[Slot]| {
            for slot in slots {
                let rank = slot.rank;
                if out.len() == k && rank >= out[k - 1] {
                    break;
                }
                if out.contains(&rank) || !rule.may_hold(&slot.bounds(), px, py) {
                    continue;
                }
                let (yes, s) = self.accepts_measured(rule, slot, px, py);
                if !yes {
                    continue;
                }
                let at = out.partition_point(|&r| r < rank);
                out.insert(at, rank);
                // Several parts: the polygon's distance is their minimum.
                measured.insert(at, if slot.single { s } else { f64::NAN });
                out.truncate(k);
                measured.truncate(k);
            }
        };
        match self.reach(&rule, px, py) {
            Some(range) => self.lists(range).for_each(&mut scan),
            None => scan(&self.by_rank),
        }
    }

    /// The best rank that accepts `(px, py)` under `rule`, or [`NO_MATCH`].
    ///
    /// Reading one cell, its list is in rank order: the first part that accepts is the
    /// answer. Reading several (a radius), the parts whose box passes the rule's box
    /// filter are gathered from all of them first and tested in rank order, so the
    /// exact tests stop at the best candidate instead of testing the best of each cell.
    #[inline]
    pub fn best<R: Rule>(&self, rule: R, px: f64, py: f64) -> u32 {
        self.best_measured(rule, px, py).0
    }

    /// [`ShapeIndex::best`], and the best polygon's squared distance (SPEC.md's float
    /// value) where the rule's test computed it on the way and the polygon has one part
    /// (else NaN: ask [`ShapeIndex::squared_distance`]).
    #[inline]
    pub fn best_measured<R: Rule>(&self, rule: R, px: f64, py: f64) -> (u32, f64) {
        let mut best = NO_MATCH;
        let mut measured = f64::NAN;
        let mut scan = |slots: &[Slot]| {
            for slot in slots {
                if slot.rank >= best {
                    break;
                }
                if rule.may_hold(&slot.bounds(), px, py) {
                    let (yes, s) = self.accepts_measured(rule, slot, px, py);
                    if yes {
                        best = slot.rank;
                        // Several parts: the polygon's distance is their minimum.
                        measured = if slot.single { s } else { f64::NAN };
                        break;
                    }
                }
            }
        };
        match self.reach(&rule, px, py) {
            Some([cx, cy, x1, y1]) if cx == x1 && cy == y1 => {
                self.lists([cx, cy, cx, cy]).for_each(&mut scan)
            }
            Some(range) => {
                const GATHER: usize = 64;
                let mut gathered = [(0u32, 0u32); GATHER];
                let mut n = 0;
                let (nx, _) = self.grid.cells.dims();
                'cells: for cy in range[1]..=range[3] {
                    for cx in range[0]..=range[2] {
                        let c = cy * nx + cx;
                        let (lo, hi) = (self.grid.offsets[c], self.grid.offsets[c + 1]);
                        for pos in lo..hi {
                            let slot = &self.slots[pos as usize];
                            if rule.may_hold(&slot.bounds(), px, py) {
                                if n == GATHER {
                                    break 'cells;
                                }
                                gathered[n] = (slot.rank, pos);
                                n += 1;
                            }
                        }
                    }
                }
                if n == GATHER {
                    // Too many to gather: cell by cell.
                    self.lists(range).for_each(scan);
                } else {
                    let gathered = &mut gathered[..n];
                    gathered.sort_unstable();
                    for &(rank, pos) in gathered.iter() {
                        let slot = &self.slots[pos as usize];
                        let (yes, s) = self.accepts_measured(rule, slot, px, py);
                        if yes {
                            best = rank;
                            measured = if slot.single { s } else { f64::NAN };
                            break;
                        }
                    }
                }
            }
            None => scan(&self.by_rank),
        }
        (best, measured)
    }

    /// Every rank that accepts `(px, py)` under `rule`, into `out` (cleared first),
    /// increasing.
    pub fn candidates<R: Rule>(&self, rule: R, px: f64, py: f64, out: &mut Vec<u32>) {
        out.clear();
        let scan = |slots: &[Slot], out: &mut Vec<u32>| {
            for slot in slots {
                if out.last() == Some(&slot.rank) {
                    continue; // another part of a polygon that accepted already
                }
                if rule.may_hold(&slot.bounds(), px, py) && self.accepts(rule, slot, px, py) {
                    out.push(slot.rank);
                }
            }
        };
        match self.reach(&rule, px, py) {
            Some(range) => self.lists(range).for_each(|slots| scan(slots, out)),
            None => scan(&self.by_rank, out),
        }
        out.sort_unstable();
        out.dedup();
    }

    /// Every polygon that accepts `(px, py)` under `rule`, as `(key, row, rank)` with
    /// its distance key ([`ShapeIndex::distance_key`]), into `out` (cleared first; in no
    /// particular order). A one-part polygon's key comes from the test that accepted it
    /// (one pass over its edges), a polygon of several parts is measured over all.
    pub fn candidates_keyed<R: Rule>(
        &self,
        rule: R,
        px: f64,
        py: f64,
        out: &mut Vec<(f64, u32, u32)>,
    ) {
        out.clear();
        let mut scan = |slots: &[Slot]| {
            for slot in slots {
                if !rule.may_hold(&slot.bounds(), px, py) {
                    continue;
                }
                let rank = slot.rank;
                if slot.single {
                    let (yes, s) = self.accepts_measured(rule, slot, px, py);
                    if yes {
                        let s = if s.is_nan() {
                            self.distance_key(&rule, rank, px, py)
                        } else {
                            s
                        };
                        out.push((s, self.row_of(rank), rank));
                    }
                } else if !out.iter().any(|o| o.2 == rank) && self.accepts(rule, slot, px, py) {
                    out.push((
                        self.distance_key(&rule, rank, px, py),
                        self.row_of(rank),
                        rank,
                    ));
                }
            }
        };
        match self.reach(&rule, px, py) {
            Some(range) => self.lists(range).for_each(&mut scan),
            None => scan(&self.by_rank),
        }
        // A one-part polygon is listed once per cell read: keep one entry each.
        out.sort_unstable_by_key(|o| o.2);
        out.dedup_by_key(|o| o.2);
    }

    /// The positions in [`Outlines::parts`] of rank `rank`'s polygon's parts.
    #[inline]
    fn parts_of_rank(&self, rank: u32) -> std::ops::Range<usize> {
        let (first, count) = self.rank_parts[rank as usize];
        first as usize..(first + count) as usize
    }

    /// SPEC.md's squared distance from `(px, py)` to rank `rank`'s polygon, in float64:
    /// 0 where it covers the point, else the smallest over its edges.
    pub fn squared_distance(&self, rank: u32, px: f64, py: f64) -> f64 {
        self.parts_of_rank(rank)
            .map(|part| self.outlines.part_squared(part, px, py))
            .fold(f64::INFINITY, f64::min)
    }

    /// `rule`'s distance key from `(px, py)` to rank `rank`'s polygon ([`Rule::part_key`]:
    /// the smallest over its parts; [`Rule::reported`] gives the `distance` column).
    pub fn distance_key<R: Rule>(&self, rule: &R, rank: u32, px: f64, py: f64) -> f64 {
        self.parts_of_rank(rank)
            .map(|part| rule.part_key(&self.outlines, part, px, py))
            .fold(f64::INFINITY, f64::min)
    }

    /// The `k` nearest polygons that accept `(px, py)` under `rule`, by SPEC.md's
    /// distance then polygon row, as `(squared distance, row, rank)`, into `out`
    /// (cleared first); `seen` is scratch.
    ///
    /// The cells are read in square rings around the point's cell; a part is skipped
    /// when its box's lower bound exceeds the `k`-th distance found, and the search
    /// stops when the cells left are beyond the rule's reach or can hold nothing closer
    /// than the `k`-th. The bounds are lower bounds of the float values (an edge's value
    /// may lie below its true distance by its error bound, distance.rs), so the answer
    /// is the one a scan of every polygon would give, whatever the grid.
    pub fn nearest_k<R: Rule>(
        &self,
        rule: R,
        px: f64,
        py: f64,
        k: usize,
        out: &mut Vec<(f64, u32, u32)>,
        scratch: &mut ShapeNearScratch,
    ) {
        out.clear();
        scratch.seen.clear();
        if !(px.is_finite() && py.is_finite()) || self.by_rank.is_empty() {
            return;
        }
        const U: f64 = f64::EPSILON * 0.5;
        // A float value below v is impossible for an edge in a box whose true distance
        // is g and farthest corner F when g^2 (1 - 4u) - 64u (1 + 4u) F^2 > v.
        let floor = |g2: f64, f2: f64| g2 * (1.0 - 4.0 * U) - 64.0 * U * (1.0 + 4.0 * U) * f2;
        let reach = rule.reach();
        let cells = &self.grid.cells;
        let (nx, ny) = cells.dims();
        let (ccx, ccy) = cells.col_row(px, py);
        let ShapeNearScratch { seen, ring } = scratch;
        // A part's lower bound: below every float distance of its edges.
        let lower = |slot: &Slot| {
            let b = &slot.bounds();
            floor(
                box_squared(b, px, py) / (1.0 - 64.0 * U),
                farthest_squared(b, px, py),
            )
        };
        let mut visit = |slot: &Slot, out: &mut Vec<(f64, u32, u32)>| {
            let rank = slot.rank;
            // Sorted: a search with many evaluated polygons (large k, large parts listed
            // in many cells) stays O(log n) per lookup.
            match seen.binary_search(&rank) {
                Ok(_) => return,
                Err(at) => seen.insert(at, rank),
            }
            let row = self.row_of(rank);
            // A one-ring polygon (its slot is its only part): the rule's test and its
            // distance in one pass over the ring (`Rule::accepts_measured`). Any other:
            // the distance first (it prunes), then the rule, which knows the location
            // where the distance is not 0.
            let one_ring = slot.count > 0 && slot.single;
            let (known, s) = if one_ring {
                let (yes, s) = self.accepts_measured(rule, slot, px, py);
                let s = if s.is_nan() {
                    self.squared_distance(rank, px, py)
                } else {
                    s
                };
                (Some(yes), s)
            } else {
                (None, self.squared_distance(rank, px, py))
            };
            let at = out.partition_point(|o| (o.0, o.1) < (s, row));
            if at >= k {
                return;
            }
            let outlines = &self.outlines;
            let accepted = known.unwrap_or_else(|| {
                self.parts_of_rank(rank).any(|part| {
                    let candidate = Candidate {
                        part,
                        ring: None,
                        bounds: &outlines.parts()[part].bounds,
                    };
                    rule.accepts(outlines, &candidate, px, py, || {
                        if s > 0.0 {
                            Location::Outside // the polygon covers the point iff s = 0
                        } else {
                            outlines.locate(part, px, py)
                        }
                    })
                })
            });
            if accepted {
                out.insert(at, (s, row, rank));
                out.truncate(k);
            }
        };
        for r in 0.. {
            // The cells at Chebyshev distance r from the point's cell.
            let (x0, x1) = (ccx.saturating_sub(r), (ccx + r).min(nx - 1));
            let (y0, y1) = (ccy.saturating_sub(r), (ccy + r).min(ny - 1));
            for cy in y0..=y1 {
                let edge_row = cy + r == ccy || cy == ccy + r;
                let mut cx = x0;
                while cx <= x1 {
                    let on_ring = edge_row || cx + r == ccx || cx == ccx + r;
                    if on_ring {
                        let c = cy * nx + cx;
                        for pos in self.grid.offsets[c]..self.grid.offsets[c + 1] {
                            let slot = &self.slots[pos as usize];
                            if rule.may_hold(&slot.bounds(), px, py) {
                                let lb = lower(slot);
                                if out.len() < k || lb <= out[k - 1].0 {
                                    ring.push((lb, pos));
                                }
                            }
                        }
                        cx += 1;
                    } else {
                        cx = (ccx + r).min(x1).max(cx + 1); // jump to the ring's right side
                    }
                }
            }
            // The ring's parts nearest box first: the k-th distance shrinks soonest, and
            // the rest are pruned by it.
            ring.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
            for &(lb, pos) in ring.iter() {
                if out.len() == k && lb > out[k - 1].0 {
                    break;
                }
                visit(&self.slots[pos as usize], out);
            }
            ring.clear();
            // What is left lies beyond one of the square's four sides.
            let mut gap = f64::INFINITY;
            if ccx + r + 1 < nx {
                gap = gap.min(cells.col_gap(ccx + r, true, px));
            }
            if ccx > r {
                gap = gap.min(cells.col_gap(ccx - r, false, px));
            }
            if ccy + r + 1 < ny {
                gap = gap.min(cells.row_gap(ccy + r, true, py));
            }
            if ccy > r {
                gap = gap.min(cells.row_gap(ccy - r, false, py));
            }
            if gap == f64::INFINITY || gap >= reach {
                break;
            }
            if out.len() == k {
                let far = gap + self.max_extent2.sqrt();
                if floor(gap * gap, far * far * (1.0 + 4.0 * U)) > out[k - 1].0 {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_boxes_hold_the_parts_boxes() {
        let cases: [[f64; 4]; 6] = [
            [0.1, 0.2, 0.3, 0.4],
            [-0.1, -1e-30, 1e-30, 0.7],
            [-1e300, -3.5e38, 3.5e38, 1e300],
            [1.0, 2.0, 1.0, 2.0],
            [16777217.0, -16777217.0, 16777219.0, 16777217.0],
            [5e-324, -5e-324, 5e-324, 5e-324],
        ];
        for b in cases {
            let o = outwards(&b).map(f64::from);
            assert!(
                o[0] <= b[0] && o[1] <= b[1] && o[2] >= b[2] && o[3] >= b[3],
                "{b:?}"
            );
            // The smallest such box: one f32 step in is inside the part's box.
            for (i, v) in o.iter().enumerate() {
                if v.is_finite() && b[i] != *v {
                    let inner = if i < 2 {
                        f64::from((*v as f32).next_up())
                    } else {
                        f64::from((*v as f32).next_down())
                    };
                    assert!(if i < 2 { inner > b[i] } else { inner < b[i] }, "{b:?}");
                }
            }
        }
        // Exact f32 values stay as they are.
        assert_eq!(outwards(&[1.5, -2.0, 3.0, 4.25]), [1.5, -2.0, 3.0, 4.25]);
        let nan = outwards(&[f64::NAN, 0.0, 1.0, f64::NAN]);
        assert!(nan[0].is_nan() && nan[3].is_nan());
    }
}
