//! Rank rules (`rank_by` area / distance / a polygon column, `descending`, `k`) against a
//! brute-force oracle written here from SPEC.md: every center tested with SPEC's
//! distance, the candidates sorted by the rule's key (nulls and NaN last in either
//! direction), ties to the lowest row, the first `k` kept. Inputs have many ties (centers
//! on a half-unit grid, three areas, a rank column with repeated values, NaN and nulls),
//! and the large cases reach the Z-ordered path.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{Float64Type, UInt32Type, UInt64Type};
use polymatch::index::{distance, GroupScratch, NearScratch, Within};
use polymatch::matching::with_threads;
use polymatch::synth::Rng;
use polymatch::{
    match_points, How, MatchOptions, Order, PointSlices, PolymatchError, RankBy, Rankings,
    SpatialIndex,
};
use proptest::prelude::*;

use crate::common::below;

/// The polygons of a case: centers, areas, which rows are matchable, a rank column.
#[derive(Debug, Clone)]
struct Polygons {
    cx: Vec<f64>,
    cy: Vec<f64>,
    area: Vec<f64>,
    keep: Vec<bool>,
    value: Vec<Option<f64>>,
}

impl Polygons {
    fn rankings(&self) -> (Rankings, RecordBatch) {
        let index = SpatialIndex::from_centers(&self.cx, &self.cy, &self.area, |j| self.keep[j]);
        let value: ArrayRef = Arc::new(Float64Array::from(self.value.clone()));
        let label: ArrayRef = Arc::new(StringArray::from(vec!["x"; self.cx.len()]));
        let attributes = RecordBatch::try_from_iter([("value", value), ("label", label)]).unwrap();
        (Rankings::new(Arc::new(index)), attributes)
    }
}

/// The k best rows of `(px, py)` by `rule`, written from SPEC.md alone.
fn oracle(p: &Polygons, options: &MatchOptions, px: f64, py: f64) -> Vec<u32> {
    use std::cmp::Ordering;
    let mut cands: Vec<(u32, f64)> = (0..p.cx.len())
        .filter(|&j| p.keep[j])
        .map(|j| (j as u32, distance(px, py, p.cx[j], p.cy[j])))
        .filter(|&(_, d)| d < options.max_dist)
        .collect();
    // numeric comparison; None last whatever the direction
    let cmp_values = |a: Option<f64>, b: Option<f64>| -> Ordering {
        let (a, b) = (a.filter(|v| !v.is_nan()), b.filter(|v| !v.is_nan()));
        match (a, b) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => {
                let o = a.partial_cmp(&b).unwrap();
                if options.descending {
                    o.reverse()
                } else {
                    o
                }
            }
        }
    };
    cands.sort_by(|&(ra, da), &(rb, db)| {
        let (a, b) = (ra as usize, rb as usize);
        let primary = match &options.rank_by {
            RankBy::Area => cmp_values(Some(p.area[a]), Some(p.area[b])),
            RankBy::Distance => cmp_values(Some(da), Some(db)),
            RankBy::Column(_) => cmp_values(p.value[a], p.value[b]),
        };
        primary.then(ra.cmp(&rb))
    });
    cands.truncate(options.k as usize);
    cands.into_iter().map(|(r, _)| r).collect()
}

/// Per point, the polygon rows of a result in row order, checking the other columns.
fn rows_per_point(
    result: &RecordBatch,
    n: usize,
    options: &MatchOptions,
    px: &[f64],
    py: &[f64],
    p: &Polygons,
) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); n];
    let point: &[u64] = result.column(0).as_primitive::<UInt64Type>().values();
    let polygon = result.column(1).as_primitive::<UInt32Type>();
    let dist = result.column(2).as_primitive::<Float64Type>();
    let area = result.column(3).as_primitive::<Float64Type>();
    assert_eq!(result.num_columns(), if options.k > 1 { 5 } else { 4 });
    let mut seen = vec![0usize; n];
    for i in 0..result.num_rows() {
        let pt = point[i] as usize;
        seen[pt] += 1;
        if i > 0 {
            assert!(
                point[i - 1] <= point[i],
                "rows grouped by point, in point order"
            );
        }
        if polygon.is_null(i) {
            assert_eq!(options.how, How::Left);
            continue;
        }
        let row = polygon.value(i);
        let r = row as usize;
        assert_eq!(
            dist.value(i).to_bits(),
            distance(px[pt], py[pt], p.cx[r], p.cy[r]).to_bits()
        );
        assert_eq!(area.value(i).to_bits(), p.area[r].to_bits());
        if options.k > 1 {
            let rank = result.column(4).as_primitive::<UInt32Type>().value(i);
            assert_eq!(
                rank as usize,
                out[pt].len() + 1,
                "rank counts from 1 in order"
            );
        }
        out[pt].push(row);
    }
    if options.how == How::Left {
        assert!(seen.iter().all(|&s| s >= 1), "left keeps every point");
    }
    out
}

fn options_for(rule: u8, descending: bool, k: u32, max_dist: f64, how: How) -> MatchOptions {
    MatchOptions {
        max_dist,
        how,
        rank_by: match rule {
            0 => RankBy::Area,
            1 => RankBy::Distance,
            _ => RankBy::Column("value".into()),
        },
        descending,
        k,
        ..MatchOptions::default()
    }
}

fn run(
    rankings: &Rankings,
    attributes: &RecordBatch,
    options: &MatchOptions,
    px: &[f64],
    py: &[f64],
) -> RecordBatch {
    let index = match options.index_order() {
        Some(order) => rankings.get(&order, Some(attributes)).unwrap(),
        None => rankings.base().clone(),
    };
    let points = PointSlices::new(px, py, None).unwrap();
    match_points(&index, points, options, 0, None).unwrap()
}

fn small_case() -> impl Strategy<Value = (Polygons, Vec<(f64, f64)>)> {
    (1usize..120, 1usize..80, any::<u64>()).prop_map(|(n, m, seed)| make_case(n, m, seed))
}

/// `n` polygons and `m` points on a half-unit grid, with many ties.
fn make_case(n: usize, m: usize, seed: u64) -> (Polygons, Vec<(f64, f64)>) {
    {
        let mut rng = Rng::new(seed);
        let half = |rng: &mut Rng| below(rng, 24) as f64 * 0.5; // a half-unit grid: ties
        let values = [
            Some(0.0),
            Some(-0.0),
            Some(1.0),
            Some(2.5),
            Some(f64::NAN),
            None,
        ];
        let polygons = Polygons {
            cx: (0..n).map(|_| half(&mut rng)).collect(),
            cy: (0..n).map(|_| half(&mut rng)).collect(),
            area: (0..n)
                .map(|_| [0.5, 1.0, 2.0][below(&mut rng, 3) as usize])
                .collect(),
            keep: (0..n).map(|_| below(&mut rng, 8) != 0).collect(),
            value: (0..n)
                .map(|_| values[below(&mut rng, 6) as usize])
                .collect(),
        };
        let points = (0..m).map(|_| (half(&mut rng), half(&mut rng))).collect();
        (polygons, points)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Every rule, direction and k equals the oracle, for every thread count and chunk
    /// size, inner and left.
    #[test]
    fn every_rule_equals_the_oracle(
        (polygons, pts) in small_case(),
        rule in 0u8..3,
        descending in any::<bool>(),
        k in prop::sample::select(vec![1u32, 2, 3, 7]),
        max_dist in prop::sample::select(vec![0.5, 1.0, 3.0, 7.5, f64::INFINITY]),
        left in any::<bool>(),
    ) {
        let how = if left { How::Left } else { How::Inner };
        let (rankings, attributes) = polygons.rankings();
        let (px, py): (Vec<f64>, Vec<f64>) = pts.iter().copied().unzip();
        let options = options_for(rule, descending, k, max_dist, how);
        let reference = run(&rankings, &attributes, &options, &px, &py);
        let got = rows_per_point(&reference, px.len(), &options, &px, &py, &polygons);
        for i in 0..px.len() {
            prop_assert_eq!(&got[i], &oracle(&polygons, &options, px[i], py[i]), "point {}", i);
        }
        for threads in [Some(1), Some(2)] {
            for chunk_size in [1, 7, 8192] {
                let o = MatchOptions { chunk_size, ..options.clone() };
                let again = with_threads(threads, || run(&rankings, &attributes, &o, &px, &py)).unwrap();
                prop_assert_eq!(&again, &reference);
            }
        }
    }
}

/// Above the Z-order thresholds (4096 points, 2^15 polygons, finite radius): the scatter
/// back to point order and the walks agree with the oracle on a sample of points, and the
/// whole result is the same for every chunk size.
#[test]
fn large_inputs_reach_the_zordered_path() {
    let n = (1 << 15) + 500;
    let m = 6000;
    let mut rng = Rng::new(12);
    let coord = |rng: &mut Rng| below(rng, 4000) as f64 * 0.05; // 0..200, ties
    let polygons = Polygons {
        cx: (0..n).map(|_| coord(&mut rng)).collect(),
        cy: (0..n).map(|_| coord(&mut rng)).collect(),
        area: (0..n).map(|_| below(&mut rng, 50) as f64).collect(),
        keep: (0..n).map(|_| below(&mut rng, 16) != 0).collect(),
        value: (0..n)
            .map(|_| match below(&mut rng, 12) {
                0 => None,
                1 => Some(f64::NAN),
                v => Some(v as f64),
            })
            .collect(),
    };
    let (px, py): (Vec<f64>, Vec<f64>) = (0..m).map(|_| (coord(&mut rng), coord(&mut rng))).unzip();
    let (rankings, attributes) = polygons.rankings();
    for (rule, descending, k) in [
        (1, false, 1),
        (1, true, 3),
        (0, false, 3),
        (0, true, 1),
        (2, false, 4),
        (2, true, 2),
    ] {
        let options = options_for(rule, descending, k, 4.0, How::Left);
        let result = run(&rankings, &attributes, &options, &px, &py);
        let got = rows_per_point(&result, m, &options, &px, &py, &polygons);
        assert!(got.iter().filter(|g| !g.is_empty()).count() > m / 2);
        for i in (0..m).step_by(17) {
            assert_eq!(
                got[i],
                oracle(&polygons, &options, px[i], py[i]),
                "rule {rule} desc {descending} k {k} point {i}"
            );
        }
        let small_chunks = MatchOptions {
            chunk_size: 333,
            ..options.clone()
        };
        assert_eq!(run(&rankings, &attributes, &small_chunks, &px, &py), result);
    }
}

/// Integers rank exactly (beyond 2^53, where a float64 would tie them), and temporal
/// and decimal columns by their values.
/// Every polygon row, best first, ranked by `column` of `attributes`, for a point that
/// has every polygon as a candidate (all centers at the origin).
fn ranked_by_column(
    rankings: &Rankings,
    attributes: &RecordBatch,
    column: &str,
    descending: bool,
) -> Vec<u32> {
    let options = MatchOptions {
        rank_by: RankBy::Column(column.into()),
        descending,
        k: attributes.num_rows() as u32,
        ..MatchOptions::default()
    };
    let idx = rankings
        .get(&options.index_order().unwrap(), Some(attributes))
        .unwrap();
    let r = match_points(
        &idx,
        PointSlices::new(&[0.0], &[0.0], None).unwrap(),
        &options,
        0,
        None,
    )
    .unwrap();
    r.column(1).as_primitive::<UInt32Type>().values().to_vec()
}

#[test]
fn integer_columns_rank_exactly() {
    let index = Arc::new(SpatialIndex::from_centers(
        &[0.0; 4],
        &[0.0; 4],
        &[1.0; 4],
        |_| true,
    ));
    let big: ArrayRef = Arc::new(Int64Array::from(vec![
        Some(i64::MAX),
        Some(i64::MAX - 1),
        None,
        Some(i64::MIN),
    ]));
    let attributes = RecordBatch::try_from_iter([("big", big)]).unwrap();
    let rankings = Rankings::new(index);
    let best = |descending: bool| ranked_by_column(&rankings, &attributes, "big", descending);
    assert_eq!(best(false), vec![3, 1, 0, 2]);
    assert_eq!(
        best(true),
        vec![0, 1, 3, 2],
        "nulls last in either direction"
    );
    assert_eq!(
        rankings.prepared_orders().len(),
        2,
        "each order prepared once, cached"
    );
    best(true);
    assert_eq!(rankings.prepared_orders().len(), 2);
}

/// Decimal256 values (beyond what an i128 holds too) rank as their values do, as the
/// same values in Decimal128 do.
#[test]
fn decimal256_columns_rank_like_decimal128() {
    use arrow::array::{Decimal128Array, Decimal256Array};
    use arrow::datatypes::i256;
    let values = [
        Some(350i128),
        None,
        Some(-225),
        Some(350),
        Some(1000),
        Some(0),
    ];
    let n = values.len();
    let index = Arc::new(SpatialIndex::from_centers(
        &vec![0.0; n],
        &vec![0.0; n],
        &vec![1.0; n],
        |_| true,
    ));
    let small: ArrayRef = Arc::new(
        Decimal128Array::from(values.to_vec())
            .with_precision_and_scale(20, 2)
            .unwrap(),
    );
    let scale = i256::from_i128(10).wrapping_pow(60);
    let wide = |f: i256| -> ArrayRef {
        Arc::new(
            Decimal256Array::from(
                values
                    .iter()
                    .map(|v| v.map(|v| i256::from_i128(v).wrapping_mul(f)))
                    .collect::<Vec<_>>(),
            )
            .with_precision_and_scale(76, 2)
            .unwrap(),
        )
    };
    let order = |column: ArrayRef, descending: bool| {
        let attributes = RecordBatch::try_from_iter([("r", column)]).unwrap();
        ranked_by_column(&Rankings::new(index.clone()), &attributes, "r", descending)
    };
    for descending in [false, true] {
        let want = order(small.clone(), descending);
        assert_eq!(order(wide(i256::ONE), descending), want);
        assert_eq!(order(wide(scale), descending), want);
    }
    assert_eq!(order(small, false), vec![2, 5, 0, 3, 4, 1]);
}

/// A prepared order survives bytes: a column order is stored, an area order checked.
#[test]
fn prepared_orders_round_trip_through_bytes() {
    let (polygons, _) = make_case(90, 1, 5);
    let (rankings, attributes) = polygons.rankings();
    for order in [
        Order::Area { descending: true },
        Order::Column {
            name: "value".into(),
            descending: false,
        },
        Order::Column {
            name: "value".into(),
            descending: true,
        },
    ] {
        let index = rankings.get(&order, Some(&attributes)).unwrap();
        let back = SpatialIndex::from_bytes(&index.to_bytes()).unwrap();
        assert_eq!(back.order(), &order);
        assert_eq!(&back, index.as_ref());
    }
}

#[test]
fn rank_errors_name_the_argument() {
    let (polygons, _) = make_case(90, 1, 5);
    let (rankings, attributes) = polygons.rankings();
    let col = |name: &str| Order::Column {
        name: name.into(),
        descending: false,
    };
    match rankings.get(&col("nope"), Some(&attributes)) {
        Err(PolymatchError::MissingColumn { name, hint }) => {
            assert_eq!(name, "nope");
            assert!(hint.contains("value"), "{hint}");
        }
        other => panic!("{other:?}"),
    }
    match rankings.get(&col("label"), Some(&attributes)) {
        Err(PolymatchError::ColumnType { column, .. }) => assert_eq!(column, "label"),
        other => panic!("{other:?}"),
    }
    match rankings.get(&col("value"), None) {
        Err(PolymatchError::MissingColumn { hint, .. }) => {
            assert!(hint.contains("no attribute"), "{hint}")
        }
        other => panic!("{other:?}"),
    }
    let points = PointSlices::new(&[0.0], &[0.0], None).unwrap();
    let base = rankings.base();
    for (options, words) in [
        (
            MatchOptions {
                k: 0,
                ..MatchOptions::default()
            },
            "k must be",
        ),
        (
            MatchOptions {
                k: 2,
                all_candidates: true,
                ..MatchOptions::default()
            },
            "all_candidates",
        ),
        (
            MatchOptions {
                rank_by: RankBy::Column("value".into()),
                ..MatchOptions::default()
            },
            "ranked by area",
        ),
        (
            MatchOptions {
                descending: true,
                ..MatchOptions::default()
            },
            "area (descending)",
        ),
    ] {
        match match_points(base, points, &options, 0, None) {
            Err(PolymatchError::InvalidArgument(m)) => assert!(m.contains(words), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    assert!("".parse::<RankBy>().is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The group searches (`best_k_within_group`, `nearest_k_within_group`) give every
    /// point of a group of neighbours exactly the per-point answer, on a grid with many
    /// equal distances, with NaN points, both directions, several k and radii.
    #[test]
    fn group_searches_equal_point_searches(
        seed in any::<u64>(),
        n in 1usize..3000,
        group in 1usize..=32,
        k in prop::sample::select(vec![1usize, 2, 5, 9]),
        max_dist in prop::sample::select(vec![0.75, 2.0, 5.0, 40.0]),
        descending in any::<bool>(),
    ) {
        let mut rng = Rng::new(seed);
        let grid = |rng: &mut Rng| below(rng, 80) as f64 * 0.5;
        let cx: Vec<f64> = (0..n).map(|_| grid(&mut rng)).collect();
        let cy: Vec<f64> = (0..n).map(|_| grid(&mut rng)).collect();
        let area: Vec<f64> = (0..n).map(|_| below(&mut rng, 4) as f64).collect();
        let index = SpatialIndex::from_centers(&cx, &cy, &area, |j| j % 9 != 4);
        let (ox, oy) = (grid(&mut rng), grid(&mut rng));
        let (xs, ys): (Vec<f64>, Vec<f64>) = (0..group)
            .map(|i| {
                if i % 11 == 7 {
                    (f64::NAN, oy)
                } else {
                    (ox + below(&mut rng, 9) as f64 * 0.25, oy + below(&mut rng, 9) as f64 * 0.25)
                }
            })
            .unzip();
        let within = Within::new(max_dist);
        let (mut counts, mut ranks) = (Vec::new(), Vec::new());
        index.nearest_k_within_group(&xs, &ys, &within, k, descending, &mut counts, &mut ranks, &mut NearScratch::default());
        let (mut counts2, mut ranks2) = (Vec::new(), Vec::new());
        index.best_k_within_group(&xs, &ys, max_dist, k, &mut counts2, &mut ranks2, &mut GroupScratch::default());
        let (mut at, mut at2) = (0usize, 0usize);
        let (mut near, mut best) = (Vec::new(), Vec::new());
        for i in 0..group {
            index.nearest_k_within(xs[i], ys[i], &within, k, descending, &mut near);
            let want: Vec<u32> = near.iter().map(|c| c.rank).collect();
            let c = counts[i] as usize;
            prop_assert_eq!(&ranks[at..at + c], &want[..], "distance, point {}", i);
            at += c;
            index.best_k_within(xs[i], ys[i], &within, k, &mut best);
            let c2 = counts2[i] as usize;
            prop_assert_eq!(&ranks2[at2..at2 + c2], &best[..], "rank, point {}", i);
            at2 += c2;
        }
    }
}
