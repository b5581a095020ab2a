//! Arrow arrays and batches built by hand: polygon columns, GeoArrow coordinate, polygon
//! and multipolygon arrays in every layout, WKB arrays, fields with GeoArrow extension
//! names, and the sample polygons most ingest tests use.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, FixedSizeListArray, Float64Array, LargeBinaryArray,
    LargeListArray, ListArray, RecordBatch, StructArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, Fields, Schema};
use polymatch::io::arrow_ingest::polygons_from_array;
use polymatch::PolygonColumns;

use super::wkb::Wkb;
use super::{Multi, Part, Ring};

/// Polygon columns with one ring per row.
pub fn ring_polygons_result(rings: &[Ring]) -> polymatch::Result<PolygonColumns> {
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut offsets = vec![0i64];
    for ring in rings {
        x.extend(ring.iter().map(|p| p.0));
        y.extend(ring.iter().map(|p| p.1));
        offsets.push(x.len() as i64);
    }
    PolygonColumns::from_rings(x.into(), y.into(), OffsetBuffer::new(offsets.into()), None)
}

/// [`ring_polygons_result`], which must succeed.
pub fn ring_polygons(rings: &[Ring]) -> PolygonColumns {
    ring_polygons_result(rings).unwrap()
}

/// Polygon columns in the full multipolygon layout.
pub fn multi_polygons(polygons: &[Multi]) -> PolygonColumns {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let (mut geoms, mut parts, mut rings) = (vec![0i64], vec![0i64], vec![0i64]);
    for polygon in polygons {
        for part in polygon {
            for ring in part {
                x.extend(ring.iter().map(|p| p.0));
                y.extend(ring.iter().map(|p| p.1));
                rings.push(x.len() as i64);
            }
            parts.push(rings.len() as i64 - 1);
        }
        geoms.push(parts.len() as i64 - 1);
    }
    let off = |v: Vec<i64>| OffsetBuffer::new(ScalarBuffer::from(v));
    PolygonColumns::try_new(x.into(), y.into(), off(geoms), off(parts), off(rings), None).unwrap()
}

/// How coordinates are laid out.
#[derive(Clone, Copy, Debug)]
pub enum Coords {
    /// A struct of x and y arrays.
    Separated,
    /// A fixed-size list of 2.
    Interleaved,
    /// A fixed-size list of 3 (z = -7, ignored).
    InterleavedXyz,
}

/// GeoArrow coordinates in `layout`.
pub fn coord_array(points: &[(f64, f64)], layout: Coords) -> ArrayRef {
    match layout {
        Coords::Separated => {
            let fields = Fields::from(vec![
                Field::new("x", DataType::Float64, false),
                Field::new("y", DataType::Float64, false),
            ]);
            let xs = Float64Array::from(points.iter().map(|p| p.0).collect::<Vec<_>>());
            let ys = Float64Array::from(points.iter().map(|p| p.1).collect::<Vec<_>>());
            Arc::new(StructArray::new(
                fields,
                vec![Arc::new(xs) as ArrayRef, Arc::new(ys)],
                None,
            ))
        }
        Coords::Interleaved | Coords::InterleavedXyz => {
            let xyz = matches!(layout, Coords::InterleavedXyz);
            let mut flat = Vec::new();
            for &(x, y) in points {
                flat.extend([x, y]);
                if xyz {
                    flat.push(-7.0);
                }
            }
            let field = Arc::new(Field::new(
                if xyz { "xyz" } else { "xy" },
                DataType::Float64,
                false,
            ));
            let size = if xyz { 3 } else { 2 };
            Arc::new(FixedSizeListArray::new(
                field,
                size,
                Arc::new(Float64Array::from(flat)),
                None,
            ))
        }
    }
}

/// Offsets of consecutive lists of the given lengths.
pub fn offsets_of(lengths: impl IntoIterator<Item = usize>) -> Vec<usize> {
    let mut out = vec![0];
    for n in lengths {
        out.push(out.last().copied().unwrap_or(0) + n);
    }
    out
}

/// A List (or LargeList) array over `values` with the given offsets and validity.
pub fn list_array(
    values: ArrayRef,
    offsets: Vec<usize>,
    nulls: Option<NullBuffer>,
    large: bool,
) -> ArrayRef {
    let field = Arc::new(Field::new("item", values.data_type().clone(), true));
    if large {
        let offsets = offsets.into_iter().map(|o| o as i64).collect::<Vec<_>>();
        Arc::new(LargeListArray::new(
            field,
            OffsetBuffer::new(offsets.into()),
            values,
            nulls,
        ))
    } else {
        let offsets = offsets.into_iter().map(|o| o as i32).collect::<Vec<_>>();
        Arc::new(ListArray::new(
            field,
            OffsetBuffer::new(offsets.into()),
            values,
            nulls,
        ))
    }
}

/// GeoArrow polygon array: list<list<coord>>.
pub fn polygon_array(rows: &[Option<Part>], layout: Coords, large: bool) -> ArrayRef {
    let (mut coords, mut ring_offsets, mut poly_offsets, mut valid) =
        (Vec::new(), vec![0], vec![0], Vec::new());
    for row in rows {
        for ring in row.iter().flatten() {
            coords.extend_from_slice(ring);
            ring_offsets.push(coords.len());
        }
        poly_offsets.push(ring_offsets.len() - 1);
        valid.push(row.is_some());
    }
    let rings = list_array(coord_array(&coords, layout), ring_offsets, None, large);
    list_array(rings, poly_offsets, Some(NullBuffer::from(valid)), large)
}

/// GeoArrow multipolygon array: list<list<list<coord>>>.
pub fn multipolygon_array(rows: &[Option<Multi>], layout: Coords, large: bool) -> ArrayRef {
    let (mut coords, mut ring_offsets, mut part_offsets, mut geom_offsets) =
        (Vec::new(), vec![0], vec![0], vec![0]);
    let mut valid = Vec::new();
    for row in rows {
        for part in row.iter().flatten() {
            for ring in part {
                coords.extend_from_slice(ring);
                ring_offsets.push(coords.len());
            }
            part_offsets.push(ring_offsets.len() - 1);
        }
        geom_offsets.push(part_offsets.len() - 1);
        valid.push(row.is_some());
    }
    let rings = list_array(coord_array(&coords, layout), ring_offsets, None, large);
    let parts = list_array(rings, part_offsets, None, large);
    list_array(parts, geom_offsets, Some(NullBuffer::from(valid)), large)
}

/// A Binary (or LargeBinary) array, e.g. of WKB.
pub fn binary_array(values: &[Option<Vec<u8>>], large: bool) -> ArrayRef {
    let refs: Vec<Option<&[u8]>> = values.iter().map(|v| v.as_deref()).collect();
    if large {
        Arc::new(LargeBinaryArray::from_opt_vec(refs))
    } else {
        Arc::new(BinaryArray::from_opt_vec(refs))
    }
}

/// A nullable field for `array`, with a GeoArrow extension name if given.
pub fn field_for(name: &str, array: &ArrayRef, extension: Option<&str>) -> Field {
    let field = Field::new(name, array.data_type().clone(), true);
    match extension {
        Some(ext) => {
            field.with_metadata([("ARROW:extension:name".to_string(), ext.to_string())].into())
        }
        None => field,
    }
}

/// `field` with a GeoArrow extension name and extension metadata (JSON).
pub fn tagged(field: Field, extension: &str, metadata: &str) -> Field {
    field.with_metadata(
        [
            ("ARROW:extension:name".to_string(), extension.to_string()),
            ("ARROW:extension:metadata".to_string(), metadata.to_string()),
        ]
        .into(),
    )
}

/// A batch of these fields and arrays.
pub fn batch_of(columns: Vec<(Field, ArrayRef)>) -> RecordBatch {
    let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

/// A batch of these named arrays (untagged nullable fields).
pub fn named_batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    batch_of(
        columns
            .into_iter()
            .map(|(name, array)| (field_for(name, &array, None), array))
            .collect(),
    )
}

/// Points as a batch of `x` and `y` float64 columns.
pub fn xy_points(points: &[(f64, f64)]) -> RecordBatch {
    let x: Vec<f64> = points.iter().map(|q| q.0).collect();
    let y: Vec<f64> = points.iter().map(|q| q.1).collect();
    named_batch(vec![
        ("x", Arc::new(Float64Array::from(x)) as ArrayRef),
        ("y", Arc::new(Float64Array::from(y))),
    ])
}

/// Polygon columns read from a column named `geometry` holding `array`.
pub fn from_array(array: &ArrayRef) -> PolygonColumns {
    polygons_from_array(&field_for("geometry", array, None), array).unwrap()
}

// --- The sample polygons --------------------------------------------------------------

/// The sample polygons, as parts of rings, and what each row must give.
/// Row 0: two unit squares (closed rings) -> center of 8 vertices (2, 0.5), area 2.
/// Row 1: a 4x4 square with a 1x1 hole -> (12, 12), 15.
/// Row 2: null.
/// Row 3: an open triangle -> (21, 1), 4.5.
pub fn sample_multipolygons() -> Vec<Option<Multi>> {
    let square = |x0: f64, y0: f64, s: f64| {
        vec![
            (x0, y0),
            (x0 + s, y0),
            (x0 + s, y0 + s),
            (x0, y0 + s),
            (x0, y0),
        ]
    };
    vec![
        Some(vec![
            vec![square(0.0, 0.0, 1.0)],
            vec![square(3.0, 0.0, 1.0)],
        ]),
        Some(vec![vec![square(10.0, 10.0, 4.0), square(11.0, 11.0, 1.0)]]),
        None,
        Some(vec![vec![vec![(20.0, 0.0), (23.0, 0.0), (20.0, 3.0)]]]),
    ]
}

/// (center x, center y, area) per row of [`sample_multipolygons`], `None` if unmatchable.
pub const SAMPLE_WANT: [Option<(f64, f64, f64)>; 4] = [
    Some((2.0, 0.5, 2.0)),
    Some((12.0, 12.0, 15.0)),
    None,
    Some((21.0, 1.0, 4.5)),
];

/// The same as polygons (one part each); row 0 is just its first square.
pub fn sample_polygons() -> Vec<Option<Part>> {
    sample_multipolygons()
        .into_iter()
        .map(|m| m.map(|mut parts| parts.swap_remove(0)))
        .collect()
}

/// What [`sample_polygons`] must give.
pub const POLYGON_WANT: [Option<(f64, f64, f64)>; 4] = [
    Some((0.5, 0.5, 1.0)),
    Some((12.0, 12.0, 15.0)),
    None,
    Some((21.0, 1.0, 4.5)),
];

/// The sample rows as WKB: row 0 a MultiPolygon (ISO, with Z), row 1 a big-endian EWKB
/// Polygon (Z, SRID), row 3 a plain Polygon. They give [`SAMPLE_WANT`].
pub fn sample_wkb() -> Vec<Option<Vec<u8>>> {
    let m = sample_multipolygons();
    vec![
        Some(Wkb::ISO_Z.multipolygon(m[0].as_ref().unwrap())),
        Some(Wkb::EWKB.polygon(&m[1].as_ref().unwrap()[0])),
        None,
        Some(Wkb::LE.polygon(&m[3].as_ref().unwrap()[0])),
    ]
}

/// Assert that `p` has these (center x, center y, area) per row, `None` for rows that
/// must not be matchable.
pub fn assert_derived(p: &PolygonColumns, want: &[Option<(f64, f64, f64)>]) {
    assert_eq!(p.len(), want.len());
    for (row, w) in want.iter().enumerate() {
        match w {
            Some(w) => {
                assert!(p.matchable().is_valid(row), "row {row} should be matchable");
                assert_eq!(
                    (p.center_x()[row], p.center_y()[row], p.area()[row]),
                    *w,
                    "row {row}"
                );
            }
            None => assert!(
                p.matchable().is_null(row),
                "row {row} should not be matchable"
            ),
        }
    }
}
