//! `PolygonIndex`: the polygon columns and their spatial index, as a Python class.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch};
use arrow::buffer::ScalarBuffer;
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use polymatch::io::arrow_ingest::{numbers, validate};
use polymatch::io::{append_kept_columns, points_from_batch, polygons_from_batch, Keep, PointSpec};
use polymatch::matching::result_schema;
use polymatch::polygons::checked_offsets;
use polymatch::{
    match_points, How, MatchOptions, PointSlices, PolygonColumns, PolymatchError, SpatialIndex,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple, PyType};
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::{PyArray, PyTable};

use crate::error::{PyPmResult, PyPolymatchError, SchemaError};

/// Above this many points a match runs on a worker thread while the calling thread
/// watches for Ctrl-C; below it, the thread hand-off would cost more than the match.
const INTERRUPTIBLE_POINTS: usize = 1 << 16;

/// Polygons prepared for matching: their columns (with exact centers and areas) and a
/// spatial index over the centers. Immutable and thread-safe.
///
/// Build it with `PolygonIndex.from_arrow(...)` or `PolygonIndex.from_coords(...)`, then
/// call `match(points, max_dist=...)` as often as you like.
#[pyclass(frozen, module = "polymatch._core", name = "PolygonIndex")]
pub struct PyPolygonIndex {
    polygons: Option<Arc<PolygonColumns>>,
    index: Arc<SpatialIndex>,
    attributes: Option<RecordBatch>,
    crs: Option<serde_json::Value>,
}

impl PyPolygonIndex {
    fn new(polygons: PolygonColumns, attributes: Option<RecordBatch>) -> Self {
        Self::from_parts(polygons, attributes, None)
    }

    /// Index `polygons`, keeping their attribute columns and CRS.
    pub fn from_parts(
        polygons: PolygonColumns,
        attributes: Option<RecordBatch>,
        crs: Option<serde_json::Value>,
    ) -> Self {
        let index = SpatialIndex::new(&polygons);
        Self {
            polygons: Some(Arc::new(polygons)),
            index: Arc::new(index),
            attributes,
            crs,
        }
    }

    /// The core index (for other binding modules).
    pub fn core(&self) -> &Arc<SpatialIndex> {
        &self.index
    }

    /// The polygon attribute columns, if any.
    pub fn attributes(&self) -> Option<&RecordBatch> {
        self.attributes.as_ref()
    }

    /// The CRS the polygons came with, if a file said.
    pub fn crs(&self) -> Option<&serde_json::Value> {
        self.crs.as_ref()
    }
}

/// Every batch of an Arrow stream, each checked to be a well-formed Arrow batch: data
/// that crossed the C data interface is not validated by the import, and a forged or
/// corrupt array (offsets out of bounds or decreasing, say) must be refused, not read.
pub fn read_batches(data: AnyRecordBatch) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
    let reader = data.into_reader()?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PyPolymatchError(e.into()))?;
    for batch in &batches {
        for (field, column) in batch.schema_ref().fields().iter().zip(batch.columns()) {
            validate(column, field.name()).map_err(PyPolymatchError)?;
        }
    }
    Ok((schema, batches))
}

/// Read every batch of an Arrow stream into one record batch (no copy if there is one).
fn one_batch(data: AnyRecordBatch) -> PyResult<RecordBatch> {
    let (schema, batches) = read_batches(data)?;
    Ok(match batches.len() {
        1 => batches.into_iter().next().expect("one batch"),
        _ => concat_batches(&schema, &batches).map_err(|e| PyPolymatchError(e.into()))?,
    })
}

/// Run `work` without the GIL. Large jobs run on a scoped worker thread while this
/// thread checks for signals every 50 ms: Ctrl-C sets the cancel flag, the kernel stops
/// at its next chunk, and the KeyboardInterrupt propagates.
pub fn run_detached<T: Send>(
    py: Python<'_>,
    size: usize,
    work: impl FnOnce(&AtomicBool) -> polymatch::Result<T> + Send,
) -> PyResult<T> {
    let cancel = AtomicBool::new(false);
    if size < INTERRUPTIBLE_POINTS {
        return py
            .detach(|| work(&cancel))
            .map_err(|e| PyPolymatchError(e).into());
    }
    py.detach(|| {
        std::thread::scope(|s| {
            let (tx, rx) = mpsc::channel();
            let cancel = &cancel;
            s.spawn(move || {
                let _ = tx.send(work(cancel));
            });
            let mut interrupt: Option<PyErr> = None;
            loop {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(result) => {
                        return match (result, interrupt) {
                            (Err(PolymatchError::Cancelled), Some(err)) => Err(err),
                            (result, _) => result.map_err(|e| PyPolymatchError(e).into()),
                        };
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if interrupt.is_none() {
                            if let Err(err) = Python::attach(|py| py.check_signals()) {
                                cancel.store(true, Ordering::Relaxed);
                                interrupt = Some(err);
                            }
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        return Err(PyValueError::new_err(
                            "polymatch worker thread ended without a result",
                        ));
                    }
                }
            }
        })
    })
}

#[pymethods]
impl PyPolygonIndex {
    /// Build an index from Arrow data: any object with `__arrow_c_stream__` or
    /// `__arrow_c_array__` (pyarrow Table/RecordBatch, polars DataFrame, geopandas'
    /// `to_arrow()`, duckdb results).
    ///
    /// The geometry column is `geometry` if given, else the one tagged with GeoArrow
    /// metadata, else one named `geometry`/`geom`/`wkb`/`wkb_geometry`, else list
    /// columns `x` and `y` (one ring per row, the article's layout). The other columns
    /// are kept as polygon attributes for `match(..., keep_polygons=[...])`.
    #[classmethod]
    #[pyo3(signature = (data, geometry=None))]
    fn from_arrow(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        data: AnyRecordBatch,
        geometry: Option<String>,
    ) -> PyResult<Self> {
        let batch = one_batch(data)?;
        py.detach(|| {
            crate::pool::run(None, || {
                let polygons = polygons_from_batch(&batch, geometry.as_deref())?;
                Ok(Self::new(polygons, Some(batch)))
            })?
        })
        .map_err(|e| PyPolymatchError(e).into())
    }

    /// Build an index from flat coordinates: polygon `i` is the ring
    /// `x[offsets[i]:offsets[i+1]]`, `y[...]` (`offsets` has one more entry than there
    /// are polygons). Numpy arrays and Arrow arrays are accepted; float64 is used in place.
    #[classmethod]
    fn from_coords(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        x: PyArray,
        y: PyArray,
        offsets: PyArray,
    ) -> PyResult<Self> {
        let values = |a: PyArray, name: &str| -> PyPmResult<ScalarBuffer<f64>> {
            let (array, _) = a.into_inner();
            validate(&array, name)?;
            if array.null_count() > 0 {
                return Err(
                    PolymatchError::InvalidLayout(format!("{name} has null values")).into(),
                );
            }
            Ok(numbers(&array, name)?)
        };
        let (xs, ys) = (values(x, "x")?, values(y, "y")?);
        let (offsets, _) = offsets.into_inner();
        validate(&offsets, "offsets").map_err(PyPolymatchError)?;
        if offsets.null_count() > 0 {
            return Err(PyPolymatchError(PolymatchError::InvalidLayout(
                "offsets has null values".into(),
            ))
            .into());
        }
        if !offsets.data_type().is_integer() {
            return Err(PyTypeError::new_err(format!(
                "offsets must be integers, got {}",
                offsets.data_type()
            )));
        }
        let offsets = arrow::compute::cast(&offsets, &DataType::Int64)
            .map_err(|e| PyPolymatchError(e.into()))?;
        let offsets = checked_offsets(
            offsets.as_primitive::<Int64Type>().values().to_vec(),
            "polygon",
        )
        .map_err(PyPolymatchError)?;
        py.detach(|| {
            crate::pool::run(None, || {
                let polygons = PolygonColumns::from_rings(xs, ys, offsets, None)?;
                Ok(Self::new(polygons, None))
            })?
        })
        .map_err(|e| PyPolymatchError(e).into())
    }

    /// Rebuild an index from `to_bytes()` output.
    #[classmethod]
    fn from_bytes(_cls: &Bound<'_, PyType>, data: &[u8]) -> PyResult<Self> {
        let index = SpatialIndex::from_bytes(data).map_err(PyPolymatchError)?;
        Ok(Self {
            polygons: None,
            index: Arc::new(index),
            attributes: None,
            crs: None,
        })
    }

    /// The match-ready index as bytes: centers, areas and the tree (not the polygon
    /// outlines or attributes). `PolygonIndex.from_bytes` reads it back; pickling uses it.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let bytes = py.detach(|| self.index.to_bytes());
        PyBytes::new(py, &bytes)
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let from_bytes = py.get_type::<Self>().getattr("from_bytes")?;
        let bytes = slf.get().to_bytes(py);
        Ok((from_bytes, PyTuple::new(py, [bytes])?))
    }

    fn __len__(&self) -> usize {
        self.index.rows()
    }

    fn __repr__(&self) -> String {
        format!(
            "PolygonIndex({} polygons, {} matchable{})",
            self.index.rows(),
            self.index.matchable(),
            if self.polygons.is_some() {
                ""
            } else {
                ", no geometry"
            }
        )
    }

    /// The polygon columns as a `pyarrow.Table`: `geometry` (GeoArrow multipolygon),
    /// `center_x`, `center_y`, `area` (null for null or empty polygons). An index read
    /// from bytes has no geometry column.
    fn to_arrow<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let batch = match &self.polygons {
            Some(p) => p.to_record_batch().map_err(PyPolymatchError)?,
            None => {
                let (cx, cy, area) = self.index.derived_columns();
                let col = |v: Vec<f64>| -> ArrayRef {
                    let a = Float64Array::from(v);
                    let nulls = arrow::buffer::NullBuffer::from(
                        a.values().iter().map(|v| !v.is_nan()).collect::<Vec<_>>(),
                    );
                    Arc::new(Float64Array::new(a.values().clone(), Some(nulls)))
                };
                let schema = Schema::new(vec![
                    Field::new("center_x", DataType::Float64, true),
                    Field::new("center_y", DataType::Float64, true),
                    Field::new("area", DataType::Float64, true),
                ]);
                RecordBatch::try_new(Arc::new(schema), vec![col(cx), col(cy), col(area)])
                    .map_err(|e| PyPolymatchError(e.into()))?
            }
        };
        let schema = batch.schema();
        PyTable::try_new(vec![batch], schema)?.into_pyarrow(py)
    }

    /// Match points to polygons (see the package docs and SPEC.md for the exact rule).
    ///
    /// Returns a `pyarrow.Table` with `point_index`, `polygon_index`, `distance`, `area`
    /// (plus the kept columns), one row per matched point (`how="inner"`), per point
    /// (`how="left"`), or per (point, candidate) pair (`all_candidates=True`).
    #[pyo3(name = "match", signature = (points, max_dist=10.0, how="inner", all_candidates=false, *, x=None, y=None, geometry=None, keep=None, keep_polygons=None, threads=None, chunk_size=None))]
    #[allow(clippy::too_many_arguments)]
    fn match_<'py>(
        &self,
        py: Python<'py>,
        points: &Bound<'py, PyAny>,
        max_dist: f64,
        how: &str,
        all_candidates: bool,
        x: Option<String>,
        y: Option<String>,
        geometry: Option<String>,
        keep: Option<Vec<String>>,
        keep_polygons: Option<Vec<String>>,
        threads: Option<usize>,
        chunk_size: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let options = MatchOptions {
            max_dist,
            how: how.parse::<How>().map_err(PyPolymatchError)?,
            all_candidates,
            chunk_size: chunk_size.unwrap_or(polymatch::matching::CHUNK),
        };
        options.validate().map_err(PyPolymatchError)?;
        let arrow_points =
            if points.hasattr("__arrow_c_stream__")? || points.hasattr("__arrow_c_array__")? {
                points.clone()
            } else {
                py.import("polymatch._convert")?
                    .call_method1("points_to_arrow", (points,))?
            };
        let data: AnyRecordBatch = arrow_points.extract()?;
        let (_, batches) = read_batches(data)?;
        let total: usize = batches.iter().map(|b| b.num_rows()).sum();
        let keep_points = keep.unwrap_or_default();
        let keep_polygons = keep_polygons.unwrap_or_default();
        let spec = PointSpec {
            x: x.as_deref(),
            y: y.as_deref(),
            geometry: geometry.as_deref(),
        };
        let index = &self.index;
        let attributes = self.attributes.as_ref();
        let results = run_detached(py, total, |cancel| {
            crate::pool::run(threads, || -> polymatch::Result<Vec<RecordBatch>> {
                let mut first = 0u64;
                let mut out = Vec::with_capacity(batches.len());
                for batch in &batches {
                    let cols = points_from_batch(batch, spec)?;
                    let slices = PointSlices::new(&cols.x, &cols.y, cols.nulls.as_ref())?;
                    let result = match_points(index, slices, &options, first, Some(cancel))?;
                    let keep = Keep {
                        points: &keep_points,
                        polygons: &keep_polygons,
                    };
                    out.push(append_kept_columns(
                        result, batch, first, attributes, &keep,
                    )?);
                    first += batch.num_rows() as u64;
                }
                Ok(out)
            })?
        })?;
        let schema: SchemaRef = match results.first() {
            Some(b) => b.schema(),
            None if keep_points.is_empty() && keep_polygons.is_empty() => result_schema(),
            None => {
                return Err(SchemaError::new_err(
                    "cannot keep columns from an empty point stream (no batches)",
                ))
            }
        };
        PyTable::try_new(results, schema)?.into_pyarrow(py)
    }
}
