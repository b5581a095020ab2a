"""The Python contract of the core engine: answers, inputs, outputs, errors."""

from __future__ import annotations

import math
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import polymatch as pm

from conftest import exact_area, exact_center, flat, oracle_match, wkb_polygon


@pytest.fixture(scope="module")
def article_index(article):
    rings, _ = article
    return pm.PolygonIndex.from_coords(*flat(rings))


def test_article_workload_matches_exact_oracle(article, article_index):
    rings, points = article
    centers = [exact_center(x, y) for x, y in rings]
    areas = [exact_area(x, y) for x, y in rings]
    want = oracle_match(centers, areas, points, 10.0)
    got = article_index.match(points, max_dist=10.0, how="left")
    assert got.column("polygon_index").to_pylist() == want
    assert all(w is not None for w in want)
    # derived columns are exactly the rounded rational values
    derived = article_index.to_arrow()
    assert derived.column("area").to_pylist() == areas
    assert list(zip(derived["center_x"].to_pylist(), derived["center_y"].to_pylist())) == centers


def test_article_workload_candidate_counts(article, article_index):
    _, points = article
    pairs = article_index.match(points, max_dist=10.0, all_candidates=True)
    assert pairs.num_rows == 2925
    counts = np.bincount(pairs["point_index"].to_numpy(), minlength=100)
    assert counts.min() >= 9 and counts.max() <= 48
    # ordered by point, then polygon row
    keys = list(zip(pairs["point_index"].to_pylist(), pairs["polygon_index"].to_pylist()))
    assert keys == sorted(keys)


def test_result_schema_and_inner_left(article_index):
    pts = np.array([[50.0, 50.0], [-1000.0, -1000.0], [np.nan, 1.0]])
    inner = article_index.match(pts)
    assert inner.schema.names == ["point_index", "polygon_index", "distance", "area"]
    assert inner.schema.field("point_index").type == pa.uint64()
    assert inner.schema.field("polygon_index").type == pa.uint32()
    assert inner["point_index"].to_pylist() == [0]
    left = article_index.match(pts, how="left")
    assert left["point_index"].to_pylist() == [0, 1, 2]
    assert left["polygon_index"].null_count == 2
    assert left["distance"].null_count == 2


def test_inputs_pyarrow_polars_pandas_numpy(article_index):
    rng = np.random.default_rng(1)
    pts = rng.uniform(0, 100, size=(500, 2))
    want = article_index.match(pts)
    table = pa.table({"x": pts[:, 0], "y": pts[:, 1]})
    assert article_index.match(table).equals(want)
    assert article_index.match(table.to_batches()[0]).equals(want)
    assert article_index.match(pl.from_arrow(table)).equals(want)
    assert article_index.match(pd.DataFrame({"x": pts[:, 0], "y": pts[:, 1]})).equals(want)
    renamed = pa.table({"lon": pts[:, 0], "lat": pts[:, 1]})
    assert article_index.match(renamed, x="lon", y="lat").equals(want)
    # several batches: point_index is global
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=77))
    assert article_index.match(chunked).combine_chunks().equals(want.combine_chunks())
    # float32 and integer coordinates are cast
    as_f32 = pa.table({"x": pts[:, 0].astype(np.int32), "y": pts[:, 1].astype(np.int32)})
    ints = pts.astype(np.int32).astype(np.float64)
    assert article_index.match(as_f32).equals(article_index.match(ints))


def test_numpy_points_every_layout_and_dtype(article_index):
    """numpy (N, 2) points are read in Rust through the buffer protocol: C- and F-ordered,
    strided views, float32 and integer dtypes (cast), empty; other shapes are refused."""
    rng = np.random.default_rng(4)
    pts = rng.uniform(0, 100, size=(300, 2))
    want = article_index.match(pa.table({"x": pts[:, 0], "y": pts[:, 1]}), how="left")
    assert article_index.match(pts, how="left").equals(want)
    assert article_index.match(np.asfortranarray(pts), how="left").equals(want)
    wide = np.zeros((300, 5))
    wide[:, 1], wide[:, 3] = pts[:, 0], pts[:, 1]
    assert article_index.match(wide[:, 1::2], how="left").equals(want)  # strided view
    twice = np.repeat(pts, 2, axis=0)
    assert article_index.match(twice[::2], how="left").equals(want)  # row stride
    ints = (pts * 10).astype(np.int64)
    for dtype in (np.float32, np.int64, np.int32, np.uint16, np.int8):
        arr = (pts if dtype == np.float32 else ints % 100).astype(dtype)
        ref = arr.astype(np.float64)
        expect = article_index.match(pa.table({"x": ref[:, 0], "y": ref[:, 1]}))
        assert article_index.match(arr).equals(expect), dtype
    assert article_index.match(np.empty((0, 2))).num_rows == 0
    # 2^18 C-ordered float64 rows and more are split into columns in parallel
    big = rng.uniform(0, 100, size=(1 << 18, 2))
    big[7] = np.nan
    big_want = article_index.match(pa.table({"x": big[:, 0], "y": big[:, 1]}), how="left")
    assert article_index.match(big, how="left").equals(big_want)
    assert article_index.match(np.asfortranarray(big), how="left").equals(big_want)
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        article_index.match(np.zeros((4, 3)))
    with pytest.raises(TypeError, match="numeric"):
        article_index.match(np.array([["a", "b"]], dtype=object))


def test_points_as_geoarrow_and_wkb(article_index):
    pts = np.array([[10.5, 20.25], [70.0, 30.0], [99.0, 1.0]])
    want = article_index.match(pts, how="left")
    coords = pa.StructArray.from_arrays(
        [pa.array(pts[:, 0]), pa.array(pts[:, 1])], names=["x", "y"]
    )
    field = pa.field("geometry", coords.type, metadata={"ARROW:extension:name": "geoarrow.point"})
    t = pa.table([coords], schema=pa.schema([field]))
    assert article_index.match(t, how="left").equals(want)
    wkb = [struct.pack("<BIdd", 1, 1, x, y) for x, y in pts]
    t = pa.table({"geometry": pa.array(wkb, pa.binary())})
    assert article_index.match(t, how="left").equals(want)
    inter = pa.FixedSizeListArray.from_arrays(pa.array(pts.ravel()), 2)
    assert article_index.match(pa.table({"geometry": inter}), how="left").equals(want)


def _square(x0, y0, s):
    return [(x0, y0), (x0 + s, y0), (x0 + s, y0 + s), (x0, y0 + s), (x0, y0)]


def _geoarrow_polygons(polys, large=False):
    coord = pa.struct([("x", pa.float64()), ("y", pa.float64())])
    lst = pa.large_list if large else pa.list_
    typ = lst(lst(coord))
    data = [
        [[{"x": x, "y": y} for x, y in ring] for ring in p] if p is not None else None
        for p in polys
    ]
    arr = pa.array(data, typ)
    field = pa.field("geom", typ, metadata={"ARROW:extension:name": "geoarrow.polygon"})
    return pa.table(
        [arr, pa.array(range(len(polys)))], schema=pa.schema([field, ("id", pa.int64())])
    )


POLYS = [
    [_square(0, 0, 4), _square(1, 1, 1)],  # with a hole: area 15
    [_square(10, 10, 2)],
    None,
    [_square(20, 0, 1)],
]


@pytest.mark.parametrize("large", [False, True])
def test_polygons_from_geoarrow_wkb_and_lists_agree(large):
    ga = pm.PolygonIndex.from_arrow(_geoarrow_polygons(POLYS, large=large))
    wkb = [
        wkb_polygon(*p, big_endian=i % 2 == 1, close=False) if p else None
        for i, p in enumerate(POLYS)
    ]
    wk = pm.PolygonIndex.from_arrow(pa.table({"geometry": pa.array(wkb, pa.binary())}))
    assert len(ga) == len(wk) == 4
    a, b = ga.to_arrow(), wk.to_arrow()
    for col in ["center_x", "center_y", "area"]:
        assert a[col].to_pylist() == b[col].to_pylist()
    assert a["area"].to_pylist() == [15.0, 4.0, None, 1.0]
    assert a["center_x"].to_pylist() == [2.0, 11.0, None, 20.5]
    # the article's x/y list columns, polars-exported (LargeList)
    xy = pl.DataFrame({"x": [[0.0, 4.0, 4.0, 0.0]], "y": [[0.0, 0.0, 4.0, 4.0]]})
    idx = pm.PolygonIndex.from_arrow(xy)
    assert idx.to_arrow()["area"].to_pylist() == [16.0]


def test_sliced_geoarrow_input():
    t = _geoarrow_polygons(POLYS).slice(1, 3)
    idx = pm.PolygonIndex.from_arrow(t)
    assert idx.to_arrow()["area"].to_pylist() == [4.0, None, 1.0]
    res = idx.match(np.array([[11.0, 11.0]]), max_dist=1.0, keep_polygons=["id"])
    assert res["polygon_index"].to_pylist() == [0]
    assert res["id"].to_pylist() == [1]


def test_keep_columns():
    idx = pm.PolygonIndex.from_arrow(_geoarrow_polygons(POLYS))
    pts = pa.table({"x": [2.0, 50.0, 11.0], "y": [2.0, 50.0, 11.0], "name": ["a", "b", "c"]})
    res = idx.match(pts, max_dist=3.0, how="left", keep=["name"], keep_polygons=["id"])
    assert res["name"].to_pylist() == ["a", "b", "c"]
    assert res["id"].to_pylist() == [0, None, 1]
    with pytest.raises(pm.SchemaError, match="nope"):
        idx.match(pts, keep=["nope"])
    # a kept name that another output column has gets a suffix (points: _left)
    res = idx.match(pts.rename_columns(["x", "y", "area"]), 3.0, keep="area")
    assert res.column_names == ["point_index", "polygon_index", "distance", "area", "area_left"]
    assert res["area_left"].to_pylist() == ["a", "c"]
    with pytest.raises(ValueError, match="collides"):  # still colliding after the suffix
        idx.match(pts.rename_columns(["area", "y", "area_left"]), x="area",
                  keep=["area", "area_left"])  # fmt: skip


def test_from_coords_zero_copy_in(article):
    x, y, offsets = flat(article[0])
    idx = pm.PolygonIndex.from_coords(x, y, offsets)
    geom = idx.to_arrow()["geometry"].chunks[0]
    if isinstance(geom, pa.ExtensionArray):
        # Once a test has imported geoarrow.pyarrow, the column comes back as its
        # registered extension type: the storage is the same buffers.
        geom = geom.storage
    coords = geom.values.values.values  # parts -> rings -> coords
    assert coords.field("x").buffers()[1].address == x.ctypes.data


def test_result_is_not_copied_into_pyarrow(article_index):
    rng = np.random.default_rng(3)
    pts = pa.table({"x": rng.uniform(0, 100, 200_000), "y": rng.uniform(0, 100, 200_000)})
    before = pa.total_allocated_bytes()
    res = article_index.match(pts, how="left")
    grown = pa.total_allocated_bytes() - before
    assert res.nbytes > 4_000_000
    # The result buffers live in Rust's allocation, handed over by the C data interface:
    # pyarrow's own pool did not allocate a copy of them.
    assert grown < res.nbytes // 10


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_identical_across_threads_and_chunks(article_index, threads, chunk):
    rng = np.random.default_rng(5)
    pts = rng.uniform(-5, 105, size=(3000, 2))
    base = article_index.match(pts, how="left")
    assert article_index.match(pts, how="left", threads=threads, chunk_size=chunk).equals(base)
    allc = article_index.match(pts, all_candidates=True)
    assert article_index.match(pts, all_candidates=True, threads=threads, chunk_size=chunk).equals(
        allc
    )


def test_identical_with_rayon_num_threads_1(article_index, tmp_path):
    code = (
        "import numpy as np, polymatch as pm, pickle, sys\n"
        "idx = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "pts = np.random.default_rng(9).uniform(0, 100, size=(50000, 2))\n"
        "t = idx.match(pts, how='left')\n"
        "sys.stdout.write(str(t['polygon_index'].to_pylist()))\n"
    )
    path = tmp_path / "index.pkl"
    path.write_bytes(pickle.dumps(article_index))
    outs = []
    for n in ["1", "2"]:
        env = dict(os.environ, RAYON_NUM_THREADS=n)
        r = subprocess.run(
            [sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout)
    assert outs[0] == outs[1]


def test_pickle_and_bytes_round_trip(article, article_index):
    _, points = article
    clone = pickle.loads(pickle.dumps(article_index))
    assert len(clone) == 1000
    assert clone.match(points).equals(article_index.match(points))
    assert clone.to_arrow()["area"].equals(article_index.to_arrow()["area"])
    data = article_index.to_bytes()
    with pytest.raises(pm.PolymatchError, match="checksum"):
        pm.PolygonIndex.from_bytes(data[:-10] + b"0123456789")
    with pytest.raises(pm.PolymatchError):
        pm.PolygonIndex.from_bytes(b"garbage")


def test_one_shot_match_and_empty_inputs():
    t = _geoarrow_polygons(POLYS)
    res = pm.match(t, np.array([[2.0, 2.0]]), max_dist=1.0)
    assert res["polygon_index"].to_pylist() == [0]
    empty = pm.PolygonIndex.from_coords(np.zeros(0), np.zeros(0), np.zeros(1, np.int64))
    assert len(empty) == 0
    assert empty.match(np.array([[0.0, 0.0]]), max_dist=math.inf, how="left")[
        "polygon_index"
    ].to_pylist() == [None]
    assert pm.match(t, np.zeros((0, 2))).num_rows == 0


def test_max_dist_inf_picks_global_smallest(article_index, article):
    _, points = article
    res = article_index.match(points, max_dist=math.inf)
    assert res.num_rows == 100
    # every point gets the polygon of globally smallest exact area, lowest row on ties
    rings, _ = article
    areas = [exact_area(x, y) for x, y in rings]
    best = min(range(len(areas)), key=lambda i: (areas[i], i))
    assert set(res["polygon_index"].to_pylist()) == {best}


# --- errors ---------------------------------------------------------------------------


def test_bad_arguments(article_index):
    pts = np.zeros((1, 2))
    for d in [0.0, -1.0, math.nan]:
        with pytest.raises(ValueError, match="max_dist"):
            article_index.match(pts, max_dist=d)
    with pytest.raises(ValueError, match="how"):
        article_index.match(pts, how="outer")
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        article_index.match(np.zeros((3, 3)))
    with pytest.raises(TypeError):
        article_index.match("not points")
    with pytest.raises(ValueError, match="threads"):
        article_index.match(pts, threads=0)


def test_bad_coordinates_and_offsets():
    x = np.array([0.0, 1.0, 1.0])
    with pytest.raises(pm.InvalidGeometryError, match="x has 3 values but y has 2"):
        pm.PolygonIndex.from_coords(x, x[:2], np.array([0, 3]))
    with pytest.raises(pm.InvalidGeometryError, match="beyond"):
        pm.PolygonIndex.from_coords(x, x, np.array([0, 4]))
    with pytest.raises(pm.InvalidGeometryError, match="decrease"):
        pm.PolygonIndex.from_coords(x, x, np.array([0, 2, 1]))
    with pytest.raises(pm.InvalidGeometryError, match="row 1: ring 0 of part 0 is empty"):
        pm.PolygonIndex.from_coords(x, x, np.array([0, 3, 3]))
    bad = np.array([0.0, np.nan, 1.0, 2.0])
    with pytest.raises(pm.InvalidGeometryError, match="row 0.*not finite"):
        pm.PolygonIndex.from_coords(bad, bad, np.array([0, 4]))
    with pytest.raises(pm.InvalidGeometryError, match="row 1.*not finite"):
        pm.PolygonIndex.from_coords(x, np.array([0.0, 1.0, np.inf]), np.array([0, 2, 3]))
    with pytest.raises(TypeError, match="offsets must be integers"):
        pm.PolygonIndex.from_coords(x, x, np.array([0.0, 3.0]))


def test_schema_errors():
    with pytest.raises(pm.SchemaError, match="no geometry column"):
        pm.PolygonIndex.from_arrow(pa.table({"a": [1, 2]}))
    with pytest.raises(pm.SchemaError, match='missing column "nope"'):
        pm.PolygonIndex.from_arrow(pa.table({"a": [1, 2]}), geometry="nope")
    with pytest.raises(pm.SchemaError, match='column "x" has type'):
        pm.PolygonIndex.from_arrow(pa.table({"x": [["a"]], "y": [["b"]]}))
    point_field = pa.field(
        "geometry",
        pa.struct([("x", pa.float64()), ("y", pa.float64())]),
        metadata={"ARROW:extension:name": "geoarrow.point"},
    )
    pts = pa.table(
        [pa.array([{"x": 1.0, "y": 2.0}], point_field.type)], schema=pa.schema([point_field])
    )
    with pytest.raises(pm.SchemaError, match="unsupported geometry type geoarrow.point"):
        pm.PolygonIndex.from_arrow(pts)
    line = struct.pack("<BII", 1, 2, 0)
    with pytest.raises(pm.SchemaError, match="LineString"):
        pm.PolygonIndex.from_arrow(pa.table({"geometry": pa.array([line], pa.binary())}))
    with pytest.raises(pm.InvalidGeometryError, match="row 0.*truncated"):
        truncated = wkb_polygon(_square(0, 0, 1), close=False)[:30]
        pm.PolygonIndex.from_arrow(pa.table({"geometry": pa.array([truncated], pa.binary())}))
    idx = pm.PolygonIndex.from_arrow(_geoarrow_polygons(POLYS))
    with pytest.raises(pm.SchemaError, match='missing column "y"'):
        idx.match(pa.table({"x": [1.0]}))
    with pytest.raises(pm.SchemaError, match='column "x" has type Utf8'):
        idx.match(pa.table({"x": ["1"], "y": ["2"]}))


# --- the GIL and Ctrl-C -----------------------------------------------------------------


@pytest.fixture(scope="module")
def big_job():
    rng = np.random.default_rng(11)
    n_poly = 50_000
    cx, cy = rng.uniform(0, 1000, n_poly), rng.uniform(0, 1000, n_poly)
    x = np.stack([cx, cx + 1, cx], axis=1).ravel()
    y = np.stack([cy, cy, cy + 1], axis=1).ravel()
    idx = pm.PolygonIndex.from_coords(x, y, np.arange(0, 3 * n_poly + 1, 3))
    pts = pa.table({"x": rng.uniform(0, 1000, 3_000_000), "y": rng.uniform(0, 1000, 3_000_000)})
    return idx, pts


def test_gil_released_during_match(big_job):
    idx, pts = big_job
    ticks = 0
    stop = threading.Event()

    def tick():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    time.sleep(0.01)
    start_ticks = ticks
    idx.match(pts, max_dist=20.0, all_candidates=True)
    during = ticks - start_ticks
    stop.set()
    t.join()
    assert during > 5


def test_ctrl_c_interrupts_a_long_match(big_job, python_sigint_handler):
    """A real SIGINT during a long match: KeyboardInterrupt arrives promptly (the kernel
    checks its cancel flag every chunk; the waiting thread polls signals every 50 ms), and
    the process, its thread pool and the index stay usable. One signal per round, sent
    from another thread once the match has been running for a while (the GIL is released
    while matching, so that thread runs); the match takes many seconds uninterrupted."""

    def interrupt(started, finished, sent):
        started.wait(timeout=30)
        # well inside the match: it started 0.3 s ago and has not returned
        if not finished.wait(timeout=0.3):
            sent.append(time.perf_counter())
            os.kill(os.getpid(), signal.SIGINT)

    idx, pts = big_job
    for _ in range(2):  # twice: the first interrupt leaves nothing behind
        started, finished = threading.Event(), threading.Event()
        sent: list[float] = []
        sender = threading.Thread(target=interrupt, args=(started, finished, sent))
        sender.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                started.set()
                idx.match(pts, max_dist=20.0, all_candidates=True)
            arrived = time.perf_counter()
        finally:
            finished.set()
            sender.join()
        assert sent, "the match returned before it could be interrupted"
        latency = arrived - sent[0]
        # generous for a loaded 2-core CI machine; the match itself takes many seconds
        assert latency < 5.0, latency
        assert idx.match(np.array([[500.0, 500.0]]), max_dist=math.inf).num_rows == 1
    small = pts.slice(0, 1000)
    assert idx.match(small, 20.0).equals(idx.match(small, 20.0, threads=1))
