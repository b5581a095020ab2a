//! Integration tests of polymatch's public Rust API, as one test crate (`cargo test --test
//! it`). Shared pieces (one WKB writer, one RNG, the exact and brute-force oracles, the
//! Arrow builders) live in [`common`]; each module is one topic:
//!
//! - [`index`]: the spatial index against the brute-force oracle of SPEC.md's match,
//!   point by point and a group at a time (`best_within_group`);
//! - [`kernels`]: `match_points` independent of chunk size and thread count, equal to the
//!   oracle, including inputs large enough for the Z-ordered group search;
//! - [`exact`]: derived columns (center, area) against the exact big-integer oracle;
//! - [`ingest`]: GeoArrow / WKB / x-y ingest from hand-built Arrow arrays;
//! - [`errors`]: every error variant, forged index bytes, cancellation;
//! - [`index_bytes`]: index bytes with outlines (format 4): round trips answer the shape
//!   rules as the original, older bytes load, bad bytes are refused without a panic;
//! - [`adversarial`]: docs/hardening.md's cases through the Rust API and the CLI;
//! - [`matcher`]: the one Matcher and schema resolver, in memory and through Parquet;
//! - [`ranking`]: the rank rules (area, distance, a column; descending; k best) against
//!   a brute-force oracle, and their errors;
//! - [`shapes`]: the shape rules (`contains`, `covers`) against an exact big-integer
//!   crossing oracle, the edge index against the edge-by-edge test, and `match_shapes`
//!   against brute force;
//! - [`sphere`]: `metric="sphere"` against a brute-force oracle of the exact chord test.
#![allow(clippy::unwrap_used)] // in a test, a panic is a failure with a message

mod common;

mod adversarial;
mod errors;
mod exact;
mod index;
mod index_bytes;
mod ingest;
mod kernels;
mod matcher;
mod near;
mod partition;
mod ranking;
mod shapes;
mod sphere;
