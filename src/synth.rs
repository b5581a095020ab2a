//! Deterministic synthetic data at any size: the article's workload, generalised.
//!
//! Polygons are star-shaped rings of `vertices` vertices around centers spread over a
//! square whose side is chosen so that a point has about `candidates` polygon centers
//! within `max_dist` (uniform case). Points are spread over the same square. With
//! `clustered`, both are drawn around the same few hundred cluster centers instead.
//! The same seed gives the same data on every machine.

use std::f64::consts::PI;
use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryBuilder, Float64Array, RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct SynthSpec {
    /// Number of polygons.
    pub polygons: usize,
    /// Number of points.
    pub points: usize,
    /// Seed of the random stream.
    pub seed: u64,
    /// Draw polygons and points around cluster centers.
    pub clustered: bool,
    /// Vertices per polygon ring (at least 3).
    pub vertices: usize,
    /// The match distance the density is tuned for.
    pub max_dist: f64,
    /// Polygon centers within `max_dist` of a point, on average (uniform case).
    pub candidates: f64,
}

impl Default for SynthSpec {
    fn default() -> Self {
        Self {
            polygons: 1000,
            points: 10_000,
            seed: 6,
            clustered: false,
            vertices: 10,
            max_dist: 10.0,
            candidates: 30.0,
        }
    }
}

/// SplitMix64: small, fast, and identical everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * PI * v).cos()
    }
}

impl SynthSpec {
    /// Side of the square everything lies in.
    pub fn side(&self) -> f64 {
        self.max_dist * (self.polygons.max(1) as f64 * PI / self.candidates).sqrt()
    }

    fn clusters(&self) -> Vec<(f64, f64)> {
        let mut rng = Rng::new(self.seed ^ 0xc1u64);
        let k = (self.polygons / 1000).clamp(1, 500);
        (0..k)
            .map(|_| (rng.uniform() * self.side(), rng.uniform() * self.side()))
            .collect()
    }

    fn location(&self, rng: &mut Rng, clusters: &[(f64, f64)]) -> (f64, f64) {
        let side = self.side();
        if self.clustered {
            let (cx, cy) = clusters[(rng.next_u64() % clusters.len() as u64) as usize];
            let sigma = side / (4.0 * (clusters.len() as f64).sqrt());
            (cx + sigma * rng.normal(), cy + sigma * rng.normal())
        } else {
            (rng.uniform() * side, rng.uniform() * side)
        }
    }

    /// The polygons as record batches of `polygon_id` (uint64) and `geometry` (WKB,
    /// closed rings), plus their bounding box.
    pub fn polygon_batches(&self, batch_rows: usize) -> (Vec<RecordBatch>, [f64; 4]) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("polygon_id", DataType::UInt64, false),
            Field::new("geometry", DataType::Binary, false),
        ]));
        let clusters = self.clusters();
        let mut rng = Rng::new(self.seed);
        let mut bbox = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        let radius = self.max_dist * 0.1;
        let n = self.vertices.max(3);
        let mut batches = Vec::new();
        let mut start = 0;
        while start < self.polygons {
            let end = (start + batch_rows).min(self.polygons);
            let mut wkb =
                BinaryBuilder::with_capacity(end - start, (end - start) * (13 + 16 * (n + 1)));
            let mut buf = Vec::with_capacity(13 + 16 * (n + 1));
            for _ in start..end {
                let (cx, cy) = self.location(&mut rng, &clusters);
                let r = radius * (0.5 + rng.uniform());
                buf.clear();
                buf.push(1u8);
                buf.extend_from_slice(&3u32.to_le_bytes());
                buf.extend_from_slice(&1u32.to_le_bytes());
                buf.extend_from_slice(&((n + 1) as u32).to_le_bytes());
                let mut first = (0.0, 0.0);
                for k in 0..n {
                    let a = 2.0 * PI * (k as f64 + 0.5 * rng.uniform()) / n as f64;
                    let rr = r * (0.6 + 0.4 * rng.uniform());
                    let (x, y) = (cx + rr * a.cos(), cy + rr * a.sin());
                    if k == 0 {
                        first = (x, y);
                    }
                    bbox = [
                        bbox[0].min(x),
                        bbox[1].min(y),
                        bbox[2].max(x),
                        bbox[3].max(y),
                    ];
                    buf.extend_from_slice(&x.to_le_bytes());
                    buf.extend_from_slice(&y.to_le_bytes());
                }
                buf.extend_from_slice(&first.0.to_le_bytes());
                buf.extend_from_slice(&first.1.to_le_bytes());
                wkb.append_value(&buf);
            }
            let ids = UInt64Array::from_iter_values(start as u64..end as u64);
            let columns: Vec<ArrayRef> = vec![Arc::new(ids), Arc::new(wkb.finish())];
            batches.push(
                RecordBatch::try_new(schema.clone(), columns).expect("columns match the schema"),
            );
            start = end;
        }
        (batches, bbox)
    }

    /// Schema of [`SynthSpec::point_batch`].
    pub fn point_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("point_id", DataType::UInt64, false),
            Field::new("x", DataType::Float64, false),
            Field::new("y", DataType::Float64, false),
        ]))
    }

    /// Points `start..end` (`point_id`, `x`, `y`); the same rows whatever the batching.
    pub fn point_batch(&self, start: usize, end: usize) -> RecordBatch {
        let clusters = self.clusters();
        let (mut xs, mut ys) = (
            Vec::with_capacity(end - start),
            Vec::with_capacity(end - start),
        );
        for i in start..end {
            // One stream per point: batches can be made in any order, in parallel.
            let mut rng = Rng::new(
                self.seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
                    ^ (i as u64).wrapping_mul(0x9e37_79b9),
            );
            let (x, y) = self.location(&mut rng, &clusters);
            xs.push(x);
            ys.push(y);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from_iter_values(start as u64..end as u64)),
            Arc::new(Float64Array::from(xs)),
            Arc::new(Float64Array::from(ys)),
        ];
        RecordBatch::try_new(Self::point_schema(), columns).expect("columns match the schema")
    }
}
