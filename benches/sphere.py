"""`metric="sphere"` (longitude/latitude degrees, great-circle metres on a sphere of radius
R = 6,371,008.8 m) against planar matching and the peers, answers checked.

    .venv/bin/python benches/sphere.py            # 100k polygons x 1M points
    .venv/bin/python benches/sphere.py --quick    # 5k x 20k; asserts agreement (CI)

Data: 100k jittered hexagons (radius 1-4 km, each vertex's angle and radius jittered) with
centers uniform in longitude/latitude over lon -10..30, lat 35..60, and 1M points uniform
in longitude/latitude over the same region. --quick shrinks the region's sides by
sqrt(P / 100k) from its south-west corner, so the density (polygons per square degree)
and the candidate counts stay about the same.

Workloads (center rule, best = smallest area in square metres, then the lowest row):
1. *sphere vs planar, ~30 candidates*: the same coordinates as a `metric="sphere"` index
   with max_dist in metres and as a `metric="planar"` index with max_dist in degrees,
   both radii chosen for ~30 candidates per point from the density (100 centers per
   square degree): planar 100 pi d^2 = 30, d = 0.309 deg; sphere the same with the
   circle's longitude span widened by 1 / cos(lat), averaged over the band (full size:
   ~27.8 km; --quick's narrower band: ~30.5 km). Both radii and the measured mean
   candidate counts (all_candidates on a sample) are printed; the first call at each
   radius (it builds the cell lists) is timed apart. Target: sphere within 1.5x of
   planar (the --quick build may be a debug build: its ratio means little).
2. *vs peers, within 10 km*: best by area among the centers within 10 km. Peers get
   polymatch's spherical centers (`to_arrow()` center_x/center_y) and areas as columns:
   - SedonaDB geography: `ST_GeogPoint` points and centers, `JOIN ... ON
     ST_DWithin(center, point, 10000)` (EXPLAIN checked for a SpatialJoinExec; a note if
     not), `first_value(polygon_row ORDER BY area, polygon_row)` per point.
   - DuckDB spatial as its users write it: a SPATIAL_JOIN on a conservative degree
     radius, `ST_DWithin(point, center, deg)` with deg = 10 km in degrees (at R =
     6,371,000 m) / cos(max |lat| + 0.5 deg) x 1.01 (EXPLAIN checked), then the exact
     `ST_Distance_Sphere(..) < 10000` as the aggregate's FILTER and `arg_min(polygon_row,
     (area, polygon_row))`. DuckDB 1.4.4's `ST_Distance_Sphere` reads x as LATITUDE
     (duckdb-spatial #442/#671): the bench asks it at start-up (lon 0 -> 1 at lat 60 must
     be ~55.6 km) and, as it does in 1.4.4, builds second point columns `ST_Point(lat,
     lon)` for the points and the centers and passes those to `ST_Distance_Sphere`
     (`ST_Point(lon, lat)` stays the geometry of the join); were x read as longitude,
     it would pass `ST_Point(lon, lat)`.
   Peers are timed loading their points (building the point geometries) + the query, as
   the other benches do; polymatch on a prepared index (its build timed apart). Target:
   polymatch >= 100x faster than each.

3. *near the outline, within 500 m* (`predicate="dwithin"`, metres to the hexagons'
   edges, 0 inside), best by area: polymatch on the same sphere index against SedonaDB
   geography (`ST_GeogFromWKB` polygons, `JOIN ... ON ST_DWithin(polygon, point, 500)`,
   `first_value(polygon_row ORDER BY area, polygon_row)`). DuckDB 1.4.4 has no
   point-to-polygon distance in metres (`ST_Distance_Sphere`/`_Spheroid` take points),
   so it has no row here. A point agrees if the polygon is the same, or some outline
   lies within 500 m x (1 +- 1e-5) of it by polymatch's distance (S2's R and its
   geodesic edges differ from ours by far less than that band).

4. *the zone that covers each point, great-circle edges*: the same hexagons as WKB with
   GeoArrow metadata `"edges": "spherical"`, `predicate="covers"`, smallest area, against
   the same index with the edges straight in degrees and SedonaDB geography
   (`JOIN ... ON ST_Intersects(polygon, point)`, S2: geodesic edges;
   `first_value(polygon_row ORDER BY area, polygon_row)`). A point agrees if the polygon
   is the same or it lies within 1 mm of an outline.

Agreement: the peers measure on other spheres (SedonaDB's S2 R = 6,371,010 m, DuckDB's
haversine R = 6,371,000 m: both measured at start-up and printed), ~1.4e-6 relative from
ours at most, and the join predicates are `<=` against our `<`. A point agrees if the
peer's polygon equals ours, or if it is *near the threshold*: some polygon center lies
within 10 km x (1 +- 1e-5), i.e. 10 km +- 0.1 m, of it by polymatch's distance (a peer's
candidate missing from ours, or one of ours missing from the peer's, must be such a
center unless the two disagree by more than 1e-5). The counts are printed; --quick fails
on any other disagreement.

Oracle: on a slice of the points, every (point, center) pair within each workload's
radius found by scipy's cKDTree on unit vectors and measured with
`pyproj.Geod(a=R, b=R).inv`; polymatch's all_candidates pairs must be those with pyproj
distance < max_dist (+- 1e-6 m) and its distance column must match pyproj's to 1e-6 m.

Each timing is the median of --repeat runs; a peer estimated above --budget seconds
(from a slice of the points) is timed on that slice and scaled, with a note.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

import polymatch as pm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import near  # noqa: E402
from compare import versions  # noqa: E402
from near import as_ids  # noqa: E402
from shapes import median_time  # noqa: E402

R = 6_371_008.8  # polymatch's sphere (metres)
M_PER_DEG = math.pi * R / 180
D_PEERS = 10_000.0  # workload 2's radius (metres)
D_OUTLINE = 500.0  # workload 3's radius (metres to the outline)
BAND = 1e-5  # relative: "near the threshold"
ORACLE_TOL = 1e-6  # metres
CANDIDATES = 30  # workload 1's target candidates per point
FULL_P, FULL_LON, FULL_LAT = 100_000, (-10.0, 30.0), (35.0, 60.0)


# --- data ---------------------------------------------------------------------------------


def region(p: int):
    """(lon0, lon1), (lat0, lat1): the full region, its sides shrunk by sqrt(p / 100k)."""
    s = math.sqrt(p / FULL_P)
    (x0, x1), (y0, y1) = FULL_LON, FULL_LAT
    return (x0, x0 + (x1 - x0) * s), (y0, y0 + (y1 - y0) * s)


def hexagons(p: int, lon, lat, seed: int = 1):
    """Flat x, y, offsets of p jittered hexagons of radius 1-4 km, centers uniform."""
    rng = np.random.default_rng(seed)
    cx, cy = rng.uniform(*lon, p), rng.uniform(*lat, p)
    ang = np.linspace(0, 2 * np.pi, 6, endpoint=False)[None, :] + rng.normal(0, 0.08, (p, 6))
    r = rng.uniform(1_000, 4_000, (p, 1)) * rng.uniform(0.85, 1.15, (p, 6))
    y = cy[:, None] + r * np.sin(ang) / M_PER_DEG
    x = cx[:, None] + r * np.cos(ang) / (M_PER_DEG * np.cos(np.radians(cy))[:, None])
    return x.ravel(), y.ravel(), np.arange(0, 6 * p + 1, 6, dtype=np.int64)


def points(n: int, lon, lat, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(*lon, n), rng.uniform(*lat, n)])


def radii(p: int, lon, lat, target: float = CANDIDATES):
    """(planar degrees, sphere metres) for ~`target` centers within max_dist of a point.

    Planar: density * pi d^2 = target. Sphere: a circle of r metres spans r / M_PER_DEG
    degrees of latitude and that / cos(lat) of longitude, pi r^2 / (M_PER_DEG^2 cos lat)
    square degrees; E[1 / cos lat] over the uniform band is the integral of sec over it.
    """
    density = p / ((lon[1] - lon[0]) * (lat[1] - lat[0]))
    d_deg = math.sqrt(target / (math.pi * density))
    a, b = np.radians(lat)
    mean_sec = (
        math.log(1 / math.cos(b) + math.tan(b)) - math.log(1 / math.cos(a) + math.tan(a))
    ) / (b - a)
    return d_deg, M_PER_DEG * math.sqrt(target / (math.pi * density * mean_sec))


def point_table(pts: np.ndarray) -> pa.Table:
    return pa.table({"x": pts[:, 0], "y": pts[:, 1]})


def ours(index, table: pa.Table, d, predicate: str = "center") -> np.ndarray:
    return as_ids(index.match(table, d, how="left", predicate=predicate)["polygon_index"])


def candidates(index, pts, d, predicate: str = "center"):
    """polymatch's all_candidates pairs: point rows, polygon rows, distances."""
    res = index.match(point_table(pts), d, all_candidates=True, predicate=predicate)
    return (
        res["point_index"].to_numpy().astype(np.int64),
        res["polygon_index"].to_numpy().astype(np.int64),
        res["distance"].to_numpy(),
    )


def near_threshold(index, pts, d, predicate: str = "center") -> np.ndarray:
    """Points with a center (an outline) within d (1 +- BAND) by polymatch's distance."""
    pi, _, dist = candidates(index, pts, d * (1 + BAND), predicate)
    out = np.zeros(len(pts), bool)
    out[pi[dist >= d * (1 - BAND)]] = True
    return out


def unit(lon, lat) -> np.ndarray:
    lam, phi = np.radians(lon), np.radians(lat)
    return np.column_stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])


def oracle(index, cx, cy, pts, d) -> tuple[str, bool]:
    """polymatch's candidate pairs and distances against pyproj's sphere geodesics."""
    import pyproj
    from scipy.spatial import cKDTree

    pi, gi, dist = candidates(index, pts, d)
    chord = 2 * math.sin((d + 1.0) / (2 * R))  # a metre wider: pyproj decides
    m = cKDTree(unit(pts[:, 0], pts[:, 1])).sparse_distance_matrix(
        cKDTree(unit(cx, cy)), chord, output_type="ndarray"
    )
    oi, og = m["i"].astype(np.int64), m["j"].astype(np.int64)
    _, _, g = pyproj.Geod(a=R, b=R).inv(pts[oi, 0], pts[oi, 1], cx[og], cy[og])
    p = len(cx)
    want = set((oi[g < d - ORACLE_TOL] * p + og[g < d - ORACLE_TOL]).tolist())
    allowed = dict(zip((oi * p + og).tolist(), g.tolist()))
    got = (pi * p + gi).tolist()
    missing = len(want - set(got))
    extra = sum(1 for k in got if allowed.get(k, math.inf) >= d + ORACLE_TOL)
    err = max(
        (abs(allowed[k] - x) for k, x in zip(got, dist.tolist()) if k in allowed), default=0.0
    )
    ok = missing == 0 and extra == 0 and err <= ORACLE_TOL
    text = (
        f"pyproj oracle on {len(pts):,} points: {len(got):,} pairs, {missing} missing, "
        f"{extra} extra, max |distance - pyproj| = {err:.1e} m"
    )
    return text, ok


# --- peers --------------------------------------------------------------------------------
# The polygons `polygons(polygon_row, center, ..., area)` are loaded once; the points
# `points(point_row, geom, ...)` inside the timing. The exact residual is the aggregate's
# FILTER (a WHERE is folded into DuckDB's join, which then leaves its SPATIAL_JOIN: see
# benches/compare.py).

DUCKDB_QUERY = """
WITH pairs AS MATERIALIZED (
    SELECT pt.point_row, pg.polygon_row, pg.area,
           ST_Distance_Sphere(pt.geom_sphere, pg.center_sphere) AS dist
    FROM points pt JOIN polygons pg ON ST_DWithin(pt.geom, pg.center, $deg)
),
best AS (
    SELECT point_row,
           arg_min(polygon_row, (area, polygon_row)) FILTER (WHERE dist < $d) AS polygon_row
    FROM pairs GROUP BY point_row
)
SELECT pt.point_row, best.polygon_row
FROM points pt LEFT JOIN best ON pt.point_row = best.point_row
ORDER BY pt.point_row
"""

SEDONA_QUERY = """
WITH best AS (
    SELECT pt.point_row,
           first_value(pg.polygon_row ORDER BY pg.area, pg.polygon_row) AS polygon_row
    FROM points pt JOIN polygons pg ON ST_DWithin(pg.center, pt.geog, $d)
    GROUP BY pt.point_row
)
SELECT pt.point_row, best.polygon_row
FROM points pt LEFT JOIN best ON pt.point_row = best.point_row
ORDER BY pt.point_row
"""


class DuckDB:
    name = "DuckDB spatial"

    def __init__(self, cx, cy, area, deg, d, notes):
        import duckdb
        import duckdb_ext

        self.con = duckdb_ext.init(duckdb.connect())
        try:
            self.con.execute("LOAD spatial")
        except duckdb.Error as e:
            raise ImportError(f"LOAD spatial: {e}", name="duckdb-ext-spatial") from e
        self.params = {"deg": deg, "d": d}
        # lon 0 -> 1 at lat 60: 55.6 km; read as lat 0 -> 1 at lon 60: 111.2 km.
        km = self.con.execute(
            "SELECT ST_Distance_Sphere(ST_Point(0, 60), ST_Point(1, 60)) / 1000"
        ).fetchone()[0]
        if abs(km - 111.19) < 0.1:
            self.xy, order = "y, x", "x as LATITUDE: passes ST_Point(lat, lon)"
        elif abs(km - 55.6) < 0.1:
            self.xy, order = "x, y", "x as longitude: passes ST_Point(lon, lat)"
        else:
            raise RuntimeError(f"DuckDB ST_Distance_Sphere lon 0 -> 1 at lat 60: {km} km")
        one = self.con.execute(  # (0, 0) -> (1, 0) or (0, 1): 1 degree either way
            "SELECT ST_Distance_Sphere(ST_Point(0, 0), ST_Point(1, 0))"
        ).fetchone()[0]
        notes.append(
            f"DuckDB ST_Distance_Sphere(lon 0 -> 1 at lat 60 as ST_Point(lon, lat)) = {km:.3f} "
            f"km: it reads {order}; lon 0 -> 1 at lat 0 = {one:.3f} m (R = "
            f"{one / math.radians(1):,.1f} m)"
        )
        polygons = pa.table({"polygon_row": np.arange(len(cx)), "x": cx, "y": cy, "area": area})
        self.con.register("polygons_arrow", polygons)
        self.con.execute(
            "CREATE OR REPLACE TABLE polygons AS SELECT polygon_row, ST_Point(x, y) AS center, "
            f"ST_Point({self.xy}) AS center_sphere, area FROM polygons_arrow"
        )
        self.con.unregister("polygons_arrow")

    def load(self, pts):
        self.con.register(
            "points_arrow",
            pa.table({"point_row": np.arange(len(pts)), "x": pts[:, 0], "y": pts[:, 1]}),
        )
        self.con.execute(
            "CREATE OR REPLACE TABLE points AS SELECT point_row, ST_Point(x, y) AS geom, "
            f"ST_Point({self.xy}) AS geom_sphere FROM points_arrow"
        )
        self.con.unregister("points_arrow")

    def plan_note(self) -> str:
        plan = self.con.execute("EXPLAIN " + DUCKDB_QUERY, self.params).fetchall()[0][1]
        if "SPATIAL_JOIN" not in plan or "NL_JOIN" in plan or "NESTED_LOOP" in plan:
            return "DuckDB did NOT plan a SPATIAL_JOIN"
        return ""

    def run(self, pts):
        self.load(pts)
        return as_ids(
            self.con.execute(DUCKDB_QUERY, self.params).fetch_arrow_table()["polygon_row"]
        )


class Sedona:
    name = "SedonaDB geography"

    def __init__(self, cx, cy, area, deg, d, notes):
        import sedonadb

        self.sd = sedonadb.connect()
        self.params = {"d": d}
        m = (
            self.sd.sql("SELECT ST_Distance(ST_GeogPoint(0, 0), ST_GeogPoint(1, 0)) AS m")
            .to_arrow_table()["m"][0]
            .as_py()
        )
        notes.append(
            f"SedonaDB geography ST_Distance lon 0 -> 1 at lat 0 = {m:.3f} m "
            f"(R = {m / math.radians(1):,.1f} m)"
        )
        polygons = pa.table({"polygon_row": np.arange(len(cx)), "x": cx, "y": cy, "area": area})
        self.sd.create_data_frame(polygons).to_view("polygons_arrow", overwrite=True)
        self.sd.sql(
            "SELECT polygon_row, ST_GeogPoint(x, y) AS center, area FROM polygons_arrow"
        ).to_memtable().to_view("polygons", overwrite=True)

    def load(self, pts):
        points = pa.table({"point_row": np.arange(len(pts)), "x": pts[:, 0], "y": pts[:, 1]})
        self.sd.create_data_frame(points).to_view("points_arrow", overwrite=True)
        self.sd.sql(
            "SELECT point_row, ST_GeogPoint(x, y) AS geog FROM points_arrow"
        ).to_memtable().to_view("points", overwrite=True)

    query = SEDONA_QUERY

    def plan_note(self) -> str:
        t = self.sd.sql("EXPLAIN " + self.query, params=self.params).to_arrow_table()
        plan = "\n".join(t.column(1).to_pylist())
        if "SpatialJoinExec" not in plan or "NestedLoopJoinExec" in plan:
            return "SedonaDB did NOT plan a SpatialJoinExec"
        return ""

    def run(self, pts):
        self.load(pts)
        return self.ids(self.sd.sql(self.query, params=self.params).to_arrow_table(), len(pts))

    @staticmethod
    def ids(t: pa.Table, n: int) -> np.ndarray:
        """The answer as one polygon id per point (a row per point, in order)."""
        return as_ids(t["polygon_row"])


SEDONA_OUTLINE_QUERY = """
SELECT pt.point_row, first_value(pg.polygon_row ORDER BY pg.area, pg.polygon_row) AS polygon_row
FROM points pt JOIN outlines pg ON ST_DWithin(pg.geog, pt.geog, $d)
GROUP BY pt.point_row
"""


SEDONA_COVERS_QUERY = """
SELECT pt.point_row, first_value(pg.polygon_row ORDER BY pg.area, pg.polygon_row) AS polygon_row
FROM points pt JOIN outlines pg ON ST_Intersects(pg.geog, pt.geog)
GROUP BY pt.point_row
"""


class SedonaOutline(Sedona):
    """SedonaDB geography with the hexagons themselves (workload 3)."""

    def __init__(self, wkb: pa.Array, area, d):  # noqa: D107
        import sedonadb

        self.sd = sedonadb.connect()
        self.params = {"d": d}
        polygons = pa.table({"polygon_row": np.arange(len(wkb)), "wkb": wkb, "area": area})
        self.sd.create_data_frame(polygons).to_view("outlines_arrow", overwrite=True)
        self.sd.sql(
            "SELECT polygon_row, ST_GeogFromWKB(wkb) AS geog, area FROM outlines_arrow"
        ).to_memtable().to_view("outlines", overwrite=True)

    query = SEDONA_OUTLINE_QUERY

    @staticmethod
    def ids(t: pa.Table, n: int) -> np.ndarray:
        """A grouped (point_row, polygon_row) answer as one polygon id per point (-1:
        none)."""
        out = np.full(n, -1, dtype=np.int64)
        out[t["point_row"].to_numpy()] = t["polygon_row"].to_numpy()
        return out


# --- the runs -----------------------------------------------------------------------------


class Bench(near.Bench):
    """near.py's rows and peer timing (slice + scale above --budget)."""

    def __init__(self, args):
        super().__init__(args, None)
        self.ref: dict[str, float] = {}

    def build(self, workload, label, fn):
        secs, index = median_time(fn, self.args.repeat)
        self.row(workload, f"{label}: index build (from_coords)", secs)
        self.rows[-1]["apart"] = True
        return index

    def first_call(self, workload, label, index, d, table, predicate="center"):
        """The first match of the whole table at a max_dist: it builds the index's cell lists
        (where they apply) on top of matching, so it is timed apart."""
        secs, _ = median_time(lambda: ours(index, table, d, predicate), 1)
        self.row(
            workload, f"{label}: first call at this max_dist (builds the cell lists + match)", secs
        )
        self.rows[-1]["apart"] = True

    def ours(self, workload, label, index, table, d, reference=False, predicate="center"):
        secs, got = median_time(lambda: ours(index, table, d, predicate), self.args.repeat)
        if reference:
            self.ref[workload] = secs
        self.row(
            workload, label, secs, "reference" if reference else "", True if reference else None
        )
        return got, secs


def run(args) -> Bench:
    p, n = (5_000, 20_000) if args.quick else (FULL_P, 1_000_000)
    m = 2_000 if args.quick else 20_000  # the candidate-count sample and the oracle's slice
    lon, lat = region(p)
    x, y, offsets = hexagons(p, lon, lat)
    pts = points(n, lon, lat)
    table = point_table(pts)  # built once, outside the timings
    b = Bench(args)
    b.notes.append(
        f"{p:,} jittered hexagons (radius 1-4 km), {n:,} points, uniform over lon "
        f"{lon[0]:g}..{lon[1]:.4g}, lat {lat[0]:g}..{lat[1]:.4g}"
    )

    # 1. sphere vs planar, ~30 candidates
    d_deg, d_m = radii(p, lon, lat)
    name = f"1. ~{CANDIDATES} candidates: {p:,} x {n:,}"
    sphere = b.build(
        name,
        "polymatch sphere",
        lambda: pm.PolygonIndex.from_coords(x, y, offsets, metric="sphere"),
    )
    planar = b.build(
        name,
        "polymatch planar",
        lambda: pm.PolygonIndex.from_coords(x, y, offsets, metric="planar"),
    )
    got = {}
    for label, index, d in [("sphere", sphere, d_m), ("planar", planar, d_deg)]:
        b.first_call(name, f"polymatch {label}", index, d, table)
        got[label] = len(index.match(table.slice(0, m), d, all_candidates=True)) / m
    centers = sphere.to_arrow()
    cx, cy = centers["center_x"].to_numpy(), centers["center_y"].to_numpy()
    area = centers["area"].to_numpy()
    text, ok = oracle(sphere, cx, cy, pts[:m], d_m)
    b.notes.append(f"workload 1 (sphere, {d_m:,.0f} m): {text}")
    _, t_sphere = b.ours(
        name,
        f'polymatch metric="sphere", max_dist={d_m:,.0f} m ({got["sphere"]:.1f} candidates)',
        sphere,
        table,
        d_m,
        reference=True,
    )
    b.rows[-1]["agreement"], b.rows[-1]["ok"] = text, ok
    _, t_planar = b.ours(
        name,
        f'polymatch metric="planar", max_dist={d_deg:.4f} deg ({got["planar"]:.1f} candidates)',
        planar,
        table,
        d_deg,
    )
    ratio = f"sphere / planar = {t_sphere / t_planar:.2f}x (target <= 1.5x)"
    b.rows[-1]["note"] = ratio
    b.notes.append(
        f"workload 1: sphere max_dist = {d_m:,.1f} m, {got['sphere']:.2f} candidates per point; "
        f"planar max_dist = {d_deg:.5f} deg, {got['planar']:.2f} (all_candidates on {m:,} "
        f"points); {ratio}"
    )

    # 2. within 10 km, against the peers (the sphere index above: its build is timed)
    name = f"2. within {D_PEERS / 1000:g} km: {p:,} x {n:,}"
    b.first_call(name, "polymatch sphere", sphere, D_PEERS, table)
    want, _ = b.ours(
        name, 'polymatch metric="sphere" (prepared index)', sphere, table, D_PEERS, True
    )
    k = len(sphere.match(table.slice(0, m), D_PEERS, all_candidates=True)) / m
    text, ok = oracle(sphere, cx, cy, pts[:m], D_PEERS)
    b.rows[-1]["agreement"], b.rows[-1]["ok"] = text, ok
    b.notes.append(f"workload 2 (sphere, {D_PEERS:,.0f} m): {k:.2f} candidates per point; {text}")
    band = near_threshold(sphere, pts, D_PEERS)
    b.notes.append(
        f"workload 2: {int(band.sum()):,}/{n:,} points have a center within "
        f"{D_PEERS:,.0f} m +- {D_PEERS * BAND:g} m (relative {BAND:g}): near the threshold"
    )

    def agree(got, m):
        same = got == want[:m]
        near_ = ~same & band[:m]
        other = int((~same & ~band[:m]).sum())
        text = f"{int(same.sum()):,}/{m:,} same, {int(near_.sum()):,} differ near the threshold, {other} differ"
        return text, other == 0

    max_lat = float(max(np.abs(pts[:, 1]).max(), np.abs(cy).max()))
    deg = D_PEERS / (math.pi * 6_371_000 / 180) / math.cos(math.radians(max_lat + 0.5)) * 1.01
    labels = {
        DuckDB: f"DuckDB spatial ST_DWithin({deg:.4f} deg) + ST_Distance_Sphere < 10 km + arg_min area",
        Sedona: "SedonaDB geography ST_DWithin(10 km) + first_value area",
    }
    for cls in (DuckDB, Sedona):
        try:
            engine = cls(cx, cy, area, deg, D_PEERS, b.notes)
        except ImportError as e:
            b.notes.append(f"{cls.name} skipped: {e.name} is not installed")
            continue
        engine.load(pts[:100])
        plan = engine.plan_note()
        if plan:
            b.notes.append(plan)
        else:
            b.notes.append(f"{cls.name}: EXPLAIN shows a spatial join")
        b.peer(name, labels[cls] + " (load points + query)", engine.run, pts, agree)
        if plan:
            b.rows[-1]["note"] = "; ".join(s for s in (b.rows[-1]["note"], plan) if s)

    # 3. within 500 m of the outline, against SedonaDB geography
    name = f"3. within {D_OUTLINE:g} m of the outline: {p:,} x {n:,}"
    b.first_call(name, "polymatch sphere dwithin", sphere, D_OUTLINE, table, "dwithin")
    want3, _ = b.ours(
        name,
        'polymatch metric="sphere", predicate="dwithin" (prepared index)',
        sphere,
        table,
        D_OUTLINE,
        True,
        "dwithin",
    )
    k = len(candidates(sphere, pts[:m], D_OUTLINE, "dwithin")[0]) / m
    band3 = near_threshold(sphere, pts, D_OUTLINE, "dwithin")
    b.notes.append(
        f"workload 3 (outline, {D_OUTLINE:,.0f} m): {k:.2f} candidates per point; "
        f"{int(band3.sum()):,}/{n:,} points near the threshold"
    )

    def agree3(got, m):
        same = got == want3[:m]
        near_ = ~same & band3[:m]
        other = int((~same & ~band3[:m]).sum())
        text = f"{int(same.sum()):,}/{m:,} same, {int(near_.sum()):,} differ near the threshold, {other} differ"
        return text, other == 0

    try:
        import shapely

        rings = np.column_stack([x, y]).reshape(-1, 6, 2)
        wkb = pa.array(shapely.to_wkb(shapely.polygons(rings)), pa.binary())
        engine = SedonaOutline(wkb, area, D_OUTLINE)
    except ImportError as e:
        b.notes.append(f"SedonaDB outline skipped: {e.name} is not installed")
        return b
    engine.load(pts[:100])
    plan = engine.plan_note()
    b.notes.append(plan or "SedonaDB (outlines): EXPLAIN shows a spatial join")
    b.peer(
        name,
        f"SedonaDB geography ST_DWithin(polygon, point, {D_OUTLINE:g}) + first_value area "
        "(load points + query)",
        engine.run,
        pts,
        agree3,
    )

    # 4. the zone that covers each point, edges as great-circle arcs
    name = f"4. covers, great-circle edges: {p:,} x {n:,}"
    meta = {b"ARROW:extension:name": b"geoarrow.wkb",
            b"ARROW:extension:metadata": b'{"edges": "spherical"}'}  # fmt: skip
    arcs = pa.table([wkb], schema=pa.schema([pa.field("geometry", pa.binary(), metadata=meta)]))
    great = b.build(name, "polymatch sphere, spherical edges",
                    lambda: pm.PolygonIndex.from_arrow(arcs, metric="sphere"))  # fmt: skip
    b.rows[-1]["system"] = b.rows[-1]["system"].replace("from_coords", "from_arrow")
    b.first_call(name, "polymatch covers, spherical edges", great, None, table, "covers")
    want4, _ = b.ours(name, 'polymatch predicate="covers", spherical edges (prepared index)',
                      great, table, None, True, "covers")  # fmt: skip
    b.ours(name, 'polymatch predicate="covers", planar edges (the same zones)', sphere, table,
           None, False, "covers")  # fmt: skip
    straight = ours(sphere, table, None, "covers")
    b.notes.append(
        f"workload 4: {int((want4 >= 0).sum()):,}/{n:,} points in a zone; "
        f"{int((straight != want4).sum()):,} get another zone with the edges straight in degrees"
    )

    def agree4(got, m):
        # a point within 1 mm of an outline may fall either side by S2's edges
        near_ = near_threshold(great, pts[:m], 1e-3, "dwithin") if m else np.zeros(0, bool)
        same = got == want4[:m]
        other = int((~same & ~near_).sum())
        text = f"{int(same.sum()):,}/{m:,} same, {int((~same & near_).sum()):,} differ within 1 mm of an outline, {other} differ"
        return text, other == 0

    engine.query = SEDONA_COVERS_QUERY
    engine.params = {}
    b.peer(name, "SedonaDB geography ST_Intersects(polygon, point) + first_value area "
           "(load points + query)", engine.run, pts, agree4)  # fmt: skip
    return b


def table(b: Bench) -> str:
    lines = [
        "| workload | system | seconds (median) | time / polymatch sphere | agreement | note |",
        "|---|---|---:|---:|---|---|",
    ]
    for r in b.rows:
        ratio = "" if r.get("apart") else f"{r['seconds'] / b.ref[r['workload']]:.2f}x"
        lines.append(
            f"| {r['workload']} | {r['system']} | {r['seconds']:.3f} | {ratio} | "
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
    v = versions()
    try:
        import pyproj

        v["pyproj"] = pyproj.__version__
    except ImportError:
        v["pyproj"] = "not installed"
    print(v)
    if args.out:
        with open(args.out, "a") as f:
            f.write(out + "\n")
    if args.quick:
        bad = [r for r in b.rows if r["ok"] is False]
        if bad:
            sys.exit(f"disagreement: {bad}")


if __name__ == "__main__":
    main()
