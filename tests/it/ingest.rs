//! GeoArrow, WKB and x/y ingest from hand-built Arrow arrays: every layout, slices,
//! column detection, points in every encoding, and a match end to end.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int32Array, RecordBatch, StringArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::Float64Type;
use polymatch::io::{points_from_batch, polygons_from_batch, PointSpec};
use polymatch::{match_points, How, MatchOptions, PointSlices, SpatialIndex};

use crate::common::arrays::{
    assert_derived, batch_of, binary_array, coord_array, field_for, from_array, list_array,
    multipolygon_array, polygon_array, sample_multipolygons, sample_polygons, sample_wkb, Coords,
    POLYGON_WANT, SAMPLE_WANT,
};
use crate::common::exact::assert_exact;
use crate::common::oracle::polygon_rows;
use crate::common::wkb::Wkb;
use crate::common::Multi;

#[test]
fn geoarrow_polygon_and_multipolygon_every_layout() {
    for layout in [
        Coords::Separated,
        Coords::Interleaved,
        Coords::InterleavedXyz,
    ] {
        for large in [false, true] {
            let polys = polygon_array(&sample_polygons(), layout, large);
            assert_derived(&from_array(&polys), &POLYGON_WANT);
            let multi = multipolygon_array(&sample_multipolygons(), layout, large);
            assert_derived(&from_array(&multi), &SAMPLE_WANT);
            // Sliced: rows 1..3 of the original.
            assert_derived(&from_array(&polys.slice(1, 2)), &POLYGON_WANT[1..3]);
            assert_derived(&from_array(&multi.slice(1, 2)), &SAMPLE_WANT[1..3]);
            assert_derived(&from_array(&multi.slice(2, 2)), &SAMPLE_WANT[2..4]);
            assert_derived(&from_array(&multi.slice(4, 0)), &[]);
        }
    }
}

#[test]
fn geoarrow_ingest_agrees_with_exact_oracle() {
    let rows: Vec<Option<Multi>> = (0..20)
        .map(|i| {
            let t = 1e6 + f64::from(i) * 0.37;
            let ring = vec![(t, 0.1), (t + 0.3, 0.2), (t + 0.25, 0.7), (t - 0.01, 0.4)];
            Some(vec![vec![ring]])
        })
        .collect();
    let multi = multipolygon_array(&rows, Coords::Interleaved, true);
    let p = from_array(&multi);
    for (row, polygon) in rows.iter().enumerate() {
        assert_exact(&p, row, polygon.as_ref().unwrap());
    }
}

#[test]
fn sliced_coordinate_children() {
    // A polygon list over a coordinate array that is itself a slice (offset 3).
    let pts = [
        (9.0, 9.0),
        (9.0, 9.0),
        (9.0, 9.0),
        (0.0, 0.0),
        (2.0, 0.0),
        (2.0, 2.0),
        (0.0, 2.0),
    ];
    for layout in [Coords::Separated, Coords::Interleaved] {
        let coords = coord_array(&pts, layout).slice(3, 4);
        let rings = list_array(coords, vec![0, 4], None, false);
        let polys = list_array(rings, vec![0, 1], None, false);
        assert_derived(&from_array(&polys), &[Some((1.0, 1.0, 4.0))]);
    }
}

#[test]
fn wkb_binary_and_large_binary() {
    for large in [false, true] {
        let array = binary_array(&sample_wkb(), large);
        assert_derived(&from_array(&array), &SAMPLE_WANT);
        assert_derived(&from_array(&array.slice(1, 2)), &SAMPLE_WANT[1..3]);
        assert_derived(&from_array(&array.slice(3, 1)), &SAMPLE_WANT[3..]);
    }
    // MULTIPOLYGON EMPTY and POLYGON EMPTY are rows that never match.
    let empty = binary_array(
        &[Some(Wkb::LE.multipolygon(&[])), Some(Wkb::LE.polygon(&[]))],
        false,
    );
    assert_derived(&from_array(&empty), &[None, None]);
}

// --- Whole batches: detection, then a match ---------------------------------------------

#[test]
fn polygons_from_batch_detects_the_geometry_column() {
    let ids: ArrayRef = Arc::new(Int32Array::from(vec![10, 11, 12, 13]));
    let wkb = binary_array(&sample_wkb(), false);
    let native = multipolygon_array(&sample_multipolygons(), Coords::Separated, false);
    // By conventional name.
    for name in ["geometry", "geom", "wkb", "wkb_geometry"] {
        let batch = batch_of(vec![
            (field_for("id", &ids, None), ids.clone()),
            (field_for(name, &wkb, None), wkb.clone()),
        ]);
        assert_derived(&polygons_from_batch(&batch, None).unwrap(), &SAMPLE_WANT);
    }
    // By GeoArrow extension metadata, under any name, before a conventional name.
    let decoy: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c", "d"]));
    for (array, ext) in [(&wkb, "geoarrow.wkb"), (&native, "geoarrow.multipolygon")] {
        let batch = batch_of(vec![
            (field_for("geometry", &decoy, None), decoy.clone()),
            (field_for("shape", array, Some(ext)), array.clone()),
        ]);
        assert_derived(&polygons_from_batch(&batch, None).unwrap(), &SAMPLE_WANT);
    }
    // By the caller's name.
    let batch = batch_of(vec![
        (field_for("geometry", &decoy, None), decoy.clone()),
        (field_for("footprint", &native, None), native.clone()),
    ]);
    assert_derived(
        &polygons_from_batch(&batch, Some("footprint")).unwrap(),
        &SAMPLE_WANT,
    );
    // The article's representation: list columns x and y, one open ring per row, with
    // x and y sliced differently.
    let xs = Float64Array::from(vec![99.0, 0.0, 2.0, 2.0, 0.0, 5.0, 6.0, 5.0]);
    let ys = Float64Array::from(vec![0.0, 0.0, 2.0, 2.0, 5.0, 5.0, 6.0]);
    let x = list_array(
        Arc::new(xs),
        vec![1, 5, 5, 8],
        Some(NullBuffer::from(vec![true, false, true])),
        false,
    );
    let y = list_array(
        Arc::new(ys),
        vec![0, 4, 4, 7],
        Some(NullBuffer::from(vec![true, false, true])),
        true,
    );
    let batch = batch_of(vec![
        (field_for("x", &x, None), x.clone()),
        (field_for("y", &y, None), y.clone()),
    ]);
    let p = polygons_from_batch(&batch, None).unwrap();
    assert_derived(
        &p,
        &[
            Some((1.0, 1.0, 4.0)),
            None,
            Some((16.0 / 3.0, 16.0 / 3.0, 0.5)),
        ],
    );
    let sliced = batch.slice(1, 2);
    assert_derived(
        &polygons_from_batch(&sliced, None).unwrap(),
        &[None, Some((16.0 / 3.0, 16.0 / 3.0, 0.5))],
    );
}

/// The points must be (1, 4), (2, 5), (3, 6), with `null_row` null.
fn check_points(batch: &RecordBatch, spec: PointSpec<'_>, null_row: Option<usize>) {
    let p = points_from_batch(batch, spec).unwrap();
    assert_eq!(p.x.len(), 3);
    for i in 0..3 {
        let valid = !matches!(&p.nulls, Some(n) if n.is_null(i));
        assert_eq!(valid, Some(i) != null_row, "row {i}");
        if valid {
            assert_eq!((p.x[i], p.y[i]), (1.0 + i as f64, 4.0 + i as f64));
        }
    }
}

#[test]
fn points_from_batch_every_encoding() {
    let want_x = [1.0, 2.0, 3.0];
    let want_y = [4.0, 5.0, 6.0];
    let check = check_points;
    // x/y columns, one of them Int32 (cast) and nullable.
    let x: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.0), None, Some(3.0)]));
    let y: ArrayRef = Arc::new(Int32Array::from(vec![4, 5, 6]));
    let batch = batch_of(vec![
        (field_for("x", &x, None), x.clone()),
        (field_for("y", &y, None), y.clone()),
    ]);
    check(&batch, PointSpec::default(), Some(1));
    let renamed = batch_of(vec![
        (field_for("lon", &x, None), x.clone()),
        (field_for("lat", &y, None), y.clone()),
    ]);
    check(
        &renamed,
        PointSpec {
            x: Some("lon"),
            y: Some("lat"),
            geometry: None,
        },
        Some(1),
    );
    // A sliced batch keeps the caller's rows.
    let p = points_from_batch(&batch.slice(1, 2), PointSpec::default()).unwrap();
    assert_eq!((p.x.len(), p.x[1], p.y[1]), (2, 3.0, 6.0));
    // WKB points, named or detected.
    let wkb = binary_array(
        &[
            Some(Wkb::LE.point(1.0, 4.0)),
            Some(Wkb::LE.point(2.0, 5.0)),
            None,
        ],
        true,
    );
    let batch = batch_of(vec![(field_for("geometry", &wkb, None), wkb.clone())]);
    check(&batch, PointSpec::default(), Some(2));
    let batch = batch_of(vec![(field_for("pt", &wkb, None), wkb.clone())]);
    check(
        &batch,
        PointSpec {
            geometry: Some("pt"),
            ..PointSpec::default()
        },
        Some(2),
    );
    // GeoArrow points, separated and interleaved.
    let pts: Vec<(f64, f64)> = want_x.iter().zip(&want_y).map(|(&x, &y)| (x, y)).collect();
    for layout in [
        Coords::Separated,
        Coords::Interleaved,
        Coords::InterleavedXyz,
    ] {
        let array = coord_array(&pts, layout);
        let batch = batch_of(vec![(
            field_for("geometry", &array, Some("geoarrow.point")),
            array.clone(),
        )]);
        check(&batch, PointSpec::default(), None);
    }
}

#[test]
fn end_to_end_from_batches() {
    let wkb = binary_array(&sample_wkb(), false);
    let polygons = polygons_from_batch(
        &batch_of(vec![(field_for("geometry", &wkb, None), wkb.clone())]),
        None,
    )
    .unwrap();
    let index = SpatialIndex::new(&polygons);
    let x: ArrayRef = Arc::new(Float64Array::from(vec![2.0, 12.0, 21.0, 500.0]));
    let y: ArrayRef = Arc::new(Float64Array::from(vec![0.5, 12.0, 1.0, 500.0]));
    let batch = batch_of(vec![
        (field_for("x", &x, None), x.clone()),
        (field_for("y", &y, None), y.clone()),
    ]);
    let pts = points_from_batch(&batch, PointSpec::default()).unwrap();
    let points = PointSlices::new(&pts.x, &pts.y, pts.nulls.as_ref()).unwrap();
    let options = MatchOptions {
        max_dist: 1.0,
        how: How::Left,
        ..MatchOptions::default()
    };
    let out = match_points(&index, points, &options, 0, None).unwrap();
    assert_eq!(polygon_rows(&out), [Some(0), Some(1), Some(3), None]);
    let areas: Vec<Option<f64>> = out.column(3).as_primitive::<Float64Type>().iter().collect();
    assert_eq!(areas, [Some(2.0), Some(15.0), Some(4.5), None]);
    let distances: Vec<Option<f64>> = out.column(2).as_primitive::<Float64Type>().iter().collect();
    assert_eq!(distances, [Some(0.0), Some(0.0), Some(0.0), None]);
}
