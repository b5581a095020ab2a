//! Getting data in and out: Arrow schema detection, GeoArrow and WKB ingest, Parquet.

pub mod arrow_ingest;
pub mod wkb;

pub use arrow_ingest::{points_from_batch, polygons_from_batch, PointColumns, PointSpec};
