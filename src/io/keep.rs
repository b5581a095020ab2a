//! Carrying the caller's id and attribute columns into a match result (the columns are
//! taken by [`crate::matcher::BoundMatcher::match_batch`]).

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
