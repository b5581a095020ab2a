"""Dask entry points agree with the single-process ones (issue 15): reruns of
`match_parquet` redo outputs of another job, and the column rule is the same."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("distributed")

import dask.dataframe as dd  # noqa: E402
import pandas as pd  # noqa: E402
from test_dask import MAX_DIST, client, index, point_files, points  # noqa: E402, F401

import polymatch as pm  # noqa: E402
import polymatch.dask as pmd  # noqa: E402


def _job(path) -> str:
    return json.loads(pq.read_metadata(path).metadata[b"polymatch"])["job"]


def test_rerun_redoes_outputs_of_another_job(client, index, point_files, tmp_path):  # noqa: F811
    out_dir = tmp_path / "out"
    files = point_files[:2]
    outs = pmd.match_parquet(files, index, out_dir, max_dist=MAX_DIST)
    jobs = [_job(o) for o in outs]
    stamps = [os.stat(o).st_mtime_ns for o in outs]
    # the identical job skips
    assert pmd.match_parquet(files, index, out_dir, max_dist=MAX_DIST) == outs
    assert [os.stat(o).st_mtime_ns for o in outs] == stamps

    def check(**kwargs):
        for f, o in zip(files, outs):
            ref = tmp_path / "ref.parquet"
            pm.match_parquet(index, f, ref, **kwargs)
            assert pq.read_table(o).equals(pq.read_table(ref)), kwargs

    # another max_dist, other kept columns, another index: every output is redone
    pmd.match_parquet(files, index, out_dir, max_dist=MAX_DIST / 2)
    check(max_dist=MAX_DIST / 2)
    assert all(_job(o) != j for o, j in zip(outs, jobs))
    pmd.match_parquet(files, index, out_dir, max_dist=MAX_DIST / 2, keep=["point_id"])
    check(max_dist=MAX_DIST / 2, keep=["point_id"])
    small = pm.PolygonIndex.from_arrow(index.to_arrow().slice(0, 100))
    pmd.match_parquet(files, small, out_dir, max_dist=MAX_DIST / 2, keep=["point_id"])
    for f, o in zip(files, outs):
        ref = tmp_path / "ref.parquet"
        pm.match_parquet(small, f, ref, max_dist=MAX_DIST / 2, keep=["point_id"])
        assert pq.read_table(o).equals(pq.read_table(ref))
    # a changed input is a different job too
    table = pq.read_table(files[0]).slice(0, 10)
    pq.write_table(table, files[0])
    pmd.match_parquet(files, small, out_dir, max_dist=MAX_DIST / 2, keep=["point_id"])
    assert pq.read_metadata(outs[0]).num_rows <= 10


def test_dask_match_uses_the_same_column_rule(client, index):  # noqa: F811
    shapely = pytest.importorskip("shapely")
    # x/y far away, an untagged WKB column near polygon centers: x/y wins, as in memory
    centers = index.to_arrow().slice(0, 50)
    cx, cy = centers["center_x"].to_numpy(), centers["center_y"].to_numpy()
    wkb = [shapely.to_wkb(shapely.Point(a, b)) for a, b in zip(cx, cy)]
    df = pd.DataFrame(
        {
            "x": cx + 1000.0,
            "y": cy + 1000.0,
            "geometry": pd.array(wkb, dtype=pd.ArrowDtype(pa.binary())),
        }
    )
    want = index.match(pa.Table.from_pandas(df, preserve_index=False), MAX_DIST, how="left")
    assert want["polygon_index"].null_count == 50
    got = pmd.match(index, dd.from_pandas(df, npartitions=3), MAX_DIST, how="left").compute()
    assert got["polygon_index"].isna().all() and len(got) == 50
    named = pmd.match(index, dd.from_pandas(df, npartitions=3), MAX_DIST, geometry="geometry")
    assert len(named.compute()) == 50


def test_dask_checks_crs_on_the_workers(client, tmp_path):  # noqa: F811
    gpd = pytest.importorskip("geopandas")
    shapely = pytest.importorskip("shapely")
    polys = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 2, 2)], crs="EPSG:32633")
    utm_index = pm.PolygonIndex.from_arrow(polys)
    pts = gpd.GeoDataFrame(geometry=[shapely.Point(1, 1)])
    same, other = tmp_path / "same.parquet", tmp_path / "other.parquet"
    pts.set_crs("EPSG:32633").to_parquet(same)
    pts.set_crs("EPSG:3857").to_parquet(other)
    outs = pmd.match_parquet([same], utm_index, tmp_path / "out", max_dist=5.0)
    assert pq.read_table(outs[0]).num_rows == 1
    with pytest.raises(pm.SchemaError, match="different CRS"):
        pmd.match_parquet([other], utm_index, tmp_path / "out2", max_dist=5.0)
