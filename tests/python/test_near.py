"""The ``dwithin`` predicate (distance to the outline), the nearest and the k nearest
polygons: against shapely/GEOS distances away from exact ties, against an exact rational
oracle at the ties (a point at exactly ``max_dist`` is not a candidate), against
geopandas ``sjoin_nearest``, and the same answer through every entry point
(``PolygonIndex.match``, ``pm.match``, ``pm.match_parquet``, the CLI, Dask broadcast and
partitioned), thread count and chunk size."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import polymatch as pm

shapely = pytest.importorskip("shapely")

from test_shapes import candidates, probe_points, valid_polygons, wkb  # noqa: E402


def distances(geoms, pts: np.ndarray) -> np.ndarray:
    """GEOS's distance from every point (rows) to every polygon (columns)."""
    points = shapely.points(pts)
    return np.stack([shapely.distance(g, points) for g in geoms], axis=1)


@pytest.mark.parametrize("seed", [1, 2])
def test_dwithin_equals_shapely_away_from_ties(seed):
    geoms = valid_polygons(seed, 150)
    pts = probe_points(geoms, seed + 50, 3000)
    index = pm.PolygonIndex.from_arrow(wkb(geoms))
    d = distances(geoms, pts)
    for max_dist in (0.3, 2.0, 7.5):
        result = index.match(pts, predicate="dwithin", max_dist=max_dist, all_candidates=True)
        got = candidates(result, len(pts))
        # GEOS's distance is a float computation too: compare away from the threshold.
        clear = np.abs(d - max_dist) > 1e-9 * max(1.0, max_dist)
        for i in range(len(pts)):
            want = [j for j in range(len(geoms)) if d[i, j] < max_dist]
            sure = [j for j in got[i] if clear[i, j]]
            assert sure == [j for j in want if clear[i, j]], (pts[i], got[i], want)
        # the distance column is GEOS's distance (0 inside), to a few ulps
        gd = d[result["point_index"].to_numpy(), result["polygon_index"].to_numpy()]
        np.testing.assert_allclose(result["distance"].to_numpy(), gd, rtol=1e-12, atol=1e-12)


def exact_squared(rings, px, py) -> Fraction:
    """The exact squared distance from a point to a polygon's edges (rational)."""
    p = (Fraction(px), Fraction(py))
    best = None
    for ring in rings:
        for a, b in zip(ring, ring[1:] + ring[:1]):
            a, b = (Fraction(a[0]), Fraction(a[1])), (Fraction(b[0]), Fraction(b[1]))
            ex, ey = b[0] - a[0], b[1] - a[1]
            wx, wy = p[0] - a[0], p[1] - a[1]
            len2 = ex * ex + ey * ey
            t = (
                Fraction(0)
                if len2 == 0
                else min(Fraction(1), max(Fraction(0), (ex * wx + ey * wy) / len2))
            )
            dx, dy = wx - t * ex, wy - t * ey
            s = dx * dx + dy * dy
            best = s if best is None else min(best, s)
    return best


def test_the_decision_is_exact_at_the_threshold():
    """Points at exactly max_dist from an edge or a vertex (common on a grid) are not
    candidates; one ulp inside they are; decided in rationals by the oracle."""
    rings = [[(0.0, 0.0), (3.0, 0.0), (3.0, 4.0), (0.0, 1.0)]]
    polygons = wkb([shapely.Polygon(rings[0])])
    index = pm.PolygonIndex.from_arrow(polygons)
    rng = np.random.default_rng(1)
    pts = [(1.5, -0.5), (3.5, 2.0), (6.0, 8.0), (-0.3, 0.5), (1.5, 2.5)]
    pts += [tuple(v) for v in np.round(rng.uniform(-4, 8, (400, 2)) * 4) / 4]
    for max_dist in (0.5, 0.25, 5.0, 1.0, math.sqrt(0.5), 0.1):
        for px, py in pts:
            s = exact_squared(rings, px, py)
            inside = shapely.covers(shapely.Polygon(rings[0]), shapely.Point(px, py))
            want = bool(inside) or s < Fraction(max_dist) ** 2
            for d, w in ((max_dist, want), (math.nextafter(max_dist, math.inf), None)):
                got = index.match(np.array([[px, py]]), predicate="dwithin", max_dist=d)
                if w is not None:
                    assert (got.num_rows == 1) == w, (px, py, d, s)
                else:
                    wider = bool(inside) or s < Fraction(d) ** 2
                    assert (got.num_rows == 1) == wider, (px, py, d, s)
    # the exact ties themselves
    one = index.match(np.array([[1.5, -0.5]]), predicate="dwithin", max_dist=0.5)
    assert one.num_rows == 0
    one = index.match(np.array([[1.5, -0.5]]), predicate="dwithin", max_dist=0.5000000000000001)
    assert one.num_rows == 1 and one["distance"][0].as_py() == 0.5


def test_nearest_and_k_nearest_equal_brute_force():
    geoms = valid_polygons(7, 200)
    pts = probe_points(geoms, 8, 2000)
    index = pm.PolygonIndex.from_arrow(wkb(geoms))
    d = distances(geoms, pts)
    for k in (1, 3):
        got = index.match(pts, predicate="dwithin", max_dist=math.inf, rank_by="distance", k=k)
        rows = got["polygon_index"].to_numpy().reshape(len(pts), k)
        dist = got["distance"].to_numpy().reshape(len(pts), k)
        # ties broken by the lowest row, as everywhere
        order = np.lexsort((np.broadcast_to(np.arange(len(geoms)), d.shape), d), axis=1)
        want = order[:, :k]
        # compare away from near-ties between GEOS's float distances and ours
        sorted_d = np.take_along_axis(d, order[:, : k + 1], axis=1)
        clear = np.all(np.diff(sorted_d, axis=1) > 1e-9, axis=1) | (sorted_d[:, 0] == 0)
        assert np.array_equal(
            rows[clear & (sorted_d[:, 0] > 0)], want[clear & (sorted_d[:, 0] > 0)]
        )
        np.testing.assert_allclose(
            dist, np.take_along_axis(d, rows.astype(np.int64), axis=1), atol=1e-12
        )
        assert np.all(np.diff(dist, axis=1) >= 0)
    # the nearest within a cap: a point farther than the cap from every polygon has none
    capped = index.match(pts, predicate="dwithin", max_dist=1.0, rank_by="distance", how="left")
    assert capped.num_rows == len(pts)
    unmatched = np.asarray(capped["polygon_index"].is_null())
    dmin = d.min(axis=1)
    clear = np.abs(dmin - 1.0) > 1e-9
    np.testing.assert_array_equal(unmatched[clear], (dmin >= 1.0)[clear])


def test_agrees_with_sjoin_nearest():
    gpd = pytest.importorskip("geopandas")
    geoms = valid_polygons(11, 150)
    rng = np.random.default_rng(12)
    pts = rng.uniform(-5, 70, (3000, 2))
    polygons = gpd.GeoDataFrame({"geometry": geoms})
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(pts[:, 0], pts[:, 1]))
    joined = gpd.sjoin_nearest(points, polygons, max_distance=2.0, distance_col="d")
    # sjoin_nearest returns every tie; the first (lowest polygon row) is polymatch's
    first = joined.reset_index().sort_values(["index", "index_right"]).groupby("index").first()
    got = pm.match(wkb(geoms), pts, predicate="dwithin", max_dist=2.0, rank_by="distance")
    mine = dict(zip(got["point_index"].to_pylist(), got["polygon_index"].to_pylist()))
    theirs = dict(zip(first.index.tolist(), first["index_right"].tolist()))
    # sjoin_nearest keeps distance <= max_distance; polymatch < max_dist
    near_cap = {i for i, v in zip(first.index, first["d"]) if abs(v - 2.0) < 1e-9}
    assert {i: v for i, v in mine.items() if i not in near_cap} == {
        i: v for i, v in theirs.items() if i not in near_cap
    }


def test_rank_rules_and_all_candidates():
    geoms = valid_polygons(13, 120)
    pts = probe_points(geoms, 14, 1500)
    index = pm.PolygonIndex.from_arrow(
        pa.table({"geometry": wkb(geoms), "score": np.arange(len(geoms))[::-1].astype(float)})
    )
    d = distances(geoms, pts)
    areas = shapely.area(geoms)
    opts = dict(predicate="dwithin", max_dist=3.0)
    every = candidates(index.match(pts, all_candidates=True, **opts), len(pts))
    best = index.match(pts, how="left", **opts)["polygon_index"].to_pylist()
    by_score = index.match(pts, how="left", rank_by="score", **opts)["polygon_index"].to_pylist()
    far = index.match(pts, how="left", rank_by="distance", descending=True, **opts)
    for i in range(len(pts)):
        c = every[i]
        if not c:
            assert best[i] is None and by_score[i] is None
            continue
        assert best[i] == min(c, key=lambda j: (areas[j], j))
        assert by_score[i] == max(c)  # score decreases with the row
        assert far["distance"][i].as_py() == pytest.approx(max(d[i, j] for j in c), abs=1e-12)


def test_a_pairs_distance_is_the_same_float_on_every_path():
    """Each path takes a one-part polygon's distance from the test that accepted it and
    measures a polygon of several parts over all of them: every path must report the
    same bits for the same (point, polygon) pair (multipolygons and holes included)."""
    geoms = valid_polygons(21, 80)
    pts = probe_points(geoms, 22, 4000)  # more than the Z-ordered paths' minimum
    index = pm.PolygonIndex.from_arrow(
        pa.table({"geometry": wkb(geoms), "score": np.arange(len(geoms), dtype=float)})
    )

    def rows(result):
        p = result["point_index"].to_numpy()
        g = result["polygon_index"].to_numpy(zero_copy_only=False)
        d = result["distance"].to_numpy(zero_copy_only=False)
        keep = ~np.isnan(g)
        return p[keep], g[keep].astype(np.int64), d[keep]

    # Every pair's distance, from the nearest-first search with no cap.
    p, g, d = rows(
        index.match(pts, predicate="dwithin", max_dist=math.inf, rank_by="distance", k=len(geoms))
    )
    assert len(p) == len(pts) * len(geoms)
    every = np.full((len(pts), len(geoms)), np.nan)
    every[p, g] = d
    # 6: within reach of both parts of many two-part polygons.
    for max_dist, extra in itertools.product(
        (2.5, 6.0),
        (
            dict(all_candidates=True),
            dict(k=3),
            dict(k=1, how="left"),
            dict(k=2, rank_by="score", descending=True),
            dict(k=3, rank_by="distance"),
            dict(k=2, rank_by="distance", descending=True),
        ),
    ):
        p, g, d = rows(index.match(pts, predicate="dwithin", max_dist=max_dist, **extra))
        assert len(p) > len(pts) // 2, extra
        wrong = np.flatnonzero(d != every[p, g])
        assert len(wrong) == 0, (max_dist, extra, p[wrong[:5]], g[wrong[:5]], d[wrong[:5]])


def test_threads_and_chunks_do_not_change_the_answer():
    geoms = valid_polygons(5, 300)
    pts = probe_points(geoms, 6, 20_000)
    index = pm.PolygonIndex.from_arrow(wkb(geoms))
    for opts in (
        dict(max_dist=1.5, k=2, how="left"),
        dict(max_dist=math.inf, rank_by="distance", k=3),
    ):
        base = index.match(pts, predicate="dwithin", **opts)
        for threads, chunk in [(1, 7), (2, 1000), (2, 8192)]:
            again = index.match(pts, predicate="dwithin", threads=threads, chunk_size=chunk, **opts)
            assert again.equals(base)


def test_large_polygons_distances_use_their_edge_index():
    """Circles of 20,000 vertices: distances and the decision near the outline equal
    GEOS's (and the brute-force minimum) with the stripes read outwards."""
    rng = np.random.default_rng(3)
    t = np.linspace(0, 2 * np.pi, 20_000, endpoint=False)
    geoms = [
        shapely.Polygon(np.c_[cx + 10 * np.cos(t), cy + 10 * np.sin(t)])
        for cx, cy in [(0, 0), (25, 0), (7, 22)]
    ]
    pts = rng.uniform(-15, 40, (5000, 2))
    index = pm.PolygonIndex.from_arrow(wkb(geoms))
    d = distances(geoms, pts)
    got = index.match(pts, predicate="dwithin", max_dist=math.inf, rank_by="distance", k=3)
    rows = got["polygon_index"].to_numpy().reshape(-1, 3).astype(np.int64)
    np.testing.assert_allclose(
        got["distance"].to_numpy().reshape(-1, 3),
        np.take_along_axis(d, rows, axis=1),
        rtol=1e-12,
        atol=1e-12,
    )
    within = index.match(pts, predicate="dwithin", max_dist=0.5, all_candidates=True)
    c = candidates(within, len(pts))
    clear = np.abs(d - 0.5) > 1e-9
    for i in range(len(pts)):
        assert [j for j in c[i] if clear[i, j]] == [
            j for j in range(3) if d[i, j] < 0.5 and clear[i, j]
        ]


def test_arguments_and_bad_points():
    polygons = wkb(valid_polygons(1, 5))
    points = pa.table({"x": [1.0], "y": [1.0]})
    with pytest.raises(ValueError, match="dwithin.*max_dist"):
        pm.match(polygons, points, predicate="dwithin")
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="max_dist"):
            pm.match(polygons, points, predicate="dwithin", max_dist=bad)
    index = pm.PolygonIndex.from_arrow(polygons)
    with pytest.raises(ValueError, match="outlines"):
        pm.PolygonIndex.from_bytes(index.to_bytes(outlines=False)).match(
            points, predicate="dwithin", max_dist=1.0
        )
    # the bytes carry the outlines by default
    assert (
        pm.PolygonIndex.from_bytes(index.to_bytes())
        .match(points, predicate="dwithin", max_dist=1.0)
        .equals(index.match(points, predicate="dwithin", max_dist=1.0))
    )
    odd = pa.table(
        {
            "x": pa.array([None, float("nan"), float("inf"), -float("inf"), 1.0]),
            "y": pa.array([1.0, 1.0, 1.0, 1.0, float("inf")]),
        }
    )
    result = index.match(odd, predicate="dwithin", max_dist=math.inf, how="left", k=2)
    assert result["polygon_index"].null_count == 5


def test_every_entry_point_gives_the_same_answer(tmp_path):
    geoms = valid_polygons(21, 60)
    polygons = pa.table({"geometry": wkb(geoms), "name": [f"p{i}" for i in range(len(geoms))]})
    rng = np.random.default_rng(4)
    xy = np.round(rng.uniform(-10, 70, (600, 2)) * 2) / 2
    points = pa.table({"x": xy[:, 0], "y": xy[:, 1], "id": np.arange(len(xy))})
    poly_path, point_path = tmp_path / "polygons.parquet", tmp_path / "points.parquet"
    pq.write_table(polygons, poly_path)
    pq.write_table(points, point_path)
    opts = dict(
        predicate="dwithin", max_dist=2.5, rank_by="distance", k=2, how="left", keep=["id"],
        keep_polygons=["name"],
    )  # fmt: skip
    want = pm.PolygonIndex.from_arrow(polygons).match(points, **opts)
    assert pm.match(polygons, points, **opts).equals(want)
    out = tmp_path / "api.parquet"
    pm.match_parquet(poly_path, point_path, out, batch_rows=37, **opts)
    assert pq.read_table(out).select(want.column_names).equals(want)
    cli = tmp_path / "cli.parquet"
    r = subprocess.run(
        [sys.executable, "-m", "polymatch", "match", "--polygons", poly_path, "--points",
         point_path, "--out", cli, "--predicate", "dwithin", "--max-dist", "2.5",
         "--rank-by", "distance", "--k", "2", "--how", "left", "--keep", "id",
         "--keep-polygons", "name", "--batch-rows", "64", "--quiet"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert pq.read_table(cli).select(want.column_names).equals(want)
    meta = pq.read_table(cli).schema.metadata[b"polymatch"]
    assert b'"predicate":"dwithin"' in meta and b'"max_dist":2.5' in meta
    r = subprocess.run(
        [sys.executable, "-m", "polymatch", "match", "--polygons", poly_path, "--points",
         point_path, "--out", tmp_path / "x.parquet", "--predicate", "dwithin"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and "max_dist" in r.stderr and "dwithin" in r.stderr, r.stderr
    assert not (tmp_path / "x.parquet").exists()


def test_dask_broadcast_and_partitioned(tmp_path):
    pytest.importorskip("dask.dataframe")
    pytest.importorskip("distributed")
    import dask.dataframe as dd

    import polymatch.dask as pmd

    from conftest import local_cluster

    geoms = valid_polygons(31, 80)
    polygons = pa.table({"geometry": wkb(geoms), "name": [f"p{i}" for i in range(len(geoms))]})
    rng = np.random.default_rng(8)
    xy = np.round(rng.uniform(-10, 70, (500, 2)) * 2) / 2
    points = pa.table({"x": xy[:, 0], "y": xy[:, 1], "id": np.arange(len(xy))})
    opts = dict(
        predicate="dwithin", max_dist=3.0, k=2, how="left", keep=["id"], keep_polygons=["name"]
    )
    want = pm.PolygonIndex.from_arrow(polygons).match(points, **opts)
    halves = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    pq.write_table(polygons.slice(0, 40), halves[0])
    pq.write_table(polygons.slice(40), halves[1])
    src = tmp_path / "in"
    src.mkdir()
    pq.write_table(points, src / "points.parquet")
    with local_cluster():
        frame = dd.from_pandas(points.to_pandas(), npartitions=3)
        got = pmd.match(polygons, frame, **opts).compute()
        for column in ("point_index", "polygon_index", "distance", "name"):
            assert pa.array(got[column]).to_pylist() == want[column].to_pylist(), column
        # partitioned: polygons go to every tile their box widened by max_dist reaches
        got = pmd.match(halves, frame, polygons_per_tile=8, **opts).compute()
        for column in ("point_index", "polygon_index", "distance", "name"):
            assert pa.array(got[column]).to_pylist() == want[column].to_pylist(), column
        [out] = pmd.match_parquet(src, halves, tmp_path / "tiled", polygons_per_tile=8, **opts)
        assert pq.read_table(out).select(want.column_names).equals(want)
        # the nearest within the cap, partitioned: the tiles' nearest-first searches
        near = dict(opts, rank_by="distance")
        want = pm.PolygonIndex.from_arrow(polygons).match(points, **near)
        got = pmd.match(halves, frame, polygons_per_tile=8, **near).compute()
        for column in ("point_index", "polygon_index", "distance", "rank"):
            assert pa.array(got[column]).to_pylist() == want[column].to_pylist(), column
        with pytest.raises(ValueError, match="inf"):
            pmd.match(halves, frame, predicate="dwithin", max_dist=math.inf)


def test_the_distance_column_is_within_its_stated_bound():
    """docs/SPEC.md: |distance^2 - true^2| <= 32u (|w|^2 + |v|^2) for the nearest edge, so
    at most 64u F^2 with F the farthest vertex from the point: checked against the exact
    rational distance, on points near long edges (where the cancellation is worst)."""
    u = 2.0**-53
    rng = np.random.default_rng(17)
    for _ in range(30):
        # a long thin quadrilateral and points just off its long edges
        ax, ay = rng.uniform(-1e3, 1e3, 2)
        dx, dy = rng.uniform(-1e3, 1e3, 2)
        ring = [
            (ax, ay),
            (ax + dx, ay + dy),
            (ax + dx + 1e-3, ay + dy + 2e-3),
            (ax + 1e-3, ay + 2e-3),
        ]
        t = rng.uniform(0, 1, 20)
        off = rng.uniform(-5, 5, 20)
        px = ax + t * dx - off * dy / math.hypot(dx, dy)
        py = ay + t * dy + off * dx / math.hypot(dx, dy)
        index = pm.PolygonIndex.from_arrow(wkb([shapely.Polygon(ring)]))
        got = index.match(np.c_[px, py], predicate="dwithin", max_dist=math.inf, how="left")
        covered = shapely.covers(shapely.Polygon(ring), shapely.points(np.c_[px, py]))
        for i, d in enumerate(got["distance"].to_pylist()):
            if covered[i]:
                assert d == 0.0
                continue
            exact = exact_squared([ring], px[i], py[i])
            far2 = max(
                (Fraction(x) - Fraction(px[i])) ** 2 + (Fraction(y) - Fraction(py[i])) ** 2
                for x, y in ring
            )
            assert abs(Fraction(d) ** 2 - exact) <= Fraction(64 * u) * far2, (ring, px[i], py[i], d)
