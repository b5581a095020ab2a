//! Getting data in and out: Arrow schema detection, GeoArrow and WKB ingest, kept
//! columns, and (Geo)Parquet files.

pub mod arrow_ingest;
pub mod guard;
pub mod keep;
pub mod parquet;
pub mod schema;
pub mod wkb;
pub mod writer;

pub use arrow_ingest::{
    index_from_centers, points_from_batch, polygons_from_batch, PointColumns, PointSpec,
};
pub use keep::Keep;
