"""Polygons whose edges are great-circle arcs (GeoParquet's and GeoArrow's
``"edges": "spherical"``), matched with ``metric="sphere"``: ``contains``, ``covers``
and ``dwithin`` against an independent oracle (each point's own gnomonic projection,
where great circles are straight lines, and shapely/GEOS on the projected rings), on
every entry point, and the errors."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest
import shapely
from test_sphere import arc_metres

import polymatch as pm


def zones(n: int, seed: int, vertices: int = 7) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Rings of 0.5 to 4 degrees (their arcs bulge up to kilometres off the straight
    lines in degrees) anywhere: across the antimeridian, at high latitudes, around a
    pole."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in range(n):
        cx = rng.uniform(-180, 180)
        cy = rng.uniform(-75, 75) if i % 5 else rng.uniform(70, 84)
        r = rng.uniform(0.5, 4.0)
        ang = np.sort(rng.uniform(0, 2 * np.pi, vertices))
        x = cx + r * np.cos(ang) / np.cos(np.radians(cy))
        y = cy + r * np.sin(ang)
        xs.append(np.where(x > 180, x - 360, np.where(x < -180, x + 360, x)))
        ys.append(y)
    # one ring around the north pole: longitudes all around, latitude 86
    lon = np.arange(0.0, 360.0, 45.0)
    xs.append(np.where(lon > 180, lon - 360, lon))
    ys.append(np.full(len(lon), 86.0))
    return xs, ys


def table(xs, ys, edges: str | None) -> pa.Table:
    """The rings as a WKB column, with GeoArrow metadata stating ``edges``."""
    wkb = shapely.to_wkb([shapely.Polygon(np.column_stack([x, y])) for x, y in zip(xs, ys)])
    meta = {b"ARROW:extension:name": b"geoarrow.wkb"}
    if edges is not None:
        meta[b"ARROW:extension:metadata"] = json.dumps({"edges": edges}).encode()
    field = pa.field("geometry", pa.binary(), metadata=meta)
    return pa.table([pa.array(wkb, pa.binary()), pa.array(range(len(xs)))],
                    schema=pa.schema([field, pa.field("zone", pa.int64())]))  # fmt: skip


def _unit(lon, lat) -> np.ndarray:
    lon, lat = np.radians(lon), np.radians(lat)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], -1)


def oracle(px, py, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Per point: whether the ring ``(x, y)`` with great-circle edges covers it, and the
    distance (in tangent-plane radians) from the point to the ring's boundary there, to
    skip ties. Each point is projected with its own gnomonic projection (centered on
    it: the point is the origin), then shapely decides."""
    p = _unit(px, py)
    v = _unit(x, y)
    # a tangent basis at each point
    up = np.where(np.abs(p[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    e1 = np.cross(up, p)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(p, e1)
    covered = np.zeros(len(px), bool)
    margin = np.full(len(px), np.inf)
    origin = shapely.Point(0.0, 0.0)
    # only the points in the ring's cap (its vertices' mean, through the farthest one,
    # widened by 0.01 radians) can be covered or near it
    c = v.sum(0) / np.linalg.norm(v.sum(0))
    rho = np.arccos(np.clip(v @ c, -1, 1)).max()
    for i in np.flatnonzero(p @ c > np.cos(rho + 0.01)):
        d = v @ p[i]
        if (d <= 0.05).any():  # the ring reaches the point's horizon: far away
            continue
        ring = np.column_stack([(v @ e1[i]) / d, (v @ e2[i]) / d])
        poly = shapely.Polygon(ring)
        covered[i] = poly.covers(origin)
        margin[i] = poly.exterior.distance(origin)
    return covered, margin


def points_near(xs, ys, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Points near the rings' vertices and edges' midpoints (where the arcs bulge most),
    some on the vertices."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(xs), n)
    k = rng.integers(0, 7, n)
    px, py = [], []
    for j, kk in zip(pick, k):
        x, y = xs[j], ys[j]
        kk = kk % len(x)
        a, b = (x[kk], y[kk]), (x[(kk + 1) % len(x)], y[(kk + 1) % len(x)])
        t = rng.uniform(0, 1)
        dx = (b[0] - a[0] + 540) % 360 - 180
        px.append(a[0] + t * dx)
        py.append(a[1] + t * (b[1] - a[1]))
    px = np.array(px) + rng.normal(0, 0.05, n)
    py = np.clip(np.array(py) + rng.normal(0, 0.05, n), -89.9, 89.9)
    px = np.where(px > 180, px - 360, np.where(px < -180, px + 360, px))
    # every 20th exactly on a vertex
    for i in range(0, n, 20):
        px[i], py[i] = xs[pick[i]][0], ys[pick[i]][0]
    return px, py


@pytest.fixture(scope="module")
def case():
    xs, ys = zones(300, 5)
    px, py = points_near(xs, ys, 4000, 6)
    index = pm.PolygonIndex.from_arrow(table(xs, ys, "spherical"), metric="sphere")
    covered, margin = zip(*(oracle(px, py, x, y) for x, y in zip(xs, ys)))
    return xs, ys, px, py, index, np.array(covered), np.array(margin)


def test_contains_and_covers_against_the_oracle(case) -> None:
    """Every candidate of ``covers`` and ``contains`` (points on a vertex: covered, not
    contained), and the smallest zone, against the oracle away from the boundary; the
    straight edges in degrees give other answers on the same data."""
    xs, ys, px, py, index, covered, margin = case
    assert index.edges == "spherical" and index.metric == "sphere"
    assert repr(index).endswith('metric="sphere", edges="spherical")'), repr(index)
    pts = pa.table({"x": px, "y": py})
    on_vertex = set(range(0, len(px), 20))
    area = index.to_arrow()["area"].to_numpy()
    for predicate in ("covers", "contains"):
        got = index.match(pts, predicate=predicate, all_candidates=True)
        pairs = set(zip(got["point_index"].to_pylist(), got["polygon_index"].to_pylist()))
        checked = 0
        best: dict[int, int] = {}
        for j in range(len(xs)):
            for i in range(len(px)):
                if i in on_vertex and j == _vertex_zone(xs, ys, px[i], py[i], j):
                    assert ((i, j) in pairs) == (predicate == "covers"), (predicate, i, j)
                    continue
                if margin[j, i] < 1e-9:
                    continue
                assert ((i, j) in pairs) == covered[j, i], (predicate, i, j)
                checked += covered[j, i]
        assert checked > 1000, checked
        for i, j in pairs:
            if i not in best or (area[j], j) < (area[best[i]], best[i]):
                best[i] = j
        one = index.match(pts, predicate=predicate, how="left")
        assert one["polygon_index"].to_pylist() == [best.get(i) for i in range(len(px))]
    planar = pm.PolygonIndex.from_arrow(table(xs, ys, None), metric="sphere")
    assert planar.edges == "planar"
    a = index.match(pts, predicate="covers", how="left")["polygon_index"].to_pylist()
    b = planar.match(pts, predicate="covers", how="left")["polygon_index"].to_pylist()
    differ = sum(u != v for u, v in zip(a, b))
    assert differ > 20, differ


def _vertex_zone(xs, ys, x, y, j) -> int | None:
    """``j`` if the point ``(x, y)`` is a vertex of ring ``j``."""
    return j if any((xs[j] == x) & (ys[j] == y)) else None


def test_large_zones_take_the_edge_index_with_the_same_answers() -> None:
    """Zones of 600 vertices get an edge index (stripes of the edges by their gnomonic
    y): every ``covers`` candidate against the oracle, away from the boundary, with
    points on vertices on the boundary."""
    xs, ys = zones(20, 8, vertices=600)
    px, py = points_near(xs, ys, 3000, 9)
    index = pm.PolygonIndex.from_arrow(table(xs, ys, "spherical"), metric="sphere")
    got = index.match(pa.table({"x": px, "y": py}), predicate="covers", all_candidates=True)
    pairs = set(zip(got["point_index"].to_pylist(), got["polygon_index"].to_pylist()))
    checked = 0
    for j in range(len(xs)):
        covered, margin = oracle(px, py, xs[j], ys[j])
        for i in range(len(px)):
            if i % 20 == 0 and _vertex_zone(xs, ys, px[i], py[i], j) is not None:
                assert (i, j) in pairs, (i, j)
            elif margin[i] >= 1e-9:
                assert ((i, j) in pairs) == covered[i], (i, j)
                checked += covered[i]
    assert checked > 500, checked


def test_dwithin_reads_the_arcs_for_distance_zero_too(case) -> None:
    """``dwithin`` with spherical edges: 0 where the arcs cover the point, else the
    great-circle distance to the nearest arc (the oracle's), so the two readings of an
    edge no longer differ."""
    xs, ys, px, py, index, covered, margin = case
    pts = pa.table({"x": px, "y": py})
    got = index.match(pts, 2_000.0, predicate="dwithin", all_candidates=True)
    dist = dict(zip(zip(got["point_index"].to_pylist(), got["polygon_index"].to_pylist()),
                    got["distance"].to_pylist()))  # fmt: skip
    checked = 0
    for j in range(len(xs)):
        d = np.where(covered[j], 0.0, arc_metres(px, py, xs[j], ys[j]))
        for i in range(len(px)):
            if margin[j, i] < 1e-9 or abs(d[i] - 2_000.0) < 1e-6:
                continue
            assert ((i, j) in dist) == (d[i] < 2_000.0), (i, j, d[i])
            if (i, j) in dist:
                assert abs(dist[(i, j)] - d[i]) < 1e-6, (i, j, dist[(i, j)], d[i])
                checked += 1
    assert checked > 1000, checked


def write_zones(path: Path, xs, ys) -> None:
    """A GeoParquet file of the zones stating spherical edges (and OGC:CRS84)."""
    t = table(xs, ys, None)
    t = t.cast(pa.schema([pa.field("geometry", pa.binary()), t.schema.field("zone")]))
    geo = {"version": "1.1.0", "primary_column": "geometry",
           "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Polygon"],
                                    "edges": "spherical"}}}  # fmt: skip
    pq.write_table(t.replace_schema_metadata({"geo": json.dumps(geo)}), path)


def test_every_entry_point_gives_the_same_answers(case, tmp_path: Path) -> None:
    """GeoParquet with ``"edges": "spherical"`` through ``read_polygons``, ``pm.match``,
    ``match_parquet`` and the CLI, index bytes and pickles (which carry the edges), and
    Dask, broadcast and partitioned: the in-memory index's answers."""
    dd = pytest.importorskip("dask.dataframe")
    import dask
    import pandas as pd

    import polymatch.dask as pmd

    xs, ys, px, py, index, _, _ = case
    path = tmp_path / "zones.parquet"
    write_zones(path, xs, ys)
    pts = pa.table({"x": px, "y": py})
    pq.write_table(pts, tmp_path / "fixes.parquet")
    want = index.match(pts, predicate="covers", how="left")
    rows = want["polygon_index"].to_pylist()
    read = pm.read_polygons(path, metric="sphere")
    assert read.edges == "spherical"
    assert read.match(pts, predicate="covers", how="left")["polygon_index"].to_pylist() == rows
    for again in (pm.PolygonIndex.from_bytes(index.to_bytes()), pickle.loads(pickle.dumps(index))):
        assert again.edges == "spherical"
        assert again.match(pts, predicate="covers", how="left")["polygon_index"].to_pylist() == rows
    got = pm.match(pq.read_table(path), pts, predicate="covers", how="left", metric="sphere")
    assert got["polygon_index"].to_pylist() == rows
    out = tmp_path / "out.parquet"
    pm.match_parquet(path, tmp_path / "fixes.parquet", out, predicate="covers", how="left",
                     metric="sphere")  # fmt: skip
    assert pq.read_table(out)["polygon_index"].to_pylist() == rows
    cli_out = tmp_path / "cli.parquet"
    r = subprocess.run(
        [sys.executable, "-m", "polymatch", "match", "--polygons", path, "--points",
         tmp_path / "fixes.parquet", "--out", cli_out, "--predicate", "covers", "--how", "left",
         "--metric", "sphere"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert pq.read_table(cli_out)["polygon_index"].to_pylist() == rows
    # without --metric sphere: refused, nothing written
    bad = tmp_path / "bad.parquet"
    r = subprocess.run(
        [sys.executable, "-m", "polymatch", "match", "--polygons", path, "--points",
         tmp_path / "fixes.parquet", "--out", bad, "--predicate", "covers"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and "spherical edges" in r.stderr and not bad.exists(), r.stderr
    with pytest.raises(ValueError, match='metric="sphere"'):
        pm.read_polygons(path)
    # Dask: the index broadcast; the zones partitioned into tiles (their boxes those of
    # their arcs), the points routed
    frame = pd.DataFrame({"x": px, "y": py})
    got = pmd.match(index, dd.from_pandas(frame, npartitions=3), predicate="covers",
                    how="left").compute()  # fmt: skip
    assert pa.Array.from_pandas(got["polygon_index"]).to_pylist() == rows
    zones_frame = [str(path)]  # partitioned: one partition per file
    with dask.config.set(scheduler="sync"):
        for predicate, max_dist in (("covers", None), ("dwithin", 5_000.0)):
            want = index.match(pts, max_dist, predicate=predicate, how="left")
            got = pmd.match(zones_frame, dd.from_pandas(frame, npartitions=3), max_dist,
                            predicate=predicate, how="left", metric="sphere",
                            polygons_per_tile=40).compute()  # fmt: skip
            for c in ("polygon_index", "distance"):
                assert pa.Array.from_pandas(got[c]).to_pylist() == want[c].to_pylist(), c


def test_a_part_beyond_a_hemisphere_is_an_error() -> None:
    """A part must lie within 90 degrees of the mean of its exterior vertices (else its
    great-circle edges bound no well-defined side): an error naming the row."""
    xs = [np.array([0.0, 1.0, 1.0, 0.0]), np.array([0.0, 100.0, -160.0, -160.0, 100.0, 0.0])]
    ys = [np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])]
    index = pm.PolygonIndex.from_arrow(table(xs, ys, "spherical"), metric="sphere")
    with pytest.raises(pm.InvalidGeometryError, match="row 1.*hemisphere"):
        index.match(pa.table({"x": [0.5], "y": [0.5]}), predicate="covers")


class _Registered(pa.ExtensionType):
    """A GeoArrow extension type as geoarrow-pyarrow registers them (its metadata held
    by the type, not by the field)."""

    def __init__(self, storage: pa.DataType, meta: bytes) -> None:
        self.meta = meta
        super().__init__(storage, "geoarrow.multipolygon")

    def __arrow_ext_serialize__(self) -> bytes:
        return self.meta

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type, serialized):  # noqa: ANN001, ANN206
        return cls(storage_type, serialized)


def test_tiles_find_the_edges_in_a_registered_extension_type(case) -> None:
    """Once geoarrow-pyarrow is imported, a tile's outlines arrive as its extension type,
    which holds the ``edges``: the tile still reads them (else partitioned Dask matches
    would read great-circle zones as straight in degrees)."""
    from polymatch import _tiles

    index = case[4]
    geom = index.to_arrow()["geometry"]
    if isinstance(geom.type, pa.ExtensionType):  # geoarrow-pyarrow imported already
        geom = pa.chunked_array([c.storage for c in geom.chunks])
    meta = b'{"edges":"spherical"}'
    typ = _Registered(geom.type, meta)
    column = pa.chunked_array([pa.ExtensionArray.from_storage(typ, c) for c in geom.chunks])
    storage, stated = _tiles._storage(pa.field("g", typ), column)
    assert stated == meta and storage.type == geom.type and storage.equals(geom)
    field = pa.field("g", geom.type, metadata={b"ARROW:extension:metadata": meta})
    plain, stated = _tiles._storage(field, geom)
    assert stated == meta and plain is geom


SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def test_zone_arcs_golden_file_against_the_oracle() -> None:
    """sample_data's GPS zones with ``"edges": "spherical"``: the CLI's golden file (the
    smallest zone that covers each fix, sample_data/make_golden.py) is the oracle's
    answer for every fix away from a boundary, and the zones across the antimeridian are
    read the short way round, as the straight edges in degrees cannot."""
    zones = pq.read_table(SAMPLE / "gps/zones_arcs.parquet")
    fixes = pq.read_table(SAMPLE / "gps/fixes.parquet")
    golden = pa.csv.read_csv(SAMPLE / "expected/gps_zone_arcs_matches.csv")
    px, py = fixes["x"].to_numpy(), fixes["y"].to_numpy()
    rings = [shapely.get_coordinates(g.exterior)[:-1] for g in shapely.from_wkb(zones["geometry"])]
    area = pm.read_polygons(SAMPLE / "gps/zones_arcs.parquet", metric="sphere").to_arrow()["area"]
    want: list[int | None] = [None] * len(px)
    unsure = np.zeros(len(px), bool)
    for j, r in enumerate(rings):
        covered, margin = oracle(px, py, r[:, 0], r[:, 1])
        unsure |= margin < 1e-9
        for i in np.flatnonzero(covered):
            if want[i] is None or (area[j].as_py(), j) < (area[want[i]].as_py(), want[i]):
                want[i] = j
    got = golden["polygon_index"].to_pylist()
    assert sum(w is not None for w in want) > 300
    assert [g for g, u in zip(got, unsure) if not u] == [w for w, u in zip(want, unsure) if not u]
    # the straight-edge reading of the same zones misses fixes in the zones across 180
    straight = pm.read_polygons(SAMPLE / "gps/zones.parquet", metric="sphere")
    flat = straight.match(fixes, predicate="covers", how="left")["polygon_index"].to_pylist()
    fiji = [i for i in range(len(px)) if abs(py[i] + 17) < 1 and got[i] is not None]
    assert sum(flat[i] != got[i] for i in fiji) > 0
