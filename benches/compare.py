"""polymatch against the article and the tools users would pick instead.

    .venv/bin/python benches/compare.py            # full run (minutes), writes docs/benchmarks.md
    .venv/bin/python benches/compare.py --quick    # small sizes, checks agreement (CI smoke test)
    .venv/bin/python benches/compare.py --rank-rules   # the rank rules and cKDTree only
    .venv/bin/python benches/compare.py --sql-engines  # DuckDB spatial and SedonaDB, 100k x 200k

Everything runs in one process on identical data; each timing is the median of repeated
runs. Every peer's answers are checked against polymatch where the semantics agree (the
peers' `<=` against our `<`: the data has no distance exactly at max_dist). A peer whose
estimated time at a size exceeds --budget seconds is skipped there, with a note.

The SQL engines (DuckDB spatial, SedonaDB) get the polygons as WKB with their center and
area as columns (polymatch's, so "best by area" means the same thing) and the points as
x/y columns; loading those into the engine is timed apart from the query. A peer whose
package is missing is skipped with a printed note.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import math
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa

import polymatch as pm
from polymatch import compat

ROOT = Path(__file__).resolve().parents[1]


# --- the article's pure-Python baseline (ARTICLE_WORKLOAD.md), written from its description


@dataclass
class Polygon:
    x: np.ndarray
    y: np.ndarray
    _area: float | None = None

    @cached_property
    def center(self) -> np.ndarray:
        return np.array([self.x, self.y]).mean(axis=1)

    def area(self) -> float:
        if self._area is None:
            self._area = 0.5 * np.abs(
                np.dot(self.x, np.roll(self.y, 1)) - np.dot(self.y, np.roll(self.x, 1))
            )
        return self._area


def find_close_polygons(polygon_subset, point, max_dist):
    return [p for p in polygon_subset if np.linalg.norm(p.center - point) < max_dist]


def select_best_polygon(polygon_sets):
    best_polygons = []
    for point, polygons in polygon_sets:
        best = polygons[0]
        for p in polygons:
            if p.area() < best.area():
                best = p
        best_polygons.append((point, best))
    return best_polygons


def article_main(polygons, points):
    sets = []
    for point in points:
        close = find_close_polygons(polygons, point, 10.0)
        if close:
            sets.append((point, close))
    return select_best_polygon(sets)


# --- workloads -------------------------------------------------------------------------


@dataclass
class Workload:
    name: str
    rings_x: np.ndarray  # (P, V)
    rings_y: np.ndarray
    points: np.ndarray  # (N, 2)
    max_dist: float


def synthetic(p: int, n: int, clustered: bool, max_dist: float, seed: int = 1) -> Workload:
    rng = np.random.default_rng(seed)
    side = 10.0 * math.sqrt(p * math.pi / 30)  # ~30 candidates per point at distance 10

    def place(k):
        if not clustered:
            return rng.uniform(0, side, (k, 2))
        centers = np.random.default_rng(seed + 1).uniform(0, side, (100, 2))
        sigma = side / 40
        return centers[rng.integers(0, 100, k)] + rng.normal(0, sigma, (k, 2))

    c = place(p)
    ang = np.linspace(0, 2 * np.pi, 10, endpoint=False)
    radius = rng.uniform(0.5, 1.5, (p, 1))
    rx = c[:, :1] + radius * np.cos(ang)[None, :]
    ry = c[:, 1:] + radius * np.sin(ang)[None, :]
    kind = "clustered" if clustered else "uniform"
    dist = "inf" if math.isinf(max_dist) else f"{max_dist:g}"
    return Workload(f"{kind} {p:,} x {n:,} d={dist}", rx, ry, place(n), max_dist)


def article_workload() -> tuple[Workload, list, list]:
    polygons, points = compat.generate_example()
    rx = np.array([p.x for p in polygons])
    ry = np.array([p.y for p in polygons])
    return Workload("article 1,000 x 100", rx, ry, np.array(points), 10.0), polygons, points


# --- peers: each returns the matched polygon row per point (-1 = none) ---------------------


def group_min(point_idx, poly_idx, rank, n):
    """Per point, the candidate with the smallest rank (area, then row)."""
    best = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(best, point_idx, rank[poly_idx])
    out = np.full(n, -1)
    hit = best != np.iinfo(np.int64).max
    order = np.argsort(rank)
    out[hit] = order[best[hit]]
    return out


def peer_numpy(w, cx, cy, rank, chunk=2048):
    n = len(w.points)
    out = np.full(n, -1)
    big = np.iinfo(np.int64).max
    for s in range(0, n, chunk):
        px, py = w.points[s : s + chunk, :1], w.points[s : s + chunk, 1:]
        dx, dy = px - cx[None, :], py - cy[None, :]
        d = np.sqrt(dx * dx + dy * dy)
        r = np.where(d < w.max_dist, rank[None, :], big)
        m = r.min(axis=1)
        arg = r.argmin(axis=1)
        out[s : s + chunk] = np.where(m == big, -1, arg)
    return out


def peer_scipy(w, cx, cy, rank):
    from scipy.spatial import cKDTree

    tree = cKDTree(np.column_stack([cx, cy]))
    lists = tree.query_ball_point(w.points, w.max_dist, return_sorted=False)
    lengths = np.fromiter((len(x) for x in lists), np.int64, len(lists))
    poly = (
        np.concatenate([np.asarray(x, np.int64) for x in lists])
        if lengths.sum()
        else np.zeros(0, np.int64)
    )
    return group_min(np.repeat(np.arange(len(lists)), lengths), poly, rank, len(lists))


def peer_shapely(w, cx, cy, rank):
    import shapely

    tree = shapely.STRtree(shapely.points(cx, cy))
    pts = shapely.points(w.points[:, 0], w.points[:, 1])
    pi, gi = tree.query(pts, predicate="dwithin", distance=w.max_dist)
    return group_min(pi, gi, rank, len(pts))


def peer_geopandas(w, cx, cy, rank):
    import geopandas as gpd

    centers = gpd.GeoDataFrame({"rank": rank}, geometry=gpd.points_from_xy(cx, cy))
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(w.points[:, 0], w.points[:, 1]))
    j = gpd.sjoin(pts, centers, predicate="dwithin", distance=w.max_dist)
    best = j.groupby(level=0)["rank"].min()
    out = np.full(len(pts), -1)
    out[best.index.to_numpy()] = np.argsort(rank)[best.to_numpy()]
    return out


# --- SQL engines: DuckDB spatial and SedonaDB ------------------------------------------------
# Their inputs: `polygons(polygon_row, geometry WKB, center_x, center_y, area)` and
# `points(point_row, x, y)` as Arrow tables. Loading makes the geometry columns (timed
# apart); the query is an ST_DWithin spatial join on the centers, a strict `<` residual
# (ST_DWithin is `<=`), and the smallest (area, polygon_row) per point; LEFT JOIN for the
# points without a candidate, in point order.

DUCKDB_LOAD = [
    """CREATE OR REPLACE TABLE polygons AS
    SELECT polygon_row, ST_GeomFromWKB(geometry) AS geom,
           ST_Point(center_x, center_y) AS center, area
    FROM polygons_arrow""",
    """CREATE OR REPLACE TABLE points AS
    SELECT point_row, ST_Point(x, y) AS geom FROM points_arrow""",
]

# The residual is the aggregate's FILTER: DuckDB 1.4.4 pushes a WHERE on the pairs into the
# join's condition even through a MATERIALIZED CTE, and any extra join condition turns its
# SPATIAL_JOIN into a BLOCKWISE_NL_JOIN (all pairs). MATERIALIZED is kept: it was faster.
DUCKDB_QUERY = """
WITH pairs AS MATERIALIZED (
    SELECT pt.point_row, pg.polygon_row, pg.area, ST_Distance(pt.geom, pg.center) AS dist
    FROM points pt JOIN polygons pg ON ST_DWithin(pt.geom, pg.center, $max_dist)
),
best AS (
    SELECT point_row,
           arg_min(polygon_row, (area, polygon_row)) FILTER (WHERE dist < $max_dist)
               AS polygon_row
    FROM pairs
    GROUP BY point_row
)
SELECT pt.point_row, best.polygon_row
FROM points pt LEFT JOIN best ON pt.point_row = best.point_row
ORDER BY pt.point_row
"""

SEDONA_LOAD = [
    (
        "polygons",
        """SELECT polygon_row, geometry AS geom,
           ST_Point(center_x, center_y) AS center, area
    FROM polygons_arrow""",
    ),
    ("points", "SELECT point_row, ST_Point(x, y) AS geom FROM points_arrow"),
]

# The residual is the aggregate's FILTER here too: SedonaDB 0.5.0 folds a WHERE
# `ST_Distance(a, b) < d` into its distance join (SpatialJoinExec `on=ST_Distance(..) < d`),
# which then keeps the pairs at exactly d (`<=`): boundary_case() catches it.
SEDONA_QUERY = """
WITH pairs AS (
    SELECT pt.point_row, pg.polygon_row, pg.area, ST_Distance(pt.geom, pg.center) AS dist
    FROM points pt JOIN polygons pg ON ST_DWithin(pt.geom, pg.center, $max_dist)
),
best AS (
    SELECT point_row,
           first_value(polygon_row ORDER BY area, polygon_row) FILTER (WHERE dist < $max_dist)
               AS polygon_row
    FROM pairs
    GROUP BY point_row
)
SELECT pt.point_row, best.polygon_row
FROM points pt LEFT JOIN best ON pt.point_row = best.point_row
ORDER BY pt.point_row
"""


def polygons_wkb(rings_x: np.ndarray, rings_y: np.ndarray) -> pa.Array:
    """Little-endian WKB polygons, one closed ring each, from (P, V) open rings."""
    p, v = rings_x.shape
    dt = np.dtype([("order", "u1"), ("type", "<u4"), ("rings", "<u4"), ("n", "<u4"),
                   ("xy", "<f8", (v + 1, 2))])  # fmt: skip
    a = np.zeros(p, dt)
    a["order"], a["type"], a["rings"], a["n"] = 1, 3, 1, v + 1
    a["xy"][:, :v, 0], a["xy"][:, :v, 1] = rings_x, rings_y
    a["xy"][:, v] = a["xy"][:, 0]
    offsets = np.arange(0, (p + 1) * dt.itemsize, dt.itemsize, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.binary(), p, [None, pa.py_buffer(offsets), pa.py_buffer(a.tobytes())]
    )


def engine_inputs(w, cx, cy, area) -> tuple[pa.Table, pa.Table]:
    p, n = len(cx), len(w.points)
    polygons = pa.table({"polygon_row": np.arange(p, dtype=np.int64),
                         "geometry": polygons_wkb(w.rings_x, w.rings_y),
                         "center_x": cx, "center_y": cy, "area": area})  # fmt: skip
    points = pa.table({"point_row": np.arange(n, dtype=np.int64),
                       "x": w.points[:, 0], "y": w.points[:, 1]})  # fmt: skip
    return polygons, points


class DuckDBSpatial:
    name = "DuckDB spatial ST_DWithin + arg_min"

    def __init__(self):
        import duckdb
        import duckdb_ext

        # duckdb-ext ships the spatial extension: LOAD without a download.
        self.con = duckdb_ext.init(duckdb.connect())
        try:
            self.con.execute("LOAD spatial")
        except duckdb.Error as e:  # no duckdb-ext-spatial, or one built for another duckdb
            raise ImportError(f"LOAD spatial: {e}", name="duckdb-ext-spatial") from e

    def load(self, polygons: pa.Table, points: pa.Table) -> None:
        self.con.register("polygons_arrow", polygons)
        self.con.register("points_arrow", points)
        for sql in DUCKDB_LOAD:
            self.con.execute(sql)
        self.con.unregister("polygons_arrow")
        self.con.unregister("points_arrow")

    def plan(self, max_dist: float) -> str:
        return self.con.execute("EXPLAIN " + DUCKDB_QUERY, {"max_dist": max_dist}).fetchall()[0][1]

    def check_plan(self, max_dist: float) -> None:
        plan = self.plan(max_dist)
        if "SPATIAL_JOIN" not in plan or "NL_JOIN" in plan or "NESTED_LOOP" in plan:
            raise RuntimeError(f"DuckDB did not plan a SPATIAL_JOIN:\n{plan}")

    def query(self, max_dist: float) -> pa.Table:
        return self.con.execute(DUCKDB_QUERY, {"max_dist": max_dist}).fetch_arrow_table()


class SedonaDB:
    name = "SedonaDB ST_DWithin + first_value"

    def __init__(self):
        import geoarrow.pyarrow as ga
        import sedonadb

        self.ga = ga
        self.sd = sedonadb.connect()

    def load(self, polygons: pa.Table, points: pa.Table) -> None:
        geometry = polygons.column("geometry").combine_chunks()
        polygons = polygons.set_column(1, "geometry", self.ga.wkb().wrap_array(geometry))
        self.sd.create_data_frame(polygons).to_view("polygons_arrow", overwrite=True)
        self.sd.create_data_frame(points).to_view("points_arrow", overwrite=True)
        for name, sql in SEDONA_LOAD:
            self.sd.sql(sql).to_memtable().to_view(name, overwrite=True)

    def plan(self, max_dist: float) -> str:
        t = self.sd.sql("EXPLAIN " + SEDONA_QUERY, params={"max_dist": max_dist}).to_arrow_table()
        return "\n".join(t.column(1).to_pylist())

    def check_plan(self, max_dist: float) -> None:
        plan = self.plan(max_dist)
        if "SpatialJoinExec" not in plan or "NestedLoopJoinExec" in plan:
            raise RuntimeError(f"SedonaDB did not plan a SpatialJoinExec:\n{plan}")

    def query(self, max_dist: float) -> pa.Table:
        return self.sd.sql(SEDONA_QUERY, params={"max_dist": max_dist}).to_arrow_table()


def boundary_case() -> tuple:
    """Two squares and two points at exactly max_dist = 5 from the small square's center
    ((3, 4) and (0, -5): 3*3 + 4*4 = 25). ST_DWithin keeps those pairs (`<=`); the strict
    residual must drop them, so the first point gets the large square and the second none."""
    rx = np.array([[-0.5, 0.5, 0.5, -0.5], [-1.0, 1.0, 1.0, -1.0]])
    ry = np.array([[-0.5, -0.5, 0.5, 0.5], [2.0, 2.0, 4.0, 4.0]])
    w = Workload("boundary 2 x 2 d=5", rx, ry, np.array([[3.0, 4.0], [0.0, -5.0]]), 5.0)
    index = pm.PolygonIndex.from_coords(rx.ravel(), ry.ravel(), np.array([0, 4, 8]))
    res = index.match(pa.table({"x": w.points[:, 0], "y": w.points[:, 1]}), 5.0, how="left")
    ours = np.array([-1 if v is None else v for v in res["polygon_index"].to_pylist()])
    assert ours.tolist() == [1, -1], ours
    d = index.to_arrow()
    base = {"workload": w.name, "polygons": 2, "points": 2}
    return w, base, ours, d["center_x"].to_numpy(), d["center_y"].to_numpy(), d["area"].to_numpy()


def engine_rows(args, w, base, ours, cx, cy, area) -> list[dict]:
    """DuckDB spatial and SedonaDB on one workload: loading and the query, timed apart."""
    rows = []
    polygons, points = engine_inputs(w, cx, cy, area)
    for cls in (DuckDBSpatial, SedonaDB):
        try:
            engine = cls()
        except ImportError as e:
            print(f"skipping {cls.name}: {e.name} is not installed (pip install -r .ci/requirements.txt)")  # fmt: skip
            rows.append({**base, "system": cls.name, "seconds": None, "agrees": None, "note": f"not installed: {e.name}"})  # fmt: skip
            continue
        if math.isinf(w.max_dist):
            rows.append({**base, "system": cls.name, "seconds": None, "agrees": None, "note": "skipped: every pair is a candidate (1e11 pairs)"})  # fmt: skip
            continue
        k = min(len(w.points), 2_000)  # estimate from a slice, scaled linearly
        engine.load(polygons, points.slice(0, k))
        engine.check_plan(w.max_dist)
        t = time.perf_counter()
        engine.query(w.max_dist)
        est = (time.perf_counter() - t) * len(w.points) / k
        if est > args.budget:
            rows.append({**base, "system": cls.name, "seconds": None, "agrees": None, "note": f"skipped: estimated {est:.0f} s > {args.budget:.0f} s budget"})  # fmt: skip
            continue
        repeat = args.repeat if est <= 5 else min(args.repeat, 3)
        print(f"{cls.name}: estimated {est:.1f} s from {k:,} points; {repeat} runs per median", flush=True)  # fmt: skip
        t_load, _ = median_time(lambda: engine.load(polygons, points), repeat)
        engine.check_plan(w.max_dist)
        t_query, res = median_time(lambda: engine.query(w.max_dist), repeat)
        got = res.column("polygon_row").fill_null(-1).to_numpy().astype(np.int64)
        agrees = bool(np.array_equal(res.column("point_row").to_numpy(), np.arange(len(ours))) and np.array_equal(got, ours))  # fmt: skip
        rows.append({**base, "system": f"{cls.name} (query, tables loaded)", "seconds": t_query, "agrees": agrees})  # fmt: skip
        rows.append({**base, "system": f"{cls.name} (load tables)", "seconds": t_load, "agrees": agrees})  # fmt: skip
        rows.append({**base, "system": f"{cls.name} (load + query)", "seconds": t_load + t_query, "agrees": agrees})  # fmt: skip
    return rows


# --- timing ----------------------------------------------------------------------------


def median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def run(args) -> list[dict]:
    rows: list[dict] = []
    engines: list[tuple] = []
    wl, article_polys, article_points = article_workload()
    workloads = [wl]
    if args.rank_rules:
        workloads = [synthetic(100_000, 1_000_000, False, 10.0)]
    elif args.sql_engines:
        workloads = [synthetic(100_000, 200_000, False, 10.0)]
    elif args.quick:
        workloads += [synthetic(2_000, 20_000, False, 10.0), synthetic(2_000, 20_000, True, 10.0)]
    else:
        workloads += [
            synthetic(100_000, 10_000, False, 10.0),
            synthetic(100_000, 100_000, False, 10.0),
            synthetic(100_000, 200_000, False, 10.0),
            synthetic(100_000, 1_000_000, False, 10.0),
            synthetic(100_000, 1_000_000, True, 10.0),
            synthetic(100_000, 1_000_000, False, math.inf),
        ]
    for w in workloads:
        p, n = w.rings_x.shape[0], len(w.points)
        offsets = np.arange(0, p * 10 + 1, 10, dtype=np.int64)
        flat_x, flat_y = w.rings_x.ravel(), w.rings_y.ravel()
        pts = pa.table({"x": w.points[:, 0], "y": w.points[:, 1]})
        t_build, index = median_time(
            lambda: pm.PolygonIndex.from_coords(flat_x, flat_y, offsets), args.repeat
        )
        # "Prepared" is an index that has served this radius: its first call at a radius
        # builds the per-radius cell lists (the one-shot line pays for them). A prepared
        # match is cheap, so it gets at least 11 runs: a median of 3 on this noisy
        # machine moved by 40% between runs.
        index.match(pts, max_dist=w.max_dist, how="left")
        t_match, res = median_time(
            lambda: index.match(pts, max_dist=w.max_dist, how="left"), max(args.repeat, 11)
        )
        ours = res["polygon_index"].to_numpy(zero_copy_only=False)
        ours = np.where(np.isnan(ours), -1, ours).astype(np.int64)
        t_one, _ = median_time(
            lambda: pm.match(index_source(flat_x, flat_y, offsets), pts, max_dist=w.max_dist),
            max(1, args.repeat // 2),
        )
        derived = index.to_arrow()
        cx, cy = derived["center_x"].to_numpy(), derived["center_y"].to_numpy()
        area = derived["area"].to_numpy()
        rank = np.empty(p, np.int64)
        rank[np.lexsort((np.arange(p), area))] = np.arange(p)
        base = {"workload": w.name, "polygons": p, "points": n}
        rows.append(
            {**base, "system": "polymatch (prepared index)", "seconds": t_match, "agrees": True}
        )
        rows.append(
            {
                **base,
                "system": "polymatch (one-shot, incl. index build)",
                "seconds": t_one,
                "agrees": True,
            }
        )
        rows.append({**base, "system": "polymatch index build", "seconds": t_build, "agrees": True})
        if w.name.startswith("article"):
            t, r = median_time(lambda: compat.main(article_polys, article_points), args.repeat * 50)
            rows.append({**base, "system": "polymatch.compat.main", "seconds": t, "agrees": True})
            base_polys = [Polygon(x, y) for x, y in zip(w.rings_x, w.rings_y)]
            t, r = median_time(
                lambda: article_main(base_polys, list(w.points)), max(1, args.repeat // 2)
            )
            # The article picks among ~1e-11-equal areas by numpy rounding: agreement means
            # its pick is a candidate whose exact area equals ours to 1e-12.
            ids = {id(q): i for i, q in enumerate(base_polys)}
            picked = np.array([ids[id(q)] for _, q in r])
            dist = np.hypot(w.points[:, 0] - cx[picked], w.points[:, 1] - cy[picked])
            ok = bool(
                np.all(dist < w.max_dist) and np.allclose(area[picked], area[ours], rtol=1e-12)
            )
            rows.append(
                {**base, "system": "article baseline (pure Python)", "seconds": t, "agrees": ok}
            )
        peers = [("numpy all-pairs (chunked)", peer_numpy), ("scipy cKDTree + group-min", peer_scipy),
                 ("shapely STRtree dwithin + group-min", peer_shapely), ("geopandas sjoin dwithin + groupby", peer_geopandas)]  # fmt: skip
        for name, fn in [] if args.rank_rules or args.sql_engines else peers:
            if math.isinf(w.max_dist) and name != "numpy all-pairs (chunked)":
                rows.append({**base, "system": name, "seconds": None, "agrees": None, "note": "skipped: every pair is a candidate (1e11 pairs)"})  # fmt: skip
                continue
            est = estimate(fn, w, cx, cy, rank)
            if est > args.budget:
                rows.append({**base, "system": name, "seconds": None, "agrees": None, "note": f"skipped: estimated {est:.0f} s > {args.budget:.0f} s budget"})  # fmt: skip
                continue
            try:
                t, got = median_time(lambda: fn(w, cx, cy, rank), 1 if est > 5 else args.repeat)
            except ImportError as e:
                rows.append({**base, "system": name, "seconds": None, "agrees": None, "note": f"not installed: {e.name}"})  # fmt: skip
                continue
            rows.append(
                {**base, "system": name, "seconds": t, "agrees": bool(np.array_equal(got, ours))}
            )
        if not args.rank_rules:
            engines.append((w, base, ours, cx, cy, area))
        if not w.name.startswith("article") and math.isfinite(w.max_dist) and not args.sql_engines:
            rows += rank_rule_rows(args, w, base, flat_x, flat_y, offsets, pts, cx, cy)
        print_rows(rows, w.name)
    # The SQL engines run last: SedonaDB imports geoarrow.pyarrow, whose pyarrow extension
    # types (geoarrow-types 0.4.1) reject the large_list storage of polymatch's
    # `index.to_arrow()` geometry column, so `to_arrow()` fails in the same process after it.
    if args.quick:
        engines.append(boundary_case())
    for w, base, ours, cx, cy, area in engines:
        rows += engine_rows(args, w, base, ours, cx, cy, area)
        print_rows(rows, w.name)
    order = {w.name: i for i, w in enumerate(workloads)}
    # A stable sort: each workload's rows keep their order.
    rows.sort(key=lambda r: order.get(r["workload"], len(order)))
    return rows


def print_rows(rows, workload) -> None:
    for row in rows:
        if row["workload"] == workload and "printed" not in row:
            row["printed"] = True
            secs = "skipped" if row["seconds"] is None else f"{row['seconds'] * 1e3:10.3f} ms"
            print(
                f"{workload:38s} {row['system']:56s} {secs:>14s}  agrees={row['agrees']}",
                flush=True,
            )


def kdtree_agrees(res, d, j, p, max_dist, k) -> bool:
    """polymatch's k nearest (how="left") against cKDTree's: the same polygon rows, except
    where two distances tie to 1e-12 (an order cKDTree does not define) or lie within
    1e-9 of max_dist (its `<=` and rounding against our exact `<`)."""
    n = d.shape[0]
    ours = np.full((n, k), -1, np.int64)
    ours_d = np.full((n, k), np.inf)
    pi = res["point_index"].to_numpy()
    rank = res["rank"].to_numpy(zero_copy_only=False) if k > 1 else np.ones(len(pi), np.int64)
    poly = res["polygon_index"].to_numpy(zero_copy_only=False)
    dist = res["distance"].to_numpy(zero_copy_only=False)
    ok = ~np.isnan(poly.astype(np.float64))
    ours[pi[ok], rank[ok].astype(np.int64) - 1] = poly[ok].astype(np.int64)
    ours_d[pi[ok], rank[ok].astype(np.int64) - 1] = dist[ok]
    theirs = np.where(j >= p, -1, j)
    same = ours == theirs
    tie = np.isclose(ours_d, d, rtol=1e-12, atol=0)
    edge = np.abs(np.where(np.isinf(d), ours_d, d) - max_dist) < 1e-9 * max_dist
    return bool(np.all(same | tie | edge))


def rank_rule_rows(args, w, base, flat_x, flat_y, offsets, pts, cx, cy) -> list[dict]:
    """The rank rules (issue 12) on one workload, with scipy's cKDTree as the peer for
    ranking by distance (nearest center within max_dist, k = 1 and 5)."""
    from scipy.spatial import cKDTree

    p = len(cx)
    rng = np.random.default_rng(12)
    table = index_source(flat_x, flat_y, offsets).append_column("v", pa.array(rng.uniform(0, 1, p)))
    index = pm.PolygonIndex.from_arrow(table)
    r = w.max_dist
    index.match(pts.slice(0, 1), r, rank_by="v")  # prepares the column orders once
    index.match(pts.slice(0, 1), r, rank_by="v", descending=True)
    rows = []
    for label, kw in [
        ("polymatch rank_by=area (default)", {}),
        ("polymatch rank_by=<float column>", {"rank_by": "v"}),
        ("polymatch rank_by=<float column>, descending", {"rank_by": "v", "descending": True}),
        ("polymatch rank_by=area, k=5", {"k": 5}),
        ("polymatch rank_by=distance", {"rank_by": "distance"}),
        ("polymatch rank_by=distance, k=5", {"rank_by": "distance", "k": 5}),
    ]:
        t, res = median_time(lambda: index.match(pts, r, how="left", **kw), args.repeat)
        rows.append({**base, "system": label, "seconds": t, "agrees": True})
        if kw.get("rank_by") == "distance":
            tree = cKDTree(np.column_stack([cx, cy]))
            xy = np.column_stack([pts["x"].to_numpy(), pts["y"].to_numpy()])
            k = kw.get("k", 1)
            t, (d, j) = median_time(
                lambda: tree.query(xy, k=k, distance_upper_bound=r, workers=-1), args.repeat
            )
            if k == 1:
                d, j = d[:, None], j[:, None]
            rows.append(
                {
                    **base,
                    "system": f"scipy cKDTree.query(k={k}, distance_upper_bound, workers=-1)",
                    "seconds": t,
                    "agrees": kdtree_agrees(res, d, j, p, r, k),
                }
            )
    return rows


def index_source(x, y, offsets):
    """The polygons as an Arrow table (x/y list columns), for the one-shot timing."""
    return pa.table({"x": pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(x)),
                     "y": pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(y))})  # fmt: skip


def estimate(fn, w, cx, cy, rank) -> float:
    """Time the peer on a slice of the points and scale linearly."""
    n = len(w.points)
    k = min(n, 2_000)
    sub = Workload(w.name, w.rings_x, w.rings_y, w.points[:k], w.max_dist)
    try:
        t = time.perf_counter()
        fn(sub, cx, cy, rank)
        return (time.perf_counter() - t) * n / k
    except ImportError:
        return 0.0


def versions() -> dict:
    out = {"python": platform.python_version(), "polymatch": pm.__version__}
    for mod in ("numpy", "pyarrow", "scipy", "shapely", "geopandas", "duckdb", "sedonadb"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = "not installed"
    for dist in ("duckdb-ext", "duckdb-ext-spatial", "geoarrow-pyarrow"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    try:
        con = DuckDBSpatial().con
        out["duckdb spatial extension"] = con.execute(
            "SELECT extension_version FROM duckdb_extensions() WHERE extension_name = 'spatial'"
        ).fetchone()[0]
    except ImportError:
        pass
    return out


def write_docs(rows, path: Path, command: str) -> None:
    lines = [
        "| workload | system | median | vs polymatch (prepared) | agrees |",
        "|---|---|---:|---:|---|",
    ]
    ref = {r["workload"]: r["seconds"] for r in rows if r["system"] == "polymatch (prepared index)"}
    for r in rows:
        if r["seconds"] is None:
            lines.append(f"| {r['workload']} | {r['system']} | {r.get('note', '')} | | |")
            continue
        s = r["seconds"]
        shown = f"{s * 1e6:.1f} µs" if s < 1e-3 else f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"
        ratio = f"{s / ref[r['workload']]:.1f}x" if r["workload"] in ref else ""
        lines.append(f"| {r['workload']} | {r['system']} | {shown} | {ratio} | {r['agrees']} |")
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path} ({command})")


def write_plot(rows, path: Path) -> None:
    """Points per second against the number of points (uniform, 100k polygons, d=10)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = [
        r for r in rows if r["workload"].startswith("uniform 100,000") and "d=10" in r["workload"]
    ]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for system in dict.fromkeys(r["system"] for r in sweep):
        if system == "polymatch index build" or "(load" in system:
            continue
        pts = sorted(
            (r["points"], r["points"] / r["seconds"])
            for r in sweep
            if r["system"] == system and r["seconds"]
        )
        if pts:
            ax.plot(*zip(*pts), marker="o", label=system)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("points (100,000 polygons, uniform, ~30 candidates per point)")
    ax.set_ylabel("points per second")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small sizes; assert agreement (CI)")
    ap.add_argument("--repeat", type=int, default=7, help="runs per timing (median)")
    ap.add_argument("--budget", type=float, default=60.0, help="skip a peer estimated slower (s)")
    ap.add_argument(
        "--rank-rules",
        action="store_true",
        help="only the rank rules (and cKDTree) on 100k polygons x 1M uniform points",
    )
    ap.add_argument(
        "--sql-engines",
        action="store_true",
        help="only polymatch, DuckDB spatial and SedonaDB on 100k polygons x 200k uniform points",
    )
    ap.add_argument("--out", type=Path, default=None, help="write the results table (markdown)")
    ap.add_argument("--plot", type=Path, default=None, help="write the points/s plot (PNG)")
    args = ap.parse_args()
    if args.quick:
        args.repeat = min(args.repeat, 3)
    rows = run(args)
    meta = {"date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores", **versions()}  # fmt: skip
    print(json.dumps(meta))
    if args.out:
        write_docs(rows, args.out, " ".join(sys.argv))
    if args.plot:
        write_plot(rows, args.plot)
    bad = [r for r in rows if r["agrees"] is False]
    if bad:
        sys.exit(f"disagreement: {[(r['workload'], r['system']) for r in bad]}")


if __name__ == "__main__":
    main()
