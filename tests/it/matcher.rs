//! The one Matcher and the one schema resolver, through the Rust API and the Parquet
//! pipeline: the same table gives the same answer in memory and from a file (docs/SPEC.md,
//! "Which columns are read", "CRS").

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BinaryArray, Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use polymatch::io::crs::Crs;
use polymatch::io::parquet::{read_polygon_centers, read_polygons};
use polymatch::io::{Keep, PointSpec};
use polymatch::matcher::{Matcher, PolygonSide};
use polymatch::pipeline::{match_parquet, ParquetJob};
use polymatch::{How, MatchOptions, PolygonColumns, PolymatchError, Rankings, SpatialIndex};

use crate::common::arrays::{field_for, tagged};
use crate::common::oracle::polygon_rows;
use crate::common::wkb::Wkb;
use crate::common::write_parquet;

/// Two unit squares, centers (0.5, 0.5) and (10.5, 10.5).
fn index() -> Rankings {
    let xs = vec![0.0, 1.0, 1.0, 0.0, 10.0, 11.0, 11.0, 10.0];
    let ys = vec![0.0, 0.0, 1.0, 1.0, 10.0, 10.0, 11.0, 11.0];
    let offsets = arrow::buffer::OffsetBuffer::new(vec![0i64, 4, 8].into());
    let p = PolygonColumns::from_rings(xs.into(), ys.into(), offsets, None).expect("polygons");
    Rankings::new(Arc::new(SpatialIndex::new(&p)))
}

/// x/y at (10.5, 10.5) and a WKB column at (0.5, 0.5), tagged with a GeoArrow extension
/// (name, metadata) if given, in a schema with a `geo` entry if given.
fn points(ext: Option<(&str, &str)>, geo: Option<&str>) -> RecordBatch {
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("x", Arc::new(Float64Array::from(vec![10.5]))),
        ("y", Arc::new(Float64Array::from(vec![10.5]))),
        (
            "geometry",
            Arc::new(BinaryArray::from_vec(vec![Wkb::LE
                .point(0.5, 0.5)
                .as_slice()])),
        ),
        ("id", Arc::new(Int64Array::from(vec![7]))),
    ];
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| {
            let f = field_for(name, array, None);
            match ext {
                Some((n, m)) if *name == "geometry" => tagged(f, n, m),
                _ => f,
            }
        })
        .collect();
    let schema = Schema::new(fields);
    let schema = match geo {
        Some(g) => schema.with_metadata(HashMap::from([("geo".to_string(), g.to_string())])),
        None => schema,
    };
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    RecordBatch::try_new(Arc::new(schema), arrays).expect("batch")
}

fn options() -> MatchOptions {
    MatchOptions {
        max_dist: 2.0,
        how: How::Left,
        ..MatchOptions::default()
    }
}

fn matcher<'a>(index: &'a Rankings, crs: Option<&'a Crs>) -> Matcher<'a> {
    Matcher {
        polygons: PolygonSide {
            index,
            attributes: None,
            crs,
            outlines: None,
        },
        options: options(),
        keep: Keep::default(),
        allow_crs_mismatch: false,
    }
}

fn in_memory(m: &Matcher<'_>, batch: &RecordBatch, spec: PointSpec<'_>) -> Vec<Option<u32>> {
    let bound = m.bind(batch.schema_ref(), spec).expect("bind");
    let out = bound
        .match_all(std::slice::from_ref(batch), None)
        .expect("match");
    polygon_rows(&out[0])
}

/// A streaming job of `points` into `out`.
fn points_job<'a>(
    matcher: Matcher<'a>,
    polygons: Option<&'a std::path::Path>,
    points: &'a std::path::Path,
    out: &'a std::path::Path,
    spec: PointSpec<'a>,
    batch_rows: usize,
    cancel: &'a AtomicBool,
) -> ParquetJob<'a> {
    ParquetJob {
        matcher,
        polygons_path: polygons,
        points_path: points,
        out_path: out,
        spec,
        batch_rows,
        cancel,
        job_id: None,
    }
}

fn from_file(m: Matcher<'_>, batch: &RecordBatch, spec: PointSpec<'_>) -> Vec<Option<u32>> {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("points.parquet");
    write_parquet(&src, batch, None);
    let out = dir.path().join("out.parquet");
    let cancel = AtomicBool::new(false);
    let job = points_job(m, None, &src, &out, spec, 1024, &cancel);
    match_parquet(&job, |_, _| {}).expect("match_parquet");
    let file = std::fs::File::open(&out).expect("open");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("reader")
        .build()
        .expect("build");
    reader
        .flat_map(|b| polygon_rows(&b.expect("batch")))
        .collect()
}

#[test]
fn the_same_rule_in_memory_and_from_files() {
    let index = index();
    let m = matcher(&index, None);
    let geo = r#"{"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": {"encoding": "WKB", "crs": null}}}"#;
    let named = PointSpec {
        geometry: Some("geometry"),
        ..PointSpec::default()
    };
    let cases: Vec<(RecordBatch, PointSpec<'_>, Option<u32>)> = vec![
        // x/y before an untagged WKB column
        (points(None, None), PointSpec::default(), Some(1)),
        // a named column wins
        (points(None, None), named, Some(0)),
        // a declared geometry wins over x/y: GeoArrow type, or GeoParquet primary column
        (
            points(Some(("geoarrow.wkb", "{}")), None),
            PointSpec::default(),
            Some(0),
        ),
        (points(None, Some(geo)), PointSpec::default(), Some(0)),
    ];
    for (batch, spec, want) in cases {
        assert_eq!(in_memory(&m, &batch, spec), vec![want]);
        assert_eq!(from_file(m.clone(), &batch, spec), vec![want]);
    }
}

#[test]
fn crs_rules() {
    let index = index();
    let utm = Crs(
        serde_json::json!({"name": "WGS 84 / UTM zone 33N", "id": {"authority": "EPSG", "code": 32633}}),
    );
    let m = matcher(&index, Some(&utm));
    // unstated points: no conflict, the result carries the polygons' CRS
    let plain = points(None, None);
    let bound = m
        .bind(plain.schema_ref(), PointSpec::default())
        .expect("bind");
    assert!(bound.crs().expect("crs").same_as(&utm));
    // another spelling of the same CRS, in GeoArrow metadata
    let same = points(Some(("geoarrow.wkb", r#"{"crs": "EPSG:32633"}"#)), None);
    assert_eq!(
        from_file(m.clone(), &same, PointSpec::default()),
        vec![Some(0)]
    );
    // a real mismatch is refused, in memory and from a file, unless allowed
    let other = points(Some(("geoarrow.wkb", r#"{"crs": "EPSG:3857"}"#)), None);
    let err = m
        .bind(other.schema_ref(), PointSpec::default())
        .unwrap_err();
    assert!(matches!(err, PolymatchError::Metadata(_)), "{err}");
    assert!(err.to_string().contains("EPSG:32633 vs EPSG:3857"), "{err}");
    let allowed = Matcher {
        allow_crs_mismatch: true,
        ..m.clone()
    };
    assert_eq!(
        from_file(allowed, &other, PointSpec::default()),
        vec![Some(0)]
    );
    // points have no edges: spherical ones change nothing; ellipsoidal ones are refused
    let sph = points(Some(("geoarrow.wkb", r#"{"edges": "spherical"}"#)), None);
    assert!(m.bind(sph.schema_ref(), PointSpec::default()).is_ok());
    let ell = points(Some(("geoarrow.wkb", r#"{"edges": "karney"}"#)), None);
    let err = m.bind(ell.schema_ref(), PointSpec::default()).unwrap_err();
    assert!(err.to_string().contains("karney"), "{err}");
}

#[test]
fn output_schema_is_known_before_any_row_and_names_do_not_collide() {
    let index = index();
    let attrs = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![100, 101]))],
    )
    .expect("attributes");
    let keep_points = vec!["id".to_string(), "geometry".to_string()];
    let keep_polygons = vec!["id".to_string()];
    let m = Matcher {
        polygons: PolygonSide {
            index: &index,
            attributes: Some(&attrs),
            crs: None,
            outlines: None,
        },
        options: options(),
        keep: Keep {
            points: &keep_points,
            polygons: &keep_polygons,
        },
        allow_crs_mismatch: false,
    };
    let batch = points(None, None);
    let bound = m
        .bind(batch.schema_ref(), PointSpec::default())
        .expect("bind");
    let names: Vec<&str> = bound
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(
        names,
        [
            "point_index",
            "polygon_index",
            "distance",
            "area",
            "id_left",
            "geometry",
            "id_right"
        ]
    );
    // the kept WKB point column is described as the primary geometry
    let geo: serde_json::Value =
        serde_json::from_str(&bound.schema().metadata()["geo"]).expect("geo json");
    assert_eq!(geo["primary_column"], "geometry");
    // no batches at all: nothing to match, but the schema is there
    assert!(bound.match_all(&[], None).expect("empty").is_empty());
    let empty = batch.slice(0, 0);
    let (out, matched) = bound.match_batch(&empty, 0, None).expect("empty batch");
    assert_eq!((out.num_rows(), matched), (0, 0));
    assert_eq!(out.schema(), *bound.schema());
    let (out, _) = bound.match_batch(&batch, 0, None).expect("match");
    assert_eq!(
        out.column(6)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0),
        101
    );
    // point columns keep the point's value (id_left = 7), polygon columns the matched
    // polygon's (id_right = 101, row 1)
    assert_eq!(
        out.column(4)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values()
            .to_vec(),
        [7]
    );
    assert_eq!(polygon_rows(&out), [Some(1)]);
}

#[test]
fn read_polygons_keeps_every_column_unless_told() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("polys.parquet");
    let xs =
        arrow::array::ListArray::from_iter_primitive::<arrow::datatypes::Float64Type, _, _>(vec![
            Some(vec![Some(0.0), Some(1.0), Some(1.0)]),
        ]);
    let ys =
        arrow::array::ListArray::from_iter_primitive::<arrow::datatypes::Float64Type, _, _>(vec![
            Some(vec![Some(0.0), Some(0.0), Some(1.0)]),
        ]);
    let name: ArrayRef = Arc::new(arrow::array::StringArray::from(vec!["a"]));
    let batch = RecordBatch::try_from_iter(vec![
        ("x", Arc::new(xs) as ArrayRef),
        ("y", Arc::new(ys) as ArrayRef),
        ("name", name),
    ])
    .expect("batch");
    write_parquet(&path, &batch, None);
    let all = read_polygons(&path, None, None).expect("read");
    assert_eq!(all.attributes.num_columns(), 3);
    let none = read_polygons(&path, None, Some(&[])).expect("read");
    assert_eq!(
        (none.attributes.num_columns(), none.attributes.num_rows()),
        (0, 1)
    );
}

/// A WKB polygon file of `rows` rows across several reader batches: squares of varying
/// size on a grid, with null and EMPTY rows, and a `name` column; `bad` replaces one row.
/// One row group with an offset index, or (`groups_of`) row groups of that many rows and
/// no offset index.
fn many_polygons(
    path: &std::path::Path,
    rows: usize,
    bad: Option<(usize, Vec<u8>)>,
    groups_of: Option<usize>,
) {
    let wkb = Wkb::LE;
    let values: Vec<Option<Vec<u8>>> = (0..rows)
        .map(|i| {
            if let Some((row, bytes)) = &bad {
                if *row == i {
                    return Some(bytes.clone());
                }
            }
            match i % 97 {
                13 => None,
                29 => Some(wkb.polygon(&[])),
                _ => {
                    let (x, y) = ((i % 500) as f64 * 3.0, (i / 500) as f64 * 3.0);
                    let s = 0.5 + (i % 7) as f64 * 0.25;
                    Some(wkb.polygon(&[vec![(x, y), (x + s, y), (x + s, y + s), (x, y + s)]]))
                }
            }
        })
        .collect();
    let geometry: ArrayRef = Arc::new(BinaryArray::from_iter(values));
    let name: ArrayRef = Arc::new(arrow::array::StringArray::from_iter_values(
        (0..rows).map(|i| format!("p{i}")),
    ));
    let batch =
        RecordBatch::try_from_iter(vec![("geometry", geometry), ("name", name)]).expect("batch");
    let Some(group) = groups_of else {
        return write_parquet(path, &batch, None);
    };
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(group))
        .set_offset_index_disabled(true)
        .set_statistics_enabled(parquet::file::properties::EnabledStatistics::Chunk)
        .build();
    let file = std::fs::File::create(path).expect("create");
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn read_polygon_centers_equals_read_polygons_then_index_across_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("polys.parquet");
    // 65,536 rows per reader batch: three batches, the last one short; read in parts
    // (pieces of the one row group, or whole row groups of 40,000 rows).
    for (groups_of, keep) in [
        (None, vec![]),
        (None, vec!["name".to_string()]),
        (Some(40_000), vec!["name".to_string()]),
    ] {
        many_polygons(&path, 150_001, None, groups_of);
        let read = read_polygons(&path, None, Some(&keep)).expect("read");
        let indexed = read_polygon_centers(&path, None, &keep).expect("index");
        assert_eq!(
            SpatialIndex::from_polygon_centers(&indexed.centers).to_bytes(),
            SpatialIndex::new(&read.polygons).to_bytes()
        );
        assert_eq!(indexed.attributes, read.attributes);
        assert_eq!(indexed.attributes.num_rows(), 150_001);
    }
}

#[test]
fn read_polygon_centers_names_the_row_of_the_file_in_a_later_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("polys.parquet");
    let nan = Wkb::LE.polygon(&[vec![(0.0, 0.0), (1.0, f64::NAN), (1.0, 1.0)]]);
    many_polygons(&path, 70_000, Some((69_999, nan.clone())), None);
    for e in [
        read_polygon_centers(&path, None, &[]).expect_err("a NaN vertex"),
        read_polygons(&path, None, Some(&[])).expect_err("a NaN vertex"),
    ] {
        assert!(
            matches!(
                e.root(),
                PolymatchError::InvalidGeometry { row: 69_999, .. }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("polys.parquet"), "{e}");
    }
    // A bad row in the fourth of four row groups (no offset index): its row in the file.
    many_polygons(&path, 120_000, Some((100_001, nan)), Some(30_000));
    let e = read_polygon_centers(&path, None, &[]).expect_err("a NaN vertex");
    assert!(
        matches!(
            e.root(),
            PolymatchError::InvalidGeometry { row: 100_001, .. }
        ),
        "{e}"
    );
    let line = Wkb::LE.linestring(&[(0.0, 0.0), (1.0, 1.0)]);
    many_polygons(&path, 70_000, Some((66_000, line)), None);
    let e = read_polygon_centers(&path, None, &[]).expect_err("a LineString");
    assert!(
        matches!(
            e.root(),
            PolymatchError::UnsupportedGeometry {
                row: Some(66_000),
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("LineString (row 66000)"), "{e}");
}

/// A bad point in a later batch is named by its row in the whole input, in memory
/// (`match_all`) and from a file read in batches: an unsupported geometry as well as a
/// malformed one.
#[test]
fn bad_point_rows_count_across_batches() {
    let rankings = index();
    let m = matcher(&rankings, None);
    let line = Wkb::LE.linestring(&[(0.0, 0.0), (1.0, 1.0)]);
    let rows: Vec<Vec<u8>> = (0..250)
        .map(|i| {
            if i == 237 {
                line.clone()
            } else {
                Wkb::LE.point(0.5, 0.5)
            }
        })
        .collect();
    let column: ArrayRef = Arc::new(BinaryArray::from_iter_values(rows.iter()));
    let whole = RecordBatch::try_from_iter([("geometry", column)]).unwrap();
    let batches: Vec<RecordBatch> = (0..250)
        .step_by(100)
        .map(|s| whole.slice(s, (250 - s).min(100)))
        .collect();
    let spec = PointSpec {
        geometry: Some("geometry"),
        ..PointSpec::default()
    };
    let bound = m.bind(whole.schema_ref(), spec).expect("bind");
    let e = bound.match_all(&batches, None).expect_err("a LineString");
    assert!(
        matches!(
            e.root(),
            PolymatchError::UnsupportedGeometry { row: Some(237), .. }
        ),
        "{e}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("points.parquet");
    write_parquet(&src, &whole, None);
    let out = dir.path().join("out.parquet");
    let cancel = AtomicBool::new(false);
    let job = points_job(m, None, &src, &out, spec, 100, &cancel);
    let e = match_parquet(&job, |_, _| {}).expect_err("a LineString");
    assert!(e.to_string().contains("(row 237)"), "{e}");
    assert!(!out.exists());
}

/// A rank column the polygons do not have, or that is not numeric, is an error about
/// the polygons file, not the points file.
#[test]
fn a_bad_rank_column_is_the_polygons_fault() {
    let rankings = index();
    let names: ArrayRef = Arc::new(arrow::array::StringArray::from(vec!["a", "b"]));
    let attributes = RecordBatch::try_from_iter([("name", names)]).unwrap();
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("points.parquet");
    write_parquet(&src, &points(None, None), None);
    let polygons = dir.path().join("polygons.parquet");
    for (rank_by, words) in [("name", "Utf8"), ("nope", "missing column")] {
        let out = dir.path().join("out.parquet");
        let cancel = AtomicBool::new(false);
        let m = Matcher {
            polygons: PolygonSide {
                index: &rankings,
                attributes: Some(&attributes),
                crs: None,
                outlines: None,
            },
            options: MatchOptions {
                rank_by: rank_by.parse().unwrap(),
                ..options()
            },
            keep: Keep::default(),
            allow_crs_mismatch: false,
        };
        let job = points_job(
            m,
            Some(&polygons),
            &src,
            &out,
            PointSpec::default(),
            1024,
            &cancel,
        );
        let e = match_parquet(&job, |_, _| {})
            .expect_err(rank_by)
            .to_string();
        assert!(e.starts_with(&polygons.display().to_string()), "{e}");
        assert!(e.contains(words) && !e.contains("points.parquet"), "{e}");
    }
}
