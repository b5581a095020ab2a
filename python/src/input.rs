//! Python objects in, Arrow record batches out: the one door every Python entry point
//! takes its tables through. Conversion only.
//!
//! - Objects that speak the Arrow PyCapsule interface come in without a copy. A table
//!   (a stream or array of structs) is read as record batches; a bare geometry array
//!   (`pa.array` of WKB, a GeoArrow extension array, `GeoSeries.to_arrow()`) becomes a
//!   one-column table named after its field, or `geometry`, with its field metadata
//!   (GeoArrow extension type, CRS) kept.
//! - Everything else goes through `polymatch._convert` first: geopandas objects (whose
//!   pandas-inherited `__arrow_c_stream__` cannot export geometry), pandas, polars
//!   LazyFrames, numpy arrays, dicts.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use polymatch::io::arrow_ingest::validate;
use polymatch::io::schema::EXTENSION_NAME;
use pyo3::prelude::*;
use pyo3_arrow::input::{AnyArray, AnyRecordBatch};

use crate::error::PyPolymatchError;

/// What the object is for, to pick the right conversion and say so in messages.
#[derive(Clone, Copy)]
pub enum Side {
    /// Points.
    Points,
    /// Polygons.
    Polygons,
}

fn needs_python_conversion(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    let ty = obj.get_type();
    let module: String = ty.getattr("__module__")?.extract().unwrap_or_default();
    let name: String = ty.getattr("__name__")?.extract().unwrap_or_default();
    if module.starts_with("geopandas") || module.starts_with("pandas") || name == "LazyFrame" {
        return Ok(true);
    }
    Ok(!(obj.hasattr("__arrow_c_stream__")? || obj.hasattr("__arrow_c_array__")?))
}

/// Every batch of `obj` (see the module docs), each checked to be well-formed Arrow
/// data: arrays that crossed the C data interface are not validated by the import, and a
/// forged or corrupt array (offsets out of bounds or decreasing, say) must be refused,
/// not read. The schema keeps its metadata (GeoParquet `geo`) and field metadata.
pub fn read_table(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    side: Side,
) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
    if let Side::Points = side {
        if let Some(table) = numpy_points(obj)? {
            return Ok(table);
        }
    }
    let converted;
    let obj = if needs_python_conversion(obj)? {
        let f = match side {
            Side::Points => "points_to_arrow",
            Side::Polygons => "polygons_to_arrow",
        };
        converted = py.import("polymatch._convert")?.call_method1(f, (obj,))?;
        &converted
    } else {
        obj
    };
    let (schema, batches) = match obj.extract::<AnyRecordBatch>() {
        Ok(data) => {
            let reader = data.into_reader()?;
            let schema = reader.schema();
            let batches = reader
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| PyPolymatchError(e.into()))?;
            (schema, batches)
        }
        Err(table_err) => match obj.extract::<AnyArray>() {
            Ok(array) => one_column(array)?,
            Err(_) => return Err(table_err),
        },
    };
    for batch in &batches {
        for (field, column) in batch.schema_ref().fields().iter().zip(batch.columns()) {
            validate(column, field.name()).map_err(PyPolymatchError)?;
        }
    }
    Ok((schema, batches))
}

/// A numpy `(N, 2)` array of points as an `x`/`y` table, read through the buffer
/// protocol in Rust: C- or F-ordered or strided, float64 used as is, float32 and integer
/// types cast. `None` for anything else (another shape or dtype goes through
/// `polymatch._convert`, which says what is wrong).
fn numpy_points(obj: &Bound<'_, PyAny>) -> PyResult<Option<(SchemaRef, Vec<RecordBatch>)>> {
    use numpy::{PyArray2, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
    let Ok(untyped) = obj.cast::<PyUntypedArray>() else {
        return Ok(None);
    };
    if untyped.ndim() != 2 || untyped.shape()[1] != 2 {
        return Ok(None);
    }
    // The common case, C-ordered float64 rows: split into the two columns in parallel
    // (the GIL stays held: another thread could write the array otherwise).
    if let Ok(a) = obj.cast::<PyArray2<f64>>() {
        let view = a.readonly();
        // (`as_slice` also takes a Fortran-ordered array: its columns one after the other)
        let rows_first = untyped.is_c_contiguous() && untyped.shape()[0] >= PARALLEL_POINTS;
        if let (Ok(rows), true) = (view.as_slice(), rows_first) {
            let column = |j: usize| -> Vec<f64> {
                use rayon::prelude::*;
                rows.par_chunks_exact(2)
                    .with_min_len(PARALLEL_POINTS / 4)
                    .map(|r| r[j])
                    .collect()
            };
            let (x, y) =
                crate::pool::run(None, || (column(0), column(1))).map_err(PyPolymatchError)?;
            return Ok(Some(xy_batch(x, y)?));
        }
    }
    macro_rules! columns {
        ($($t:ty),*) => {
            $(if let Ok(a) = obj.cast::<PyArray2<$t>>() {
                let view = a.readonly();
                let view = view.as_array();
                #[allow(clippy::unnecessary_cast)]
                let col = |j: usize| -> Vec<f64> { view.column(j).iter().map(|&v| v as f64).collect() };
                Some((col(0), col(1)))
            } else)* {
                None
            }
        };
    }
    let Some((x, y)) = columns!(f64, f32, i64, i32, i16, i8, u64, u32, u16, u8) else {
        return Ok(None);
    };
    Ok(Some(xy_batch(x, y)?))
}

/// Points from numpy at least this many are split into columns in parallel.
const PARALLEL_POINTS: usize = 1 << 18;

/// The table of non-null `x` and `y` columns.
fn xy_batch(x: Vec<f64>, y: Vec<f64>) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Float64, false),
        Field::new("y", DataType::Float64, false),
    ]));
    let columns: Vec<arrow::array::ArrayRef> = vec![
        Arc::new(arrow::array::Float64Array::from(x)),
        Arc::new(arrow::array::Float64Array::from(y)),
    ];
    let batch =
        RecordBatch::try_new(schema.clone(), columns).map_err(|e| PyPolymatchError(e.into()))?;
    Ok((schema, vec![batch]))
}

/// A bare array (or stream of arrays) as a one-column table; a struct array that is not
/// a GeoArrow type is a table already.
fn one_column(array: AnyArray) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
    let field = array.field()?;
    let reader = array.into_reader()?;
    let chunks = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PyPolymatchError(e.into()))?;
    let is_geoarrow = field
        .metadata()
        .get(EXTENSION_NAME)
        .is_some_and(|e| e.starts_with("geoarrow."));
    if let (DataType::Struct(fields), false) = (field.data_type(), is_geoarrow) {
        let schema = Arc::new(Schema::new_with_metadata(
            fields.clone(),
            field.metadata().clone(),
        ));
        let batches = chunks
            .iter()
            .map(|c| {
                let s: &StructArray = c.as_any().downcast_ref().ok_or_else(|| {
                    PyPolymatchError(polymatch::PolymatchError::InvalidLayout(
                        "a struct stream yielded a non-struct array".into(),
                    ))
                })?;
                RecordBatch::try_new(schema.clone(), s.columns().to_vec())
                    .map_err(|e| PyPolymatchError(e.into()).into())
            })
            .collect::<PyResult<Vec<_>>>()?;
        return Ok((schema, batches));
    }
    let name = if field.name().is_empty() {
        "geometry"
    } else {
        field.name().as_str()
    };
    let column =
        Field::new(name, field.data_type().clone(), true).with_metadata(field.metadata().clone());
    let schema = Arc::new(Schema::new_with_metadata(vec![column], HashMap::new()));
    let batches = chunks
        .into_iter()
        .map(|c| {
            RecordBatch::try_new(schema.clone(), vec![c])
                .map_err(|e| PyPolymatchError(e.into()).into())
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok((schema, batches))
}

/// A column list argument: one name (`keep="id"`) or a sequence of names.
pub struct Columns(pub Vec<String>);

impl<'a, 'py> FromPyObject<'a, 'py> for Columns {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(one) = obj.extract::<String>() {
            return Ok(Self(vec![one]));
        }
        obj.extract::<Vec<String>>().map(Self).map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "expected a column name or a list of column names, got {}",
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })
    }
}

/// A thread-count argument: `None` (the default pool) or 1..=1024.
pub fn threads(threads: Option<i64>) -> PyResult<Option<usize>> {
    match threads {
        None => Ok(None),
        Some(n) if (1..=polymatch::matching::MAX_THREADS as i64).contains(&n) => {
            Ok(Some(n as usize))
        }
        Some(n) => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "threads must be None (one per core) or between 1 and {}, got {n}",
            polymatch::matching::MAX_THREADS
        ))),
    }
}

/// A `metric=` argument: `None` (not given), `"planar"` or `"sphere"`.
///
/// # Errors
/// `ValueError` for anything else.
pub fn parse_metric(metric: Option<&str>) -> PyResult<Option<polymatch::Metric>> {
    metric
        .map(|m| m.parse().map_err(|e| PyPolymatchError(e).into()))
        .transpose()
}

/// Show the warning [`polymatch::sphere::resolve_metric`] gave, if any, as a
/// `UserWarning` (an error under `-W error`).
pub fn warn(py: Python<'_>, warning: Option<String>) -> PyResult<()> {
    if let Some(w) = warning {
        let text = std::ffi::CString::new(w).unwrap_or_default();
        PyErr::warn(
            py,
            &py.get_type::<pyo3::exceptions::PyUserWarning>(),
            &text,
            1,
        )?;
    }
    Ok(())
}

/// The match options from their Python arguments, validated: the one parser of
/// `PolygonIndex.match`, `match_parquet` and the result writer (`predicate` is
/// `"center"`, `"contains"`, `"covers"` or `"dwithin"`; `max_dist` is the center rule's,
/// 10 when `None`, or dwithin's, required, and refused with contains or covers; `rank_by` is `"area"`, `"distance"` or a
/// polygon column; `k` is 1 to `2**32 - 1`; `chunk_size` defaults to
/// [`polymatch::matching::CHUNK`]).
///
/// # Errors
/// `ValueError` for an unknown `predicate` or `how`, a bad `max_dist`, `k` or
/// combination.
#[allow(clippy::too_many_arguments)]
pub fn match_options(
    predicate: &str,
    max_dist: Option<f64>,
    how: &str,
    all_candidates: bool,
    rank_by: &str,
    descending: bool,
    k: i128,
    chunk_size: Option<usize>,
    metric: Option<&str>,
) -> PyResult<polymatch::MatchOptions> {
    let predicate: polymatch::Predicate = predicate.parse().map_err(PyPolymatchError)?;
    let k = match u32::try_from(k) {
        Ok(k) if k >= 1 => k,
        _ => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "k must be between 1 and {} (the rank column is uint32), got {k}",
                u32::MAX
            )))
        }
    };
    let options = polymatch::MatchOptions {
        predicate,
        max_dist: predicate.max_dist(max_dist).map_err(PyPolymatchError)?,
        how: how.parse().map_err(PyPolymatchError)?,
        all_candidates,
        chunk_size: chunk_size.unwrap_or(polymatch::matching::CHUNK),
        rank_by: rank_by.parse().map_err(PyPolymatchError)?,
        descending,
        k,
        metric: parse_metric(metric)?.unwrap_or_default(),
    };
    options.validate().map_err(PyPolymatchError)?;
    Ok(options)
}
