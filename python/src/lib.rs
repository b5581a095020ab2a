//! Python bindings of polymatch: conversion only, the work is in the `polymatch` crate.

mod error;
mod index;

use pyo3::prelude::*;

/// The native module, `polymatch._core`.
#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    error::register(m)?;
    m.add_class::<index::PyPolygonIndex>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("_debug_build", cfg!(debug_assertions))?;
    Ok(())
}
