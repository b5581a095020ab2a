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


def gps_example(out: Path) -> None:
    """Zones and GPS fixes in longitude/latitude (OGC:CRS84) for metric="sphere": small
    hexagons (200-800 m) around Paris, across the antimeridian in Fiji, and at 78 N in
    Svalbard, and fixes around them (both longitude conventions near 180)."""
    out.mkdir(exist_ok=True)
    rng = np.random.default_rng(32)
    sites = [(2.35, 48.86), (180.0, -17.0), (15.6, 78.2)]
    zones, bbox = [], [np.inf, np.inf, -np.inf, -np.inf]
    for k in range(600):
        lon0, lat0 = sites[k % 3]
        lat = lat0 + rng.uniform(-0.05, 0.05)
        lon = lon0 + rng.uniform(-0.05, 0.05) / np.cos(np.radians(lat))
        r = rng.uniform(200, 800) / 111_195  # metres -> degrees of latitude
        ang = np.sort(rng.uniform(0, 2 * np.pi, 6))
        x = lon + r * np.cos(ang) / np.cos(np.radians(lat))
        y = lat + r * np.sin(ang)
        x = np.where(x > 180, x - 360, x)
        bbox = [min(bbox[0], x.min()), min(bbox[1], y.min()),
                max(bbox[2], x.max()), max(bbox[3], y.max())]  # fmt: skip
        zones.append(wkb_polygon(x, y))
    geo = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {
            "geometry": {
                "encoding": "WKB",
                "geometry_types": ["Polygon"],
                "bbox": bbox,
                "crs": "OGC:CRS84",
            }
        },
    }
    table = pa.table(
        {
            "zone_id": pa.array(range(len(zones)), pa.int64()),
            "geometry": pa.array(zones, pa.binary()),
        }
    )
    pq.write_table(
        table.replace_schema_metadata({"geo": json.dumps(geo)}),
        out / "zones.parquet",
        compression="zstd",
    )
    # the same zones read with great-circle edges (GeoParquet "edges": "spherical"): the
    # arcs bulge poleward of the straight lines by micrometres here, hence the bbox's
    # latitudes widened by 1e-6 degrees
    arcs = json.loads(json.dumps(geo))
    column = arcs["columns"]["geometry"]
    column["edges"] = "spherical"
    column["bbox"] = [bbox[0], bbox[1] - 1e-6, bbox[2], bbox[3] + 1e-6]
    pq.write_table(
        table.replace_schema_metadata({"geo": json.dumps(arcs)}),
        out / "zones_arcs.parquet",
        compression="zstd",
    )
    n = 3000
    site = rng.integers(0, 3, n)
    lat = np.array([sites[s][1] for s in site]) + rng.uniform(-0.06, 0.06, n)
    lon = np.array([sites[s][0] for s in site]) + rng.uniform(-0.06, 0.06, n) / np.cos(
        np.radians(lat)
    )
    # near 180: half in [-180, 180], half in [0, 360]
    lon = np.where((lon > 180) & (np.arange(n) % 2 == 0), lon - 360, lon)
    fixes = pa.table({"fix_id": pa.array(range(n), pa.int64()), "x": lon, "y": lat})
    pq.write_table(fixes, out / "fixes.parquet", compression="zstd")


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

    gps_example(HERE / "gps")

    cmd = [sys.executable, "-m", "polymatch", "generate", "--polygons", "5000", "--points",
           "20000", "--seed", "42", "--out-dir", str(HERE / "synthetic")]  # fmt: skip
    subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
