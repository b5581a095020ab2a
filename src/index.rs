//! The spatial index over polygon centers: a static, packed k-d tree whose nodes also
//! know the smallest *rank* below them.
//!
//! A polygon's rank is its position in (area, row) order, so "smallest area, lowest row on
//! ties" (SPEC.md) is one `u32` comparison. Each node stores the bounding box of the
//! centers below it and their minimum rank, which gives three exits while searching:
//!
//! - the node's minimum rank is no better than the best match so far: skip it;
//! - the box is entirely outside the disk: skip it;
//! - the box is entirely inside the disk: every center below is a candidate, so the
//!   node's minimum rank is the best it can give; take it without descending.
//!
//! The third exit keeps the cost per point flat as candidates grow: with
//! `max_dist = inf` the root is inside the disk and a query is O(1).
//!
//! The inside/outside tests are exact with respect to SPEC.md's distance: rounding is
//! monotone, so the distance computed (with the same float64 operations) to the nearest
//! point of a box is never larger than the distance computed to any center inside it,
//! and the distance to its farthest corner never smaller.
//!
//! The tree is stored as flat `Vec`s in heap order (node `k` has children `2k` and
//! `2k + 1`); every leaf is at the same depth and holds at most [`LEAF_SIZE`] centers,
//! sorted by rank so a leaf scan stops at the first rank that cannot win.

use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{PolymatchError, Result};
use crate::geometry::float_key;
use crate::polygons::{PolygonCenters, PolygonColumns};
use crate::sphere::Metric;

mod bytes;
pub mod cells;
pub use cells::{CellGrid, CellMetric};

/// Most centers in a leaf.
pub const LEAF_SIZE: usize = 32;
/// The "no match" rank.
pub const NO_MATCH: u32 = u32::MAX;
/// Subtrees larger than this are built in parallel.
const PARALLEL_BUILD: usize = 1 << 14;
/// Version 2: ranked rows, areas and centers, and the tree order of the ranks (32 bytes
/// per matchable polygon); the node boxes and ranks are recomputed on load, so nothing of
/// the tree needs to be trusted.
const MAGIC_V2: &[u8; 8] = b"PMINDEX2";
/// Version 3: version 2 plus the order the ranks follow ([`Order`]).
const MAGIC_V3: &[u8; 8] = b"PMINDEX3";
/// Version 4: version 3 plus an optional section with the polygons' outlines (see
/// [`SpatialIndex::to_bytes_with_polygons`]).
const MAGIC_V4: &[u8; 8] = b"PMINDEX4";
/// The order tag's bit that says the index is on the sphere (versions 3 and 4).
const SPHERE_TAG: u64 = 1 << 8;

/// The total order an index's ranks follow: rank 0 is the best match. Ties always go to
/// the lowest polygon row, in either direction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Order {
    /// By area (SPEC.md's rule: smallest first), largest first if `descending`.
    Area {
        /// Largest area first.
        descending: bool,
    },
    /// By the values of a polygon column, smallest first unless `descending`; nulls and
    /// NaN after every value in either direction (SQL's `NULLS LAST`).
    Column {
        /// The column.
        name: String,
        /// Largest value first.
        descending: bool,
    },
}

impl Default for Order {
    /// Smallest area first.
    fn default() -> Self {
        Order::Area { descending: false }
    }
}

impl Order {
    /// Whether largest values come first.
    pub fn descending(&self) -> bool {
        matches!(
            self,
            Order::Area { descending: true }
                | Order::Column {
                    descending: true,
                    ..
                }
        )
    }

    /// The rank rule this order serves (its text form is `rank_by=`'s).
    pub fn rank_by(&self) -> crate::matching::RankBy {
        match self {
            Order::Area { .. } => crate::matching::RankBy::Area,
            Order::Column { name, .. } => crate::matching::RankBy::Column(name.clone()),
        }
    }

    /// Words for messages: `area`, `area (descending)`, `column "pop" (descending)`.
    pub fn describe(&self) -> String {
        let dir = if self.descending() {
            " (descending)"
        } else {
            ""
        };
        match self {
            Order::Area { .. } => format!("area{dir}"),
            Order::Column { name, .. } => format!("column {name:?}{dir}"),
        }
    }
}

/// SPEC.md's distance: float64 subtraction, squares and a sum without fused
/// multiply-add (Rust never contracts `a * b + c`), then `sqrt`.
#[inline(always)]
pub fn distance(px: f64, py: f64, cx: f64, cy: f64) -> f64 {
    let dx = px - cx;
    let dy = py - cy;
    (dx * dx + dy * dy).sqrt()
}

/// SPEC.md's `distance(p, c) < max_dist`, mostly without the square root.
///
/// Squared distances are compared with `max_dist^2` widened by a relative margin of
/// `8u` (`u = 2^-53`, the unit roundoff); only inside that margin is the square root
/// taken and compared exactly. The answer is always the one [`distance`] gives, because
/// each of `fl(r * r)` and the margin product is within a factor `(1 ± u)`:
/// - `s < lo` means `s < r^2 (1 - 6u)`, so `sqrt(s) < r (1 - 3u)`, and even rounded up
///   (`× (1 + u)`) the root stays below `r`;
/// - `s > hi` means `s > r^2 (1 + 6u)`, so `sqrt(s) > r (1 + 2.9u)`, which rounds to
///   more than `r`.
///
/// NaN and overflowed squares fail both tests and take the exact path. When `r^2` is
/// not a normal number (tiny or huge `r`) the relative margins do not hold, and every
/// comparison takes the exact path.
#[derive(Debug, Clone, Copy)]
pub struct Within {
    r: f64,
    lo: f64,
    hi: f64,
}

impl Within {
    /// The test for `max_dist`.
    #[inline]
    pub fn new(max_dist: f64) -> Self {
        const MARGIN: f64 = 8.0 * f64::EPSILON * 0.5;
        let r2 = max_dist * max_dist;
        if r2.is_normal() && r2 > f64::MIN_POSITIVE * 1e10 || r2 == f64::INFINITY {
            Self {
                r: max_dist,
                lo: r2 * (1.0 - MARGIN),
                hi: r2 * (1.0 + MARGIN),
            }
        } else {
            // lo = -1 and hi = inf: every test falls through to the exact comparison.
            Self {
                r: max_dist,
                lo: -1.0,
                hi: f64::INFINITY,
            }
        }
    }

    /// `distance(px, py, cx, cy) < max_dist`, exactly.
    #[inline(always)]
    pub fn test(&self, px: f64, py: f64, cx: f64, cy: f64) -> bool {
        self.test_squared(squared(px, py, cx, cy))
    }

    /// [`Within::test`] given the squared distance `s` (as [`squared`] computes it). The
    /// answer is monotone in `s`: true below some value, false above it.
    #[inline(always)]
    pub fn test_squared(&self, s: f64) -> bool {
        if s < self.lo {
            true
        } else if s > self.hi {
            false
        } else {
            s.sqrt() < self.r
        }
    }
}

/// A candidate rule of the center tree's walks (docs/STYLE.md 11): where a node's box of
/// centers lies relative to what a point accepts, and whether one item is a candidate.
/// [`Within`] (the center rule) is one; the shape rules bring their own.
pub trait CenterRule {
    /// [`Reach::Outside`] only if no center below tree node `node` (whose box of centers
    /// is `b`) can be a candidate, [`Reach::Inside`] only if every one is.
    fn reach(&self, node: usize, b: &[f64; 4], px: f64, py: f64) -> Reach;
    /// Whether rank `rank`, centered at `(cx, cy)`, is a candidate of `(px, py)`.
    /// Whether the center of rank `rank`, item `item` of the tree (its position in tree
    /// order), at `(cx, cy)`, is a candidate of `(px, py)`.
    fn accepts(&self, item: usize, rank: u32, cx: f64, cy: f64, px: f64, py: f64) -> bool;
}

impl CenterRule for Within {
    #[inline(always)]
    fn reach(&self, _node: usize, b: &[f64; 4], px: f64, py: f64) -> Reach {
        if !self.test(px, py, px.clamp(b[0], b[2]), py.clamp(b[1], b[3])) {
            return Reach::Outside;
        }
        let far_x = if px - b[0] > b[2] - px { b[0] } else { b[2] };
        let far_y = if py - b[1] > b[3] - py { b[1] } else { b[3] };
        if self.test(px, py, far_x, far_y) {
            Reach::Inside
        } else {
            Reach::Partial
        }
    }
    #[inline(always)]
    fn accepts(&self, _item: usize, _rank: u32, cx: f64, cy: f64, px: f64, py: f64) -> bool {
        self.test(px, py, cx, cy)
    }
}

/// A candidate rule that also orders candidates by a key (a distance, or a monotone
/// function of one) for [`SpatialIndex::nearest_k_by`]: the key of a rank, and bounds
/// of the keys of every center below a node.
pub trait NearRule: CenterRule {
    /// The key of rank `rank` (smaller is nearer).
    fn key(&self, rank: u32) -> f64;
    /// A value no larger than the key of any center below `node`.
    fn near_key(&self, node: usize) -> f64;
    /// A value no smaller than the key of any center below `node`.
    fn far_key(&self, node: usize) -> f64;
}

/// Where a tree node lies for every point of a group at once
/// ([`SpatialIndex::best_by_group`]).
pub trait GroupReach {
    /// [`Reach::Outside`] only if no center below `node` (box `b`) is a candidate of any
    /// point of the group, [`Reach::Inside`] only if every one is a candidate of every
    /// point.
    fn group_reach(&self, node: usize, b: &[f64; 4]) -> Reach;
}

/// The planar center rule's group: the group's bounding box, with the relative margins
/// of `1e-9` that cover the rounding of [`box_gap`] and [`box_span`] (see
/// [`SpatialIndex::best_within_group`]).
struct PlanarGroup {
    group: [f64; 4],
    reach: f64,
    shrink: f64,
}

impl GroupReach for PlanarGroup {
    #[inline(always)]
    fn group_reach(&self, _node: usize, b: &[f64; 4]) -> Reach {
        if box_gap(b, &self.group) > self.reach {
            Reach::Outside
        } else if box_span(b, &self.group) < self.shrink {
            Reach::Inside
        } else {
            Reach::Partial
        }
    }
}

/// SPEC.md's squared distance: `dx * dx + dy * dy` in float64 (its square root is
/// [`distance`]).
#[inline(always)]
pub fn squared(px: f64, py: f64, cx: f64, cy: f64) -> f64 {
    let dx = px - cx;
    let dy = py - cy;
    dx * dx + dy * dy
}

/// The largest squared distance whose root (correctly rounded) can be `<= d`: any `s`
/// above it has `sqrt(s) > d`. `fl(sqrt(s)) <= d` needs `sqrt(s) <= next_up(d)`, so
/// `s <= next_up(d)^2`; the float product is widened by `4u` to cover its rounding.
#[inline]
fn squared_at_most(d: f64) -> f64 {
    let up = d.next_up();
    up * up * (1.0 + 4.0 * f64::EPSILON)
}

/// The smallest squared distance whose root can be `>= d`: any `s` below it has
/// `sqrt(s) < d` (the mirror of [`squared_at_most`]).
#[inline]
fn squared_at_least(d: f64) -> f64 {
    let down = d.next_down().max(0.0);
    down * down * (1.0 - 4.0 * f64::EPSILON)
}

/// A node's box against a point's disk (or a rule's reach).
pub enum Reach {
    /// No center below can be a candidate.
    Outside,
    /// Every center below is a candidate.
    Inside,
    /// Some may be.
    Partial,
}

/// Reusable buffers of [`SpatialIndex::nearest_k_within_group`].
#[derive(Debug, Default)]
pub struct NearScratch {
    /// (order key, lo, hi, node) of the leaves the group may need.
    leaves: Vec<(f64, u32, u32, u32)>,
    out: Vec<Near>,
    /// The previous point's answer (seeds for the next one).
    prev: Vec<Near>,
}

/// One point's search for its k nearest (or farthest) candidates: the bound, and the
/// exact steps both walks share.
struct NearSearch<'a> {
    index: &'a SpatialIndex,
    px: f64,
    py: f64,
    within: &'a Within,
    k: usize,
    descending: bool,
    /// Squared distances strictly worse than the k-th best (once there are k): above it
    /// (nearest first) or below it (farthest first).
    limit: f64,
    /// Whether a center may be offered twice (seeds are also found by the walk).
    dedupe: bool,
}

impl<'a> NearSearch<'a> {
    fn new(
        index: &'a SpatialIndex,
        px: f64,
        py: f64,
        within: &'a Within,
        k: usize,
        descending: bool,
        dedupe: bool,
    ) -> Self {
        let limit = if descending { 0.0 } else { f64::INFINITY };
        Self {
            index,
            px,
            py,
            within,
            k,
            descending,
            limit,
            dedupe,
        }
    }

    #[inline(always)]
    fn near_of(&self, b: &[f64; 4]) -> f64 {
        let (px, py) = (self.px, self.py);
        squared(px, py, px.clamp(b[0], b[2]), py.clamp(b[1], b[3]))
    }

    #[inline(always)]
    fn far_of(&self, b: &[f64; 4]) -> f64 {
        let (px, py) = (self.px, self.py);
        let fx = if px - b[0] > b[2] - px { b[0] } else { b[2] };
        let fy = if py - b[1] > b[3] - py { b[1] } else { b[3] };
        squared(px, py, fx, fy)
    }

    /// A squared distance strictly worse than the k-th best (false until there are k).
    #[inline(always)]
    fn worse(&self, s: f64, out: &[Near]) -> bool {
        out.len() == self.k
            && if self.descending {
                s < self.limit
            } else {
                s > self.limit
            }
    }

    #[inline(always)]
    fn offer(&mut self, s: f64, rank: u32, (x, y): (f64, f64), out: &mut Vec<Near>) {
        if self.worse(s, out) || !self.within.test_squared(s) {
            return;
        }
        let cand = Near {
            distance: s.sqrt(),
            row: self.index.rank_row[rank as usize],
            rank,
            x,
            y,
        };
        if self.dedupe && out.iter().any(|c| c.rank == rank) {
            return;
        }
        let descending = self.descending;
        insert_best(out, self.k, cand, |a, b| {
            let closer = if descending {
                a.distance > b.distance
            } else {
                a.distance < b.distance
            };
            closer || (a.distance == b.distance && a.row < b.row)
        });
        if out.len() == self.k {
            let d = out[self.k - 1].distance;
            self.limit = if descending {
                squared_at_least(d)
            } else {
                squared_at_most(d)
            };
        }
    }

    fn offer_seeds(&mut self, seeds: &[Near], out: &mut Vec<Near>) {
        for seed in seeds {
            let s = squared(self.px, self.py, seed.x, seed.y);
            self.offer(s, seed.rank, (seed.x, seed.y), out);
        }
    }

    /// Offer the items `lo..hi` of a leaf: every squared distance first, in a loop the
    /// compiler vectorises; then the few that may enter the k best.
    #[inline(always)]
    fn scan_leaf(&mut self, lo: usize, hi: usize, out: &mut Vec<Near>) {
        let mut sq = [0.0f64; LEAF_SIZE];
        let index = self.index;
        let (xs, ys) = (&index.item_x[lo..hi], &index.item_y[lo..hi]);
        for ((s, &cx), &cy) in sq.iter_mut().zip(xs).zip(ys) {
            *s = squared(self.px, self.py, cx, cy);
        }
        for (t, &s) in sq[..hi - lo].iter().enumerate() {
            self.offer(s, index.item_rank[lo + t], (xs[t], ys[t]), out);
        }
    }
}

/// Reusable buffers of [`SpatialIndex::best_k_within_group`].
#[derive(Debug, Default)]
pub struct GroupScratch {
    entries: Vec<GroupEntry>,
    guaranteed: Vec<u32>,
    best: Vec<u32>,
}

/// A candidate found by [`SpatialIndex::nearest_k_within`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Near {
    /// SPEC.md's distance from the point to the center.
    pub distance: f64,
    /// The polygon row.
    pub row: u32,
    /// Its rank in the index.
    pub rank: u32,
    /// Its center (so that a neighbour seeded with it needs no lookup).
    pub x: f64,
    /// Its center's y.
    pub y: f64,
}

/// Insert `item` into `out` (sorted best first by `better`, at most `k` long) if it is
/// among the `k` best; items are distinct under `better`'s total order.
#[inline]
fn insert_best<T: Copy>(out: &mut Vec<T>, k: usize, item: T, better: impl Fn(&T, &T) -> bool) {
    let pos = out.partition_point(|x| better(x, &item));
    if pos < k {
        if out.len() == k {
            out.pop();
        }
        out.insert(pos, item);
    }
}

/// One subtree found by [`SpatialIndex::best_within_group`].
#[derive(Debug, Clone, Copy)]
pub struct GroupEntry {
    rank: u32,
    node: u32,
    lo: u32,
    hi: u32,
    inside: bool,
}

/// An immutable spatial index over polygon centers, ready to match points.
#[derive(Debug, Clone, PartialEq)]
pub struct SpatialIndex {
    /// What the ranks mean.
    order: Order,
    /// Number of polygon rows, matchable or not.
    rows: usize,
    /// Leaf depth: leaves are nodes `2^depth .. 2^(depth+1)`.
    depth: u32,
    /// Per rank: the polygon row, its area and its center.
    rank_row: Vec<u32>,
    rank_area: Vec<f64>,
    rank_x: Vec<f64>,
    rank_y: Vec<f64>,
    /// Per position in tree order: center and rank.
    item_x: Vec<f64>,
    item_y: Vec<f64>,
    item_rank: Vec<u32>,
    /// Per node (heap order, index 0 unused): min x, min y, max x, max y, and min rank.
    node_box: Vec<[f64; 4]>,
    node_rank: Vec<u32>,
    /// Cell lists per radius, built once they pay (not serialised; a clone starts empty).
    cells: cells::CellCache,
    /// What the centers and areas are measured in ([`Metric::Sphere`]: the centers are
    /// longitude/latitude degrees).
    metric: Metric,
    /// Per rank, on the sphere only: the center's unit vector ([`crate::sphere::unit`]).
    rank_unit: Vec<[f64; 3]>,
    /// Per node, on the sphere only: the 3-D box of its centers' unit vectors (min x, y,
    /// z, max x, y, z), which bounds their chords to a point exactly.
    node_box3: Vec<[f64; 6]>,
    /// Per item (tree order), on the sphere only: the center's unit vector, read in leaf
    /// scans without a random access by rank.
    item_unit: Vec<[f64; 3]>,
    /// Cell lists per radius on the sphere (as `cells`).
    sphere_cells: cells::CellCache<cells::Sphere>,
}

#[derive(Clone, Copy)]
struct Item {
    x: f64,
    y: f64,
    rank: u32,
}

impl SpatialIndex {
    /// Index the matchable rows of `polygons`.
    ///
    /// # Implementation
    /// O(P log P): a sort by (area, row), then median splits along the wider axis.
    pub fn new(polygons: &PolygonColumns) -> Self {
        Self::from_centers(
            polygons.center_x(),
            polygons.center_y(),
            polygons.area(),
            |row| polygons.matchable().is_valid(row),
        )
        .with_metric(polygons.metric())
    }

    /// Index the matchable rows of polygons read as centers and areas.
    pub fn from_polygon_centers(polygons: &PolygonCenters) -> Self {
        Self::from_centers(&polygons.x, &polygons.y, &polygons.area, |row| {
            polygons.matchable[row]
        })
        .with_metric(polygons.metric)
    }

    /// Index rows `i` with `keep(i)`, given their centers and areas (finite).
    pub fn from_centers(
        cx: &[f64],
        cy: &[f64],
        area: &[f64],
        keep: impl Fn(usize) -> bool + Sync,
    ) -> Self {
        let rows = cx.len();
        // Sorted as (key, row) pairs, not rows compared through `area`: no random reads
        // per comparison. The row breaks ties, so the (unstable) sort has one answer.
        let mut keyed: Vec<(u64, u32)> = (0..rows as u32)
            .into_par_iter()
            .filter(|&r| keep(r as usize))
            .map(|r| (float_key(area[r as usize]), r))
            .collect();
        keyed.par_sort_unstable();
        let by_rank: Vec<u32> = keyed.par_iter().map(|&(_, r)| r).collect();
        drop(keyed);
        let rank_area: Vec<f64> = by_rank.par_iter().map(|&r| area[r as usize]).collect();
        let rank_x: Vec<f64> = by_rank.par_iter().map(|&r| cx[r as usize]).collect();
        let rank_y: Vec<f64> = by_rank.par_iter().map(|&r| cy[r as usize]).collect();
        Self::from_ranked(rows, by_rank, rank_area, rank_x, rank_y)
    }

    /// Build the tree over polygons already in rank order (`(area, row)` ascending).
    fn from_ranked(
        rows: usize,
        rank_row: Vec<u32>,
        rank_area: Vec<f64>,
        rank_x: Vec<f64>,
        rank_y: Vec<f64>,
    ) -> Self {
        let n = rank_row.len();
        let mut items: Vec<Item> = (0..n)
            .into_par_iter()
            .map(|k| Item {
                x: rank_x[k],
                y: rank_y[k],
                rank: k as u32,
            })
            .collect();
        let depth = leaf_depth(n);
        partition(&mut items, depth);
        sort_leaves(&mut items, depth);
        Self::from_items(rows, depth, rank_row, rank_area, rank_x, rank_y, &items)
    }

    /// Finish an index from items in tree order: node boxes and minimum ranks are
    /// computed from the items, so they hold whatever the order is.
    fn from_items(
        rows: usize,
        depth: u32,
        rank_row: Vec<u32>,
        rank_area: Vec<f64>,
        rank_x: Vec<f64>,
        rank_y: Vec<f64>,
        items: &[Item],
    ) -> Self {
        let (node_box, node_rank) = tree_nodes(items, depth);
        Self {
            order: Order::default(),
            rows,
            depth,
            rank_row,
            rank_area,
            rank_x,
            rank_y,
            item_x: items.par_iter().map(|it| it.x).collect(),
            item_y: items.par_iter().map(|it| it.y).collect(),
            item_rank: items.par_iter().map(|it| it.rank).collect(),
            node_box,
            node_rank,
            cells: cells::CellCache::default(),
            metric: Metric::Planar,
            rank_unit: Vec::new(),
            node_box3: Vec::new(),
            item_unit: Vec::new(),
            sphere_cells: cells::CellCache::default(),
        }
    }

    /// This index with its centers and areas read as measured in `metric` (they must
    /// have been: [`PolygonColumns::with_metric`]); on the sphere, the centers' unit
    /// vectors are computed here.
    pub fn with_metric(mut self, metric: Metric) -> Self {
        self.metric = metric;
        self.rank_unit = match metric {
            Metric::Planar => Vec::new(),
            Metric::Sphere => self
                .rank_x
                .par_iter()
                .zip(self.rank_y.par_iter())
                .map(|(&x, &y)| crate::sphere::unit(x, y))
                .collect(),
        };
        self.node_box3 = match metric {
            Metric::Planar => Vec::new(),
            Metric::Sphere => self.unit_boxes(),
        };
        self.item_unit = match metric {
            Metric::Planar => Vec::new(),
            Metric::Sphere => self
                .item_rank
                .par_iter()
                .map(|&r| self.rank_unit[r as usize])
                .collect(),
        };
        self
    }

    /// The 3-D boxes of the nodes' centers' unit vectors (as [`tree_nodes`] makes the
    /// 2-D ones).
    fn unit_boxes(&self) -> Vec<[f64; 6]> {
        let leaves = 1usize << self.depth;
        let mut boxes = vec![crate::sphere::EMPTY_BOX3; 2 * leaves];
        if self.item_rank.is_empty() {
            return boxes;
        }
        let mut ranges = Vec::with_capacity(leaves);
        leaf_ranges(0, self.item_rank.len(), self.depth, &mut ranges);
        for (leaf, &(lo, hi)) in ranges.iter().enumerate() {
            let b = &mut boxes[leaves + leaf];
            for &r in &self.item_rank[lo..hi] {
                crate::sphere::grow(b, &self.rank_unit[r as usize]);
            }
        }
        for k in (1..leaves).rev() {
            let (l, r) = (boxes[2 * k], boxes[2 * k + 1]);
            for a in 0..3 {
                boxes[k][a] = l[a].min(r[a]);
                boxes[k][a + 3] = l[a + 3].max(r[a + 3]);
            }
        }
        boxes
    }

    /// On the sphere, the nodes' 3-D boxes of unit vectors (empty for planar).
    pub fn unit_node_boxes(&self) -> &[[f64; 6]] {
        &self.node_box3
    }

    /// What the centers and areas are measured in.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// On the sphere, the centers' unit vectors by rank (empty for planar).
    pub fn units(&self) -> &[[f64; 3]] {
        &self.rank_unit
    }

    /// On the sphere, the centers' unit vectors in tree order (empty for planar).
    pub fn item_units(&self) -> &[[f64; 3]] {
        &self.item_unit
    }

    /// The same polygons ranked in another order: `rows_in_order` lists every matchable
    /// row of this index once, best first. The tree (which center sits in which leaf) is
    /// kept; only the leaves' order and the nodes' minimum ranks are recomputed.
    ///
    /// # Implementation
    /// O(P) plus a sort of each leaf (at most [`LEAF_SIZE`] items): no tree rebuild.
    ///
    /// # Errors
    /// [`PolymatchError::InvalidArgument`] if `rows_in_order` is not a permutation of the
    /// matchable rows, or (for an area order, which the index can check) not in that order.
    pub fn with_order(&self, order: Order, rows_in_order: Vec<u32>) -> Result<Self> {
        let n = self.rank_row.len();
        let bad = || {
            PolymatchError::InvalidArgument(format!(
                "an order for {} must list each of the {n} matchable polygons once",
                order.describe()
            ))
        };
        if rows_in_order.len() != n {
            return Err(bad());
        }
        // old rank of each row, then new rank of each old rank
        let mut old_of_row = vec![NO_MATCH; self.rows];
        for (k, &row) in self.rank_row.iter().enumerate() {
            old_of_row[row as usize] = k as u32;
        }
        let mut new_of_old = vec![NO_MATCH; n];
        for (new, &row) in rows_in_order.iter().enumerate() {
            let old = *old_of_row.get(row as usize).ok_or_else(bad)?;
            if old == NO_MATCH || new_of_old[old as usize] != NO_MATCH {
                return Err(bad());
            }
            new_of_old[old as usize] = new as u32;
        }
        let pick = |v: &[f64]| -> Vec<f64> {
            rows_in_order
                .iter()
                .map(|&row| v[old_of_row[row as usize] as usize])
                .collect()
        };
        let (rank_area, rank_x, rank_y) = (
            pick(&self.rank_area),
            pick(&self.rank_x),
            pick(&self.rank_y),
        );
        if !follows(&order, &rank_area, &rows_in_order) {
            return Err(PolymatchError::InvalidArgument(format!(
                "the rows given are not in {} order (ties by row)",
                order.describe()
            )));
        }
        let mut items: Vec<Item> = (0..n)
            .map(|i| Item {
                x: self.item_x[i],
                y: self.item_y[i],
                rank: new_of_old[self.item_rank[i] as usize],
            })
            .collect();
        sort_leaves(&mut items, self.depth);
        let mut out = Self::from_items(
            self.rows,
            self.depth,
            rows_in_order,
            rank_area,
            rank_x,
            rank_y,
            &items,
        );
        out.order = order;
        Ok(out.with_metric(self.metric))
    }

    /// The order the ranks follow.
    pub fn order(&self) -> &Order {
        &self.order
    }

    /// Number of polygon rows indexed (matchable or not).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The cell lists for `max_dist` ([`CellGrid`]), counting `points` more points asked
    /// for at that radius: built (once, then cached on this index) when the radius has
    /// been asked for a few points per polygon; `None` before that, or
    /// where the lists do not apply ([`CellGrid::build`]).
    pub fn cell_lists(&self, max_dist: f64, points: usize) -> Option<Arc<CellGrid>> {
        self.cells.get(self, max_dist, points)
    }

    /// [`SpatialIndex::cell_lists`] on the sphere (`max_dist` in metres): `None` for a
    /// planar index, and where the sphere's lists do not apply ([`cells::Sphere`]).
    pub fn sphere_cell_lists(
        &self,
        max_dist: f64,
        points: usize,
    ) -> Option<Arc<CellGrid<cells::Sphere>>> {
        if self.metric != Metric::Sphere {
            return None;
        }
        self.sphere_cells.get(self, max_dist, points)
    }

    /// Announce `points` points that will be matched at `max_dist` (a file's row count,
    /// before it is streamed in batches): they count toward building the cell lists, so
    /// the first call at that radius builds them when the whole job makes them pay,
    /// instead of the batches before the count is reached taking the slower tree path.
    /// Answers do not depend on it; only which path computes them.
    pub fn expect_points(&self, max_dist: f64, points: usize) {
        if max_dist.is_finite() {
            match self.metric {
                Metric::Planar => self.cells.expect(max_dist, points),
                Metric::Sphere => self.sphere_cells.expect(max_dist, points),
            }
        }
    }

    /// Number of matchable polygons.
    pub fn matchable(&self) -> usize {
        self.rank_row.len()
    }

    /// Bounding box of the indexed centers, `[min_x, min_y, max_x, max_y]`.
    pub fn bounds(&self) -> Option<[f64; 4]> {
        (!self.rank_row.is_empty()).then(|| self.node_box[1])
    }

    /// Polygon row of a rank.
    #[inline]
    pub fn row_of(&self, rank: u32) -> u32 {
        self.rank_row[rank as usize]
    }

    /// Area of a rank.
    #[inline]
    pub fn area_of(&self, rank: u32) -> f64 {
        self.rank_area[rank as usize]
    }

    /// Center of a rank.
    #[inline]
    pub fn center_of(&self, rank: u32) -> (f64, f64) {
        (self.rank_x[rank as usize], self.rank_y[rank as usize])
    }

    /// Per row: `(center_x, center_y, area)`, NaN where the row is not matchable.
    pub fn derived_columns(&self) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut cx = vec![f64::NAN; self.rows];
        let mut cy = vec![f64::NAN; self.rows];
        let mut area = vec![f64::NAN; self.rows];
        for (k, &row) in self.rank_row.iter().enumerate() {
            let r = row as usize;
            (cx[r], cy[r], area[r]) = (self.rank_x[k], self.rank_y[k], self.rank_area[k]);
        }
        (cx, cy, area)
    }

    /// The best rank within `max_dist` of `(px, py)`, or [`NO_MATCH`].
    ///
    /// A NaN coordinate never matches (every comparison with NaN is false).
    #[inline]
    pub fn best_within(&self, px: f64, py: f64, max_dist: f64) -> u32 {
        self.best_by(&Within::new(max_dist), px, py)
    }

    /// The best rank that `rule` accepts at `(px, py)`, or [`NO_MATCH`]: the walk of the
    /// center rule, generic over what a candidate is (docs/STYLE.md 11). A node whose
    /// minimum rank is no better than the best found is skipped, a node `rule` places
    /// wholly inside settles at its minimum rank, and a leaf is read in rank order up
    /// to its first candidate.
    #[inline]
    pub fn best_by<R: CenterRule>(&self, rule: &R, px: f64, py: f64) -> u32 {
        if self.rank_row.is_empty() {
            return NO_MATCH;
        }
        if let Reach::Inside = rule.reach(1, &self.node_box[1], px, py) {
            // Every center is a candidate (max_dist = inf, or a disk around all of them):
            // the best rank of all, before setting up a walk.
            return self.node_rank[1];
        }
        let leaves = 1u32 << self.depth;
        let mut best = NO_MATCH;
        // (node, lo, hi); the stack never holds more than depth + 2 entries.
        let mut stack = [(0u32, 0u32, 0u32); 40];
        stack[0] = (1, 0, self.item_rank.len() as u32);
        let mut top = 1;
        while top > 0 {
            top -= 1;
            let (node, lo, hi) = stack[top];
            let rank = self.node_rank[node as usize];
            if rank >= best {
                continue;
            }
            match rule.reach(node as usize, &self.node_box[node as usize], px, py) {
                Reach::Outside => continue,
                Reach::Inside => {
                    best = rank; // every center below is a candidate, this is the best of them
                    continue;
                }
                Reach::Partial if node >= leaves => {
                    best = self.scan_leaf(rule, px, py, lo, hi, best);
                    continue;
                }
                Reach::Partial => {}
            }
            let mid = lo + (hi - lo) / 2;
            let (l, r) = (2 * node, 2 * node + 1);
            // Pop the child with the better rank first: it is likelier to settle the point.
            if self.node_rank[l as usize] <= self.node_rank[r as usize] {
                stack[top] = (r, mid, hi);
                stack[top + 1] = (l, lo, mid);
            } else {
                stack[top] = (l, lo, mid);
                stack[top + 1] = (r, mid, hi);
            }
            top += 2;
        }
        best
    }

    /// Where a node's box lies with respect to the disk around `(px, py)`, exactly.
    #[inline(always)]
    fn classify(&self, within: &Within, px: f64, py: f64, node: u32) -> Reach {
        within.reach(node as usize, &self.node_box[node as usize], px, py)
    }

    /// The better of `best` and the first candidate of `rule` among the leaf items
    /// `lo..hi` (sorted by rank, so the first candidate found is the leaf's best).
    #[inline(always)]
    fn scan_leaf<R: CenterRule>(
        &self,
        rule: &R,
        px: f64,
        py: f64,
        lo: u32,
        hi: u32,
        best: u32,
    ) -> u32 {
        for i in lo as usize..hi as usize {
            let r = self.item_rank[i];
            if r >= best {
                break; // sorted by rank: nothing after can win
            }
            if rule.accepts(i, r, self.item_x[i], self.item_y[i], px, py) {
                return r;
            }
        }
        best
    }

    /// The `k` best ranks within `max_dist` of `(px, py)`, best first, into `out`
    /// (cleared first); fewer if there are fewer candidates. `k = 1` gives
    /// [`SpatialIndex::best_within`]'s answer.
    ///
    /// The walk is `best_within`'s with the bound at the k-th best rank found so far: a
    /// node whose minimum rank is no better is skipped, and below a node whose box is
    /// inside the disk every center is taken without a distance test, in rank order.
    pub fn best_k_within(&self, px: f64, py: f64, within: &Within, k: usize, out: &mut Vec<u32>) {
        self.best_k_by(within, px, py, k, out)
    }

    /// The `k` best ranks that `rule` accepts at `(px, py)`, best first, into `out`
    /// (cleared first): [`SpatialIndex::best_k_within`]'s walk, generic over the
    /// candidate rule as [`SpatialIndex::best_by`] is.
    pub fn best_k_by<R: CenterRule>(
        &self,
        rule: &R,
        px: f64,
        py: f64,
        k: usize,
        out: &mut Vec<u32>,
    ) {
        out.clear();
        if self.rank_row.is_empty() || k == 0 {
            return;
        }
        let leaves = 1u32 << self.depth;
        let bound = |out: &Vec<u32>| if out.len() == k { out[k - 1] } else { NO_MATCH };
        // (node, lo, hi, inside the disk); at most depth + 2 entries.
        let mut stack = [(0u32, 0u32, 0u32, false); 40];
        stack[0] = (1, 0, self.item_rank.len() as u32, false);
        let mut top = 1;
        while top > 0 {
            top -= 1;
            let (node, lo, hi, inside) = stack[top];
            if self.node_rank[node as usize] >= bound(out) {
                continue;
            }
            let inside = inside
                || match rule.reach(node as usize, &self.node_box[node as usize], px, py) {
                    Reach::Outside => continue,
                    Reach::Inside => true,
                    Reach::Partial => false,
                };
            if node >= leaves {
                for i in lo as usize..hi as usize {
                    let r = self.item_rank[i];
                    if r >= bound(out) {
                        break; // sorted by rank: nothing after can enter the k best
                    }
                    if inside || rule.accepts(i, r, self.item_x[i], self.item_y[i], px, py) {
                        insert_best(out, k, r, |a, b| a < b);
                    }
                }
                continue;
            }
            let mid = lo + (hi - lo) / 2;
            let (l, r) = (2 * node, 2 * node + 1);
            if self.node_rank[l as usize] <= self.node_rank[r as usize] {
                stack[top] = (r, mid, hi, inside);
                stack[top + 1] = (l, lo, mid, inside);
            } else {
                stack[top] = (l, lo, mid, inside);
                stack[top + 1] = (r, mid, hi, inside);
            }
            top += 2;
        }
    }

    /// The `k` candidates of `(px, py)` nearest first (farthest first if `descending`),
    /// ties to the lowest polygon row, into `out` (cleared first). A candidate's distance
    /// is SPEC.md's [`distance`] and it is a candidate iff that is `< max_dist`.
    ///
    /// A depth-first walk, nearer (farther) child first, bounded by the k-th best found so
    /// far, on squared distances: the square root is taken only for a center that may
    /// enter the k best. Pruning is exact by the monotonicity argument of this module: the
    /// squared distance computed to the nearest point of a box is never larger than the
    /// one computed to any center inside it, to its farthest corner never smaller, and
    /// `sqrt` is monotone; a box or a center is skipped only if its squared distance is
    /// beyond [`squared_at_most`] (or [`squared_at_least`]) of the k-th best distance,
    /// where its rounded root would be strictly worse, or if [`Within::test_squared`]
    /// says no center in it is a candidate.
    pub fn nearest_k_within(
        &self,
        px: f64,
        py: f64,
        within: &Within,
        k: usize,
        descending: bool,
        out: &mut Vec<Near>,
    ) {
        self.nearest_k_seeded(px, py, within, k, descending, &[], out);
    }

    /// [`SpatialIndex::nearest_k_within`], starting from `seeds`: ranks (e.g. a
    /// neighbouring point's answer) whose candidates bound the search from its first step.
    /// Seeds only speed it up: each is tested as any center is, and the answer is the
    /// same whatever they are.
    #[allow(clippy::too_many_arguments)]
    pub fn nearest_k_seeded(
        &self,
        px: f64,
        py: f64,
        within: &Within,
        k: usize,
        descending: bool,
        seeds: &[Near],
        out: &mut Vec<Near>,
    ) {
        out.clear();
        if self.rank_row.is_empty() || k == 0 {
            return;
        }
        let mut q = NearSearch::new(self, px, py, within, k, descending, !seeds.is_empty());
        q.offer_seeds(seeds, out);
        let leaves = 1u32 << self.depth;
        // (node, lo, hi, the squared distance that orders it: to the box's nearest point,
        // or farthest corner if descending); at most depth + 2 entries.
        let mut stack = [(0u32, 0u32, 0u32, 0.0f64); 40];
        stack[0] = (1, 0, self.item_rank.len() as u32, 0.0);
        let mut top = 1;
        let mut first = true;
        while top > 0 {
            top -= 1;
            let (node, lo, hi, key) = stack[top];
            let b = &self.node_box[node as usize];
            if first {
                first = false;
                if !within.test_squared(q.near_of(b)) {
                    continue;
                }
            } else if q.worse(key, out) {
                continue; // every center in the box is strictly worse than the k-th best
            }
            if node >= leaves {
                q.scan_leaf(lo as usize, hi as usize, out);
                continue;
            }
            let mid = lo + (hi - lo) / 2;
            let (l, r) = (2 * node, 2 * node + 1);
            let (bl, br) = (&self.node_box[l as usize], &self.node_box[r as usize]);
            let (nl, nr) = (q.near_of(bl), q.near_of(br));
            let (kl, kr) = if descending {
                (q.far_of(bl), q.far_of(br))
            } else {
                (nl, nr)
            };
            // A child no center of which is a candidate, or all of whose centers are
            // already worse than the k-th best, is not pushed.
            let keep_l = within.test_squared(nl) && !q.worse(kl, out);
            let keep_r = within.test_squared(nr) && !q.worse(kr, out);
            // Pop the likelier better child first.
            let left_first = if descending { kl >= kr } else { kl <= kr };
            let (a, b) = if left_first {
                ((r, mid, hi, kr, keep_r), (l, lo, mid, kl, keep_l))
            } else {
                ((l, lo, mid, kl, keep_l), (r, mid, hi, kr, keep_r))
            };
            for (n, nlo, nhi, key, keep) in [a, b] {
                if keep {
                    stack[top] = (n, nlo, nhi, key);
                    top += 1;
                }
            }
        }
    }

    /// [`SpatialIndex::nearest_k_within`] for a group of nearby points at once (as
    /// [`SpatialIndex::best_within_group`] is for ranks): the first point of the group is
    /// searched alone; its k-th distance `d0` bounds every other point's k best to within
    /// `d0 + diag` of the group's box (`diag` its diagonal; the triangle inequality, with
    /// a relative margin of 1e-9 over the rounding of distances), so one walk collects the
    /// leaves within that reach (or, farthest first, beyond `d0 - diag`), and each point
    /// scans only those, seeded with its predecessor's answer. Every decision for a single
    /// point is made as in `nearest_k_within`, so the answers are its answers. Appends
    /// each point's count to `counts` and its ranks, best first, to `ranks`. Use only when
    /// [`SpatialIndex::group_search_applies`] (`max_dist` finite, its square normal).
    #[allow(clippy::too_many_arguments)]
    pub fn nearest_k_within_group(
        &self,
        xs: &[f64],
        ys: &[f64],
        within: &Within,
        k: usize,
        descending: bool,
        counts: &mut Vec<u32>,
        ranks: &mut Vec<u32>,
        scratch: &mut NearScratch,
    ) {
        let NearScratch {
            leaves: found,
            out,
            prev,
        } = scratch;
        let first = xs
            .iter()
            .zip(ys)
            .position(|(x, y)| x.is_finite() && y.is_finite());
        let (Some(f), Some(group)) = (first, finite_bounds(xs, ys)) else {
            counts.extend(std::iter::repeat_n(0, xs.len()));
            return; // no finite point: none can match
        };
        if self.rank_row.is_empty() || k == 0 {
            counts.extend(std::iter::repeat_n(0, xs.len()));
            return; // no polygon: none can match
        }
        let [gx0, gy0, gx1, gy1] = group;
        // The first point alone, seeded by the previous group's last answer.
        self.nearest_k_seeded(xs[f], ys[f], within, k, descending, prev, out);
        let first_answer = out.clone();
        let diag = ((gx1 - gx0) * (gx1 - gx0) + (gy1 - gy0) * (gy1 - gy0)).sqrt();
        let reach = within.r * (1.0 + 1e-9);
        let (near_reach, far_floor) = match (out.len() == k, descending) {
            (true, false) => (
                ((out[k - 1].distance + diag) * (1.0 + 1e-9)).min(reach),
                0.0,
            ),
            (true, true) => (reach, (out[k - 1].distance - diag) * (1.0 - 1e-9)),
            (false, _) => (reach, 0.0),
        };
        let leaves = 1u32 << self.depth;
        let (mx, my) = (0.5 * (gx0 + gx1), 0.5 * (gy0 + gy1));
        found.clear();
        let mut stack = [(0u32, 0u32, 0u32); 40];
        stack[0] = (1, 0, self.item_rank.len() as u32);
        let mut top = 1;
        while top > 0 {
            top -= 1;
            let (node, lo, hi) = stack[top];
            let b = self.node_box[node as usize];
            if box_gap(&b, &group) > near_reach {
                continue; // beyond every point's k best (or its disk)
            }
            if box_span(&b, &group) < far_floor {
                continue; // farthest first: nearer than every point's k-th farthest
            }
            if node >= leaves {
                // Ordered by distance from the group's middle: likelier better first.
                let key = if descending {
                    let fx = (mx - b[0]).max(b[2] - mx);
                    let fy = (my - b[1]).max(b[3] - my);
                    -(fx * fx + fy * fy)
                } else {
                    squared(mx, my, mx.clamp(b[0], b[2]), my.clamp(b[1], b[3]))
                };
                found.push((key, lo, hi, node));
                continue;
            }
            let mid = lo + (hi - lo) / 2;
            stack[top] = (2 * node + 1, mid, hi);
            stack[top + 1] = (2 * node, lo, mid);
            top += 2;
        }
        found.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.3.cmp(&b.3)));
        *prev = first_answer.clone();
        for (i, (&px, &py)) in xs.iter().zip(ys).enumerate() {
            if i == f {
                out.clone_from(&first_answer);
            } else if !(px.is_finite() && py.is_finite()) {
                counts.push(0);
                continue;
            } else {
                out.clear();
                let mut q = NearSearch::new(self, px, py, within, k, descending, true);
                q.offer_seeds(prev, out);
                for &(_, lo, hi, node) in found.iter() {
                    let b = &self.node_box[node as usize];
                    let near = q.near_of(b);
                    if !within.test_squared(near) {
                        continue;
                    }
                    if q.worse(if descending { q.far_of(b) } else { near }, out) {
                        continue;
                    }
                    q.scan_leaf(lo as usize, hi as usize, out);
                }
            }
            counts.push(out.len() as u32);
            ranks.extend(out.iter().map(|c| c.rank));
            std::mem::swap(prev, out);
        }
    }

    /// [`SpatialIndex::best_within`] for a group of nearby points at once: one traversal
    /// collects, for the group's bounding box, the leaves that may hold a candidate of any
    /// of its points and the subtrees inside every point's disk; each point then scans that
    /// short list in rank order and stops at the first rank that cannot win. Answers are
    /// the same as `best_within`'s, point by point; only the tree walk is shared.
    ///
    /// The group-level tests are safe by the same monotonicity argument as the node tests:
    /// for a point in the group's box and a center in a node's box, `|fl(px - cx)|` lies
    /// between the rounded box-to-box gap and the rounded box-to-box span, so the distance
    /// SPEC.md computes lies between the two distances computed here. A relative margin of
    /// 1e-9 is added on top. Every decision for a single point is still made by the exact
    /// [`Within`] test. Callers use this only when [`SpatialIndex::group_search_applies`].
    pub fn best_within_group(
        &self,
        xs: &[f64],
        ys: &[f64],
        max_dist: f64,
        out: &mut [u32],
        entries: &mut Vec<GroupEntry>,
    ) {
        let Some(group) = finite_bounds(xs, ys) else {
            out.fill(NO_MATCH);
            return; // no finite point: none can match
        };
        let planar = PlanarGroup {
            group,
            reach: max_dist * (1.0 + 1e-9),
            shrink: max_dist * (1.0 - 1e-9),
        };
        let within = Within::new(max_dist);
        self.best_by_group(&planar, |_| within, xs, ys, out, entries);
    }

    /// The walk of [`SpatialIndex::best_within_group`], generic over the candidate rule
    /// (docs/STYLE.md 11): `group` places a node for every point of the group at once,
    /// `rule_of(k)` is point `k`'s own rule. One walk collects the subtrees the group
    /// places inside (every center below is a candidate of every point) and the leaves
    /// it does not place outside; each point with finite coordinates then scans them in
    /// rank order with its own rule, up to the first rank that cannot win.
    pub fn best_by_group<G: GroupReach, R: CenterRule>(
        &self,
        group: &G,
        rule_of: impl Fn(usize) -> R,
        xs: &[f64],
        ys: &[f64],
        out: &mut [u32],
        entries: &mut Vec<GroupEntry>,
    ) {
        out.fill(NO_MATCH);
        if self.rank_row.is_empty() {
            return;
        }
        let leaves = 1u32 << self.depth;
        entries.clear();
        let mut group_best = NO_MATCH;
        let mut stack = [(0u32, 0u32, 0u32); 40];
        stack[0] = (1, 0, self.item_rank.len() as u32);
        let mut top = 1;
        while top > 0 {
            top -= 1;
            let (node, lo, hi) = stack[top];
            let rank = self.node_rank[node as usize];
            if rank >= group_best {
                continue;
            }
            match group.group_reach(node as usize, &self.node_box[node as usize]) {
                Reach::Outside => continue, // no point of the group reaches this box
                Reach::Inside => {
                    // every center below is a candidate of every point of the group
                    entries.push(GroupEntry {
                        rank,
                        node,
                        lo,
                        hi,
                        inside: true,
                    });
                    group_best = rank;
                    continue;
                }
                Reach::Partial => {}
            }
            if node >= leaves {
                entries.push(GroupEntry {
                    rank,
                    node,
                    lo,
                    hi,
                    inside: false,
                });
                continue;
            }
            let mid = lo + (hi - lo) / 2;
            stack[top] = (2 * node + 1, mid, hi);
            stack[top + 1] = (2 * node, lo, mid);
            top += 2;
        }
        // Disjoint subtrees have distinct minimum ranks: one order.
        entries.sort_unstable_by_key(|e| e.rank);
        for (k, ((slot, &px), &py)) in out.iter_mut().zip(xs).zip(ys).enumerate() {
            if !(px.is_finite() && py.is_finite()) {
                continue; // NaN or infinite: every distance is NaN or inf, never a candidate
            }
            let rule = rule_of(k);
            let mut best = NO_MATCH;
            for e in entries.iter() {
                if e.rank >= best {
                    break;
                }
                if e.inside {
                    best = e.rank;
                    break;
                }
                match rule.reach(e.node as usize, &self.node_box[e.node as usize], px, py) {
                    Reach::Outside => {}
                    Reach::Inside => {
                        best = e.rank; // sorted by rank: nothing after can do better
                        break;
                    }
                    Reach::Partial => best = self.scan_leaf(&rule, px, py, e.lo, e.hi, best),
                }
            }
            *slot = best;
        }
    }

    /// [`SpatialIndex::best_k_within`] for a group of nearby points at once, as
    /// [`SpatialIndex::best_within_group`] is for `k = 1`: one walk collects the leaves
    /// that may hold a candidate of any point of the group (marked when inside every
    /// point's disk), pruned by the k-th smallest rank among the leaves inside every
    /// disk (all of them are candidates of every point); each point then scans those
    /// leaves in rank order until the k-th best it has found ends the scan. Appends each
    /// point's count to `counts` and its ranks, best first, to `ranks`. Group-level tests
    /// are those of `best_within_group` (same margins, same argument); each point's own
    /// decisions are [`Within`]'s. Use only when [`SpatialIndex::group_search_applies`].
    #[allow(clippy::too_many_arguments)]
    pub fn best_k_within_group(
        &self,
        xs: &[f64],
        ys: &[f64],
        max_dist: f64,
        k: usize,
        counts: &mut Vec<u32>,
        ranks: &mut Vec<u32>,
        scratch: &mut GroupScratch,
    ) {
        let GroupScratch {
            entries,
            guaranteed,
            best,
        } = scratch;
        let Some(group) = finite_bounds(xs, ys).filter(|_| !self.rank_row.is_empty() && k > 0)
        else {
            counts.extend(std::iter::repeat_n(0, xs.len()));
            return; // no polygon, or no finite point: none can match
        };
        let reach = max_dist * (1.0 + 1e-9);
        let shrink = max_dist * (1.0 - 1e-9);
        let leaves = 1u32 << self.depth;
        entries.clear();
        guaranteed.clear();
        let mut group_bound = NO_MATCH;
        let mut stack = [(0u32, 0u32, 0u32, false); 40];
        stack[0] = (1, 0, self.item_rank.len() as u32, false);
        let mut top = 1;
        while top > 0 {
            top -= 1;
            let (node, lo, hi, inside) = stack[top];
            let rank = self.node_rank[node as usize];
            if rank >= group_bound {
                continue;
            }
            let b = self.node_box[node as usize];
            let inside = inside || {
                if box_gap(&b, &group) > reach {
                    continue; // no point of the group reaches this box
                }
                box_span(&b, &group) < shrink
            };
            if node >= leaves {
                entries.push(GroupEntry {
                    rank,
                    node,
                    lo,
                    hi,
                    inside,
                });
                if inside {
                    // every item is a candidate of every point: the leaf's first k ranks
                    // (it is sorted) bound what the group can need
                    for &r in &self.item_rank[lo as usize..(hi as usize).min(lo as usize + k)] {
                        insert_best(guaranteed, k, r, |a, b| a < b);
                    }
                    if guaranteed.len() == k {
                        group_bound = guaranteed[k - 1];
                    }
                }
                continue;
            }
            let mid = lo + (hi - lo) / 2;
            stack[top] = (2 * node + 1, mid, hi, inside);
            stack[top + 1] = (2 * node, lo, mid, inside);
            top += 2;
        }
        // Leaves are disjoint: distinct minimum ranks, one order.
        entries.sort_unstable_by_key(|e| e.rank);
        let within = Within::new(max_dist);
        for (&px, &py) in xs.iter().zip(ys) {
            best.clear();
            if px.is_finite() && py.is_finite() {
                for e in entries.iter() {
                    let bound = if best.len() == k {
                        best[k - 1]
                    } else {
                        NO_MATCH
                    };
                    if e.rank >= bound {
                        break; // sorted by minimum rank: nothing after can enter the k best
                    }
                    let all = e.inside
                        || match self.classify(&within, px, py, e.node) {
                            Reach::Outside => continue,
                            Reach::Inside => true,
                            Reach::Partial => false,
                        };
                    for i in e.lo as usize..e.hi as usize {
                        let r = self.item_rank[i];
                        if best.len() == k && r >= best[k - 1] {
                            break;
                        }
                        if all || within.test(px, py, self.item_x[i], self.item_y[i]) {
                            insert_best(best, k, r, |a, b| a < b);
                        }
                    }
                }
            }
            counts.push(best.len() as u32);
            ranks.extend_from_slice(best);
        }
    }

    /// Whether [`SpatialIndex::best_within_group`] may be used for `max_dist`: its relative
    /// margins need `max_dist^2` to be a normal float (or `max_dist` infinite).
    pub fn group_search_applies(max_dist: f64) -> bool {
        let r2 = max_dist * max_dist;
        (r2.is_normal() && r2 > f64::MIN_POSITIVE * 1e10) || max_dist == f64::INFINITY
    }

    /// The `k` candidates of `(px, py)` under `rule` with the smallest keys (largest if
    /// `descending`), ties to the lowest polygon row, as `(key, rank)` into `out`
    /// (cleared first): the nearest-first walk generic over the rule's metric
    /// ([`NearRule`]; the planar center rule has its own seeded and grouped walk,
    /// [`SpatialIndex::nearest_k_within`]). A node is skipped when the rule places it
    /// outside, or when its key bound is strictly worse than the k-th key found.
    pub fn nearest_k_by<R: NearRule>(
        &self,
        rule: &R,
        px: f64,
        py: f64,
        k: usize,
        descending: bool,
        out: &mut Vec<(f64, u32)>,
    ) {
        out.clear();
        if self.rank_row.is_empty() || k == 0 {
            return;
        }
        let leaves = 1u32 << self.depth;
        let rows = &self.rank_row;
        // strictly worse than the k-th: beyond its key
        let worse = |key: f64, out: &Vec<(f64, u32)>| {
            out.len() == k
                && if descending {
                    key < out[k - 1].0
                } else {
                    key > out[k - 1].0
                }
        };
        let better = |a: &(f64, u32), b: &(f64, u32)| {
            let closer = if descending { a.0 > b.0 } else { a.0 < b.0 };
            closer || (a.0 == b.0 && rows[a.1 as usize] < rows[b.1 as usize])
        };
        let bound = |node: u32| {
            if descending {
                rule.far_key(node as usize)
            } else {
                rule.near_key(node as usize)
            }
        };
        // (node, lo, hi, key bound, inside); at most depth + 2 entries.
        let mut stack = [(0u32, 0u32, 0u32, 0.0f64, false); 40];
        stack[0] = (1, 0, self.item_rank.len() as u32, bound(1), false);
        let mut top = 1;
        while top > 0 {
            top -= 1;
            let (node, lo, hi, key, inside) = stack[top];
            if worse(key, out) {
                continue;
            }
            let inside = inside
                || match rule.reach(node as usize, &self.node_box[node as usize], px, py) {
                    Reach::Outside => continue,
                    Reach::Inside => true,
                    Reach::Partial => false,
                };
            if node >= leaves {
                for i in lo as usize..hi as usize {
                    let r = self.item_rank[i];
                    let key = rule.key(r);
                    if worse(key, out) {
                        continue;
                    }
                    if inside || rule.accepts(i, r, self.item_x[i], self.item_y[i], px, py) {
                        insert_best(out, k, (key, r), better);
                    }
                }
                continue;
            }
            let mid = lo + (hi - lo) / 2;
            let (l, r) = (2 * node, 2 * node + 1);
            let (kl, kr) = (bound(l), bound(r));
            // Pop the likelier better child first.
            let left_first = if descending { kl >= kr } else { kl <= kr };
            let (a, b) = if left_first {
                ((r, mid, hi, kr), (l, lo, mid, kl))
            } else {
                ((l, lo, mid, kl), (r, mid, hi, kr))
            };
            for (n, nlo, nhi, key) in [a, b] {
                if !worse(key, out) {
                    stack[top] = (n, nlo, nhi, key, inside);
                    top += 1;
                }
            }
        }
    }

    /// Call `f(rank, distance)` for every candidate of `(px, py)`, in no particular order.
    #[inline]
    pub fn for_each_within(&self, px: f64, py: f64, max_dist: f64, mut f: impl FnMut(u32, f64)) {
        self.for_each_by(&Within::new(max_dist), px, py, |rank, cx, cy| {
            f(rank, distance(px, py, cx, cy))
        });
    }

    /// Call `f(rank, cx, cy)` for every center `rule` accepts at `(px, py)`, in no
    /// particular order: the walk of all candidates, generic over the candidate rule (a
    /// node the rule places wholly inside gives all its centers without a test).
    pub fn for_each_by<R: CenterRule>(
        &self,
        rule: &R,
        px: f64,
        py: f64,
        mut f: impl FnMut(u32, f64, f64),
    ) {
        if self.rank_row.is_empty() {
            return;
        }
        let leaves = 1u32 << self.depth;
        // (node, lo, hi, inside); at most depth + 2 entries.
        let mut stack = [(0u32, 0u32, 0u32, false); 40];
        stack[0] = (1, 0, self.item_rank.len() as u32, false);
        let mut top = 1;
        while top > 0 {
            top -= 1;
            let (node, lo, hi, inside) = stack[top];
            let inside = inside
                || match rule.reach(node as usize, &self.node_box[node as usize], px, py) {
                    Reach::Outside => continue,
                    Reach::Inside => true,
                    Reach::Partial => false,
                };
            if inside || node >= leaves {
                for i in lo as usize..hi as usize {
                    let (r, cx, cy) = (self.item_rank[i], self.item_x[i], self.item_y[i]);
                    if inside || rule.accepts(i, r, cx, cy, px, py) {
                        f(r, cx, cy);
                    }
                }
                continue;
            }
            let mid = lo + (hi - lo) / 2;
            stack[top] = (2 * node + 1, mid, hi, false);
            stack[top + 1] = (2 * node, lo, mid, false);
            top += 2;
        }
    }

    /// Serialise to bytes (little-endian, versioned, with a checksum): format version 3,
    /// the index alone. The row count, the [`Order`] (a tag and the rank column's name),
    /// then per rank the polygon row (u32), area, center x and center y (f64), then the
    /// ranks in tree order (u32): 32 bytes per matchable polygon. Node boxes and ranks are
    /// not stored; [`SpatialIndex::from_bytes`] recomputes them.
    /// [`SpatialIndex::to_bytes_with_polygons`] writes version 4, which can carry the
    /// polygons' outlines as well.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48 + self.rank_row.len() * 32);
        out.extend_from_slice(MAGIC_V3);
        self.write_body(&mut out);
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// The body shared by format versions 3 and 4: everything after the magic up to the
    /// end of the tree order.
    fn write_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.rows as u64).to_le_bytes());
        out.extend_from_slice(&(self.rank_row.len() as u64).to_le_bytes());
        let (tag, name) = match &self.order {
            Order::Area { descending } => (u64::from(*descending), ""),
            Order::Column { name, descending } => (2 + u64::from(*descending), name.as_str()),
        };
        // The metric rides in the order tag (bit 8): planar bytes are unchanged, and a
        // reader that knows no metric refuses sphere bytes instead of reading them planar.
        let tag = tag
            | if self.metric == Metric::Sphere {
                SPHERE_TAG
            } else {
                0
            };
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&(name.len() as u64).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        put_u32(out, &self.rank_row);
        for v in [&self.rank_area, &self.rank_x, &self.rank_y] {
            put_f64(out, v);
        }
        put_u32(out, &self.item_rank);
    }

    /// Read what [`SpatialIndex::to_bytes`] or [`SpatialIndex::to_bytes_with_polygons`]
    /// wrote (format versions 2 to 4; the outlines of version 4 are read, checked and
    /// dropped: [`SpatialIndex::from_bytes_with_polygons`] keeps them), and recompute the
    /// tree's nodes.
    ///
    /// Only what is read is checked: rows in range and distinct, finite centers and
    /// areas, ranks in `(area, row)` order, the tree order a permutation of the ranks with
    /// each leaf in rank order. Node boxes and minimum ranks are computed here from the
    /// items, by the same code as [`SpatialIndex::new`], so whatever the stored order, an
    /// index that loads answers exactly as a brute-force search over its own centers and
    /// areas (a forged order can only make it slower).
    ///
    /// # Implementation
    /// O(P) apart from one sort of the rows (to refuse a row ranked twice); O(coordinates)
    /// more for outlines.
    ///
    /// # Errors
    /// [`PolymatchError::InvalidIndexBytes`] if the bytes are truncated, corrupt (checksum),
    /// from another format version, or inconsistent.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_bytes_with_polygons(bytes).map(|(index, _)| index)
    }

    /// Check the magic and the checksum of serialised bytes: the format version (2 to
    /// 4) and a reader over the body (after the magic, before the checksum).
    fn open_bytes(bytes: &[u8]) -> Result<(u8, Reader<'_>)> {
        let version = match bytes.get(..8) {
            Some(m) if m == MAGIC_V2 => 2,
            Some(m) if m == MAGIC_V3 => 3,
            Some(m) if m == MAGIC_V4 => 4,
            _ => 0,
        };
        if version == 0 || bytes.len() < 8 + 24 {
            return Err(PolymatchError::InvalidIndexBytes(
                "not a polymatch index of this version (wrong header): rebuild it with to_bytes()"
                    .into(),
            ));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        if checksum(body).to_le_bytes() != sum {
            return Err(PolymatchError::InvalidIndexBytes(
                "checksum mismatch (truncated or corrupted)".into(),
            ));
        }
        Ok((version, Reader { buf: &body[8..] }))
    }

    /// Read the body [`SpatialIndex::write_body`] wrote (without the order before
    /// version 3), check it, and recompute the tree's nodes; `r` is left after it.
    fn read_body(r: &mut Reader<'_>, version: u8) -> Result<Self> {
        let bad = |why: &str| PolymatchError::InvalidIndexBytes(why.to_string());
        let rows = r.u64()? as usize;
        let n = r.u64()? as usize;
        if n > rows || rows >= u32::MAX as usize {
            return Err(bad("inconsistent sizes"));
        }
        let mut metric = Metric::Planar;
        let order = if version >= 3 {
            let mut tag = r.u64()?;
            if tag & SPHERE_TAG != 0 {
                metric = Metric::Sphere;
                tag &= !SPHERE_TAG;
            }
            let len = r.u64()?;
            let name = r.take(usize::try_from(len).map_err(|_| bad("truncated"))?)?;
            let name = std::str::from_utf8(name)
                .map_err(|_| bad("the rank column's name is not UTF-8"))?
                .to_string();
            match (tag, name.is_empty()) {
                (0 | 1, true) => Order::Area {
                    descending: tag == 1,
                },
                (2 | 3, false) => Order::Column {
                    name,
                    descending: tag == 3,
                },
                _ => return Err(bad("unknown rank order")),
            }
        } else {
            Order::default()
        };
        let rank_row = r.u32s(n)?;
        let rank_area = r.f64s(n)?;
        let rank_x = r.f64s(n)?;
        let rank_y = r.f64s(n)?;
        let item_rank = r.u32s(n)?;
        if rank_row.iter().any(|&row| row as usize >= rows) {
            return Err(bad("row out of range"));
        }
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        if !(finite(&rank_area) && finite(&rank_x) && finite(&rank_y)) {
            return Err(bad("non-finite center or area"));
        }
        // An area order is checked against the areas: strictly increasing (area, row)
        // keys (area reversed if descending). A column order is the stored order itself
        // (the column is not in the bytes): only that no row is ranked twice.
        let ordered = follows(&order, &rank_area, &rank_row);
        let mut rows_seen = rank_row.clone();
        rows_seen.sort_unstable();
        if !ordered || rows_seen.windows(2).any(|w| w[0] == w[1]) {
            return Err(bad("ranks out of (area, row) order, or a row ranked twice"));
        }
        let mut seen = vec![false; n];
        for &k in &item_rank {
            if k as usize >= n || std::mem::replace(&mut seen[k as usize], true) {
                return Err(bad("the tree order is not a permutation of the ranks"));
            }
        }
        let depth = leaf_depth(n);
        if n > 0 {
            let mut ranges = Vec::new();
            leaf_ranges(0, n, depth, &mut ranges);
            if ranges
                .iter()
                .any(|&(lo, hi)| item_rank[lo..hi].windows(2).any(|w| w[0] > w[1]))
            {
                return Err(bad("a leaf is out of rank order"));
            }
        }
        let items: Vec<Item> = item_rank
            .iter()
            .map(|&k| Item {
                x: rank_x[k as usize],
                y: rank_y[k as usize],
                rank: k,
            })
            .collect();
        if metric == Metric::Sphere
            && rank_x
                .iter()
                .zip(&rank_y)
                .any(|(&x, &y)| !crate::sphere::is_lon_lat(x, y))
        {
            return Err(bad(
                "a center outside longitude/latitude range on the sphere",
            ));
        }
        let mut index = Self::from_items(rows, depth, rank_row, rank_area, rank_x, rank_y, &items);
        index.order = order;
        Ok(index.with_metric(metric))
    }
}

/// The bounding box `[min x, min y, max x, max y]` of the finite points, if any.
fn finite_bounds(xs: &[f64], ys: &[f64]) -> Option<[f64; 4]> {
    let mut g = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for (&x, &y) in xs.iter().zip(ys) {
        if x.is_finite() && y.is_finite() {
            g = [g[0].min(x), g[1].min(y), g[2].max(x), g[3].max(y)];
        }
    }
    (g[0] <= g[2]).then_some(g)
}

/// The distance between two boxes (0 if they overlap), rounded as SPEC's distance of a
/// point of one to a point of the other would be: never more than any such distance.
#[inline(always)]
pub(crate) fn box_gap(b: &[f64; 4], g: &[f64; 4]) -> f64 {
    let gx = (b[0] - g[2]).max(g[0] - b[2]).max(0.0);
    let gy = (b[1] - g[3]).max(g[1] - b[3]).max(0.0);
    (gx * gx + gy * gy).sqrt()
}

/// The largest distance between a point of one box and a point of the other, rounded:
/// never less than SPEC's distance of any such pair.
#[inline(always)]
fn box_span(b: &[f64; 4], g: &[f64; 4]) -> f64 {
    let fx = (g[2] - b[0]).max(b[2] - g[0]);
    let fy = (g[3] - b[1]).max(b[3] - g[1]);
    (fx * fx + fy * fy).sqrt()
}

/// Whether ranked areas and rows follow `order`: for an area order, strictly increasing
/// `(area, row)` keys (area reversed if descending); a column order cannot be checked
/// without the column, and is taken as given.
fn follows(order: &Order, rank_area: &[f64], rank_row: &[u32]) -> bool {
    match order {
        Order::Area { descending } => (1..rank_area.len()).all(|k| {
            let (a, b) = (float_key(rank_area[k - 1]), float_key(rank_area[k]));
            let (a, b) = if *descending { (!a, !b) } else { (a, b) };
            (a, rank_row[k - 1]) < (b, rank_row[k])
        }),
        Order::Column { .. } => true,
    }
}

/// Smallest depth whose leaves hold at most [`LEAF_SIZE`] items.
fn leaf_depth(n: usize) -> u32 {
    let mut depth = 0;
    while n.div_ceil(1 << depth) > LEAF_SIZE {
        depth += 1;
    }
    depth
}

/// Sort each leaf of a tree of `depth` levels over `items` (in tree order) by rank, the
/// leaves in parallel.
fn sort_leaves(items: &mut [Item], depth: u32) {
    if items.is_empty() {
        return;
    }
    let mut ranges = Vec::with_capacity(1usize << depth);
    leaf_ranges(0, items.len(), depth, &mut ranges);
    // The leaves are contiguous, in order: cut `items` into them.
    let mut leaves = Vec::with_capacity(ranges.len());
    let mut rest = items;
    for &(lo, hi) in &ranges {
        let (leaf, after) = std::mem::take(&mut rest).split_at_mut(hi - lo);
        leaves.push(leaf);
        rest = after;
    }
    leaves
        .into_par_iter()
        .with_min_len(64)
        .for_each(|leaf| leaf.sort_unstable_by_key(|it| it.rank));
}

/// Reorder `items` into k-d tree order: median split along the wider axis, `depth` levels.
fn partition(items: &mut [Item], depth: u32) {
    if depth == 0 || items.len() <= 1 {
        return;
    }
    let (mut x0, mut y0, mut x1, mut y1) = (
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    );
    for it in items.iter() {
        (x0, y0, x1, y1) = (x0.min(it.x), y0.min(it.y), x1.max(it.x), y1.max(it.y));
    }
    let mid = items.len() / 2;
    if x1 - x0 >= y1 - y0 {
        items.select_nth_unstable_by(mid, |a, b| a.x.total_cmp(&b.x).then(a.rank.cmp(&b.rank)));
    } else {
        items.select_nth_unstable_by(mid, |a, b| a.y.total_cmp(&b.y).then(a.rank.cmp(&b.rank)));
    }
    let (left, right) = items.split_at_mut(mid);
    if left.len() + right.len() > PARALLEL_BUILD {
        rayon::join(
            || partition(left, depth - 1),
            || partition(right, depth - 1),
        );
    } else {
        partition(left, depth - 1);
        partition(right, depth - 1);
    }
}

/// Boxes and minimum ranks of every node (heap order, index 0 unused) over `items` in
/// tree order, leaves `2^depth ..`: the leaf ones from their items, the others from their
/// children.
fn tree_nodes(items: &[Item], depth: u32) -> (Vec<[f64; 4]>, Vec<u32>) {
    let leaves = 1usize << depth;
    let empty = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    let mut node_box = vec![empty; 2 * leaves];
    let mut node_rank = vec![NO_MATCH; 2 * leaves];
    if items.is_empty() {
        return (node_box, node_rank);
    }
    let mut ranges = Vec::with_capacity(leaves);
    leaf_ranges(0, items.len(), depth, &mut ranges);
    for (leaf, &(lo, hi)) in ranges.iter().enumerate() {
        let slot = leaves + leaf;
        for it in &items[lo..hi] {
            let b = &mut node_box[slot];
            *b = [
                b[0].min(it.x),
                b[1].min(it.y),
                b[2].max(it.x),
                b[3].max(it.y),
            ];
            node_rank[slot] = node_rank[slot].min(it.rank);
        }
    }
    for k in (1..leaves).rev() {
        let (l, r) = (node_box[2 * k], node_box[2 * k + 1]);
        node_box[k] = [
            l[0].min(r[0]),
            l[1].min(r[1]),
            l[2].max(r[2]),
            l[3].max(r[3]),
        ];
        node_rank[k] = node_rank[2 * k].min(node_rank[2 * k + 1]);
    }
    (node_box, node_rank)
}

/// The item ranges of the leaves, left to right (the same splits as `partition`).
fn leaf_ranges(lo: usize, hi: usize, depth: u32, out: &mut Vec<(usize, usize)>) {
    if depth == 0 {
        out.push((lo, hi));
        return;
    }
    let mid = lo + (hi - lo) / 2;
    leaf_ranges(lo, mid, depth - 1, out);
    leaf_ranges(mid, hi, depth - 1, out);
}

fn put_u32(out: &mut Vec<u8>, v: &[u32]) {
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

fn put_f64(out: &mut Vec<u8>, v: &[f64]) {
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// FNV-1a over 8-byte words: cheap, and catches truncation and flipped bytes.
fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0x0100_0000_01b3);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if n > self.buf.len() {
            return Err(PolymatchError::InvalidIndexBytes("truncated".into()));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u64(&mut self) -> Result<u64> {
        let mut w = [0u8; 8];
        w.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(w))
    }
    fn u32s(&mut self, n: usize) -> Result<Vec<u32>> {
        let len = n
            .checked_mul(4)
            .ok_or_else(|| PolymatchError::InvalidIndexBytes("size overflow".into()))?;
        Ok(self
            .take(len)?
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    /// `n` little-endian 8-byte values, each read with `from`.
    fn words8<T>(&mut self, n: usize, from: fn([u8; 8]) -> T) -> Result<Vec<T>> {
        let len = n
            .checked_mul(8)
            .ok_or_else(|| PolymatchError::InvalidIndexBytes("size overflow".into()))?;
        Ok(self
            .take(len)?
            .chunks_exact(8)
            .map(|c| from([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    }
    fn i64s(&mut self, n: usize) -> Result<Vec<i64>> {
        self.words8(n, i64::from_le_bytes)
    }
    fn f64s(&mut self, n: usize) -> Result<Vec<f64>> {
        self.words8(n, f64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(cx: &[f64], cy: &[f64], area: &[f64], px: f64, py: f64, r: f64) -> Option<u32> {
        (0..cx.len())
            .filter(|&i| distance(px, py, cx[i], cy[i]) < r)
            .min_by(|&a, &b| area[a].total_cmp(&area[b]).then(a.cmp(&b)))
            .map(|i| i as u32)
    }

    #[test]
    fn matches_brute_force_on_a_grid() {
        let mut cx = vec![];
        let mut cy = vec![];
        let mut area = vec![];
        for i in 0..40 {
            for j in 0..37 {
                cx.push(i as f64 * 1.5);
                cy.push(j as f64);
                area.push(((i * 7 + j * 13) % 11) as f64);
            }
        }
        let index = SpatialIndex::from_centers(&cx, &cy, &area, |_| true);
        for (px, py) in [
            (3.2, 4.4),
            (0.0, 0.0),
            (59.0, 36.5),
            (-10.0, -10.0),
            (30.0, 18.0),
        ] {
            for r in [0.1, 1.0, 1.5, 3.0, 10.0, 100.0, f64::INFINITY] {
                let got = index.best_within(px, py, r);
                let got = (got != NO_MATCH).then(|| index.row_of(got));
                assert_eq!(got, brute(&cx, &cy, &area, px, py, r), "{px} {py} {r}");
                let mut all = vec![];
                index.for_each_within(px, py, r, |k, _| all.push(index.row_of(k)));
                all.sort();
                let want: Vec<u32> = (0..cx.len() as u32)
                    .filter(|&i| distance(px, py, cx[i as usize], cy[i as usize]) < r)
                    .collect();
                assert_eq!(all, want);
            }
        }
        assert_eq!(index.best_within(f64::NAN, 0.0, 5.0), NO_MATCH);
    }

    #[test]
    fn group_search_equals_point_search() {
        let mut rng = crate::synth::Rng::new(0x9e37_79b9_7f4a_7c15);
        let mut unit = || rng.uniform();
        let n = 5000;
        let cx: Vec<f64> = (0..n).map(|_| (unit() * 200.0).floor()).collect();
        let cy: Vec<f64> = (0..n).map(|_| (unit() * 200.0).floor()).collect();
        let area: Vec<f64> = (0..n).map(|_| (unit() * 4.0).floor()).collect();
        let index = SpatialIndex::from_centers(&cx, &cy, &area, |i| i % 17 != 0);
        let mut entries = Vec::new();
        for r in [0.5, 1.0, 3.0, 5.0, 20.0, 1e3, f64::INFINITY] {
            for group in [1usize, 7, 32] {
                let base_x = unit() * 200.0;
                let base_y = unit() * 200.0;
                let mut xs: Vec<f64> = (0..group)
                    .map(|_| base_x + (unit() * 6.0).floor())
                    .collect();
                let ys: Vec<f64> = (0..group)
                    .map(|_| base_y + (unit() * 6.0).floor())
                    .collect();
                if group > 2 {
                    xs[1] = f64::NAN;
                    xs[2] = f64::INFINITY;
                }
                let mut out = vec![0; group];
                index.best_within_group(&xs, &ys, r, &mut out, &mut entries);
                let want: Vec<u32> = xs
                    .iter()
                    .zip(&ys)
                    .map(|(&x, &y)| index.best_within(x, y, r))
                    .collect();
                assert_eq!(out, want, "r={r} group={group}");
            }
        }
    }

    #[test]
    fn version_2_bytes_still_load_and_orders_are_checked() {
        let cx = [0.0, 1.0, 2.0, 3.0];
        let index = SpatialIndex::from_centers(&cx, &cx, &[3.0, 2.0, 2.0, 1.0], |_| true);
        let v3 = index.to_bytes();
        // version 2: no order tag and no name (area ascending)
        let mut v2 = MAGIC_V2.to_vec();
        v2.extend_from_slice(&v3[8..24]);
        v2.extend_from_slice(&v3[40..v3.len() - 8]);
        let sum = checksum(&v2);
        v2.extend_from_slice(&sum.to_le_bytes());
        assert_eq!(SpatialIndex::from_bytes(&v2).unwrap(), index);
        // an area-descending order is checked against the areas: the ascending ranks
        // relabelled as descending are refused
        let mut relabelled = v3[..v3.len() - 8].to_vec();
        relabelled[24] = 1;
        let sum = checksum(&relabelled);
        relabelled.extend_from_slice(&sum.to_le_bytes());
        assert!(SpatialIndex::from_bytes(&relabelled).is_err());
        let rows = vec![3, 2, 1, 0];
        let desc = index
            .with_order(Order::Area { descending: true }, vec![0, 1, 2, 3])
            .unwrap();
        assert_eq!(SpatialIndex::from_bytes(&desc.to_bytes()).unwrap(), desc);
        // with_order refuses a list that is not a permutation of the matchable rows
        assert!(index
            .with_order(Order::default(), vec![0, 0, 1, 2])
            .is_err());
        assert!(index.with_order(Order::default(), vec![0, 1, 2]).is_err());
        assert!(index
            .with_order(Order::default(), vec![0, 1, 2, 9])
            .is_err());
        // and the order it is given is the order it answers in
        assert!(
            index.with_order(Order::default(), rows.clone()).is_err(),
            "not by area"
        );
        let by_row = Order::Column {
            name: "row".into(),
            descending: true,
        };
        let by_row = index.with_order(by_row, rows).unwrap();
        let mut best = Vec::new();
        by_row.best_k_within(0.0, 0.0, &Within::new(f64::INFINITY), 4, &mut best);
        let got: Vec<u32> = best.iter().map(|&r| by_row.row_of(r)).collect();
        assert_eq!(got, vec![3, 2, 1, 0]);
    }

    #[test]
    fn bytes_round_trip_and_corruption() {
        let cx = [0.0, 1.0, 2.0];
        let index = SpatialIndex::from_centers(&cx, &cx, &[3.0, 2.0, 1.0], |i| i != 1);
        let bytes = index.to_bytes();
        assert_eq!(SpatialIndex::from_bytes(&bytes).unwrap(), index);
        assert!(SpatialIndex::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert!(SpatialIndex::from_bytes(&flipped).is_err());
        assert!(SpatialIndex::from_bytes(b"nonsense").is_err());
        let empty = SpatialIndex::from_centers(&[], &[], &[], |_| true);
        assert_eq!(SpatialIndex::from_bytes(&empty.to_bytes()).unwrap(), empty);
        // A forged tree order (checksum recomputed): a repeated rank is refused; a leaf
        // out of rank order is refused; any other permutation answers as brute force.
        let n = 40usize;
        let xs: Vec<f64> = (0..n).map(|i| (i * 7 % 13) as f64).collect();
        let ys: Vec<f64> = (0..n).map(|i| (i * 5 % 11) as f64).collect();
        let areas: Vec<f64> = (0..n).map(|i| (i % 6) as f64).collect();
        let index = SpatialIndex::from_centers(&xs, &ys, &areas, |_| true);
        let order_at = 40 + n * 28; // header: magic, rows, n, order tag, name length
        let forge = |edit: &dyn Fn(&mut Vec<u32>)| {
            let mut order = index.item_rank.clone();
            edit(&mut order);
            let mut bytes = index.to_bytes();
            for (i, k) in order.iter().enumerate() {
                bytes[order_at + 4 * i..order_at + 4 * i + 4].copy_from_slice(&k.to_le_bytes());
            }
            let body = bytes.len() - 8;
            let sum = checksum(&bytes[..body]);
            bytes[body..].copy_from_slice(&sum.to_le_bytes());
            SpatialIndex::from_bytes(&bytes)
        };
        assert!(forge(&|o| o[1] = o[0]).is_err());
        assert!(forge(&|o| o.swap(0, 1)).is_err()); // leaf 0 out of rank order
        let swapped = forge(&|o| {
            let (a, b) = (o[0], o[n - 1]);
            o[0] = b;
            o[n - 1] = a;
            o[..n / 2].sort_unstable();
            o[n / 2..].sort_unstable();
        })
        .expect("a permutation with sorted leaves loads");
        for (px, py) in [(0.5, 0.5), (6.0, 3.0), (12.0, 10.0)] {
            for r in [0.5, 2.0, 5.0, f64::INFINITY] {
                assert_eq!(
                    swapped.best_within(px, py, r),
                    index.best_within(px, py, r),
                    "({px}, {py}) r={r}"
                );
            }
        }
        assert_eq!(empty.best_within(0.0, 0.0, f64::INFINITY), NO_MATCH);
    }
}
