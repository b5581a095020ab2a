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
use crate::shape::cells::Cells;
use crate::shape::locate::{Crossings, Location};
use crate::shape::outlines::Outlines;

/// Cell-list entries the grid may hold per part (beyond one per cell): a finer grid is
/// coarsened until it fits.
const ENTRIES_PER_PART: usize = 8;

/// Which points a polygon's shape accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeRule {
    /// The point is in the polygon's interior (GEOS `contains`).
    Contains,
    /// The point is in the interior or on the boundary (GEOS `covers`).
    Covers,
}

impl ShapeRule {
    #[inline]
    fn accepts(self, location: Location) -> bool {
        match self {
            ShapeRule::Contains => location == Location::Inside,
            ShapeRule::Covers => location != Location::Outside,
        }
    }
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
    /// The entries of the cell holding `(px, py)`, as a range (empty outside the bounds).
    #[inline]
    fn list(&self, px: f64, py: f64) -> std::ops::Range<usize> {
        let (x0, y0) = self.cells.origin();
        if !(px >= x0 && py >= y0) {
            return 0..0; // also NaN
        }
        let c = self.cells.cell(px, py);
        self.offsets[c] as usize..self.offsets[c + 1] as usize
    }

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

/// One listed part: what a query reads, stored in the cell lists themselves so that a
/// cell's parts are one contiguous read (the rank order of the parts is not their
/// spatial order: a list of positions into one array cost a cache miss per part).
#[derive(Debug, Clone, Copy)]
struct Slot {
    bounds: [f64; 4],
    rank: u32,
    part: u32,
    /// A part of one ring without an edge index is tested from here: its vertices are
    /// `first..first + count` of the coordinate buffers (`count` 0: ask the outlines).
    first: u64,
    count: u32,
}

/// The parts of a polygon set in rank order, in a grid; see the module docs.
#[derive(Debug, Clone)]
pub struct ShapeIndex {
    outlines: Arc<Outlines>,
    order: Order,
    /// The grid's entries as slots: cell `c` lists `slots[grid.offsets[c]..]`, rank
    /// order within a cell.
    slots: Vec<Slot>,
    /// Parts listed (each once).
    parts: usize,
    /// Per rank: the polygon row and its area.
    rank_row: Arc<Vec<u32>>,
    rank_area: Arc<Vec<f64>>,
    grid: Grid,
}

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
        let mut by_rank: Vec<(u32, u32)> = parts
            .iter()
            .enumerate()
            .filter(|(_, p)| rank_of_row[p.row as usize] != NO_MATCH)
            .map(|(j, p)| (rank_of_row[p.row as usize], j as u32))
            .collect();
        by_rank.par_sort_unstable();
        let boxes: Vec<[f64; 4]> = by_rank
            .iter()
            .map(|&(_, j)| parts[j as usize].bounds)
            .collect();
        let mut grid = Grid::build(&boxes)?;
        let by_position: Vec<Slot> = by_rank
            .iter()
            .zip(&boxes)
            .map(|(&(rank, part), &bounds)| {
                let (first, count) = match parts[part as usize].simple_ring() {
                    Some((lo, hi)) if hi - lo <= u32::MAX as usize => (lo as u64, (hi - lo) as u32),
                    _ => (0, 0),
                };
                Slot {
                    bounds,
                    rank,
                    part,
                    first,
                    count,
                }
            })
            .collect();
        let slots = std::mem::take(&mut grid.entries)
            .into_par_iter()
            .map(|pos| by_position[pos as usize])
            .collect();
        Ok(Self {
            order: ranked.order().clone(),
            slots,
            parts: by_position.len(),
            rank_row: Arc::new(rank_row),
            rank_area: Arc::new(rank_area),
            grid,
            outlines,
        })
    }

    /// The rank order.
    pub fn order(&self) -> &Order {
        &self.order
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
        (self.parts > 0).then(|| self.grid.cells.bounds())
    }

    /// Bytes of the grid and the parts' boxes (besides the outlines').
    pub fn index_bytes(&self) -> usize {
        self.grid.offsets.len() * 4 + self.slots.len() * std::mem::size_of::<Slot>()
    }

    /// Visit the ranks of the polygons that accept `(px, py)` under `rule`, best rank
    /// first, each once, until `f` returns false.
    #[inline]
    pub fn for_each_candidate(
        &self,
        rule: ShapeRule,
        px: f64,
        py: f64,
        mut f: impl FnMut(u32) -> bool,
    ) {
        let mut last = NO_MATCH;
        let columns = self.outlines.polygons();
        let (x, y) = (columns.x().as_ref(), columns.y().as_ref());
        for slot in &self.slots[self.grid.list(px, py)] {
            let rank = slot.rank;
            if rank == last {
                continue; // another part of a polygon that accepted already
            }
            let b = &slot.bounds;
            if px < b[0] || px > b[2] || py < b[1] || py > b[3] {
                continue;
            }
            let location = if slot.count > 0 {
                let (lo, hi) = (
                    slot.first as usize,
                    slot.first as usize + slot.count as usize,
                );
                let mut c = Crossings::new(px, py);
                c.ring(&x[lo..hi], &y[lo..hi]);
                c.location()
            } else {
                self.outlines.locate(slot.part as usize, px, py)
            };
            if rule.accepts(location) {
                last = rank;
                if !f(rank) {
                    return;
                }
            }
        }
    }

    /// The best rank that accepts `(px, py)`, or [`NO_MATCH`].
    #[inline]
    pub fn best(&self, rule: ShapeRule, px: f64, py: f64) -> u32 {
        let mut best = NO_MATCH;
        self.for_each_candidate(rule, px, py, |rank| {
            best = rank;
            false
        });
        best
    }
}
