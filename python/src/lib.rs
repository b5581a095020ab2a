//! Python bindings of polymatch: conversion only, the work is in the `polymatch` crate.

mod columns;
mod compat;
mod crs;
mod error;
mod files;
mod index;
mod input;
mod partition;
mod pool;

use pyo3::prelude::*;

/// mimalloc instead of the system allocator. A match returns fresh buffers to Arrow, and
/// glibc gave them back to the OS when Python freed them, so every call paid a page fault
/// per 4 KiB written: about 6,800 faults for one match of 1M points on the sphere, a
/// quarter of its time (docs/benchmarks.md, "Allocator"). mimalloc reuses freed pages.
/// `local_dynamic_tls`: this library is loaded with `dlopen`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The native module, `polymatch._core`.
#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    pool::register_fork_handler();
    error::register(m)?;
    m.add_class::<index::PyPolygonIndex>()?;
    m.add_class::<compat::PyPolygon>()?;
    m.add_class::<partition::PyTiling>()?;
    m.add_function(wrap_pyfunction!(crs::same_crs, m)?)?;
    m.add_function(wrap_pyfunction!(columns::resolve_columns, m)?)?;
    m.add_function(wrap_pyfunction!(files::read_polygons, m)?)?;
    m.add_function(wrap_pyfunction!(files::match_parquet, m)?)?;
    m.add_function(wrap_pyfunction!(files::write_results, m)?)?;
    m.add_function(wrap_pyfunction!(files::run_cli, m)?)?;
    m.add_function(wrap_pyfunction!(compat::find_close_polygons, m)?)?;
    m.add_function(wrap_pyfunction!(compat::select_best_polygon, m)?)?;
    m.add_function(wrap_pyfunction!(compat::find_all_close_polygons, m)?)?;
    m.add_function(wrap_pyfunction!(compat::main, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("_debug_build", cfg!(debug_assertions))?;
    Ok(())
}
