//! The one WKB writer of the tests: ISO WKB or EWKB, either byte order, 2-D or with a Z
//! value (always 42.0, which polymatch must ignore).

use super::{Part, Ring};

/// How type codes carry Z and an SRID.
#[derive(Clone, Copy, Debug)]
pub enum Dialect {
    /// ISO: Z adds 1000 to the type code.
    Iso,
    /// EWKB (PostGIS): Z is flag `0x8000_0000`; an SRID sets `0x2000_0000` and follows
    /// the type code of the outermost geometry.
    Ewkb {
        /// The SRID written, if any.
        srid: Option<u32>,
    },
}

/// An encoding: byte order, dimensions, dialect.
#[derive(Clone, Copy, Debug)]
pub struct Wkb {
    /// Big-endian (byte-order flag 0) instead of little-endian (1).
    pub big_endian: bool,
    /// Write a Z value after each x, y.
    pub z: bool,
    /// ISO or EWKB type codes.
    pub dialect: Dialect,
}

impl Wkb {
    /// Little-endian 2-D ISO WKB, what most writers produce.
    pub const LE: Wkb = Wkb {
        big_endian: false,
        z: false,
        dialect: Dialect::Iso,
    };
    /// Big-endian 2-D ISO WKB.
    pub const BE: Wkb = Wkb {
        big_endian: true,
        ..Wkb::LE
    };
    /// Little-endian ISO WKB with Z (type codes 1001, 1003, 1006).
    pub const ISO_Z: Wkb = Wkb { z: true, ..Wkb::LE };
    /// Big-endian EWKB with Z and SRID 4326.
    pub const EWKB: Wkb = Wkb {
        big_endian: true,
        z: true,
        dialect: Dialect::Ewkb { srid: Some(4326) },
    };

    fn u32(&self, out: &mut Vec<u8>, v: u32) {
        out.extend(if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }

    fn f64(&self, out: &mut Vec<u8>, v: f64) {
        out.extend(if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }

    /// Byte order, type code (`base`: 1 Point, 2 LineString, 3 Polygon, 6 MultiPolygon)
    /// and, for the outermost geometry of EWKB with an SRID, the SRID.
    fn header(&self, out: &mut Vec<u8>, base: u32, outermost: bool) {
        out.push(u8::from(!self.big_endian));
        match self.dialect {
            Dialect::Iso => self.u32(out, base + if self.z { 1000 } else { 0 }),
            Dialect::Ewkb { srid } => {
                let srid = srid.filter(|_| outermost);
                let mut code = base;
                if self.z {
                    code |= 0x8000_0000;
                }
                if srid.is_some() {
                    code |= 0x2000_0000;
                }
                self.u32(out, code);
                if let Some(srid) = srid {
                    self.u32(out, srid);
                }
            }
        }
    }

    fn coords(&self, out: &mut Vec<u8>, points: &[(f64, f64)]) {
        for &(x, y) in points {
            self.f64(out, x);
            self.f64(out, y);
            if self.z {
                self.f64(out, 42.0);
            }
        }
    }

    fn rings(&self, out: &mut Vec<u8>, rings: &[Ring]) {
        self.u32(out, rings.len() as u32);
        for ring in rings {
            self.u32(out, ring.len() as u32);
            self.coords(out, ring);
        }
    }

    /// A Point.
    pub fn point(&self, x: f64, y: f64) -> Vec<u8> {
        let mut out = Vec::new();
        self.header(&mut out, 1, true);
        self.coords(&mut out, &[(x, y)]);
        out
    }

    /// A LineString.
    pub fn linestring(&self, points: &[(f64, f64)]) -> Vec<u8> {
        let mut out = Vec::new();
        self.header(&mut out, 2, true);
        self.u32(&mut out, points.len() as u32);
        self.coords(&mut out, points);
        out
    }

    /// A Polygon of `rings` as given (nothing is closed or reordered).
    pub fn polygon(&self, rings: &[Ring]) -> Vec<u8> {
        let mut out = Vec::new();
        self.header(&mut out, 3, true);
        self.rings(&mut out, rings);
        out
    }

    /// A MultiPolygon; its polygons use the same encoding (and no SRID of their own).
    pub fn multipolygon(&self, parts: &[Part]) -> Vec<u8> {
        let mut out = Vec::new();
        self.header(&mut out, 6, true);
        self.u32(&mut out, parts.len() as u32);
        for part in parts {
            self.header(&mut out, 3, false);
            self.rings(&mut out, part);
        }
        out
    }
}
