"""Where a one-shot match's time goes, on the SQL engines' workload (100k polygons x 200k
uniform points, max_dist = 10): the index build, the first call at the radius (which
builds the cell lists), a prepared call, and `pm.match` one-shot from an Arrow table.

    .venv/bin/python benches/oneshot_parts.py [--repeat 11]

Each figure is a median of repeated calls in this one process (the machine is noisy:
compare figures of one run).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

import polymatch as pm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import index_source, synthetic  # noqa: E402
from targets import median_ms  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=11)
    args = parser.parse_args()
    w = synthetic(100_000, 200_000, False, 10.0)
    p = w.rings_x.shape[0]
    offsets = np.arange(0, p * 10 + 1, 10, dtype=np.int64)
    fx, fy = w.rings_x.ravel(), w.rings_y.ravel()
    points = pa.table({"x": w.points[:, 0], "y": w.points[:, 1]})
    source = index_source(fx, fy, offsets)

    def build():
        return pm.PolygonIndex.from_coords(fx, fy, offsets)

    def first_call() -> float:
        index = build()
        t = time.perf_counter()
        index.match(points, max_dist=w.max_dist, how="left")
        return time.perf_counter() - t

    index = build()
    index.match(points, max_dist=w.max_dist, how="left")
    rows = [
        ("index build (PolygonIndex.from_coords)", median_ms(build, args.repeat)),
        (
            "first call at the radius (builds the cell lists)",
            statistics.median(first_call() for _ in range(args.repeat)) * 1e3,
        ),
        (
            "prepared call",
            median_ms(lambda: index.match(points, max_dist=w.max_dist, how="left"), args.repeat),
        ),
        (
            "one-shot pm.match(Arrow table, points)",
            median_ms(lambda: pm.match(source, points, max_dist=w.max_dist), args.repeat),
        ),
    ]
    print(f"{w.name}, medians of {args.repeat}")
    for name, ms in rows:
        print(f"{name:<52} {ms:8.2f} ms")


if __name__ == "__main__":
    main()
