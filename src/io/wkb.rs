//! A small, strict WKB reader for the geometry types polymatch matches on: Polygon and
//! MultiPolygon (polygons) and Point (points). ISO (`1003`) and EWKB (flag bits, SRID)
//! dimensions are accepted; Z and M values are read and dropped.

use crate::error::{PolymatchError, Result};

const EWKB_Z: u32 = 0x8000_0000;
const EWKB_M: u32 = 0x4000_0000;
const EWKB_SRID: u32 = 0x2000_0000;

/// Flat coordinates and offsets being built from many WKB polygons.
#[derive(Debug, Default)]
pub struct PolygonBuilder {
    /// x coordinates.
    pub x: Vec<f64>,
    /// y coordinates.
    pub y: Vec<f64>,
    /// polygon -> parts.
    pub geom_offsets: Vec<i64>,
    /// part -> rings.
    pub part_offsets: Vec<i64>,
    /// ring -> coordinates.
    pub ring_offsets: Vec<i64>,
}

impl PolygonBuilder {
    /// An empty builder (no rows).
    pub fn new() -> Self {
        Self {
            geom_offsets: vec![0],
            part_offsets: vec![0],
            ring_offsets: vec![0],
            ..Default::default()
        }
    }

    /// Close the current row (also used for null rows: no parts).
    pub fn finish_row(&mut self) {
        self.geom_offsets.push(self.part_offsets.len() as i64 - 1);
    }

    /// Append one WKB Polygon or MultiPolygon as a row. On error, the row is left
    /// unfinished; callers give up on the whole column.
    ///
    /// # Errors
    /// [`PolymatchError::InvalidGeometry`] for truncated or malformed WKB, or a geometry
    /// type other than Polygon/MultiPolygon.
    pub fn push_wkb(&mut self, wkb: &[u8], row: usize) -> Result<()> {
        let mut r = Cursor::new(wkb, row);
        let header = r.header()?;
        match header.kind {
            3 => self.read_polygon(&mut r, header)?,
            6 => {
                let parts = r.count()?;
                for _ in 0..parts {
                    let inner = r.header()?;
                    if inner.kind != 3 {
                        return Err(
                            r.err(format!("a MultiPolygon holds a {}", type_name(inner.kind)))
                        );
                    }
                    self.read_polygon(&mut r, inner)?;
                }
            }
            other => {
                return Err(PolymatchError::UnsupportedGeometry {
                    column: String::new(),
                    found: type_name(other).into(),
                    expected: "Polygon or MultiPolygon".into(),
                    row: Some(row),
                })
            }
        }
        r.done()?;
        self.finish_row();
        Ok(())
    }

    fn read_polygon(&mut self, r: &mut Cursor<'_>, header: Header) -> Result<()> {
        let rings = r.count()?;
        for _ in 0..rings {
            let n = r.count()?;
            r.need(n.saturating_mul(header.dims * 8))?;
            for _ in 0..n {
                let (x, y) = r.coord(header)?;
                self.x.push(x);
                self.y.push(y);
            }
            self.ring_offsets.push(self.x.len() as i64);
        }
        self.part_offsets.push(self.ring_offsets.len() as i64 - 1);
        Ok(())
    }
}

/// Read one WKB Point. `POINT EMPTY` (NaN coordinates) gives NaNs, which never match.
///
/// # Errors
/// [`PolymatchError::InvalidGeometry`] for malformed WKB, a non-point type.
pub fn read_point(wkb: &[u8], row: usize) -> Result<(f64, f64)> {
    let mut r = Cursor::new(wkb, row);
    let header = r.header()?;
    if header.kind != 1 {
        return Err(PolymatchError::UnsupportedGeometry {
            column: String::new(),
            found: type_name(header.kind).into(),
            expected: "Point".into(),
            row: Some(row),
        });
    }
    let xy = r.coord(header)?;
    r.done()?;
    Ok(xy)
}

fn type_name(kind: u32) -> &'static str {
    match kind {
        1 => "Point",
        2 => "LineString",
        3 => "Polygon",
        4 => "MultiPoint",
        5 => "MultiLineString",
        6 => "MultiPolygon",
        7 => "GeometryCollection",
        _ => "an unknown WKB geometry type",
    }
}

#[derive(Clone, Copy)]
struct Header {
    kind: u32,
    little: bool,
    dims: usize,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    row: usize,
    little: bool,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8], row: usize) -> Self {
        Self {
            buf,
            pos: 0,
            row,
            little: true,
        }
    }

    fn err(&self, what: impl Into<String>) -> PolymatchError {
        PolymatchError::invalid_geometry(
            self.row,
            format!("bad WKB at byte {}: {}", self.pos, what.into()),
        )
    }

    fn need(&self, n: usize) -> Result<()> {
        if self.buf.len() - self.pos < n {
            Err(self.err(format!("truncated ({} bytes in all)", self.buf.len())))
        } else {
            Ok(())
        }
    }

    fn u32(&mut self) -> Result<u32> {
        self.need(4)?;
        let b = [
            self.buf[self.pos],
            self.buf[self.pos + 1],
            self.buf[self.pos + 2],
            self.buf[self.pos + 3],
        ];
        self.pos += 4;
        Ok(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn f64(&mut self) -> Result<f64> {
        self.need(8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.buf[self.pos..self.pos + 8]);
        self.pos += 8;
        Ok(if self.little {
            f64::from_le_bytes(b)
        } else {
            f64::from_be_bytes(b)
        })
    }

    fn count(&mut self) -> Result<usize> {
        Ok(self.u32()? as usize)
    }

    fn header(&mut self) -> Result<Header> {
        self.need(5)?;
        self.little = match self.buf[self.pos] {
            0 => false,
            1 => true,
            b => return Err(self.err(format!("byte-order flag {b} (expected 0 or 1)"))),
        };
        self.pos += 1;
        let raw = self.u32()?;
        if raw & EWKB_SRID != 0 {
            self.u32()?; // the SRID itself
        }
        let (mut z, mut m) = (raw & EWKB_Z != 0, raw & EWKB_M != 0);
        let iso = raw & 0x0fff_ffff;
        let kind = iso % 1000;
        match iso / 1000 {
            0 => {}
            1 => z = true,
            2 => m = true,
            3 => (z, m) = (true, true),
            _ => return Err(self.err(format!("geometry type code {iso}"))),
        }
        Ok(Header {
            kind,
            little: self.little,
            dims: 2 + usize::from(z) + usize::from(m),
        })
    }

    fn coord(&mut self, h: Header) -> Result<(f64, f64)> {
        self.little = h.little;
        let x = self.f64()?;
        let y = self.f64()?;
        for _ in 2..h.dims {
            self.f64()?;
        }
        Ok((x, y))
    }

    fn done(&self) -> Result<()> {
        if self.pos != self.buf.len() {
            return Err(self.err(format!("{} trailing bytes", self.buf.len() - self.pos)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn polygon_wkb(little: bool, rings: &[&[(f64, f64)]]) -> Vec<u8> {
        let mut out = vec![u8::from(little)];
        let u = |v: u32| {
            if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        };
        let f = |v: f64| {
            if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        };
        out.extend(u(3));
        out.extend(u(rings.len() as u32));
        for ring in rings {
            out.extend(u(ring.len() as u32));
            for &(x, y) in *ring {
                out.extend(f(x));
                out.extend(f(y));
            }
        }
        out
    }

    #[test]
    fn reads_both_byte_orders_and_rejects_garbage() {
        let square: &[(f64, f64)] = &[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0)];
        for little in [true, false] {
            let mut b = PolygonBuilder::new();
            b.push_wkb(&polygon_wkb(little, &[square]), 0).unwrap();
            assert_eq!(b.x, vec![0.0, 1.0, 1.0, 0.0]);
            assert_eq!(b.geom_offsets, vec![0, 1]);
        }
        let good = polygon_wkb(true, &[square]);
        let mut b = PolygonBuilder::new();
        assert!(b.push_wkb(&good[..good.len() - 3], 4).is_err());
        let mut flag = good.clone();
        flag[0] = 7;
        assert!(matches!(
            b.push_wkb(&flag, 4),
            Err(PolymatchError::InvalidGeometry { row: 4, .. })
        ));
        let mut huge = good.clone();
        huge[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(b.push_wkb(&huge, 0).is_err());
        let mut point = vec![1u8];
        point.extend(1u32.to_le_bytes());
        point.extend(2.0f64.to_le_bytes());
        point.extend(3.0f64.to_le_bytes());
        assert_eq!(read_point(&point, 0).unwrap(), (2.0, 3.0));
        assert!(matches!(
            b.push_wkb(&point, 0),
            Err(PolymatchError::UnsupportedGeometry { .. })
        ));
    }
}
