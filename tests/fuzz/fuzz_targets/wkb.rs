//! WKB ingest: arbitrary byte strings as a WKB polygon column (and as a WKB point
//! column). Must return polygons or an error, never panic; polygons it returns must
//! match as the brute-force oracle says.
//!
//! Input: byte 0 = flags (bit 0: LargeBinary, bit 1: BinaryView), byte 1 = record
//! count; each record is a u16 (LE) length then that many bytes (0xFFFF = null); the
//! rest are points (f64 pairs) for the match check.
#![no_main]

use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray, BinaryViewArray, LargeBinaryArray};
use arrow::datatypes::Field;
use libfuzzer_sys::fuzz_target;
use polymatch::io::arrow_ingest::{points_from_array, polygons_from_array};

fn records(data: &[u8]) -> (u8, Vec<Option<&[u8]>>, &[u8]) {
    let (Some(&flags), Some(&count)) = (data.first(), data.get(1)) else {
        return (0, Vec::new(), &[]);
    };
    let mut rest = &data[2..];
    let mut out = Vec::new();
    for _ in 0..count {
        if rest.len() < 2 {
            break;
        }
        let len = u16::from_le_bytes([rest[0], rest[1]]);
        rest = &rest[2..];
        if len == u16::MAX {
            out.push(None);
            continue;
        }
        let len = usize::from(len).min(rest.len());
        out.push(Some(&rest[..len]));
        rest = &rest[len..];
    }
    (flags, out, rest)
}

fuzz_target!(|data: &[u8]| {
    let (flags, values, points) = records(data);
    let array: ArrayRef = match flags & 3 {
        1 => Arc::new(LargeBinaryArray::from(values)),
        2 => Arc::new(BinaryViewArray::from(values)),
        _ => Arc::new(BinaryArray::from(values)),
    };
    let field = Field::new("geometry", array.data_type().clone(), true);
    let _ = points_from_array(&field, &array);
    if let Ok(polygons) = polygons_from_array(&field, &array) {
        polymatch_fuzz::check_matches(&polygons, points);
    }
});
