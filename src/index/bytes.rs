//! Format version 4 of the serialised index: version 3 followed by a section that can
//! carry the polygons' outlines, so that an index read back answers the shape rules
//! (`contains`, `covers`, `dwithin`) as the one it was written from.
//!
//! Layout, every number little-endian, 8-byte integers unless said otherwise:
//!
//! ```text
//! "PMINDEX4"                      magic
//! version 3 body                  rows, matchable, order tag, name length, name,
//!                                 per rank: row (u32), area, center x, center y (f64),
//!                                 tree order (u32)           (see SpatialIndex::to_bytes)
//! outlines                        0: absent (nothing follows), 1: present, 2: present
//!                                 with spherical edges (since 2026-12-07):
//!   rows, parts, rings, coordinates, has validity (0 or 1)
//!   geom offsets   (rows + 1) x i64    row i has parts geom[i]..geom[i + 1]
//!   part offsets   (parts + 1) x i64   part j has rings part[j]..part[j + 1]
//!   ring offsets   (rings + 1) x i64   ring k has vertices ring[k]..ring[k + 1]
//!   x, y           coordinates x f64 each
//!   validity       ceil(rows / 8) bytes, bit i (least significant first) set if row i
//!                  is not null (Arrow's bitmap), only if "has validity" is 1
//! checksum                        FNV-1a over 8-byte words of everything before it
//! ```
//!
//! The buffers are [`PolygonColumns`]' own, written as they are (a sliced table's
//! offsets need not start at 0). Centers and areas are not in the section: reading
//! rebuilds the columns with [`PolygonColumns::try_new`], which validates the offsets
//! and recomputes them, and then requires them to equal the index's stored centers and
//! areas bit for bit, so that the outlines and the index cannot disagree.

use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, ScalarBuffer};

use super::{put_f64, Reader, SpatialIndex, MAGIC_V4};
use crate::error::{PolymatchError, Result};
use crate::polygons::{checked_offsets, PolygonColumns};
use crate::sphere::Edges;

/// The outlines section's marker: absent.
const ABSENT: u64 = 0;
/// The outlines section's marker: present.
const PRESENT: u64 = 1;
/// The outlines section's marker: present, with spherical edges (great-circle arcs).
const PRESENT_SPHERICAL: u64 = 2;

fn bad(why: impl Into<String>) -> PolymatchError {
    PolymatchError::InvalidIndexBytes(why.into())
}

fn put_i64(out: &mut Vec<u8>, v: &[i64]) {
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

impl SpatialIndex {
    /// Serialise to bytes of format version 4 (see the layout in this module's source):
    /// the index as [`SpatialIndex::to_bytes`] writes it, then `polygons`' flat buffers
    /// (coordinates, offsets, validity), or a marker that there are none, all inside
    /// the checksum. [`SpatialIndex::from_bytes_with_polygons`] reads both back.
    ///
    /// # Implementation
    /// O(P + coordinates), one copy of the buffers into the output.
    ///
    /// # Errors
    /// [`PolymatchError::InvalidArgument`] if `polygons` are not the ones indexed: a
    /// different number of rows or of matchable rows.
    pub fn to_bytes_with_polygons(&self, polygons: Option<&PolygonColumns>) -> Result<Vec<u8>> {
        let mut size = 64 + self.rank_row.len() * 32;
        if let Some(p) = polygons {
            if p.len() != self.rows || p.len() - p.matchable().null_count() != self.matchable() {
                return Err(PolymatchError::InvalidArgument(format!(
                    "the polygons ({} rows, {} matchable) are not the indexed ones ({} rows, \
                     {} matchable)",
                    p.len(),
                    p.len() - p.matchable().null_count(),
                    self.rows,
                    self.matchable()
                )));
            }
            size += 48
                + 8 * (p.geom_offsets().len() + p.part_offsets().len() + p.ring_offsets().len())
                + 16 * p.x().len()
                + p.len().div_ceil(8);
        }
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(MAGIC_V4);
        self.write_body(&mut out);
        match polygons {
            None => put_u64(&mut out, ABSENT),
            Some(p) => {
                put_u64(
                    &mut out,
                    match p.edges() {
                        Edges::Planar => PRESENT,
                        Edges::Spherical => PRESENT_SPHERICAL,
                    },
                );
                let nulls = p.nulls();
                for count in [
                    p.len(),
                    p.part_offsets().len() - 1,
                    p.ring_offsets().len() - 1,
                    p.x().len(),
                    usize::from(nulls.is_some()),
                ] {
                    put_u64(&mut out, count as u64);
                }
                for offsets in [p.geom_offsets(), p.part_offsets(), p.ring_offsets()] {
                    put_i64(&mut out, offsets);
                }
                put_f64(&mut out, p.x());
                put_f64(&mut out, p.y());
                if let Some(nulls) = nulls {
                    let mut bits = vec![0u8; p.len().div_ceil(8)];
                    for row in (0..p.len()).filter(|&row| nulls.is_valid(row)) {
                        bits[row / 8] |= 1 << (row % 8);
                    }
                    out.extend_from_slice(&bits);
                }
            }
        }
        let sum = super::checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        Ok(out)
    }

    /// Read what [`SpatialIndex::to_bytes_with_polygons`] wrote: the index, and the
    /// polygons if the bytes carry them. Bytes of format versions 2 and 3 (which
    /// [`SpatialIndex::to_bytes`] writes) load too, without polygons.
    ///
    /// The index is checked as [`SpatialIndex::from_bytes`] documents. The polygons are
    /// rebuilt with [`PolygonColumns::try_new`] (offsets validated, centers and areas
    /// recomputed) and must be the indexed ones: as many rows, as many matchable rows,
    /// and for every rank the row matchable, with the stored center and area, bit for bit.
    ///
    /// # Implementation
    /// O(P log P + coordinates): one copy of the buffers out of `bytes`, and the exact
    /// centers and areas recomputed in parallel (on the current rayon pool).
    ///
    /// # Errors
    /// [`PolymatchError::InvalidIndexBytes`] if the bytes are truncated, corrupt (checksum),
    /// of an unknown format version, or inconsistent (the outlines included).
    pub fn from_bytes_with_polygons(bytes: &[u8]) -> Result<(Self, Option<PolygonColumns>)> {
        let (version, mut r) = Self::open_bytes(bytes)?;
        let index = Self::read_body(&mut r, version)?;
        let polygons = if version >= 4 {
            match r.u64()? {
                ABSENT => None,
                PRESENT => Some((read_polygons(&mut r)?, Edges::Planar)),
                PRESENT_SPHERICAL => Some((read_polygons(&mut r)?, Edges::Spherical)),
                other => return Err(bad(format!("unknown outlines marker {other}"))),
            }
        } else {
            None
        };
        if !r.buf.is_empty() {
            return Err(bad("trailing bytes"));
        }
        let polygons = polygons
            .map(|(p, edges)| {
                p.build()?
                    .with_edges(edges)
                    .with_metric(index.metric())
                    .map_err(|e| bad(format!("the stored outlines are invalid: {e}")))
            })
            .transpose()?;
        if let Some(p) = &polygons {
            index.check_polygons(p)?;
        }
        Ok((index, polygons))
    }

    /// Whether `polygons` are the ones this index was built from: as many rows and
    /// matchable rows, each ranked row matchable, with the stored center and area bit for
    /// bit (so `-0.0` is not `0.0`, and NaN never equals anything stored: stored values
    /// are finite).
    fn check_polygons(&self, polygons: &PolygonColumns) -> Result<()> {
        if polygons.len() != self.rows {
            return Err(bad(format!(
                "the outlines have {} rows, the index {}",
                polygons.len(),
                self.rows
            )));
        }
        let matchable = polygons.len() - polygons.matchable().null_count();
        if matchable != self.matchable() {
            return Err(bad(format!(
                "the outlines have {matchable} matchable polygons, the index {}",
                self.matchable()
            )));
        }
        let same = |a: f64, b: f64| a.to_bits() == b.to_bits();
        let (cx, cy, area) = (polygons.center_x(), polygons.center_y(), polygons.area());
        for (k, &row) in self.rank_row.iter().enumerate() {
            let r = row as usize;
            if !polygons.matchable().is_valid(r)
                || !same(cx[r], self.rank_x[k])
                || !same(cy[r], self.rank_y[k])
                || !same(area[r], self.rank_area[k])
            {
                return Err(bad(format!(
                    "the outlines do not give the center and area the index stores for \
                     polygon row {row}"
                )));
            }
        }
        Ok(())
    }
}

/// The outlines section's buffers as read, before they are validated.
struct RawPolygons {
    x: Vec<f64>,
    y: Vec<f64>,
    geom_offsets: Vec<i64>,
    part_offsets: Vec<i64>,
    ring_offsets: Vec<i64>,
    validity: Option<(Vec<u8>, usize)>,
}

/// `count + 1` entries, refusing a count that does not fit.
fn plus_one(count: u64) -> Result<usize> {
    usize::try_from(count)
        .ok()
        .and_then(|c| c.checked_add(1))
        .ok_or_else(|| bad("size overflow"))
}

/// Read the outlines section after its marker. Every length is checked against what is
/// left before anything is allocated (a forged count cannot ask for a huge buffer).
fn read_polygons(r: &mut Reader<'_>) -> Result<RawPolygons> {
    let rows = r.u64()?;
    let parts = r.u64()?;
    let rings = r.u64()?;
    let coords = usize::try_from(r.u64()?).map_err(|_| bad("size overflow"))?;
    let has_validity = match r.u64()? {
        0 => false,
        1 => true,
        other => return Err(bad(format!("unknown validity marker {other}"))),
    };
    let geom_offsets = r.i64s(plus_one(rows)?)?;
    let part_offsets = r.i64s(plus_one(parts)?)?;
    let ring_offsets = r.i64s(plus_one(rings)?)?;
    let x = r.f64s(coords)?;
    let y = r.f64s(coords)?;
    let validity = if has_validity {
        let rows = geom_offsets.len() - 1;
        Some((r.take(rows.div_ceil(8))?.to_vec(), rows))
    } else {
        None
    };
    Ok(RawPolygons {
        x,
        y,
        geom_offsets,
        part_offsets,
        ring_offsets,
        validity,
    })
}

impl RawPolygons {
    /// Validate and rebuild the columns (their centers and areas recomputed).
    fn build(self) -> Result<PolygonColumns> {
        let invalid = |e: PolymatchError| bad(format!("the stored outlines are invalid: {e}"));
        let nulls = self.validity.map(|(bits, rows)| {
            NullBuffer::new(BooleanBuffer::new(Buffer::from_vec(bits), 0, rows))
        });
        PolygonColumns::try_new(
            ScalarBuffer::from(self.x),
            ScalarBuffer::from(self.y),
            checked_offsets(self.geom_offsets, "polygon").map_err(invalid)?,
            checked_offsets(self.part_offsets, "part").map_err(invalid)?,
            checked_offsets(self.ring_offsets, "ring").map_err(invalid)?,
            nulls,
        )
        .map_err(invalid)
    }
}
