//! Adversarial inputs through the Rust API and the CLI entry point (`run_from_args`):
//! each case has one documented outcome (docs/hardening.md), a correct answer or a
//! specific error. The Python side (tests/python/test_adversarial.py) runs the same
//! list through the Python API, the CLI as a subprocess, compat and Dask.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    make_array, Array, ArrayData, ArrayRef, Decimal128Array, Float32Array, Float64Array,
    Int32Array, LargeListArray, ListArray, RecordBatch, StructArray,
};
use arrow::buffer::{Buffer, NullBuffer};
use arrow::datatypes::{DataType, Field, Fields};
use polymatch::io::arrow_ingest::polygons_from_batch;
use polymatch::io::parquet::read_polygons;
use polymatch::io::{points_from_batch, PointSpec};
use polymatch::{match_points, How, MatchOptions, PointSlices, PolymatchError, SpatialIndex};

use crate::common::arrays::{
    binary_array, list_array, named_batch, offsets_of, xy_points as points,
};
use crate::common::oracle::polygon_rows;
use crate::common::wkb::Wkb;
use crate::common::{root, write_parquet, Ring};

const INF: f64 = f64::INFINITY;

fn square(x0: f64, y0: f64, side: f64) -> Ring {
    vec![
        (x0, y0),
        (x0 + side, y0),
        (x0 + side, y0 + side),
        (x0, y0 + side),
    ]
}

fn unit() -> Ring {
    square(0.0, 0.0, 1.0)
}

fn far() -> Ring {
    square(5.0, 5.0, 1.0)
}

/// The article's layout: x and y list columns, one ring per row.
fn xy_batch(rings: &[Ring]) -> RecordBatch {
    let offsets = offsets_of(rings.iter().map(Vec::len));
    let column = |pick: fn(&(f64, f64)) -> f64| {
        let values: Vec<f64> = rings.iter().flatten().map(pick).collect();
        list_array(
            Arc::new(Float64Array::from(values)),
            offsets.clone(),
            None,
            false,
        )
    };
    named_batch(vec![("x", column(|p| p.0)), ("y", column(|p| p.1))])
}

/// GeoArrow polygons (struct coordinates), one ring each, with validity at each level:
/// `rows` (polygon), `rings`, `vertices` and the x values.
struct Nulls {
    rows: Option<Vec<bool>>,
    rings: Option<Vec<bool>>,
    vertices: Option<Vec<bool>>,
    x_values: Option<Vec<bool>>,
}

fn geoarrow_batch(rings: &[Ring], nulls: Nulls) -> RecordBatch {
    let x: Vec<f64> = rings.iter().flatten().map(|p| p.0).collect();
    let y: Vec<f64> = rings.iter().flatten().map(|p| p.1).collect();
    let xs = Float64Array::new(x.into(), nulls.x_values.map(NullBuffer::from));
    let fields = Fields::from(vec![
        Field::new("x", DataType::Float64, true),
        Field::new("y", DataType::Float64, true),
    ]);
    let coords: ArrayRef = Arc::new(StructArray::new(
        fields,
        vec![Arc::new(xs), Arc::new(Float64Array::from(y))],
        nulls.vertices.map(NullBuffer::from),
    ));
    let ring_list = list_array(
        coords,
        offsets_of(rings.iter().map(Vec::len)),
        nulls.rings.map(NullBuffer::from),
        false,
    );
    let polygons = list_array(
        ring_list,
        offsets_of(rings.iter().map(|_| 1)),
        nulls.rows.map(NullBuffer::from),
        false,
    );
    named_batch(vec![("geometry", polygons)])
}

fn no_nulls() -> Nulls {
    Nulls {
        rows: None,
        rings: None,
        vertices: None,
        x_values: None,
    }
}

/// A WKB Polygon of `ring`, closed (its first vertex repeated last).
fn wkb_closed(ring: &Ring, big_endian: bool) -> Vec<u8> {
    let mut closed = ring.clone();
    closed.push(ring[0]);
    let wkb = if big_endian { Wkb::BE } else { Wkb::LE };
    wkb.polygon(&[closed])
}

fn wkb_batch(values: Vec<Option<Vec<u8>>>) -> RecordBatch {
    named_batch(vec![("geometry", binary_array(&values, false))])
}

fn standard_points() -> RecordBatch {
    points(&[(0.5, 0.5), (5.5, 5.5), (100.0, 100.0)])
}

/// `how = left` polygon rows per point, or the error.
fn run(
    polygons: &RecordBatch,
    pts: &RecordBatch,
    max_dist: f64,
) -> polymatch::Result<Vec<Option<u32>>> {
    let p = polygons_from_batch(polygons, None)?;
    let index = SpatialIndex::new(&p);
    let cols = points_from_batch(pts, PointSpec::default())?;
    let options = MatchOptions {
        max_dist,
        how: How::Left,
        ..MatchOptions::default()
    };
    let slices = PointSlices::new(&cols.x, &cols.y, cols.nulls.as_ref())?;
    let result = match_points(&index, slices, &options, 0, None)?;
    Ok(polygon_rows(&result))
}

fn row_of(e: &PolymatchError) -> Option<usize> {
    match e.root() {
        PolymatchError::InvalidGeometry { row, .. } => Some(*row),
        _ => None,
    }
}

/// id, polygons, points, max_dist, the answer.
type AnswerCase = (
    &'static str,
    RecordBatch,
    RecordBatch,
    f64,
    Vec<Option<u32>>,
);

#[test]
fn answers() {
    let std_pts = standard_points();
    let cases: Vec<AnswerCase> = vec![
        (
            "zero_polygons",
            xy_batch(&[]),
            std_pts.clone(),
            1.0,
            vec![None; 3],
        ),
        ("zero_points", xy_batch(&[unit()]), points(&[]), 1.0, vec![]),
        (
            "one_vertex_ring",
            xy_batch(&[vec![(0.5, 0.5)]]),
            std_pts.clone(),
            1.0,
            vec![Some(0), None, None],
        ),
        (
            "two_vertex_ring",
            xy_batch(&[vec![(0.0, 0.0), (1.0, 1.0)]]),
            std_pts.clone(),
            1.0,
            vec![Some(0), None, None],
        ),
        (
            "zero_area_beats_square",
            xy_batch(&[unit(), vec![(0.0, 0.0), (0.5, 0.5), (1.0, 1.0)]]),
            std_pts.clone(),
            1.0,
            vec![Some(1), None, None],
        ),
        (
            "duplicates_lowest_row",
            xy_batch(&[far(), unit(), unit(), far()]),
            std_pts.clone(),
            1.0,
            vec![Some(1), Some(0), None],
        ),
        (
            "negative_zero_ties",
            xy_batch(&[
                vec![(-0.0, -0.0), (1.0, -0.0), (1.0, 1.0), (-0.0, 1.0)],
                unit(),
                vec![(-0.0, -0.0)],
            ]),
            points(&[(0.5, 0.5), (0.0, 0.0), (3.0, 3.0)]),
            0.5,
            vec![Some(0), Some(2), None],
        ),
        (
            "subnormal_coordinates",
            xy_batch(&[square(0.0, 0.0, 5e-324), square(0.0, 0.0, 1e-300)]),
            points(&[(0.0, 0.0), (5.5, 5.5), (1e-300, 1e-300)]),
            1e-300,
            vec![Some(0), None, Some(0)],
        ),
        (
            "huge_coordinates_overflowing_squares",
            xy_batch(&[
                vec![(1e300, -1e300), (1e300, 1e300)],
                vec![(-1e300, 0.0), (-1e300, 1.0)],
            ]),
            points(&[(1e300, 0.0), (-1e300, 0.0), (1e300, -1e300)]),
            INF,
            vec![Some(0), Some(1), None],
        ),
        (
            "nan_inf_null_points",
            xy_batch(&[unit()]),
            points(&[(f64::NAN, 0.5), (INF, 0.5), (0.5, -INF)]),
            INF,
            vec![None; 3],
        ),
        (
            "null_polygon_row",
            wkb_batch(vec![None, Some(wkb_closed(&unit(), false))]),
            std_pts.clone(),
            1.0,
            vec![Some(1), None, None],
        ),
        (
            "wkb_big_endian",
            wkb_batch(vec![
                Some(wkb_closed(&far(), true)),
                Some(wkb_closed(&unit(), false)),
            ]),
            std_pts.clone(),
            1.0,
            vec![Some(1), Some(0), None],
        ),
        (
            "geoarrow_null_row",
            geoarrow_batch(
                &[unit(), far()],
                Nulls {
                    rows: Some(vec![false, true]),
                    ..no_nulls()
                },
            ),
            std_pts.clone(),
            1.0,
            vec![None, Some(1), None],
        ),
        (
            "sliced_geoarrow",
            geoarrow_batch(&[unit(), far(), unit()], no_nulls()).slice(1, 2),
            std_pts.clone(),
            1.0,
            vec![Some(1), Some(0), None],
        ),
        (
            "sliced_points",
            xy_batch(&[unit(), far()]),
            points(&[(0.5, 0.5), (5.5, 5.5), (0.5, 0.5)]).slice(1, 2),
            1.0,
            vec![Some(1), Some(0)],
        ),
    ];
    for (id, polygons, pts, max_dist, want) in cases {
        let got = run(&polygons, &pts, max_dist).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(got, want, "{id}");
    }
}

#[test]
fn max_dist_extremes_and_refusals() {
    let polygons = xy_batch(&[unit()]);
    let pts = points(&[(0.5, 0.5), (0.5, 0.5 + 1e-9), (1e150, 0.0), (0.5, 1e200)]);
    for (max_dist, want) in [
        (5e-324, vec![Some(0), None, None, None]),
        (1e-8, vec![Some(0), Some(0), None, None]),
        (1e300, vec![Some(0), Some(0), Some(0), None]),
        (f64::MAX, vec![Some(0), Some(0), Some(0), None]),
        (INF, vec![Some(0), Some(0), Some(0), None]),
    ] {
        assert_eq!(
            run(&polygons, &pts, max_dist).expect("valid"),
            want,
            "{max_dist}"
        );
    }
    for max_dist in [f64::NAN, -1.0, 0.0, -0.0, -INF] {
        let e = run(&polygons, &pts, max_dist).expect_err("refused");
        assert!(
            matches!(e, PolymatchError::InvalidArgument(_)),
            "{max_dist}: {e}"
        );
    }
}

/// Coordinates of other numeric types are cast to float64: the same answer.
#[test]
fn int32_float32_decimal_coordinates() {
    let offsets = offsets_of([4, 4]);
    let rings = [unit(), far()];
    let flat =
        |pick: fn(&(f64, f64)) -> f64| -> Vec<f64> { rings.iter().flatten().map(pick).collect() };
    let make = |values: Vec<f64>, ty: &str| -> ArrayRef {
        let array: ArrayRef = match ty {
            "int32" => Arc::new(Int32Array::from_iter_values(
                values.iter().map(|&v| v as i32),
            )),
            "float32" => Arc::new(Float32Array::from_iter_values(
                values.iter().map(|&v| v as f32),
            )),
            _ => Arc::new(
                Decimal128Array::from_iter_values(values.iter().map(|&v| (v * 1000.0) as i128))
                    .with_precision_and_scale(12, 3)
                    .expect("valid decimal type"),
            ),
        };
        list_array(array, offsets.clone(), None, false)
    };
    for ty in ["int32", "float32", "decimal128"] {
        let polygons = named_batch(vec![
            ("x", make(flat(|p| p.0), ty)),
            ("y", make(flat(|p| p.1), ty)),
        ]);
        let got = run(&polygons, &standard_points(), 1.0).expect(ty);
        assert_eq!(got, vec![Some(0), Some(1), None], "{ty}");
    }
}

#[test]
fn errors_name_the_row_or_column() {
    let nan_ring = vec![(0.0, f64::NAN), (1.0, 0.0), (1.0, 1.0)];
    let good = wkb_closed(&unit(), false);
    let mut bad_order = good.clone();
    bad_order[0] = 2;
    let mut huge_count = good[..5].to_vec();
    huge_count.extend(u32::MAX.to_le_bytes());
    let point_wkb = Wkb::LE.point(1.0, 2.0);
    let some = |v: &[bool]| Some(v.to_vec());
    let row_cases: Vec<(&str, RecordBatch, usize)> = vec![
        ("empty_ring", xy_batch(&[unit(), vec![]]), 1),
        ("nan_coordinate", xy_batch(&[unit(), nan_ring]), 1),
        (
            "area_overflows",
            xy_batch(&[square(-1e300, -1e300, 2e300)]),
            0,
        ),
        (
            "null_ring",
            geoarrow_batch(
                &[far(), unit()],
                Nulls {
                    rings: some(&[true, false]),
                    ..no_nulls()
                },
            ),
            1,
        ),
        (
            "null_vertex",
            geoarrow_batch(
                &[far(), unit()],
                Nulls {
                    vertices: some(
                        &[true; 4]
                            .iter()
                            .chain(&[true, true, false, true])
                            .copied()
                            .collect::<Vec<_>>(),
                    ),
                    ..no_nulls()
                },
            ),
            1,
        ),
        (
            "null_x_value",
            geoarrow_batch(
                &[unit(), far()],
                Nulls {
                    x_values: some(&[true, false, true, true, true, true, true, true]),
                    ..no_nulls()
                },
            ),
            0,
        ),
        (
            "wkb_truncated",
            wkb_batch(vec![
                Some(good.clone()),
                Some(good[..good.len() - 3].to_vec()),
            ]),
            1,
        ),
        ("wkb_empty_bytes", wkb_batch(vec![Some(vec![])]), 0),
        (
            "wkb_bad_byte_order_flag",
            wkb_batch(vec![Some(bad_order)]),
            0,
        ),
        ("wkb_huge_ring_count", wkb_batch(vec![Some(huge_count)]), 0),
        (
            "wkb_trailing_bytes",
            wkb_batch(vec![Some([good.clone(), vec![0, 0]].concat())]),
            0,
        ),
    ];
    for (id, polygons, row) in row_cases {
        let e = run(&polygons, &standard_points(), 1.0).expect_err(id);
        assert_eq!(row_of(&e), Some(row), "{id}: {e}");
    }
    let e = run(
        &wkb_batch(vec![Some(good), Some(point_wkb)]),
        &standard_points(),
        1.0,
    )
    .expect_err("mixed");
    assert!(
        matches!(e, PolymatchError::UnsupportedGeometry { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("Point (row 1)"), "{e}");
}

/// Arrays as a corrupt producer could hand them over the C data interface: the right
/// buffers, with offsets that decrease or point past the child. Refused, not read.
#[test]
fn forged_offsets_are_refused() {
    let coords = geoarrow_batch(&[unit()], no_nulls()).column(0).clone();
    let rings = coords
        .as_any()
        .downcast_ref::<ListArray>()
        .expect("list")
        .values()
        .clone();
    let forge = |data_type: DataType, offsets: Buffer, len: usize| -> ArrayRef {
        // SAFETY: the buffers have the sizes the type needs; only offset values are bad,
        // which is what the import of C data does not check.
        let data = unsafe {
            ArrayData::new_unchecked(
                data_type,
                len,
                None,
                None,
                0,
                vec![offsets],
                vec![rings.to_data()],
            )
        };
        make_array(data)
    };
    let field = Arc::new(Field::new("item", rings.data_type().clone(), true));
    let decreasing = forge(
        DataType::List(field.clone()),
        Buffer::from_vec(vec![0i32, 1, 0]),
        2,
    );
    let beyond = forge(
        DataType::LargeList(field),
        Buffer::from_vec(vec![0i64, 3_000_000_000]),
        1,
    );
    for (id, array) in [("decreasing", decreasing), ("beyond_i32_and_child", beyond)] {
        let e = run(
            &named_batch(vec![("geometry", array)]),
            &standard_points(),
            1.0,
        )
        .expect_err(id);
        assert!(
            matches!(e.root(), PolymatchError::InvalidLayout(m) if m.contains("not a valid Arrow array")),
            "{id}: {e}"
        );
    }
    // A valid LargeList (i64 offsets) is read as any list.
    let large = LargeListArray::from(
        geoarrow_batch(&[unit()], no_nulls())
            .column(0)
            .to_data()
            .into_builder()
            .data_type(DataType::LargeList(Arc::new(Field::new(
                "item",
                rings.data_type().clone(),
                true,
            ))))
            .buffers(vec![Buffer::from_vec(vec![0i64, 1])])
            .build()
            .expect("valid"),
    );
    let got = run(
        &named_batch(vec![("geometry", Arc::new(large) as ArrayRef)]),
        &standard_points(),
        1.0,
    );
    assert_eq!(got.expect("valid large list"), vec![Some(0), None, None]);
}

fn cli(args: &[&dyn AsRef<std::ffi::OsStr>]) -> u8 {
    let mut all = vec![OsString::from("polymatch")];
    all.extend(args.iter().map(|a| a.as_ref().to_os_string()));
    polymatch::cli::run_from_args(all, &std::sync::atomic::AtomicBool::new(false))
}

/// Files: not Parquet, truncated, broken `geo` metadata, and the files that made the
/// parquet crate panic. The Rust API errors; the CLI exits 1 (input), writes nothing.
#[test]
fn broken_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let points = root().join("sample_data/article/points.parquet");
    let good = root().join("sample_data/article/polygons.parquet");
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/data/corrupt_parquet"))
        .expect("regression files")
        .map(|e| e.expect("entry").path())
        .collect();
    let text = dir.path().join("text.parquet");
    std::fs::write(&text, "id,x,y\n1,2,3\n").expect("write");
    let truncated = dir.path().join("truncated.parquet");
    let bytes = std::fs::read(&good).expect("read");
    std::fs::write(&truncated, &bytes[..bytes.len() - 200]).expect("write");
    files.extend([text, truncated]);
    for (name, geo) in [
        ("not_json", "{not json"),
        ("not_object", "[1, 2]"),
        (
            "no_primary",
            r#"{"columns": {"geometry": {"encoding": "WKB"}}}"#,
        ),
        (
            "undescribed_primary",
            r#"{"primary_column": "geom", "columns": {"geometry": {"encoding": "WKB"}}}"#,
        ),
        (
            "unknown_encoding",
            r#"{"primary_column": "geometry", "columns": {"geometry": {"encoding": "GeoJSON"}}}"#,
        ),
    ] {
        let b = wkb_batch(vec![Some(wkb_closed(&unit(), false))]);
        let path = dir.path().join(format!("{name}.parquet"));
        write_parquet(&path, &b, Some(geo));
        files.push(path);
    }
    assert!(files.len() >= 10);
    let out = dir.path().join("out.parquet");
    let run = |polygons: &Path, points: &Path, extra: &str| {
        cli(&[
            &"match",
            &"--polygons",
            &polygons,
            &"--points",
            &points,
            &"--out",
            &out,
            &extra,
        ])
    };
    for path in &files {
        let e = read_polygons(path, None, Some(&[]))
            .map(|_| path.display().to_string())
            .expect_err("refused");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        assert_eq!(run(path, &points, "--quiet"), 1);
        assert_eq!(run(&good, path, "--quiet"), 1);
        assert!(!out.exists());
    }
    // usage errors: 2
    assert_eq!(run(&good, &points, "--max-dist=-1"), 2);
    assert_eq!(cli(&[&"match", &"--polygons", &good]), 2);
    assert!(!out.exists());
}

/// Regression (fuzzing, `index_bytes` with the checksum recomputed): index bytes with a
/// valid checksum but an inconsistent tree (items outside their boxes, ranks out of
/// order) were accepted, and then answered differently from a brute-force search over
/// their own centers. `from_bytes` now checks every invariant the search relies on.
#[test]
fn forged_index_bytes_are_refused() {
    let dir = root().join("tests/data/forged_index");
    let mut refused = 0;
    for entry in std::fs::read_dir(&dir).expect("regression files") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        match polymatch::SpatialIndex::from_bytes(&bytes) {
            Err(PolymatchError::InvalidIndexBytes(_)) => refused += 1,
            Err(e) => panic!("{}: {e}", path.display()),
            // accepted: then it must be small and consistent (the OOM case declares a
            // huge row count with no matchable rows, which is a valid index)
            Ok(index) => assert_eq!(index.matchable(), 0, "{}", path.display()),
        }
    }
    assert!(refused >= 8, "{refused}");
    // Every index polymatch writes passes the checks.
    for n in [0usize, 1, 31, 32, 33, 1000] {
        let cx: Vec<f64> = (0..n).map(|i| (i * 7 % 13) as f64).collect();
        let cy: Vec<f64> = (0..n).map(|i| (i * 5 % 11) as f64).collect();
        let area: Vec<f64> = (0..n).map(|i| (i % 4) as f64 - 1.0).collect();
        let index = polymatch::SpatialIndex::from_centers(&cx, &cy, &area, |r| r % 5 != 0);
        let back = polymatch::SpatialIndex::from_bytes(&index.to_bytes()).expect("own bytes");
        assert_eq!(back, index);
    }
}
