//! `PolygonIndex`: the polygon columns and their spatial index, as a Python class.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arrow::array::{ArrayRef, Float64Array, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema};
use polymatch::io::arrow_ingest::polygons_from_array;
use polymatch::io::arrow_ingest::polygons_from_coords;
use polymatch::io::crs::Crs;
use polymatch::io::schema::{resolve_geometry, Request, Role};
use polymatch::io::{centers_from_batch, polygons_from_batch, Keep, PointSpec};
use polymatch::matcher::{Matcher, PolygonSide};
use polymatch::polygons::PolygonCenters;
use polymatch::sphere::{check_lon_lat, resolve_metric, Edges};
use polymatch::{Metric, Outlines, PolygonColumns, PolymatchError, RankBy, Rankings, SpatialIndex};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple, PyType};
use pyo3_arrow::{PyArray, PyTable};

use crate::crs::{crs_to_py, optional_crs};
use crate::error::PyPolymatchError;
use crate::input::{
    match_options, parse_metric, read_table, threads as check_threads, warn, Columns, Side,
};

/// Why an index has no outlines, and what to do about it.
const NO_OUTLINES: &str = "this index has no outlines (built from centers, or read from bytes \
    without them: to_bytes(outlines=False), or bytes of index format 3 or older, which \
    polymatch wrote before it kept the outlines): build it from the polygons themselves, \
    or re-save it with to_bytes() of this version to keep the outlines";

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
    /// The outlines prepared for the shape rules, on their first use (shared by the
    /// indexes `prepare` derives: same polygons).
    outlines: Arc<OnceLock<Arc<Outlines>>>,
    index: Arc<Rankings>,
    attributes: Option<RecordBatch>,
    crs: Option<Crs>,
}

impl PyPolygonIndex {
    fn new(polygons: PolygonColumns, attributes: Option<RecordBatch>) -> Self {
        Self::from_parts(polygons, attributes, None)
    }

    /// Index `polygons`, keeping their attribute columns and CRS.
    pub fn from_parts(
        polygons: PolygonColumns,
        attributes: Option<RecordBatch>,
        crs: Option<Crs>,
    ) -> Self {
        let index = SpatialIndex::new(&polygons);
        Self {
            polygons: Some(Arc::new(polygons)),
            outlines: Arc::default(),
            index: Arc::new(Rankings::new(Arc::new(index))),
            attributes,
            crs,
        }
    }

    /// The outlines for the shape rules, prepared on the first call (`None`: polygons
    /// known by their centers only).
    ///
    /// # Errors
    /// As [`Outlines::new`].
    pub fn outlines(&self) -> polymatch::Result<Option<&Arc<Outlines>>> {
        let Some(polygons) = &self.polygons else {
            return Ok(None);
        };
        if self.outlines.get().is_none() {
            // Two threads racing here build twice and keep the first.
            let _ = self
                .outlines
                .set(Arc::new(Outlines::new(polygons.clone())?));
        }
        Ok(self.outlines.get())
    }

    /// The core index in its own order (for other binding modules).
    pub fn core(&self) -> &Arc<SpatialIndex> {
        self.index.base()
    }

    /// The index and the orders prepared from it.
    pub fn rankings(&self) -> &Arc<Rankings> {
        &self.index
    }

    /// The polygon attribute columns, if any.
    pub fn attributes(&self) -> Option<&RecordBatch> {
        self.attributes.as_ref()
    }

    /// The CRS the polygons were stated in, if their source said.
    pub fn crs(&self) -> Option<&Crs> {
        self.crs.as_ref()
    }
}

/// Centers given for the sphere must be longitudes/latitudes.
fn check_centers_on_sphere(c: &PolygonCenters) -> polymatch::Result<()> {
    for (row, (&x, &y)) in c.x.iter().zip(c.y.iter()).enumerate() {
        if let Some(why) = check_lon_lat(x, y) {
            return Err(PolymatchError::invalid_geometry(
                row,
                format!("center: {why}"),
            ));
        }
    }
    Ok(())
}

/// Every batch of `data` in one record batch (no copy if there is one).
fn one_batch(py: Python<'_>, data: &Bound<'_, PyAny>, side: Side) -> PyResult<RecordBatch> {
    let (schema, batches) = read_table(py, data, side)?;
    Ok(match batches.len() {
        1 => batches.into_iter().next().expect("one batch"),
        _ => concat_batches(&schema, &batches).map_err(|e| PyPolymatchError(e.into()))?,
    })
}

/// The index and the outlines (if any) of serialised bytes, read without the GIL
/// (rebuilding outlines is O(coordinates), on polymatch's pool).
fn read_bytes(py: Python<'_>, data: &[u8]) -> PyResult<(SpatialIndex, Option<PolygonColumns>)> {
    py.detach(|| crate::pool::run(None, || SpatialIndex::from_bytes_with_polygons(data))?)
        .map_err(|e| PyPolymatchError(e).into())
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
    /// Build an index from a table of polygons.
    ///
    /// Args:
    ///     data: any Arrow table-like object (``__arrow_c_stream__``/``__arrow_c_array__``:
    ///         pyarrow, polars, duckdb, arro3), a geopandas GeoDataFrame or GeoSeries, a
    ///         bare WKB or GeoArrow array, a pandas DataFrame or a polars LazyFrame
    ///         (collected).
    ///     geometry: the geometry column. Default: the declared one (GeoParquet
    ///         metadata, GeoArrow type), else list columns ``x`` and ``y`` (one ring per
    ///         row, the article's layout), else one named ``geometry``, ``geom``, ``wkb``
    ///         or ``wkb_geometry``.
    ///     metric: ``"planar"`` (coordinates in the data's units) or ``"sphere"``
    ///         (longitude/latitude degrees: centers on the sphere, areas in square metres,
    ///         ``max_dist`` and ``distance`` in great-circle metres). Default: planar.
    ///
    /// Returns:
    ///     A PolygonIndex. Every other column is kept as a polygon attribute for
    ///     ``match(..., keep_polygons=[...])``; a CRS stated by GeoArrow or GeoParquet
    ///     metadata is kept and checked against the points'.
    ///
    /// Raises:
    ///     SchemaError: no usable geometry column, or spherical edges.
    ///     InvalidGeometryError: a malformed polygon (the message names the row), or
    ///         with ``metric="sphere"`` a latitude outside [-90, 90] or longitude
    ///         outside [-180, 360].
    ///     ValueError: ``metric="sphere"`` with a projected CRS.
    ///
    /// Warns:
    ///     UserWarning: the CRS is geographic (longitude/latitude, GeoParquet's default
    ///         when a file states none) and ``metric`` was not given: distances and
    ///         areas are then planar degrees.
    #[classmethod]
    #[pyo3(signature = (data, geometry=None, *, metric=None))]
    fn from_arrow(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        geometry: Option<String>,
        metric: Option<&str>,
    ) -> PyResult<Self> {
        let given = parse_metric(metric)?;
        let batch = one_batch(py, data, Side::Polygons)?;
        let (index, warning) = py
            .detach(|| {
                crate::pool::run(None, || {
                    let request = Request {
                        geometry: geometry.as_deref(),
                        ..Request::default()
                    };
                    let crs = resolve_geometry(batch.schema_ref(), Role::Polygons, request)?.crs;
                    let (metric, warning) = resolve_metric(given, crs.as_ref())?;
                    let polygons =
                        polygons_from_batch(&batch, geometry.as_deref())?.with_metric(metric)?;
                    Ok((Self::from_parts(polygons, Some(batch), crs), warning))
                })?
            })
            .map_err(PyPolymatchError)?;
        warn(py, warning)?;
        Ok(index)
    }

    /// Build an index from flat coordinates, one ring per polygon.
    ///
    /// Polygon ``i`` is the ring ``x[offsets[i]:offsets[i+1]]``, ``y[...]``.
    ///
    /// Args:
    ///     x: vertex x coordinates (numpy array, Arrow array or sequence; float64 is
    ///         used in place, other numbers are cast).
    ///     y: vertex y coordinates, as long as ``x``.
    ///     offsets: integers, one more than there are polygons, starting at 0,
    ///         non-decreasing, ending at ``len(x)``.
    ///     metric: ``"planar"`` (the default) or ``"sphere"`` (x is longitude, y latitude,
    ///         in degrees: centers on the sphere, areas in square metres).
    ///
    /// Returns:
    ///     A PolygonIndex without attribute columns.
    ///
    /// Raises:
    ///     SchemaError: bad lengths or offsets. InvalidGeometryError: a bad ring.
    #[classmethod]
    #[pyo3(signature = (x, y, offsets, *, metric=None))]
    fn from_coords(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        offsets: &Bound<'_, PyAny>,
        metric: Option<&str>,
    ) -> PyResult<Self> {
        let metric = parse_metric(metric)?.unwrap_or_default();
        let as_arrow = |a: &Bound<'_, PyAny>, integer: bool| -> PyResult<PyArray> {
            if a.hasattr("__arrow_c_array__")? {
                return a.extract();
            }
            if let Ok(direct) = a.extract::<PyArray>() {
                return Ok(direct); // a contiguous buffer: used in place
            }
            // Lists, strided or non-contiguous arrays: one contiguous copy, in numpy.
            let np = py.import("numpy")?;
            let arr = np.call_method1("asarray", (a,))?;
            let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
            if !matches!(kind.as_str(), "f" | "i" | "u") || (integer && kind == "f") {
                return Err(PyTypeError::new_err(format!(
                    "expected {}, got an array of dtype {}",
                    if integer { "integers" } else { "numbers" },
                    arr.getattr("dtype")?.str()?
                )));
            }
            let arr = np.call_method1("ascontiguousarray", (arr,))?;
            py.import("pyarrow")?
                .call_method1("array", (arr,))?
                .extract()
        };
        let (x, y, offsets) = (
            as_arrow(x, false)?,
            as_arrow(y, false)?,
            as_arrow(offsets, true)?,
        );
        let (x, y, offsets) = (x.into_inner().0, y.into_inner().0, offsets.into_inner().0);
        if !offsets.data_type().is_integer() {
            return Err(PyTypeError::new_err(format!(
                "offsets must be integers, got {}",
                offsets.data_type()
            )));
        }
        py.detach(|| {
            crate::pool::run(None, || {
                let polygons = polygons_from_coords(&x, &y, &offsets)?.with_metric(metric)?;
                Ok(Self::new(polygons, None))
            })?
        })
        .map_err(|e| PyPolymatchError(e).into())
    }

    /// Rebuild an index from ``to_bytes()`` output: the match-ready index and, if the
    /// bytes carry them, the polygons' outlines (the shape predicates need them); no
    /// attribute columns.
    ///
    /// Bytes of an index without outlines (``from_centers``, ``to_bytes(outlines=False)``)
    /// or written by polymatch before index format 4 load too, and match by center only.
    ///
    /// Args:
    ///     data: what ``to_bytes()`` returned.
    ///     crs: the CRS to carry (``index.crs`` of the original: a string such as
    ///         ``"EPSG:32633"`` or a PROJJSON dict), checked against the points' CRS.
    ///
    /// Raises:
    ///     PolymatchError: the bytes are truncated, corrupt (checksum), of an unknown
    ///         format, or inconsistent (outlines that do not give the stored centers and
    ///         areas).
    #[classmethod]
    #[pyo3(signature = (data, crs=None))]
    fn from_bytes(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        data: &[u8],
        crs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let crs = optional_crs(crs)?;
        let (index, polygons) = read_bytes(py, data)?;
        Ok(Self {
            polygons: polygons.map(Arc::new),
            outlines: Arc::default(),
            index: Arc::new(Rankings::new(Arc::new(index))),
            attributes: None,
            crs,
        })
    }

    /// Build an index from precomputed centers and areas: the table ``to_arrow()``
    /// returns, or a share of it (the tiles of ``polymatch.dask``'s partitioned join).
    ///
    /// Args:
    ///     data: an Arrow table-like object with float columns ``center_x``,
    ///         ``center_y`` and ``area``; a row with a null or NaN in any of them is an
    ///         unmatchable polygon. Every column is kept as a polygon attribute.
    ///     crs: the CRS to carry (a string or a PROJJSON dict), checked against the
    ///         points' CRS.
    ///     center_x, center_y, area: the names of those columns, if not these.
    ///     metric: ``"planar"`` (the default) or ``"sphere"``: the centers are
    ///         longitude/latitude degrees and the areas square metres (what ``to_arrow()``
    ///         of an index on the sphere gives).
    ///
    /// Returns:
    ///     A PolygonIndex without outlines; its matches are those of the polygons the
    ///     centers and areas came from.
    ///
    /// Raises:
    ///     SchemaError: a missing or non-numeric column.
    ///     InvalidGeometryError: an infinite center or area, or a negative area (names
    ///         the row).
    #[classmethod]
    #[pyo3(signature = (data, crs=None, *, center_x="center_x", center_y="center_y", area="area", metric=None))]
    #[allow(clippy::too_many_arguments)]
    fn from_centers(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        crs: Option<&Bound<'_, PyAny>>,
        center_x: &str,
        center_y: &str,
        area: &str,
        metric: Option<&str>,
    ) -> PyResult<Self> {
        let metric = parse_metric(metric)?.unwrap_or_default();
        let crs = optional_crs(crs)?;
        let batch = one_batch(py, data, Side::Polygons)?;
        let index = py
            .detach(|| {
                crate::pool::run(None, || {
                    centers_from_batch(&batch, [center_x, center_y, area]).and_then(|mut c| {
                        if metric == Metric::Sphere {
                            check_centers_on_sphere(&c)?;
                        }
                        c.metric = metric;
                        Ok(SpatialIndex::from_polygon_centers(&c))
                    })
                })?
            })
            .map_err(PyPolymatchError)?;
        Ok(Self {
            polygons: None,
            outlines: Arc::default(),
            index: Arc::new(Rankings::new(Arc::new(index))),
            attributes: Some(batch),
            crs,
        })
    }

    /// Unpickle: the index from bytes (with the outlines if they carry them: index
    /// format 4), with its CRS, attribute columns and, for bytes without outlines, the
    /// outlines as a one-column table of GeoArrow multipolygons (what pickles written
    /// before index format 4 carry; the first pickles of polymatch 0.1 have neither: they
    /// match by center only).
    #[classmethod]
    #[pyo3(signature = (data, crs, attributes, outlines=None))]
    fn _from_pickle(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        data: &[u8],
        crs: Option<&Bound<'_, PyAny>>,
        attributes: Option<&Bound<'_, PyAny>>,
        outlines: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let crs = optional_crs(crs)?;
        let attributes = match attributes {
            Some(a) if !a.is_none() => Some(one_batch(py, a, Side::Polygons)?),
            _ => None,
        };
        let (index, in_bytes) = read_bytes(py, data)?;
        if let Some(a) = &attributes {
            if a.num_rows() != index.rows() {
                return Err(PyValueError::new_err(format!(
                    "pickled attributes have {} rows, the index {}",
                    a.num_rows(),
                    index.rows()
                )));
            }
        }
        let polygons = match outlines {
            _ if in_bytes.is_some() => in_bytes.map(Arc::new),
            Some(o) if !o.is_none() => {
                let batch = one_batch(py, o, Side::Polygons)?;
                let schema = batch.schema();
                let (field, column) = match (schema.fields().first(), batch.columns().first()) {
                    (Some(f), Some(c)) => (f.clone(), c.clone()),
                    _ => return Err(PyValueError::new_err("pickled outlines have no column")),
                };
                let metric = index.metric();
                let polygons = py
                    .detach(|| {
                        crate::pool::run(None, || {
                            polygons_from_array(&field, &column)?.with_metric(metric)
                        })?
                    })
                    .map_err(PyPolymatchError)?;
                if polygons.len() != index.rows() {
                    return Err(PyValueError::new_err(format!(
                        "pickled outlines have {} rows, the index {}",
                        polygons.len(),
                        index.rows()
                    )));
                }
                Some(Arc::new(polygons))
            }
            _ => None,
        };
        Ok(Self {
            polygons,
            outlines: Arc::default(),
            index: Arc::new(Rankings::new(Arc::new(index))),
            attributes,
            crs,
        })
    }

    /// The polygon attribute columns (every column of the table the index was built
    /// from) as a ``pyarrow.Table`` (no copy), or None for an index from coordinates or
    /// bytes.
    #[getter(attributes)]
    fn py_attributes<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match &self.attributes {
            None => Ok(None),
            Some(batch) => {
                let schema = batch.schema();
                Ok(Some(
                    PyTable::try_new(vec![batch.clone()], schema)?.into_pyarrow(py)?,
                ))
            }
        }
    }

    /// The CRS the polygons were stated in (a string or a PROJJSON dict), or None.
    #[getter(crs)]
    fn py_crs<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        crs_to_py(py, self.crs.as_ref())
    }

    /// The index as bytes: the match-ready index (ranked rows, centers and areas, the
    /// tree order and the rank order, 32 bytes per polygon; the tree's nodes are
    /// recomputed on load) and the polygons' outlines (their coordinates and offsets, 16
    /// bytes per vertex), which the shape predicates need. Not the attribute columns or
    /// the CRS (pass it to ``from_bytes``).
    ///
    /// ``PolygonIndex.from_bytes`` reads it back; pickling uses it and adds the CRS and
    /// the attribute columns. An index without outlines (``from_centers``) writes none.
    ///
    /// Args:
    ///     outlines: write the outlines. ``False`` ships only what the center rule needs
    ///         (an index read back from it refuses the shape predicates).
    #[pyo3(signature = (*, outlines=true))]
    fn to_bytes<'py>(&self, py: Python<'py>, outlines: bool) -> PyResult<Bound<'py, PyBytes>> {
        let polygons = self.polygons.as_deref().filter(|_| outlines);
        let bytes = py
            .detach(|| self.core().to_bytes_with_polygons(polygons))
            .map_err(PyPolymatchError)?;
        Ok(PyBytes::new(py, &bytes))
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let from_pickle = py.get_type::<Self>().getattr("_from_pickle")?;
        // the outlines travel in the bytes (index format 4)
        let bytes = slf.get().to_bytes(py, true)?.into_any();
        let crs = match slf.get().py_crs(py)? {
            Some(c) => c,
            None => py.None().into_bound(py),
        };
        let attributes = match &slf.get().attributes {
            Some(batch) => {
                let schema = batch.schema();
                PyTable::try_new(vec![batch.clone()], schema)?.into_pyarrow(py)?
            }
            None => py.None().into_bound(py),
        };
        Ok((
            from_pickle,
            PyTuple::new(py, [bytes, crs, attributes, py.None().into_bound(py)])?,
        ))
    }

    /// Prepare the index for a rank rule ahead of matching, and return an index whose
    /// own order it is.
    ///
    /// ``match(..., rank_by=column)`` prepares the order on first use and caches it on
    /// this index (up to 8 orders), so calling this is never needed for speed; it is for
    /// shipping: ``index.prepare("pop").to_bytes()`` carries the order, so an index read
    /// back with ``from_bytes`` (on a Dask worker, say) can match ``rank_by="pop"``
    /// without the column. Preparing costs O(polygons) plus a sort, not an index build.
    ///
    /// Args:
    ///     rank_by: ``"area"`` or a numeric polygon column (``"distance"`` needs no
    ///         preparation: the index itself is returned).
    ///     descending: the largest value ranks first.
    ///
    /// Returns:
    ///     A PolygonIndex with the same polygons, attributes and CRS.
    ///
    /// Raises:
    ///     SchemaError: the column is missing or not numeric.
    #[pyo3(signature = (rank_by="area", descending=false))]
    fn prepare(
        slf: &Bound<'_, Self>,
        py: Python<'_>,
        rank_by: &str,
        descending: bool,
    ) -> PyResult<Py<Self>> {
        let this = slf.get();
        let rule = rank_by.parse::<RankBy>().map_err(PyPolymatchError)?;
        let Some(order) = rule.order(descending) else {
            return Ok(slf.clone().unbind()); // by distance: any order serves
        };
        let index = py
            .detach(|| crate::pool::run(None, || this.index.get(&order, this.attributes.as_ref()))?)
            .map_err(PyPolymatchError)?;
        Py::new(
            py,
            Self {
                polygons: this.polygons.clone(),
                outlines: this.outlines.clone(),
                index: Arc::new(Rankings::new(index)),
                attributes: this.attributes.clone(),
                crs: this.crs.clone(),
            },
        )
    }

    /// The index's own order as ``(rank_by, descending)``: ``("area", False)`` unless it
    /// came from ``prepare`` (or from bytes of a prepared index).
    #[getter]
    fn rank_order(&self) -> (String, bool) {
        let order = self.core().order();
        (order.rank_by().to_string(), order.descending())
    }

    /// The index is immutable: a copy is the index itself.
    fn __copy__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The index is immutable: a deep copy is the index itself.
    fn __deepcopy__(slf: Py<Self>, _memo: &Bound<'_, PyAny>) -> Py<Self> {
        slf
    }

    fn __len__(&self) -> usize {
        self.core().rows()
    }

    fn __repr__(&self) -> String {
        format!(
            "PolygonIndex({} polygons, {} matchable{}{}{})",
            self.core().rows(),
            self.core().matchable(),
            if self.polygons.is_some() {
                ""
            } else {
                ", no geometry"
            },
            match self.core().metric() {
                Metric::Planar => "",
                Metric::Sphere => ", metric=\"sphere\"",
            },
            match self.edges() {
                "spherical" => ", edges=\"spherical\"",
                _ => "",
            }
        )
    }

    /// What the centers, areas and distances are measured in: ``"planar"``, or
    /// ``"sphere"`` (longitude/latitude degrees, metres, square metres).
    #[getter]
    fn metric(&self) -> &'static str {
        self.core().metric().as_str()
    }

    /// How the polygons' edges run between their vertices, as their data states it:
    /// ``"planar"`` (straight in the coordinates; also for an index without outlines)
    /// or ``"spherical"`` (great-circle arcs: GeoParquet's or GeoArrow's
    /// ``"edges": "spherical"``, matched with ``metric="sphere"``).
    #[getter]
    fn edges(&self) -> &'static str {
        self.polygons
            .as_ref()
            .map_or("planar", |p| p.edges().as_str())
    }

    /// The polygon columns as a `pyarrow.Table`: `geometry` (GeoArrow multipolygon),
    /// `center_x`, `center_y`, `area` (null for null or empty polygons). An index
    /// without outlines (``from_centers``, bytes without them) has no geometry column.
    fn to_arrow<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let batch = match &self.polygons {
            Some(p) => p.to_record_batch().map_err(PyPolymatchError)?,
            None => {
                let (cx, cy, area) = self.core().derived_columns();
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

    /// The closed bounds of each polygon's vertices as a ``pyarrow.Table`` with float64
    /// columns ``xmin``, ``ymin``, ``xmax``, ``ymax`` (null for a row that cannot match).
    /// For polygons with spherical edges, the bounds of their arcs (which bulge towards
    /// the pole between the vertices).
    ///
    /// Args:
    ///     reach: on the sphere, metres (``> 0``): each box then holds every point
    ///         closer than ``reach`` to the polygon under ``predicate="dwithin"`` (its
    ///         arcs' cap widened by ``reach``, longitudes in [-180, 180], every
    ///         longitude where it reaches a pole or crosses the antimeridian).
    ///
    /// Raises:
    ///     ValueError: the index has no outlines (``from_centers``, or bytes without
    ///         them), or ``reach`` on a planar index or not ``> 0`` and finite.
    #[pyo3(signature = (reach=None))]
    fn bounds<'py>(&self, py: Python<'py>, reach: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let Some(polygons) = &self.polygons else {
            return Err(PyValueError::new_err(NO_OUTLINES));
        };
        if let Some(r) = reach {
            if self.core().metric() != polymatch::sphere::Metric::Sphere {
                return Err(PyValueError::new_err(
                    "bounds(reach=) is for metric=\"sphere\" (metres); widen a planar box \
                     by the reach itself",
                ));
            }
            if !(r.is_finite() && r > 0.0) {
                return Err(PyValueError::new_err(format!(
                    "reach must be > 0 and finite, got {r}"
                )));
            }
        }
        let boxes = py.detach(|| match reach {
            Some(r) => polymatch::shape::arcs::reach_bounds(polygons, r),
            // great-circle edges can leave the vertices' box: the box of their arcs
            None if polygons.edges() == Edges::Spherical => {
                polymatch::shape::arcs::reach_bounds(polygons, 0.0)
            }
            None => polygons.bounds(),
        });
        let column = |k: usize| -> ArrayRef {
            Arc::new(Float64Array::from_iter(
                boxes.iter().map(|b| (!b[k].is_nan()).then_some(b[k])),
            ))
        };
        let names = ["xmin", "ymin", "xmax", "ymax"];
        let schema = Schema::new(
            names
                .iter()
                .map(|n| Field::new(*n, DataType::Float64, true))
                .collect::<Vec<_>>(),
        );
        let batch = RecordBatch::try_new(Arc::new(schema), (0..4).map(column).collect())
            .map_err(|e| PyPolymatchError(e.into()))?;
        let schema = batch.schema();
        PyTable::try_new(vec![batch], schema)?.into_pyarrow(py)
    }

    /// Match points to polygons (docs/SPEC.md is the exact rule).
    ///
    /// For each point the candidates are the polygons whose center is at distance
    /// ``< max_dist`` (``predicate="center"``, the article's rule), that contain or
    /// cover the point (``predicate="contains"``/``"covers"``), or whose outline is
    /// closer than ``max_dist`` (``predicate="dwithin"``), decided exactly on the
    /// outlines; the match is the best candidate by ``rank_by`` (default: the smallest
    /// area, the most specific region), the lowest polygon row on ties.
    ///
    /// Args:
    ///     points: a pyarrow/polars/duckdb table, a pandas DataFrame, a geopandas
    ///         GeoDataFrame or GeoSeries of points, a numpy ``(N, 2)`` array, a bare WKB
    ///         or GeoArrow point array, a polars LazyFrame (collected).
    ///     max_dist: the radius, ``> 0``: of the center rule (default 10) and of
    ///         ``"dwithin"`` (required); ``inf`` makes every polygon a candidate.
    ///         ``"contains"`` and ``"covers"`` take none.
    ///     how: ``"inner"`` keeps matched points only; ``"left"`` keeps every point,
    ///         with nulls where there is no match (with ``all_candidates``, one null row
    ///         for a point without candidates).
    ///     all_candidates: one row per (point, candidate) pair, ordered by point then
    ///         polygon row, instead of the best match (no rank rule applies).
    ///     predicate: ``"center"`` (default), ``"contains"`` (the point is in the
    ///         polygon's interior; on its boundary is not contained) or ``"covers"``
    ///         (interior or boundary), as GEOS/shapely define them. The outlines are
    ///         prepared (edge indexes for large parts) on first use and kept; an index
    ///         without outlines (``from_centers``, bytes without them) refuses them. The
    ///         ``distance`` column is then 0 (the point is in or on the polygon).
    ///         ``"dwithin"``: the distance from the point to the polygon (0 in or on
    ///         it) is ``< max_dist``, strictly and exactly; the ``distance`` column is
    ///         that distance. With ``rank_by="distance"`` and ``max_dist=inf``: the
    ///         nearest polygon (``k`` nearest) to every point.
    ///     rank_by: what makes a candidate the best: ``"area"`` (the default),
    ///         ``"distance"`` (the ``distance`` column: to the center for the center
    ///         rule, to the outline for the shape rules; with ``max_dist=inf``, plain
    ///         nearest) or the name of a numeric polygon attribute column (integer,
    ///         float, decimal, date, time, timestamp, duration; nulls and NaN rank after
    ///         every value). A column order is prepared on first use and cached on the
    ///         index (see ``prepare``); area and distance need no preparation.
    ///     descending: the largest area, distance or value is best.
    ///     k: the ``k`` best candidates of each point, best first, one row each; when
    ///         ``k > 1`` a ``rank`` column (uint32, 1-based) is added. Fewer rows for a
    ///         point with fewer candidates.
    ///     x: the points' x column (with ``y``); named columns win over detection.
    ///     y: the points' y column.
    ///     geometry: the points' geometry column (WKB or GeoArrow point). Default: the
    ///         declared one (GeoParquet metadata, GeoArrow type), else ``x``/``y``, else
    ///         one named ``geometry``/``geom``/``wkb``/``wkb_geometry``.
    ///     keep: point column(s) to carry into the result (a name or a list).
    ///     keep_polygons: polygon attribute column(s) to carry into the result. A kept
    ///         name that another output column has gets the suffix ``_left`` (points)
    ///         or ``_right`` (polygons); kept geometry columns are described in the
    ///         result's ``geo`` schema metadata.
    ///     allow_crs_mismatch: match even if the points and the polygons state
    ///         different CRS (an unstated CRS is never a mismatch).
    ///     threads: rayon threads, 1 to 1024; default: ``RAYON_NUM_THREADS``, else one
    ///         per core. Answers do not depend on it.
    ///     chunk_size: points per parallel task (answers do not depend on it).
    ///
    /// Returns:
    ///     A ``pyarrow.Table`` built on Rust's buffers (no copy) with ``point_index``
    ///     (uint64, the point's row position), ``polygon_index`` (uint32, null when
    ///     unmatched), ``distance``, ``area``, ``rank`` (when ``k > 1``), then the kept
    ///     columns.
    ///
    /// Raises:
    ///     SchemaError: a missing or unusable column (``rank_by`` included), or
    ///         different CRS.
    ///     InvalidGeometryError: a malformed point geometry (names the row).
    ///     ValueError: ``max_dist <= 0`` or NaN, ``max_dist`` with ``"contains"`` or
    ///         ``"covers"`` or missing with ``"dwithin"``, an unknown ``how``, bad ``threads``,
    ///         ``k`` outside 1 to ``2**32 - 1``, a rank rule with ``all_candidates``.
    #[pyo3(name = "match", signature = (points, max_dist=None, how="inner", all_candidates=false, *, predicate="center", rank_by="area", descending=false, k=1, x=None, y=None, geometry=None, keep=None, keep_polygons=None, allow_crs_mismatch=false, threads=None, chunk_size=None, metric=None))]
    #[allow(clippy::too_many_arguments)]
    fn match_<'py>(
        &self,
        py: Python<'py>,
        points: &Bound<'py, PyAny>,
        max_dist: Option<f64>,
        how: &str,
        all_candidates: bool,
        predicate: &str,
        rank_by: &str,
        descending: bool,
        k: i128,
        x: Option<String>,
        y: Option<String>,
        geometry: Option<String>,
        keep: Option<Columns>,
        keep_polygons: Option<Columns>,
        allow_crs_mismatch: bool,
        threads: Option<i64>,
        chunk_size: Option<usize>,
        metric: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut options = match_options(
            predicate,
            max_dist,
            how,
            all_candidates,
            rank_by,
            descending,
            k,
            chunk_size,
            metric,
        )?;
        if metric.is_none() {
            options.metric = self.core().metric();
        }
        let threads = check_threads(threads)?;
        let outlines = match options.predicate.shape_rule() {
            Some(_) => py.detach(|| self.outlines()).map_err(PyPolymatchError)?,
            None => None,
        };
        let (schema, batches) = read_table(py, points, Side::Points)?;
        let total: usize = batches.iter().map(|b| b.num_rows()).sum();
        let keep_points = keep.map(|k| k.0).unwrap_or_default();
        let keep_polygons = keep_polygons.map(|k| k.0).unwrap_or_default();
        let matcher = Matcher {
            polygons: PolygonSide {
                index: &self.index,
                attributes: self.attributes.as_ref(),
                crs: self.crs.as_ref(),
                outlines,
            },
            options,
            keep: Keep {
                points: &keep_points,
                polygons: &keep_polygons,
            },
            allow_crs_mismatch,
        };
        let spec = PointSpec {
            x: x.as_deref(),
            y: y.as_deref(),
            geometry: geometry.as_deref(),
        };
        let bound = matcher.bind(&schema, spec).map_err(PyPolymatchError)?;
        let chunk = bound.options().chunk_size;
        let results = run_detached(py, total, |cancel| {
            crate::pool::run_sized(threads, total, chunk, || {
                bound.match_all(&batches, Some(cancel))
            })?
        })?;
        PyTable::try_new(results, bound.schema().clone())?.into_pyarrow(py)
    }
}
