"""Regenerate the expected outputs in sample_data/expected/ with the polymatch CLI.

    .venv/bin/python sample_data/make_golden.py

Each is the CSV of a `polymatch match` output (floats written with `repr`, so they read
back bit for bit). The article's expected matches are also checked against an exact
(fractions) oracle by tests/python/test_cli.py, so they are not only "what the code did".
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent

# metric="sphere": the two nearest zone centers within 1 km, bits pinned (pure-Rust libm)
GPS = ["--metric", "sphere", "--max-dist", "1000", "--rank-by", "distance", "--k", "2",
       "--how", "left", "--keep", "fix_id", "--keep-polygons", "zone_id"]  # fmt: skip

# metric="sphere", predicate="dwithin": the two nearest zone outlines within 200 m (0 in a
# zone), great-circle metres to the edges' arcs
GPS_OUTLINE = ["--metric", "sphere", "--predicate", "dwithin", "--max-dist", "200",
               "--rank-by", "distance", "--k", "2", "--how", "left", "--keep", "fix_id",
               "--keep-polygons", "zone_id"]  # fmt: skip

# metric="sphere", predicate="covers" on the zones with great-circle edges (GeoParquet
# "edges": "spherical"): the smallest zone that covers each fix, across the antimeridian
# with no split
GPS_ARCS = ["--metric", "sphere", "--predicate", "covers", "--how", "left", "--keep",
            "fix_id", "--keep-polygons", "zone_id"]  # fmt: skip

JOBS = {
    "article_matches": ["article/polygons.parquet", "article/points.parquet", []],
    "article_left": ["article/polygons.parquet", "article/points.parquet", ["--how", "left"]],
    "article_all_candidates": [
        "article/polygons.parquet",
        "article/points.parquet",
        ["--all-candidates"],
    ],
    "synthetic_matches": [
        "synthetic/polygons.parquet",
        "synthetic/points.parquet",
        ["--how", "left", "--keep", "point_id", "--keep-polygons", "polygon_id"],
    ],
    "gps_matches": ["gps/zones.parquet", "gps/fixes.parquet", GPS],
    "gps_outline_matches": ["gps/zones.parquet", "gps/fixes.parquet", GPS_OUTLINE],
    "gps_zone_arcs_matches": ["gps/zones_arcs.parquet", "gps/fixes.parquet", GPS_ARCS],
}


def write_csv(table, path: Path) -> None:
    with path.open("w") as f:
        f.write(",".join(table.column_names) + "\n")
        for row in zip(*(table.column(c).to_pylist() for c in table.column_names)):
            f.write(",".join("" if v is None else repr(v) for v in row) + "\n")


def main() -> None:
    (HERE / "expected").mkdir(exist_ok=True)
    for name, (polygons, points, extra) in JOBS.items():
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.parquet"
            cmd = [sys.executable, "-m", "polymatch", "match", "--quiet", *extra,
                   "--polygons", str(HERE / polygons), "--points", str(HERE / points),
                   "--out", str(out)]  # fmt: skip
            subprocess.run(cmd, check=True)
            write_csv(pq.read_table(out), HERE / "expected" / f"{name}.csv")


if __name__ == "__main__":
    main()
