"""polymatch.dask on a real multi-process `distributed.LocalCluster` (2 worker processes,
1 thread each, nannies): the same answers as single-process matching, the index
deserialised at most once per worker, reruns that skip finished files, and worker deaths
in the middle of a job that lose or duplicate no row."""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import dask  # noqa: E402
import dask.dataframe as dd  # noqa: E402

import polymatch as pm  # noqa: E402
import polymatch.dask as pmd  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SYNTH = ROOT / "sample_data" / "synthetic"
MAX_DIST = 2.0  # about 70% of the synthetic points match: inner and left differ


@pytest.fixture(scope="module")
def client():
    with dask.config.set(
        {
            "distributed.scheduler.allowed-failures": 20,
            # a killed worker is noticed through its closed connection, and restarted by
            # its nanny; nothing here should depend on slow timeouts
            "distributed.comm.timeouts.connect": "30s",
        }
    ):
        with (
            distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # a free port: None means the default 8787
            ) as cluster,
            distributed.Client(cluster) as c,
        ):
            yield c


@pytest.fixture(scope="module")
def index():
    return pm.read_polygons(SYNTH / "polygons.parquet")


@pytest.fixture(scope="module")
def points() -> pd.DataFrame:
    return pq.read_table(SYNTH / "points.parquet").to_pandas()


def expected(index, points, **kwargs) -> pd.DataFrame:
    table = index.match(points, max_dist=MAX_DIST, **kwargs)
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def sort(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values("point_index", kind="stable").reset_index(drop=True)


def kill_worker_plugin(prefix: str, marker: Path, after: int):
    """A worker plugin that kills its worker process (os._exit) when a task whose key
    starts with `prefix` starts executing, the `after`-th such task in that process, once
    in the whole cluster (an atomically created marker file): a worker dying in the
    middle of a job, with finished results in its memory. Defined here so cloudpickle
    ships the class by value."""

    class KillOnce(distributed.WorkerPlugin):
        name = "polymatch-test-kill-once"

        def __init__(self):
            self.seen = 0

        def transition(self, key, start, finish, *args, **kwargs):
            name = key[0] if isinstance(key, tuple) else key
            if finish != "executing" or not str(name).startswith(prefix):
                return
            self.seen += 1
            if self.seen < after:
                return
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os._exit(1)

    return KillOnce()


def worker_pids(client) -> set[int]:
    return set(client.run(os.getpid).values())


# ---------------------------------------------------------------------------------------
# match: Dask DataFrame in, lazy Dask DataFrame out
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["inner", "left"])
def test_match_equals_single_process(client, index, points, how):
    ddf = dd.from_pandas(points, npartitions=6)
    result = pmd.match(index, ddf, max_dist=MAX_DIST, how=how, keep=["point_id"])
    assert isinstance(result, dd.DataFrame)  # lazy
    assert result.npartitions == 6
    got = result.compute()
    assert all(isinstance(t, pd.ArrowDtype) for t in got.dtypes)
    assert dict(result.dtypes) == dict(got.dtypes)  # meta is right
    exp = expected(index, points, how=how, keep=["point_id"])
    pd.testing.assert_frame_equal(sort(got), exp)
    assert got["point_index"].is_unique
    # point_index is the global row: the kept id agrees with the input row
    rows = got["point_index"].to_numpy(dtype=np.int64)
    assert (got["point_id"].to_numpy(dtype=np.int64) == points["point_id"].to_numpy()[rows]).all()


def test_match_from_polygon_table_and_options(client, index, points):
    """`polygons` as an Arrow table, uneven partitions, custom x/y names, threads=2,
    all_candidates, and an empty partition."""
    polygons = pq.read_table(SYNTH / "polygons.parquet")
    renamed = points.rename(columns={"x": "px", "y": "py"})
    ddf = dd.from_pandas(renamed, npartitions=5)
    ddf = ddf[(ddf.point_id < 3000) | (ddf.point_id >= 9000)]  # a partition becomes empty
    sub = renamed[(renamed.point_id < 3000) | (renamed.point_id >= 9000)]
    sub = sub.reset_index(drop=True)
    got = pmd.match(
        polygons, ddf, max_dist=MAX_DIST, how="left", keep=["point_id"], x="px", y="py", threads=2
    ).compute()
    exp = index.match(sub, max_dist=MAX_DIST, how="left", keep=["point_id"], x="px", y="py")
    pd.testing.assert_frame_equal(sort(got), exp.to_pandas(types_mapper=pd.ArrowDtype))

    got = pmd.match(index, ddf, max_dist=MAX_DIST, x="px", y="py", all_candidates=True).compute()
    exp = index.match(sub, max_dist=MAX_DIST, x="px", y="py", all_candidates=True)
    got = got.sort_values(["point_index", "polygon_index"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, exp.to_pandas(types_mapper=pd.ArrowDtype))


def test_match_keep_columns_and_partition_index(client, index, points):
    df = points.assign(
        name=[f"p{i}" for i in range(len(points))],
        weight=np.arange(len(points), dtype=np.float32),
    )
    ddf = dd.from_pandas(df, npartitions=4)
    keep = ["point_id", "name", "weight"]
    got = pmd.match(index, ddf, max_dist=MAX_DIST, keep=keep).compute()
    assert list(got.columns) == ["point_index", "polygon_index", "distance", "area", *keep]
    exp = index.match(df, max_dist=MAX_DIST, keep=keep)
    exp = exp.to_pandas(types_mapper=pd.ArrowDtype)
    got = sort(got)
    # the kept string column may come back as string or large_string: compare values
    assert got["name"].astype(str).tolist() == exp["name"].astype(str).tolist()
    pd.testing.assert_frame_equal(got.drop(columns="name"), exp.drop(columns="name"))

    # point_index="partition": row within the partition plus the partition number
    local = pmd.match(index, ddf, max_dist=MAX_DIST, keep=["point_id"], point_index="partition")
    local = local.compute()
    lengths = np.asarray(ddf.map_partitions(len).compute(), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    part = local["partition"].to_numpy(dtype=np.int64)
    glob_rows = starts[part] + local["point_index"].to_numpy(dtype=np.int64)
    assert (
        local["point_id"].to_numpy(dtype=np.int64) == df["point_id"].to_numpy()[glob_rows]
    ).all()
    assert sorted(glob_rows.tolist()) == exp["point_index"].tolist()


def test_match_geometry_column(client, index, points):
    import shapely

    wkb = shapely.to_wkb(shapely.points(points["x"], points["y"]))
    df = pd.DataFrame(
        {
            "point_id": points["point_id"],
            "geom": pd.array(list(wkb), dtype=pd.ArrowDtype(pa.binary())),
        }
    )
    got = pmd.match(index, dd.from_pandas(df, npartitions=4), max_dist=MAX_DIST, geometry="geom")
    exp = expected(index, points)
    pd.testing.assert_frame_equal(sort(got.compute()), exp)


def test_index_shipped_once_and_deserialised_once_per_worker(client, index, points):
    client.run(pmd.clear_cache)
    nparts = 8
    ddf = dd.from_pandas(points, npartitions=nparts)
    result = pmd.match(index, ddf, max_dist=MAX_DIST, keep=["point_id"])

    # the serialised index is one key of the graph, not a literal inside every task
    graph = dict(result.__dask_graph__())
    index_keys = [k for k in graph if str(k).startswith("polymatch-index-")]
    assert len(index_keys) == 1
    size = len(index.to_bytes())
    points_size = points.memory_usage(index=False).sum()
    assert len(pickle.dumps(graph)) < points_size + 2 * size

    got = result.compute()
    assert len(got) == len(expected(index, points))
    infos = client.run(pmd.cache_info)
    assert len(infos) == 2
    assert all(info["loads"] <= 1 for info in infos.values()), infos
    assert sum(info["loads"] + info["hits"] for info in infos.values()) == nparts

    # a second job with the same index: no worker deserialises it again
    result = pmd.match(index, ddf, max_dist=MAX_DIST, how="left")
    assert len(result.compute()) == len(points)
    again = client.run(pmd.cache_info)
    assert all(again[w]["loads"] == infos[w]["loads"] for w in infos), (infos, again)


def test_worker_killed_during_match(client, index, points, tmp_path):
    """A worker dies (os._exit) as it starts its third matching task, with finished
    partitions in its memory; the nanny restarts it and the scheduler recomputes what was
    lost. The result is complete: no row lost, none duplicated."""
    marker = tmp_path / "killed"
    pids = worker_pids(client)
    client.register_plugin(kill_worker_plugin("_match_partition", marker, after=3))
    try:
        ddf = dd.from_pandas(points, npartitions=10)
        got = pmd.match(index, ddf, max_dist=MAX_DIST, how="left", keep=["point_id"]).compute()
    finally:
        client.unregister_worker_plugin("polymatch-test-kill-once")
    assert marker.exists(), "no worker was killed"
    assert int(marker.read_text()) in pids
    client.wait_for_workers(2, timeout=60)
    assert worker_pids(client) != pids  # the nanny started a new process
    assert got["point_index"].is_unique
    exp = expected(index, points, how="left", keep=["point_id"])
    pd.testing.assert_frame_equal(sort(got), exp)


# ---------------------------------------------------------------------------------------
# match_parquet: one task per file, atomic outputs, reruns skip finished files
# ---------------------------------------------------------------------------------------


@pytest.fixture
def point_files(points, tmp_path) -> list[Path]:
    table = pa.Table.from_pandas(points, preserve_index=False)
    src = tmp_path / "in"
    src.mkdir()
    files = []
    bounds = [0, 3000, 8000, 8001, 14500, len(points)]  # uneven, one file of 1 row
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        path = src / f"part-{i}.parquet"
        pq.write_table(table.slice(a, b - a), path, row_group_size=2000)
        files.append(path)
    return files


def expected_file(index, path: Path, out: Path, **kwargs) -> pa.Table:
    pm.match_parquet(index, path, out, max_dist=MAX_DIST, **kwargs)
    return pq.read_table(out)


def check_outputs(index, files, outs, tmp_path, **kwargs):
    assert [Path(o).name for o in outs] == [f.name for f in files]
    ref = tmp_path / "ref"
    ref.mkdir(exist_ok=True)
    for f, o in zip(files, outs):
        exp = expected_file(index, f, ref / f.name, **kwargs)
        got = pq.read_table(o)
        assert got.equals(exp), f
    leftovers = [p.name for p in Path(outs[0]).parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_match_parquet_and_rerun_skips(client, index, point_files, tmp_path):
    out_dir = tmp_path / "out"
    outs = pmd.match_parquet(
        point_files, index, out_dir, max_dist=MAX_DIST, how="left", keep=["point_id"]
    )
    check_outputs(index, point_files, outs, tmp_path, how="left", keep=["point_id"])
    total = sum(pq.ParquetFile(o).metadata.num_rows for o in outs)
    assert total == sum(pq.ParquetFile(f).metadata.num_rows for f in point_files)

    # a rerun skips every finished output (files untouched)
    stamps = {o: os.stat(o).st_mtime_ns for o in outs}
    again = pmd.match_parquet(
        point_files, index, out_dir, max_dist=MAX_DIST, how="left", keep=["point_id"]
    )
    assert again == outs
    assert {o: os.stat(o).st_mtime_ns for o in outs} == stamps

    # after a failed run: one output missing, one not a valid Parquet file, a stale
    # temporary file from a dead writer; the rerun redoes exactly those two
    Path(outs[1]).unlink()
    Path(outs[3]).write_bytes(b"PAR1 truncated")
    stale = out_dir / f".{Path(outs[1]).name}.polymatch-99999999.tmp"
    stale.write_bytes(b"partial")
    again = pmd.match_parquet(
        point_files, index, out_dir, max_dist=MAX_DIST, how="left", keep=["point_id"]
    )
    assert again == outs
    changed = {o for o in outs if not Path(o).exists() or os.stat(o).st_mtime_ns != stamps[o]}
    assert changed == {outs[1], outs[3]}
    check_outputs(index, point_files, outs, tmp_path, how="left", keep=["point_id"])


RULES = [
    {"rank_by": "polygon_id", "descending": True, "k": 2},
    {"rank_by": "distance", "k": 3},
    {"rank_by": "area", "descending": True},
]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: "-".join(map(str, r.values())))
def test_rank_rules_equal_single_process(client, index, points, point_files, tmp_path, rule):
    """The rank rules through Dask: the order of a rank column is prepared on the client
    and travels in the index bytes; answers equal the single process's."""
    ddf = dd.from_pandas(points, npartitions=4)
    got = pmd.match(index, ddf, max_dist=MAX_DIST, how="left", **rule).compute()
    exp = expected(index, points, how="left", **rule)
    pd.testing.assert_frame_equal(sort(got), exp)  # stable: a point's rows stay in rank order
    outs = pmd.match_parquet(point_files, index, tmp_path / "out", max_dist=MAX_DIST, **rule)
    check_outputs(index, point_files, outs, tmp_path, **rule)
    # another rule is another job: a rerun with a different rule redoes every output
    stamps = {o: os.stat(o).st_mtime_ns for o in outs}
    pmd.match_parquet(point_files, index, tmp_path / "out", max_dist=MAX_DIST, k=4)
    assert all(os.stat(o).st_mtime_ns != stamps[o] for o in outs)


def test_match_parquet_worker_killed(client, index, point_files, tmp_path):
    """A worker dies as it starts its second file; the job still completes, each output
    once and complete, and no temporary file is left behind."""
    marker = tmp_path / "killed"
    client.register_plugin(kill_worker_plugin("_match_file", marker, after=2))
    try:
        outs = pmd.match_parquet(
            point_files, SYNTH / "polygons.parquet", tmp_path / "out", max_dist=MAX_DIST
        )
    finally:
        client.unregister_worker_plugin("polymatch-test-kill-once")
    assert marker.exists(), "no worker was killed"
    client.wait_for_workers(2, timeout=60)
    check_outputs(index, point_files, outs, tmp_path)


def test_match_parquet_directory_glob_and_clashes(client, index, point_files, tmp_path):
    src = point_files[0].parent
    nested = src / "sub"
    nested.mkdir()
    (src / "_SUCCESS").write_bytes(b"")
    os.replace(point_files[4], nested / point_files[4].name)
    files = [*point_files[:4], nested / point_files[4].name]
    outs = pmd.match_parquet(src, index, tmp_path / "by_dir", max_dist=MAX_DIST)
    rel = [Path(o).relative_to(tmp_path / "by_dir").as_posix() for o in outs]
    assert rel == [f"part-{i}.parquet" for i in range(4)] + ["sub/part-4.parquet"]
    for f, o in zip(files, outs):
        exp = expected_file(index, f, tmp_path / "ref.parquet")
        assert pq.read_table(o).equals(exp)

    outs = pmd.match_parquet(str(src / "part-*.parquet"), index, tmp_path / "by_glob")
    assert [Path(o).name for o in outs] == [f"part-{i}.parquet" for i in range(4)]

    (point_files[4]).write_bytes(files[4].read_bytes())  # inputs must exist to clash
    with pytest.raises(ValueError, match="both be written"):
        pmd.match_parquet([files[4], point_files[4]], index, tmp_path / "x")
    with pytest.raises(ValueError, match="overwrite an input"):
        pmd.match_parquet(files[:2], index, src)
    with pytest.raises(FileNotFoundError):
        pmd.match_parquet(str(tmp_path / "nothing-*.parquet"), index, tmp_path / "x")


# ---------------------------------------------------------------------------------------
# threads
# ---------------------------------------------------------------------------------------


def test_threads_default(monkeypatch):
    monkeypatch.delenv("RAYON_NUM_THREADS", raising=False)
    assert pmd._resolve_threads(None) == 1
    assert pmd._resolve_threads(3) == 3
    monkeypatch.setenv("RAYON_NUM_THREADS", "4")
    assert pmd._resolve_threads(None) == 4
    with pytest.raises(ValueError):
        pmd._resolve_threads(0)


# ---------------------------------------------------------------------------------------
# the adversarial cases (test_adversarial.py, docs/hardening.md) through Dask
# ---------------------------------------------------------------------------------------

from test_adversarial import CASES, MAX_DIST_BAD, Raises, left_indices  # noqa: E402

DASK_CASES = [c for c in CASES if c.parquet and len(c.points) > 0]


@pytest.mark.parametrize("case", DASK_CASES, ids=[c.id for c in DASK_CASES])
def test_adversarial_cases(client, case, tmp_path):
    """The same documented outcome as the Python API, from a multi-process cluster:
    polygons as an Arrow table and as a Parquet path, points in 2 partitions."""
    points = dd.from_pandas(case.points.to_pandas(types_mapper=pd.ArrowDtype), npartitions=2)
    path = tmp_path / "polygons.parquet"
    pq.write_table(case.polygons(), path)
    for polygons in (case.polygons(), path):
        if isinstance(case.expect, Raises):
            with pytest.raises(case.expect.error, match=re.escape(case.expect.fragment)):
                pmd.match(polygons, points, case.max_dist, how="left").compute()
            continue
        got = pmd.match(polygons, points, case.max_dist, how="left").compute()
        assert left_indices(pa.Table.from_pandas(got, preserve_index=False)) == case.expect


def test_adversarial_max_dist_refused(client):
    points = dd.from_pandas(pd.DataFrame({"x": [0.5], "y": [0.5]}), npartitions=1)
    index = pm.PolygonIndex.from_coords(np.zeros(3), np.arange(3.0), np.array([0, 3]))
    for max_dist in MAX_DIST_BAD:
        with pytest.raises(ValueError, match="max_dist"):
            pmd.match(index, points, max_dist).compute()


def test_adversarial_broken_files(client, index, point_files, tmp_path):
    """Corrupt and broken files on the cluster: polygons refused before any task runs;
    a corrupt points file fails its task with the error naming it, the good files'
    outputs are complete, and the failed file leaves no output (a rerun after fixing it
    does only that file)."""
    from test_adversarial import CORRUPT, GEO_OK, with_geo

    broken_geo = tmp_path / "broken_geo.parquet"
    pq.write_table(with_geo(json.dumps({**GEO_OK, "primary_column": "geom"})), broken_geo)
    points = dd.from_pandas(pd.DataFrame({"x": [0.5], "y": [0.5]}), npartitions=1)
    for bad in [*CORRUPT, broken_geo]:
        with pytest.raises(pm.PolymatchError) as info:
            pmd.match(bad, points, 1.0)
        assert str(bad) in str(info.value)
    inputs = tmp_path / "mixed_inputs"
    inputs.mkdir()
    for f in point_files[:2]:
        (inputs / f.name).write_bytes(f.read_bytes())
    corrupt = inputs / "zz_corrupt.parquet"
    corrupt.write_bytes(CORRUPT[0].read_bytes())
    out_dir = tmp_path / "out"
    with pytest.raises(pm.PolymatchError, match="corrupt data") as info:
        pmd.match_parquet(str(inputs / "*.parquet"), index, out_dir, max_dist=MAX_DIST)
    assert str(corrupt) in str(info.value)
    assert not (out_dir / "zz_corrupt.parquet").exists()
    assert not list(out_dir.glob(".*tmp"))
    corrupt.unlink()
    outs = pmd.match_parquet(str(inputs / "*.parquet"), index, out_dir, max_dist=MAX_DIST)
    assert len(outs) == 2


# ---------------------------------------------------------------------------------------
# match_parquet: input errors before anything runs, no empty output directory left
# ---------------------------------------------------------------------------------------


def test_match_parquet_missing_input_is_refused_before_any_task(
    client, index, point_files, tmp_path
):
    """A missing input (the README's old placeholder `a.parquet`) is a FileNotFoundError
    naming it, raised on the client: no task runs (the existing file gets no output) and
    no output directory is created."""
    out_dir = tmp_path / "out"
    missing = tmp_path / "a.parquet"
    for points in (
        [point_files[0], missing, tmp_path / "b.parquet"],
        str(missing),
        missing,
    ):
        with pytest.raises(FileNotFoundError) as info:
            pmd.match_parquet(points, index, out_dir, max_dist=MAX_DIST)
        assert info.value.filename == str(missing)
        assert str(missing) in str(info.value)
        assert "rerun" not in "".join(getattr(info.value, "__notes__", []))
        assert not out_dir.exists()
    with pytest.raises(FileNotFoundError) as info:
        pmd.match_parquet([missing, tmp_path / "b.parquet"], index, out_dir)
    assert "1 more points file(s) do not exist" in info.value.__notes__[0]
    with pytest.raises(IsADirectoryError):
        pmd.match_parquet([point_files[0], tmp_path], index, out_dir)
    # polygons that cannot be read: also before anything is created
    with pytest.raises(FileNotFoundError):
        pmd.match_parquet(point_files, tmp_path / "no_polygons.parquet", out_dir)
    assert not out_dir.exists()


def test_match_parquet_failed_job_leaves_no_empty_directory(client, index, tmp_path):
    """Every input fails: the error says nothing of complete outputs, and the output
    directories this call created (nested ones too) are gone; an output directory that
    existed before the call stays."""
    from test_adversarial import CORRUPT

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "bad.parquet").write_bytes(CORRUPT[0].read_bytes())
    (src / "sub" / "bad.parquet").write_bytes(CORRUPT[0].read_bytes())
    out_dir = tmp_path / "out" / "matches"
    with pytest.raises(pm.PolymatchError, match="corrupt data") as info:
        pmd.match_parquet(src, index, out_dir, max_dist=MAX_DIST)
    notes = "".join(getattr(info.value, "__notes__", []))
    assert "1 more input file(s) failed" in notes
    assert "complete" not in notes
    assert not (tmp_path / "out").exists()

    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(pm.PolymatchError, match="corrupt data"):
        pmd.match_parquet([src / "bad.parquet"], index, existing, max_dist=MAX_DIST)
    assert existing.is_dir() and list(existing.iterdir()) == []


def test_match_parquet_partial_failure_says_how_many_are_complete(
    client, index, point_files, tmp_path
):
    from test_adversarial import CORRUPT

    bad = tmp_path / "zz_bad.parquet"
    bad.write_bytes(CORRUPT[0].read_bytes())
    out_dir = tmp_path / "out"
    with pytest.raises(pm.PolymatchError, match="corrupt data") as info:
        pmd.match_parquet([*point_files[:2], bad], index, out_dir, max_dist=MAX_DIST)
    assert info.value.__notes__ == [
        "the other 2 file(s)' outputs are complete; rerun to finish the job"
    ]
    assert sorted(p.name for p in out_dir.iterdir()) == [f.name for f in point_files[:2]]


# ---------------------------------------------------------------------------------------
# CRS: refused as in one process, allowed with allow_crs_mismatch; read_parquet keeps it
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crs_files(tmp_path_factory, points) -> Path:
    """The synthetic polygons as GeoParquet in EPSG:3857 (``polygons.parquet``) and the
    points as GeoParquet point geometries in EPSG:4326, in three files (``points/``)."""
    gpd = pytest.importorskip("geopandas")
    shapely = pytest.importorskip("shapely")
    root = tmp_path_factory.mktemp("crs")
    table = pq.read_table(SYNTH / "polygons.parquet")
    wkb = table["geometry"].to_numpy(zero_copy_only=False)
    polygons = gpd.GeoDataFrame(
        {"polygon_id": table["polygon_id"].to_numpy()},
        geometry=shapely.from_wkb(wkb),
        crs="EPSG:3857",
    )
    polygons.to_parquet(root / "polygons.parquet", index=False)
    located = gpd.GeoDataFrame(
        {"point_id": points["point_id"].to_numpy()},
        geometry=gpd.points_from_xy(points["x"].to_numpy(), points["y"].to_numpy()),
        crs="EPSG:4326",
    )
    (root / "points").mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(located)), 3)):
        located.iloc[rows].to_parquet(root / "points" / f"p{i}.parquet", index=False)
    return root


def crs_points(crs_files: Path) -> pa.Table:
    files = sorted((crs_files / "points").glob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files])


def test_crs_mismatch_broadcast_match(client, crs_files):
    """Points read by pmd.read_parquet carry their GeoParquet CRS: a broadcast index in
    another CRS is refused as one process refuses it, and allow_crs_mismatch=True gives
    the one-process answer."""
    index = pm.read_polygons(crs_files / "polygons.parquet")
    assert index.crs is not None
    one = crs_points(crs_files)
    dpoints = pmd.read_parquet(str(crs_files / "points" / "*.parquet"))
    assert all(isinstance(t, pd.ArrowDtype) for t in dpoints.dtypes)
    with pytest.raises(pm.SchemaError, match="different CRS"):
        index.match(one, max_dist=MAX_DIST)
    with pytest.raises(pm.SchemaError, match="different CRS"):
        pmd.match(index, dpoints, max_dist=MAX_DIST).compute()
    options = {"how": "left", "keep": ["point_id"], "allow_crs_mismatch": True}
    got = pmd.match(index, dpoints, max_dist=MAX_DIST, **options).compute()
    pd.testing.assert_frame_equal(sort(got), expected(index, one, **options))


def test_crs_mismatch_broadcast_match_parquet(client, crs_files, tmp_path):
    """match_parquet (broadcast): refused without the flag, the one-process files with
    it, and the flag is part of the job: a rerun without it is refused, not skipped."""
    index = pm.read_polygons(crs_files / "polygons.parquet")
    files = sorted((crs_files / "points").glob("*.parquet"))
    with pytest.raises(pm.SchemaError, match="different CRS"):
        pm.match_parquet(index, files[0], tmp_path / "one.parquet", max_dist=MAX_DIST)
    with pytest.raises(pm.SchemaError, match="different CRS"):
        pmd.match_parquet(files, index, tmp_path / "refused", max_dist=MAX_DIST)
    options = {"how": "left", "keep": ["point_id"], "allow_crs_mismatch": True}
    outs = pmd.match_parquet(files, index, tmp_path / "out", max_dist=MAX_DIST, **options)
    check_outputs(index, files, outs, tmp_path, **options)
    with pytest.raises(pm.SchemaError, match="different CRS"):
        pmd.match_parquet(
            files, index, tmp_path / "out", max_dist=MAX_DIST, how="left", keep=["point_id"]
        )
