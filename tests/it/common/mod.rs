//! What every test module shares: one WKB writer ([`wkb`]), one RNG
//! ([`polymatch::synth::Rng`] and two helpers here), one exact oracle ([`exact`]), one
//! brute-force match oracle ([`oracle`]) and the Arrow array and batch builders
//! ([`arrays`]).

pub mod arrays;
pub mod exact;
pub mod oracle;
pub mod wkb;

pub use polymatch::synth::Rng;

/// A ring: its vertices in order (closed or open).
pub type Ring = Vec<(f64, f64)>;
/// A polygon part: its exterior ring, then its holes.
pub type Part = Vec<Ring>;
/// A polygon as parts.
pub type Multi = Vec<Part>;

/// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
pub fn below(rng: &mut Rng, n: u64) -> u64 {
    rng.next_u64() % n
}

/// Fisher-Yates shuffle.
pub fn shuffle<T>(rng: &mut Rng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        v.swap(i, below(rng, i as u64 + 1) as usize);
    }
}

/// The next float64 up (`f64::next_up`, stable since Rust 1.86, the crate's MSRV).
pub fn next_up(x: f64) -> f64 {
    x.next_up()
}

/// The next float64 down.
pub fn next_down(x: f64) -> f64 {
    x.next_down()
}

/// The repository root (sample_data/, tests/data/).
pub fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Write `batch` as a Parquet file, with a `geo` key-value entry (as GeoParquet writers
/// do) if given.
pub fn write_parquet(path: &std::path::Path, batch: &arrow::array::RecordBatch, geo: Option<&str>) {
    let file = std::fs::File::create(path).unwrap();
    let props = geo.map(|geo| {
        let kv = parquet::file::metadata::KeyValue::new("geo".into(), geo.to_string());
        parquet::file::properties::WriterProperties::builder()
            .set_key_value_metadata(Some(vec![kv]))
            .build()
    });
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), props).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}
