//! Spatial partitions for a join whose polygons do not fit one worker.
//!
//! A [`Tiling`] cuts the plane into rectangular *tiles* by a KD split of a sample of
//! polygon centers, sized by count (each tile gets about the same number of sampled
//! centers, like Sedona's KDB partitioner). Then:
//! - every point goes to exactly one tile, the one whose half-open rectangle holds it
//!   ([`Tiling::tile_of`]), so no point is matched twice;
//! - every polygon goes to each tile whose closed rectangle its center is within
//!   `max_dist` of ([`Tiling::halo`]): the tile's own polygons and a *halo* around it.
//!
//! # Why the answer is exact
//! A candidate of point `p` is a polygon whose center `c` has SPEC's
//! `distance(p, c) < max_dist`. `p` lies in its tile's closed rectangle `R`, and the
//! gap between `R` and `c` as [`crate::index`]'s `box_gap` rounds it is never more than
//! SPEC's rounded distance from `c` to any point of `R` (rounding is monotone), so
//! `gap(R, c) <= distance(p, c) < max_dist`: the halo test keeps every candidate. It may
//! keep a few more polygons than needed, which changes nothing: within a tile, a
//! point's candidates are exactly its candidates among all polygons, and ranked by the
//! same keys once the tile's polygons keep their global row order.
use crate::error::{PolymatchError, Result};
use crate::index::box_gap;

/// A node of the KD split: cut along `axis` at `at` (`coord < at` goes left), or a tile.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Node {
    Split {
        axis: u8,
        at: f64,
        left: u32,
        right: u32,
    },
    Tile(u32),
}

/// Rectangular tiles that cover the plane, from a KD split of sampled polygon centers.
#[derive(Debug, Clone, PartialEq)]
pub struct Tiling {
    /// Node 0 is the root; a split's children come after it.
    nodes: Vec<Node>,
    /// Closed bounds `[xmin, ymin, xmax, ymax]` of each node (infinite at the edges).
    node_box: Vec<[f64; 4]>,
    /// The node of each tile.
    tile_node: Vec<u32>,
}

const PLANE: [f64; 4] = [
    f64::NEG_INFINITY,
    f64::NEG_INFINITY,
    f64::INFINITY,
    f64::INFINITY,
];

impl Tiling {
    /// Split the plane into at most `tiles` tiles holding about equal shares of the
    /// sample `(xs[i], ys[i])` (non-finite sample points are ignored). Fewer tiles come
    /// out when the sample cannot be split further (too few or repeated points).
    ///
    /// # Implementation
    /// O(S log S log T) for S sampled points: at each node a sort along the wider
    /// axis of its points, cut at the quantile that gives each side its share of tiles.
    /// Deterministic: the same sample always gives the same tiles.
    pub fn from_sample(xs: &[f64], ys: &[f64], tiles: usize) -> Self {
        let mut pts: Vec<(f64, f64)> = xs
            .iter()
            .zip(ys)
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|(&x, &y)| (x, y))
            .collect();
        let mut this = Self {
            nodes: Vec::new(),
            node_box: Vec::new(),
            tile_node: Vec::new(),
        };
        this.split(&mut pts, PLANE, tiles.clamp(1, u32::MAX as usize));
        this
    }

    /// Add the node for `pts` (inside `bbox`) with `budget` tiles; returns its id.
    fn split(&mut self, pts: &mut [(f64, f64)], bbox: [f64; 4], budget: usize) -> u32 {
        let id = self.nodes.len() as u32;
        self.nodes.push(Node::Tile(0));
        self.node_box.push(bbox);
        let cut = if budget > 1 {
            Self::cut(pts, budget)
        } else {
            None
        };
        match cut {
            None => {
                let tile = self.tile_node.len() as u32;
                self.tile_node.push(id);
                self.nodes[id as usize] = Node::Tile(tile);
            }
            Some((axis, at, mid)) => {
                let (lo, hi) = pts.split_at_mut(mid);
                // The nearest whole share of tiles (ties can move the cut off the quantile).
                let n = lo.len() + hi.len();
                let share = (2 * budget * lo.len() + n) / (2 * n);
                let share = share.clamp(1, budget - 1);
                let mut left_box = bbox;
                let mut right_box = bbox;
                left_box[2 + axis as usize] = at;
                right_box[axis as usize] = at;
                let left = self.split(lo, left_box, share);
                let right = self.split(hi, right_box, budget - share);
                self.nodes[id as usize] = Node::Split {
                    axis,
                    at,
                    left,
                    right,
                };
            }
        }
        id
    }

    /// Where to cut `pts` for `budget` tiles: the axis, the value (`coord < at` goes
    /// left) and the number of points that go left, after sorting `pts` along that axis.
    /// None if no axis has two distinct values.
    fn cut(pts: &mut [(f64, f64)], budget: usize) -> Option<(u8, f64, usize)> {
        if pts.len() < 2 {
            return None;
        }
        let span = |axis: u8| {
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for p in pts.iter() {
                let v = if axis == 0 { p.0 } else { p.1 };
                lo = lo.min(v);
                hi = hi.max(v);
            }
            hi - lo
        };
        let first = if span(1) > span(0) { 1 } else { 0 };
        for axis in [first, 1 - first] {
            let coord = |p: &(f64, f64)| if axis == 0 { p.0 } else { p.1 };
            pts.sort_unstable_by(|a, b| coord(a).total_cmp(&coord(b)).then(a.1.total_cmp(&b.1)));
            // The left side's share of the points is its share of the tiles.
            let target = (pts.len() * (budget / 2) / budget).clamp(1, pts.len() - 1);
            let v = coord(&pts[target]);
            let less = pts.partition_point(|p| coord(p) < v);
            let mid = if less > 0 {
                less
            } else {
                pts.partition_point(|p| coord(p) <= v)
            };
            if mid > 0 && mid < pts.len() {
                return Some((axis, coord(&pts[mid]), mid));
            }
        }
        None
    }

    /// The number of tiles.
    pub fn len(&self) -> usize {
        self.tile_node.len()
    }

    /// Whether there are no tiles (never: a tiling has at least one).
    pub fn is_empty(&self) -> bool {
        self.tile_node.is_empty()
    }

    /// The closed bounds `[xmin, ymin, xmax, ymax]` of `tile` (infinite at the edges).
    pub fn bounds(&self, tile: u32) -> [f64; 4] {
        self.node_box[self.tile_node[tile as usize] as usize]
    }

    /// The one tile of point `(x, y)`. A point with a NaN coordinate goes to some tile
    /// (it matches nothing anywhere).
    pub fn tile_of(&self, x: f64, y: f64) -> u32 {
        let mut node = 0usize;
        loop {
            match self.nodes[node] {
                Node::Tile(t) => return t,
                Node::Split {
                    axis,
                    at,
                    left,
                    right,
                } => {
                    let v = if axis == 0 { x } else { y };
                    node = if v < at { left } else { right } as usize;
                }
            }
        }
    }

    /// The tile of each point, in parallel order.
    pub fn route(&self, xs: &[f64], ys: &[f64]) -> Vec<u32> {
        xs.iter()
            .zip(ys)
            .map(|(&x, &y)| self.tile_of(x, y))
            .collect()
    }

    /// Push onto `out`, in increasing order, every tile that a point within `max_dist`
    /// of center `(cx, cy)` can lie in (see the module docs: a superset of the tiles
    /// where this polygon can be a candidate).
    pub fn halo(&self, cx: f64, cy: f64, max_dist: f64, out: &mut Vec<u32>) {
        let c = [cx, cy, cx, cy];
        let start = out.len();
        let mut stack = vec![0u32];
        while let Some(node) = stack.pop() {
            // NaN gaps (a NaN center) fail the test: such a polygon is in no tile.
            let within = box_gap(&self.node_box[node as usize], &c) < max_dist;
            if !within {
                continue;
            }
            match self.nodes[node as usize] {
                Node::Tile(t) => out.push(t),
                Node::Split { left, right, .. } => {
                    stack.push(right);
                    stack.push(left);
                }
            }
        }
        out[start..].sort_unstable();
    }

    /// Push onto `out`, in increasing order, every tile that a point of the closed box
    /// `b = [xmin, ymin, xmax, ymax]` is routed to ([`Tiling::tile_of`]): a split sends
    /// the box left if its minimum is below the cut and right if its maximum is at or
    /// above it, the very tests a point takes. So a polygon assigned the tiles of its
    /// box is in the tile of every point it can contain or cover (the shape rules'
    /// tiles). A box with a NaN bound is in no tile.
    pub fn box_tiles(&self, b: [f64; 4], out: &mut Vec<u32>) {
        if b.iter().any(|v| v.is_nan()) {
            return;
        }
        let start = out.len();
        let mut stack = vec![0u32];
        while let Some(node) = stack.pop() {
            match self.nodes[node as usize] {
                Node::Tile(t) => out.push(t),
                Node::Split {
                    axis,
                    at,
                    left,
                    right,
                } => {
                    let (lo, hi) = if axis == 0 {
                        (b[0], b[2])
                    } else {
                        (b[1], b[3])
                    };
                    if hi >= at {
                        stack.push(right);
                    }
                    if lo < at {
                        stack.push(left);
                    }
                }
            }
        }
        out[start..].sort_unstable();
    }

    /// [`Tiling::assign`] by boxes ([`Tiling::box_tiles`]) instead of centers and a halo,
    /// each box widened by `reach` (0 for `contains`/`covers`; `dwithin`'s `max_dist`):
    /// a point closer than `reach` to a polygon lies in its box widened by `reach`, here
    /// rounded outwards, so the polygon is in that point's tile.
    pub fn assign_boxes(&self, boxes: &[[f64; 4]], reach: f64) -> (Vec<u64>, Vec<u32>) {
        let mut tiles = Vec::new();
        self.collect(boxes.len(), |row, out| {
            tiles.clear();
            let b = boxes[row];
            let b = if reach > 0.0 {
                [
                    (b[0] - reach).next_down(),
                    (b[1] - reach).next_down(),
                    (b[2] + reach).next_up(),
                    (b[3] + reach).next_up(),
                ]
            } else {
                b
            };
            self.box_tiles(b, &mut tiles);
            out.extend(tiles.iter().map(|&t| (t, row as u32)));
        })
    }

    /// `(offsets, rows)` from the `(tile, row)` pairs `pairs_of(row, out)` pushes for
    /// each row.
    fn collect(
        &self,
        rows: usize,
        mut pairs_of: impl FnMut(usize, &mut Vec<(u32, u32)>),
    ) -> (Vec<u64>, Vec<u32>) {
        let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(rows);
        for row in 0..rows {
            pairs_of(row, &mut pairs);
        }
        pairs.sort_unstable();
        let mut offsets = vec![0u64; self.len() + 1];
        for &(t, _) in &pairs {
            offsets[t as usize + 1] += 1;
        }
        for t in 0..self.len() {
            offsets[t + 1] += offsets[t];
        }
        (offsets, pairs.into_iter().map(|(_, r)| r).collect())
    }

    /// The rows of each tile's polygon set: rows `i` with `keep(i)`, assigned by
    /// [`Tiling::halo`], as offsets (one per tile, plus one) into rows that increase
    /// within each tile.
    pub fn assign(
        &self,
        cx: &[f64],
        cy: &[f64],
        max_dist: f64,
        keep: impl Fn(usize) -> bool,
    ) -> (Vec<u64>, Vec<u32>) {
        let mut tiles = Vec::new();
        self.collect(cx.len(), |row, out| {
            if keep(row) {
                tiles.clear();
                self.halo(cx[row], cy[row], max_dist, &mut tiles);
                out.extend(tiles.iter().map(|&t| (t, row as u32)));
            }
        })
    }

    /// The split nodes as `(kind, at, left, right)` rows: kind 0/1 is a cut along x/y,
    /// kind 2 a tile (`left` is its id). [`Tiling::from_nodes`] reads them back.
    pub fn nodes(&self) -> Vec<(u8, f64, u32, u32)> {
        self.nodes
            .iter()
            .map(|n| match *n {
                Node::Split {
                    axis,
                    at,
                    left,
                    right,
                } => (axis, at, left, right),
                Node::Tile(t) => (2, 0.0, t, 0),
            })
            .collect()
    }

    /// A tiling from what [`Tiling::nodes`] returned.
    ///
    /// # Errors
    /// [`PolymatchError::InvalidArgument`] if the nodes are not a tree whose children
    /// come after their parent, with tiles numbered 0 to T-1 once each.
    pub fn from_nodes(rows: &[(u8, f64, u32, u32)]) -> Result<Self> {
        let bad = |why: &str| PolymatchError::InvalidArgument(format!("invalid tiling: {why}"));
        if rows.is_empty() {
            return Err(bad("no nodes"));
        }
        let n = rows.len();
        let mut nodes = Vec::with_capacity(n);
        let mut node_box = vec![[f64::NAN; 4]; n];
        node_box[0] = PLANE;
        let mut parents = vec![u32::MAX; n];
        let mut tile_node = vec![u32::MAX; n];
        let mut tiles = 0usize;
        for (id, &(kind, at, left, right)) in rows.iter().enumerate() {
            if id > 0 && parents[id] == u32::MAX {
                return Err(bad("a node without a parent"));
            }
            match kind {
                0 | 1 => {
                    let (l, r) = (left as usize, right as usize);
                    if at.is_nan() || l <= id || r <= id || l >= n || r >= n || l == r {
                        return Err(bad("a split's children must follow it"));
                    }
                    if parents[l] != u32::MAX || parents[r] != u32::MAX {
                        return Err(bad("a node with two parents"));
                    }
                    parents[l] = id as u32;
                    parents[r] = id as u32;
                    let b = node_box[id];
                    let (mut lb, mut rb) = (b, b);
                    lb[2 + kind as usize] = at;
                    rb[kind as usize] = at;
                    node_box[l] = lb;
                    node_box[r] = rb;
                    nodes.push(Node::Split {
                        axis: kind,
                        at,
                        left,
                        right,
                    });
                }
                2 => {
                    let t = left as usize;
                    if t >= n || tile_node[t] != u32::MAX {
                        return Err(bad("tile ids must be 0 to T-1, once each"));
                    }
                    tile_node[t] = id as u32;
                    tiles += 1;
                    nodes.push(Node::Tile(left));
                }
                _ => return Err(bad("unknown node kind")),
            }
        }
        tile_node.truncate(tiles);
        if tile_node.contains(&u32::MAX) {
            return Err(bad("tile ids must be 0 to T-1, once each"));
        }
        Ok(Self {
            nodes,
            node_box,
            tile_node,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_tile_when_the_sample_cannot_split() {
        for (xs, ys) in [(vec![], vec![]), (vec![1.0; 5], vec![2.0; 5])] {
            let t = Tiling::from_sample(&xs, &ys, 8);
            assert_eq!(t.len(), 1);
            assert_eq!(t.bounds(0), PLANE);
        }
    }

    #[test]
    fn tiles_share_the_sample_and_round_trip() {
        let xs: Vec<f64> = (0..1000).map(|i| (i % 37) as f64).collect();
        let ys: Vec<f64> = (0..1000).map(|i| (i / 37) as f64).collect();
        let t = Tiling::from_sample(&xs, &ys, 8);
        assert_eq!(t.len(), 8);
        let mut counts = [0usize; 8];
        for &tile in &t.route(&xs, &ys) {
            counts[tile as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (90..=160).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(Tiling::from_nodes(&t.nodes()).unwrap(), t);
        assert!(Tiling::from_nodes(&[(0, 1.0, 0, 0)]).is_err());
        assert!(Tiling::from_nodes(&[(2, 0.0, 1, 0)]).is_err());
    }
}
