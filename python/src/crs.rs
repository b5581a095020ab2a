//! CRS arguments from Python, and the CRS comparison every entry point shares.

use polymatch::io::crs::Crs;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// A CRS given from Python: a string, or a dict (PROJJSON).
pub fn crs_value(c: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    if let Ok(s) = c.extract::<String>() {
        return Ok(serde_json::Value::String(s));
    }
    let text: String = c
        .py()
        .import("json")?
        .call_method1("dumps", (c,))?
        .extract()?;
    serde_json::from_str(&text)
        .map_err(|e| PyValueError::new_err(format!("crs is not a string or a JSON object: {e}")))
}

/// An optional CRS argument (None or missing: no CRS).
pub fn optional_crs(crs: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Crs>> {
    Ok(match crs {
        Some(c) if !c.is_none() => Some(Crs(crs_value(c)?)),
        _ => None,
    })
}

/// Whether two CRS statements (strings such as ``"EPSG:32633"``, WKT, URNs, or PROJJSON
/// dicts; ``None`` for unstated) name the same CRS, by the rule every polymatch entry
/// point uses (docs/SPEC.md): by authority and code where both name one, else by their
/// definitions. An unstated CRS is the same as any other (it never conflicts).
#[pyfunction]
#[pyo3(signature = (a, b))]
pub fn same_crs(a: Option<&Bound<'_, PyAny>>, b: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
    Ok(match (optional_crs(a)?, optional_crs(b)?) {
        (Some(a), Some(b)) => a.same_as(&b),
        _ => true,
    })
}

/// A CRS as Python states it: the string as it was, a PROJJSON object as a dict.
pub fn crs_to_py<'py>(py: Python<'py>, crs: Option<&Crs>) -> PyResult<Option<Bound<'py, PyAny>>> {
    match crs {
        None => Ok(None),
        Some(Crs(serde_json::Value::String(s))) => Ok(Some(s.into_pyobject(py)?.into_any())),
        Some(Crs(v)) => Ok(Some(
            py.import("json")?.call_method1("loads", (v.to_string(),))?,
        )),
    }
}
