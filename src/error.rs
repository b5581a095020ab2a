//! The one error type of the crate.

use arrow::error::ArrowError;
use parquet::errors::ParquetError;

/// Everything that can go wrong in polymatch, by what is wrong.
///
/// Every variant names the column, row or argument it is about, so that a CLI user
/// or a Python caller can act on the message alone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolymatchError {
    /// A column the caller named, or that polymatch needs, is not in the input.
    #[error("missing column {name:?}{hint}")]
    MissingColumn {
        /// The column that was looked for.
        name: String,
        /// Extra words saying what was there instead (may be empty).
        hint: String,
    },
    /// A column exists but its Arrow type cannot be used.
    #[error("column {column:?} has type {found}, expected {expected}")]
    ColumnType {
        /// The column name.
        column: String,
        /// The Arrow type that was found.
        found: String,
        /// What would have been accepted.
        expected: String,
    },
    /// The input has no geometry column polymatch can recognise.
    #[error("no geometry column found: {0}")]
    NoGeometry(String),
    /// A geometry type polymatch does not match on (e.g. a LineString as a polygon).
    #[error(
        "unsupported geometry type {found}{} in column {column:?}: expected {expected}",
        .row.map(|r| format!(" (row {r})")).unwrap_or_default()
    )]
    UnsupportedGeometry {
        /// The column name.
        column: String,
        /// What was found.
        found: String,
        /// What would have been accepted.
        expected: String,
        /// The row, when one value (not the column's type) is the problem.
        row: Option<usize>,
    },
    /// One row's geometry is malformed (empty ring, NaN coordinate, bad WKB, ...).
    #[error("invalid geometry at row {row}: {reason}")]
    InvalidGeometry {
        /// The row of the geometry, in the input the caller gave.
        row: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Arrays or offsets that do not fit together (lengths, ranges, order).
    #[error("invalid layout: {0}")]
    InvalidLayout(String),
    /// File metadata that is malformed or that polymatch cannot honour (GeoParquet `geo`
    /// JSON, spherical edges, inputs in different CRS).
    #[error("{0}")]
    Metadata(String),
    /// An argument outside its domain (max_dist <= 0, unknown `how`, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A serialised index that is truncated, corrupt or from another version.
    #[error("invalid serialised index: {0}")]
    InvalidIndexBytes(String),
    /// An error about one input or output file: the path, then what went wrong.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong with it.
        source: Box<PolymatchError>,
    },
    /// Input the decoder could not make sense of (a corrupt file).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The caller asked the running job to stop (Ctrl-C).
    #[error("interrupted")]
    Cancelled,
    /// An error from arrow-rs.
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    /// An error from the parquet crate.
    #[error(transparent)]
    Parquet(#[from] ParquetError),
    /// An I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The result type of the crate.
pub type Result<T, E = PolymatchError> = std::result::Result<T, E>;

impl PolymatchError {
    /// Wrap `self` with the file it is about (once: an error already naming a file keeps it).
    pub fn in_file(self, path: &std::path::Path) -> Self {
        match self {
            Self::File { .. } | Self::Cancelled => self,
            other => Self::File {
                path: path.to_path_buf(),
                source: Box::new(other),
            },
        }
    }

    /// The innermost error (under any [`PolymatchError::File`] wrappers).
    pub fn root(&self) -> &Self {
        match self {
            Self::File { source, .. } => source.root(),
            other => other,
        }
    }

    /// The same error about rows numbered from `first_row`: a part of an input (one
    /// batch of a file) was read on its own, and its rows are rows `first_row..` of the
    /// input the caller gave.
    #[must_use]
    pub fn rows_from(self, first_row: usize) -> Self {
        match self {
            Self::InvalidGeometry { row, reason } => Self::InvalidGeometry {
                row: row + first_row,
                reason,
            },
            Self::UnsupportedGeometry {
                column,
                found,
                expected,
                row,
            } => Self::UnsupportedGeometry {
                column,
                found,
                expected,
                row: row.map(|r| r + first_row),
            },
            Self::File { path, source } => Self::File {
                path,
                source: Box::new(source.rows_from(first_row)),
            },
            other => other,
        }
    }

    /// A [`PolymatchError::InvalidGeometry`] for `row`.
    pub fn invalid_geometry(row: usize, reason: impl Into<String>) -> Self {
        Self::InvalidGeometry {
            row,
            reason: reason.into(),
        }
    }
}
