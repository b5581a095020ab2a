//! A uniform grid of cells over a box, shared by the shape index's cell lists and the
//! interior cells of large parts.
//!
//! The cell of a coordinate is a non-decreasing function of it: a subtraction and a
//! multiplication by a non-negative factor (both monotone in floating point), a
//! saturating cast (negative and NaN to 0) and a clamp to the last cell. So a thing
//! listed in the cells of its box's corners and all between is listed in the cell of
//! every point its box holds, and the set of points that map to one cell is an interval
//! on each axis (the outer cells reach to infinity): the two facts the shape rules'
//! exactness rests on.

/// The geometry of a uniform grid: origin, cells per unit, cells per axis.
#[derive(Debug, Clone, Copy)]
pub struct Cells {
    x0: f64,
    y0: f64,
    sx: f64,
    sy: f64,
    nx: usize,
    ny: usize,
}

impl Cells {
    /// About `cells` square cells over the box `b`, at most `max` per axis (a box of zero
    /// width or height gets a row or a column of cells, a point one cell).
    pub fn over(b: [f64; 4], cells: f64, max: usize) -> Self {
        let (w, h) = (b[2] - b[0], b[3] - b[1]);
        let (nx, ny) = if w > 0.0 && h > 0.0 {
            let side = (w * h / cells).sqrt();
            ((w / side).ceil(), (h / side).ceil())
        } else if w > 0.0 {
            (cells.ceil(), 1.0)
        } else if h > 0.0 {
            (1.0, cells.ceil())
        } else {
            (1.0, 1.0)
        };
        let (nx, ny) = ((nx as usize).clamp(1, max), (ny as usize).clamp(1, max));
        Self {
            x0: b[0],
            y0: b[1],
            sx: if w > 0.0 { nx as f64 / w } else { 0.0 },
            sy: if h > 0.0 { ny as f64 / h } else { 0.0 },
            nx,
            ny,
        }
    }

    /// Cells in all (at least one).
    pub fn count(&self) -> usize {
        self.nx * self.ny
    }

    /// The grid's origin (its box's lower corner).
    pub fn origin(&self) -> (f64, f64) {
        (self.x0, self.y0)
    }

    /// The box the cells cover.
    pub fn bounds(&self) -> [f64; 4] {
        [
            self.x0,
            self.y0,
            self.x0 + self.nx as f64 / self.sx.max(f64::MIN_POSITIVE),
            self.y0 + self.ny as f64 / self.sy.max(f64::MIN_POSITIVE),
        ]
    }

    #[inline]
    fn step(v: f64, v0: f64, s: f64, n: usize) -> usize {
        (((v - v0) * s) as usize).min(n - 1)
    }

    /// The column and row of `(x, y)`.
    #[inline]
    pub fn col_row(&self, x: f64, y: f64) -> (usize, usize) {
        (
            Self::step(x, self.x0, self.sx, self.nx),
            Self::step(y, self.y0, self.sy, self.ny),
        )
    }

    /// Columns and rows.
    pub fn dims(&self) -> (usize, usize) {
        (self.nx, self.ny)
    }

    /// A lower bound of the distance from `x` to every coordinate whose column is
    /// beyond `c` on the side `up` (above `c` if `up`, below it if not); the margin
    /// covers the rounding of the boundary and of the cell computation.
    pub fn col_gap(&self, c: usize, up: bool, x: f64) -> f64 {
        Self::gap(self.x0, self.sx, c, up, x)
    }

    /// [`Cells::col_gap`] for rows and `y`.
    pub fn row_gap(&self, c: usize, up: bool, y: f64) -> f64 {
        Self::gap(self.y0, self.sy, c, up, y)
    }

    fn gap(v0: f64, s: f64, c: usize, up: bool, v: f64) -> f64 {
        if s == 0.0 {
            return 0.0; // one cell on this axis
        }
        let edge = v0 + (if up { c + 1 } else { c }) as f64 / s;
        let g = if up { edge - v } else { v - edge };
        (g - 1e-9 * (edge.abs() + v.abs() + 1.0 / s)).max(0.0)
    }

    /// The cell of `(x, y)`, row-major.
    #[inline]
    pub fn cell(&self, x: f64, y: f64) -> usize {
        let (cx, cy) = self.col_row(x, y);
        cy * self.nx + cx
    }

    /// Every cell of the box `b` (its corners' cells and all between), row-major.
    pub fn span(&self, b: &[f64; 4]) -> impl Iterator<Item = usize> {
        let (x0, y0) = self.col_row(b[0], b[1]);
        let (x1, y1) = self.col_row(b[2], b[3]);
        let nx = self.nx;
        (y0..=y1).flat_map(move |cy| (x0..=x1).map(move |cx| cy * nx + cx))
    }

    /// Cells the box `b` spans.
    pub fn span_len(&self, b: &[f64; 4]) -> usize {
        let (x0, y0) = self.col_row(b[0], b[1]);
        let (x1, y1) = self.col_row(b[2], b[3]);
        (x1 - x0 + 1) * (y1 - y0 + 1)
    }

    /// The center of cell `c`, if it maps back to `c` (rounding at a cell's edge may
    /// move it to a neighbour).
    pub fn center(&self, c: usize) -> Option<(f64, f64)> {
        let (cx, cy) = (c % self.nx, c / self.nx);
        let x = self.x0 + (cx as f64 + 0.5) / self.sx;
        let y = self.y0 + (cy as f64 + 0.5) / self.sy;
        (self.cell(x, y) == c).then_some((x, y))
    }
}
