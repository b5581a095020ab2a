//! Core errors as Python exceptions: each variant to its own class.

use polymatch::PolymatchError as CoreError;
use pyo3::exceptions::{PyException, PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3::{create_exception, PyErr};

create_exception!(
    polymatch,
    PolymatchError,
    PyException,
    "Base class of polymatch's own exceptions."
);
create_exception!(
    polymatch,
    SchemaError,
    PolymatchError,
    "A column is missing, has an unusable type, or holds an unsupported geometry type."
);
create_exception!(
    polymatch,
    InvalidGeometryError,
    PolymatchError,
    "A geometry, or the arrays and offsets describing it, is malformed (names the row)."
);

/// A core error on its way to Python (a local type, for the orphan rule).
pub struct PyPolymatchError(pub CoreError);

impl From<CoreError> for PyPolymatchError {
    fn from(e: CoreError) -> Self {
        Self(e)
    }
}

impl From<PyPolymatchError> for PyErr {
    /// The exception of the error's class; one about a row of the input also gets a
    /// `row` attribute (the row number its message states), so that a caller that
    /// matched a part of its input (a Dask partition) can say which row of the whole.
    fn from(e: PyPolymatchError) -> Self {
        let row = match e.0.root() {
            CoreError::InvalidGeometry { row, .. } => Some(*row),
            CoreError::UnsupportedGeometry { row, .. } => *row,
            _ => None,
        };
        let err = PyErr::from_core(e);
        if let Some(row) = row {
            Python::attach(|py| {
                // Best effort: the exception is raised with or without the attribute.
                let _ = err.value(py).setattr("row", row);
            });
        }
        err
    }
}

trait FromCore {
    fn from_core(e: PyPolymatchError) -> Self;
}

impl FromCore for PyErr {
    fn from_core(e: PyPolymatchError) -> Self {
        let msg = e.0.to_string();
        match e.0 {
            CoreError::MissingColumn { .. }
            | CoreError::ColumnType { .. }
            | CoreError::NoGeometry(_)
            | CoreError::UnsupportedGeometry { .. }
            | CoreError::Metadata(_) => SchemaError::new_err(msg),
            CoreError::InvalidGeometry { .. } | CoreError::InvalidLayout(_) => {
                InvalidGeometryError::new_err(msg)
            }
            CoreError::InvalidArgument(_) => PyValueError::new_err(msg),
            CoreError::Cancelled => PyKeyboardInterrupt::new_err(msg),
            CoreError::Io(io) => io.into(),
            // The class of the inner error (FileNotFoundError, SchemaError, ...), the message
            // with the path.
            CoreError::File { source, .. } => Python::attach(|py| {
                let inner = PyErr::from(PyPolymatchError(*source));
                PyErr::from_type(inner.get_type(py), msg)
            }),
            _ => PolymatchError::new_err(msg),
        }
    }
}

/// Register the exception classes on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("PolymatchError", py.get_type::<PolymatchError>())?;
    m.add("SchemaError", py.get_type::<SchemaError>())?;
    m.add(
        "InvalidGeometryError",
        py.get_type::<InvalidGeometryError>(),
    )?;
    Ok(())
}
