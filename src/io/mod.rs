//! Getting data in and out: Arrow schema detection, GeoArrow and WKB ingest, kept
//! columns, and (Geo)Parquet files.

pub mod arrow_ingest;
pub mod crs;
pub mod guard;
pub mod keep;
pub mod parquet;
pub mod schema;
pub mod wkb;
pub mod writer;

pub use arrow_ingest::{
    centers_from_batch, points_from_batch, points_from_columns, polygons_from_batch, PointColumns,
    PointSpec,
};
pub use keep::Keep;
