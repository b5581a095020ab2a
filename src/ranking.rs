//! Rank rules over polygon columns: the order a rank column gives the polygons, and the
//! indexes prepared for each order, cached.
//!
//! An index answers "the best candidate" by comparing precomputed `u32` ranks (see
//! [`crate::index`]), so ranking by another criterion means ranking the polygons in
//! another order once. [`SpatialIndex::with_order`] does that without rebuilding the tree
//! (O(P) plus a sort of each leaf), and [`Rankings`] keeps the prepared indexes of one
//! polygon set so that matching many times by the same rule prepares it once.
//! Ranking by distance needs no preparation: it is computed per point.

use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{
    i256, DataType, Decimal128Type, Decimal256Type, Decimal32Type, Decimal64Type, Float16Type,
    Float32Type, Float64Type, Int64Type, UInt64Type,
};
use rayon::prelude::*;

use crate::error::{PolymatchError, Result};
use crate::geometry::float_key;
use crate::index::{Order, SpatialIndex};
use crate::io::schema::column_names;
use crate::shape::{Outlines, ShapeIndex};

/// Most prepared orders a [`Rankings`] keeps besides its own (the oldest is dropped).
pub const MAX_PREPARED: usize = 8;

/// A value of a rank column as a `u128` that sorts as the value does; `None` for null
/// and NaN (which rank last in either direction).
fn sort_keys(name: &str, column: &ArrayRef) -> Result<Vec<Option<u128>>> {
    let unsupported = || PolymatchError::ColumnType {
        column: name.to_string(),
        found: column.data_type().to_string(),
        expected: "a numeric polygon column to rank by (integer, float, decimal, date, \
                   time, timestamp or duration)"
            .into(),
    };
    let float = |v: f64| -> Option<u128> { (!v.is_nan()).then(|| u128::from(float_key(v))) };
    let signed = |v: i128| -> u128 { (v as u128) ^ (1u128 << 127) };
    let keys: Vec<Option<u128>> = match column.data_type() {
        DataType::Float64 => column
            .as_primitive::<Float64Type>()
            .iter()
            .map(|v| v.and_then(float))
            .collect(),
        DataType::Float32 => column
            .as_primitive::<Float32Type>()
            .iter()
            .map(|v| v.and_then(|v| float(f64::from(v))))
            .collect(),
        DataType::Float16 => column
            .as_primitive::<Float16Type>()
            .iter()
            .map(|v| v.and_then(|v| float(f64::from(v))))
            .collect(),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            cast(column, &DataType::UInt64)?
                .as_primitive::<UInt64Type>()
                .iter()
                .map(|v| v.map(u128::from))
                .collect()
        }
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Date32
        | DataType::Date64
        | DataType::Time32(_)
        | DataType::Time64(_)
        | DataType::Timestamp(_, _)
        | DataType::Duration(_) => {
            // Temporal values are integers of their unit (timestamps in UTC).
            let ints = match column.data_type() {
                DataType::Timestamp(unit, Some(_)) => cast(
                    &cast(column, &DataType::Timestamp(*unit, None))?,
                    &DataType::Int64,
                )?,
                DataType::Date32 => cast(&cast(column, &DataType::Int32)?, &DataType::Int64)?,
                DataType::Time32(_) => cast(&cast(column, &DataType::Int32)?, &DataType::Int64)?,
                _ => cast(column, &DataType::Int64)?,
            };
            ints.as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.map(|v| signed(i128::from(v))))
                .collect()
        }
        DataType::Decimal32(_, _) => column
            .as_primitive::<Decimal32Type>()
            .iter()
            .map(|v| v.map(|v| signed(i128::from(v))))
            .collect(),
        DataType::Decimal64(_, _) => column
            .as_primitive::<Decimal64Type>()
            .iter()
            .map(|v| v.map(|v| signed(i128::from(v))))
            .collect(),
        DataType::Decimal128(_, _) => column
            .as_primitive::<Decimal128Type>()
            .iter()
            .map(|v| v.map(signed))
            .collect(),
        DataType::Decimal256(_, _) => {
            // An i256 does not fit the u128 key: rank the distinct values instead (the
            // key only has to sort as the value does).
            let values = column.as_primitive::<Decimal256Type>();
            let mut distinct: Vec<i256> = values.iter().flatten().collect();
            distinct.par_sort_unstable();
            distinct.dedup();
            values
                .iter()
                .map(|v| v.map(|v| distinct.binary_search(&v).unwrap_or_default() as u128))
                .collect()
        }
        DataType::Dictionary(_, value) if value.is_numeric() || value.is_temporal() => {
            let plain = cast(column, value)?;
            return sort_keys(name, &plain);
        }
        _ => return Err(unsupported()),
    };
    Ok(keys)
}

/// The matchable rows of `index` in the order of `column`'s values (`descending`: largest
/// first), nulls and NaN last in either direction, ties to the lowest row.
///
/// # Errors
/// [`PolymatchError::ColumnType`] for a column that is not numeric,
/// [`PolymatchError::InvalidLayout`] if it has not one value per polygon row.
pub fn column_order(
    index: &SpatialIndex,
    name: &str,
    column: &ArrayRef,
    descending: bool,
) -> Result<Vec<u32>> {
    if column.len() != index.rows() {
        return Err(PolymatchError::InvalidLayout(format!(
            "rank column {name:?} has {} values for {} polygons",
            column.len(),
            index.rows()
        )));
    }
    let keys = sort_keys(name, column)?;
    let mut rows: Vec<u32> = (0..index.matchable() as u32)
        .map(|r| index.row_of(r))
        .collect();
    // (null last, value in the asked direction, row): a total order, so the unstable sort
    // has one answer.
    rows.par_sort_unstable_by_key(|&row| {
        let key = keys[row as usize];
        let value = match key {
            Some(v) if descending => !v,
            Some(v) => v,
            None => 0,
        };
        (key.is_none(), value, row)
    });
    Ok(rows)
}

/// The matchable rows of `index` by area, largest first if `descending`, ties to the
/// lowest row.
fn area_order(index: &SpatialIndex, descending: bool) -> Vec<u32> {
    let mut ranks: Vec<u32> = (0..index.matchable() as u32).collect();
    let key = |r: u32| {
        let k = float_key(index.area_of(r));
        if descending {
            !k
        } else {
            k
        }
    };
    ranks.par_sort_unstable_by_key(|&r| (key(r), index.row_of(r)));
    ranks.into_iter().map(|r| index.row_of(r)).collect()
}

/// One polygon set's index in its own order, and the indexes prepared for other orders
/// (on first use, then cached; at most [`MAX_PREPARED`] of them). Thread-safe.
#[derive(Debug)]
pub struct Rankings {
    base: Arc<SpatialIndex>,
    prepared: Mutex<Vec<Arc<SpatialIndex>>>,
    /// Shape indexes built so far (for the shape rules), by order and outlines.
    shapes: Mutex<Vec<Arc<ShapeIndex>>>,
}

impl Rankings {
    /// The rankings of `base` (which keeps its own order).
    pub fn new(base: Arc<SpatialIndex>) -> Self {
        Self {
            base,
            prepared: Mutex::new(Vec::new()),
            shapes: Mutex::new(Vec::new()),
        }
    }

    /// The index in its own order (as built or loaded).
    pub fn base(&self) -> &Arc<SpatialIndex> {
        &self.base
    }

    /// The index ranked in `order`: the base if it is, else one prepared from the base
    /// (areas are in the index; a column is taken from `attributes`, one row per polygon)
    /// on the first call and cached.
    ///
    /// # Errors
    /// [`PolymatchError::MissingColumn`] if the column is not in `attributes` (or there
    /// are none, as for an index read from bytes), [`PolymatchError::ColumnType`] if it
    /// is not numeric.
    pub fn get(
        &self,
        order: &Order,
        attributes: Option<&RecordBatch>,
    ) -> Result<Arc<SpatialIndex>> {
        if self.base.order() == order {
            return Ok(self.base.clone());
        }
        if let Some(index) = self.cached(order) {
            return Ok(index);
        }
        // Prepared without holding the lock (the sorts run on rayon, whose threads may
        // pick up another call to this while they wait); two threads racing here prepare
        // the same index twice and keep the first.
        let rows = match order {
            Order::Area { descending } => area_order(&self.base, *descending),
            Order::Column { name, descending } => {
                let column = attributes
                    .and_then(|a| a.column_by_name(name))
                    .ok_or_else(|| PolymatchError::MissingColumn {
                        name: name.clone(),
                        hint: match attributes {
                            Some(a) => format!(
                                " (rank_by names a polygon column; columns: {})",
                                column_names(a.schema_ref())
                            ),
                            None => format!(
                                " (rank_by names a polygon column, and these polygons have no \
                                 attribute columns: built from coordinates, or read from bytes \
                                 ranked by {})",
                                self.base.order().describe()
                            ),
                        },
                    })?;
                column_order(&self.base, name, column, *descending)?
            }
        };
        let index = Arc::new(self.base.with_order(order.clone(), rows)?);
        let mut prepared = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(first) = prepared.iter().find(|i| i.order() == order) {
            return Ok(first.clone());
        }
        if prepared.len() == MAX_PREPARED {
            prepared.remove(0);
        }
        prepared.push(index.clone());
        Ok(index)
    }

    /// The shape index of `outlines` (the same polygon set's) ranked in `order` (`None`:
    /// the base order, for rules that compare no ranks), built on the first call and
    /// cached (at most [`MAX_PREPARED`] of them).
    ///
    /// # Errors
    /// As [`Rankings::get`]; [`PolymatchError::InvalidLayout`] if the outlines are of
    /// another polygon set.
    pub fn shapes(
        &self,
        order: Option<&Order>,
        attributes: Option<&RecordBatch>,
        outlines: &Arc<Outlines>,
    ) -> Result<Arc<ShapeIndex>> {
        let ranked = match order {
            Some(order) => self.get(order, attributes)?,
            None => self.base.clone(),
        };
        let found = |shapes: &[Arc<ShapeIndex>]| {
            shapes
                .iter()
                .find(|s| s.order() == ranked.order() && Arc::ptr_eq(s.outlines(), outlines))
                .cloned()
        };
        if let Some(s) = found(&self.shapes.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(s);
        }
        let built = Arc::new(ShapeIndex::new(outlines.clone(), &ranked)?);
        let mut shapes = self.shapes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = found(&shapes) {
            return Ok(s);
        }
        if shapes.len() == MAX_PREPARED {
            shapes.remove(0);
        }
        shapes.push(built.clone());
        Ok(built)
    }

    fn cached(&self, order: &Order) -> Option<Arc<SpatialIndex>> {
        let prepared = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        prepared.iter().find(|i| i.order() == order).cloned()
    }

    /// The orders prepared so far (besides the base's).
    pub fn prepared_orders(&self) -> Vec<Order> {
        let prepared = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        prepared.iter().map(|i| i.order().clone()).collect()
    }
}
