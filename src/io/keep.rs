//! Carrying the caller's id and attribute columns into a match result.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array, UInt64Array};
use arrow::compute::take;
use arrow::datatypes::{Field, Schema, UInt64Type};

use crate::error::{PolymatchError, Result};

/// Names of the point and polygon columns to carry into the result.
#[derive(Debug, Clone, Copy, Default)]
pub struct Keep<'a> {
    /// Columns of the points batch.
    pub points: &'a [String],
    /// Columns of the polygons' attribute batch.
    pub polygons: &'a [String],
}

impl Keep<'_> {
    /// True if nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty() && self.polygons.is_empty()
    }
}

fn take_columns(
    batch: &RecordBatch,
    names: &[String],
    indices: &dyn Array,
    from: &str,
) -> Result<Vec<(Field, ArrayRef)>> {
    names
        .iter()
        .map(|name| {
            let i = batch
                .schema()
                .index_of(name)
                .map_err(|_| PolymatchError::MissingColumn {
                    name: name.clone(),
                    hint: format!(" (asked to keep it from the {from})"),
                })?;
            let field = batch.schema().field(i).clone().with_nullable(true);
            Ok((field, take(batch.column(i).as_ref(), indices, None)?))
        })
        .collect()
}

/// Append the kept columns to `result` (a [`crate::matching::result_schema`] batch):
/// point columns taken from `points` at `point_index - first_point`, polygon columns
/// taken from `polygons` at `polygon_index` (null where unmatched).
///
/// # Errors
/// [`PolymatchError::MissingColumn`] for an unknown column (or no polygon attributes),
/// [`PolymatchError::InvalidArgument`] if two result columns would share a name.
pub fn append_kept_columns(
    result: RecordBatch,
    points: &RecordBatch,
    first_point: u64,
    polygons: Option<&RecordBatch>,
    keep: &Keep<'_>,
) -> Result<RecordBatch> {
    if keep.is_empty() {
        return Ok(result);
    }
    let mut fields: Vec<Field> = result
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns: Vec<ArrayRef> = result.columns().to_vec();
    if !keep.points.is_empty() {
        let local: UInt64Array = result
            .column(0)
            .as_primitive::<UInt64Type>()
            .unary(|i| i - first_point);
        for (f, c) in take_columns(points, keep.points, &local, "points")? {
            fields.push(f);
            columns.push(c);
        }
    }
    if !keep.polygons.is_empty() {
        let polygons = polygons.ok_or_else(|| PolymatchError::MissingColumn {
            name: keep.polygons.join(", "),
            hint: " (these polygons have no attribute columns: built from coordinates or bytes)"
                .into(),
        })?;
        let rows: &UInt32Array = result.column(1).as_primitive();
        for (f, c) in take_columns(polygons, keep.polygons, rows, "polygons")? {
            fields.push(f);
            columns.push(c);
        }
    }
    let mut seen = HashSet::new();
    if let Some(dup) = fields.iter().find(|f| !seen.insert(f.name().clone())) {
        return Err(PolymatchError::InvalidArgument(format!(
            "kept column {:?} collides with another result column; rename it before matching",
            dup.name()
        )));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}
