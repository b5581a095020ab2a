//! The seed article's `Polygon` and matching functions, native, for `polymatch.compat`.
//!
//! The functions take and return the caller's own Python objects (the very same
//! `Polygon`s, subclasses included, and the very same points). Centers and areas are
//! SPEC.md's exact ones; a subclass that overrides `area()` is asked for its own area.

use std::sync::Arc;

use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use polymatch::index::Within;
use polymatch::matching::check_max_dist;
use polymatch::polygons::ring_center_area;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple, PyType};

use crate::error::PyPolymatchError;

/// A polygon: one open ring of vertices `x`, `y` (numpy float64 arrays), with its
/// center (vertex mean) and area (shoelace) computed exactly once, at construction.
///
/// Subclass it freely (`class Polygon(compat.Polygon): ...`), as the article's final
/// code does.
#[pyclass(frozen, subclass, module = "polymatch._core", name = "Polygon")]
pub struct PyPolygon {
    x: Arc<[f64]>,
    y: Arc<[f64]>,
    center: (f64, f64),
    area: f64,
}

fn as_f64_vec(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<f64>> {
    let np = obj.py().import("numpy")?;
    let not_1d =
        || PyTypeError::new_err(format!("Polygon {name} must be a 1-D sequence of numbers"));
    // ascontiguousarray would turn a scalar or None into a 1-element array
    if np.call_method1("ndim", (obj,))?.extract::<usize>()? != 1 {
        return Err(not_1d());
    }
    let arr = np.call_method1("ascontiguousarray", (obj, "float64"))?;
    let arr = arr.cast::<PyArray1<f64>>().map_err(|_| not_1d())?;
    Ok(arr.readonly().as_slice()?.to_vec())
}

#[pymethods]
impl PyPolygon {
    #[new]
    fn new(x: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>) -> PyResult<Self> {
        let x = as_f64_vec(x, "x")?;
        let y = as_f64_vec(y, "y")?;
        let (cx, cy, area) = ring_center_area(&x, &y).map_err(PyPolymatchError)?;
        Ok(Self {
            x: x.into(),
            y: y.into(),
            center: (cx, cy),
            area,
        })
    }

    /// The x coordinates (a new numpy array).
    #[getter]
    fn x<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.x)
    }

    /// The y coordinates (a new numpy array).
    #[getter]
    fn y<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.y)
    }

    /// The center, `[mean(x), mean(y)]`, exactly rounded.
    #[getter]
    fn center<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &[self.center.0, self.center.1])
    }

    /// The shoelace area, exactly rounded.
    fn area(&self) -> f64 {
        self.area
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let name = slf.get_type().name()?;
        let p = slf.get();
        let fmt = |v: &[f64]| {
            v.iter()
                .map(|f| format!("{f:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Ok(format!(
            "{name}(x=array([{}]), y=array([{}]))",
            fmt(&p.x),
            fmt(&p.y)
        ))
    }

    fn __eq__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        if !other.get_type().is(slf.get_type()) {
            return Ok(false);
        }
        let other = other.cast::<PyPolygon>()?.get();
        let me = slf.get();
        Ok(me.x == other.x && me.y == other.y)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let p = slf.get();
        let args = (
            PyArray1::from_slice(py, &p.x),
            PyArray1::from_slice(py, &p.y),
        );
        let state = slf.getattr("__dict__").ok();
        PyTuple::new(
            py,
            [
                slf.get_type().into_any(),
                args.into_pyobject(py)?.into_any(),
                state.into_pyobject(py)?,
            ],
        )
    }

    /// `__hash__ = None`, as for a (non-frozen) dataclass with `__eq__`.
    #[classattr]
    fn __hash__(py: Python<'_>) -> Py<PyAny> {
        py.None()
    }
}

/// Looks up, once per Python type, whether `area()` is our own or a subclass's.
struct AreaOf<'py> {
    native: Bound<'py, PyAny>,
    seen: Vec<(Bound<'py, PyType>, bool)>,
}

impl<'py> AreaOf<'py> {
    fn new(py: Python<'py>) -> PyResult<Self> {
        Ok(Self {
            native: py.get_type::<PyPolygon>().getattr("area")?,
            seen: Vec::new(),
        })
    }

    fn area(&mut self, poly: &Bound<'py, PyPolygon>) -> PyResult<f64> {
        let ty = poly.get_type();
        let overridden = match self.seen.iter().find(|(t, _)| t.is(&ty)) {
            Some((_, o)) => *o,
            None => {
                let o = !ty.getattr("area")?.is(&self.native);
                self.seen.push((ty, o));
                o
            }
        };
        if overridden {
            poly.call_method0("area")?.extract()
        } else {
            Ok(poly.get().area)
        }
    }
}

fn point_xy(point: &Bound<'_, PyAny>) -> PyResult<(f64, f64)> {
    if let Ok(arr) = point.cast::<PyArray1<f64>>() {
        if let (2, Some(x), Some(y)) = (arr.len(), arr.get_owned([0]), arr.get_owned([1])) {
            return Ok((x, y));
        }
    }
    let shape = || {
        let repr = point
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| "?".into());
        PyValueError::new_err(format!(
            "a point must be two numbers (x, y), e.g. np.array([x, y]); got {repr}"
        ))
    };
    if point.len().map_err(|_| shape())? != 2 {
        return Err(shape());
    }
    let coordinate = |i: usize| -> PyResult<f64> {
        point
            .get_item(i)
            .and_then(|v| v.extract::<f64>())
            .map_err(|_| shape())
    };
    Ok((coordinate(0)?, coordinate(1)?))
}

fn polygons_of<'py>(seq: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyPolygon>>> {
    seq.try_iter()?
        .map(|item| {
            let item = item?;
            item.cast_into::<PyPolygon>().map_err(|e| {
                PyTypeError::new_err(format!(
                    "expected polymatch.compat.Polygon objects (or subclasses), got {}",
                    e.into_inner()
                        .get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })
        })
        .collect()
}

/// The polygons of `polygon_subset` whose center is at distance `< max_dist` of
/// `point`, in input order (the same objects).
#[pyfunction]
pub fn find_close_polygons<'py>(
    py: Python<'py>,
    polygon_subset: &Bound<'py, PyAny>,
    point: &Bound<'py, PyAny>,
    max_dist: f64,
) -> PyResult<Bound<'py, PyList>> {
    let (px, py_) = point_xy(point)?;
    check_max_dist(max_dist).map_err(PyPolymatchError)?;
    let within = Within::new(max_dist);
    let out = PyList::empty(py);
    for poly in polygons_of(polygon_subset)? {
        let (cx, cy) = poly.get().center;
        if within.test(px, py_, cx, cy) {
            out.append(poly)?;
        }
    }
    Ok(out)
}

/// For each `(point, polygons)` pair, `(point, best)`: the polygon with the smallest
/// `area()`, the first one on ties.
#[pyfunction]
pub fn select_best_polygon<'py>(
    py: Python<'py>,
    polygon_sets: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    let mut areas = AreaOf::new(py)?;
    let out = PyList::empty(py);
    for pair in polygon_sets.try_iter()? {
        let pair = pair?;
        let point = pair.get_item(0)?;
        let polys = polygons_of(&pair.get_item(1)?)?;
        let mut best: Option<(f64, &Bound<'py, PyPolygon>)> = None;
        for p in &polys {
            let a = areas.area(p)?;
            if best.is_none_or(|(b, _)| a < b) {
                best = Some((a, p));
            }
        }
        let Some((_, best)) = best else {
            return Err(pyo3::exceptions::PyIndexError::new_err(
                "a point has an empty list of polygons",
            ));
        };
        out.append((point, best))?;
    }
    Ok(out)
}

/// Prepared polygons for one call: centers and areas, and the order by (area, position).
struct Prepared<'py> {
    polys: Vec<Bound<'py, PyPolygon>>,
    centers: Vec<(f64, f64)>,
    by_rank: Vec<u32>,
}

fn prepare<'py>(py: Python<'py>, polygons: &Bound<'py, PyAny>) -> PyResult<Prepared<'py>> {
    let polys = polygons_of(polygons)?;
    let mut areas = AreaOf::new(py)?;
    let mut keyed = Vec::with_capacity(polys.len());
    let mut centers = Vec::with_capacity(polys.len());
    for (i, p) in polys.iter().enumerate() {
        let a = areas.area(p)?;
        centers.push(p.get().center);
        keyed.push((a, i as u32));
    }
    // Smallest area first, first position on ties: the article's selection rule.
    keyed.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    Ok(Prepared {
        polys,
        centers,
        by_rank: keyed.into_iter().map(|(_, i)| i).collect(),
    })
}

fn points_list<'py>(points: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    points.try_iter()?.collect()
}

/// The article's `main`: for each point with a close polygon, `(point, best polygon)`.
#[pyfunction]
#[pyo3(signature = (polygons, points, max_dist=10.0))]
pub fn main<'py>(
    py: Python<'py>,
    polygons: &Bound<'py, PyAny>,
    points: &Bound<'py, PyAny>,
    max_dist: f64,
) -> PyResult<Bound<'py, PyList>> {
    let prep = prepare(py, polygons)?;
    check_max_dist(max_dist).map_err(PyPolymatchError)?;
    let within = Within::new(max_dist);
    let out = PyList::empty(py);
    for point in points_list(points)? {
        let (px, py_) = point_xy(&point)?;
        // In rank order, the first candidate is the best one.
        let best = prep.by_rank.iter().find(|&&i| {
            let (cx, cy) = prep.centers[i as usize];
            within.test(px, py_, cx, cy)
        });
        if let Some(&i) = best {
            out.append((point, &prep.polys[i as usize]))?;
        }
    }
    Ok(out)
}

/// For each point with any close polygon, `(point, [close polygons in input order])`.
#[pyfunction]
pub fn find_all_close_polygons<'py>(
    py: Python<'py>,
    polygons: &Bound<'py, PyAny>,
    points: &Bound<'py, PyAny>,
    max_dist: f64,
) -> PyResult<Bound<'py, PyList>> {
    let polys = polygons_of(polygons)?;
    let centers: Vec<(f64, f64)> = polys.iter().map(|p| p.get().center).collect();
    check_max_dist(max_dist).map_err(PyPolymatchError)?;
    let within = Within::new(max_dist);
    let out = PyList::empty(py);
    for point in points_list(points)? {
        let (px, py_) = point_xy(&point)?;
        let close = PyList::empty(py);
        for (p, &(cx, cy)) in polys.iter().zip(&centers) {
            if within.test(px, py_, cx, cy) {
                close.append(p)?;
            }
        }
        if !close.is_empty() {
            out.append((point, close))?;
        }
    }
    Ok(out)
}
