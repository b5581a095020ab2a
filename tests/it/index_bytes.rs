//! Index bytes of format version 4, which carry the polygons' outlines: a round trip
//! answers the shape rules (`contains`, `covers`, `dwithin`) exactly as the original;
//! bytes of versions 3 and 4 without outlines still load; truncated, corrupted and forged
//! bytes are refused with `InvalidIndexBytes`, never a panic.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use polymatch::shape::{Outlines, ShapeIndex};
use polymatch::synth::Rng;
use polymatch::{
    match_shapes, How, Order, PointSlices, PolygonColumns, PolymatchError, Predicate, RankBy,
    SpatialIndex,
};

use crate::common::arrays::{from_array, multipolygon_array, Coords};
use crate::common::Multi;
use crate::shapes::{options, points, polygons};

/// FNV-1a over 8-byte little-endian words, then the remaining bytes (the format's
/// checksum), to forge bytes that pass it.
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

/// `bytes` with its checksum recomputed.
fn resealed(mut bytes: Vec<u8>) -> Vec<u8> {
    let body = bytes.len() - 8;
    let sum = checksum(&bytes[..body]);
    bytes[body..].copy_from_slice(&sum.to_le_bytes());
    bytes
}

/// Grid polygons (holes, second parts, invalid ones) with null and EMPTY rows among
/// them, as GeoArrow multipolygons; `sliced`: a slice of a larger array, whose offsets
/// do not start at 0.
fn columns(seed: u64, n: usize, sliced: bool) -> PolygonColumns {
    let mut rows: Vec<Option<Multi>> = polygons(seed, n).into_iter().map(Some).collect();
    for i in (0..rows.len()).step_by(7) {
        rows[i] = if i % 2 == 0 { None } else { Some(Vec::new()) };
    }
    let array: ArrayRef = multipolygon_array(&rows, Coords::Separated, true);
    if sliced {
        from_array(&array.slice(3, array.len() - 6))
    } else {
        from_array(&array)
    }
}

/// The shape matches of `index` with `polygons`: contains, covers (k = 3, left), by the
/// index's own order; dwithin by distance (k = 2); all dwithin candidates.
fn shape_matches(index: &SpatialIndex, polygons: PolygonColumns) -> Vec<RecordBatch> {
    let outlines = Arc::new(Outlines::new(Arc::new(polygons)).unwrap());
    let shapes = ShapeIndex::new(outlines, index).unwrap();
    let pts = points(11, 300);
    let (xs, ys): (Vec<f64>, Vec<f64>) = pts.iter().copied().unzip();
    let own = |predicate, k, how| {
        let mut o = options(predicate, index.order().rank_by(), k, false, how, 64);
        o.descending = index.order().descending();
        o
    };
    let mut dwithin = options(
        Predicate::Dwithin,
        RankBy::Distance,
        2,
        false,
        How::Left,
        64,
    );
    dwithin.max_dist = 2.5;
    let mut all = options(Predicate::Dwithin, RankBy::Area, 1, true, How::Inner, 64);
    all.max_dist = 1.0;
    [
        own(Predicate::Contains, 1, How::Inner),
        own(Predicate::Covers, 3, How::Left),
        dwithin,
        all,
    ]
    .iter()
    .map(|o| {
        match_shapes(
            &shapes,
            PointSlices::new(&xs, &ys, None).unwrap(),
            o,
            0,
            None,
        )
        .unwrap()
    })
    .collect()
}

fn refused(bytes: &[u8]) -> String {
    match std::panic::catch_unwind(|| SpatialIndex::from_bytes_with_polygons(bytes)) {
        Ok(Err(PolymatchError::InvalidIndexBytes(why))) => why,
        Ok(Err(e)) => panic!("refused with another error: {e}"),
        Ok(Ok(_)) => panic!("bad bytes were accepted"),
        Err(_) => panic!("bad bytes made the reader panic"),
    }
}

#[test]
fn round_trip_with_outlines_answers_the_shape_rules_as_the_original() {
    for (seed, n, sliced) in [(1, 60, false), (2, 45, true), (3, 1, false)] {
        let polygons = columns(seed, n, sliced);
        let index = SpatialIndex::new(&polygons);
        // and the same polygons ranked by a column (the order travels in the bytes)
        let rows: Vec<u32> = (0..index.matchable() as u32)
            .map(|k| index.row_of(k))
            .rev()
            .collect();
        let by_column = Order::Column {
            name: "v".into(),
            descending: true,
        };
        let prepared = index.with_order(by_column, rows).unwrap();
        for index in [index, prepared] {
            let bytes = index.to_bytes_with_polygons(Some(&polygons)).unwrap();
            let (back, outlines) = SpatialIndex::from_bytes_with_polygons(&bytes).unwrap();
            let outlines = outlines.expect("the bytes carry the outlines");
            assert_eq!(back, index);
            assert_eq!(outlines.len(), polygons.len());
            assert_eq!(outlines.nulls(), polygons.nulls());
            assert_eq!(outlines.geometry_array(), polygons.geometry_array());
            let want = shape_matches(&index, polygons.clone());
            assert!(
                n < 2 || want.iter().all(|b| b.num_rows() > 0),
                "seed {seed}"
            );
            assert_eq!(shape_matches(&back, outlines), want, "seed {seed}");
            // the plain reader takes version 4 too, and drops the outlines
            assert_eq!(SpatialIndex::from_bytes(&bytes).unwrap(), index);
        }
    }
}

#[test]
fn bytes_without_outlines_still_load() {
    let polygons = columns(4, 30, false);
    let index = SpatialIndex::new(&polygons);
    // version 3, as SpatialIndex::to_bytes writes it (and polymatch did before version 4)
    let v3 = index.to_bytes();
    assert_eq!(&v3[..8], b"PMINDEX3");
    let (back, outlines) = SpatialIndex::from_bytes_with_polygons(&v3).unwrap();
    assert_eq!(back, index);
    assert!(outlines.is_none());
    // version 4 with the section marked absent: 8 bytes more than version 3
    let v4 = index.to_bytes_with_polygons(None).unwrap();
    assert_eq!((&v4[..8], v4.len()), (&b"PMINDEX4"[..], v3.len() + 8));
    let (back, outlines) = SpatialIndex::from_bytes_with_polygons(&v4).unwrap();
    assert_eq!(back, index);
    assert!(outlines.is_none());
    // an empty index, with and without (empty) outlines
    let none = columns(5, 0, false);
    let empty = SpatialIndex::new(&none);
    for bytes in [
        empty.to_bytes_with_polygons(None).unwrap(),
        empty.to_bytes_with_polygons(Some(&none)).unwrap(),
    ] {
        let (back, outlines) = SpatialIndex::from_bytes_with_polygons(&bytes).unwrap();
        assert_eq!(back, empty);
        assert_eq!(outlines.map(|p| p.len()).unwrap_or(0), 0);
    }
}

#[test]
fn polygons_that_are_not_the_indexed_ones_are_not_written() {
    let index = SpatialIndex::new(&columns(6, 30, false));
    for other in [columns(6, 29, false), columns(7, 30, false)] {
        match index.to_bytes_with_polygons(Some(&other)) {
            // a different row count is refused when writing; the same count with other
            // polygons when reading (the stored centers and areas disagree)
            Err(PolymatchError::InvalidArgument(why)) => assert!(why.contains("indexed"), "{why}"),
            Ok(bytes) => assert!(refused(&bytes).contains("outlines"), "{}", refused(&bytes)),
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn truncated_and_flipped_bytes_are_refused() {
    let polygons = columns(8, 20, false);
    let index = SpatialIndex::new(&polygons);
    let bytes = index.to_bytes_with_polygons(Some(&polygons)).unwrap();
    for cut in 0..bytes.len() {
        refused(&bytes[..cut]);
    }
    let mut rng = Rng::new(9);
    for at in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[at] ^= 1 << (rng.uniform() * 8.0) as u32;
        refused(&flipped);
    }
    let mut longer = bytes.clone();
    longer.insert(bytes.len() - 8, 0);
    assert!(refused(&longer).contains("checksum"));
}

/// Bytes whose checksum is recomputed after the edit, so that each forged field is
/// refused by its own check: sizes, markers, offsets, coordinates, the validity bitmap.
#[test]
fn forged_outlines_are_refused_with_a_reason() {
    // Two triangles and a null row: no name (area order), so the section starts right
    // after the index body.
    let rows: Vec<Option<Multi>> = vec![
        Some(vec![vec![vec![(0.0, 0.0), (4.0, 0.0), (0.0, 4.0)]]]),
        None,
        Some(vec![vec![vec![(10.0, 0.0), (16.0, 0.0), (10.0, 6.0)]]]),
    ];
    let polygons = from_array(&multipolygon_array(&rows, Coords::Separated, true));
    let index = SpatialIndex::new(&polygons);
    let clean = index.to_bytes_with_polygons(Some(&polygons)).unwrap();
    // magic 8, rows, n, tag, name length 8 each, 2 ranks x 32 bytes: the section at 104
    let section = 8 + 32 + 2 * 32;
    let at = |field: usize| section + 8 * field;
    let u64_at = |bytes: &[u8], i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
    assert_eq!(u64_at(&clean, at(0)), 1, "marker");
    assert_eq!(u64_at(&clean, at(1)), 3, "rows");
    assert_eq!(u64_at(&clean, at(5)), 1, "has validity");
    // geom offsets (4) at field 6, part offsets (3) at 10, ring offsets (3) at 13, then
    // x (6) at 16, y (6) at 22, validity at 28
    let cases: Vec<(usize, u64, &str)> = vec![
        (at(0), 3, "unknown outlines marker"),
        (at(0), 2, "spherical edges"), // great-circle edges on a planar index
        (at(5), 7, "unknown validity marker"),
        (at(1), u64::MAX, "overflow"),
        (at(2), 1 << 40, "truncated"),
        (at(4), 1 << 40, "truncated"),
        (at(1), 2, "trailing"),
        (at(7), 5, "outlines are invalid"), // geom offsets beyond the parts
        (at(8), 0, "outlines are invalid"), // decreasing offsets
        (at(14), 9, "outlines are invalid"), // ring offsets beyond the coordinates
        (at(16), 1f64.to_bits(), "center and area"), // a moved vertex
        (at(17), f64::NAN.to_bits(), "outlines are invalid"), // a NaN vertex
        (at(28), 0b001, "matchable polygons"), // a matchable row made null
    ];
    for (offset, value, reason) in cases {
        let mut bytes = clean.clone();
        if offset == at(28) {
            bytes[offset] = value as u8;
        } else {
            bytes[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
        }
        let why = refused(&resealed(bytes));
        assert!(why.contains(reason), "{reason}: {why}");
    }
    // and the untouched bytes load, with the null row null
    let (_, back) = SpatialIndex::from_bytes_with_polygons(&clean).unwrap();
    assert_eq!(back.unwrap().nulls().map(|n| n.null_count()), Some(1));
}
