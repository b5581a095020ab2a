"""The shape predicates (``contains``, ``covers``): against shapely/GEOS on valid
polygons (holes, multipolygons, shells either way round, points on vertices and
edges), against an exact rational oracle of the crossing rule, the most specific of
nested regions, and the same answer through every entry point (``PolygonIndex.match``,
``pm.match``, ``pm.match_parquet``, the CLI, Dask), thread count and chunk size."""

from __future__ import annotations

import pickle
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import polymatch as pm

shapely = pytest.importorskip("shapely")


def wkb(geoms) -> pa.Array:
    return pa.array(shapely.to_wkb(geoms, flavor="iso"), pa.binary())


def star(rng, cx, cy, r, n, clockwise=False, grid=None):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    rr = r * (0.6 + 0.4 * rng.random(n))
    xs, ys = cx + rr * np.cos(t), cy + rr * np.sin(t)
    if grid:
        xs, ys = np.round(xs / grid) * grid, np.round(ys / grid) * grid
    ring = list(zip(xs.tolist(), ys.tolist()))
    return ring[::-1] if clockwise else ring


def valid_polygons(seed: int, n: int, grid=None) -> list:
    """Valid (Multi)Polygons: stars, some with a hole, some with a second part."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        cx, cy = rng.uniform(0, 60, 2)
        r = rng.uniform(2, 8)
        shell = star(rng, cx, cy, r, int(rng.integers(3, 12)), rng.random() < 0.5, grid)
        poly = shapely.Polygon(shell)
        if rng.random() < 0.3:
            hole = shapely.Polygon(star(rng, cx, cy, r * 0.25, 5, rng.random() < 0.5, grid))
            if poly.is_valid and hole.within(poly):
                poly = shapely.Polygon(shell, [hole.exterior.coords])
        if rng.random() < 0.2:
            other = shapely.Polygon(star(rng, cx + 3 * r, cy, r * 0.4, 6, False, grid))
            if other.is_valid and poly.is_valid and not other.intersects(poly):
                poly = shapely.MultiPolygon([poly, other])
        out.append(poly if poly.is_valid else shapely.make_valid(poly).convex_hull)
    return out


def probe_points(geoms, seed: int, n: int) -> np.ndarray:
    """Uniform points, every vertex, and edge midpoints (on the boundary, or as near
    as float64 gets)."""
    rng = np.random.default_rng(seed)
    pts = [rng.uniform(-5, 70, (n, 2))]
    for g in geoms:
        coords = shapely.get_coordinates(g)
        pts.append(coords)
        pts.append((coords[:-1] + coords[1:]) / 2)
    return np.concatenate(pts)


def candidates(result: pa.Table, n: int) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in range(n)]
    for p, g in zip(result["point_index"].to_pylist(), result["polygon_index"].to_pylist()):
        if g is not None:
            out[p].append(g)
    return out


@pytest.mark.parametrize("predicate", ["contains", "covers"])
@pytest.mark.parametrize("seed", [1, 2])
def test_equals_shapely_on_valid_polygons(predicate, seed):
    geoms = valid_polygons(seed, 120)
    pts = probe_points(geoms, seed + 50, 3000)
    index = pm.PolygonIndex.from_arrow(wkb(geoms))
    got = candidates(index.match(pts, predicate=predicate, all_candidates=True), len(pts))
    points = shapely.points(pts)
    test = shapely.contains if predicate == "contains" else shapely.covers
    want: list[list[int]] = [[] for _ in range(len(pts))]
    for row, g in enumerate(geoms):
        for i in np.flatnonzero(test(g, points)):
            want[i].append(row)
    mismatches = [i for i in range(len(pts)) if got[i] != want[i]]
    # GEOS decides these with the same exact orientation test (DD arithmetic): no
    # disagreement at all, boundary points included.
    assert mismatches == [], [(pts[i].tolist(), got[i], want[i]) for i in mismatches[:5]]


def exact_location(rings, px, py) -> str:
    """docs/SPEC.md's rule in rational arithmetic: 'boundary', 'inside' or 'outside'."""
    p = (Fraction(px), Fraction(py))
    crossings = 0
    for ring in rings:
        for i in range(len(ring)):
            a = tuple(map(Fraction, ring[i - 1]))
            b = tuple(map(Fraction, ring[i]))
            o = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
            if (
                o == 0
                and min(a[0], b[0]) <= p[0] <= max(a[0], b[0])
                and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])
            ):
                return "boundary"
            if (a[1] > p[1]) != (b[1] > p[1]) and (o > 0) == (b[1] > a[1]):
                crossings += 1
    return "inside" if crossings % 2 else "outside"


def test_equals_the_exact_oracle_near_edges_and_on_invalid_rings():
    rng = np.random.default_rng(9)
    # Off-grid vertices, points one ulp off edges, a bow-tie and a hole sticking out.
    rings = [[star(rng, 10, 10, 6, 9)], [star(rng, 30, 10, 6, 7, True)]]
    rings.append([[(40.0, 0.0), (50.0, 10.0), (50.0, 0.0), (40.0, 10.0)]])  # bow-tie
    rings.append([[(0, 20), (10, 20), (10, 30), (0, 30)], [(8, 22), (14, 22), (14, 28), (8, 28)]])
    wkb = [shapely.to_wkb(shapely.Polygon(r[0], r[1:]), flavor="iso") for r in rings]
    index = pm.PolygonIndex.from_arrow(pa.array(wkb, pa.binary()))
    pts = []
    for part in rings:
        for ring in part:
            for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1]):
                for t in (0.0, 0.5, 0.25):
                    x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
                    pts += [(x, y), (np.nextafter(x, np.inf), y), (x, np.nextafter(y, -np.inf))]
    pts += rng.uniform(-1, 55, (2000, 2)).tolist()
    pts = np.array(pts)
    for predicate, accept in [("contains", {"inside"}), ("covers", {"inside", "boundary"})]:
        got = candidates(index.match(pts, predicate=predicate, all_candidates=True), len(pts))
        for i, (x, y) in enumerate(pts):
            want = [r for r, part in enumerate(rings) if exact_location(part, x, y) in accept]
            assert got[i] == want, (predicate, x, y)


def nested_regions() -> pa.Table:
    """A country, two states in it, a city in one state: the most specific region of a
    point is the smallest that contains it."""
    box = shapely.box
    geoms = [box(0, 0, 100, 100), box(0, 0, 50, 100), box(50, 0, 100, 100), box(10, 10, 20, 20)]
    return pa.table({"geometry": wkb(geoms), "name": ["country", "west", "east", "city"]})


def test_the_most_specific_region():
    points = pa.table({"x": [15.0, 30.0, 75.0, 50.0, 150.0], "y": [15.0, 30.0, 5.0, 50.0, 5.0]})
    result = pm.match(nested_regions(), points, predicate="covers", how="left",
                      keep_polygons=["name"])  # fmt: skip
    assert result["name"].to_pylist() == ["city", "west", "east", "west", None]
    assert result["distance"].to_pylist()[:4] == [0.0] * 4
    # on the shared edge x = 50: both states cover it, contain it neither; lowest row wins
    contained = pm.match(nested_regions(), points, predicate="contains", how="left",
                         keep_polygons=["name"])  # fmt: skip
    assert contained["name"].to_pylist() == ["city", "west", "east", "country", None]
    k = pm.match(nested_regions(), points, predicate="covers", k=3, keep_polygons=["name"])
    assert k.filter(pa.compute.equal(k["point_index"], 0))["name"].to_pylist() == [
        "city",
        "west",
        "country",
    ]
    big = pm.match(nested_regions(), points, predicate="covers", descending=True,
                   keep_polygons=["name"])  # fmt: skip
    assert big["name"].to_pylist() == ["country"] * 4


def test_arguments():
    polygons = nested_regions()
    points = pa.table({"x": [15.0], "y": [15.0]})
    with pytest.raises(ValueError, match="max_dist.*predicate"):
        pm.match(polygons, points, predicate="covers", max_dist=5.0)
    with pytest.raises(ValueError, match="predicate"):
        pm.match(polygons, points, predicate="within")
    index = pm.PolygonIndex.from_arrow(polygons)
    # a pickle carries the outlines
    again = pickle.loads(pickle.dumps(index))
    assert again.match(points, predicate="covers").equals(index.match(points, predicate="covers"))
    # the center rule keeps its default radius
    assert pm.match(polygons, points).num_rows == 1


def fnv(data: bytes) -> bytes:
    """The index bytes' checksum: FNV-1a over 8-byte little-endian words, then bytes."""
    h, mask = 0xCBF29CE484222325, (1 << 64) - 1
    whole = len(data) // 8 * 8
    for i in range(0, whole, 8):
        h = ((h ^ int.from_bytes(data[i : i + 8], "little")) * 0x100000001B3) & mask
    for b in data[whole:]:
        h = ((h ^ b) * 0x100000001B3) & mask
    return h.to_bytes(8, "little")


def test_bytes_carry_the_outlines():
    polygons = nested_regions()
    rng = np.random.default_rng(3)
    points = pa.table(
        {"x": np.round(rng.uniform(-10, 110, 300)), "y": np.round(rng.uniform(-10, 110, 300))}
    )
    rules = [
        dict(predicate="contains"),
        dict(predicate="covers", k=3, how="left"),
        dict(predicate="dwithin", max_dist=5.0, rank_by="distance", k=2),
        dict(predicate="covers", rank_by="area", descending=True),
    ]
    index = pm.PolygonIndex.from_arrow(polygons)
    for original in (index, index.prepare("area", descending=True)):
        again = pm.PolygonIndex.from_bytes(original.to_bytes(), crs="EPSG:32633")
        assert again.crs == "EPSG:32633" and again.rank_order == original.rank_order
        assert again.to_arrow().equals(original.to_arrow())
        assert again.bounds().equals(original.bounds())
        for rule in rules:
            assert again.match(points, **rule).equals(original.match(points, **rule)), rule
        # bytes of bytes are the same bytes; a pickle of it carries them too
        assert again.to_bytes() == original.to_bytes()
        assert (
            pickle.loads(pickle.dumps(again))
            .match(points, **rules[1])
            .equals(original.match(points, **rules[1]))
        )
    # without the outlines: the center rule only, 8 bytes more than the index alone
    slim = index.to_bytes(outlines=False)
    assert len(slim) < len(index.to_bytes()) and len(slim) == 8 + 32 + 4 * 32 + 8 + 8
    center_only = pm.PolygonIndex.from_bytes(slim)
    assert center_only.match(points).equals(index.match(points))
    with pytest.raises(ValueError, match="outlines.*re-save it with to_bytes"):
        center_only.match(points, predicate="covers")
    with pytest.raises(ValueError, match="no outlines"):
        center_only.bounds()
    # corrupt or truncated bytes with outlines: a clear error, never a crash
    data = index.to_bytes()
    for bad in (data[:-1], data[: len(data) // 2], data[:-9] + bytes([data[-9] ^ 1]) + data[-8:]):
        with pytest.raises(pm.PolymatchError, match="checksum"):
            pm.PolygonIndex.from_bytes(bad)


def test_bytes_without_outlines():
    polygons = nested_regions()
    points = pa.table({"x": [15.0, 75.0], "y": [15.0, 5.0]})
    index = pm.PolygonIndex.from_arrow(polygons)
    # from centers: nothing to write; the bytes round-trip and still refuse shape rules
    centers = pm.PolygonIndex.from_centers(
        index.to_arrow().select(["center_x", "center_y", "area"])
    )
    again = pm.PolygonIndex.from_bytes(centers.to_bytes())
    assert again.to_bytes() == centers.to_bytes() == centers.to_bytes(outlines=False)
    assert again.match(points, 60.0).equals(index.match(points, 60.0))
    for index_without in (centers, again):
        with pytest.raises(ValueError, match="have none.*re-save it with to_bytes"):
            index_without.match(points, predicate="contains")
    # bytes of format 3 (polymatch before the outlines were kept) load, center rule only:
    # format 4 without outlines is format 3 plus an 8-byte "absent" marker
    v4 = index.to_bytes(outlines=False)
    assert v4[:8] == b"PMINDEX4"
    body = b"PMINDEX3" + v4[8:-16]
    old = pm.PolygonIndex.from_bytes(body + fnv(body))
    assert old.match(points, 60.0).equals(index.match(points, 60.0))
    with pytest.raises(ValueError, match="format 3 or older.*re-save it with to_bytes"):
        old.match(points, predicate="dwithin", max_dist=1.0)
    # an old pickle (format 3 bytes, the outlines beside them as a table) still loads
    outlines = index.to_arrow().select(["geometry"])
    unpickled = pm.PolygonIndex._from_pickle(body + fnv(body), None, polygons, outlines)
    assert unpickled.match(points, predicate="covers").equals(
        index.match(points, predicate="covers")
    )


def test_threads_and_chunks_do_not_change_the_answer():
    geoms = valid_polygons(5, 300)
    pts = probe_points(geoms, 6, 20_000)
    index = pm.PolygonIndex.from_arrow(wkb(geoms))
    base = index.match(pts, predicate="covers", k=2, how="left")
    for threads, chunk in [(1, 7), (2, 1000), (2, 8192)]:
        again = index.match(pts, predicate="covers", k=2, how="left", threads=threads,
                            chunk_size=chunk)  # fmt: skip
        assert again.equals(base)


def test_large_polygons_use_their_edge_index():
    """Circles of 20,000 vertices: the indexed test equals shapely for points near the
    outline (within a few ulps of it) as well as elsewhere."""
    rng = np.random.default_rng(3)
    t = np.linspace(0, 2 * np.pi, 20_000, endpoint=False)
    geoms = [
        shapely.Polygon(np.c_[cx + 10 * np.cos(t), cy + 10 * np.sin(t)])
        for cx, cy in [(0, 0), (15, 0), (7, 12)]
    ]
    coords = shapely.get_coordinates(geoms[0])[:5000]
    pts = np.concatenate([rng.uniform(-12, 27, (20_000, 2)), coords, coords * (1 + 1e-15)])
    index = pm.PolygonIndex.from_arrow(wkb(geoms))
    got = candidates(index.match(pts, predicate="covers", all_candidates=True), len(pts))
    points = shapely.points(pts)
    want = [[] for _ in range(len(pts))]
    for row, g in enumerate(geoms):
        for i in np.flatnonzero(shapely.covers(g, points)):
            want[i].append(row)
    assert got == want


def test_every_entry_point_gives_the_same_answer(tmp_path):
    polygons = nested_regions()
    rng = np.random.default_rng(4)
    xy = np.round(rng.uniform(-10, 110, (500, 2)))  # many on the regions' edges
    points = pa.table({"x": xy[:, 0], "y": xy[:, 1], "id": np.arange(len(xy))})
    poly_path, point_path = tmp_path / "regions.parquet", tmp_path / "points.parquet"
    pq.write_table(polygons, poly_path)
    pq.write_table(points, point_path)
    opts = dict(predicate="covers", how="left", keep=["id"], keep_polygons=["name"])
    want = pm.PolygonIndex.from_arrow(polygons).match(points, **opts)
    assert pm.match(polygons, points, **opts).equals(want)
    out = tmp_path / "api.parquet"
    pm.match_parquet(poly_path, point_path, out, batch_rows=37, **opts)
    assert pq.read_table(out).select(want.column_names).equals(want)
    cli = tmp_path / "cli.parquet"
    r = subprocess.run(
        [sys.executable, "-m", "polymatch", "match", "--polygons", poly_path, "--points",
         point_path, "--out", cli, "--predicate", "covers", "--how", "left", "--keep", "id",
         "--keep-polygons", "name", "--batch-rows", "64", "--quiet"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert pq.read_table(cli).select(want.column_names).equals(want)
    meta = pq.read_table(cli).schema.metadata[b"polymatch"]
    assert b'"predicate":"covers"' in meta and b'"max_dist":null' in meta
    r = subprocess.run(
        [sys.executable, "-m", "polymatch", "match", "--polygons", poly_path, "--points",
         point_path, "--out", tmp_path / "x.parquet", "--predicate", "contains",
         "--max-dist", "3"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and "max_dist" in r.stderr and "contains" in r.stderr, r.stderr


def test_dask_ships_the_outlines(tmp_path):
    pytest.importorskip("dask.dataframe")
    pytest.importorskip("distributed")
    import dask.dataframe as dd

    import polymatch.dask as pmd

    from conftest import local_cluster

    polygons = nested_regions()
    rng = np.random.default_rng(8)
    xy = np.round(rng.uniform(-10, 110, (400, 2)))
    points = pa.table({"x": xy[:, 0], "y": xy[:, 1], "id": np.arange(len(xy))})
    opts = dict(predicate="covers", how="left", keep=["id"], keep_polygons=["name"])
    want = pm.PolygonIndex.from_arrow(polygons).match(points, **opts)
    src = tmp_path / "in"
    src.mkdir()
    pq.write_table(points, src / "points.parquet")
    poly_path = tmp_path / "regions.parquet"
    pq.write_table(polygons, poly_path)
    with local_cluster():
        frame = dd.from_pandas(points.to_pandas(), npartitions=3)
        got = pmd.match(polygons, frame, **opts).compute()
        for column in ("point_index", "polygon_index", "name"):
            assert pa.array(got[column]).to_pylist() == want[column].to_pylist(), column
        [out] = pmd.match_parquet(src, poly_path, tmp_path / "out", **opts)
        assert pq.read_table(out).select(want.column_names).equals(want)
        # partitioned polygons: tiles by polygon boxes, the same answer
        halves = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
        pq.write_table(polygons.slice(0, 2), halves[0])
        pq.write_table(polygons.slice(2), halves[1])
        got = pmd.match(halves, frame, polygons_per_tile=1, **opts).compute()
        for column in ("point_index", "polygon_index", "name"):
            assert pa.array(got[column]).to_pylist() == want[column].to_pylist(), column
        [out] = pmd.match_parquet(src, halves, tmp_path / "tiled", polygons_per_tile=1, **opts)
        assert pq.read_table(out).select(want.column_names).equals(want)


def test_null_points_of_a_sorted_batch_match_nothing():
    # More points than the Z-order sort's threshold (4096): the shape rules gather the
    # coordinates in that order, and a null row's values (here inside the regions) must
    # not be read as a point, on the best-rank path and on the lists paths.
    rng = np.random.default_rng(5)
    n = 20_000
    x, y = rng.uniform(-10, 110, n), rng.uniform(-10, 110, n)
    null = rng.random(n) < 0.1
    points = pa.table({"x": pa.array(x, mask=null), "y": y})
    rows = np.flatnonzero(~null)
    kept = pa.table({"x": x[rows], "y": y[rows]})
    index = pm.PolygonIndex.from_arrow(nested_regions())
    for kw in [
        {"predicate": "covers"},
        {"predicate": "covers", "k": 2},
        {"predicate": "dwithin", "max_dist": 3.0},
        {"predicate": "dwithin", "max_dist": float("inf"), "rank_by": "distance", "k": 3},
        {"predicate": "dwithin", "max_dist": 3.0, "all_candidates": True},
    ]:
        got = index.match(points, **kw)
        want = index.match(kept, **kw)
        assert len(got) > 1000, kw
        assert (
            got["point_index"].to_numpy().tolist() == rows[want["point_index"].to_numpy()].tolist()
        ), kw
        for name in ("polygon_index", "distance"):
            assert got[name].to_pylist() == want[name].to_pylist(), (kw, name)
        left = index.match(points, how="left", **kw)
        at_nulls = left.filter(
            pa.compute.is_in(left["point_index"], pa.array(np.flatnonzero(null)))
        )
        assert at_nulls["polygon_index"].null_count == len(at_nulls) == null.sum(), kw


def test_null_nan_and_infinite_points_match_nothing():
    points = pa.table(
        {
            "x": pa.array([15.0, None, float("nan"), float("inf"), -float("inf"), 15.0]),
            "y": pa.array([15.0, 15.0, 15.0, 15.0, 15.0, float("nan")]),
        }
    )
    for predicate in ("contains", "covers"):
        result = pm.match(nested_regions(), points, predicate=predicate, how="left", k=2)
        rows = result.filter(pa.compute.is_valid(result["polygon_index"]))
        assert rows["point_index"].to_pylist() == [0, 0], predicate
