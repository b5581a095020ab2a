//! Shared checks for the fuzz targets: whatever polygons an input produced, matching
//! them must agree with a brute-force oracle written straight from SPEC.md.

use arrow::array::Array;
use polymatch::index::distance;
use polymatch::{match_points, How, MatchOptions, PointSlices, PolygonColumns, SpatialIndex};

/// Read f64s from `data`, 8 bytes each (little-endian).
pub fn floats(data: &[u8]) -> Vec<f64> {
    data.chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

/// The best polygon row for (px, py) by SPEC.md, checking every polygon.
fn brute_best(p: &PolygonColumns, px: f64, py: f64, max_dist: f64) -> Option<u32> {
    let mut best: Option<(f64, usize)> = None;
    for j in 0..p.len() {
        if !p.matchable().is_valid(j) {
            continue;
        }
        let d = distance(px, py, p.center_x()[j], p.center_y()[j]);
        if !(d < max_dist) {
            continue;
        }
        let a = p.area()[j];
        if best.is_none_or(|(ba, _)| a < ba) {
            best = Some((a, j));
        }
    }
    best.map(|(_, j)| j as u32)
}

/// Build the index of `polygons`, match `points` (from `data`) at several distances and
/// compare with the brute-force oracle; round-trip the index through bytes. Panics
/// (a fuzz finding) on any disagreement.
pub fn check_matches(polygons: &PolygonColumns, data: &[u8]) {
    let index = SpatialIndex::new(polygons);
    let bytes = index.to_bytes();
    let again = SpatialIndex::from_bytes(&bytes).expect("own bytes load");
    let values = floats(data);
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for pair in values.chunks_exact(2).take(64) {
        xs.push(pair[0]);
        ys.push(pair[1]);
    }
    // Points at the centers too, so that some of them match.
    for j in 0..polygons.len().min(16) {
        xs.push(polygons.center_x()[j]);
        ys.push(polygons.center_y()[j]);
    }
    let mut radii = vec![f64::INFINITY, 1.0, 1e-300, 1e300];
    radii.extend(values.iter().take(2).map(|r| r.abs()).filter(|r| *r > 0.0));
    for max_dist in radii {
        for (which, idx) in [("built", &index), ("from bytes", &again)] {
            let options = MatchOptions {
                max_dist,
                how: How::Left,
                all_candidates: false,
                chunk_size: 7,
                ..MatchOptions::default()
            };
            let slices = PointSlices::new(&xs, &ys, None).expect("same lengths");
            let result = match_points(idx, slices, &options, 0, None).expect("valid options");
            let got = result
                .column(1)
                .as_any()
                .downcast_ref::<arrow::array::UInt32Array>()
                .expect("uint32 polygon_index");
            for (i, (&px, &py)) in xs.iter().zip(&ys).enumerate() {
                let want = brute_best(polygons, px, py, max_dist);
                let have = got.is_valid(i).then(|| got.value(i));
                assert_eq!(
                    have, want,
                    "{which} index: point {i} ({px:?}, {py:?}) max_dist {max_dist:?}"
                );
            }
        }
    }
}
