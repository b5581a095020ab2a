"""``metric="sphere"``: longitude/latitude points and polygons, great-circle metres, square
metres (docs/SPEC.md, "On the sphere").

The oracle is independent of polymatch: pyproj's geodesics on a sphere of radius R
(``Geod(a=R, b=R)``: great circles, spherical polygon areas). Candidates are compared
away from the threshold (a relative band of 1e-9 around ``max_dist``, where float
rounding of either side may decide), distances and areas within stated tolerances.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pyproj
import pytest

import polymatch as pm

R = 6_371_008.8
GEOD = pyproj.Geod(a=R, b=R)


def rings(n: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Small hexagon-ish rings anywhere, across the antimeridian and near the poles."""
    rng = np.random.default_rng(seed)
    cx = rng.uniform(-180, 180, n)
    cy = np.concatenate([rng.uniform(-85, 85, n - n // 4), rng.uniform(80, 86, n // 4)])
    xs, ys = [], []
    for i in range(n):
        ang = np.sort(rng.uniform(0, 2 * np.pi, 6))
        r = rng.uniform(0.01, 0.4)
        x = cx[i] + r * np.cos(ang) / np.cos(np.radians(cy[i]))
        y = cy[i] + r * np.sin(ang)
        xs.append(np.where(x > 180, x - 360, np.where(x < -180, x + 360, x)))
        ys.append(y)
    return xs, ys


def index_of(xs: list[np.ndarray], ys: list[np.ndarray]) -> pm.PolygonIndex:
    offsets = np.cumsum([0] + [len(x) for x in xs])
    return pm.PolygonIndex.from_coords(
        np.concatenate(xs), np.concatenate(ys), offsets, metric="sphere"
    )


def points(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # both longitude conventions
    return rng.uniform(-180, 360, n), rng.uniform(-89.5, 89.5, n)


@pytest.fixture(scope="module")
def world() -> tuple[pm.PolygonIndex, list[np.ndarray], list[np.ndarray]]:
    xs, ys = rings(1500, 3)
    return index_of(xs, ys), xs, ys


def test_centers_and_areas_against_geodesics(world) -> None:
    index, xs, ys = world
    t = index.to_arrow()
    area = np.array([abs(GEOD.polygon_area_perimeter(x, y)[0]) for x, y in zip(xs, ys)])
    np.testing.assert_allclose(t["area"].to_numpy(), area, rtol=1e-9)
    # The center: the normalised mean of the vertices' unit vectors.
    for i in range(0, len(xs), 97):
        lon, lat = np.radians(xs[i]), np.radians(ys[i])
        v = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)]).sum(1)
        want_lon = np.degrees(np.arctan2(v[1], v[0]))
        want_lat = np.degrees(np.arctan2(v[2], np.hypot(v[0], v[1])))
        _, _, d = GEOD.inv(t["center_x"][i].as_py(), t["center_y"][i].as_py(), want_lon, want_lat)
        assert d < 1e-6, (i, d)
    assert index.metric == "sphere"
    assert 'metric="sphere"' in repr(index)


def oracle_distances(index: pm.PolygonIndex, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    t = index.to_arrow()
    cx, cy = t["center_x"].to_numpy(), t["center_y"].to_numpy()
    out = np.empty((len(px), len(cx)))
    for i in range(len(px)):
        _, _, out[i] = GEOD.inv(np.full(len(cx), px[i]), np.full(len(cx), py[i]), cx, cy)
    return out


@pytest.mark.parametrize("max_dist", [30_000.0, 400_000.0, 5_000_000.0])
def test_candidates_best_and_nearest_against_geodesics(world, max_dist: float) -> None:
    index, _, _ = world
    px, py = points(400, 7)
    d = oracle_distances(index, px, py)
    area = index.to_arrow()["area"].to_numpy()
    table = pa.table({"x": px, "y": py})
    near_tie = np.abs(d - max_dist) <= 1e-9 * max_dist
    # every candidate
    res = index.match(table, max_dist, all_candidates=True)
    got = set(zip(res["point_index"].to_pylist(), res["polygon_index"].to_pylist()))
    want = set(zip(*np.nonzero(d < max_dist)))
    unsure = set(zip(*np.nonzero(near_tie)))
    assert got - unsure == want - unsure
    np.testing.assert_allclose(
        res["distance"].to_numpy(),
        d[res["point_index"].to_numpy(), res["polygon_index"].to_numpy()],
        rtol=1e-12,
        atol=1e-6,
    )
    # the smallest area, ties to the lowest row
    best = index.match(table, max_dist, how="left")
    for i, row in enumerate(best["polygon_index"].to_pylist()):
        if near_tie[i].any():
            continue
        cands = np.nonzero(d[i] < max_dist)[0]
        if len(cands) == 0:
            assert row is None
        else:
            assert row == cands[np.lexsort((cands, area[cands]))][0]
    # the 3 nearest, nearest first
    near = index.match(table, max_dist, rank_by="distance", k=3)
    by_point: dict[int, list[int]] = {}
    for p, row in zip(near["point_index"].to_pylist(), near["polygon_index"].to_pylist()):
        by_point.setdefault(p, []).append(row)
    for i in range(len(px)):
        order = np.argsort(d[i], kind="stable")
        want_rows = [j for j in order if d[i, j] < max_dist][:3]
        if near_tie[i].any() or np.any(np.abs(np.diff(d[i, order[:4]])) < 1e-6):
            continue
        assert by_point.get(i, []) == want_rows, i


def test_nearest_without_a_cap_and_the_antimeridian() -> None:
    # Two squares either side of the antimeridian; a point at 179.99 E is nearest the
    # one west of it across the line.
    xs = [np.array([179.0, 179.5, 179.5, 179.0]), np.array([-179.9, -179.8, -179.8, -179.9])]
    ys = [np.array([0.0, 0.0, 0.5, 0.5]), np.array([0.0, 0.0, 0.5, 0.5])]
    index = index_of(xs, ys)
    table = pa.table({"x": [179.99, -180.0 + 0.01 + 360.0], "y": [0.25, 0.25]})
    res = index.match(table, float("inf"), rank_by="distance")
    assert res["polygon_index"].to_pylist() == [1, 1]
    d = GEOD.inv(179.99, 0.25, -179.85, 0.25)[2]
    assert abs(res["distance"][0].as_py() - d) < 1e-3


def test_identical_across_threads_chunks_entry_points_and_bytes(world, tmp_path: Path) -> None:
    index, xs, ys = world
    px, py = points(30_000, 11)
    table = pa.table({"x": px, "y": py, "id": np.arange(len(px))})
    ref = index.match(table, 250_000.0, k=2, keep=["id"], threads=2)
    assert ref.num_rows > 0
    for kw in ({"threads": 1}, {"chunk_size": 1000}, {"threads": 2, "chunk_size": 7}):
        assert index.match(table, 250_000.0, k=2, keep=["id"], **kw).equals(ref)
    again = pm.PolygonIndex.from_bytes(index.to_bytes())
    assert again.metric == "sphere"
    assert again.match(table, 250_000.0, k=2, keep=["id"]).equals(ref)
    assert pickle.loads(pickle.dumps(index)).match(table, 250_000.0, k=2, keep=["id"]).equals(ref)
    # pm.match and match_parquet from a GeoParquet file of polygons
    poly = tmp_path / "zones.parquet"
    write_zones(poly, xs, ys, crs="OGC:CRS84")
    pts = tmp_path / "gps.parquet"
    pq.write_table(table, pts)
    via_file = pm.read_polygons(poly, metric="sphere", keep=[])
    assert via_file.match(table, 250_000.0, k=2, keep=["id"]).equals(ref)
    out = tmp_path / "out.parquet"
    pm.match_parquet(str(poly), str(pts), str(out), 250_000.0, k=2, keep=["id"], metric="sphere")
    written = pq.read_table(out)
    assert written.select(ref.column_names).equals(ref)
    assert json.loads(written.schema.metadata[b"polymatch"])["metric"] == "sphere"
    cli = tmp_path / "cli.parquet"
    run = subprocess.run(
        [sys.executable, "-m", "polymatch", "match", "--polygons", str(poly), "--points",
         str(pts), "--out", str(cli), "--max-dist", "250000", "--k", "2", "--keep", "id",
         "--metric", "sphere", "--quiet"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "warning" not in run.stderr
    assert pq.read_table(cli).select(ref.column_names).equals(ref)


def write_zones(path: Path, xs, ys, crs) -> None:
    import shapely

    geoms = [shapely.Polygon(np.column_stack([x, y])) for x, y in zip(xs, ys)]
    column = {"encoding": "WKB", "geometry_types": ["Polygon"]}
    if crs != "omit":
        column["crs"] = crs
    geo = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}
    t = pa.table({"geometry": pa.array(shapely.to_wkb(geoms), pa.binary())})
    pq.write_table(t.replace_schema_metadata({"geo": json.dumps(geo)}), path)


def test_a_geographic_crs_without_a_metric_warns(tmp_path: Path) -> None:
    xs, ys = rings(20, 5)
    points_table = pa.table({"x": [0.0], "y": [0.0]})
    for crs in ("omit", "OGC:CRS84", "EPSG:4326"):
        path = tmp_path / f"{crs.replace(':', '_')}.parquet"
        write_zones(path, xs, ys, crs)
        with pytest.warns(UserWarning, match='metric="sphere"'):
            pm.read_polygons(path)
        with pytest.warns(UserWarning, match='metric="sphere"'):
            pm.match(pq.read_table(path), points_table)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert pm.read_polygons(path, metric="planar").metric == "planar"
            assert pm.read_polygons(path, metric="sphere").metric == "sphere"
        out = tmp_path / "out.parquet"
        run = subprocess.run(
            [sys.executable, "-m", "polymatch", "match", "--polygons", str(path), "--points",
             str(write_points(tmp_path)), "--out", str(out), "--quiet"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert "--metric sphere" in lines[0] and "warning" in lines[0], lines
    # "crs": null is unknown: no warning.
    path = tmp_path / "unknown.parquet"
    write_zones(path, xs, ys, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pm.read_polygons(path)


def write_points(tmp_path: Path) -> Path:
    p = tmp_path / "pts.parquet"
    pq.write_table(pa.table({"x": [0.0, 1.0], "y": [0.0, 1.0]}), p)
    return p


def test_errors(tmp_path: Path) -> None:
    xs, ys = rings(5, 2)
    index = index_of(xs, ys)
    # a latitude out of range names the row, for polygons and points
    bad_y = [y.copy() for y in ys]
    bad_y[3][1] = 95.0
    with pytest.raises(pm.InvalidGeometryError, match=r"row 3.*latitude 95"):
        index_of(xs, bad_y)
    with pytest.raises(pm.InvalidGeometryError, match=r"row 1.*longitude 400"):
        index.match(pa.table({"x": [0.0, 400.0], "y": [0.0, 0.0]}), 1000.0)
    # over many chunks: the first bad valid row, whatever a null row's values are
    n = 50_000
    x, y = np.zeros(n), np.zeros(n)
    y[[7, 20_000]] = 95.0  # row 7 is null: its values mean nothing
    x[[30_000, 45_000]] = -200.0
    valid = np.ones(n, bool)
    valid[7] = False
    xa = pa.array(x, mask=~valid)
    for threads in (1, 2):
        for chunk in (1_000, 8_192):
            with pytest.raises(pm.InvalidGeometryError, match=r"row 20000.*latitude 95"):
                index.match(pa.table({"x": xa, "y": y}), 1000.0, threads=threads,
                            chunk_size=chunk)  # fmt: skip
    y[20_000] = 0.0
    with pytest.raises(pm.InvalidGeometryError, match=r"row 30000.*longitude -200"):
        index.match(pa.table({"x": xa, "y": y}), 1000.0)
    x[[30_000, 45_000]] = 0.0
    assert len(index.match(pa.table({"x": xa, "y": y}), 1000.0, how="left")) == n
    # a projected CRS cannot be read on the sphere
    path = tmp_path / "utm.parquet"
    write_zones(path, xs, ys, "EPSG:32633")
    with pytest.raises(ValueError, match="projected"):
        pm.read_polygons(path, metric="sphere")
    # ... with UTM-sized coordinates too: the CRS is the error, not the latitudes
    utm = tmp_path / "utm_big.parquet"
    write_zones(utm, [x * 1e4 + 5e5 for x in xs], [y * 1e4 + 4e6 for y in ys], "EPSG:32633")
    with pytest.raises(ValueError, match="projected"):
        pm.read_polygons(utm, metric="sphere")
    with pytest.raises(ValueError, match="projected"):
        pm.match_parquet(str(utm), str(write_points(tmp_path)), str(tmp_path / "o.parquet"),
                         1000.0, metric="sphere")  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "polymatch", "match", "--polygons", str(utm), "--points",
         str(write_points(tmp_path)), "--out", str(tmp_path / "o.parquet"), "--metric", "sphere"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 2 and "projected" in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.parquet").exists()
    # the match's metric must be the index's
    with pytest.raises(ValueError, match="metric"):
        index.match(pa.table({"x": [0.0], "y": [0.0]}), 10.0, metric="planar")
    with pytest.raises(ValueError, match="metric"):
        index.match(pa.table({"x": [0.0], "y": [0.0]}), metric="globe")

    # NaN and null points match nothing
    res = index.match(pa.table({"x": [np.nan, None], "y": [0.0, 1.0]}), 1e7, how="left")
    assert res["polygon_index"].null_count == 2


def test_dask_broadcast_and_partitioned_equal_one_process(world) -> None:
    """Broadcast: the index bytes carry the metric. Partitioned: tiles of
    longitude/latitude, each polygon in every tile its cap's box reaches (the whole band
    near a pole or across the antimeridian), points routed with their longitudes
    wrapped; the answers are one process's, whatever the tiles."""
    dd = pytest.importorskip("dask.dataframe")
    import dask
    import pandas as pd

    import polymatch.dask as pmd

    index, xs, ys = world
    px, py = points(4000, 13)
    frame = pd.DataFrame({"x": px, "y": py})
    table = pa.Table.from_pandas(frame)
    want = index.match(table, 300_000.0)
    got = pmd.match(index, dd.from_pandas(frame, npartitions=3), 300_000.0).compute()
    assert got["polygon_index"].tolist() == want["polygon_index"].to_pylist()
    assert got["distance"].tolist() == want["distance"].to_pylist()
    lists = pd.ArrowDtype(pa.list_(pa.float64()))
    polys = dd.from_pandas(
        pd.DataFrame(
            {
                "x": pd.Series([x.tolist() for x in xs], dtype=lists),
                "y": pd.Series([y.tolist() for y in ys], dtype=lists),
            }
        ),
        npartitions=4,
    )
    with dask.config.set(scheduler="sync"):
        for kw in ({}, {"k": 2, "how": "left"}, {"rank_by": "distance", "k": 3}):
            want = index.match(table, 300_000.0, **kw)
            got = pmd.match(
                polys, dd.from_pandas(frame, npartitions=3), 300_000.0, metric="sphere",
                polygons_per_tile=100, **kw,
            ).compute()  # fmt: skip
            for c in ("point_index", "polygon_index", "distance"):
                assert pa.Array.from_pandas(got[c]).to_pylist() == want[c].to_pylist(), (kw, c)
        # contains/covers: tiles cut by the polygons' boxes, points routed wrapped
        want = index.match(table, predicate="covers", how="left")
        got = pmd.match(
            polys, dd.from_pandas(frame, npartitions=3), predicate="covers", how="left",
            metric="sphere", polygons_per_tile=100,
        ).compute()  # fmt: skip
        assert pa.Array.from_pandas(got["polygon_index"]).to_pylist() == (
            want["polygon_index"].to_pylist()
        )
        assert want["polygon_index"].null_count < len(frame)
        # dwithin in metres: tiles cut by each polygon's box of every point within
        # max_dist (PolygonIndex.bounds(reach)), the nearest within the cap
        for kw in ({}, {"rank_by": "distance", "k": 2, "how": "left"}):
            want = index.match(table, 20_000.0, predicate="dwithin", **kw)
            got = pmd.match(
                polys, dd.from_pandas(frame, npartitions=3), 20_000.0, predicate="dwithin",
                metric="sphere", polygons_per_tile=100, **kw,
            ).compute()  # fmt: skip
            for c in ("point_index", "polygon_index", "distance"):
                assert pa.Array.from_pandas(got[c]).to_pylist() == want[c].to_pylist(), (kw, c)
            assert want.num_rows > 100, want.num_rows


def test_large_matches_take_the_fast_paths_with_the_same_answers() -> None:
    """40k polygons: a match of k=1 by area runs the cell lists (a region away from the
    antimeridian and the poles) or the grouped Z-order walk (worldwide); k=2's first
    rank runs each point's own walk. Both must give the same polygon."""
    rng = np.random.default_rng(17)
    n = 40_000
    for lon0, lon1, lat0, lat1 in ((-10, 30, 35, 60), (-180, 180, -89, 89)):
        cx, cy = rng.uniform(lon0, lon1, n), rng.uniform(lat0, lat1, n)
        ang = np.linspace(0, 2 * np.pi, 5)[:-1]
        r = rng.uniform(0.005, 0.02, n)
        xs = cx[:, None] + r[:, None] * np.cos(ang)[None, :]
        ys = np.clip(cy[:, None] + r[:, None] * np.sin(ang)[None, :], -90, 90)
        xs = np.where(xs > 180, xs - 360, np.where(xs < -180, xs + 360, xs))
        index = pm.PolygonIndex.from_coords(
            xs.ravel(), ys.ravel(), np.arange(0, 4 * n + 1, 4), metric="sphere"
        )
        pts = pa.table(
            {"x": rng.uniform(lon0, lon1, 200_000), "y": rng.uniform(lat0, lat1, 200_000)}
        )
        for d in (15_000.0, 60_000.0):
            best = index.match(pts, d, how="left")
            two = index.match(pts, d, how="left", k=2)
            first = two.filter(pa.compute.less_equal(two["rank"].fill_null(1), 1))
            assert best["polygon_index"].equals(first["polygon_index"]), (lon0, d)
            assert best["distance"].equals(first["distance"]), (lon0, d)


def test_contains_and_covers_on_the_sphere_rank_by_square_metres() -> None:
    """Nested zones in longitude/latitude: the most specific one (smallest area in square
    metres) that covers each GPS fix; the edges are straight in degrees (GeoParquet's
    planar edges), so containment is shapely's on the same coordinates, and a fix in
    the [0, 360] convention is the same fix."""
    import shapely

    # A wide band near the pole is smaller on the ground than a narrower-looking zone at
    # the equator: square degrees would rank them the other way.
    zones = [
        shapely.box(-10, 70, 30, 80),  # 40 x 10 degrees at 70-80 N
        shapely.box(0, -10, 30, 10),  # 30 x 20 degrees at the equator
        shapely.box(-60, -60, 60, 60),  # around both
        shapely.box(170, 72, 180, 78),  # beside the antimeridian, east
    ]
    index = pm.PolygonIndex.from_arrow(
        pa.table({"geometry": pa.array(shapely.to_wkb(zones), pa.binary())}), metric="sphere"
    )
    area = index.to_arrow()["area"].to_numpy()
    want_area = [abs(GEOD.geometry_area_perimeter(z)[0]) for z in zones]
    np.testing.assert_allclose(area, want_area, rtol=1e-6)
    rng = np.random.default_rng(4)
    # on a 1/64-degree grid: exact in either longitude convention, and often on an edge
    px = rng.integers(-180 * 64, 180 * 64, 5000) / 64
    py = rng.integers(-89 * 64, 89 * 64, 5000) / 64
    shifted = np.where(px >= 0, px, px + 360.0)  # the [0, 360] convention
    for rule in ("covers", "contains"):
        got = index.match(pa.table({"x": px, "y": py}), predicate=rule, how="left")
        same = index.match(pa.table({"x": shifted, "y": py}), predicate=rule, how="left")
        assert got["polygon_index"].equals(same["polygon_index"])
        pts = shapely.points(px, py)
        for i, row in enumerate(got["polygon_index"].to_pylist()):
            hit = [j for j, z in enumerate(zones) if getattr(shapely, rule)(z, pts[i])]
            want = min(hit, key=lambda j: (area[j], j)) if hit else None
            assert row == want, (rule, i, px[i], py[i])
        assert set(got["distance"].drop_null().to_pylist()) <= {0.0}
    assert area[0] < area[1], "70-80 N is smaller on the ground than the equator zone"


def _unit(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lon, lat = np.radians(lon), np.radians(lat)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], -1)


def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The angle between unit vectors, by atan2 (accurate at every angle)."""
    return np.arctan2(np.linalg.norm(np.cross(u, v), axis=-1), (u * v).sum(-1))


def arc_metres(px: np.ndarray, py: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The oracle: great-circle metres from each point to the nearest edge of the ring
    ``(x, y)``, each edge the shorter great-circle arc between its vertices, by another
    formula than polymatch's (atan2 angles; the projection on the arc's plane tested
    with cross products of normalised vectors; the plane's normal as S2 computes it,
    ``(a + b) x (b - a)``, since ``a x b`` of close vectors cancels to about 1e-11
    relative, 1e-5 m)."""
    p = _unit(px, py)[:, None, :]
    a = _unit(x, y)
    b = np.roll(a, -1, axis=0)
    n = np.cross(a + b, b - a)
    n = n / np.linalg.norm(n, axis=-1, keepdims=True)
    pn = (p * n).sum(-1)
    proj = p - pn[..., None] * n
    inside = ((np.cross(a, proj) * n).sum(-1) > 0) & ((np.cross(proj, b) * n).sum(-1) > 0)
    to_plane = np.abs(np.arcsin(np.clip(pn, -1, 1)))
    to_ends = np.minimum(_angle(p, a), _angle(p, b))
    return R * np.where(inside, to_plane, to_ends).min(-1)


@pytest.mark.parametrize("max_dist", [50.0, 2_000.0, 60_000.0])
def test_dwithin_in_metres_against_an_oracle(max_dist: float) -> None:
    """``predicate="dwithin"`` on the sphere: a polygon is a candidate when the point is
    in or on it (its edges straight in degrees, as ``covers``: shapely on the same
    coordinates) or closer than ``max_dist`` great-circle metres to an edge (the arc
    between its vertices). Every candidate, the best by area and the nearest, against
    the oracle away from the threshold; distances within 1e-6 m."""
    import shapely

    xs, ys = rings(300, 21)
    index = index_of(xs, ys)
    rng = np.random.default_rng(int(max_dist))
    # points around the polygons: near their edges, inside them, and anywhere
    pick = rng.integers(0, len(xs), 3000)
    px = np.array([xs[j][0] for j in pick]) + rng.normal(0, 0.5, len(pick)) * max_dist / 111e3
    py = np.array([ys[j][0] for j in pick]) + rng.normal(0, 0.5, len(pick)) * max_dist / 111e3
    px = np.where(px > 180, px - 360, np.where(px < -180, px + 360, px))
    py = np.clip(py, -89.9, 89.9)
    table = pa.table({"x": px, "y": py})
    got = index.match(table, max_dist, predicate="dwithin", all_candidates=True)
    pairs = set(zip(got["point_index"].to_pylist(), got["polygon_index"].to_pylist()))
    dist = dict(zip(zip(got["point_index"].to_pylist(), got["polygon_index"].to_pylist()),
                    got["distance"].to_pylist()))  # fmt: skip
    pts = shapely.points(px, py)
    area = index.to_arrow()["area"].to_numpy()
    checked = 0
    best_want: list[int | None] = [None] * len(px)
    near_want: list[int | None] = [None] * len(px)
    ties = set()
    for j in range(len(xs)):
        d = arc_metres(px, py, xs[j], ys[j])
        covered = shapely.covers(shapely.Polygon(np.column_stack([xs[j], ys[j]])), pts)
        d = np.where(covered, 0.0, d)
        for i in np.flatnonzero(d < max_dist * 1.01):
            if abs(d[i] - max_dist) < 1e-6:
                ties.add(i)
                continue
            want = d[i] < max_dist
            assert ((i, j) in pairs) == want, (i, j, d[i])
            if want:
                checked += 1
                assert abs(dist[(i, j)] - d[i]) < 1e-6, (i, j, dist[(i, j)], d[i])
                b = best_want[i]
                if b is None or (area[j], j) < (area[b], b):
                    best_want[i] = j
                n = near_want[i]
                if n is None or (d[i], j) < (dist_of(n, i, px, py, xs, ys), n):
                    near_want[i] = j
    assert checked > 1000, checked
    assert len(pairs) == checked + sum(1 for i, _ in pairs if i in ties)
    best = index.match(table, max_dist, predicate="dwithin", how="left")
    near = index.match(table, max_dist, predicate="dwithin", rank_by="distance", how="left")
    for i in range(len(px)):
        if i not in ties:
            assert best["polygon_index"][i].as_py() == best_want[i], i
            assert near["polygon_index"][i].as_py() == near_want[i], i
    # k nearest: the candidates by distance, then row
    k3 = index.match(table, max_dist, predicate="dwithin", rank_by="distance", k=3)
    by_point: dict[int, list[tuple[float, int]]] = {}
    for (i, j), d in dist.items():
        by_point.setdefault(i, []).append((d, j))
    want3 = sorted((i, j) for i, c in by_point.items() for _, j in sorted(c)[:3])
    assert sorted(zip(k3["point_index"].to_pylist(), k3["polygon_index"].to_pylist())) == want3


def dist_of(j: int, i: int, px, py, xs, ys) -> float:
    """The oracle's distance from point ``i`` to polygon ``j`` (0 if it covers it)."""
    import shapely

    if shapely.covers(
        shapely.Polygon(np.column_stack([xs[j], ys[j]])), shapely.Point(px[i], py[i])
    ):
        return 0.0
    return float(arc_metres(px[i : i + 1], py[i : i + 1], xs[j], ys[j])[0])


def test_outline_golden_file_against_the_oracle(tmp_path: Path) -> None:
    """sample_data/expected/gps_outline_matches.csv (the CLI's two nearest zone outlines
    within 200 m; test_cli checks the CLI still writes it) against the oracle: every
    zone within 200 m of each fix (shapely covers, else the arcs), the two nearest by
    distance then row, distances within 1e-6 m; and ``match_parquet`` writes the same."""
    import shapely

    sample = Path(__file__).parents[2] / "sample_data"
    zones = pq.read_table(sample / "gps/zones.parquet")
    fixes = pq.read_table(sample / "gps/fixes.parquet")
    got = pa.csv.read_csv(sample / "expected/gps_outline_matches.csv")
    geoms = shapely.from_wkb(zones["geometry"].to_pylist())
    px = fixes["x"].to_numpy()
    px = np.where(px > 180, px - 360, px)
    py = fixes["y"].to_numpy()
    pts = shapely.points(px, py)
    near: dict[int, list[tuple[float, int]]] = {}
    for j, g in enumerate(geoms):
        ring = np.asarray(g.exterior.coords)[:-1]
        d = np.where(shapely.covers(g, pts), 0.0, arc_metres(px, py, ring[:, 0], ring[:, 1]))
        for i in np.flatnonzero(d < 200.0 + 1e-6):
            assert abs(d[i] - 200.0) > 1e-6, (i, j)
            near.setdefault(int(i), []).append((float(d[i]), j))
    want = []
    for i in range(len(px)):
        best = sorted(near.get(i, []))[:2]
        want += [(i, j, d) for d, j in best] if best else [(i, None, None)]
    rows = list(zip(got["point_index"].to_pylist(), got["polygon_index"].to_pylist(),
                    got["distance"].to_pylist()))  # fmt: skip
    assert [(i, j) for i, j, _ in rows] == [(i, j) for i, j, _ in want]
    for (_, _, d), (_, _, w) in zip(rows, want):
        assert (d is None and w is None) or abs(d - w) < 1e-6
    assert sum(1 for _, j, d in rows if j is not None and d > 0) > 500  # near, not in
    out = tmp_path / "o.parquet"
    pm.match_parquet(sample / "gps/zones.parquet", sample / "gps/fixes.parquet", out, 200.0,
                     metric="sphere", predicate="dwithin", rank_by="distance", k=2,
                     how="left")  # fmt: skip
    written = pq.read_table(out)
    assert written["polygon_index"].to_pylist() == got["polygon_index"].to_pylist()
    assert written["distance"].to_pylist() == got["distance"].to_pylist()


def test_nearest_outline_with_no_cap_against_the_oracle() -> None:
    """``predicate="dwithin"``, ``max_dist=inf``, ``rank_by="distance"`` on the sphere: the
    nearest polygon (and the 3 nearest) at any distance, worldwide, by the oracle's
    distance (ties within 1e-6 m skipped)."""
    import shapely

    xs, ys = rings(200, 5)
    index = index_of(xs, ys)
    px, py = points(400, 6)
    px = np.where(px > 180, px - 360, px)
    table = pa.table({"x": px, "y": py})
    pts = shapely.points(px, py)
    d = np.stack([
        np.where(shapely.covers(shapely.Polygon(np.column_stack([x, y])), pts), 0.0,
                 arc_metres(px, py, x, y))
        for x, y in zip(xs, ys)
    ], 1)  # fmt: skip
    for k in (1, 3):
        got = index.match(table, float("inf"), predicate="dwithin", rank_by="distance", k=k)
        assert got.num_rows == k * len(px)
        gi = np.asarray(got["polygon_index"].to_pylist()).reshape(-1, k)
        gd = np.asarray(got["distance"].to_pylist()).reshape(-1, k)
        order = np.argsort(d, axis=1, kind="stable")[:, : k + 1]
        for i in range(len(px)):
            want = d[i, order[i]]
            if np.min(np.diff(want)) < 1e-6:
                continue  # a tie within the oracle's error
            assert gi[i].tolist() == order[i, :k].tolist(), (k, i)
            np.testing.assert_allclose(gd[i], want[:k], rtol=0, atol=1e-6)
