//! The exact oracle for derived columns: sums of products of float64s held as big
//! integers (`num-bigint`, no code shared with polymatch's error-free arithmetic), and
//! SPEC.md's center and area computed with them, compared to float64 answers by
//! "is this the correctly rounded value".

use num_bigint::{BigInt, Sign};
use polymatch::PolygonColumns;

use super::{next_down, next_up, Part};

/// An exact sum of products of float64s, as an integer count of 2^-2148 (the smallest
/// product of two subnormals; the largest product is below 2^2048).
#[derive(Clone, Debug, Default)]
pub struct Exact(BigInt);

/// 2^-BIAS is the unit.
const BIAS: i32 = 2148;

/// `x = sign * mantissa * 2^exponent` exactly, for finite `x`.
fn decompose(x: f64) -> (i128, u128, i32) {
    assert!(x.is_finite());
    let bits = x.to_bits();
    let sign = if bits >> 63 == 1 { -1 } else { 1 };
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = u128::from(bits & ((1u64 << 52) - 1));
    if exp == 0 {
        (sign, frac, -1074)
    } else {
        (sign, frac | 1 << 52, exp - 1075)
    }
}

impl Exact {
    /// Zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// `self += a * b`, exactly.
    pub fn add_product(&mut self, a: f64, b: f64) {
        let (sa, ma, ea) = decompose(a);
        let (sb, mb, eb) = decompose(b);
        let shift = usize::try_from(ea + eb + BIAS).expect("2^-2148 is the smallest product");
        // ma * mb < 2^106: exact in u128.
        self.0 += (BigInt::from(sa * sb) * BigInt::from(ma * mb)) << shift;
    }

    /// `self += a`.
    pub fn add(&mut self, a: f64) {
        self.add_product(a, 1.0);
    }

    /// `self += k * other`.
    pub fn add_scaled(&mut self, other: &Exact, k: i128) {
        self.0 += &other.0 * BigInt::from(k);
    }

    /// The sign of the exact value: -1, 0 or 1.
    pub fn signum(&self) -> i32 {
        match self.0.sign() {
            Sign::Minus => -1,
            Sign::NoSign => 0,
            Sign::Plus => 1,
        }
    }
}

/// True iff `got` is `value / scale` (`scale > 0`) rounded to the nearest float64, ties
/// to even: `got` lies within half an ulp on each side, the sides computed exactly.
pub fn is_rounding_of(value: &Exact, scale: f64, got: f64) -> bool {
    if !got.is_finite() {
        return false;
    }
    let even = got.to_bits() & 1 == 0;
    // sign of 2 * value - scale * (got + neighbour)
    let side = |neighbour: f64| {
        let mut t = Exact::new();
        t.add_scaled(value, 2);
        t.add_product(-scale, got);
        t.add_product(-scale, neighbour);
        t.signum()
    };
    let above = side(next_up(got));
    let below = side(next_down(got));
    (above < 0 || (above == 0 && even)) && (below > 0 || (below == 0 && even))
}

/// A ring taken open (SPEC.md): a last vertex equal to the first is dropped.
pub fn open(ring: &[(f64, f64)]) -> &[(f64, f64)] {
    match ring {
        [first, .., last] if first == last => &ring[..ring.len() - 1],
        _ => ring,
    }
}

/// Twice the signed shoelace area of a ring, exactly.
fn ring_area2(ring: &[(f64, f64)]) -> Exact {
    let ring = open(ring);
    let mut s = Exact::new();
    for i in 0..ring.len() {
        let (x, y) = ring[i];
        let (px, py) = ring[(i + ring.len() - 1) % ring.len()];
        s.add_product(x, py);
        s.add_product(-y, px);
    }
    s
}

/// Twice SPEC.md's area of `polygon`, exactly: per part, |exterior| minus |holes|.
pub fn exact_area2(polygon: &[Part]) -> Exact {
    let mut area2 = Exact::new();
    for part in polygon {
        for (k, ring) in part.iter().enumerate() {
            let a = ring_area2(ring);
            let sign = i128::from(a.signum());
            area2.add_scaled(&a, if k == 0 { sign } else { -sign });
        }
    }
    area2
}

/// Assert that row `row` of `p` has SPEC.md's center (and area, if `check_area`) for
/// `polygon`, exactly.
pub fn assert_exact_parts(p: &PolygonColumns, row: usize, polygon: &[Part], check_area: bool) {
    let (mut sx, mut sy, mut n) = (Exact::new(), Exact::new(), 0usize);
    for part in polygon {
        for &(x, y) in open(&part[0]) {
            sx.add(x);
            sy.add(y);
            n += 1;
        }
    }
    let (cx, cy, area) = (p.center_x()[row], p.center_y()[row], p.area()[row]);
    assert!(
        !check_area || is_rounding_of(&exact_area2(polygon), 2.0, area),
        "row {row}: area {area:e} is not the exact area rounded"
    );
    assert!(
        is_rounding_of(&sx, n as f64, cx),
        "row {row}: center x {cx:e} is not the exact mean rounded"
    );
    assert!(
        is_rounding_of(&sy, n as f64, cy),
        "row {row}: center y {cy:e} is not the exact mean rounded"
    );
}

/// [`assert_exact_parts`] with the area checked.
pub fn assert_exact(p: &PolygonColumns, row: usize, polygon: &[Part]) {
    assert_exact_parts(p, row, polygon, true);
}
