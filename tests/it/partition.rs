//! Tiles and halos against the brute-force rule (proptest): every polygon that is a
//! candidate of a point (SPEC's `distance < max_dist`) is in the polygon set of the
//! point's one tile, for samples with ties, points on the cuts and at exact boundary
//! distances; and a tiling survives its node round trip.

use polymatch::index::distance;
use polymatch::Tiling;
use proptest::prelude::*;

use crate::common::{next_down, next_up};

/// Coordinates on a coarse grid (ties, points on cuts) or anywhere, with some huge ones.
fn coord() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => (-8i32..8).prop_map(|v| v as f64 * 0.5),
        4 => -10.0f64..10.0,
        1 => prop_oneof![Just(1e15), Just(-1e15), Just(1e-300)],
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_candidate_is_in_its_points_tile(
        centers in prop::collection::vec((coord(), coord()), 0..60),
        points in prop::collection::vec((coord(), coord()), 1..40),
        tiles in 1usize..12,
        max_dist in prop_oneof![Just(0.5), Just(1.0), 0.01f64..5.0, Just(1e-12)],
    ) {
        let cx: Vec<f64> = centers.iter().map(|c| c.0).collect();
        let cy: Vec<f64> = centers.iter().map(|c| c.1).collect();
        let tiling = Tiling::from_sample(&cx, &cy, tiles);
        prop_assert!(!tiling.is_empty() && tiling.len() <= tiles);
        prop_assert_eq!(&Tiling::from_nodes(&tiling.nodes()).unwrap(), &tiling);
        let (offsets, rows) = tiling.assign(&cx, &cy, max_dist, |_| true);
        prop_assert_eq!(offsets.len(), tiling.len() + 1);
        for &(px, py) in &points {
            let t = tiling.tile_of(px, py) as usize;
            let b = tiling.bounds(t as u32);
            prop_assert!(b[0] <= px && px <= b[2] && b[1] <= py && py <= b[3]);
            let set = &rows[offsets[t] as usize..offsets[t + 1] as usize];
            prop_assert!(set.windows(2).all(|w| w[0] < w[1]), "rows increase in a tile");
            // the radius itself, and radii at the exact distance to each center, a ulp
            // either side (the strict `<` boundary)
            let mut radii = vec![max_dist];
            for (&x, &y) in cx.iter().zip(&cy) {
                let d = distance(px, py, x, y);
                if d > 0.0 && d.is_finite() {
                    radii.extend([d, next_up(d), next_down(d)]);
                }
            }
            for r in radii {
                let (offs, rows) = tiling.assign(&cx, &cy, r, |_| true);
                let set = &rows[offs[t] as usize..offs[t + 1] as usize];
                for (i, (&x, &y)) in cx.iter().zip(&cy).enumerate() {
                    if distance(px, py, x, y) < r {
                        prop_assert!(set.binary_search(&(i as u32)).is_ok(),
                            "center {i} ({x}, {y}) within {r} of ({px}, {py}) but not in tile {t} {b:?}");
                    }
                }
            }
        }
    }
}
