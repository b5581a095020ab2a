//! The kernels: pure functions over slices of point coordinates. The one place rayon runs
//! over points.
//!
//! Every point is matched independently, and each rayon task owns a disjoint chunk of the
//! output, so results are identical for every thread count and chunk size.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use arrow::array::{ArrayRef, Float64Array, RecordBatch, UInt32Array, UInt64Array};
use arrow::buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rayon::prelude::*;

use crate::error::{PolymatchError, Result};
use crate::index::{
    GroupScratch, Near, NearRule, NearScratch, Order, SpatialIndex, Within, NO_MATCH,
};
use crate::shape::index::ShapeNearScratch;
use crate::shape::rule::{Contains, Covers, DWithin, GreatCircles, Rule, SphereDWithin};
use crate::shape::{ShapeIndex, ShapeRule};
use crate::sphere::{self, ChordWithin, Metric, SphereCap, SphereGroup, EARTH_RADIUS};

/// Points per rayon task. Inputs no larger than this run serially, on the calling thread.
pub const CHUNK: usize = 8192;

/// The center rule's `max_dist` when the caller gives none (the article's default).
pub const DEFAULT_MAX_DIST: f64 = 10.0;

/// Which points appear in the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum How {
    /// Matched points only (the article's behaviour).
    #[default]
    Inner,
    /// Every point; polygon columns are null where there is no match.
    Left,
}

impl How {
    /// The text form, `"inner"` or `"left"` (what [`FromStr`] parses).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Inner => "inner",
            Self::Left => "left",
        }
    }
}

impl FromStr for How {
    type Err = PolymatchError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "inner" => Ok(Self::Inner),
            "left" => Ok(Self::Left),
            other => Err(PolymatchError::InvalidArgument(format!(
                "how must be \"inner\" or \"left\", got {other:?}"
            ))),
        }
    }
}

/// Which polygons are a point's candidates (SPEC.md, "The match" and "Shape rules").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Predicate {
    /// The polygon's center is at distance `< max_dist` (the article's rule).
    #[default]
    Center,
    /// The point is in the polygon's interior (GEOS/shapely `contains`).
    Contains,
    /// The point is in the polygon's interior or on its boundary (`covers`).
    Covers,
    /// The distance from the point to the polygon (0 in or on it) is `< max_dist`.
    Dwithin,
}

impl Predicate {
    /// The text form: `"center"`, `"contains"`, `"covers"` or `"dwithin"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Center => "center",
            Self::Contains => "contains",
            Self::Covers => "covers",
            Self::Dwithin => "dwithin",
        }
    }

    /// Whether the rule has a radius (`max_dist`): `center` and `dwithin`.
    pub fn has_radius(&self) -> bool {
        matches!(self, Self::Center | Self::Dwithin)
    }

    /// The `max_dist` of a match with this predicate from the caller's (`None`: not
    /// given): the given one, or [`DEFAULT_MAX_DIST`] for the center rule (the
    /// article's default); for `contains` and `covers`, which have no radius, NaN
    /// (recorded as `null`).
    ///
    /// # Errors
    /// [`PolymatchError::InvalidArgument`] naming both for `contains`/`covers` with a
    /// `max_dist`, and for `dwithin` without one.
    pub fn max_dist(self, given: Option<f64>) -> Result<f64> {
        match (self, given) {
            (Self::Center, given) => Ok(given.unwrap_or(DEFAULT_MAX_DIST)),
            (Self::Dwithin, Some(d)) => Ok(d),
            (Self::Dwithin, None) => Err(PolymatchError::InvalidArgument(
                "predicate \"dwithin\" needs max_dist: the distance to the outline below \
                 which a polygon is a candidate (inf: every polygon, the nearest first with \
                 rank_by=\"distance\")"
                    .into(),
            )),
            (_, None) => Ok(f64::NAN),
            (_, Some(d)) => Err(PolymatchError::InvalidArgument(format!(
                "max_dist ({d}) applies to predicates \"center\" and \"dwithin\" only: \
                 predicate {:?} takes the polygons' shapes, with no radius",
                self.as_str()
            ))),
        }
    }

    /// The shape rule, for the rules decided on the polygon's outline (every rule but
    /// the center rule: those need the outlines).
    pub fn shape_rule(&self) -> Option<ShapeRule> {
        match self {
            Self::Center => None,
            Self::Contains => Some(ShapeRule::Contains),
            Self::Covers => Some(ShapeRule::Covers),
            Self::Dwithin => Some(ShapeRule::DWithin),
        }
    }
}

impl FromStr for Predicate {
    type Err = PolymatchError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "center" => Ok(Self::Center),
            "contains" => Ok(Self::Contains),
            "covers" => Ok(Self::Covers),
            "dwithin" => Ok(Self::Dwithin),
            other => Err(PolymatchError::InvalidArgument(format!(
                "predicate must be \"center\", \"contains\", \"covers\" or \"dwithin\", \
                 got {other:?}"
            ))),
        }
    }
}

/// What makes one candidate better than another (SPEC.md, "Choosing the best match").
/// Ties always go to the lowest polygon row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum RankBy {
    /// The polygon's area (the default, the article's rule).
    #[default]
    Area,
    /// SPEC.md's distance from the point to the polygon's center.
    Distance,
    /// The values of a numeric polygon column (nulls and NaN rank last).
    Column(String),
}

impl RankBy {
    /// The text form: `"area"`, `"distance"`, or the column name (what [`FromStr`]
    /// parses, what Python's `rank_by=`, the CLI's `--rank-by` and the output files'
    /// `polymatch` metadata say).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Area => "area",
            Self::Distance => "distance",
            Self::Column(name) => name,
        }
    }

    /// The order an index must be ranked in to pick the best by this rule, or `None`
    /// for [`RankBy::Distance`] (computed per point: any index serves).
    pub fn order(&self, descending: bool) -> Option<Order> {
        match self {
            Self::Area => Some(Order::Area { descending }),
            Self::Distance => None,
            Self::Column(name) => Some(Order::Column {
                name: name.clone(),
                descending,
            }),
        }
    }
}

impl std::fmt::Display for RankBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RankBy {
    type Err = PolymatchError;
    /// `"area"`, `"distance"`, or any other non-empty string as a column name.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "area" => Ok(Self::Area),
            "distance" => Ok(Self::Distance),
            "" => Err(PolymatchError::InvalidArgument(
                "rank_by must be \"area\", \"distance\" or a polygon column name, got \"\"".into(),
            )),
            column => Ok(Self::Column(column.to_string())),
        }
    }
}

/// What to match and how.
#[derive(Debug, Clone)]
pub struct MatchOptions {
    /// Which polygons are candidates: by center and `max_dist` (the default), or by shape.
    pub predicate: Predicate,
    /// With [`Predicate::Center`], a polygon is a candidate iff its center is at distance
    /// `< max_dist`. The shape rules have no radius and do not read it (the Python and
    /// command-line front doors refuse one given with them).
    pub max_dist: f64,
    /// Inner or left.
    pub how: How,
    /// Return every (point, candidate) pair instead of the best one.
    pub all_candidates: bool,
    /// Points per rayon task (results do not depend on it).
    pub chunk_size: usize,
    /// What ranks the candidates.
    pub rank_by: RankBy,
    /// Best is largest (area, distance, column value) instead of smallest.
    pub descending: bool,
    /// How many of the best candidates per point, in rank order (one row each; a `rank`
    /// column is added when `k > 1`).
    pub k: u32,
    /// Planar coordinates (the default), or longitude/latitude on the sphere with
    /// `max_dist` and `distance` in metres (the polygons' index must be measured in it).
    pub metric: Metric,
}

impl Default for MatchOptions {
    fn default() -> Self {
        Self {
            predicate: Predicate::Center,
            max_dist: DEFAULT_MAX_DIST,
            how: How::Inner,
            all_candidates: false,
            chunk_size: CHUNK,
            rank_by: RankBy::Area,
            descending: false,
            k: 1,
            metric: Metric::Planar,
        }
    }
}

impl MatchOptions {
    /// Check the options.
    ///
    /// # Errors
    /// [`PolymatchError::InvalidArgument`] if `max_dist` is not `> 0` (NaN included),
    /// `chunk_size` or `k` is 0, or a rank rule is combined with `all_candidates` (which
    /// returns every candidate in polygon-row order).
    pub fn validate(&self) -> Result<()> {
        if self.predicate.has_radius() {
            check_max_dist(self.max_dist)?;
        }
        if self.chunk_size == 0 {
            return Err(PolymatchError::InvalidArgument(
                "chunk_size must be > 0".into(),
            ));
        }
        if self.k == 0 {
            return Err(PolymatchError::InvalidArgument(
                "k must be >= 1, got 0".into(),
            ));
        }
        if self.all_candidates && (self.k != 1 || self.descending || self.rank_by != RankBy::Area) {
            return Err(PolymatchError::InvalidArgument(
                "all_candidates returns every candidate in polygon-row order: rank_by, \
                 descending and k do not apply to it"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Whether a planar match takes one best rank per point ([`best_ranks`]: `k = 1`, a
    /// rank order, not all candidates), the planar path that uses the index's cell lists.
    pub fn best_rank_path(&self) -> bool {
        self.metric == Metric::Planar && self.best_rank_path_by_rank()
    }

    /// Whether a center-rule match takes one best rank per point by a rank order (`k = 1`,
    /// not by distance, not all candidates), in either metric.
    pub fn best_rank_path_by_rank(&self) -> bool {
        self.predicate == Predicate::Center
            && !self.all_candidates
            && self.k == 1
            && self.rank_by != RankBy::Distance
    }

    /// The order the index must be ranked in for these options, or `None` for
    /// [`RankBy::Distance`] and all candidates (any index: neither compares ranks).
    pub fn index_order(&self) -> Option<Order> {
        if self.all_candidates {
            return None;
        }
        self.rank_by.order(self.descending)
    }
}

/// The largest thread count [`with_threads`] accepts.
pub const MAX_THREADS: usize = 1024;

/// Check a `max_dist` (SPEC.md): `> 0`, not NaN; `inf` is allowed.
///
/// # Errors
/// [`PolymatchError::InvalidArgument`] otherwise (0, -0.0, negative, NaN).
pub fn check_max_dist(max_dist: f64) -> Result<()> {
    if max_dist.is_nan() || max_dist <= 0.0 {
        return Err(PolymatchError::InvalidArgument(format!(
            "max_dist must be > 0 (inf allowed), got {max_dist}"
        )));
    }
    Ok(())
}

/// Point coordinates as slices, with optional validity (a null point never matches).
#[derive(Debug, Clone, Copy)]
pub struct PointSlices<'a> {
    /// x coordinates.
    pub x: &'a [f64],
    /// y coordinates, as long as `x`.
    pub y: &'a [f64],
    /// Validity, as long as `x`, if any point is null.
    pub nulls: Option<&'a NullBuffer>,
}

impl<'a> PointSlices<'a> {
    /// Points from coordinate slices and an optional validity (a null point never matches).
    ///
    /// # Errors
    /// [`PolymatchError::InvalidLayout`] if the lengths differ.
    pub fn new(x: &'a [f64], y: &'a [f64], nulls: Option<&'a NullBuffer>) -> Result<Self> {
        if x.len() != y.len() || nulls.is_some_and(|n| n.len() != x.len()) {
            return Err(PolymatchError::InvalidLayout(format!(
                "point x has {} values, y has {}{}",
                x.len(),
                y.len(),
                nulls
                    .map(|n| format!(", validity {}", n.len()))
                    .unwrap_or_default()
            )));
        }
        Ok(Self { x, y, nulls })
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.x.len()
    }

    /// True if there are no points.
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }
}

/// The schema of a match result (SPEC.md): `point_index`, `polygon_index`, `distance`,
/// `area`, and `rank` (uint32, 1-based) when `options.k > 1`.
pub fn result_schema(options: &MatchOptions) -> SchemaRef {
    let mut fields = vec![
        Field::new("point_index", DataType::UInt64, false),
        Field::new("polygon_index", DataType::UInt32, true),
        Field::new("distance", DataType::Float64, true),
        Field::new("area", DataType::Float64, true),
    ];
    if options.k > 1 {
        fields.push(Field::new("rank", DataType::UInt32, true));
    }
    Arc::new(Schema::new(fields))
}

fn cancelled(cancel: Option<&AtomicBool>) -> bool {
    cancel.is_some_and(|c| c.load(Ordering::Relaxed))
}

/// Best rank per point ([`NO_MATCH`] where none), SPEC.md's match.
///
/// # Errors
/// [`PolymatchError::Cancelled`] if `cancel` was set while running.
pub fn best_ranks(
    index: &SpatialIndex,
    points: PointSlices<'_>,
    max_dist: f64,
    chunk_size: usize,
    cancel: Option<&AtomicBool>,
) -> Result<Vec<u32>> {
    // Every slot is written below.
    let mut out = zeroed(points.len(), chunk_size);
    let cells = if max_dist.is_finite() {
        index.cell_lists(max_dist, points.len())
    } else {
        None
    };
    let kernel = |start: usize, out: &mut [u32]| {
        if cancelled(cancel) {
            return;
        }
        let xs = &points.x[start..start + out.len()];
        let ys = &points.y[start..start + out.len()];
        if let Some(cells) = &cells {
            cells.best_within_many(index, xs, ys, out);
        } else {
            for ((slot, &px), &py) in out.iter_mut().zip(xs).zip(ys) {
                *slot = index.best_within(px, py, max_dist);
            }
        }
        if let Some(nulls) = points.nulls {
            for (i, slot) in out.iter_mut().enumerate() {
                if nulls.is_null(start + i) {
                    *slot = NO_MATCH;
                }
            }
        }
    };
    // With max_dist = inf a query is O(1) (the root is inside the disk): order cannot help.
    // With cell lists a query reads one short list: input order streams the points, where
    // Z-order would gather them from all over memory (measured slower).
    if cells.is_none() && sort_pays(index, points, max_dist) {
        spatially_sorted(index, points, max_dist, chunk_size, cancel, &mut out);
    } else {
        for_chunks(&mut out, chunk_size, |c, out| kernel(c * chunk_size, out));
    }
    if cancelled(cancel) {
        return Err(PolymatchError::Cancelled);
    }
    Ok(out)
}

/// `kernel(start, end)` for each chunk of `chunk` of `n` points, in order: in parallel
/// when there is more than one chunk, else on the calling thread.
fn per_chunk<T: Send>(n: usize, chunk: usize, kernel: impl Fn(usize, usize) -> T + Sync) -> Vec<T> {
    if n <= chunk {
        vec![kernel(0, n)]
    } else {
        (0..n.div_ceil(chunk))
            .into_par_iter()
            .map(|c| kernel(c * chunk, ((c + 1) * chunk).min(n)))
            .collect()
    }
}

/// A buffer of `n` zeros (`T::default()`), zeroed in parallel when it is more than one
/// chunk. The allocator's `calloc` would zero memory it reuses (after the first call,
/// large buffers come back from its free lists) on this one thread, serially; written
/// by the pool instead, the pages are also first touched by the threads that fill them.
fn zeroed<T: Default + Copy + Send + Sync>(n: usize, chunk: usize) -> Vec<T> {
    if n <= chunk {
        return vec![T::default(); n];
    }
    let mut v = Vec::with_capacity(n);
    v.par_extend(rayon::iter::repeat_n(T::default(), n).with_min_len(chunk));
    v
}

/// `f(c, chunk)` for each chunk `c` of `data`, in parallel; a single chunk (a small call)
/// stays on the calling thread, where a parallel iterator would hand it to a pool thread
/// and wait, which costs more than the work.
fn for_chunks<T: Send>(data: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    if data.len() <= chunk {
        if !data.is_empty() {
            f(0, data);
        }
    } else {
        data.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(c, d)| f(c, d));
    }
}

/// Points below this many are matched in input order.
const SORT_MIN_POINTS: usize = 4096;
/// Indexes smaller than this stay in cache whatever the point order.
const SORT_MIN_POLYGONS: usize = 1 << 15;

/// Spread the bits of a 16-bit value to the even positions.
#[inline]
fn spread(v: u32) -> u32 {
    let mut v = v & 0xffff;
    v = (v | (v << 8)) & 0x00ff_00ff;
    v = (v | (v << 4)) & 0x0f0f_0f0f;
    v = (v | (v << 2)) & 0x3333_3333;
    (v | (v << 1)) & 0x5555_5555
}

/// Points per shared tree walk in the Z-ordered path.
const GROUP: usize = 32;

/// Bits of the Z-order prefix that buckets the points (`2^16` buckets).
const ORDER_BITS: u32 = 16;

/// The points in Z-order: `order[j]` is the input position of the `j`-th point
/// matched, neighbours next to each other, and `place[i]` where input point `i` comes in
/// that order (the inverse), so the answers go back to input order by a parallel
/// gather ([`ZOrder::unsort`]) instead of a serial scatter.
#[derive(Debug)]
struct ZOrder {
    order: Vec<u32>,
    place: Vec<u32>,
}

impl ZOrder {
    /// The points' coordinates in matching order (a null point as NaN, which no polygon
    /// accepts): the queries then read them in sequence, where reading them through the
    /// order stalled on a cache miss per point (44% of the samples of a `covers` match).
    fn gather(&self, points: PointSlices<'_>, chunk: usize) -> (Vec<f64>, Vec<f64>) {
        let gather = |src: &[f64]| {
            map_chunked(&self.order, chunk, |_, &i| {
                let i = i as usize;
                if points.nulls.is_none_or(|n| n.is_valid(i)) {
                    src[i]
                } else {
                    f64::NAN
                }
            })
        };
        (gather(points.x), gather(points.y))
    }

    /// `sorted`, one value per point in matching order, in input order.
    fn unsort<T: Copy + Send + Sync>(&self, sorted: &[T], chunk: usize) -> Vec<T> {
        map_chunked(&self.place, chunk, |_, &j| sorted[j as usize])
    }

    /// [`ZOrder::unsort`] into `out`.
    fn unsort_into<T: Copy + Send + Sync>(&self, sorted: &[T], out: &mut [T], chunk: usize) {
        for_chunks(out, chunk, |c, out| {
            let place = &self.place[c * chunk..c * chunk + out.len()];
            for (o, &j) in out.iter_mut().zip(place) {
                *o = sorted[j as usize];
            }
        });
    }
}

/// [`z_order_in`] over the index's bounds.
fn z_order(index: &SpatialIndex, points: PointSlices<'_>, chunk_size: usize) -> ZOrder {
    z_order_in(index.bounds(), points, chunk_size)
}

/// The points in Z-order over `bounds` (`None`: input order): a counting sort on the
/// top [`ORDER_BITS`] bits of their Morton code, in parallel. Each of a few parts of the
/// input counts its own buckets; a bucket's points then come part by part, each part's
/// in input order, so the order is the same for any number of parts (a stable sort).
fn z_order_in(bounds: Option<[f64; 4]>, points: PointSlices<'_>, chunk_size: usize) -> ZOrder {
    let n = points.len();
    let Some([x0, y0, x1, y1]) = bounds else {
        let order: Vec<u32> = (0..n as u32).collect();
        return ZOrder {
            place: order.clone(),
            order,
        };
    };
    let (sx, sy) = (
        65535.0 / (x1 - x0).max(f64::MIN_POSITIVE),
        65535.0 / (y1 - y0).max(f64::MIN_POSITIVE),
    );
    let mut bucket = vec![0u32; n];
    for_chunks(&mut bucket, chunk_size, |c, bucket| {
        let start = c * chunk_size;
        for (i, b) in bucket.iter_mut().enumerate() {
            // `as u32` saturates, and maps NaN to 0: any order is correct.
            let cx = ((points.x[start + i] - x0) * sx).clamp(0.0, 65535.0) as u32;
            let cy = ((points.y[start + i] - y0) * sy).clamp(0.0, 65535.0) as u32;
            *b = (spread(cx) | (spread(cy) << 1)) >> (32 - ORDER_BITS);
        }
    });
    // A part per pool thread (each counts 2^16 buckets: more parts cost more than they
    // save), and one part for a call of one chunk.
    let parts = if n <= chunk_size {
        1
    } else {
        rayon::current_num_threads().clamp(1, 8)
    };
    let part_len = n.div_ceil(parts).max(1);
    let mut starts: Vec<Vec<u32>> = bucket
        .par_chunks(part_len)
        .map(|b| {
            let mut counts = vec![0u32; 1 << ORDER_BITS];
            for &k in b {
                counts[k as usize] += 1;
            }
            counts
        })
        .collect();
    let mut next = 0u32;
    for k in 0..1usize << ORDER_BITS {
        for counts in starts.iter_mut() {
            (counts[k], next) = (next, next + counts[k]);
        }
    }
    // Each point's place (each part writes its own range of `place`, in sequence), and
    // the order, its inverse: a permutation, so each of its entries is written once
    // (atomics make the parts' interleaved writes safe; relaxed stores are plain ones).
    let mut place = vec![0u32; n];
    let order: Vec<std::sync::atomic::AtomicU32> = zeroed_atomics(n, chunk_size);
    place
        .par_chunks_mut(part_len)
        .zip(bucket.par_chunks(part_len))
        .zip(starts.par_iter_mut())
        .enumerate()
        .for_each(|(p, ((place, bucket), next))| {
            for (i, (slot, &k)) in place.iter_mut().zip(bucket).enumerate() {
                let j = next[k as usize];
                next[k as usize] = j + 1;
                *slot = j;
                order[j as usize].store((p * part_len + i) as u32, Ordering::Relaxed);
            }
        });
    // In place (same layout): no copy.
    let order = order
        .into_iter()
        .map(std::sync::atomic::AtomicU32::into_inner)
        .collect();
    ZOrder { order, place }
}

/// `n` atomic zeros, written in parallel when more than one chunk (as [`zeroed`]).
fn zeroed_atomics(n: usize, chunk: usize) -> Vec<std::sync::atomic::AtomicU32> {
    let zero = || std::sync::atomic::AtomicU32::new(0);
    if n <= chunk {
        return (0..n).map(|_| zero()).collect();
    }
    let mut v = Vec::with_capacity(n);
    v.par_extend((0..n).into_par_iter().with_min_len(chunk).map(|_| zero()));
    v
}

/// Whether matching `points` in Z-order pays: enough points, an index too large for the
/// cache, and a finite radius (with `max_dist = inf` a query is O(1) or order-blind).
fn sort_pays(index: &SpatialIndex, points: PointSlices<'_>, max_dist: f64) -> bool {
    points.len() >= SORT_MIN_POINTS
        && index.matchable() >= SORT_MIN_POLYGONS
        && points.len() < u32::MAX as usize
        && max_dist.is_finite()
}

/// Match the points in Z-order instead of input order, then put the answers back in
/// place. Neighbouring queries walk the same tree nodes, so a large index is read from
/// cache instead of memory: the answers are the same, only faster.
fn spatially_sorted(
    index: &SpatialIndex,
    points: PointSlices<'_>,
    max_dist: f64,
    chunk_size: usize,
    cancel: Option<&AtomicBool>,
    out: &mut [u32],
) {
    let z = z_order(index, points, chunk_size);
    let mut ranks = vec![NO_MATCH; z.order.len()];
    let grouped = SpatialIndex::group_search_applies(max_dist);
    for_chunks(&mut ranks, chunk_size, |c, ranks| {
        let order = &z.order[c * chunk_size..c * chunk_size + ranks.len()];
        if cancelled(cancel) {
            return;
        }
        if grouped {
            // Consecutive points in Z-order are neighbours: walk the tree once per group.
            let mut entries = Vec::new();
            let (mut gx, mut gy) = ([0.0; GROUP], [0.0; GROUP]);
            for (ranks, order) in ranks.chunks_mut(GROUP).zip(order.chunks(GROUP)) {
                for (k, &i) in order.iter().enumerate() {
                    let i = i as usize;
                    let valid = points.nulls.is_none_or(|n| n.is_valid(i));
                    // A null point gets NaN coordinates: it never matches.
                    (gx[k], gy[k]) = if valid {
                        (points.x[i], points.y[i])
                    } else {
                        (f64::NAN, f64::NAN)
                    };
                }
                let n = order.len();
                index.best_within_group(&gx[..n], &gy[..n], max_dist, ranks, &mut entries);
            }
            return;
        }
        for (slot, &i) in ranks.iter_mut().zip(order) {
            let i = i as usize;
            if points.nulls.is_none_or(|n| n.is_valid(i)) {
                *slot = index.best_within(points.x[i], points.y[i], max_dist);
            }
        }
    });
    z.unsort_into(&ranks, out, chunk_size);
}

/// Each point's ranked candidates (up to `options.k`, best first) for the rules that
/// [`best_ranks`] does not cover (`k > 1`, or ranking by distance): per point `i`, its
/// ranks are `ranks[offsets[i]..offsets[i + 1]]`.
///
/// # Errors
/// [`PolymatchError::Cancelled`] if `cancel` was set while running.
pub fn ranked_candidates(
    index: &SpatialIndex,
    points: PointSlices<'_>,
    options: &MatchOptions,
    cancel: Option<&AtomicBool>,
) -> Result<(Vec<usize>, Vec<u32>)> {
    let n = points.len();
    let k = options.k as usize;
    let max_dist = options.max_dist;
    let by_distance = options.rank_by == RankBy::Distance;
    let descending = options.descending;
    let within = Within::new(max_dist);
    // Points in the order they are matched (Z-order when it pays), chunked.
    let order: Option<ZOrder> =
        sort_pays(index, points, max_dist).then(|| z_order(index, points, options.chunk_size));
    let position = |j: usize| order.as_ref().map_or(j, |o| o.order[j] as usize);
    // In Z-order: a shared tree walk per group of neighbours.
    let grouped = order.is_some() && SpatialIndex::group_search_applies(max_dist);
    // One chunk: (count per point, ranks) in matching order.
    let kernel = |start: usize, end: usize| -> (Vec<u32>, Vec<u32>) {
        let mut counts = Vec::with_capacity(end - start);
        let mut ranks = Vec::with_capacity((end - start) * k.min(16));
        if cancelled(cancel) {
            return (counts, ranks);
        }
        if grouped {
            // Consecutive points in Z-order are neighbours: walk the tree once per group.
            let mut scratch = GroupScratch::default();
            let mut near_scratch = NearScratch::default();
            let (mut gx, mut gy) = ([0.0; GROUP], [0.0; GROUP]);
            for g in (start..end).step_by(GROUP) {
                let n = GROUP.min(end - g);
                for (q, j) in (g..g + n).enumerate() {
                    let i = position(j);
                    // A null point gets NaN coordinates: it never matches.
                    (gx[q], gy[q]) = if points.nulls.is_none_or(|nb| nb.is_valid(i)) {
                        (points.x[i], points.y[i])
                    } else {
                        (f64::NAN, f64::NAN)
                    };
                }
                if by_distance {
                    index.nearest_k_within_group(
                        &gx[..n],
                        &gy[..n],
                        &within,
                        k,
                        descending,
                        &mut counts,
                        &mut ranks,
                        &mut near_scratch,
                    );
                } else {
                    index.best_k_within_group(
                        &gx[..n],
                        &gy[..n],
                        max_dist,
                        k,
                        &mut counts,
                        &mut ranks,
                        &mut scratch,
                    );
                }
            }
            return (counts, ranks);
        }
        // The chunk's coordinates, gathered first in one tight loop (a null point gets
        // NaN: it never matches): in Z-order these reads are scattered over the input, and
        // a gather loop overlaps their cache misses where the search could not.
        let (xs, ys): (Vec<f64>, Vec<f64>) = (start..end)
            .map(|j| {
                let i = position(j);
                if points.nulls.is_none_or(|nb| nb.is_valid(i)) {
                    (points.x[i], points.y[i])
                } else {
                    (f64::NAN, f64::NAN)
                }
            })
            .unzip();
        let (mut best, mut near, mut seeds): (Vec<u32>, Vec<Near>, Vec<Near>) =
            (Vec::new(), Vec::new(), Vec::new());
        for (&px, &py) in xs.iter().zip(&ys) {
            if by_distance {
                // The previous point's answer (a neighbour in Z-order) seeds the bound.
                std::mem::swap(&mut near, &mut seeds);
                index.nearest_k_seeded(px, py, &within, k, descending, &seeds, &mut near);
                ranks.extend(near.iter().map(|c| c.rank));
                counts.push(near.len() as u32);
            } else {
                index.best_k_within(px, py, &within, k, &mut best);
                ranks.extend_from_slice(&best);
                counts.push(best.len() as u32);
            }
        }
        (counts, ranks)
    };
    let chunk = options.chunk_size;
    let parts: Vec<(Vec<u32>, Vec<u32>)> = per_chunk(n, chunk, kernel);
    if cancelled(cancel) {
        return Err(PolymatchError::Cancelled);
    }
    let total: usize = parts.iter().map(|p| p.1.len()).sum();
    let Some(order) = order else {
        // Input order already: concatenate.
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0usize);
        let mut ranks = Vec::with_capacity(total);
        for (counts, r) in parts {
            for c in counts {
                offsets.push(offsets[offsets.len() - 1] + c as usize);
            }
            ranks.extend_from_slice(&r);
        }
        return Ok((offsets, ranks));
    };
    // Z-order: scatter the counts back to input order, then each part's ranks.
    let mut counts = vec![0u32; n];
    let mut j = 0usize;
    for (cs, _) in &parts {
        for &c in cs {
            counts[order.order[j] as usize] = c;
            j += 1;
        }
    }
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0usize);
    for &c in &counts {
        offsets.push(offsets[offsets.len() - 1] + c as usize);
    }
    let mut ranks = vec![NO_MATCH; total];
    let mut j = 0usize;
    for (cs, r) in &parts {
        let mut at = 0usize;
        for &c in cs {
            let start = offsets[order.order[j] as usize];
            let c = c as usize;
            ranks[start..start + c].copy_from_slice(&r[at..at + c]);
            at += c;
            j += 1;
        }
    }
    Ok((offsets, ranks))
}

/// Match `points` to the polygons of `index` (SPEC.md), as a record batch of
/// [`result_schema`] rows in point order (a point's `k` best in rank order).
/// `first_point` is added to `point_index` (the position of this batch in a longer stream
/// of points).
///
/// The index must be ranked in the order the options ask for
/// ([`MatchOptions::index_order`]; any index for [`RankBy::Distance`]):
/// [`SpatialIndex::with_order`] prepares one, and [`crate::ranking::Rankings`] caches them.
///
/// # Errors
/// Invalid options, an index ranked in another order, mismatched lengths, or
/// [`PolymatchError::Cancelled`].
pub fn match_points(
    index: &SpatialIndex,
    points: PointSlices<'_>,
    options: &MatchOptions,
    first_point: u64,
    cancel: Option<&AtomicBool>,
) -> Result<RecordBatch> {
    options.validate()?;
    if options.predicate != Predicate::Center {
        return Err(PolymatchError::InvalidArgument(format!(
            "predicate {:?} is decided on the outlines: match with match_shapes and a \
             ShapeIndex",
            options.predicate.as_str()
        )));
    }
    if let Some(order) = options.index_order() {
        if &order != index.order() {
            return Err(PolymatchError::InvalidArgument(format!(
                "this index is ranked by {}, and the match asks for {}: prepare an index in \
                 that order (SpatialIndex::with_order, or Rankings)",
                index.order().describe(),
                order.describe()
            )));
        }
    }
    if index.metric() != options.metric {
        return Err(PolymatchError::InvalidArgument(format!(
            "the match asks for metric={:?}, and this index was built with metric={:?}: \
             build the index with the metric of the match",
            options.metric.as_str(),
            index.metric().as_str()
        )));
    }
    if options.metric == Metric::Sphere {
        return match_sphere(index, points, options, first_point, cancel);
    }
    if options.all_candidates {
        return match_all_candidates(index, points, options, first_point, cancel);
    }
    if options.best_rank_path() {
        let ranks = best_ranks(index, points, options.max_dist, options.chunk_size, cancel)?;
        return best_output(index, points, options, first_point, ranks, None);
    }
    let (offsets, ranks) = ranked_candidates(index, points, options, cancel)?;
    build_output(index, points, options, first_point, |i| {
        (&ranks[offsets[i]..offsets[i + 1]], None)
    })
}

/// Match points by a shape rule (`options.predicate` is `contains`, `covers` or
/// `dwithin`): the candidates of a point are the polygons that contain (cover) it, or
/// whose outline is closer than `max_dist`, decided exactly on their outlines; the rank
/// rules, `k`, `how` and all candidates apply as for the center rule. The `distance`
/// column is SPEC.md's distance from the point to the polygon (0 in or on it), and
/// `rank_by="distance"` ranks by it (for `contains`/`covers` every candidate is at 0,
/// so the lowest rows win).
///
/// `shapes` must be ranked in the order the options ask for
/// ([`MatchOptions::index_order`]; any for [`RankBy::Distance`] and all candidates).
///
/// # Errors
/// Invalid options, a center predicate, an index in another order, mismatched
/// lengths, or [`PolymatchError::Cancelled`].
pub fn match_shapes(
    shapes: &ShapeIndex,
    points: PointSlices<'_>,
    options: &MatchOptions,
    first_point: u64,
    cancel: Option<&AtomicBool>,
) -> Result<RecordBatch> {
    options.validate()?;
    if shapes.metric() != options.metric {
        return Err(PolymatchError::InvalidArgument(format!(
            "the match asks for metric={:?}, and this shape index was built with \
             metric={:?}: build the index with the metric of the match",
            options.metric.as_str(),
            shapes.metric().as_str()
        )));
    }
    if options.metric == Metric::Sphere {
        // contains/covers: the edges are straight in longitude/latitude (GeoParquet's
        // "planar" edges), so the decision is the planar one on the coordinates, with
        // the points' longitudes wrapped to [-180, 180] as the polygons' are; dwithin
        // reads the same coordinates for "covered" (distance 0) and the boxes.
        check_sphere_points(points, first_point)?;
        if points.x.iter().any(|&x| x > 180.0) {
            let wrapped: Vec<f64> = points
                .x
                .par_iter()
                .with_min_len(CHUNK)
                .map(|&x| if x > 180.0 { x - 360.0 } else { x })
                .collect();
            let wrapped = PointSlices {
                x: &wrapped,
                ..points
            };
            return match_shapes_in(shapes, wrapped, options, first_point, cancel);
        }
    }
    match_shapes_in(shapes, points, options, first_point, cancel)
}

/// [`match_shapes`] once the metric is settled (the points' coordinates as the outlines
/// read them).
fn match_shapes_in(
    shapes: &ShapeIndex,
    points: PointSlices<'_>,
    options: &MatchOptions,
    first_point: u64,
    cancel: Option<&AtomicBool>,
) -> Result<RecordBatch> {
    let Some(rule) = options.predicate.shape_rule() else {
        return Err(PolymatchError::InvalidArgument(
            "match_shapes takes a shape predicate (contains, covers or dwithin)".into(),
        ));
    };
    if let Some(order) = options.index_order() {
        if &order != shapes.order() {
            return Err(PolymatchError::InvalidArgument(format!(
                "this shape index is ranked by {}, and the match asks for {}",
                shapes.order().describe(),
                order.describe()
            )));
        }
    }
    // One generic match per rule type (monomorphised): the rule is decided here, once.
    match rule {
        ShapeRule::Contains | ShapeRule::Covers if shapes.spherical().is_some() => {
            // Great-circle edges: the point located on the unit vectors.
            let edges = shapes.spherical().expect("spherical edges");
            if rule == ShapeRule::Contains {
                let rule = GreatCircles {
                    shape: Contains,
                    edges,
                };
                match_rule(shapes, rule, points, options, first_point, cancel)
            } else {
                let rule = GreatCircles {
                    shape: Covers,
                    edges,
                };
                match_rule(shapes, rule, points, options, first_point, cancel)
            }
        }
        ShapeRule::Contains => match_rule(shapes, Contains, points, options, first_point, cancel),
        ShapeRule::Covers => match_rule(shapes, Covers, points, options, first_point, cancel),
        ShapeRule::DWithin if shapes.metric() == Metric::Sphere => {
            // Metres on the sphere: the view widened on the sphere by max_dist lists every
            // part a point can be near in its cell (inf: every part in one cell).
            let units = shapes.units();
            let edges = shapes.spherical();
            let nearest = !options.all_candidates
                && options.rank_by == RankBy::Distance
                && !options.descending;
            if options.max_dist == f64::INFINITY && nearest {
                // The nearest with no cap: views at wider and wider radii, each point
                // stopping at the first whose k nearest are surely the k nearest of all.
                let rungs = sphere_rungs(shapes, options.k);
                let make = |r: f64| SphereDWithin::new(r, units, edges);
                let ladder: Ladder<'_, SphereDWithin<'_>> = (&rungs, &make);
                let rule = SphereDWithin::new(f64::INFINITY, units, edges);
                return match_rule_in(
                    shapes,
                    rule,
                    Some(ladder),
                    points,
                    options,
                    first_point,
                    cancel,
                );
            }
            let view = shapes.for_radius(options.max_dist)?;
            let rule = SphereDWithin::new(options.max_dist, units, edges);
            match_rule(&view, rule, points, options, first_point, cancel)
        }
        ShapeRule::DWithin => {
            let rule = DWithin::new(options.max_dist);
            // A finite radius reads cell lists widened by it (one list per point, built
            // once per radius); the nearest-first search reads the index's own in rings.
            let nearest = !options.all_candidates
                && options.rank_by == RankBy::Distance
                && !options.descending;
            if options.max_dist.is_finite() && !nearest {
                let view = shapes.for_radius(options.max_dist)?;
                return match_rule(&view, rule, points, options, first_point, cancel);
            }
            match_rule(shapes, rule, points, options, first_point, cancel)
        }
    }
}

/// The output columns of a shape rule's candidates: the shape index's rows and areas,
/// and the distance to the outline (0 for the rules whose candidates hold the point).
struct ShapeRanked<'a, R> {
    shapes: &'a ShapeIndex,
    rule: R,
}

impl<R: Rule> ShapeRanked<'_, R> {
    /// The `distance` column of `rank` ([`NO_MATCH`]: NaN).
    #[inline]
    fn distance_or_nan(&self, rank: u32, px: f64, py: f64) -> f64 {
        if rank == NO_MATCH {
            f64::NAN
        } else {
            self.distance_to(rank, px, py)
        }
    }
}

impl<R: Rule> RankedPolygons for ShapeRanked<'_, R> {
    #[inline]
    fn row_of(&self, rank: u32) -> u32 {
        self.shapes.row_of(rank)
    }
    #[inline]
    fn area_of(&self, rank: u32) -> f64 {
        self.shapes.area_of(rank)
    }
    #[inline]
    fn distance_to(&self, rank: u32, px: f64, py: f64) -> f64 {
        if R::IN_SHAPE {
            0.0
        } else {
            let key = self.shapes.distance_key(&self.rule, rank, px, py);
            self.rule.reported(key)
        }
    }
}

/// Radii (metres) of wider and wider views of a sphere shape index, each built on first
/// use, and a rule for each radius: the nearest search with no cap on the sphere.
type Ladder<'a, R> = (
    &'a [(f64, OnceLock<Option<Arc<ShapeIndex>>>)],
    &'a (dyn Fn(f64) -> R + Sync),
);

/// The radii of [`Ladder`] for `shapes`: the first about the spacing of its parts times
/// `sqrt(k)` (most points find `k` within it), then 8x wider each until half the
/// circumference, then `inf` (every part).
fn sphere_rungs(shapes: &ShapeIndex, k: u32) -> Vec<(f64, OnceLock<Option<Arc<ShapeIndex>>>)> {
    let parts = shapes.parts().max(1) as f64;
    let area = shapes.bounds().map_or(0.0, |b| {
        let (lat0, lat1) = (b[1].to_radians(), b[3].to_radians());
        let mid = (0.5 * (lat0 + lat1)).cos().max(1e-3);
        (b[2] - b[0]).to_radians().max(0.0) * (lat1 - lat0).max(0.0) * mid
    }) * EARTH_RADIUS
        * EARTH_RADIUS;
    let mut r = (area / parts * f64::from(k.max(1))).sqrt().max(1.0);
    let mut rungs = Vec::new();
    while r < std::f64::consts::PI * EARTH_RADIUS {
        rungs.push((r, OnceLock::new()));
        r *= 8.0;
    }
    rungs.push((f64::INFINITY, OnceLock::new()));
    rungs
}

/// [`match_shapes`] for one rule type.
fn match_rule<R: Rule>(
    shapes: &ShapeIndex,
    rule: R,
    points: PointSlices<'_>,
    options: &MatchOptions,
    first_point: u64,
    cancel: Option<&AtomicBool>,
) -> Result<RecordBatch> {
    match_rule_in(shapes, rule, None, points, options, first_point, cancel)
}

/// [`match_rule`], with a [`Ladder`] for the nearest with no cap on the sphere.
fn match_rule_in<R: Rule>(
    shapes: &ShapeIndex,
    rule: R,
    ladder: Option<Ladder<'_, R>>,
    points: PointSlices<'_>,
    options: &MatchOptions,
    first_point: u64,
    cancel: Option<&AtomicBool>,
) -> Result<RecordBatch> {
    let ranked = ShapeRanked::<R> { shapes, rule };
    let chunk = options.chunk_size;
    let valid = |i: usize| points.nulls.is_none_or(|n| n.is_valid(i));
    if options.k == 1 && !options.all_candidates && options.rank_by != RankBy::Distance {
        // In Z-order when there are enough points: neighbours read the same cell lists,
        // boxes and outlines, from cache instead of memory (docs/benchmarks.md, "Shape
        // rules", has the profile and the numbers).
        let order = (points.len() >= SORT_MIN_POINTS && points.len() < u32::MAX as usize)
            .then(|| z_order_in(shapes.bounds(), points, chunk));
        // The coordinates gathered in that order ([`ZOrder::gather`]).
        let sorted = order.as_ref().map(|z| z.gather(points, chunk));
        // Each point's best rank, and for the rules with a distance that distance,
        // computed here while the polygon is in cache (the output is built in input
        // order, where it would be a cache miss per point). The rules whose candidates
        // hold the point (distance 0) keep the leaner rank-only buffer.
        let point = |j: usize| match &sorted {
            Some((xs, ys)) => (xs[j], ys[j]),
            None if valid(j) => (points.x[j], points.y[j]),
            None => (f64::NAN, f64::NAN),
        };
        if R::IN_SHAPE {
            let mut found: Vec<u32> = zeroed(points.len(), chunk);
            for_chunks(&mut found, chunk, |c, out| {
                if !cancelled(cancel) {
                    for (j, slot) in out.iter_mut().enumerate() {
                        let (px, py) = point(c * chunk + j);
                        *slot = shapes.best(rule, px, py);
                    }
                }
            });
            if cancelled(cancel) {
                return Err(PolymatchError::Cancelled);
            }
            let ranks = match &order {
                None => found,
                Some(z) => z.unsort(&found, chunk),
            };
            return best_output(&ranked, points, options, first_point, ranks, None);
        }
        let mut found: Vec<(u32, f64)> = zeroed(points.len(), chunk);
        for_chunks(&mut found, chunk, |c, out| {
            if !cancelled(cancel) {
                for (j, slot) in out.iter_mut().enumerate() {
                    let (px, py) = point(c * chunk + j);
                    // The distance from the test that accepted, where it has it.
                    let (rank, s) = shapes.best_measured(rule, px, py);
                    *slot = if s.is_nan() {
                        (rank, ranked.distance_or_nan(rank, px, py))
                    } else {
                        (rank, rule.reported(s))
                    };
                }
            }
        });
        if cancelled(cancel) {
            return Err(PolymatchError::Cancelled);
        }
        // Back in input order and split into the two columns, in one parallel pass.
        let (ranks, distances) = match &order {
            None => found.par_iter().with_min_len(chunk).copied().unzip(),
            Some(z) => z
                .place
                .par_iter()
                .with_min_len(chunk)
                .map(|&j| found[j as usize])
                .unzip(),
        };
        return best_output(
            &ranked,
            points,
            options,
            first_point,
            ranks,
            Some(distances),
        );
    }
    // Lists per point: the k best in rank order; every candidate in polygon-row order
    // (all candidates; or by distance where every candidate is at 0); or the k nearest.
    let k = if options.all_candidates {
        usize::MAX
    } else {
        options.k as usize
    };
    let by_distance = !options.all_candidates && options.rank_by == RankBy::Distance;
    let by_row = options.all_candidates || (by_distance && R::IN_SHAPE);
    // For the rules with a distance, each candidate's distance is computed here, while
    // its polygon is in cache (the nearest-first search has it already).
    let with_distances = !R::IN_SHAPE;
    // In Z-order when there are enough points, as the best path (neighbours read the
    // same cells and outlines), then put back in input order.
    let n = points.len();
    let order = (n >= SORT_MIN_POINTS && n < u32::MAX as usize)
        .then(|| z_order_in(shapes.bounds(), points, chunk));
    let position = |j: usize| order.as_ref().map_or(j, |o| o.order[j] as usize);
    // The coordinates in that order, read in sequence (as the best-rank path does).
    let sorted = order.as_ref().map(|z| z.gather(points, chunk));
    type Lists = (Vec<u32>, Vec<u32>, Vec<f64>);
    let chunks: Vec<Lists> = (0..n.div_ceil(chunk))
        .into_par_iter()
        .map(|c| {
            let (start, end) = (c * chunk, ((c + 1) * chunk).min(n));
            let mut counts = Vec::with_capacity(end - start);
            let mut ranks = Vec::new();
            let mut distances = Vec::new();
            if cancelled(cancel) {
                return (counts, ranks, distances);
            }
            let (mut found, mut measured, mut keyed) = (Vec::new(), Vec::new(), Vec::new());
            let (mut near, mut scratch) = (Vec::new(), ShapeNearScratch::default());
            for j in start..end {
                found.clear();
                measured.clear();
                let (px, py) = match &sorted {
                    Some((xs, ys)) => (xs[j], ys[j]),
                    None if valid(j) => (points.x[j], points.y[j]),
                    None => (f64::NAN, f64::NAN),
                };
                if by_row && with_distances {
                    // Every candidate with the distance its test measured (one pass over
                    // a one-part polygon's edges), by row.
                    shapes.candidates_keyed(rule, px, py, &mut keyed);
                    keyed.sort_unstable_by_key(|e| e.1);
                    keyed.truncate(k);
                    counts.push(keyed.len() as u32);
                    ranks.extend(keyed.iter().map(|e| e.2));
                    distances.extend(keyed.iter().map(|e| rule.reported(e.0)));
                    continue;
                } else if by_row {
                    shapes.candidates(rule, px, py, &mut found);
                    found.sort_unstable_by_key(|&r| shapes.row_of(r));
                    found.truncate(k);
                } else if let (true, false, Some((rungs, make))) =
                    (by_distance, options.descending, ladder)
                {
                    // The nearest with no cap on the sphere: the first view whose k-th
                    // nearest is closer than anything it leaves out (the last holds all).
                    let mut keyed: Vec<(f64, u32, u32)> = Vec::new();
                    for (n, (r, view)) in rungs.iter().enumerate() {
                        let Some(view) = view.get_or_init(|| shapes.for_radius(*r).ok()) else {
                            continue;
                        };
                        let rung = make(*r);
                        view.candidates_keyed(rung, px, py, &mut keyed);
                        keyed.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                        let holds = keyed.len() >= k && keyed[k - 1].0 < rung.keys_beyond();
                        if holds || n + 1 == rungs.len() || !(px.is_finite() && py.is_finite()) {
                            break;
                        }
                    }
                    keyed.truncate(k);
                    counts.push(keyed.len() as u32);
                    ranks.extend(keyed.iter().map(|e| e.2));
                    distances.extend(keyed.iter().map(|e| rule.reported(e.0)));
                    continue;
                } else if by_distance && !options.descending && R::PLANAR {
                    shapes.nearest_k(rule, px, py, k, &mut near, &mut scratch);
                    counts.push(near.len() as u32);
                    ranks.extend(near.iter().map(|n| n.2));
                    distances.extend(near.iter().map(|n| n.0.sqrt()));
                    continue;
                } else if by_distance {
                    // The farthest first (or the nearest on the sphere, within the radius
                    // of its view): every candidate, by distance then row.
                    let mut keyed = Vec::new();
                    shapes.candidates_keyed(rule, px, py, &mut keyed);
                    if options.descending {
                        keyed.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                    } else {
                        keyed.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                    }
                    keyed.truncate(k);
                    counts.push(keyed.len() as u32);
                    ranks.extend(keyed.iter().map(|e| e.2));
                    distances.extend(keyed.iter().map(|e| rule.reported(e.0)));
                    continue;
                } else {
                    shapes.best_k_measured(rule, px, py, k, &mut found, &mut measured);
                }
                counts.push(found.len() as u32);
                ranks.extend_from_slice(&found);
                if with_distances {
                    // The distance from the test that accepted, where it has it (as the
                    // best path); else measured over the polygon's parts.
                    distances.extend(found.iter().enumerate().map(
                        |(at, &r)| match measured.get(at) {
                            Some(&s) if !s.is_nan() => rule.reported(s),
                            _ => ranked.distance_to(r, px, py),
                        },
                    ));
                }
            }
            (counts, ranks, distances)
        })
        .collect();
    if cancelled(cancel) {
        return Err(PolymatchError::Cancelled);
    }
    let (offsets, ranks, distances) = scatter_lists(n, position, &chunks, with_distances);
    build_output(&ranked, points, options, first_point, |i| {
        let range = offsets[i]..offsets[i + 1];
        let known = with_distances.then(|| &distances[range.clone()]);
        (&ranks[range], known)
    })
}

/// `f(i, &items[i])` for every item, collected in order: in parallel, `chunk` items per
/// task, when there is more than one chunk (rayon's indexed collect writes each result in
/// place: no zeroed buffer, no second copy).
fn map_chunked<T: Sync, U: Send>(
    items: &[T],
    chunk: usize,
    f: impl Fn(usize, &T) -> U + Sync,
) -> Vec<U> {
    if items.len() <= chunk {
        items.iter().enumerate().map(|(i, t)| f(i, t)).collect()
    } else {
        items
            .par_iter()
            .enumerate()
            .with_min_len(chunk)
            .map(|(i, t)| f(i, t))
            .collect()
    }
}

/// The result from each point's best rank ([`NO_MATCH`] where none) and, where the
/// search computed them, their distances: a map over the ranks when every point has a
/// row ([`How::Left`], or every point matched), else the rows of the matched points.
fn best_output(
    index: &impl RankedPolygons,
    points: PointSlices<'_>,
    options: &MatchOptions,
    first_point: u64,
    ranks: Vec<u32>,
    distances: Option<Vec<f64>>,
) -> Result<RecordBatch> {
    let matched = BooleanBuffer::collect_bool(ranks.len(), |i| ranks[i] != NO_MATCH);
    if options.how == How::Left || matched.count_set_bits() == ranks.len() {
        return best_per_point(
            index,
            points,
            options,
            first_point,
            ranks,
            matched,
            distances,
        );
    }
    let none: &[u32] = &[];
    build_output(index, points, options, first_point, |i| {
        if ranks[i] == NO_MATCH {
            (none, None)
        } else {
            let known = distances.as_ref().map(|d| std::slice::from_ref(&d[i]));
            (std::slice::from_ref(&ranks[i]), known)
        }
    })
}

/// The result with one row per point (`k = 1`; [`How::Left`], or every point matched) from
/// each point's best rank ([`NO_MATCH`] where none; `matched` marks the others): every
/// column is a map over `ranks`, and `ranks` itself becomes the polygon column.
///
/// `known` holds the `distance` column where the search computed it already.
fn best_per_point(
    index: &impl RankedPolygons,
    points: PointSlices<'_>,
    options: &MatchOptions,
    first_point: u64,
    mut ranks: Vec<u32>,
    matched: BooleanBuffer,
    known: Option<Vec<f64>>,
) -> Result<RecordBatch> {
    let chunk = options.chunk_size;
    // An inner result comes here only when every point matched: no validity at all.
    let valid = (options.how == How::Left).then(|| NullBuffer::new(matched));
    let point_index = map_chunked(&ranks, chunk, |i, _| first_point + i as u64);
    let distance = match known {
        Some(d) => d,
        None => map_chunked(&ranks, chunk, |i, &rank| {
            if rank == NO_MATCH {
                f64::NAN
            } else {
                index.distance_to(rank, points.x[i], points.y[i])
            }
        }),
    };
    let area = map_chunked(&ranks, chunk, |_, &rank| {
        if rank == NO_MATCH {
            f64::NAN
        } else {
            index.area_of(rank)
        }
    });
    for_chunks(&mut ranks, chunk, |_, ranks| {
        for r in ranks {
            *r = if *r == NO_MATCH { 0 } else { index.row_of(*r) };
        }
    });
    build_batch(options, point_index, ranks, distance, area, None, valid)
}

/// What the output columns need to know of a ranked candidate: the center index and the
/// shape index both answer it, so one output builder serves every rule.
pub trait RankedPolygons: Sync {
    /// The polygon row of a rank.
    fn row_of(&self, rank: u32) -> u32;
    /// The area of a rank's polygon.
    fn area_of(&self, rank: u32) -> f64;
    /// The `distance` column for point `(px, py)` and a rank's polygon.
    fn distance_to(&self, rank: u32, px: f64, py: f64) -> f64;
}

impl RankedPolygons for SpatialIndex {
    #[inline]
    fn row_of(&self, rank: u32) -> u32 {
        SpatialIndex::row_of(self, rank)
    }
    #[inline]
    fn area_of(&self, rank: u32) -> f64 {
        SpatialIndex::area_of(self, rank)
    }
    /// SPEC.md's distance to the polygon's center (great-circle metres on the sphere).
    #[inline]
    fn distance_to(&self, rank: u32, px: f64, py: f64) -> f64 {
        match self.metric() {
            Metric::Planar => {
                let (cx, cy) = self.center_of(rank);
                crate::index::distance(px, py, cx, cy)
            }
            Metric::Sphere => sphere::metres(sphere::chord_squared(
                &sphere::unit(px, py),
                &self.units()[rank as usize],
            )),
        }
    }
}

/// One task's share of the output rows: its first point, then its slices of
/// `point_index`, `polygon_index`, `distance`, `area`, `rank` and validity.
type RowTask<'a> = (
    usize,
    &'a mut [u64],
    &'a mut [u32],
    &'a mut [f64],
    &'a mut [f64],
    &'a mut [u32],
    &'a mut [bool],
);

/// The result rows: per point `i`, one row per rank of `ranked(i).0` (best first), or
/// with [`How::Left`] one null row if it has none; the `distance` column from
/// `ranked(i).1` where the search computed it already, else from `index`. Built in
/// parallel: each task owns the output rows of its points.
fn build_output<'r>(
    index: &impl RankedPolygons,
    points: PointSlices<'_>,
    options: &MatchOptions,
    first_point: u64,
    ranked: impl Fn(usize) -> (&'r [u32], Option<&'r [f64]>) + Sync,
) -> Result<RecordBatch> {
    let chunk = options.chunk_size;
    let left = options.how == How::Left;
    let with_rank = options.k > 1;
    let n = points.len();
    let rows_of = |i: usize| ranked(i).0.len().max(usize::from(left));
    let count = |c: usize| -> usize { (c * chunk..((c + 1) * chunk).min(n)).map(rows_of).sum() };
    // One chunk (a small call) stays on the calling thread: a parallel iterator would
    // hand it to a pool thread and wait, which costs more than the work.
    let chunks = n.div_ceil(chunk);
    let counts: Vec<usize> = if chunks <= 1 {
        (0..chunks).map(count).collect()
    } else {
        (0..chunks).into_par_iter().map(count).collect()
    };
    let total: usize = counts.iter().sum();
    // Every row is written below.
    let mut point_index = zeroed(total, chunk);
    let mut polygon = zeroed(total, chunk);
    let mut distance = zeroed(total, chunk);
    let mut area = zeroed(total, chunk);
    let mut rank = zeroed(if with_rank { total } else { 0 }, chunk);
    let mut valid = zeroed(if left { total } else { 0 }, chunk);
    {
        let mut tasks = Vec::with_capacity(counts.len());
        let (mut pi, mut po, mut di, mut ar, mut rk, mut va) = (
            &mut point_index[..],
            &mut polygon[..],
            &mut distance[..],
            &mut area[..],
            &mut rank[..],
            &mut valid[..],
        );
        for (c, &m) in counts.iter().enumerate() {
            let (a, rest_pi) = pi.split_at_mut(m);
            let (b, rest_po) = po.split_at_mut(m);
            let (d, rest_di) = di.split_at_mut(m);
            let (e, rest_ar) = ar.split_at_mut(m);
            let (f, rest_rk) = rk.split_at_mut(if with_rank { m } else { 0 });
            let (g, rest_va) = va.split_at_mut(if left { m } else { 0 });
            (pi, po, di, ar, rk, va) = (rest_pi, rest_po, rest_di, rest_ar, rest_rk, rest_va);
            tasks.push((c * chunk, a, b, d, e, f, g));
        }
        let fill = |(start, pi, po, di, ar, rk, va): RowTask<'_>| {
            let end = (start + chunk).min(n);
            let mut j = 0;
            for i in start..end {
                let (list, known) = ranked(i);
                if list.is_empty() && left {
                    pi[j] = first_point + i as u64;
                    di[j] = f64::NAN;
                    ar[j] = f64::NAN;
                    j += 1; // va[j] stays false: a null row
                    continue;
                }
                for (r, &rank) in list.iter().enumerate() {
                    pi[j] = first_point + i as u64;
                    po[j] = index.row_of(rank);
                    di[j] = match known {
                        Some(d) => d[r],
                        None => index.distance_to(rank, points.x[i], points.y[i]),
                    };
                    ar[j] = index.area_of(rank);
                    if with_rank {
                        rk[j] = r as u32 + 1;
                    }
                    if left {
                        va[j] = true;
                    }
                    j += 1;
                }
            }
        };
        if tasks.len() <= 1 {
            tasks.into_iter().for_each(fill);
        } else {
            tasks.into_par_iter().for_each(fill);
        }
    }
    let valid = left.then(|| NullBuffer::from(valid));
    build_batch(
        options,
        point_index,
        polygon,
        distance,
        area,
        with_rank.then_some(rank),
        valid,
    )
}

fn build_batch(
    options: &MatchOptions,
    point_index: Vec<u64>,
    polygon: Vec<u32>,
    distance: Vec<f64>,
    area: Vec<f64>,
    rank: Option<Vec<u32>>,
    valid: Option<NullBuffer>,
) -> Result<RecordBatch> {
    // Vec -> ScalarBuffer moves the allocation: no copy.
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::new(ScalarBuffer::from(point_index), None)),
        Arc::new(UInt32Array::new(ScalarBuffer::from(polygon), valid.clone())),
        Arc::new(Float64Array::new(
            ScalarBuffer::from(distance),
            valid.clone(),
        )),
        Arc::new(Float64Array::new(ScalarBuffer::from(area), valid.clone())),
    ];
    if let Some(rank) = rank {
        columns.push(Arc::new(UInt32Array::new(ScalarBuffer::from(rank), valid)));
    }
    Ok(RecordBatch::try_new(result_schema(options), columns)?)
}

/// Check the points of a match on the sphere: a finite latitude outside `[-90, 90]` or
/// longitude outside `[-180, 360]` is an error naming the row (`first_point + i`);
/// non-finite and null points never match.
fn check_sphere_points(points: PointSlices<'_>, first_point: u64) -> Result<()> {
    // Chunk by chunk, a branch-free pass over the coordinates (null points included),
    // then, only in a chunk where it found something, the first valid point at fault.
    let bad = (0..points.len().div_ceil(CHUNK))
        .into_par_iter()
        .find_map_first(|c| {
            let range = c * CHUNK..((c + 1) * CHUNK).min(points.len());
            let (x, y) = (&points.x[range.clone()], &points.y[range.clone()]);
            if x.iter()
                .zip(y)
                .fold(true, |ok, (&lon, &lat)| ok & sphere::is_lon_lat(lon, lat))
            {
                return None;
            }
            range.into_iter().find(|&i| {
                points.nulls.is_none_or(|n| n.is_valid(i))
                    && !sphere::is_lon_lat(points.x[i], points.y[i])
            })
        });
    match bad {
        None => Ok(()),
        Some(i) => Err(PolymatchError::invalid_geometry(
            first_point as usize + i,
            format!(
                "point {}",
                sphere::check_lon_lat(points.x[i], points.y[i]).unwrap_or_default()
            ),
        )),
    }
}

/// The center rule on the sphere ([`Metric::Sphere`]): the tree's walks with the
/// [`SphereCap`] rule, per point, in Z-order of longitude/latitude when it pays. Every
/// rank rule, `k`, `how` and all candidates apply as on the plane; `rank_by="distance"`
/// orders by the squared chord (the great-circle distance's order), ties to the lowest
/// row.
fn match_sphere(
    index: &SpatialIndex,
    points: PointSlices<'_>,
    options: &MatchOptions,
    first_point: u64,
    cancel: Option<&AtomicBool>,
) -> Result<RecordBatch> {
    check_sphere_points(points, first_point)?;
    if options.best_rank_path_by_rank() {
        // One best rank per point: the cell lists, where they apply (as best_ranks).
        if let Some(cells) = index.sphere_cell_lists(options.max_dist, points.len()) {
            let chunk = options.chunk_size;
            // (rank, then the distance in metres) per point: the scan's unit vector
            // measures the match, so the output does not compute it again.
            let mut ranks = zeroed(points.len(), chunk);
            let mut metres: Vec<f64> = zeroed(points.len(), chunk);
            let mut pairs: Vec<(&mut [u32], &mut [f64])> = ranks
                .chunks_mut(chunk)
                .zip(metres.chunks_mut(chunk))
                .collect();
            let kernel = |c: usize, (out, dist): &mut (&mut [u32], &mut [f64])| {
                if cancelled(cancel) {
                    return;
                }
                let start = c * chunk;
                let xs = &points.x[start..start + out.len()];
                let ys = &points.y[start..start + out.len()];
                cells.best_within_many_keyed(index, xs, ys, out, dist);
                if let Some(nb) = points.nulls {
                    for (i, slot) in out.iter_mut().enumerate() {
                        if nb.is_null(start + i) {
                            *slot = NO_MATCH;
                        }
                    }
                }
                sphere::metres_many(dist);
            };
            if pairs.len() <= 1 {
                pairs.iter_mut().enumerate().for_each(|(c, p)| kernel(c, p));
            } else {
                pairs
                    .par_iter_mut()
                    .enumerate()
                    .for_each(|(c, p)| kernel(c, p));
            }
            drop(pairs);
            if cancelled(cancel) {
                return Err(PolymatchError::Cancelled);
            }
            return best_output(index, points, options, first_point, ranks, Some(metres));
        }
        if sort_pays(index, points, options.max_dist) {
            let ranks = sphere_best_grouped(index, points, options, cancel)?;
            return best_output(index, points, options, first_point, ranks, None);
        }
    }
    let within = ChordWithin::new(options.max_dist);
    let k = options.k as usize;
    let by_distance = options.rank_by == RankBy::Distance;
    let all = options.all_candidates;
    let descending = options.descending;
    // One point: its ranks (best first, or by row for all candidates) and, when the
    // search measured them, their squared chords.
    let search = |lon: f64, lat: f64, ranks: &mut Vec<u32>, chords: &mut Vec<f64>| {
        let cap = SphereCap::new(&within, index, lon, lat);
        if all {
            let mut found: Vec<(u32, u32)> = Vec::new();
            index.for_each_by(&cap, lon, lat, |rank, _, _| {
                found.push((index.row_of(rank), rank));
            });
            found.sort_unstable();
            for (_, r) in found {
                ranks.push(r);
                chords.push(cap.key(r));
            }
        } else if by_distance {
            let mut near = Vec::with_capacity(k);
            index.nearest_k_by(&cap, lon, lat, k, descending, &mut near);
            for (s, r) in near {
                ranks.push(r);
                chords.push(s);
            }
        } else if k == 1 {
            let r = index.best_by(&cap, lon, lat);
            if r != NO_MATCH {
                ranks.push(r);
                chords.push(cap.key(r));
            }
        } else {
            let mut best = Vec::with_capacity(k);
            index.best_k_by(&cap, lon, lat, k, &mut best);
            ranks.extend_from_slice(&best);
            // The cap has the point's unit vector: no sine or cosine per output row.
            chords.extend(best.iter().map(|&r| cap.key(r)));
        }
    };
    let (offsets, ranks, chords) =
        lists_per_point(index, points, options.chunk_size, cancel, search)?;
    // Squared chords to metres in place, several per vector instruction.
    let mut metres = chords;
    metres
        .par_chunks_mut(options.chunk_size.max(1))
        .for_each(sphere::metres_many);
    build_output(index, points, options, first_point, |i| {
        let (a, b) = (offsets[i], offsets[i + 1]);
        let known = (!metres.is_empty()).then(|| &metres[a..b]);
        (&ranks[a..b], known)
    })
}

/// The best rank of every point on the sphere, in Z-order by groups of [`GROUP`]
/// neighbours: one tree walk per group ([`SpatialIndex::best_by_group`] with a
/// [`SphereGroup`]), each point deciding with its own [`SphereCap`]; answers in input
/// order.
fn sphere_best_grouped(
    index: &SpatialIndex,
    points: PointSlices<'_>,
    options: &MatchOptions,
    cancel: Option<&AtomicBool>,
) -> Result<Vec<u32>> {
    let chunk = options.chunk_size;
    let within = ChordWithin::new(options.max_dist);
    let z = z_order(index, points, chunk);
    let mut ranks = vec![NO_MATCH; z.order.len()];
    for_chunks(&mut ranks, chunk, |c, ranks| {
        if cancelled(cancel) {
            return;
        }
        let order = &z.order[c * chunk..c * chunk + ranks.len()];
        let mut entries = Vec::new();
        let (mut gx, mut gy) = ([0.0; GROUP], [0.0; GROUP]);
        let mut us = [[0.0; 3]; GROUP];
        for (ranks, order) in ranks.chunks_mut(GROUP).zip(order.chunks(GROUP)) {
            let n = order.len();
            for (k, &i) in order.iter().enumerate() {
                let i = i as usize;
                // A null or non-finite point gets NaN: it never matches.
                let (x, y) = if points.nulls.is_none_or(|nb| nb.is_valid(i)) {
                    (points.x[i], points.y[i])
                } else {
                    (f64::NAN, f64::NAN)
                };
                (gx[k], gy[k]) = (x, y);
                us[k] = if x.is_finite() && y.is_finite() {
                    sphere::unit(x, y)
                } else {
                    [f64::NAN; 3]
                };
            }
            let Some(group) = SphereGroup::new(&within, index, &us[..n]) else {
                continue;
            };
            index.best_by_group(
                &group,
                |k| SphereCap::from_unit(&within, index, us[k]),
                &gx[..n],
                &gy[..n],
                ranks,
                &mut entries,
            );
        }
    });
    if cancelled(cancel) {
        return Err(PolymatchError::Cancelled);
    }
    Ok(z.unsort(&ranks, chunk))
}

/// Each point's list of ranks (and values, for the paths that measure them) from
/// `search(x, y, ranks, values)`, run in parallel chunks, in Z-order when it pays, and
/// returned in input order as `(offsets, ranks, values)`: point `i` has
/// `ranks[offsets[i]..offsets[i + 1]]` (values empty if no search pushed any). Null and
/// non-finite points get NaN coordinates, which no rule accepts.
fn lists_per_point(
    index: &SpatialIndex,
    points: PointSlices<'_>,
    chunk: usize,
    cancel: Option<&AtomicBool>,
    search: impl Fn(f64, f64, &mut Vec<u32>, &mut Vec<f64>) + Sync,
) -> Result<(Vec<usize>, Vec<u32>, Vec<f64>)> {
    let n = points.len();
    let order: Option<ZOrder> =
        (n >= SORT_MIN_POINTS && index.matchable() >= SORT_MIN_POLYGONS && n < u32::MAX as usize)
            .then(|| z_order(index, points, chunk));
    let position = |j: usize| order.as_ref().map_or(j, |o| o.order[j] as usize);
    let kernel = |start: usize, end: usize| -> (Vec<u32>, Vec<u32>, Vec<f64>) {
        let (mut counts, mut ranks, mut values) =
            (Vec::with_capacity(end - start), Vec::new(), Vec::new());
        if cancelled(cancel) {
            return (counts, ranks, values);
        }
        for j in start..end {
            let i = position(j);
            let (x, y) = if points.nulls.is_none_or(|nb| nb.is_valid(i)) {
                (points.x[i], points.y[i])
            } else {
                (f64::NAN, f64::NAN)
            };
            let before = ranks.len();
            if x.is_finite() && y.is_finite() {
                search(x, y, &mut ranks, &mut values);
            }
            counts.push((ranks.len() - before) as u32);
        }
        (counts, ranks, values)
    };
    let parts: Vec<(Vec<u32>, Vec<u32>, Vec<f64>)> = per_chunk(n, chunk, kernel);
    if cancelled(cancel) {
        return Err(PolymatchError::Cancelled);
    }
    let with_values = parts.iter().any(|p| !p.2.is_empty());
    Ok(scatter_lists(n, position, &parts, with_values))
}

/// Per-point lists computed in chunks in matching order (`parts`: counts, ranks and, if
/// `with_values`, one value per rank), put back in input order: the `j`-th point
/// matched is point `position(j)`. Returns `(offsets, ranks, values)`, point `i`'s list
/// at `offsets[i]..offsets[i + 1]`.
fn scatter_lists(
    n: usize,
    position: impl Fn(usize) -> usize,
    parts: &[(Vec<u32>, Vec<u32>, Vec<f64>)],
    with_values: bool,
) -> (Vec<usize>, Vec<u32>, Vec<f64>) {
    let mut counts = vec![0u32; n];
    let mut j = 0usize;
    for (cs, _, _) in parts {
        for &c in cs {
            counts[position(j)] = c;
            j += 1;
        }
    }
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0usize);
    for &c in &counts {
        offsets.push(offsets[offsets.len() - 1] + c as usize);
    }
    let total = offsets[n];
    let mut ranks = vec![NO_MATCH; total];
    let mut values = vec![f64::NAN; if with_values { total } else { 0 }];
    let mut j = 0usize;
    for (cs, r, v) in parts {
        let mut at = 0usize;
        for &c in cs {
            let (to, c) = (offsets[position(j)], c as usize);
            ranks[to..to + c].copy_from_slice(&r[at..at + c]);
            if with_values {
                values[to..to + c].copy_from_slice(&v[at..at + c]);
            }
            at += c;
            j += 1;
        }
    }
    (offsets, ranks, values)
}

/// One chunk's share of the all-candidates result.
#[derive(Default)]
struct Pairs {
    point: Vec<u64>,
    polygon: Vec<u32>,
    distance: Vec<f64>,
    area: Vec<f64>,
    valid: Vec<bool>,
}

/// Every (point, candidate) pair, ordered by point then polygon row (the article repo's
/// `find_all_close_polygons`). With [`How::Left`], a point without candidates gets one
/// row with null polygon columns.
fn match_all_candidates(
    index: &SpatialIndex,
    points: PointSlices<'_>,
    options: &MatchOptions,
    first_point: u64,
    cancel: Option<&AtomicBool>,
) -> Result<RecordBatch> {
    let chunk_size = options.chunk_size;
    let kernel = |start: usize, end: usize| -> Pairs {
        let mut out = Pairs::default();
        if cancelled(cancel) {
            return out;
        }
        let mut found: Vec<(u32, f64, f64)> = Vec::new();
        for i in start..end {
            // Per point, not per chunk: a point can have millions of candidates.
            if cancelled(cancel) {
                return out;
            }
            found.clear();
            let is_null = points.nulls.is_some_and(|n| n.is_null(i));
            if !is_null {
                index.for_each_within(points.x[i], points.y[i], options.max_dist, |rank, d| {
                    found.push((index.row_of(rank), d, index.area_of(rank)));
                });
            }
            found.sort_unstable_by_key(|f| f.0);
            for &(row, d, a) in &found {
                out.point.push(first_point + i as u64);
                out.polygon.push(row);
                out.distance.push(d);
                out.area.push(a);
                out.valid.push(true);
            }
            if found.is_empty() && options.how == How::Left {
                out.point.push(first_point + i as u64);
                out.polygon.push(0);
                out.distance.push(f64::NAN);
                out.area.push(f64::NAN);
                out.valid.push(false);
            }
        }
        out
    };
    let n = points.len();
    let parts: Vec<Pairs> = per_chunk(n, chunk_size, kernel);
    if cancelled(cancel) {
        return Err(PolymatchError::Cancelled);
    }
    let total: usize = parts.iter().map(|p| p.point.len()).sum();
    let mut all = Pairs {
        point: Vec::with_capacity(total),
        polygon: Vec::with_capacity(total),
        distance: Vec::with_capacity(total),
        area: Vec::with_capacity(total),
        valid: Vec::with_capacity(total),
    };
    for p in parts {
        all.point.extend_from_slice(&p.point);
        all.polygon.extend_from_slice(&p.polygon);
        all.distance.extend_from_slice(&p.distance);
        all.area.extend_from_slice(&p.area);
        all.valid.extend_from_slice(&p.valid);
    }
    let valid = (options.how == How::Left).then(|| NullBuffer::from(all.valid));
    build_batch(
        options,
        all.point,
        all.polygon,
        all.distance,
        all.area,
        None,
        valid,
    )
}

/// Run `f` on a rayon pool of `threads` threads (built once per thread count and kept),
/// or on the global pool
/// (sized by `RAYON_NUM_THREADS`, default: one per core) when `threads` is `None`.
///
/// # Errors
/// [`PolymatchError::InvalidArgument`] if `threads` is 0 or above [`MAX_THREADS`], or the
/// pool cannot start.
pub fn with_threads<T: Send>(threads: Option<usize>, f: impl FnOnce() -> T + Send) -> Result<T> {
    match threads {
        None => Ok(f()),
        Some(0) => Err(PolymatchError::InvalidArgument(
            "threads must be >= 1".into(),
        )),
        // Each thread is an OS thread with its own stack: a typo such as 100000 would
        // exhaust the machine before failing.
        Some(n) if n > MAX_THREADS => Err(PolymatchError::InvalidArgument(format!(
            "threads must be at most {MAX_THREADS}, got {n}"
        ))),
        Some(n) => Ok(pool_of(n)?.install(f)),
    }
}

/// Most thread counts [`with_threads`] keeps a pool for.
const CACHED_POOLS: usize = 4;

/// The pool of `n` threads of this process, built on first use and kept (at most
/// [`CACHED_POOLS`], the oldest dropped), so that a call with `threads=n` does not start
/// `n` threads each time. Keyed by process id: a forked child inherits the cache but not
/// the pools' threads, and builds its own.
fn pool_of(n: usize) -> Result<Arc<rayon::ThreadPool>> {
    use std::sync::Mutex;
    type Pools = Vec<(u32, usize, Arc<rayon::ThreadPool>)>;
    static POOLS: Mutex<Pools> = Mutex::new(Vec::new());
    let pid = std::process::id();
    // A poisoned lock only means a panic elsewhere while holding it: the list is valid.
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    pools.retain(|(p, _, _)| *p == pid);
    if let Some((_, _, pool)) = pools.iter().find(|(_, m, _)| *m == n) {
        return Ok(pool.clone());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .map_err(|e| PolymatchError::InvalidArgument(format!("cannot start {n} threads: {e}")))?;
    let pool = Arc::new(pool);
    if pools.len() == CACHED_POOLS {
        pools.remove(0);
    }
    pools.push((pid, n, pool.clone()));
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use arrow::datatypes::{Float64Type, UInt32Type, UInt64Type};

    use super::*;

    fn small_index() -> SpatialIndex {
        // centers (0,0) area 2, (1,0) area 1, (10,10) area 1
        SpatialIndex::from_centers(
            &[0.0, 1.0, 10.0],
            &[0.0, 0.0, 10.0],
            &[2.0, 1.0, 1.0],
            |_| true,
        )
    }

    #[test]
    fn inner_left_and_all_candidates() {
        let index = small_index();
        let x = [0.0, 50.0, 9.0, f64::NAN, 0.5];
        let y = [0.0, 50.0, 9.0, 0.0, 0.0];
        let nulls = NullBuffer::from(vec![true, true, true, true, false]);
        let points = PointSlices::new(&x, &y, Some(&nulls)).unwrap();
        let opts = MatchOptions {
            max_dist: 2.0,
            ..Default::default()
        };
        let inner = match_points(&index, points, &opts, 100, None).unwrap();
        assert_eq!(
            inner.column(0).as_primitive::<UInt64Type>().values(),
            &[100, 102]
        );
        assert_eq!(
            inner.column(1).as_primitive::<UInt32Type>().values(),
            &[1, 2]
        );
        assert_eq!(
            inner.column(2).as_primitive::<Float64Type>().values()[0],
            1.0
        );
        let left = match_points(
            &index,
            points,
            &MatchOptions {
                how: How::Left,
                ..opts.clone()
            },
            0,
            None,
        )
        .unwrap();
        assert_eq!(left.num_rows(), 5);
        assert_eq!(left.column(1).null_count(), 3);
        let all = match_points(
            &index,
            points,
            &MatchOptions {
                all_candidates: true,
                ..opts.clone()
            },
            0,
            None,
        )
        .unwrap();
        assert_eq!(
            all.column(0).as_primitive::<UInt64Type>().values(),
            &[0, 0, 2]
        );
        assert_eq!(
            all.column(1).as_primitive::<UInt32Type>().values(),
            &[0, 1, 2]
        );
    }

    #[test]
    fn bad_options() {
        let index = small_index();
        let points = PointSlices::new(&[0.0], &[0.0], None).unwrap();
        for d in [0.0, -1.0, f64::NAN] {
            let opts = MatchOptions {
                max_dist: d,
                ..Default::default()
            };
            assert!(matches!(
                match_points(&index, points, &opts, 0, None),
                Err(PolymatchError::InvalidArgument(_))
            ));
        }
        assert!(PointSlices::new(&[0.0], &[], None).is_err());
        assert!("outer".parse::<How>().is_err());
    }

    #[test]
    fn cancel_flag_stops_the_kernel() {
        let index = small_index();
        let xs = vec![0.0; 3 * CHUNK];
        let points = PointSlices::new(&xs, &xs, None).unwrap();
        let flag = AtomicBool::new(true);
        assert!(matches!(
            match_points(&index, points, &MatchOptions::default(), 0, Some(&flag)),
            Err(PolymatchError::Cancelled)
        ));
    }
}
