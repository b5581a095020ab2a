//! The shape rules: which polygons *contain* or *cover* a point, decided exactly on
//! their outlines ([`locate`]), over prepared outlines with edge indexes for large parts
//! ([`outlines`]) and a grid of rank-ordered part lists ([`index`]).

pub mod arcs;
pub mod cells;
pub mod distance;
pub mod index;
pub mod locate;
pub mod outlines;
pub mod rule;
pub mod spherical;

pub use index::{ShapeIndex, ShapeRule};
pub use locate::Location;
pub use outlines::Outlines;
