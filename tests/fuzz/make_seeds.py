"""Write the fuzz targets' seed inputs into tests/fuzz/seeds/ (run from anywhere).

The seeds are small valid inputs for each target, from which libFuzzer mutates:
WKB records in the `wkb` target's framing, `to_bytes()` of small indexes, and small
(Geo)Parquet files of every layout polymatch reads.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import polymatch as pm

SEEDS = Path(__file__).resolve().parent / "seeds"


def wkb_polygon(rings: list[list[tuple[float, float]]], big: bool = False) -> bytes:
    e = ">" if big else "<"
    out = bytes([0 if big else 1]) + struct.pack(e + "II", 3, len(rings))
    for ring in rings:
        out += struct.pack(e + "I", len(ring))
        for x, y in ring:
            out += struct.pack(e + "dd", x, y)
    return out


def wkb_multipolygon(parts: list[list[list[tuple[float, float]]]]) -> bytes:
    out = bytes([1]) + struct.pack("<II", 6, len(parts))
    for part in parts:
        out += wkb_polygon(part)
    return out


def wkb_point(x: float, y: float) -> bytes:
    return bytes([1]) + struct.pack("<Idd", 1, x, y)


def frame(flags: int, records: list[bytes | None], points: list[float]) -> bytes:
    out = bytes([flags, len(records)])
    for r in records:
        out += struct.pack("<H", 0xFFFF) if r is None else struct.pack("<H", len(r)) + r
    return out + struct.pack(f"<{len(points)}d", *points)


SQUARE = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)]
HOLE = [(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.25)]
TRI = [(5.0, 5.0), (7.0, 5.0), (6.0, 7.0)]


def main() -> None:
    wkb = {
        "polygons": frame(
            0, [wkb_polygon([SQUARE]), None, wkb_polygon([TRI], big=True)], [0.5, 0.5, 6.0, 5.5]
        ),
        "holes_large": frame(
            1,
            [wkb_polygon([SQUARE, HOLE]), wkb_multipolygon([[SQUARE], [TRI]])],
            [0.3, 0.3, 1e300, -1e300],
        ),
        "view_points": frame(2, [wkb_point(0.5, 0.5), wkb_point(-0.0, 5e-324)], [0.0, 0.0]),
    }
    for name, data in wkb.items():
        (SEEDS / "wkb" / name).write_bytes(data)

    x = np.array([0, 1, 1, 0, 5, 7, 6, 2, 3, 2.5], dtype=np.float64)
    y = np.array([0, 0, 1, 1, 5, 5, 7, 2, 2, 9], dtype=np.float64)
    for name, offsets in {"three": [0, 4, 7, 10], "one": [0, 4]}.items():
        index = pm.PolygonIndex.from_coords(x, y, np.array(offsets, dtype=np.int64))
        # flag byte: 1 = the target recomputes the checksum after mutation
        (SEEDS / "index_bytes" / name).write_bytes(b"\x01" + index.to_bytes())

    geo = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Polygon"]}},
    }
    wkb_table = pa.table(
        {
            "id": [1, 2, 3],
            "geometry": pa.array([wkb_polygon([SQUARE]), None, wkb_polygon([TRI])], pa.binary()),
        }
    ).replace_schema_metadata({"geo": json.dumps(geo)})
    coord = pa.struct([("x", pa.float64()), ("y", pa.float64())])
    native = pa.array(
        [[[{"x": a, "y": b} for a, b in SQUARE]], None, [[{"x": a, "y": b} for a, b in TRI]]],
        pa.list_(pa.list_(coord)),
    )
    geo_native = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "polygon", "geometry_types": ["Polygon"]}},
    }
    files = {
        "wkb.parquet": wkb_table,
        "native.parquet": pa.table({"geometry": native}).replace_schema_metadata(
            {"geo": json.dumps(geo_native)}
        ),
        "xy_lists.parquet": pa.table({"x": [[0.0, 1.0, 1.0]], "y": [[0.0, 0.0, 1.0]]}),
        "points.parquet": pa.table({"x": [0.5, None, 6.0], "y": [0.5, 1.0, 5.5], "id": [7, 8, 9]}),
    }
    for name, table in files.items():
        pq.write_table(table, SEEDS / "parquet" / name, row_group_size=2)


if __name__ == "__main__":
    main()
