//! `Tiling`: the spatial tiles of `polymatch.dask`'s partitioned join, as a Python class.

use numpy::{PyArray1, PyReadonlyArray1};
use polymatch::io::points_from_columns;
use polymatch::io::schema::{resolve_geometry, Request, Role};
use polymatch::Tiling;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyTuple, PyType};

use crate::error::PyPolymatchError;
use crate::input::{read_table, Side};

/// `(offsets, rows)` of [`PyTiling::assign`], as numpy arrays.
type Assigned<'py> = (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u32>>);

/// Rectangular tiles covering the plane, from a KD split of a sample of polygon
/// centers (each tile holds about the same share of the sample).
///
/// ``Tiling(x, y, tiles)`` splits the sample (float64 arrays; NaN rows are ignored)
/// into at most ``tiles`` tiles. ``route`` gives each point its one tile; ``assign``
/// gives each polygon every tile in which it can be a candidate (its own and the
/// tiles its center is within ``max_dist`` of: the halo). Matching each tile's points
/// against each tile's polygons gives exactly the single-process answer (docs/scaling.md).
#[pyclass(frozen, module = "polymatch._core", name = "Tiling")]
pub struct PyTiling(Tiling);

#[pymethods]
impl PyTiling {
    #[new]
    fn new(
        x: PyReadonlyArray1<'_, f64>,
        y: PyReadonlyArray1<'_, f64>,
        tiles: usize,
    ) -> PyResult<Self> {
        let (x, y) = (x.as_slice()?, y.as_slice()?);
        if x.len() != y.len() {
            return Err(PyValueError::new_err(format!(
                "x has {} values, y {}",
                x.len(),
                y.len()
            )));
        }
        if tiles == 0 {
            return Err(PyValueError::new_err("tiles must be >= 1"));
        }
        Ok(Self(Tiling::from_sample(x, y, tiles)))
    }

    /// The tile of every point of ``points`` (any input ``PolygonIndex.match`` takes,
    /// its columns chosen by the same rule, ``x``/``y``/``geometry`` as there), as a
    /// numpy uint32 array in row order. Null points get some tile (they match nothing).
    ///
    /// With ``wrap``, longitudes above 180 are moved down by 360 first (tiles of
    /// longitude/latitude, ``metric="sphere"``: both longitude conventions route alike).
    ///
    /// Raises:
    ///     SchemaError: no usable point columns. InvalidGeometryError: a bad point.
    #[pyo3(signature = (points, *, x=None, y=None, geometry=None, wrap=false))]
    fn route<'py>(
        &self,
        py: Python<'py>,
        points: &Bound<'py, PyAny>,
        x: Option<String>,
        y: Option<String>,
        geometry: Option<String>,
        wrap: bool,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let (schema, batches) = read_table(py, points, Side::Points)?;
        let request = Request {
            x: x.as_deref(),
            y: y.as_deref(),
            geometry: geometry.as_deref(),
        };
        let tiles = py
            .detach(|| -> polymatch::Result<Vec<u32>> {
                // The columns once for the stream, as the matcher resolves them.
                let columns = resolve_geometry(&schema, Role::Points, request)?.columns;
                let mut out = Vec::new();
                for batch in &batches {
                    let first = out.len();
                    let cols =
                        points_from_columns(batch, &columns).map_err(|e| e.rows_from(first))?;
                    if wrap {
                        let xs: Vec<f64> = cols
                            .x
                            .iter()
                            .map(|&x| if x > 180.0 { x - 360.0 } else { x })
                            .collect();
                        out.extend(self.0.route(&xs, &cols.y));
                    } else {
                        out.extend(self.0.route(&cols.x, &cols.y));
                    }
                }
                Ok(out)
            })
            .map_err(PyPolymatchError)?;
        Ok(PyArray1::from_vec(py, tiles))
    }

    /// Every tile's polygon set, from the polygons' centers (float64; NaN rows, the
    /// unmatchable polygons, go nowhere): ``(offsets, rows)``, numpy uint64 and uint32
    /// arrays; tile ``t`` holds ``rows[offsets[t]:offsets[t+1]]``, increasing.
    fn assign<'py>(
        &self,
        py: Python<'py>,
        center_x: PyReadonlyArray1<'py, f64>,
        center_y: PyReadonlyArray1<'py, f64>,
        max_dist: f64,
    ) -> PyResult<Assigned<'py>> {
        let (cx, cy) = (center_x.as_slice()?, center_y.as_slice()?);
        if cx.len() != cy.len() {
            return Err(PyValueError::new_err(format!(
                "center_x has {} values, center_y {}",
                cx.len(),
                cy.len()
            )));
        }
        if cx.len() > u32::MAX as usize {
            return Err(PyValueError::new_err(
                "more than 2**32 - 1 polygons in one call",
            ));
        }
        if max_dist.is_nan() || max_dist <= 0.0 || max_dist.is_infinite() {
            return Err(PyValueError::new_err(format!(
                "max_dist must be finite and > 0 for tiles, got {max_dist}"
            )));
        }
        let (offsets, rows) = py.detach(|| self.0.assign(cx, cy, max_dist, |_| true));
        Ok((
            PyArray1::from_vec(py, offsets),
            PyArray1::from_vec(py, rows),
        ))
    }

    /// Every tile's polygon set for the shape rules, from the polygons' boxes (float64
    /// arrays; a NaN box, an unmatchable polygon, goes nowhere): each polygon goes to
    /// every tile a point of its box, widened by ``reach`` (``dwithin``'s ``max_dist``,
    /// finite, ``>= 0``), is routed to. ``(offsets, rows)`` as ``assign``.
    #[pyo3(signature = (xmin, ymin, xmax, ymax, reach=0.0))]
    fn assign_boxes<'py>(
        &self,
        py: Python<'py>,
        xmin: PyReadonlyArray1<'py, f64>,
        ymin: PyReadonlyArray1<'py, f64>,
        xmax: PyReadonlyArray1<'py, f64>,
        ymax: PyReadonlyArray1<'py, f64>,
        reach: f64,
    ) -> PyResult<Assigned<'py>> {
        if !(reach >= 0.0 && reach.is_finite()) {
            return Err(PyValueError::new_err(format!(
                "reach must be finite and >= 0 for tiles, got {reach}"
            )));
        }
        let (a, b, c, d) = (
            xmin.as_slice()?,
            ymin.as_slice()?,
            xmax.as_slice()?,
            ymax.as_slice()?,
        );
        if b.len() != a.len() || c.len() != a.len() || d.len() != a.len() {
            return Err(PyValueError::new_err("the box arrays differ in length"));
        }
        if a.len() > u32::MAX as usize {
            return Err(PyValueError::new_err(
                "more than 2**32 - 1 polygons in one call",
            ));
        }
        let boxes: Vec<[f64; 4]> = (0..a.len()).map(|i| [a[i], b[i], c[i], d[i]]).collect();
        let (offsets, rows) = py.detach(|| self.0.assign_boxes(&boxes, reach));
        Ok((
            PyArray1::from_vec(py, offsets),
            PyArray1::from_vec(py, rows),
        ))
    }

    /// The closed bounds ``(xmin, ymin, xmax, ymax)`` of ``tile`` (infinite at the edges).
    fn bounds(&self, tile: usize) -> PyResult<(f64, f64, f64, f64)> {
        if tile >= self.0.len() {
            return Err(PyValueError::new_err(format!(
                "tile {tile} out of range: there are {}",
                self.0.len()
            )));
        }
        let b = self.0.bounds(tile as u32);
        Ok((b[0], b[1], b[2], b[3]))
    }

    /// Rebuild a tiling from its nodes (what pickling stores).
    #[classmethod]
    fn _from_nodes(_cls: &Bound<'_, PyType>, nodes: Vec<(u8, f64, u32, u32)>) -> PyResult<Self> {
        Ok(Self(Tiling::from_nodes(&nodes).map_err(PyPolymatchError)?))
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let from_nodes = py.get_type::<Self>().getattr("_from_nodes")?;
        let nodes = slf.get().0.nodes().into_pyobject(py)?;
        Ok((from_nodes, PyTuple::new(py, [nodes])?))
    }

    fn __len__(&self) -> usize {
        self.0.len()
    }

    fn __repr__(&self) -> String {
        format!("Tiling({} tiles)", self.0.len())
    }
}
