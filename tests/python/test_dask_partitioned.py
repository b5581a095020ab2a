"""The partitioned join of polymatch.dask (polygons as a Dask DataFrame or a list of
files, cut into tiles with halos) on a real multi-process `distributed.LocalCluster`:
row for row the single-process answer on uniform, clustered and duplicate-heavy data,
multipolygons with holes, every option; empty tiles; a killed worker; and the memory of
each process against one process indexing every polygon."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
shapely = pytest.importorskip("shapely")

import dask.dataframe as dd  # noqa: E402

import polymatch as pm  # noqa: E402
import polymatch.dask as pmd  # noqa: E402
from polymatch._core import Tiling  # noqa: E402

from conftest import local_cluster  # noqa: E402

MAX_DIST = 3.0


@pytest.fixture(scope="module")
def client():
    with local_cluster() as c:
        yield c


def _squares(cx: np.ndarray, cy: np.ndarray, half: np.ndarray) -> list:
    return list(shapely.box(cx - half, cy - half, cx + half, cy + half))


def polygons_table(kind: str, n: int = 600, seed: int = 7) -> pa.Table:
    """Polygons (WKB) with attributes ``pid`` and ``pop``: ``uniform`` centers,
    ``clustered`` (three tight clusters), ``duplicates`` (centers and sizes on a coarse
    grid: many equal centers and equal areas, ties everywhere, centers on tile cuts) or
    ``holes`` (multipolygons whose parts have holes)."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        cx, cy = rng.uniform(0, 100, n), rng.uniform(0, 100, n)
        geoms = _squares(cx, cy, rng.uniform(0.2, 2.0, n))
    elif kind == "clustered":
        at = rng.integers(0, 3, n)
        cx = np.array([10.0, 50.0, 80.0])[at] + rng.normal(0, 2.0, n)
        cy = np.array([20.0, 70.0, 30.0])[at] + rng.normal(0, 2.0, n)
        geoms = _squares(cx, cy, rng.uniform(0.2, 1.0, n))
    elif kind == "duplicates":
        cx = rng.integers(0, 10, n).astype(float) * 5
        cy = rng.integers(0, 10, n).astype(float) * 5
        geoms = _squares(cx, cy, rng.integers(1, 3, n).astype(float) / 2)
    elif kind == "holes":
        cx, cy = rng.uniform(0, 100, n), rng.uniform(0, 100, n)
        geoms = []
        for x, y, h in zip(cx, cy, rng.uniform(1.0, 3.0, n)):
            outer = shapely.box(x - h, y - h, x + h, y + h)
            hole = shapely.box(x - h / 2, y - h / 2, x + h / 4, y + h / 4)
            part = shapely.Polygon(outer.exterior.coords, [hole.exterior.coords])
            geoms.append(shapely.MultiPolygon([part, shapely.box(x + h, y, x + 2 * h, y + h)]))
    else:
        raise ValueError(kind)
    return pa.table(
        {
            "pid": pa.array(np.arange(n) + 1000, pa.int64()),
            "pop": pa.array(rng.integers(0, 20, n).astype(float)),  # ties on purpose
            "geometry": pa.array(shapely.to_wkb(geoms), pa.binary()),
        }
    )


def points_table(kind: str, n: int = 4000, seed: int = 11) -> pa.Table:
    rng = np.random.default_rng(seed)
    if kind == "clustered":
        at = rng.integers(0, 3, n)
        x = np.array([10.0, 50.0, 80.0])[at] + rng.normal(0, 3.0, n)
        y = np.array([20.0, 70.0, 30.0])[at] + rng.normal(0, 3.0, n)
    elif kind == "duplicates":
        x = rng.integers(0, 40, n).astype(float) * 1.25  # on cuts and on centers
        y = rng.integers(0, 40, n).astype(float) * 1.25
    else:
        x, y = rng.uniform(-5, 105, n), rng.uniform(-5, 105, n)
    x[::97] = np.nan  # points that match nothing
    return pa.table({"point_id": np.arange(n), "x": x, "y": y})


def to_dask(table: pa.Table, parts: int) -> dd.DataFrame:
    return dd.from_pandas(table.to_pandas(types_mapper=pd.ArrowDtype), npartitions=parts)


def frame(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper=pd.ArrowDtype)


OPTIONS = [
    {},
    {"how": "left", "keep": ["point_id"], "keep_polygons": ["pid"]},
    {"all_candidates": True, "how": "left"},
    {"rank_by": "pop", "descending": True, "k": 3, "keep_polygons": ["pop"]},
    {"rank_by": "distance", "k": 2},
]


@pytest.mark.parametrize("kind", ["uniform", "clustered", "duplicates", "holes"])
def test_partitioned_equals_one_process(client, kind):
    """Every option, polygons in 3 partitions cut into about a dozen tiles: the same
    rows, in the same order, with the same types, as one process matching all."""
    polygons, points = polygons_table(kind), points_table(kind)
    index = pm.PolygonIndex.from_arrow(polygons)
    dpolygons, dpoints = to_dask(polygons, 3), to_dask(points, 4)
    for options in OPTIONS:
        got = pmd.match(
            dpolygons, dpoints, max_dist=MAX_DIST, polygons_per_tile=50, **options
        ).compute()
        exp = frame(index.match(points, max_dist=MAX_DIST, **options))
        pd.testing.assert_frame_equal(got.reset_index(drop=True), exp, obj=f"{kind} {options}")


def test_partitioned_dask_geopandas(client):
    """A dask-geopandas GeoDataFrame as polygons: partitioned, the one-process answer,
    and its CRS checked against the points' (a GeoDataFrame of points in another CRS
    is refused, as one process refuses it)."""
    gpd = pytest.importorskip("geopandas")
    dgpd = pytest.importorskip("dask_geopandas")
    polygons, points = polygons_table("uniform"), points_table("uniform")
    gdf = gpd.GeoDataFrame(
        {"pid": polygons["pid"].to_numpy(), "pop": polygons["pop"].to_numpy()},
        geometry=shapely.from_wkb(polygons["geometry"].to_numpy(zero_copy_only=False)),
        crs="EPSG:3857",
    )
    dpolygons = dgpd.from_geopandas(gdf, npartitions=3)
    dpoints = to_dask(points, 4)
    options = {"how": "left", "keep_polygons": ["pid"], "rank_by": "pop", "k": 2}
    got = pmd.match(dpolygons, dpoints, max_dist=MAX_DIST, polygons_per_tile=50, **options)
    exp = frame(pm.match(gdf, points, max_dist=MAX_DIST, **options))
    pd.testing.assert_frame_equal(got.compute().reset_index(drop=True), exp)

    far = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(points["x"].to_numpy(), points["y"].to_numpy()),
        crs="EPSG:4326",
    )
    with pytest.raises(pm.SchemaError, match="different CRS"):
        pm.match(gdf, far, max_dist=MAX_DIST)
    with pytest.raises(pm.SchemaError, match="different CRS"):
        pmd.match(
            dpolygons,
            dgpd.from_geopandas(far, npartitions=2),
            max_dist=MAX_DIST,
            polygons_per_tile=50,
        ).compute()


def test_tiles_and_halos_cover_every_candidate():
    """The property the exactness rests on (docs/scaling.md): for every point, every
    polygon within max_dist of it is in the polygon set of the point's one tile."""
    polygons, points = polygons_table("duplicates"), points_table("duplicates")
    centers = pm.PolygonIndex.from_arrow(polygons).to_arrow()
    cx = centers["center_x"].to_numpy()
    cy = centers["center_y"].to_numpy()
    tiling = Tiling(cx, cy, 16)
    assert len(tiling) == 16
    offsets, rows = tiling.assign(cx, cy, MAX_DIST)
    tile_sets = [set(rows[offsets[t] : offsets[t + 1]].tolist()) for t in range(len(tiling))]
    tiles = tiling.route(points)
    px, py = points["x"].to_numpy(), points["y"].to_numpy()
    for i in range(points.num_rows):
        d = np.sqrt((cx - px[i]) ** 2 + (cy - py[i]) ** 2)
        assert set(np.flatnonzero(d < MAX_DIST).tolist()) <= tile_sets[tiles[i]]
    assert len(rows) < 2 * len(cx)  # the halos replicate some polygons, not all


def test_partitioned_point_index_per_partition_and_empty_tiles(client):
    """point_index="partition" numbers rows within each points partition; points far
    from every polygon (tiles whose polygon set is empty) give no rows for inner joins
    and null rows for left joins."""
    polygons = polygons_table("clustered", n=300)
    far = pa.table({"point_id": np.arange(50), "x": np.full(50, -500.0), "y": np.arange(50.0)})
    points = pa.concat_tables([points_table("clustered", n=500), far])
    index = pm.PolygonIndex.from_arrow(polygons)
    dpolygons, dpoints = to_dask(polygons, 2), to_dask(points, 3)
    got = pmd.match(
        dpolygons, dpoints, MAX_DIST, "left", point_index="partition", polygons_per_tile=40
    ).compute()
    assert got["partition"].nunique() == 3
    sizes = [len(p) for p in dpoints.partitions]
    starts = np.cumsum([0] + sizes[:-1])
    glob = got["point_index"].astype("int64") + starts[got["partition"].astype("int64")]
    exp = frame(index.match(points, max_dist=MAX_DIST, how="left"))
    assert glob.tolist() == exp["point_index"].astype("int64").tolist()
    assert got["polygon_index"].tolist() == exp["polygon_index"].tolist()
    inner = pmd.match(dpolygons, to_dask(far, 2), MAX_DIST, polygons_per_tile=40).compute()
    assert len(inner) == 0
    left = pmd.match(dpolygons, to_dask(far, 2), MAX_DIST, "left", polygons_per_tile=40)
    left = left.compute()
    assert len(left) == 50 and left["polygon_index"].isna().all()


def test_partitioned_without_matchable_polygons(client):
    """Polygons that are all null: one tile, no candidates; inner gives nothing, left a
    null row per point, with the types one process gives."""
    polygons = pa.table({"pid": [1, 2], "geometry": pa.array([None, None], pa.binary())})
    points = points_table("uniform", n=30)
    index = pm.PolygonIndex.from_arrow(polygons)
    for how in ("inner", "left"):
        got = pmd.match(to_dask(polygons, 1), to_dask(points, 2), MAX_DIST, how).compute()
        exp = frame(index.match(points, max_dist=MAX_DIST, how=how))
        pd.testing.assert_frame_equal(got.reset_index(drop=True), exp)


def test_partitioned_refusals(client):
    """max_dist=inf cannot be partitioned (a clear message: broadcast instead); the
    points-first order of polymatch 0.1 is refused by name; a CRS conflict between
    polygon partitions is refused."""
    polygons, points = (
        to_dask(polygons_table("uniform", n=50), 2),
        to_dask(points_table("uniform", n=20), 1),
    )
    with pytest.raises(ValueError, match="max_dist=inf .* PolygonIndex"):
        pmd.match(polygons, points, float("inf"))
    index = pm.PolygonIndex.from_arrow(polygons_table("uniform", n=50))
    with pytest.raises(TypeError, match="polygons first"):
        pmd.match(points, index, MAX_DIST)
    with pytest.raises(pm.SchemaError, match="nope"):
        pmd.match(polygons, points, MAX_DIST, keep_polygons=["nope"])


def test_match_parquet_with_polygon_files(client, tmp_path):
    """A list of polygon files: the same output files as the broadcast job, row for
    row; a rerun skips them; a changed input is redone."""
    polygons, points = polygons_table("uniform"), points_table("uniform")
    poly_files = []
    for i, start in enumerate(range(0, polygons.num_rows, 250)):
        poly_files.append(tmp_path / f"polygons{i}.parquet")
        pq.write_table(polygons.slice(start, 250), poly_files[-1])
    (tmp_path / "points").mkdir()
    for i in range(3):
        pq.write_table(points.slice(i * 1500, 1500), tmp_path / "points" / f"p{i}.parquet")
    whole = tmp_path / "all.parquet"
    pq.write_table(polygons, whole)
    options = dict(max_dist=MAX_DIST, how="left", keep=["point_id"], keep_polygons=["pid"])
    broadcast = pmd.match_parquet(tmp_path / "points", whole, tmp_path / "a", **options)
    tiles = pmd.match_parquet(
        tmp_path / "points", poly_files, tmp_path / "b", polygons_per_tile=100, **options
    )
    assert [Path(p).name for p in broadcast] == [Path(p).name for p in tiles]
    for a, b in zip(broadcast, tiles):
        assert pq.read_table(a).equals(pq.read_table(b))
    stamps = {p: os.stat(p).st_mtime_ns for p in tiles}
    again = pmd.match_parquet(
        tmp_path / "points", poly_files, tmp_path / "b", polygons_per_tile=100, **options
    )
    assert again == tiles and {p: os.stat(p).st_mtime_ns for p in tiles} == stamps
    os.utime(tmp_path / "points" / "p1.parquet")
    pmd.match_parquet(
        tmp_path / "points", poly_files, tmp_path / "b", polygons_per_tile=100, **options
    )
    redone = [p for p in tiles if os.stat(p).st_mtime_ns != stamps[p]]
    assert [Path(p).name for p in redone] == ["p1.parquet"]
    assert sorted(os.listdir(tmp_path / "b")) == ["p0.parquet", "p1.parquet", "p2.parquet"]


def test_partitioned_worker_killed(client, tmp_path):
    """A worker dies (os._exit) as it starts its third tile-matching task; the nanny
    restarts it, the scheduler recomputes what it held: no row lost, none duplicated."""
    from test_dask import kill_worker_plugin, worker_pids

    polygons, points = polygons_table("uniform"), points_table("uniform")
    marker = tmp_path / "killed"
    pids = worker_pids(client)
    client.register_plugin(kill_worker_plugin("_match_piece", marker, after=3))
    try:
        got = pmd.match(
            to_dask(polygons, 3),
            to_dask(points, 6),
            MAX_DIST,
            "left",
            keep=["point_id"],
            polygons_per_tile=60,
        ).compute()
    finally:
        client.unregister_worker_plugin("polymatch-test-kill-once")
    assert marker.exists(), "no worker was killed"
    assert int(marker.read_text()) in pids
    client.wait_for_workers(2, timeout=60)
    assert got["point_index"].is_unique
    exp = frame(
        pm.PolygonIndex.from_arrow(polygons).match(
            points, max_dist=MAX_DIST, how="left", keep=["point_id"]
        )
    )
    pd.testing.assert_frame_equal(got.reset_index(drop=True), exp)


# ---------------------------------------------------------------------------------------
# Memory: no process holds every polygon
# ---------------------------------------------------------------------------------------


def _grow_kib() -> int:
    """This process's peak RSS since the last reset, above its RSS at the reset (KiB)."""
    with open("/proc/self/status") as f:
        status = f.read()
    peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
    return peak - int(os.environ.get("_POLYMATCH_RSS_BASE", "0"))


def _reset_peak() -> int:
    """Reset this process's peak RSS to its current RSS (Linux ``clear_refs``); return it."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    with open("/proc/self/status") as f:
        status = f.read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    os.environ["_POLYMATCH_RSS_BASE"] = str(rss)
    return rss


def _write_footprints(directory: Path, files: int, per_file: int) -> list[Path]:
    """Many small square footprints (WKB, 5 vertices) with an id, in Parquet files."""
    rng = np.random.default_rng(3)
    out = []
    for f in range(files):
        cx, cy = rng.uniform(0, 10_000, per_file), rng.uniform(0, 10_000, per_file)
        h = rng.uniform(1, 5, per_file)
        wkb = shapely.to_wkb(shapely.box(cx - h, cy - h, cx + h, cy + h))
        ids = np.arange(f * per_file, (f + 1) * per_file)
        out.append(directory / f"footprints{f}.parquet")
        pq.write_table(pa.table({"id": ids, "geometry": pa.array(wkb, pa.binary())}), out[-1])
    return out


ONE_PROCESS = """
import re, sys, pyarrow as pa, pyarrow.parquet as pq, polymatch as pm
def rss(key):
    return int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1))
base = rss("VmRSS")
table = pa.concat_tables([pq.read_table(f) for f in sys.argv[1:]])
index = pm.PolygonIndex.from_arrow(table)
print(rss("VmHWM") - base)
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux clear_refs")
def test_partitioned_memory_stays_far_below_one_process(client, tmp_path):
    """800k polygons in 8 files, matched partitioned into tiles of 100k: the client's
    and each worker's peak RSS growth stay under half of what one process needs to index
    every polygon (measured in a fresh subprocess, the same way: peak RSS above RSS)."""
    files = _write_footprints(tmp_path, files=8, per_file=100_000)
    one = subprocess.run(
        [sys.executable, "-c", ONE_PROCESS, *map(str, files)],
        capture_output=True,
        text=True,
        check=True,
    )
    one_process = int(one.stdout.strip())
    rng = np.random.default_rng(5)
    points = pd.DataFrame(
        {"x": rng.uniform(0, 10_000, 40_000), "y": rng.uniform(0, 10_000, 40_000)}
    )
    dpoints = dd.from_pandas(points, npartitions=4)
    client.run(_reset_peak)
    _reset_peak()
    got = pmd.match(
        [str(f) for f in files],
        dpoints,
        max_dist=5.0,
        keep_polygons=["id"],
        polygons_per_tile=100_000,
    ).compute()
    workers = client.run(_grow_kib)
    me = _grow_kib()
    assert len(got) > 0
    assert (got["polygon_index"].astype("int64") == got["id"].astype("int64")).all()
    print(f"one process {one_process} KiB, client {me} KiB, workers {workers}")
    limit = one_process / 2
    assert me < limit, f"client grew {me} KiB, one process {one_process} KiB"
    for addr, grow in workers.items():
        assert grow < limit, f"worker {addr} grew {grow} KiB, one process {one_process} KiB"

    # The points side too: match_parquet with two 500k-point files (routed, matched per
    # tile, combined and written per file) stays under the same bound.
    sources = []
    for i in range(2):
        sources.append(tmp_path / f"points{i}.parquet")
        xy = rng.uniform(0, 10_000, (500_000, 2))
        pq.write_table(pa.table({"x": xy[:, 0], "y": xy[:, 1]}), sources[-1])
    client.run(_reset_peak)
    _reset_peak()
    outs = pmd.match_parquet(
        sources,
        [str(f) for f in files],
        tmp_path / "out",
        max_dist=5.0,
        polygons_per_tile=100_000,
    )
    workers = client.run(_grow_kib)
    me = _grow_kib()
    assert sum(pq.read_metadata(o).num_rows for o in outs) > 0
    print(f"match_parquet: client {me} KiB, workers {workers}")
    assert me < limit, f"client grew {me} KiB, one process {one_process} KiB"
    for addr, grow in workers.items():
        assert grow < limit, f"worker {addr} grew {grow} KiB, one process {one_process} KiB"


# ---------------------------------------------------------------------------------------
# read_parquet: Arrow types and the CRS kept; allow_crs_mismatch
# ---------------------------------------------------------------------------------------


def _geoparquet(table: pa.Table, crs: str, path: Path) -> None:
    """``table`` (WKB ``geometry``, or ``x``/``y`` points) as GeoParquet in ``crs``."""
    gpd = pytest.importorskip("geopandas")
    if "geometry" in table.column_names:
        geometry = shapely.from_wkb(table["geometry"].to_numpy(zero_copy_only=False))
        rest = table.drop_columns(["geometry"])
    else:
        geometry = gpd.points_from_xy(table["x"].to_numpy(), table["y"].to_numpy())
        rest = table.drop_columns(["x", "y"])
    gdf = gpd.GeoDataFrame(rest.to_pandas(), geometry=geometry, crs=crs)
    gdf.to_parquet(path, index=False)


@pytest.fixture(scope="module")
def crs_inputs(tmp_path_factory):
    """Polygons in EPSG:3857 (3 GeoParquet files) and points in EPSG:4326 (2 files)."""
    root = tmp_path_factory.mktemp("crs")
    polygons, points = polygons_table("uniform"), points_table("uniform", n=2000)
    poly_files, point_files = [], []
    for i, start in enumerate(range(0, polygons.num_rows, 200)):
        poly_files.append(root / f"polygons{i}.parquet")
        _geoparquet(polygons.slice(start, 200), "EPSG:3857", poly_files[-1])
    (root / "points").mkdir()
    for i in range(2):
        point_files.append(root / "points" / f"p{i}.parquet")
        _geoparquet(points.slice(i * 1000, 1000), "EPSG:4326", point_files[-1])
    return poly_files, point_files


def test_read_parquet_carries_the_crs_to_the_tiles(client, crs_inputs):
    """Polygons read by pmd.read_parquet: Arrow types, and the GeoParquet CRS reaches the
    plan (hence every tile's index), as with the list of files."""
    from polymatch import _tiles

    poly_files, _ = crs_inputs
    crs = pm.read_polygons(poly_files[0]).crs
    assert crs is not None
    frame = pmd.read_parquet([str(f) for f in poly_files])
    assert all(isinstance(t, pd.ArrowDtype) for t in frame.dtypes)
    for parts in (pmd._polygon_parts(frame), pmd._polygon_parts([str(f) for f in poly_files])):
        plan = _tiles.plan(parts, None, [], _tiles.Halo("center", MAX_DIST), 100)
        assert plan.crs == crs
        assert _tiles.empty_tile(plan.schema, plan.crs, "area", False).index.crs == crs


@pytest.mark.parametrize("polygons_as", ["read_parquet", "files"])
def test_partitioned_crs_mismatch(client, crs_inputs, tmp_path, polygons_as):
    """Partitioned polygons (pmd.read_parquet or a list of files) and points in another
    CRS: match and match_parquet refuse them as one process does; allow_crs_mismatch=True
    gives the one-process answer."""
    poly_files, point_files = crs_inputs
    polygons = (
        pmd.read_parquet([str(f) for f in poly_files])
        if polygons_as == "read_parquet"
        else [str(f) for f in poly_files]
    )
    dpoints = pmd.read_parquet([str(f) for f in point_files])
    index = pm.PolygonIndex.from_arrow(pa.concat_tables([pq.read_table(f) for f in poly_files]))
    one = pa.concat_tables([pq.read_table(f) for f in point_files])
    with pytest.raises(pm.SchemaError, match="different CRS"):
        index.match(one, max_dist=MAX_DIST)
    with pytest.raises(pm.SchemaError, match="different CRS"):
        pmd.match(polygons, dpoints, MAX_DIST, polygons_per_tile=100).compute()
    options = {"how": "left", "keep": ["point_id"], "keep_polygons": ["pid"]}
    got = pmd.match(
        polygons, dpoints, MAX_DIST, polygons_per_tile=100, allow_crs_mismatch=True, **options
    ).compute()
    exp = frame(index.match(one, max_dist=MAX_DIST, allow_crs_mismatch=True, **options))
    pd.testing.assert_frame_equal(got.reset_index(drop=True), exp)

    with pytest.raises(pm.SchemaError, match="different CRS"):
        pmd.match_parquet(
            point_files, polygons, tmp_path / "refused", MAX_DIST, polygons_per_tile=100
        )
    outs = pmd.match_parquet(
        point_files,
        polygons,
        tmp_path / "out",
        MAX_DIST,
        polygons_per_tile=100,
        allow_crs_mismatch=True,
        **options,
    )
    for src, out in zip(point_files, outs):
        ref = tmp_path / f"ref-{src.name}"
        pm.match_parquet(index, src, ref, MAX_DIST, allow_crs_mismatch=True, **options)
        assert pq.read_table(out).equals(pq.read_table(ref))
    # the flag is part of each output's job: without it, the rerun is refused, not skipped
    with pytest.raises(pm.SchemaError, match="different CRS"):
        pmd.match_parquet(
            point_files, polygons, tmp_path / "out", MAX_DIST, polygons_per_tile=100, **options
        )


def test_read_parquet_keeps_ranks_beyond_2_53(client, tmp_path):
    """An int64 rank column with nulls and values beyond 2**53 (equal as float64): through
    pmd.read_parquet the partitioned answer is the one-process answer; dd.read_parquet's
    defaults turn it into float64, which a UserWarning names (and the answer differs)."""
    polygons, points = polygons_table("duplicates"), points_table("duplicates")
    rng = np.random.default_rng(1)
    ranks = pa.array(2**60 + rng.permutation(polygons.num_rows), pa.int64())
    ranks = pc.if_else(pa.array(np.arange(polygons.num_rows) % 13 == 0), None, ranks)
    polygons = polygons.append_column("rank", ranks)
    files = []
    for i, start in enumerate(range(0, polygons.num_rows, 200)):
        files.append(str(tmp_path / f"polygons{i}.parquet"))
        pq.write_table(polygons.slice(start, 200), files[-1])
    options = {"rank_by": "rank", "descending": True, "keep_polygons": ["rank", "pid"]}
    exp = frame(pm.PolygonIndex.from_arrow(polygons).match(points, max_dist=MAX_DIST, **options))
    dpoints = to_dask(points, 3)
    got = pmd.match(
        pmd.read_parquet(files), dpoints, MAX_DIST, polygons_per_tile=100, **options
    ).compute()
    pd.testing.assert_frame_equal(got.reset_index(drop=True), exp)
    with pytest.warns(UserWarning, match="'rank' arrives as float64.*polymatch.dask.read_parquet"):
        lossy = pmd.match(
            dd.read_parquet(files),
            dpoints,
            MAX_DIST,
            polygons_per_tile=100,
            rank_by="rank",
            descending=True,
            keep_polygons=["pid"],
        ).compute()
    assert lossy["pid"].tolist() != exp["pid"].tolist()
