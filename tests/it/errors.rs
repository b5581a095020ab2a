//! Every error variant of the public API, each with what it names (row, column), forged
//! index bytes (refused with the reason, never a panic), and cancellation.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Int32Array, StringArray, StructArray};
use arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, Fields};
use polymatch::io::arrow_ingest::polygons_from_array;
use polymatch::io::{points_from_batch, polygons_from_batch, PointSpec};
use polymatch::matching::with_threads;
use polymatch::{
    match_points, How, MatchOptions, PointSlices, PolygonColumns, PolymatchError, SpatialIndex,
};

use crate::common::arrays::{
    batch_of, binary_array, coord_array, field_for, list_array, multipolygon_array, polygon_array,
    ring_polygons, ring_polygons_result, sample_multipolygons, sample_polygons, sample_wkb, Coords,
};
use crate::common::oracle::MODES;
use crate::common::wkb::Wkb;

#[test]
fn error_missing_column() {
    let wkb = binary_array(&sample_wkb(), false);
    let batch = batch_of(vec![(field_for("geometry", &wkb, None), wkb.clone())]);
    let err = polygons_from_batch(&batch, Some("nope")).unwrap_err();
    assert!(
        matches!(&err, PolymatchError::MissingColumn { name, .. } if name == "nope"),
        "{err}"
    );
    assert!(
        err.to_string().contains("geometry"),
        "the message lists the columns: {err}"
    );
    let x: ArrayRef = Arc::new(Float64Array::from(vec![1.0]));
    let batch = batch_of(vec![(field_for("x", &x, None), x.clone())]);
    let err = points_from_batch(
        &batch,
        PointSpec {
            x: Some("x"),
            y: Some("lat"),
            geometry: None,
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, PolymatchError::MissingColumn { name, .. } if name == "lat"),
        "{err}"
    );
    let err = points_from_batch(
        &batch,
        PointSpec {
            geometry: Some("pt"),
            ..PointSpec::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, PolymatchError::MissingColumn { name, .. } if name == "pt"),
        "{err}"
    );
}

#[test]
fn error_column_type() {
    let text: ArrayRef = Arc::new(StringArray::from(vec!["POLYGON EMPTY"]));
    let batch = batch_of(vec![(field_for("geometry", &text, None), text.clone())]);
    let err = polygons_from_batch(&batch, None).unwrap_err();
    assert!(
        matches!(&err, PolymatchError::ColumnType { column, .. } if column == "geometry"),
        "{err}"
    );
    // A list of numbers is not a polygon list.
    let numbers = list_array(
        Arc::new(Float64Array::from(vec![1.0, 2.0])),
        vec![0, 2],
        None,
        false,
    );
    let err = polygons_from_array(&field_for("g", &numbers, None), &numbers).unwrap_err();
    assert!(
        matches!(&err, PolymatchError::ColumnType { column, .. } if column == "g"),
        "{err}"
    );
    // Four levels of lists is not a multipolygon.
    let deep = multipolygon_array(&sample_multipolygons(), Coords::Separated, false);
    let deeper = list_array(deep, vec![0, 4], None, false);
    assert!(matches!(
        polygons_from_array(&field_for("g", &deeper, None), &deeper),
        Err(PolymatchError::ColumnType { .. })
    ));
    // A polygon layout tagged as multipolygon.
    let polys = polygon_array(&sample_polygons(), Coords::Separated, false);
    let field = field_for("g", &polys, Some("geoarrow.multipolygon"));
    assert!(matches!(
        polygons_from_array(&field, &polys),
        Err(PolymatchError::ColumnType { .. })
    ));
    // Article x/y columns that are not lists; string coordinates.
    let x: ArrayRef = Arc::new(Float64Array::from(vec![1.0]));
    let batch = batch_of(vec![
        (field_for("x", &x, None), x.clone()),
        (field_for("y", &x, None), x.clone()),
    ]);
    assert!(matches!(
        polygons_from_batch(&batch, None),
        Err(PolymatchError::ColumnType { .. })
    ));
    let s: ArrayRef = Arc::new(StringArray::from(vec!["1"]));
    let batch = batch_of(vec![
        (field_for("x", &s, None), s.clone()),
        (field_for("y", &x, None), x.clone()),
    ]);
    let err = points_from_batch(&batch, PointSpec::default()).unwrap_err();
    assert!(
        matches!(&err, PolymatchError::ColumnType { column, .. } if column == "x"),
        "{err}"
    );
    let batch = batch_of(vec![(field_for("pt", &x, None), x.clone())]);
    let err = points_from_batch(
        &batch,
        PointSpec {
            geometry: Some("pt"),
            ..PointSpec::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, PolymatchError::ColumnType { column, .. } if column == "pt"),
        "{err}"
    );
}

#[test]
fn error_no_geometry() {
    let ids: ArrayRef = Arc::new(Int32Array::from(vec![1, 2]));
    let batch = batch_of(vec![(field_for("id", &ids, None), ids.clone())]);
    let err = polygons_from_batch(&batch, None).unwrap_err();
    assert!(
        matches!(&err, PolymatchError::NoGeometry(msg) if msg.contains("id")),
        "{err}"
    );
    let err = points_from_batch(&batch, PointSpec::default()).unwrap_err();
    assert!(matches!(err, PolymatchError::NoGeometry(_)), "{err}");
}

#[test]
fn error_unsupported_geometry() {
    // A GeoArrow column tagged as a non-polygon type.
    let pts = coord_array(&[(0.0, 0.0)], Coords::Separated);
    let batch = batch_of(vec![(
        field_for("geometry", &pts, Some("geoarrow.point")),
        pts.clone(),
    )]);
    let err = polygons_from_batch(&batch, None).unwrap_err();
    assert!(
        matches!(&err, PolymatchError::UnsupportedGeometry { column, .. } if column == "geometry"),
        "{err}"
    );
    let lines = list_array(
        coord_array(&[(0.0, 0.0), (1.0, 1.0)], Coords::Separated),
        vec![0, 2],
        None,
        false,
    );
    let field = field_for("route", &lines, Some("geoarrow.linestring"));
    assert!(matches!(
        polygons_from_array(&field, &lines),
        Err(PolymatchError::UnsupportedGeometry { .. })
    ));
    // A WKB LineString among polygons; a WKB Polygon among points.
    let wkb = binary_array(
        &[
            Some(Wkb::LE.polygon(&[vec![(0.0, 0.0)]])),
            Some(Wkb::LE.linestring(&[(0.0, 0.0), (1.0, 1.0)])),
        ],
        false,
    );
    let err = from_array_err(&wkb);
    assert!(
        matches!(&err, PolymatchError::UnsupportedGeometry { column, found, .. }
            if column.contains("geometry") && found.starts_with("LineString")),
        "{err}"
    );
    assert!(
        err.to_string().contains("row 1"),
        "the message names the row: {err}"
    );
    let batch = batch_of(vec![(field_for("geometry", &wkb, None), wkb.clone())]);
    let err = points_from_batch(&batch, PointSpec::default()).unwrap_err();
    assert!(
        matches!(&err, PolymatchError::UnsupportedGeometry { found, .. } if found.starts_with("Polygon")),
        "{err}"
    );
}

fn from_array_err(array: &ArrayRef) -> PolymatchError {
    polygons_from_array(&field_for("geometry", array, None), array).unwrap_err()
}

fn invalid_row(err: &PolymatchError) -> Option<usize> {
    match err {
        PolymatchError::InvalidGeometry { row, .. } => Some(*row),
        _ => None,
    }
}

#[test]
fn error_invalid_geometry_names_the_row() {
    // Truncated WKB at row 2 (row 1 is null), also in a slice where it is row 1.
    let mut bad = Wkb::LE.polygon(&[vec![(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]]);
    bad.truncate(bad.len() - 3);
    let good = Wkb::LE.polygon(&[vec![(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]]);
    for large in [false, true] {
        let wkb = binary_array(
            &[
                Some(good.clone()),
                None,
                Some(bad.clone()),
                Some(good.clone()),
            ],
            large,
        );
        assert_eq!(
            invalid_row(&from_array_err(&wkb)),
            Some(2),
            "{}",
            from_array_err(&wkb)
        );
        assert_eq!(invalid_row(&from_array_err(&wkb.slice(1, 3))), Some(1));
    }
    // Trailing bytes; a MultiPolygon holding a Point.
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        invalid_row(&from_array_err(&binary_array(&[Some(trailing)], false))),
        Some(0)
    );
    let mut holds_point = vec![1];
    holds_point.extend(6u32.to_le_bytes());
    holds_point.extend(1u32.to_le_bytes());
    holds_point.extend(Wkb::LE.point(0.0, 0.0));
    let wkb = binary_array(&[Some(good.clone()), Some(holds_point)], false);
    assert_eq!(invalid_row(&from_array_err(&wkb)), Some(1));
    // A NaN or infinite coordinate, in GeoArrow, at row 1, and at row 0 of a slice.
    for bad_value in [f64::NAN, f64::INFINITY] {
        let mut rows = sample_polygons();
        rows[1].as_mut().unwrap()[1][2].0 = bad_value;
        for layout in [Coords::Separated, Coords::Interleaved] {
            let polys = polygon_array(&rows, layout, false);
            assert_eq!(invalid_row(&from_array_err(&polys)), Some(1));
            assert_eq!(invalid_row(&from_array_err(&polys.slice(1, 3))), Some(0));
        }
    }
    // An empty ring at row 3 (a ring needs at least 1 vertex).
    let mut rows = sample_polygons();
    rows[3].as_mut().unwrap().push(vec![]);
    assert_eq!(
        invalid_row(&from_array_err(&polygon_array(
            &rows,
            Coords::Separated,
            true
        ))),
        Some(3)
    );
    // Article x/y lists of different lengths at row 1.
    let x = list_array(
        Arc::new(Float64Array::from(vec![0.0, 1.0, 2.0, 3.0, 4.0])),
        vec![0, 1, 3],
        None,
        false,
    );
    let y = list_array(
        Arc::new(Float64Array::from(vec![0.0, 1.0, 2.0, 3.0, 4.0])),
        vec![0, 1, 4],
        None,
        false,
    );
    let batch = batch_of(vec![
        (field_for("x", &x, None), x.clone()),
        (field_for("y", &y, None), y.clone()),
    ]);
    assert_eq!(
        invalid_row(&polygons_from_batch(&batch, None).unwrap_err()),
        Some(1)
    );
    // Coordinates so large that the area overflows float64.
    let huge = ring_polygons_result(&[
        vec![(0.0, 0.0)],
        vec![(0.0, 0.0), (1e300, 0.0), (0.0, 1e300)],
    ]);
    assert_eq!(invalid_row(&huge.unwrap_err()), Some(1));
}

#[test]
fn error_invalid_layout() {
    // Null coordinates inside a polygon.
    let fields = Fields::from(vec![
        Field::new("x", DataType::Float64, true),
        Field::new("y", DataType::Float64, true),
    ]);
    let coords: ArrayRef = Arc::new(StructArray::new(
        fields,
        vec![
            Arc::new(Float64Array::from(vec![0.0, 1.0, 0.0])) as ArrayRef,
            Arc::new(Float64Array::from(vec![0.0, 0.0, 1.0])),
        ],
        Some(NullBuffer::from(vec![true, false, true])),
    ));
    let polys = list_array(
        list_array(coords, vec![0, 3], None, false),
        vec![0, 1],
        None,
        false,
    );
    // A null vertex inside a polygon names the row.
    assert_eq!(invalid_row(&from_array_err(&polys)), Some(0));
    // Raw columns that do not fit together.
    let off = |v: Vec<i64>| OffsetBuffer::new(ScalarBuffer::from(v));
    let xy = |n: usize| ScalarBuffer::from(vec![0.0; n]);
    let cases = [
        PolygonColumns::from_rings(xy(3), xy(2), off(vec![0, 2]), None),
        PolygonColumns::from_rings(xy(3), xy(3), off(vec![0, 4]), None),
        PolygonColumns::from_rings(
            xy(3),
            xy(3),
            off(vec![0, 3]),
            Some(NullBuffer::from(vec![true, true])),
        ),
        PolygonColumns::from_polygons(xy(3), xy(3), off(vec![0, 2]), off(vec![0, 3]), None),
        PolygonColumns::try_new(
            xy(3),
            xy(3),
            off(vec![0, 2]),
            off(vec![0, 1]),
            off(vec![0, 3]),
            None,
        ),
    ];
    for (k, result) in cases.into_iter().enumerate() {
        assert!(
            matches!(result, Err(PolymatchError::InvalidLayout(_))),
            "case {k}"
        );
    }
    assert!(matches!(
        polymatch::polygons::checked_offsets(vec![0, 3, 2], "ring"),
        Err(PolymatchError::InvalidLayout(_))
    ));
    assert!(matches!(
        polymatch::polygons::checked_offsets(vec![], "ring"),
        Err(PolymatchError::InvalidLayout(_))
    ));
    // Points whose columns differ in length.
    assert!(matches!(
        PointSlices::new(&[0.0, 1.0], &[0.0], None),
        Err(PolymatchError::InvalidLayout(_))
    ));
    let nulls = NullBuffer::from(vec![true]);
    assert!(matches!(
        PointSlices::new(&[0.0, 1.0], &[0.0, 1.0], Some(&nulls)),
        Err(PolymatchError::InvalidLayout(_))
    ));
}

#[test]
fn error_invalid_argument() {
    let index = SpatialIndex::new(&ring_polygons(&[vec![(0.0, 0.0)]]));
    let points = PointSlices::new(&[0.0], &[0.0], None).unwrap();
    for max_dist in [0.0, -0.0, -1.0, f64::NAN, f64::NEG_INFINITY] {
        for (how, all_candidates) in MODES {
            let options = MatchOptions {
                max_dist,
                how,
                all_candidates,
                ..MatchOptions::default()
            };
            let err = match_points(&index, points, &options, 0, None).unwrap_err();
            assert!(
                matches!(err, PolymatchError::InvalidArgument(_)),
                "max_dist {max_dist}: {err}"
            );
        }
    }
    let options = MatchOptions {
        chunk_size: 0,
        ..MatchOptions::default()
    };
    assert!(matches!(
        match_points(&index, points, &options, 0, None),
        Err(PolymatchError::InvalidArgument(_))
    ));
    assert!(matches!(
        with_threads(Some(0), || ()),
        Err(PolymatchError::InvalidArgument(_))
    ));
    assert!(matches!(
        "outer".parse::<How>(),
        Err(PolymatchError::InvalidArgument(_))
    ));
    assert_eq!("left".parse::<How>().unwrap(), How::Left);
    assert_eq!("inner".parse::<How>().unwrap(), How::Inner);
    // The smallest positive max_dist is valid: only a point on a center can match.
    let options = MatchOptions {
        max_dist: f64::from_bits(1),
        ..MatchOptions::default()
    };
    assert_eq!(
        match_points(&index, points, &options, 0, None)
            .unwrap()
            .num_rows(),
        1
    );
}

/// FNV-1a over 8-byte little-endian words, then the remaining bytes: the checksum
/// `SpatialIndex::to_bytes` appends (rewritten here to forge a consistent file).
fn index_checksum(bytes: &[u8]) -> u64 {
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

/// STYLE.md: no panic may reach Python (`PolygonIndex.from_bytes`, pickling) from any
/// input. Index bytes carry no tree since format 2, so what can be forged is the ranked
/// data: a NaN center (checksum recomputed) must be refused, not rebuilt into a tree whose
/// first query panics in `f64::clamp` ("min > max, or either was NaN").
#[test]
fn forged_index_bytes_are_refused_not_panicking() {
    let index = SpatialIndex::from_centers(&[0.0], &[0.0], &[1.0], |_| true);
    let clean = index.to_bytes();
    // header: magic 8, rows 8, n 8, order tag 8, rank column name length 8 (an area
    // order has no name); then rank_row 4, area 8, x 8, y 8; checksum 8.
    for (at, value) in [(44usize, f64::NAN), (52, f64::NAN), (60, f64::INFINITY)] {
        let mut bytes = clean.clone();
        bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
        let body = bytes.len() - 8;
        let sum = index_checksum(&bytes[..body]);
        bytes[body..].copy_from_slice(&sum.to_le_bytes());
        let outcome = std::panic::catch_unwind(|| SpatialIndex::from_bytes(&bytes));
        match outcome {
            Ok(Err(PolymatchError::InvalidIndexBytes(why))) => {
                assert!(why.contains("non-finite"), "{why}")
            }
            Ok(other) => panic!("byte {at}: a forged index was not refused: {other:?}"),
            Err(_) => panic!("byte {at}: a forged index panicked instead of being refused"),
        }
    }
    // a row out of range, and two ranks out of order
    let two = SpatialIndex::from_centers(&[0.0, 1.0], &[0.0, 1.0], &[1.0, 2.0], |_| true);
    let row_out_of_range = |b: &mut Vec<u8>| b[40] = 9;
    let areas_swapped = |b: &mut Vec<u8>| {
        let (lo, hi) = b.split_at_mut(56);
        lo[48..56].swap_with_slice(&mut hi[..8]);
    };
    type Edit<'a> = &'a dyn Fn(&mut Vec<u8>);
    let edits: [Edit<'_>; 2] = [&row_out_of_range, &areas_swapped];
    let reasons = ["row out of range", "ranks out of (area, row) order"];
    for (edit, reason) in edits.into_iter().zip(reasons) {
        let mut bytes = two.to_bytes();
        edit(&mut bytes);
        let body = bytes.len() - 8;
        let sum = index_checksum(&bytes[..body]);
        bytes[body..].copy_from_slice(&sum.to_le_bytes());
        // refused for the forged field, not for a checksum or size the forgery broke
        match SpatialIndex::from_bytes(&bytes) {
            Err(PolymatchError::InvalidIndexBytes(why)) => {
                assert!(why.contains(reason), "{reason}: {why}")
            }
            other => panic!("{reason}: a forged index was not refused: {other:?}"),
        }
    }
}

#[test]
fn error_invalid_index_bytes_and_cancelled() {
    let index = SpatialIndex::from_centers(&[0.0, 1.0], &[0.0, 1.0], &[2.0, 1.0], |_| true);
    let bytes = index.to_bytes();
    let mut flipped = bytes.clone();
    flipped[40] ^= 0x10;
    let cases: [(&[u8], &str); 4] = [
        (b"nonsense", "wrong header"),
        (&bytes[..bytes.len() - 1], "checksum"),
        (&flipped, "checksum"),
        (&[], "wrong header"),
    ];
    for (bad, reason) in cases {
        match SpatialIndex::from_bytes(bad) {
            Err(PolymatchError::InvalidIndexBytes(why)) => {
                assert!(why.contains(reason), "{reason}: {why}")
            }
            other => panic!("{reason}: not refused: {other:?}"),
        }
    }
    // A cancel flag already set stops the kernel, in every mode.
    let flag = std::sync::atomic::AtomicBool::new(true);
    let xs = vec![0.5; 20_000];
    let points = PointSlices::new(&xs, &xs, None).unwrap();
    for (how, all_candidates) in MODES {
        let options = MatchOptions {
            max_dist: 1.0,
            how,
            all_candidates,
            chunk_size: 1000,
            ..MatchOptions::default()
        };
        assert!(matches!(
            match_points(&index, points, &options, 0, Some(&flag)),
            Err(PolymatchError::Cancelled)
        ));
    }
}
