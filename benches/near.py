"""The distance rules against the peers: `predicate="dwithin"` (distance to the polygon's
outline, 0 inside, strictly below max_dist), the nearest polygon within a cap and the k
nearest, side by side in one process, answers checked.

    .venv/bin/python benches/near.py            # 100k polygons x 1M / 200k points
    .venv/bin/python benches/near.py --quick    # small sizes; asserts agreement (CI)

Workloads (the benches' uniform polygons, benches/compare.py `synthetic`: jittered
10-gons of radius 0.5-1.5 at 0.0955 per unit area, and uniform points):
1. *dwithin, smallest area*: 100k polygons x 1M points, max_dist ~2.15 (~3 candidates per
   point); the best is the smallest area, then the lowest row. Peers: DuckDB spatial
   (`ST_DWithin` SPATIAL_JOIN, EXPLAIN checked, the strict `ST_Distance < d` residual as
   the aggregate's FILTER, `arg_min` by area), SedonaDB (`ST_DWithin` SpatialJoinExec,
   the same FILTER, `first_value` by area), shapely (`STRtree.query(predicate="dwithin")`
   + group-min by area), geopandas (`sjoin(predicate="dwithin")` + group-min).
2. *nearest within a cap*: 100k polygons x 200k points, `rank_by="distance"`, max_dist
   twice the polygons' typical spacing. Peers: geopandas `sjoin_nearest(max_distance=)`
   (all ties; the lowest polygon row kept), shapely `STRtree.query_nearest(max_distance=,
   all_matches=False)` (an arbitrary tie: distances compared, ids counted), SedonaDB
   `ST_KNN(pt, pg, 1)` + the cap (an arbitrary tie too), DuckDB spatial `ST_DWithin(cap)`
   SPATIAL_JOIN + `arg_min` by (distance, row) (DuckDB spatial has no KNN join).
3. *k nearest*: k=5 against k=1, max_dist=inf, 100k polygons x 200k points (target:
   k=5 <= 3x k=1). Peers: shapely `query_nearest` (k=1 only), SedonaDB `ST_KNN(pt, pg, k)`;
   k=5 checked on a slice against shapely distances of every polygon near the point.

polymatch runs on a prepared index: the first call at a shape rule builds the shape
index (timed apart, a fresh index per workload). Each timing is the median of --repeat
runs; a peer estimated above --budget seconds (from a slice of the points) is timed on
that slice and scaled, with a note. Peers use `<=` at max_dist, polymatch `<`: the data
has no distance exactly at max_dist (random floats), so answers compare exactly.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

import polymatch as pm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shapes  # noqa: E402
from compare import polygons_wkb, synthetic, versions  # noqa: E402
from shapes import best_by_area, median_time  # noqa: E402

# compare.synthetic puts P polygons on a square of side 10 * sqrt(P * pi / 30): a density
# of 30 / (100 pi) per unit area, whatever P. A polygon of radius r (uniform 0.5-1.5) is
# within d of a point in an area of about pi (r + d)^2, so the mean number of candidates
# is density * pi * E[(r + d)^2] = 0.3 * (13/12 + 2 d + d^2).
DENSITY = 30 / (100 * math.pi)
D_THREE = math.sqrt(1 + 3 / 0.3 - 13 / 12) - 1  # ~3 candidates per point: 2.149
SPACING = 1 / math.sqrt(DENSITY)  # the polygons' typical spacing: 3.24
CAP = 2 * SPACING


def as_ids(column) -> np.ndarray:
    return column.cast(pa.int64()).fill_null(-1).to_numpy()


def as_dist(column) -> np.ndarray:
    return column.cast(pa.float64()).fill_null(np.nan).to_numpy()


def first_per_point(point_idx, poly_idx, dist, n):
    """The nearest (then lowest-row) polygon per point, and its distance."""
    ids, d = np.full(n, -1, np.int64), np.full(n, np.nan)
    if len(point_idx):
        order = np.lexsort((poly_idx, dist, point_idx))
        p, g, dd = point_idx[order], poly_idx[order], dist[order]
        first = np.r_[True, p[1:] != p[:-1]]
        ids[p[first]], d[p[first]] = g[first], dd[first]
    return ids, d


def k_per_point(point_idx, poly_idx, dist, n, k):
    """The k nearest (then lowest-row) polygons per point: (n, k) ids and distances."""
    ids, d = np.full((n, k), -1, np.int64), np.full((n, k), np.nan)
    order = np.lexsort((poly_idx, dist, point_idx))
    p, g, dd = point_idx[order], poly_idx[order], dist[order]
    start = np.searchsorted(p, p, side="left")
    slot = np.arange(len(p)) - start
    keep = slot < k
    ids[p[keep], slot[keep]], d[p[keep], slot[keep]] = g[keep], dd[keep]
    return ids, d


def close(a, b) -> np.ndarray:
    """Distances equal to a few ulps (GEOS's float computation against ours), or both NaN."""
    return np.isclose(a, b, rtol=1e-12, atol=1e-12) | (np.isnan(a) & np.isnan(b))


# --- polymatch ----------------------------------------------------------------------------


def ours_area(index, pts, d):
    res = index.match(pts, predicate="dwithin", max_dist=d, how="left")
    return as_ids(res["polygon_index"])


def ours_near(index, pts, cap):
    res = index.match(pts, predicate="dwithin", max_dist=cap, rank_by="distance", how="left")
    return as_ids(res["polygon_index"]), as_dist(res["distance"])


def ours_knn(index, pts, k):
    res = index.match(pts, predicate="dwithin", max_dist=math.inf, rank_by="distance", k=k)
    n = len(pts)
    if k == 1:
        return as_ids(res["polygon_index"])[:, None], as_dist(res["distance"])[:, None]
    pi = res["point_index"].to_numpy().astype(np.int64)
    slot = res["rank"].to_numpy().astype(np.int64) - 1
    ids, d = np.full((n, k), -1, np.int64), np.full((n, k), np.nan)
    ids[pi, slot], d[pi, slot] = as_ids(res["polygon_index"]), as_dist(res["distance"])
    return ids, d


# --- shapely and geopandas ----------------------------------------------------------------


def shapely_area(geoms, area, pts, d):
    import shapely

    tree = shapely.STRtree(geoms)
    pairs = tree.query(shapely.points(pts), predicate="dwithin", distance=d)
    return best_by_area(pairs[0], pairs[1], area, len(pts))


def geopandas_area(geoms, area, pts, d):
    import geopandas as gpd

    polys = gpd.GeoDataFrame({"area": area}, geometry=geoms)
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(pts[:, 0], pts[:, 1]))
    j = gpd.sjoin(points, polys, predicate="dwithin", distance=d, how="inner")
    return best_by_area(j.index.to_numpy(), j["index_right"].to_numpy(), area, len(pts))


def shapely_near(geoms, pts, cap):
    import shapely

    tree = shapely.STRtree(geoms)
    (pi, gi), dist = tree.query_nearest(
        shapely.points(pts), max_distance=cap, return_distance=True, all_matches=False
    )
    ids, d = np.full(len(pts), -1, np.int64), np.full(len(pts), np.nan)
    ids[pi], d[pi] = gi, dist
    return ids, d


def geopandas_near(geoms, pts, cap):
    import geopandas as gpd

    polys = gpd.GeoDataFrame(geometry=geoms)
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(pts[:, 0], pts[:, 1]))
    j = gpd.sjoin_nearest(points, polys, how="inner", max_distance=cap, distance_col="dist")
    return first_per_point(
        j.index.to_numpy(), j["index_right"].to_numpy(), j["dist"].to_numpy(), len(pts)
    )


def shapely_knn1(geoms, pts):
    ids, d = shapely_near(geoms, pts, None)
    return ids[:, None], d[:, None]


def check_k(geoms, pts, ours_ids, ours_d):
    """polymatch's k nearest against GEOS: every polygon within the k-th distance (and a
    margin) of the point, by shapely's distance; the same k distances in order, the same
    ids except at equal distances."""
    import shapely

    n, k = ours_d.shape
    points = shapely.points(pts)
    reach = ours_d[:, -1] * (1 + 1e-9) + 1e-9
    pi, gi = shapely.STRtree(geoms).query(points, predicate="dwithin", distance=reach)
    dist = shapely.distance(points[pi], geoms[gi])
    ids, d = k_per_point(pi, gi, dist, n, k)
    same_d = close(d, ours_d).all(axis=1)
    tie = np.zeros((n, k), bool)  # a distance the point has twice: any order of those ids
    for j in range(k):
        hits = np.isclose(dist, ours_d[pi, j], rtol=1e-12, atol=1e-12)
        tie[:, j] = np.bincount(pi[hits], minlength=n) > 1
    same_ids = ((ids == ours_ids) | tie).all(axis=1)
    return int(same_d.sum()), int((same_d & same_ids).sum())


# --- SQL engines --------------------------------------------------------------------------
# Polygons `polygons(polygon_row, geom, area)` are loaded once per workload; the points
# `points(point_row, geom)` are loaded inside the timing (as in shapes.py). The residual
# `dist < $d` is the aggregate's FILTER: both engines fold a WHERE on the pairs into the
# join (DuckDB 1.4.4 then leaves its SPATIAL_JOIN for a nested loop; SedonaDB 0.5.0 then
# keeps `<=`), see benches/compare.py.

DUCKDB_AREA = """
WITH pairs AS MATERIALIZED (
    SELECT pt.point_row, pg.polygon_row, pg.area, ST_Distance(pg.geom, pt.geom) AS dist
    FROM points pt JOIN polygons pg ON ST_DWithin(pg.geom, pt.geom, $d)
),
best AS (
    SELECT point_row,
           arg_min(polygon_row, (area, polygon_row)) FILTER (WHERE dist < $d) AS polygon_row
    FROM pairs GROUP BY point_row
)
SELECT pt.point_row, best.polygon_row, NULL::DOUBLE AS dist
FROM points pt LEFT JOIN best ON pt.point_row = best.point_row
ORDER BY pt.point_row
"""

DUCKDB_NEAR = """
WITH pairs AS MATERIALIZED (
    SELECT pt.point_row, pg.polygon_row, ST_Distance(pg.geom, pt.geom) AS dist
    FROM points pt JOIN polygons pg ON ST_DWithin(pg.geom, pt.geom, $d)
),
best AS (
    SELECT point_row,
           arg_min(polygon_row, (dist, polygon_row)) FILTER (WHERE dist < $d) AS polygon_row,
           min(dist) FILTER (WHERE dist < $d) AS dist
    FROM pairs GROUP BY point_row
)
SELECT pt.point_row, best.polygon_row, best.dist
FROM points pt LEFT JOIN best ON pt.point_row = best.point_row
ORDER BY pt.point_row
"""

SEDONA_AREA = """
WITH pairs AS (
    SELECT pt.point_row, pg.polygon_row, pg.area, ST_Distance(pg.geom, pt.geom) AS dist
    FROM points pt JOIN polygons pg ON ST_DWithin(pg.geom, pt.geom, $d)
),
best AS (
    SELECT point_row,
           first_value(polygon_row ORDER BY area, polygon_row) FILTER (WHERE dist < $d)
               AS polygon_row
    FROM pairs GROUP BY point_row
)
SELECT pt.point_row, best.polygon_row, CAST(NULL AS DOUBLE) AS dist
FROM points pt LEFT JOIN best ON pt.point_row = best.point_row
ORDER BY pt.point_row
"""

# ST_KNN's k nearest, then the cap; several rows per point only at ties (kept by row).
SEDONA_NEAR = """
WITH pairs AS (
    SELECT pt.point_row, pg.polygon_row, ST_Distance(pt.geom, pg.geom) AS dist
    FROM points pt JOIN polygons pg ON ST_KNN(pt.geom, pg.geom, 1, false)
),
best AS (
    SELECT point_row,
           first_value(polygon_row ORDER BY dist, polygon_row) FILTER (WHERE dist < $d)
               AS polygon_row,
           min(dist) FILTER (WHERE dist < $d) AS dist
    FROM pairs GROUP BY point_row
)
SELECT pt.point_row, best.polygon_row, best.dist
FROM points pt LEFT JOIN best ON pt.point_row = best.point_row
ORDER BY pt.point_row
"""

SEDONA_KNN = """
SELECT pt.point_row, pg.polygon_row, ST_Distance(pt.geom, pg.geom) AS dist
FROM points pt JOIN polygons pg ON ST_KNN(pt.geom, pg.geom, {k}, false)
"""


class DuckDB:
    name = "DuckDB spatial"

    def __init__(self, wkb, area):
        import duckdb
        import duckdb_ext

        self.con = duckdb_ext.init(duckdb.connect())
        try:
            self.con.execute("LOAD spatial")
        except duckdb.Error as e:
            raise ImportError(f"LOAD spatial: {e}", name="duckdb-ext-spatial") from e
        polygons = pa.table({"polygon_row": np.arange(len(area)), "wkb": wkb, "area": area})
        self.con.register("polygons_arrow", polygons)
        self.con.execute(
            "CREATE OR REPLACE TABLE polygons AS SELECT polygon_row, "
            "ST_GeomFromWKB(wkb) AS geom, area FROM polygons_arrow"
        )
        self.con.unregister("polygons_arrow")

    def load(self, pts):
        self.con.register(
            "points_arrow",
            pa.table({"point_row": np.arange(len(pts)), "x": pts[:, 0], "y": pts[:, 1]}),
        )
        self.con.execute(
            "CREATE OR REPLACE TABLE points AS SELECT point_row, ST_Point(x, y) AS geom FROM points_arrow"
        )
        self.con.unregister("points_arrow")

    def check_plan(self, sql, d):
        plan = self.con.execute("EXPLAIN " + sql, {"d": d}).fetchall()[0][1]
        if "SPATIAL_JOIN" not in plan or "NL_JOIN" in plan or "NESTED_LOOP" in plan:
            raise RuntimeError(f"DuckDB did not plan a SPATIAL_JOIN:\n{plan}")

    def run(self, sql, pts, d):
        self.load(pts)
        t = self.con.execute(sql, {"d": d}).fetch_arrow_table()
        return as_ids(t.column("polygon_row")), as_dist(t.column("dist"))


class Sedona(shapes.Sedona):
    """SedonaDB with the polygons loaded (shapes.py's setup), for the distance queries."""

    name = "SedonaDB"

    def load(self, pts):
        self.load_points(pts)

    def check_plan(self, sql, d):
        params = {"d": d} if "$d" in sql else None
        t = self.sd.sql("EXPLAIN " + sql, params=params).to_arrow_table()
        plan = "\n".join(t.column(1).to_pylist())
        if "SpatialJoinExec" not in plan or "NestedLoopJoinExec" in plan:
            raise RuntimeError(f"SedonaDB did not plan a SpatialJoinExec:\n{plan}")

    def run(self, sql, pts, d):
        self.load(pts)
        t = self.sd.sql(sql, params={"d": d}).to_arrow_table()
        return as_ids(t.column("polygon_row")), as_dist(t.column("dist"))

    def knn(self, pts, k):
        self.load(pts)
        t = self.sd.sql(SEDONA_KNN.format(k=k)).to_arrow_table()
        return k_per_point(
            t.column("point_row").to_numpy(),
            t.column("polygon_row").to_numpy(),
            t.column("dist").to_numpy(),
            len(pts),
            k,
        )


def engines(wkb, area, sql_by_engine, d, pts, notes):
    """The SQL engines that are installed and plan a spatial join, as (name, engine)."""
    out = []
    for cls in (DuckDB, Sedona):
        sql = sql_by_engine.get(cls)
        if sql is None:
            continue
        try:
            engine = cls(wkb, area)
        except ImportError as e:
            notes.append(f"{cls.name} skipped: {e.name} is not installed")
            print(notes[-1], flush=True)
            continue
        engine.load(pts[:100])
        engine.check_plan(sql, d)
        out.append(engine)
    return out


# --- the runs -----------------------------------------------------------------------------


class Bench:
    def __init__(self, args, wkb):
        self.args, self.wkb = args, wkb
        self.rows: list[dict] = []
        self.notes: list[str] = []

    def fresh(self):
        return pm.PolygonIndex.from_arrow(pa.table({"geometry": self.wkb}))

    def row(self, workload, system, seconds, agreement="", ok=None, note=""):
        self.rows.append(
            {
                "workload": workload,
                "system": system,
                "seconds": seconds,
                "agreement": agreement,
                "ok": ok,
                "note": note,
            }
        )
        print(f"{workload}: {system} {seconds:.3f} s {agreement} {note}", flush=True)

    def ours(self, workload, label, index, fn, pts):
        """A fresh index's first call (builds the shape index), then the prepared timing."""
        t = time.perf_counter()
        fn(index, pts[:1])
        t_build = time.perf_counter() - t
        secs, result = median_time(lambda: fn(index, pts), self.args.repeat)
        self.row(workload, label, secs, "reference", True)
        self.row(workload, "polymatch: shape index build (first call)", t_build)
        return result

    def peer(self, workload, system, fn, pts, agree):
        """Time fn(points), on a slice and scaled when estimated above the budget; `agree`
        maps (answer, number of points) to (agreement text, ok)."""
        n, k = len(pts), min(len(pts), self.args.slice)
        t = time.perf_counter()
        fn(pts[:k])
        est = (time.perf_counter() - t) * n / k
        note = ""
        if est > self.args.budget:
            repeat, sample = max(1, min(self.args.repeat, 3)), pts[:k]
            note = f"timed on {k:,} points, scaled x{n / k:g} (estimated {est:.0f} s > budget)"
        else:
            repeat, sample = self.args.repeat, pts
        secs, got = median_time(lambda: fn(sample), repeat)
        text, ok = agree(got, len(sample))
        self.row(workload, system, secs * n / len(sample), text, ok, note)


def run(args) -> Bench:
    p, n1, n2 = (5_000, 20_000, 10_000) if args.quick else (100_000, 1_000_000, 200_000)
    w = synthetic(p, n1, False, 10.0)
    wkb = polygons_wkb(w.rings_x, w.rings_y)
    pts1, pts2 = w.points, w.points[:n2]
    b = Bench(args, wkb)
    area = b.fresh().to_arrow()["area"].to_numpy()  # before SedonaDB imports geoarrow
    try:
        import shapely

        geoms = shapely.from_wkb(wkb.to_numpy(zero_copy_only=False))
    except ImportError:
        geoms = None  # the shapely and geopandas peers skip themselves

    # 1. dwithin, smallest area
    name = f"1. dwithin d={D_THREE:.3f}, smallest area: {p:,} x {n1:,}"
    index = b.fresh()
    want = b.ours(
        name, "polymatch dwithin, rank_by=area", index, lambda i, q: ours_area(i, q, D_THREE), pts1
    )
    cands = len(index.match(pts1, predicate="dwithin", max_dist=D_THREE, all_candidates=True))
    b.notes.append(f"workload 1: {cands / n1:.2f} candidates per point at d={D_THREE:.4f}")

    def same_ids(got, m):
        ids = got[0] if isinstance(got, tuple) else got
        same = int((ids == want[:m]).sum())
        return f"{same:,}/{m:,} ids", same == m

    for system, fn in [
        ("shapely STRtree.query(dwithin) + min area", shapely_area),
        ("geopandas sjoin(dwithin) + min area", geopandas_area),
    ]:
        try:
            b.peer(name, system, lambda q: fn(geoms, area, q, D_THREE), pts1, same_ids)
        except ImportError as e:
            b.notes.append(f"{system} skipped: {e.name} is not installed")
    sqls = {DuckDB: DUCKDB_AREA, Sedona: SEDONA_AREA}
    for engine in engines(wkb, area, sqls, D_THREE, pts1, b.notes):
        b.peer(
            name,
            f"{engine.name} ST_DWithin + strict residual + min area (load points + query)",
            lambda q: engine.run(sqls[type(engine)], q, D_THREE),
            pts1,
            same_ids,
        )

    # 2. nearest within a cap
    name = f"2. nearest within {CAP:.2f}: {p:,} x {n2:,}"
    index = b.fresh()
    want_ids, want_d = b.ours(
        name, "polymatch dwithin, rank_by=distance", index, lambda i, q: ours_near(i, q, CAP), pts2
    )
    b.notes.append(
        f"workload 2: {np.mean(want_ids >= 0):.1%} of points have a polygon within {CAP:.3f}, "
        f"{np.mean(want_d == 0):.1%} are inside one"
    )

    def agree_near(strict):
        def agree(got, m):
            ids, d = got
            sd = close(d, want_d[:m])
            si = ids == want_ids[:m]
            text = f"{int(si.sum()):,}/{m:,} ids, {int(sd.sum()):,}/{m:,} distances"
            return text, bool(sd.all() and (si.all() or not strict))

        return agree

    for system, fn, strict in [
        ("geopandas sjoin_nearest(max_distance) + lowest row", geopandas_near, True),
        ("shapely STRtree.query_nearest(max_distance, all_matches=False)", shapely_near, False),
    ]:
        try:
            b.peer(name, system, lambda q: fn(geoms, q, CAP), pts2, agree_near(strict))
        except ImportError as e:
            b.notes.append(f"{system} skipped: {e.name} is not installed")
    sqls = {DuckDB: DUCKDB_NEAR, Sedona: SEDONA_NEAR}
    labels = {
        DuckDB: "DuckDB spatial ST_DWithin(cap) + arg_min distance (load points + query)",
        Sedona: "SedonaDB ST_KNN(k=1) + cap (load points + query)",
    }
    for engine in engines(wkb, area, sqls, CAP, pts2, b.notes):
        b.peer(
            name,
            labels[type(engine)],
            lambda q: engine.run(sqls[type(engine)], q, CAP),
            pts2,
            agree_near(isinstance(engine, DuckDB)),
        )

    # 3. k nearest, max_dist = inf
    name = f"3. k nearest, max_dist=inf: {p:,} x {n2:,}"
    index = b.fresh()
    got = {1: b.ours(name, "polymatch dwithin, rank_by=distance, k=1", index,
                     lambda i, q: ours_knn(i, q, 1), pts2)}  # fmt: skip
    t1 = b.rows[-2]["seconds"]
    t5, got[5] = median_time(lambda: ours_knn(index, pts2, 5), args.repeat)
    b.row(name, "polymatch dwithin, rank_by=distance, k=5", t5, "reference", True,
          f"k=5 / k=1 = {t5 / t1:.2f}x (target <= 3x)")  # fmt: skip
    b.notes.append(f"workload 3: k=5 / k=1 = {t5 / t1:.2f}x (target <= 3x)")
    m = min(n2, 2_000 if args.quick else 20_000)
    try:
        for k in (1, 5):
            same_d, same = check_k(geoms, pts2[:m], *(a[:m] for a in got[k]))
            text = f"{same:,}/{m:,} same ids, {same_d:,}/{m:,} same distances"
            b.notes.append(f"workload 3: k={k} against GEOS distances on {m:,} points: {text}")
            for r in b.rows:
                if r["workload"] == name and r["system"].endswith(f"k={k}"):
                    r["agreement"], r["ok"] = f"GEOS check on a slice: {text}", same == m
    except ImportError as e:
        b.notes.append(f"workload 3 check skipped: {e.name} is not installed")

    def agree_k(k):
        def agree(res, m):
            ids, d = res
            sd = close(d, got[k][1][:m]).all(axis=1)
            si = (ids == got[k][0][:m]).all(axis=1)
            return f"{int(si.sum()):,}/{m:,} ids, {int(sd.sum()):,}/{m:,} distances", bool(sd.all())

        return agree

    try:
        b.peer(
            name,
            "shapely STRtree.query_nearest(all_matches=False) (k=1)",
            lambda q: shapely_knn1(geoms, q),
            pts2,
            agree_k(1),
        )
    except ImportError as e:
        b.notes.append(f"shapely query_nearest skipped: {e.name} is not installed")
    for engine in engines(wkb, area, {Sedona: SEDONA_KNN.format(k=1)}, 0.0, pts2, b.notes):
        for k in (1, 5):
            b.peer(
                name,
                f"SedonaDB ST_KNN(k={k}) (load points + query)",
                lambda q: engine.knn(q, k),
                pts2,
                agree_k(k),
            )
    return b


def table(b: Bench) -> str:
    lines = [
        "| workload | system | seconds (median) | polymatch speedup | agreement | note |",
        "|---|---|---:|---:|---|---|",
    ]
    ref = {}  # polymatch's time per workload (and k=5 apart): peer / polymatch
    for r in b.rows:
        if r["system"].startswith("polymatch dwithin"):
            ref.setdefault((r["workload"], "k=5" in r["system"]), r["seconds"])
    for r in b.rows:
        base = ref[(r["workload"], "k=5" in r["system"])]
        speedup = "" if r["system"].startswith("polymatch") else f"{r['seconds'] / base:.1f}x"
        lines.append(
            f"| {r['workload']} | {r['system']} | {r['seconds']:.3f} | {speedup} | "
            f"{r['agreement']} | {r['note']} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small sizes; assert agreement (CI)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per timing (median)")
    ap.add_argument("--budget", type=float, default=60.0, help="time a slower peer on a slice (s)")
    ap.add_argument("--slice", type=int, default=50_000, help="points of the slice")
    ap.add_argument("--out", type=Path, default=None, help="append the results table (markdown)")
    args = ap.parse_args()
    if args.quick:
        args.repeat, args.slice = 1, 5_000
    b = run(args)
    out = table(b)
    print()
    print(out)
    print()
    for note in b.notes:
        print(f"- {note}")
    print(versions())
    if args.out:
        with open(args.out, "a") as f:
            f.write(out + "\n")
    if args.quick:
        bad = [r for r in b.rows if r["ok"] is False]
        assert not bad, bad


if __name__ == "__main__":
    main()
