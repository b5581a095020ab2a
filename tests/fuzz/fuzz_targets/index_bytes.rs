//! `SpatialIndex::from_bytes` on arbitrary bytes: an error or an index that can be
//! queried, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polymatch::{match_points, How, MatchOptions, PointSlices, SpatialIndex};

fuzz_target!(|data: &[u8]| {
    let Ok(index) = SpatialIndex::from_bytes(data) else {
        return;
    };
    let (cx, cy, _) = index.derived_columns();
    let mut xs: Vec<f64> = cx.iter().take(32).copied().collect();
    let mut ys: Vec<f64> = cy.iter().take(32).copied().collect();
    xs.extend([0.0, 1e300, -1e300]);
    ys.extend([0.0, -1e300, 1e300]);
    for max_dist in [f64::INFINITY, 1.0, 1e-300] {
        for all_candidates in [false, true] {
            let options = MatchOptions {
                max_dist,
                how: How::Left,
                all_candidates,
                chunk_size: 5,
            };
            let slices = PointSlices::new(&xs, &ys, None).expect("same lengths");
            let _ = match_points(&index, slices, &options, 0, None).expect("valid options");
        }
    }
});
