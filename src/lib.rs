//! polymatch: match 2-D points to polygons, columnar, on Apache Arrow.
//!
//! For each point, the candidates are the polygons whose center lies strictly within
//! `max_dist`; the match is the candidate with the smallest area, the lowest polygon row
//! on ties (see SPEC.md in the repository). The pieces, in dependency order:
//!
//! - [`geometry`]: exact center and area arithmetic (no Arrow);
//! - [`polygons`]: the polygon columns (flat coordinates, offsets, derived columns);
//! - [`index`]: the spatial index over centers, serialisable to bytes;
//! - [`matching`]: the kernels, parallel over points with rayon;
//! - [`sphere`]: the sphere metric (longitude/latitude, metres), exact chord tests;
//! - [`ranking`]: rank rules over polygon columns, and the prepared indexes per rule;
//! - [`matcher`]: the one Matcher every entry point matches through (columns, CRS,
//!   kept columns, output schema);
//! - [`io`]: Arrow schema detection, GeoArrow/WKB ingest, Parquet in and out;
//! - [`partition`]: spatial tiles with halos, for joins whose polygons outgrow a worker;
//! - [`pipeline`]: the streaming Parquet-to-Parquet job;
//! - [`cli`]: the `polymatch` command line, over all of the above.
#![warn(missing_docs)]

#[cfg(feature = "cli")]
pub mod cli;
pub mod error;
pub mod geometry;
pub mod index;
pub mod io;
pub mod matcher;
pub mod matching;
pub mod partition;
pub mod pipeline;
pub mod polygons;
pub mod ranking;
pub mod shape;
pub mod sphere;
pub mod synth;

pub use error::{PolymatchError, Result};
pub use index::{Order, SpatialIndex};
pub use matching::{match_points, match_shapes, How, MatchOptions, PointSlices, Predicate, RankBy};
pub use partition::Tiling;
pub use polygons::PolygonColumns;
pub use ranking::Rankings;
pub use shape::{Outlines, ShapeIndex, ShapeRule};
pub use sphere::Metric;
