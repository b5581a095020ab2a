//! Finding and reading geometry in Arrow record batches.
//!
//! Which columns are read is decided by [`crate::io::schema::resolve_geometry`], the one
//! rule for every entry point (named, then declared, then `x`/`y`, then by name).
//!
//! Supported encodings: WKB (`Binary`, `LargeBinary`, `BinaryView`), GeoArrow native
//! polygon (`list<list<coord>>`) and multipolygon (`list<list<list<coord>>>`), with `List`
//! or `LargeList` at any level, coordinates as `struct<x, y[, z, m]>` (separated) or
//! `fixed_size_list<2..4>` (interleaved). Float64 coordinates are used in place (no copy);
//! other numeric types are cast. Sliced arrays work at every level.

use arrow::array::{Array, ArrayRef, AsArray, FixedSizeListArray, RecordBatch, StructArray};
use arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float64Type};

use crate::error::{PolymatchError, Result};
use crate::io::schema::{
    field_edges, resolve_geometry, GeometryColumns, Request, Role, EXTENSION_NAME,
};
use crate::io::wkb::{read_point, PolygonBuilder};
use crate::polygons::{PolygonCenters, PolygonColumns};

/// Points as float64 columns, with their validity.
#[derive(Debug, Clone)]
pub struct PointColumns {
    /// x coordinates.
    pub x: ScalarBuffer<f64>,
    /// y coordinates.
    pub y: ScalarBuffer<f64>,
    /// Null points (never match).
    pub nulls: Option<NullBuffer>,
}

/// Which columns hold the points. All `None`: detect.
#[derive(Debug, Clone, Copy, Default)]
pub struct PointSpec<'a> {
    /// Name of the x column.
    pub x: Option<&'a str>,
    /// Name of the y column.
    pub y: Option<&'a str>,
    /// Name of a point geometry column (GeoArrow point or WKB).
    pub geometry: Option<&'a str>,
}

fn extension_name(field: &Field) -> Option<&str> {
    field.metadata().get(EXTENSION_NAME).map(String::as_str)
}

fn missing(batch: &RecordBatch, name: &str) -> PolymatchError {
    let names: Vec<_> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    PolymatchError::MissingColumn {
        name: name.to_string(),
        hint: format!(" (columns: {})", names.join(", ")),
    }
}

fn column<'b>(batch: &'b RecordBatch, name: &str) -> Result<(&'b Field, &'b ArrayRef)> {
    let schema = batch.schema_ref();
    let i = schema.index_of(name).map_err(|_| missing(batch, name))?;
    Ok((schema.field(i), batch.column(i)))
}

/// Read the polygons of `batch` (see the module docs for what is looked for).
///
/// # Errors
/// [`PolymatchError::MissingColumn`], [`PolymatchError::NoGeometry`],
/// [`PolymatchError::ColumnType`], [`PolymatchError::UnsupportedGeometry`], or a
/// geometry error naming the row.
pub fn polygons_from_batch(batch: &RecordBatch, geometry: Option<&str>) -> Result<PolygonColumns> {
    let request = Request {
        geometry,
        ..Request::default()
    };
    let resolved = resolve_geometry(batch.schema_ref(), Role::Polygons, request)?;
    match &resolved.columns {
        GeometryColumns::Geometry(name) => {
            let (field, array) = column(batch, name)?;
            Ok(polygons_from_array(field, array)?.with_edges(resolved.edges))
        }
        GeometryColumns::Xy(x, y) => {
            polygons_from_xy_lists(column(batch, x)?.1, column(batch, y)?.1)
        }
    }
}

/// Read polygons from one geometry column.
///
/// # Errors
/// As [`polygons_from_batch`].
pub fn polygons_from_array(field: &Field, array: &ArrayRef) -> Result<PolygonColumns> {
    let edges = field_edges(field)?;
    Ok(columns_from_array(field, array)?.with_edges(edges))
}

/// [`polygons_from_array`] but the edges.
fn columns_from_array(field: &Field, array: &ArrayRef) -> Result<PolygonColumns> {
    let name = field.name();
    validate(array, name)?;
    if let Some(ext) = extension_name(field) {
        if matches!(
            ext,
            "geoarrow.point"
                | "geoarrow.linestring"
                | "geoarrow.multipoint"
                | "geoarrow.multilinestring"
        ) {
            return Err(PolymatchError::UnsupportedGeometry {
                column: name.clone(),
                found: ext.to_string(),
                expected: "polygon or multipolygon".into(),
                row: None,
            });
        }
    }
    if let Some(wkbs) = binary_values(array) {
        let mut b = PolygonBuilder::new();
        for (row, wkb) in wkbs.enumerate() {
            match wkb {
                Some(bytes) => b.push_wkb(bytes, row).map_err(|e| name_column(e, name))?,
                None => b.finish_row(),
            }
        }
        let x = ScalarBuffer::from(b.x);
        let y = ScalarBuffer::from(b.y);
        let geom = OffsetBuffer::new(ScalarBuffer::from(b.geom_offsets));
        let parts = OffsetBuffer::new(ScalarBuffer::from(b.part_offsets));
        let rings = OffsetBuffer::new(ScalarBuffer::from(b.ring_offsets));
        return PolygonColumns::try_new(x, y, geom, parts, rings, array.logical_nulls());
    }
    let unsupported = || PolymatchError::ColumnType {
        column: name.clone(),
        found: array.data_type().to_string(),
        expected: "WKB binary, or a GeoArrow polygon/multipolygon list".into(),
    };
    // Validity below the row level: of the items each offsets level points to.
    let (outer_offsets, nulls, child) = list_parts(array).ok_or_else(unsupported)?;
    let (mid_offsets, mid_nulls, child2) = list_parts(&child).ok_or_else(unsupported)?;
    if let Some((coord_offsets, ring_nulls, coords)) = list_parts(&child2) {
        // multipolygon: polygon -> parts -> rings -> coords
        if list_parts(&coords).is_some() {
            return Err(unsupported());
        }
        let (x, y, coord_nulls) = coordinates(&coords, name)?;
        check_inner_nulls(
            nulls.as_ref(),
            &[&outer_offsets, &mid_offsets, &coord_offsets],
            &[mid_nulls, ring_nulls, coord_nulls],
            &["part", "ring", "vertex"],
            name,
        )?;
        return PolygonColumns::try_new(x, y, outer_offsets, mid_offsets, coord_offsets, nulls);
    }
    // polygon: polygon -> rings -> coords
    if matches!(extension_name(field), Some("geoarrow.multipolygon")) {
        return Err(unsupported());
    }
    let (x, y, coord_nulls) = coordinates(&child2, name)?;
    check_inner_nulls(
        nulls.as_ref(),
        &[&outer_offsets, &mid_offsets],
        &[mid_nulls, coord_nulls],
        &["ring", "vertex"],
        name,
    )?;
    PolygonColumns::from_polygons(x, y, outer_offsets, mid_offsets, nulls)
}

/// Nulls are allowed at the row level only (a null polygon). Below it, a null part, ring,
/// vertex or coordinate value inside a non-null row is an error naming the row.
/// `offsets[i]` indexes the items whose validity is `item_nulls[i]`; only the items a
/// non-null row refers to are looked at (a sliced or null row's leftovers may be anything).
fn check_inner_nulls(
    row_nulls: Option<&NullBuffer>,
    offsets: &[&OffsetBuffer<i64>],
    item_nulls: &[Option<NullBuffer>],
    names: &[&str],
    column: &str,
) -> Result<()> {
    if item_nulls
        .iter()
        .all(|n| n.as_ref().is_none_or(|n| n.null_count() == 0))
    {
        return Ok(());
    }
    for row in 0..offsets[0].len() - 1 {
        if row_nulls.is_some_and(|n| n.is_null(row)) {
            continue;
        }
        let (mut lo, mut hi) = (row, row + 1);
        for ((level, nulls), name) in offsets.iter().zip(item_nulls).zip(names) {
            (lo, hi) = (level[lo] as usize, level[hi] as usize);
            if let Some(n) = nulls {
                if let Some(k) = (lo..hi).find(|&k| n.is_null(k)) {
                    return Err(PolymatchError::invalid_geometry(
                        row,
                        format!(
                            "column {column:?}: {name} {} is null (only a whole polygon may be null)",
                            k - lo
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The article's representation: list columns `x` and `y`, one open ring per row.
///
/// # Errors
/// [`PolymatchError::ColumnType`] if they are not numeric lists,
/// [`PolymatchError::InvalidGeometry`] if a row's x and y differ in length.
pub fn polygons_from_xy_lists(x: &ArrayRef, y: &ArrayRef) -> Result<PolygonColumns> {
    let as_list = |a: &ArrayRef, name: &str| {
        list_parts(a).ok_or_else(|| PolymatchError::ColumnType {
            column: name.into(),
            found: a.data_type().to_string(),
            expected: "a list of numbers (one ring per row)".into(),
        })
    };
    validate(x, "x")?;
    validate(y, "y")?;
    let (xo, xn, xv) = as_list(x, "x")?;
    let (yo, yn, yv) = as_list(y, "y")?;
    let nulls = NullBuffer::union(xn.as_ref(), yn.as_ref());
    for row in 0..xo.len() - 1 {
        let (x_null, y_null) = (
            xn.as_ref().is_some_and(|n| n.is_null(row)),
            yn.as_ref().is_some_and(|n| n.is_null(row)),
        );
        if x_null != y_null {
            let (null, other) = if x_null { ("x", "y") } else { ("y", "x") };
            return Err(PolymatchError::invalid_geometry(
                row,
                format!("{null} is null but {other} is not"),
            ));
        }
        let valid = !x_null;
        if valid && xo[row + 1] - xo[row] != yo[row + 1] - yo[row] {
            return Err(PolymatchError::invalid_geometry(
                row,
                format!(
                    "x has {} values but y has {}",
                    xo[row + 1] - xo[row],
                    yo[row + 1] - yo[row]
                ),
            ));
        }
    }
    check_inner_nulls(
        nulls.as_ref(),
        &[&xo],
        &[xv.logical_nulls()],
        &["x value"],
        "x",
    )?;
    check_inner_nulls(
        nulls.as_ref(),
        &[&yo],
        &[yv.logical_nulls()],
        &["y value"],
        "y",
    )?;
    let xs = numbers(&xv, "x")?;
    let ys = numbers(&yv, "y")?;
    if xo == yo && xs.len() == ys.len() {
        return PolygonColumns::from_rings(xs, ys, xo, nulls);
    }
    // Different layouts (e.g. sliced differently): gather both into one.
    let (mut fx, mut fy, mut offsets) = (Vec::new(), Vec::new(), vec![0i64]);
    for row in 0..xo.len() - 1 {
        if nulls.as_ref().is_none_or(|n| n.is_valid(row)) {
            fx.extend_from_slice(&xs[xo[row] as usize..xo[row + 1] as usize]);
            fy.extend_from_slice(&ys[yo[row] as usize..yo[row + 1] as usize]);
        }
        offsets.push(fx.len() as i64);
    }
    PolygonColumns::from_rings(
        fx.into(),
        fy.into(),
        OffsetBuffer::new(offsets.into()),
        nulls,
    )
}

/// Polygons from flat Arrow arrays, one ring per polygon: polygon `i` is the ring
/// `x[offsets[i]..offsets[i+1]]`, `y[...]` (`PolygonIndex.from_coords`).
///
/// # Implementation
/// O(coordinates); float64 coordinates are used in place, other numbers cast.
///
/// # Errors
/// [`PolymatchError::InvalidLayout`] for nulls, malformed arrays or bad offsets,
/// [`PolymatchError::ColumnType`] for non-numeric coordinates or non-integer offsets,
/// geometry errors naming the row.
pub fn polygons_from_coords(
    x: &ArrayRef,
    y: &ArrayRef,
    offsets: &ArrayRef,
) -> Result<PolygonColumns> {
    let values = |a: &ArrayRef, name: &str| -> Result<ScalarBuffer<f64>> {
        validate(a, name)?;
        if a.null_count() > 0 {
            return Err(PolymatchError::InvalidLayout(format!(
                "{name} has null values"
            )));
        }
        numbers(a, name)
    };
    let (xs, ys) = (values(x, "x")?, values(y, "y")?);
    validate(offsets, "offsets")?;
    if offsets.null_count() > 0 {
        return Err(PolymatchError::InvalidLayout(
            "offsets has null values".into(),
        ));
    }
    if !offsets.data_type().is_integer() {
        return Err(PolymatchError::ColumnType {
            column: "offsets".into(),
            found: offsets.data_type().to_string(),
            expected: "integers".into(),
        });
    }
    let wide = cast(offsets, &DataType::Int64)?;
    let offsets = crate::polygons::checked_offsets(
        wide.as_primitive::<arrow::datatypes::Int64Type>()
            .values()
            .to_vec(),
        "polygon",
    )?;
    PolygonColumns::from_rings(xs, ys, offsets, None)
}

/// The precomputed centers and areas of `batch`: the float columns `names` (`center_x`,
/// `center_y` and `area` in what `PolygonIndex.to_arrow` writes), for polygons whose
/// outlines were read elsewhere (a partition's share of a larger polygon set); no copy
/// of float64 columns without an offset. A row with a null or NaN value in any of them
/// is an unmatchable polygon, as a null or empty polygon is.
///
/// # Errors
/// [`PolymatchError::MissingColumn`], [`PolymatchError::ColumnType`], or
/// [`PolymatchError::InvalidGeometry`] naming the first row with an infinite value or a
/// negative area.
pub fn centers_from_batch(batch: &RecordBatch, names: [&str; 3]) -> Result<PolygonCenters> {
    let read = |name: &str| -> Result<(ScalarBuffer<f64>, Option<NullBuffer>)> {
        let array = batch
            .column_by_name(name)
            .ok_or_else(|| PolymatchError::MissingColumn {
                name: name.to_string(),
                hint: format!(" (an index from centers needs {})", names.join(", ")),
            })?;
        validate(array, name)?;
        Ok((numbers(array, name)?, array.logical_nulls()))
    };
    let (cx, nx) = read(names[0])?;
    let (cy, ny) = read(names[1])?;
    let (area, na) = read(names[2])?;
    let nulls = NullBuffer::union_many([nx.as_ref(), ny.as_ref(), na.as_ref()]);
    let keep = |r: usize| {
        nulls.as_ref().is_none_or(|n| n.is_valid(r))
            && !(cx[r].is_nan() || cy[r].is_nan() || area[r].is_nan())
    };
    if let Some(row) = (0..cx.len())
        .find(|&r| keep(r) && !(cx[r].is_finite() && cy[r].is_finite() && area[r].is_finite()))
    {
        return Err(PolymatchError::InvalidGeometry {
            row,
            reason: "an infinite center or area".into(),
        });
    }
    if let Some(row) = (0..cx.len()).find(|&r| keep(r) && area[r] < 0.0) {
        return Err(PolymatchError::InvalidGeometry {
            row,
            reason: format!("a negative area ({})", area[row]),
        });
    }
    let matchable = (0..cx.len()).map(keep).collect();
    Ok(PolygonCenters {
        x: cx,
        y: cy,
        area,
        matchable,
        metric: crate::sphere::Metric::Planar,
    })
}

/// Read the points of `batch` (see [`PointSpec`]): named `x`/`y` columns, else a named or
/// detected point geometry column, else columns `x` and `y`.
///
/// # Errors
/// [`PolymatchError::MissingColumn`], [`PolymatchError::NoGeometry`],
/// [`PolymatchError::ColumnType`] or a WKB error naming the row.
pub fn points_from_batch(batch: &RecordBatch, spec: PointSpec<'_>) -> Result<PointColumns> {
    let request = Request {
        geometry: spec.geometry,
        x: spec.x,
        y: spec.y,
    };
    let resolved = resolve_geometry(batch.schema_ref(), Role::Points, request)?;
    points_from_columns(batch, &resolved.columns)
}

/// Read the points of `batch` from columns resolved already (once for a whole stream, by
/// [`resolve_geometry`] on its schema).
///
/// # Errors
/// As [`points_from_batch`], but for the resolution.
pub fn points_from_columns(batch: &RecordBatch, columns: &GeometryColumns) -> Result<PointColumns> {
    match columns {
        GeometryColumns::Geometry(name) => {
            let (field, array) = column(batch, name)?;
            points_from_array(field, array)
        }
        GeometryColumns::Xy(xn, yn) => {
            let (_, xa) = column(batch, xn)?;
            let (_, ya) = column(batch, yn)?;
            validate(xa, xn)?;
            validate(ya, yn)?;
            let nulls = NullBuffer::union(xa.logical_nulls().as_ref(), ya.logical_nulls().as_ref());
            let x = numbers(xa, xn)?;
            let y = numbers(ya, yn)?;
            Ok(PointColumns { x, y, nulls })
        }
    }
}

/// Read points from one geometry column (GeoArrow point, separated or interleaved, or WKB).
///
/// # Errors
/// As [`points_from_batch`].
pub fn points_from_array(field: &Field, array: &ArrayRef) -> Result<PointColumns> {
    let name = field.name();
    validate(array, name)?;
    if let Some(ext) = extension_name(field) {
        if ext.starts_with("geoarrow.") && !matches!(ext, "geoarrow.point" | "geoarrow.wkb") {
            return Err(PolymatchError::UnsupportedGeometry {
                column: name.clone(),
                found: ext.to_string(),
                expected: "points".into(),
                row: None,
            });
        }
    }
    let list_view;
    let array = match array.data_type() {
        DataType::Dictionary(_, v) if crate::io::schema::is_binary(v) => {
            list_view = cast(array, v).map_err(PolymatchError::from)?;
            &list_view
        }
        _ => array,
    };
    if let Some(wkbs) = binary_values(array) {
        let mut x = Vec::with_capacity(array.len());
        let mut y = Vec::with_capacity(array.len());
        for (row, wkb) in wkbs.enumerate() {
            let (px, py) = match wkb {
                Some(bytes) => read_point(bytes, row).map_err(|e| name_column(e, name))?,
                None => (f64::NAN, f64::NAN),
            };
            x.push(px);
            y.push(py);
        }
        return Ok(PointColumns {
            x: x.into(),
            y: y.into(),
            nulls: array.logical_nulls(),
        });
    }
    match array.data_type() {
        DataType::Struct(_) | DataType::FixedSizeList(_, _) => {
            // A point is null if it, or its x or y value, is null.
            let (x, y, nulls) = coordinates(array, name)?;
            Ok(PointColumns { x, y, nulls })
        }
        other => Err(PolymatchError::ColumnType {
            column: name.clone(),
            found: other.to_string(),
            expected: "point coordinates (struct<x, y> or fixed_size_list<2>) or WKB".into(),
        }),
    }
}

fn name_column(e: PolymatchError, column: &str) -> PolymatchError {
    match e {
        PolymatchError::UnsupportedGeometry {
            found,
            expected,
            row,
            ..
        } => PolymatchError::UnsupportedGeometry {
            column: column.to_string(),
            found,
            expected,
            row,
        },
        PolymatchError::InvalidGeometry { row, reason } => PolymatchError::InvalidGeometry {
            row,
            reason: format!("column {column:?}: {reason}"),
        },
        other => other,
    }
}

/// WKB values of a binary column, if it is one.
fn binary_values(array: &ArrayRef) -> Option<Box<dyn Iterator<Item = Option<&[u8]>> + '_>> {
    match array.data_type() {
        DataType::Binary => Some(Box::new(array.as_binary::<i32>().iter())),
        DataType::LargeBinary => Some(Box::new(array.as_binary::<i64>().iter())),
        DataType::BinaryView => Some(Box::new(array.as_binary_view().iter())),
        _ => None,
    }
}

/// Offsets (as i64, sliced as the array is), validity and child of a List or LargeList.
fn list_parts(array: &ArrayRef) -> Option<(OffsetBuffer<i64>, Option<NullBuffer>, ArrayRef)> {
    match array.data_type() {
        DataType::List(_) => {
            let l = array.as_list::<i32>();
            let widened: Vec<i64> = l.offsets().iter().map(|&o| i64::from(o)).collect();
            // Offsets of a valid Arrow array are non-negative and non-decreasing.
            Some((
                OffsetBuffer::new(widened.into()),
                l.nulls().cloned(),
                l.values().clone(),
            ))
        }
        DataType::LargeList(_) => {
            let l = array.as_list::<i64>();
            Some((l.offsets().clone(), l.nulls().cloned(), l.values().clone()))
        }
        DataType::ListView(f) | DataType::LargeListView(f) => {
            // Views may overlap or be out of order: gather them into a plain list.
            let as_list = cast(array, &DataType::LargeList(f.clone())).ok()?;
            list_parts(&as_list)
        }
        _ => None,
    }
}

/// A numeric array as float64 values: no copy if it is already float64.
///
/// # Errors
/// [`PolymatchError::ColumnType`] (naming `column`) if the array is not numeric.
pub fn numbers(array: &ArrayRef, column: &str) -> Result<ScalarBuffer<f64>> {
    let bad = || PolymatchError::ColumnType {
        column: column.to_string(),
        found: array.data_type().to_string(),
        expected: "a numeric type (float64, or one that casts to it)".into(),
    };
    if array.data_type() == &DataType::Float64 {
        return Ok(array.as_primitive::<Float64Type>().values().clone());
    }
    let numeric = match array.data_type() {
        DataType::Dictionary(_, v) => v.is_numeric(),
        t => t.is_numeric(),
    };
    if !numeric {
        return Err(bad());
    }
    let cast = cast(array, &DataType::Float64).map_err(|_| bad())?;
    Ok(cast.as_primitive::<Float64Type>().values().clone())
}

/// Check that `array` is a well-formed Arrow array (offsets in bounds and non-decreasing,
/// buffers long enough, ...). Arrays from arrow-rs's safe constructors always are; arrays
/// imported through the C data interface (from Python, say) may not be, and reading them
/// unchecked could panic or read out of bounds.
///
/// # Errors
/// [`PolymatchError::InvalidLayout`] naming `column`.
pub fn validate(array: &ArrayRef, column: &str) -> Result<()> {
    array.to_data().validate_full().map_err(|e| {
        PolymatchError::InvalidLayout(format!("column {column:?} is not a valid Arrow array: {e}"))
    })
}

/// x and y of a coordinate array, and the validity of each coordinate: null if the
/// coordinate or its x or y value is null.
fn coordinates(
    array: &ArrayRef,
    column: &str,
) -> Result<(ScalarBuffer<f64>, ScalarBuffer<f64>, Option<NullBuffer>)> {
    match array.data_type() {
        DataType::Struct(fields) if fields.len() >= 2 => {
            let s: &StructArray = array.as_struct();
            let pick =
                |name: &str, fallback: usize| s.column_by_name(name).unwrap_or(s.column(fallback));
            let (xa, ya) = (pick("x", 0), pick("y", 1));
            let nulls = NullBuffer::union_many([
                array.logical_nulls().as_ref(),
                xa.logical_nulls().as_ref(),
                ya.logical_nulls().as_ref(),
            ]);
            Ok((numbers(xa, column)?, numbers(ya, column)?, nulls))
        }
        DataType::FixedSizeList(_, size @ 2..=4) => {
            let l: &FixedSizeListArray = array.as_fixed_size_list();
            let values = numbers(l.values(), column)?;
            let size = *size as usize;
            let x: Vec<f64> = values.chunks_exact(size).map(|c| c[0]).collect();
            let y: Vec<f64> = values.chunks_exact(size).map(|c| c[1]).collect();
            let value_nulls = l.values().logical_nulls().map(|v| {
                let both: Vec<bool> = (0..l.len())
                    .map(|c| v.is_valid(c * size) && v.is_valid(c * size + 1))
                    .collect();
                NullBuffer::from(both)
            });
            let nulls = NullBuffer::union(array.logical_nulls().as_ref(), value_nulls.as_ref());
            Ok((x.into(), y.into(), nulls))
        }
        other => Err(PolymatchError::ColumnType {
            column: column.to_string(),
            found: other.to_string(),
            expected: "coordinates as struct<x, y> or fixed_size_list<2..4>".into(),
        }),
    }
}
