//! GeoArrow ingest on arrays as they arrive through the C data interface: well-formed
//! in structure (buffer sizes, types) but with arbitrary *contents*: offsets that are out
//! of bounds or decreasing, validity bits anywhere, any float coordinates, any slicing.
//! `polygons_from_array` must return polygons or an error, never panic; the polygons it
//! returns must match as the brute-force oracle says.
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use arrow::array::{make_array, Array, ArrayData, ArrayRef, Float32Array, Float64Array};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, Fields};
use libfuzzer_sys::fuzz_target;
use polymatch::io::arrow_ingest::polygons_from_array;

#[derive(Arbitrary, Debug)]
struct Level {
    large: bool,
    /// Raw offsets: taken as they are (the point of the exercise).
    offsets: Vec<i16>,
    /// Validity bits, if any.
    validity: Option<Vec<u8>>,
    /// Make them a well-formed, non-decreasing sequence within the child first.
    tidy: bool,
}

#[derive(Arbitrary, Debug)]
enum Coords {
    Separated { float32: bool, x_nulls: Option<Vec<u8>> },
    Interleaved { dims: u8 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    coords: Coords,
    values: Vec<f64>,
    coord_validity: Option<Vec<u8>>,
    levels: Vec<Level>,
    slice: (u8, u8),
    extension: Option<bool>,
    points: Vec<u8>,
}

fn bitmap(bits: &Option<Vec<u8>>, len: usize) -> Option<Buffer> {
    let bits = bits.as_ref()?;
    let mut bytes = vec![0xffu8; len.div_ceil(8)];
    for (b, v) in bytes.iter_mut().zip(bits) {
        *b = *v;
    }
    Some(Buffer::from_vec(bytes))
}

fn coords(input: &Input) -> ArrayRef {
    match &input.coords {
        Coords::Separated { float32, x_nulls } => {
            let n = input.values.len() / 2;
            let (xs, ys) = (&input.values[..n], &input.values[n..2 * n]);
            let column = |v: &[f64], nulls: &Option<Vec<u8>>| -> ArrayRef {
                let data = if *float32 {
                    let f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
                    Float32Array::from(f).into_data()
                } else {
                    Float64Array::from(v.to_vec()).into_data()
                };
                let data = data
                    .into_builder()
                    .null_bit_buffer(bitmap(nulls, v.len()));
                // SAFETY: the buffers are the array's own; only the validity bits are new,
                // and the bitmap covers every slot.
                make_array(unsafe { data.build_unchecked() })
            };
            let (x, y) = (column(xs, x_nulls), column(ys, &None));
            let fields = Fields::from(vec![
                Field::new("x", x.data_type().clone(), true),
                Field::new("y", y.data_type().clone(), true),
            ]);
            let data = ArrayData::builder(DataType::Struct(fields))
                .len(n)
                .null_bit_buffer(bitmap(&input.coord_validity, n))
                .child_data(vec![x.into_data(), y.into_data()]);
            // SAFETY: children of length n, bitmap covering n slots.
            make_array(unsafe { data.build_unchecked() })
        }
        Coords::Interleaved { dims } => {
            let size = 2 + usize::from(dims % 3);
            let n = input.values.len() / size;
            let values = Float64Array::from(input.values[..n * size].to_vec());
            let field = Arc::new(Field::new("xy", DataType::Float64, true));
            let data = ArrayData::builder(DataType::FixedSizeList(field, size as i32))
                .len(n)
                .null_bit_buffer(bitmap(&input.coord_validity, n))
                .child_data(vec![values.into_data()]);
            // SAFETY: child of n * size values, bitmap covering n slots.
            make_array(unsafe { data.build_unchecked() })
        }
    }
}

fn list(child: ArrayRef, level: &Level) -> ArrayRef {
    let mut offsets: Vec<i64> = level.offsets.iter().map(|&o| i64::from(o)).collect();
    if offsets.is_empty() {
        offsets.push(0);
    }
    if level.tidy {
        let n = child.len() as i64;
        for o in offsets.iter_mut() {
            *o = o.rem_euclid(n + 1);
        }
        offsets.sort_unstable();
    }
    let len = offsets.len() - 1;
    let field = Arc::new(Field::new("item", child.data_type().clone(), true));
    let (data_type, buffer) = if level.large {
        (DataType::LargeList(field), Buffer::from_vec(offsets))
    } else {
        let small: Vec<i32> = offsets.iter().map(|&o| o as i32).collect();
        (DataType::List(field), Buffer::from_vec(small))
    };
    let data = ArrayData::builder(data_type)
        .len(len)
        .add_buffer(buffer)
        .null_bit_buffer(bitmap(&level.validity, len))
        .child_data(vec![child.into_data()]);
    // SAFETY: an offsets buffer of len + 1 entries and one child, as the C data interface
    // guarantees; their values are arbitrary, as a forged or corrupt producer's may be.
    make_array(unsafe { data.build_unchecked() })
}

fuzz_target!(|input: Input| {
    if input.levels.len() < 2 || input.levels.len() > 3 {
        return;
    }
    let mut array = coords(&input);
    for level in input.levels.iter().rev() {
        array = list(array, level);
    }
    let (start, len) = (usize::from(input.slice.0), usize::from(input.slice.1));
    if start + len <= array.len() && (start, len) != (0, 0) {
        array = array.slice(start, len);
    }
    let mut field = Field::new("geometry", array.data_type().clone(), true);
    if let Some(multi) = input.extension {
        let name = if multi { "geoarrow.multipolygon" } else { "geoarrow.polygon" };
        field = field.with_metadata(
            [("ARROW:extension:name".to_string(), name.to_string())].into(),
        );
    }
    if let Ok(polygons) = polygons_from_array(&field, &array) {
        polymatch_fuzz::check_matches(&polygons, &input.points);
    }
});
