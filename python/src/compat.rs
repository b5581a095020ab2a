//! The seed article's `Polygon` and matching functions, native, for `polymatch.compat`.
//!
//! The functions take and return the caller's own Python objects (the very same
//! `Polygon`s, subclasses included, and the very same points). Centers and areas are
//! SPEC.md's exact ones; a subclass that overrides `area()` is asked for its own area.

use std::sync::Arc;

use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use polymatch::geometry::float_key;
use polymatch::index::Within;
use polymatch::matching::check_max_dist;
use polymatch::polygons::ring_center_area;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

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
    /// The types seen, by address (the polygons holding them keep them alive), and
    /// whether each overrides `area()`; the last one first.
    seen: Vec<(*mut pyo3::ffi::PyTypeObject, bool)>,
}

impl<'py> AreaOf<'py> {
    fn new(py: Python<'py>) -> PyResult<Self> {
        Ok(Self {
            native: py.get_type::<PyPolygon>().getattr("area")?,
            seen: Vec::new(),
        })
    }

    #[inline(always)]
    fn area(&mut self, poly: &Bound<'py, PyPolygon>) -> PyResult<f64> {
        let ty = poly.get_type_ptr();
        let overridden = match self.seen.first() {
            Some(&(t, o)) if t == ty => o,
            _ => self.lookup(poly)?,
        };
        if overridden {
            poly.call_method0("area")?.extract()
        } else {
            Ok(poly.get().area)
        }
    }

    #[cold]
    fn lookup(&mut self, poly: &Bound<'py, PyPolygon>) -> PyResult<bool> {
        let ty = poly.get_type_ptr();
        let at = match self.seen.iter().position(|&(t, _)| t == ty) {
            Some(at) => at,
            None => {
                let o = !poly.get_type().getattr("area")?.is(&self.native);
                self.seen.push((ty, o));
                self.seen.len() - 1
            }
        };
        self.seen.swap(0, at);
        Ok(self.seen[0].1)
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
    items(seq)?
        .into_iter()
        .map(|item| {
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

/// The items of a sequence or iterable, read once (lists and tuples directly).
fn items<'py>(seq: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if let Ok(list) = seq.cast::<PyList>() {
        return Ok(list.iter().collect());
    }
    if let Ok(tuple) = seq.cast::<PyTuple>() {
        return Ok(tuple.iter().collect());
    }
    seq.try_iter()?.collect()
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

/// Polygon centers, in input order, and their bounding box.
struct Centers {
    xy: Vec<(f64, f64)>,
    lo: (f64, f64),
    hi: (f64, f64),
}

impl Centers {
    fn of<'a>(polys: impl ExactSizeIterator<Item = &'a PyPolygon>) -> Self {
        let mut c = Self {
            xy: Vec::with_capacity(polys.len()),
            lo: (f64::INFINITY, f64::INFINITY),
            hi: (-f64::INFINITY, -f64::INFINITY),
        };
        for p in polys {
            let (x, y) = p.center;
            c.xy.push((x, y));
            // Centers are finite (Polygon rejects non-finite coordinates).
            if x < c.lo.0 {
                c.lo.0 = x;
            }
            if x > c.hi.0 {
                c.hi.0 = x;
            }
            if y < c.lo.1 {
                c.lo.1 = y;
            }
            if y > c.hi.1 {
                c.hi.1 = y;
            }
        }
        c
    }
}

/// Prepared polygons for one call: the objects, their centers and their ranking keys.
struct Prepared<'py> {
    polys: Vec<Bound<'py, PyPolygon>>,
    centers: Centers,
    /// `(area(), position)` as one integer, smaller is better: areas in `f64::total_cmp`
    /// order after `-0.0` becomes `0.0` (they are equal to the article's `<`).
    keys: Vec<u128>,
    /// The areas, if one is NaN: NaN has no place in that order, and the article's rule
    /// (keep the first candidate, replace it only by a strictly smaller area) then
    /// depends on the input order, so `main` follows it literally.
    nan_areas: Option<Vec<f64>>,
}

fn prepare<'py>(py: Python<'py>, polygons: &Bound<'py, PyAny>) -> PyResult<Prepared<'py>> {
    let polys = polygons_of(polygons)?;
    let mut areas = AreaOf::new(py)?;
    let mut all = Vec::with_capacity(polys.len());
    for p in &polys {
        all.push(areas.area(p)?);
    }
    let keys = all
        .iter()
        .enumerate()
        .map(|(i, &a)| ((float_key(a) as u128) << 32) | i as u128)
        .collect();
    let nan_areas = all.iter().any(|a| a.is_nan()).then_some(all);
    let centers = Centers::of(polys.iter().map(|p| p.get()));
    Ok(Prepared {
        polys,
        centers,
        keys,
        nan_areas,
    })
}

/// Visits, once each, every polygon whose center can be within `max_dist` of `(px, py)`:
/// a superset of the candidates, which the caller tests. The order is the grid's (cell
/// by cell), not the input order.
fn for_each_near(
    grid: Option<&CenterGrid>,
    n: usize,
    px: f64,
    py: f64,
    mut visit: impl FnMut(u32),
) {
    if let Some(grid) = grid {
        if grid.visit(px, py, &mut visit) {
            return;
        }
    }
    (0..n as u32).for_each(visit);
}

/// One call's centers bucketed in a uniform grid, so that a point tests the centers of the
/// few cells its disk can reach rather than all of them. Only a prefilter: every pair it
/// yields is decided by SPEC's exact [`Within`] test, and it never drops a candidate.
///
/// Why it cannot drop one: cells are `w >= max_dist / 2` wide, and every coordinate used
/// (centers, the point, `max_dist`, the origin) is within `2^30 w` of zero (else the
/// point is scanned in full). The cell coordinate `(v - origin) * (1 / w)` is then off by
/// less than `4 * 2^30 * 2^-53 < 5e-7` cells, while a candidate's center is within
/// `max_dist (1 + 3 * 2^-53)` of the point on each axis (`Within` passing implies it).
/// Widening the point's cell range by [`Self::SLACK`] = 1e-6 cells each side covers both.
struct CenterGrid {
    x0: f64,
    y0: f64,
    /// `1 / w`, for cells `w >= max_dist / 2` wide.
    inv: f64,
    d: f64,
    nx: usize,
    ny: usize,
    /// Points with `|x|` or `|y|` above this (or NaN) are scanned in full.
    limit: f64,
    /// Polygon positions by cell (row-major), ascending within a cell.
    starts: Vec<u32>,
    ids: Vec<u32>,
}

impl CenterGrid {
    const SLACK: f64 = 1e-6;
    const SPAN: f64 = (1u64 << 30) as f64;
    /// At most this many cells per axis (cells widen beyond `max_dist / 2` to fit).
    const MAX_CELLS: f64 = 64.0;
    /// Below this many polygons a plain scan is as fast.
    const MIN_POLYGONS: usize = 32;

    /// The grid, if it pays for `points` points and is exact for these centers.
    fn for_points(centers: &Centers, max_dist: f64, points: usize) -> Option<Self> {
        if points < 2 || centers.xy.len() < Self::MIN_POLYGONS || !max_dist.is_finite() {
            return None;
        }
        let ((x0, y0), (x1, y1)) = (centers.lo, centers.hi);
        let extent = (x1 - x0).max(y1 - y0);
        let w = (max_dist * 0.5).max(extent / Self::MAX_CELLS);
        let reach = x0.abs().max(x1.abs()).max(y0.abs()).max(y1.abs()) + max_dist;
        let limit = Self::SPAN * w - reach;
        if !(extent.is_finite() && w > 0.0 && limit > 0.0) {
            return None;
        }
        // Cell coordinates are (v - origin) * inv; the same expression places x1 in
        // column nx - 1. They are >= 0 here, so truncation is floor.
        let inv = 1.0 / w;
        let nx = ((x1 - x0) * inv) as usize + 1;
        let ny = ((y1 - y0) * inv) as usize + 1;
        let mut starts = vec![0u32; nx * ny + 1];
        let cells: Vec<u32> = centers
            .xy
            .iter()
            .map(|&(x, y)| {
                let cx = (((x - x0) * inv) as i64 as usize).min(nx - 1);
                let cy = (((y - y0) * inv) as i64 as usize).min(ny - 1);
                let c = cy * nx + cx;
                starts[c + 1] += 1;
                c as u32
            })
            .collect();
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut fill = starts.clone();
        let mut ids = vec![0u32; centers.xy.len()];
        for (i, &c) in cells.iter().enumerate() {
            let slot = &mut fill[c as usize];
            ids[*slot as usize] = i as u32;
            *slot += 1;
        }
        Some(Self {
            x0,
            y0,
            inv,
            d: max_dist,
            nx,
            ny,
            limit,
            starts,
            ids,
        })
    }

    /// The cells `[lo, hi]` along one axis that a disk around `p` can reach, if any.
    fn span(&self, p: f64, origin: f64, n: usize) -> Option<(usize, usize)> {
        // |p| <= limit: the cell coordinates are far below 2^52, where this is floor.
        let floor = |t: f64| {
            let r = t as i64 as f64;
            if r > t {
                r - 1.0
            } else {
                r
            }
        };
        let lo = floor((p - self.d - origin) * self.inv - Self::SLACK);
        let hi = floor((p + self.d - origin) * self.inv + Self::SLACK);
        let last = (n - 1) as f64;
        (hi >= 0.0 && lo <= last).then(|| (lo.max(0.0) as usize, hi.min(last) as usize))
    }

    /// Visits the polygons of the reachable cells; false if the point is beyond the
    /// grid's exactness bound (the caller then scans every polygon).
    fn visit(&self, px: f64, py: f64, visit: &mut impl FnMut(u32)) -> bool {
        if !(px.abs() <= self.limit && py.abs() <= self.limit) {
            return false;
        }
        let (Some((cx0, cx1)), Some((cy0, cy1))) = (
            self.span(px, self.x0, self.nx),
            self.span(py, self.y0, self.ny),
        ) else {
            return true;
        };
        for row in cy0..=cy1 {
            let from = self.starts[row * self.nx + cx0] as usize;
            let to = self.starts[row * self.nx + cx1 + 1] as usize;
            self.ids[from..to].iter().copied().for_each(&mut *visit);
        }
        true
    }
}

fn points_list<'py>(points: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    items(points)
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
    let points = points_list(points)?;
    let grid = CenterGrid::for_points(&prep.centers, max_dist, points.len());
    let out = PyList::empty(py);
    for point in points {
        let (px, py_) = point_xy(&point)?;
        let best = match &prep.nan_areas {
            None => {
                // The smallest (area, position) among the candidates: the article's rule.
                let mut best = u128::MAX;
                for_each_near(grid.as_ref(), prep.polys.len(), px, py_, |i| {
                    let key = prep.keys[i as usize];
                    if key < best {
                        let (cx, cy) = prep.centers.xy[i as usize];
                        if within.test(px, py_, cx, cy) {
                            best = key;
                        }
                    }
                });
                (best != u128::MAX).then_some(best as u32 as usize)
            }
            Some(areas) => {
                let mut best: Option<usize> = None;
                for (i, &(cx, cy)) in prep.centers.xy.iter().enumerate() {
                    if within.test(px, py_, cx, cy) && best.is_none_or(|b| areas[i] < areas[b]) {
                        best = Some(i);
                    }
                }
                best
            }
        };
        if let Some(i) = best {
            out.append((point, &prep.polys[i]))?;
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
    let centers = Centers::of(polys.iter().map(|p| p.get()));
    check_max_dist(max_dist).map_err(PyPolymatchError)?;
    let within = Within::new(max_dist);
    let points = points_list(points)?;
    let grid = CenterGrid::for_points(&centers, max_dist, points.len());
    let out = PyList::empty(py);
    let mut close_ids = Vec::new();
    for point in points {
        let (px, py_) = point_xy(&point)?;
        close_ids.clear();
        for_each_near(grid.as_ref(), polys.len(), px, py_, |i| {
            let (cx, cy) = centers.xy[i as usize];
            if within.test(px, py_, cx, cy) {
                close_ids.push(i);
            }
        });
        if close_ids.is_empty() {
            continue;
        }
        close_ids.sort_unstable(); // input order: cells come row by row
        let close = PyList::new(py, close_ids.iter().map(|&i| &polys[i as usize]))?;
        out.append((point, close))?;
    }
    Ok(out)
}
