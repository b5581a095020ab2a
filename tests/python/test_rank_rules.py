"""Rank rules (issue 12): ``rank_by`` area / distance / a polygon column, ``descending``,
``k`` best, against a brute-force oracle written here from docs/SPEC.md, with many ties,
NaN and nulls; the same answers from ``PolygonIndex.match``, ``pm.match``,
``pm.match_parquet`` and the CLI; each bad argument a specific error naming it."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli import cli

import polymatch as pm

SCALE = int(os.environ.get("POLYMATCH_EXAMPLES_SCALE", "1"))


def squares(centers, sides, **columns) -> pa.Table:
    """Axis-aligned squares (area = side**2, exactly; center = the given point, exactly
    for these dyadic values), in the article's x/y list layout, with extra columns."""
    xs, ys = [], []
    for (cx, cy), s in zip(centers, sides):
        h = s / 2
        xs.append([cx - h, cx + h, cx + h, cx - h])
        ys.append([cy - h, cy - h, cy + h, cy + h])
    return pa.table({"x": xs, "y": ys, **columns})


def oracle(centers, areas, values, points, max_dist, rank_by, descending, k):
    """Per point, the polygon rows of its k best candidates, from SPEC.md alone."""
    out = []
    for px, py in points:
        cands = []
        for row, (cx, cy) in enumerate(centers):
            dx, dy = px - cx, py - cy
            d = math.sqrt(dx * dx + dy * dy)
            if d < max_dist:
                v = {"area": areas[row], "distance": d}.get(
                    rank_by, values[row] if values else None
                )
                null = v is None or (isinstance(v, float) and math.isnan(v))
                key = 0.0 if null else (-v if descending else v)
                cands.append((null, key, row))
        out.append([row for _, _, row in sorted(cands)[:k]])
    return out


def rows_by_point(table: pa.Table, n: int) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in range(n)]
    for p, j in zip(table["point_index"].to_pylist(), table["polygon_index"].to_pylist()):
        if j is not None:
            out[p].append(j)
    return out


half = st.integers(0, 16).map(lambda v: v * 0.5)  # a half-unit grid: equal distances
value = st.one_of(st.none(), st.just(math.nan), st.sampled_from([0.0, -0.0, 1.0, 2.5, -3.0]))


@settings(max_examples=60 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    centers=st.lists(st.tuples(half, half), min_size=1, max_size=40),
    points=st.lists(st.tuples(half, half), min_size=1, max_size=30),
    data=st.data(),
    rank_by=st.sampled_from(["area", "distance", "value"]),
    descending=st.booleans(),
    k=st.sampled_from([1, 2, 3, 6]),
    max_dist=st.sampled_from([0.5, 1.0, 2.5, 6.0, math.inf]),
)
def test_every_rule_equals_the_oracle(centers, points, data, rank_by, descending, k, max_dist):
    n = len(centers)
    sides = data.draw(st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=n, max_size=n))
    values = data.draw(st.lists(value, min_size=n, max_size=n))
    table = squares(centers, sides, value=pa.array(values, pa.float64()))
    index = pm.PolygonIndex.from_arrow(table)
    pts = np.array(points, dtype=np.float64)
    want = oracle(centers, [s * s for s in sides], values, points, max_dist, rank_by, descending, k)
    for threads, chunk_size in [(1, 1), (2, 3), (None, None)]:
        got = index.match(pts, max_dist, how="left", rank_by=rank_by, descending=descending, k=k,
                          threads=threads, chunk_size=chunk_size)  # fmt: skip
        assert rows_by_point(got, len(points)) == want
        assert ("rank" in got.column_names) == (k > 1)
        if k > 1:
            ranks = got["rank"].to_pylist()
            assert all(
                r
                == (
                    1
                    if i == 0 or got["point_index"][i - 1] != got["point_index"][i]
                    else ranks[i - 1] + 1
                )
                for i, r in enumerate(ranks)
                if r is not None
            )


def test_integer_columns_rank_exactly_beyond_float_precision():
    big = 2**62
    table = squares([(0, 0)] * 4, [1.0] * 4, v=pa.array([big + 1, big, None, -big], pa.int64()))
    index = pm.PolygonIndex.from_arrow(table)
    got = index.match(np.array([[0.0, 0.0]]), 1.0, rank_by="v", k=4)
    assert got["polygon_index"].to_pylist() == [3, 1, 0, 2]  # as float64, rows 0 and 1 tie
    got = index.match(np.array([[0.0, 0.0]]), 1.0, rank_by="v", descending=True, k=4)
    assert got["polygon_index"].to_pylist() == [0, 1, 3, 2]  # nulls last both ways


@pytest.mark.parametrize(
    "column",
    [
        pa.array([3, 1, 2], pa.int8()),
        pa.array([3, 1, 2], pa.uint64()),
        pa.array([3.0, 1.0, 2.0], pa.float32()),
        pa.array([3, 1, 2], pa.decimal128(20, 2)),
        pa.array([3, 1, 2], pa.date32()),
        pa.array([3, 1, 2], pa.timestamp("us", tz="UTC")),
        pa.array([3, 1, 2], pa.duration("s")),
        pa.array([3.0, 1.0, 2.0]).dictionary_encode(),
    ],
    ids=lambda c: str(c.type),
)
def test_numeric_types_rank_by_value(column):
    index = pm.PolygonIndex.from_arrow(squares([(0, 0), (1, 0), (0, 1)], [1.0] * 3, v=column))
    got = index.match(np.array([[0.0, 0.0]]), 5.0, rank_by="v", k=3)
    assert got["polygon_index"].to_pylist() == [1, 2, 0]


def test_rank_errors_name_the_argument():
    table = squares([(0, 0), (1, 0)], [1.0, 2.0], label=["a", "b"], v=[1.0, 2.0])
    index = pm.PolygonIndex.from_arrow(table)
    pts = np.array([[0.0, 0.0]])
    with pytest.raises(pm.SchemaError, match="'nope'|\"nope\".*columns: x, y, label, v"):
        index.match(pts, rank_by="nope")
    with pytest.raises(pm.SchemaError, match='"label".*numeric'):
        index.match(pts, rank_by="label")
    for k in (0, -1, 2**32):
        with pytest.raises(ValueError, match="k must be between 1 and 4294967295"):
            index.match(pts, k=k)
    with pytest.raises(ValueError, match="all_candidates"):
        index.match(pts, all_candidates=True, k=2)
    with pytest.raises(ValueError, match="rank_by"):
        index.match(pts, rank_by="")
    from_bytes = pm.PolygonIndex.from_bytes(index.to_bytes())
    with pytest.raises(pm.SchemaError, match='"v".*no attribute columns'):
        from_bytes.match(pts, rank_by="v")


def test_prepared_order_travels_in_bytes_and_pickles():
    import pickle

    table = squares([(0, 0), (1, 0), (0, 1)], [1.0, 2.0, 0.5], v=[5.0, None, 7.0])
    index = pm.PolygonIndex.from_arrow(table)
    pts = np.array([[0.2, 0.2], [9.0, 9.0]])
    want = index.match(pts, 5.0, rank_by="v", descending=True, k=2, how="left")
    prepared = index.prepare("v", descending=True)
    assert prepared.rank_order == ("v", True) and index.rank_order == ("area", False)
    for other in (
        pm.PolygonIndex.from_bytes(prepared.to_bytes()),
        pickle.loads(pickle.dumps(prepared)),
    ):
        assert other.rank_order == ("v", True)
        assert other.match(pts, 5.0, rank_by="v", descending=True, k=2, how="left").equals(want)
        # area and distance need no column: still available from the bytes
        assert other.match(pts, 5.0).equals(index.match(pts, 5.0))
        assert other.match(pts, 5.0, rank_by="distance").equals(
            index.match(pts, 5.0, rank_by="distance")
        )
        # all candidates take no order: the same pairs from any prepared index
        assert other.match(pts, 5.0, all_candidates=True).equals(
            index.match(pts, 5.0, all_candidates=True)
        )
    assert index.prepare("distance") is index


def test_distance_with_infinite_radius_is_plain_nearest():
    scipy = pytest.importorskip("scipy.spatial")
    rng = np.random.default_rng(3)
    centers = rng.uniform(0, 100, (500, 2)).round(1)
    pts = rng.uniform(0, 100, (300, 2))
    index = pm.PolygonIndex.from_arrow(squares([tuple(c) for c in centers], [0.5] * 500))
    got = index.match(pts, math.inf, rank_by="distance")
    d, j = scipy.cKDTree(centers).query(pts, k=1)
    assert got["polygon_index"].to_pylist() == j.tolist()  # rounded centers: few exact ties
    np.testing.assert_allclose(got["distance"].to_numpy(), d, rtol=1e-12)


def test_same_answers_from_every_entry_point(tmp_path: Path):
    rng = np.random.default_rng(5)
    centers = [tuple(c) for c in (rng.integers(0, 40, (300, 2)) * 0.5)]
    sides = rng.choice([0.5, 1.0], 300).tolist()
    pop = pa.array(
        [None if i % 11 == 0 else int(v) for i, v in enumerate(rng.integers(0, 6, 300))], pa.int64()
    )
    table = squares(centers, sides, pop=pop)
    poly_path, pts_path, out = (
        tmp_path / "polys.parquet",
        tmp_path / "pts.parquet",
        tmp_path / "o.parquet",
    )
    pq.write_table(table, poly_path)
    pts = pa.table({"x": rng.uniform(0, 20, 400), "y": rng.uniform(0, 20, 400)})
    pq.write_table(pts, pts_path)
    index = pm.read_polygons(poly_path)
    for rule in [
        {"rank_by": "pop", "descending": True, "k": 3},
        {"rank_by": "distance", "k": 2},
        {"rank_by": "area", "descending": True},
    ]:
        want = index.match(pts, 2.0, how="left", **rule)
        assert pm.match(table, pts, 2.0, how="left", **rule).equals(want)
        pm.match_parquet(poly_path, pts_path, out, 2.0, how="left", **rule)
        assert pq.read_table(out).equals(want)
        pm.match_parquet(index, pts_path, out, 2.0, how="left", **rule)
        assert pq.read_table(out).equals(want)
        args = ["--rank-by", rule["rank_by"], "--k", rule.get("k", 1)]
        args += ["--descending"] if rule.get("descending") else []
        cli("match", "--polygons", poly_path, "--points", pts_path, "--out", out, "--how", "left",
            "--max-dist", 2, "--quiet", *args)  # fmt: skip
        assert pq.read_table(out).equals(want)


def test_cli_names_a_bad_rank_column(tmp_path: Path):
    table = squares([(0, 0)], [1.0], label=["a"])
    pq.write_table(table, tmp_path / "p.parquet")
    pq.write_table(pa.table({"x": [0.0], "y": [0.0]}), tmp_path / "q.parquet")
    base = ["match", "--polygons", tmp_path / "p.parquet", "--points", tmp_path / "q.parquet",
            "--out", tmp_path / "o.parquet", "--quiet"]  # fmt: skip
    r = cli(*base, "--rank-by", "label", check=False)
    assert r.returncode == 1 and "label" in r.stderr and not (tmp_path / "o.parquet").exists()
    r = cli(*base, "--rank-by", "nope", check=False)
    assert r.returncode == 1 and "nope" in r.stderr
    r = cli(*base, "--k", "0", check=False)
    assert r.returncode == 2 and "--k" in r.stderr


def test_results_read_in_pandas_and_polars():
    table = squares([(0, 0), (1, 0)], [1.0, 2.0], v=[2.0, 1.0])
    got = pm.PolygonIndex.from_arrow(table).match(np.array([[0.4, 0.0]]), 5.0, rank_by="v", k=2)
    assert got.to_pandas()["polygon_index"].tolist() == [1, 0]
    pl = pytest.importorskip("polars")
    assert pl.from_arrow(got)["rank"].to_list() == [1, 2]
