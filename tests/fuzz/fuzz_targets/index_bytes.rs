//! `SpatialIndex::from_bytes` on arbitrary bytes: an error, or an index whose answers
//! equal a brute-force search over its own centers and areas; never a panic or a hang.
//!
//! Input: byte 0 = flags; the rest is the serialised index. With flag bit 0 set the
//! trailing checksum is recomputed first, so that mutations reach the structural
//! validation behind it (a random edit almost never passes a checksum).
#![no_main]

use arrow::array::{Array, UInt32Array};
use libfuzzer_sys::fuzz_target;
use polymatch::index::distance;
use polymatch::{match_points, How, MatchOptions, Order, PointSlices, RankBy, SpatialIndex};

/// FNV-1a over 8-byte little-endian words, then the remaining bytes (as `to_bytes`).
fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h = (h ^ u64::from_le_bytes(c.try_into().expect("8 bytes"))).wrapping_mul(0x0100_0000_01b3);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let mut bytes = body.to_vec();
    if flags & 1 == 1 && bytes.len() >= 8 {
        let end = bytes.len() - 8;
        let sum = checksum(&bytes[..end]);
        bytes[end..].copy_from_slice(&sum.to_le_bytes());
    }
    let Ok(index) = SpatialIndex::from_bytes(&bytes) else {
        return;
    };
    // An index may declare up to 2^32 - 2 rows (most of them unmatchable) in a few bytes;
    // the per-row oracle below would allocate for each of them.
    if index.rows() > 1 << 16 {
        return;
    }
    let (cx, cy, area) = index.derived_columns();
    let mut xs: Vec<f64> = cx.iter().take(32).copied().collect();
    let mut ys: Vec<f64> = cy.iter().take(32).copied().collect();
    xs.extend([0.0, 1e300, -1e300, 0.5]);
    ys.extend([0.0, -1e300, 1e300, 0.5]);
    // The index answers in its own order (stored in the bytes): rank 0 best. An area
    // order was checked against the areas by from_bytes; a column order is the order.
    let (rank_by, descending) = match index.order() {
        Order::Area { descending } => (RankBy::Area, *descending),
        Order::Column { name, descending } => (RankBy::Column(name.clone()), *descending),
    };
    let mut rank_of = vec![u32::MAX; index.rows()];
    for r in 0..index.matchable() as u32 {
        rank_of[index.row_of(r) as usize] = r;
    }
    for max_dist in [f64::INFINITY, 1.0, 1e-300] {
        let options = MatchOptions {
            max_dist,
            how: How::Left,
            chunk_size: 5,
            rank_by: rank_by.clone(),
            descending,
            ..MatchOptions::default()
        };
        let slices = PointSlices::new(&xs, &ys, None).expect("same lengths");
        let result = match_points(&index, slices, &options, 0, None).expect("valid options");
        let got = result
            .column(1)
            .as_any()
            .downcast_ref::<UInt32Array>()
            .expect("uint32 polygon_index");
        for (i, (&px, &py)) in xs.iter().zip(&ys).enumerate() {
            let mut best: Option<(u32, usize)> = None;
            for row in 0..cx.len() {
                if area[row].is_nan() || !(distance(px, py, cx[row], cy[row]) < max_dist) {
                    continue;
                }
                if best.is_none_or(|(r, _)| rank_of[row] < r) {
                    best = Some((rank_of[row], row));
                }
            }
            let have = got.is_valid(i).then(|| got.value(i) as usize);
            assert_eq!(have, best.map(|b| b.1), "point {i} ({px}, {py}) max_dist {max_dist}");
        }
        let all = MatchOptions {
            all_candidates: true,
            rank_by: RankBy::Area,
            descending: false,
            ..options
        };
        let slices = PointSlices::new(&xs, &ys, None).expect("same lengths");
        let _ = match_points(&index, slices, &all, 0, None).expect("valid options");
    }
});
