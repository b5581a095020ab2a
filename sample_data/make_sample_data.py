"""Regenerate the inputs in sample_data/ (the expected outputs come from `make_golden.py`).

    .venv/bin/python sample_data/make_sample_data.py

- article/: the seed article's `generate_example()` (numpy RandomState(6)): 1000
  translated copies of a 10-vertex quarter circle and 100 points. Polygons twice:
  GeoParquet with WKB (rings closed, as WKB requires) and plain Parquet with the
  article's own `x`/`y` list columns (rings open). Points as Parquet `x`, `y`, `point_id`.
- synthetic/: `polymatch generate --polygons 5000 --points 20000 --seed 42`.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent


def article_example():
    rng = np.random.RandomState(6)
    xs = np.arange(0.0, 100.0, 1.0)
    rng.shuffle(xs)
    ys = np.arange(0.0, 100.0, 1.0)
    rng.shuffle(ys)
    base_x = np.arange(0.0, 1.0, 0.1)
    base_y = np.sqrt(1.0 - base_x**2)
    rings = []
    for _ in range(1000):
        dx = rng.randint(0.0, 100.0)
        dy = rng.randint(0.0, 100.0)
        rings.append((base_x + dx, base_y + dy))
    return rings, xs, ys


def wkb_polygon(x: np.ndarray, y: np.ndarray) -> bytes:
    x = np.append(x, x[0])
    y = np.append(y, y[0])
    coords = np.empty(2 * len(x))
    coords[0::2], coords[1::2] = x, y
    return struct.pack("<BII I", 1, 3, 1, len(x)) + coords.astype("<f8").tobytes()


def main() -> None:
    rings, xs, ys = article_example()
    out = HERE / "article"
    out.mkdir(exist_ok=True)
    allx = np.concatenate([r[0] for r in rings])
    ally = np.concatenate([r[1] for r in rings])
    geo = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {
            "geometry": {
                "encoding": "WKB",
                "geometry_types": ["Polygon"],
                "bbox": [allx.min(), ally.min(), allx.max(), ally.max()],
                # unknown: these coordinates are not longitude/latitude, which an omitted
                # crs would state (GeoParquet 1.1's default is OGC:CRS84)
                "crs": None,
            }
        },
    }
    polygons = pa.table(
        {
            "polygon_id": pa.array(range(len(rings)), pa.int64()),
            "geometry": pa.array([wkb_polygon(x, y) for x, y in rings], pa.binary()),
        }
    )
    polygons = polygons.replace_schema_metadata({"geo": json.dumps(geo)})
    pq.write_table(polygons, out / "polygons.parquet", compression="zstd")
    xy = pa.table(
        {
            "polygon_id": pa.array(range(len(rings)), pa.int64()),
            "x": pa.array([r[0] for r in rings], pa.list_(pa.float64())),
            "y": pa.array([r[1] for r in rings], pa.list_(pa.float64())),
        }
    )
    pq.write_table(xy, out / "polygons_xy.parquet", compression="zstd")
    points = pa.table({"point_id": pa.array(range(len(xs)), pa.int64()), "x": xs, "y": ys})
    pq.write_table(points, out / "points.parquet", compression="zstd")

    cmd = [sys.executable, "-m", "polymatch", "generate", "--polygons", "5000", "--points",
           "20000", "--seed", "42", "--out-dir", str(HERE / "synthetic")]  # fmt: skip
    subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
