"""Large zones with great-circle edges: ``predicate="covers"`` on five circles of 20,000
vertices read as ``"edges": "spherical"`` and as straight edges, 1M points.

    .venv/bin/python benches/arc_zones.py            # circles of 20,000 vertices
    .venv/bin/python benches/arc_zones.py --jag 10   # ten times the radial noise

The circles (radius 0.5-1 degree around 48-49 N) have a relative radial noise of
``jag * (0.05 sin(37 a) + 0.0005 N(0, 1))``; the points are uniform in their box. Prints
the first call (it builds the shape index: frames, stripes, interior cells) and the
median of five prepared calls for each reading of the edges, and whether the two gave
the same answers (they do for small noise: the arcs of 0.02 km edges bulge by
nanometres).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import pyarrow as pa
import shapely

import polymatch as pm


def circles(jag: float, seed: int = 5) -> list:
    rng = np.random.default_rng(seed)
    polys = []
    for k in range(5):
        cx, cy, r = 10 + 0.6 * k, 48 + 0.25 * k, rng.uniform(0.5, 1.0)
        a = np.linspace(0, 2 * np.pi, 20_000, endpoint=False)
        rr = r * (1 + jag * (0.05 * np.sin(37 * a) + 0.0005 * rng.normal(size=a.size)))
        x = cx + rr * np.cos(a) / np.cos(np.radians(cy))
        polys.append(shapely.Polygon(np.column_stack([x, cy + rr * np.sin(a)])))
    return polys


def table(wkb: pa.Array, edges: str | None) -> pa.Table:
    meta = {b"ARROW:extension:name": b"geoarrow.wkb"}
    if edges:
        meta[b"ARROW:extension:metadata"] = json.dumps({"edges": edges}).encode()
    field = pa.field("geometry", pa.binary(), metadata=meta)
    return pa.table([wkb], schema=pa.schema([field]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jag", type=float, default=1.0, help="radial noise multiplier")
    ap.add_argument("--points", type=int, default=1_000_000)
    args = ap.parse_args()
    polys = circles(args.jag)
    wkb = pa.array(shapely.to_wkb(polys), pa.binary())
    b = shapely.total_bounds(polys)
    rng = np.random.default_rng(6)
    n = args.points
    pts = pa.table({"x": rng.uniform(b[0], b[2], n), "y": rng.uniform(b[1], b[3], n)})
    ids = {}
    for name, edges in [("spherical", "spherical"), ("straight", None)]:
        index = pm.PolygonIndex.from_arrow(table(wkb, edges), metric="sphere")
        t0 = time.perf_counter()
        index.match(pts, predicate="covers", how="left")
        first = time.perf_counter() - t0
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            res = index.match(pts, predicate="covers", how="left")
            times.append(time.perf_counter() - t0)
        ids[name] = res["polygon_index"].to_numpy(zero_copy_only=False)
        print(
            f"jag={args.jag:g} {name} edges: first call {first:.3f} s, "
            f"median {statistics.median(times):.3f} s"
        )
    same = np.array_equal(
        np.nan_to_num(ids["spherical"].astype(float), nan=-1),
        np.nan_to_num(ids["straight"].astype(float), nan=-1),
    )
    print(f"same answers: {same}")


if __name__ == "__main__":
    main()
