//! Which columns hold the geometry, from Python: the core's resolver
//! ([`resolve_geometry`]), so that `polymatch.dask` reads the columns one process reads
//! without a Python copy of the rule.

use polymatch::io::schema::{resolve_geometry, Request, Role};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3_arrow::PySchema;

use crate::crs::crs_to_py;
use crate::error::PyPolymatchError;

/// The geometry columns of ``schema`` by the rule every entry point uses (docs/SPEC.md,
/// "Which columns are read"), and the CRS they state.
///
/// Args:
///     schema: an Arrow schema (``pyarrow.Schema``, or anything with
///         ``__arrow_c_schema__``), with its GeoParquet/GeoArrow metadata.
///     role: ``"points"`` or ``"polygons"``.
///     x, y, geometry: the columns the caller named, as for ``PolygonIndex.match``.
///
/// Returns:
///     ``(columns, crs)``: the column names (``[geometry]`` or ``[x, y]``) and the
///     stated CRS (None: unstated).
///
/// Raises:
///     SchemaError: no usable column, a named column missing, bad metadata.
#[pyfunction]
#[pyo3(signature = (schema, role="points", *, x=None, y=None, geometry=None))]
pub fn resolve_columns<'py>(
    py: Python<'py>,
    schema: PySchema,
    role: &str,
    x: Option<String>,
    y: Option<String>,
    geometry: Option<String>,
) -> PyResult<(Vec<String>, Option<Bound<'py, PyAny>>)> {
    let role = match role {
        "points" => Role::Points,
        "polygons" => Role::Polygons,
        other => {
            return Err(PyValueError::new_err(format!(
                "role must be \"points\" or \"polygons\", got {other:?}"
            )))
        }
    };
    let request = Request {
        geometry: geometry.as_deref(),
        x: x.as_deref(),
        y: y.as_deref(),
    };
    let resolved = resolve_geometry(schema.as_ref(), role, request).map_err(PyPolymatchError)?;
    let columns = resolved
        .columns
        .names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    Ok((columns, crs_to_py(py, resolved.crs.as_ref())?))
}
