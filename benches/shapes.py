"""The shape rules against the peers: for each point, the smallest-area polygon that
covers it (issue 30's workloads), side by side in one process, answers checked.

    .venv/bin/python benches/shapes.py            # 100k polygons x 1M points, 5 huge x 1M
    .venv/bin/python benches/shapes.py --quick    # small sizes; asserts agreement (CI)

Workloads:
- *many small*: the benches' uniform workload (benches/compare.py `synthetic`): 100k
  jittered 10-gons, 1M uniform points.
- *few huge*: 5 overlapping jittered circles of 20,000 vertices each (100k vertices in
  all; a stand-in for city boroughs), 1M points in their box.

Systems: polymatch (`PolygonIndex.match(predicate="covers")` on a prepared index: the
first call at a rule builds its shape index, timed apart), DuckDB spatial (`ST_Covers`
SPATIAL_JOIN + `arg_min` by area; EXPLAIN checked), SedonaDB (`ST_Covers` +
`first_value` by area), shapely (`STRtree.query(predicate="covers")` + a group-min by
area) and geopandas (`sjoin(predicate="covered_by")` + groupby). Each timing is the
median of --repeat runs; a peer estimated above --budget seconds (from a slice of the
points) is timed on that slice and scaled, with a note. Every peer's best polygon per
point is compared with polymatch's (valid polygons, no point exactly on a boundary
shared by two candidates of equal area: the rules agree).
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
from compare import polygons_wkb, synthetic, versions  # noqa: E402


def huge(circles: int, vertices: int, n: int, seed: int = 3):
    """Overlapping jittered circles of `vertices` vertices, and `n` points in their box."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    centers = rng.uniform(0, 100, (circles, 2))
    radius = rng.uniform(20, 35, (circles, 1)) * (
        1 + 0.02 * rng.standard_normal((circles, vertices))
    )
    rx = centers[:, :1] + radius * np.cos(t)[None, :]
    ry = centers[:, 1:] + radius * np.sin(t)[None, :]
    lo, hi = min(rx.min(), ry.min()), max(rx.max(), ry.max())
    return rx, ry, rng.uniform(lo, hi, (n, 2))


def median_time(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def best_by_area(point_idx, poly_idx, area, n) -> np.ndarray:
    """The smallest-area (then lowest-row) polygon per point from candidate pairs."""
    out = np.full(n, -1, np.int64)
    if len(point_idx) == 0:
        return out
    order = np.lexsort((poly_idx, area[poly_idx], point_idx))
    p, g = point_idx[order], poly_idx[order]
    first = np.r_[True, p[1:] != p[:-1]]
    out[p[first]] = g[first]
    return out


def ours(index, pts):
    res = index.match(pts, predicate="covers", how="left")
    return res["polygon_index"].cast(pa.int64()).fill_null(-1).to_numpy()


def peer_shapely(geoms, area, pts):
    import shapely

    tree = shapely.STRtree(geoms)
    pairs = tree.query(shapely.points(pts), predicate="covered_by")  # point covered_by poly
    return best_by_area(pairs[0], pairs[1], area, len(pts))


def peer_geopandas(geoms, area, pts):
    import geopandas as gpd

    polys = gpd.GeoDataFrame({"area": area}, geometry=geoms)
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(pts[:, 0], pts[:, 1]))
    j = gpd.sjoin(points, polys, predicate="covered_by", how="inner")
    return best_by_area(j.index.to_numpy(), j["index_right"].to_numpy(), area, len(pts))


DUCKDB_QUERY = """
WITH best AS (
    SELECT pt.point_row, arg_min(pg.polygon_row, (pg.area, pg.polygon_row)) AS polygon_row
    FROM points pt JOIN polygons pg ON ST_Covers(pg.geom, pt.geom)
    GROUP BY pt.point_row
)
SELECT pt.point_row, best.polygon_row
FROM points pt LEFT JOIN best ON pt.point_row = best.point_row
ORDER BY pt.point_row
"""

SEDONA_QUERY = """
WITH best AS (
    SELECT pt.point_row, first_value(pg.polygon_row ORDER BY pg.area, pg.polygon_row)
           AS polygon_row
    FROM points pt JOIN polygons pg ON ST_Covers(pg.geom, pt.geom)
    GROUP BY pt.point_row
)
SELECT pt.point_row, best.polygon_row
FROM points pt LEFT JOIN best ON pt.point_row = best.point_row
ORDER BY pt.point_row
"""


class DuckDB:
    name = "DuckDB spatial ST_Covers + arg_min"

    def __init__(self, wkb, area):
        import duckdb
        import duckdb_ext

        self.con = duckdb_ext.init(duckdb.connect())
        self.con.execute("LOAD spatial")
        polygons = pa.table({"polygon_row": np.arange(len(area)), "wkb": wkb, "area": area})
        self.con.register("polygons_arrow", polygons)
        self.con.execute(
            "CREATE OR REPLACE TABLE polygons AS SELECT polygon_row, "
            "ST_GeomFromWKB(wkb) AS geom, area FROM polygons_arrow"
        )

    def load(self, pts):
        self.con.register(
            "points_arrow",
            pa.table({"point_row": np.arange(len(pts)), "x": pts[:, 0], "y": pts[:, 1]}),
        )
        self.con.execute(
            "CREATE OR REPLACE TABLE points AS SELECT point_row, ST_Point(x, y) AS geom FROM points_arrow"
        )
        plan = self.con.execute("EXPLAIN " + DUCKDB_QUERY).fetchall()[0][1]
        if "SPATIAL_JOIN" not in plan:
            raise RuntimeError(f"DuckDB did not plan a SPATIAL_JOIN:\n{plan}")

    def query(self, n):
        t = self.con.execute(DUCKDB_QUERY).fetch_arrow_table()
        return t.column("polygon_row").cast(pa.int64()).fill_null(-1).to_numpy()


class Sedona:
    name = "SedonaDB ST_Covers + first_value"

    def __init__(self, wkb, area):
        import geoarrow.pyarrow as ga
        import sedonadb

        self.sd = sedonadb.connect()
        polygons = pa.table(
            {"polygon_row": np.arange(len(area)), "geom": ga.wkb().wrap_array(wkb), "area": area}
        )
        self.sd.create_data_frame(polygons).to_memtable().to_view("polygons", overwrite=True)

    def load_points(self, pts):
        """The points as the view `points` (point_row, geom), as SedonaDB's users load them."""
        points = pa.table({"point_row": np.arange(len(pts)), "x": pts[:, 0], "y": pts[:, 1]})
        self.sd.create_data_frame(points).to_view("points_arrow", overwrite=True)
        self.sd.sql(
            "SELECT point_row, ST_Point(x, y) AS geom FROM points_arrow"
        ).to_memtable().to_view("points", overwrite=True)

    def load(self, pts):
        self.load_points(pts)
        plan = "\n".join(
            self.sd.sql("EXPLAIN " + SEDONA_QUERY).to_arrow_table().column(1).to_pylist()
        )
        if "SpatialJoinExec" not in plan:
            raise RuntimeError(f"SedonaDB did not plan a SpatialJoinExec:\n{plan}")

    def query(self, n):
        t = self.sd.sql(SEDONA_QUERY).to_arrow_table()
        return t.column("polygon_row").cast(pa.int64()).fill_null(-1).to_numpy()


def run_workload(name, rx, ry, pts, args) -> list[dict]:
    import shapely

    wkb = polygons_wkb(rx, ry)
    index = pm.PolygonIndex.from_arrow(pa.table({"geometry": wkb}))
    area = index.to_arrow()["area"].to_numpy()
    n, p = len(pts), len(area)
    base = {"workload": name, "polygons": p, "points": n, "vertices": int(rx.size)}
    rows = []
    t0 = time.perf_counter()
    want = ours(index, pts[:1])  # the first call at the rule builds the shape index
    t_build = time.perf_counter() - t0
    t_ours, want = median_time(lambda: ours(index, pts), args.repeat)
    rows.append(
        {**base, "system": "polymatch covers (prepared index)", "seconds": t_ours, "agrees": True}
    )
    rows.append(
        {
            **base,
            "system": "polymatch: shape index build (first call)",
            "seconds": t_build,
            "agrees": None,
        }
    )
    t_one, _ = median_time(
        lambda: pm.match(pa.table({"geometry": wkb}), pts, predicate="covers", how="left"),
        max(1, args.repeat // 2),
    )
    rows.append(
        {
            **base,
            "system": "polymatch covers (one-shot: index + match)",
            "seconds": t_one,
            "agrees": True,
        }
    )
    print(
        f"{name}: polymatch {t_ours:.3f} s (build {t_build:.3f} s, one-shot {t_one:.3f} s)",
        flush=True,
    )
    geoms = shapely.from_wkb(wkb.to_numpy(zero_copy_only=False))

    def timed(system, fn):
        k = min(n, args.slice)
        t = time.perf_counter()
        fn(pts[:k])
        est = (time.perf_counter() - t) * n / k
        note = ""
        if est > args.budget:
            repeat, sample = max(1, min(args.repeat, 3)), pts[:k]
            note = f"timed on {k:,} points, scaled x{n / k:g} (estimated {est:.0f} s > budget)"
        else:
            repeat, sample = args.repeat if est < 5 else 3, pts
        secs, got = median_time(lambda: fn(sample), repeat)
        secs *= n / len(sample)
        agrees = bool(np.array_equal(got, want[: len(sample)]))
        print(f"{name}: {system} {secs:.3f} s {note} agrees={agrees}", flush=True)
        rows.append({**base, "system": system, "seconds": secs, "agrees": agrees, "note": note})

    timed("shapely STRtree.query(covered_by) + min", lambda q: peer_shapely(geoms, area, q))
    timed("geopandas sjoin(covered_by) + min", lambda q: peer_geopandas(geoms, area, q))
    for cls in (DuckDB, Sedona):
        try:
            engine = cls(wkb, area)
        except ImportError as e:
            print(f"skipping {cls.name}: {e.name} is not installed")
            continue

        def query(q, engine=engine):
            engine.load(q)
            return engine.query(len(q))

        timed(cls.name + " (load points + query)", query)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small sizes; assert agreement (CI)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per timing (median)")
    ap.add_argument("--budget", type=float, default=20.0, help="time a slower peer on a slice (s)")
    ap.add_argument("--slice", type=int, default=100_000, help="points of the slice")
    ap.add_argument("--out", type=Path, default=None, help="append the results table (markdown)")
    args = ap.parse_args()
    if args.quick:
        args.repeat, args.slice = 1, 5_000
        small = synthetic(5_000, 20_000, False, 10.0)
        big = huge(3, 5_000, 20_000)
    else:
        small = synthetic(100_000, 1_000_000, False, 10.0)
        big = huge(5, 20_000, 1_000_000)
    rows = run_workload(
        f"{len(small.rings_x):,} 10-gons", small.rings_x, small.rings_y, small.points, args
    )
    rows += run_workload(f"{big[0].shape[0]} circles of {big[0].shape[1]:,} vertices", *big, args)
    lines = [
        "| workload | system | seconds (median) | vs polymatch | agrees | note |",
        "|---|---|---:|---:|---|---|",
    ]
    ref = {}
    for r in rows:
        if r["system"].startswith("polymatch covers (prepared"):
            ref[r["workload"]] = r["seconds"]
    for r in rows:
        ratio = r["seconds"] / ref[r["workload"]]
        lines.append(
            f"| {r['workload']} x {r['points']:,} | {r['system']} | {r['seconds']:.3f} | "
            f"{ratio:.1f}x | {r['agrees']} | {r.get('note', '')} |"
        )
    table = "\n".join(lines)
    print(table)
    print({k: v for k, v in versions().items()})
    if args.out:
        with open(args.out, "a") as f:
            f.write(table + "\n")
    if args.quick:
        bad = [r for r in rows if r["agrees"] is False]
        assert not bad, bad


if __name__ == "__main__":
    main()
