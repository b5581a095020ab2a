"""One front door (issue 29): what every entry point shares is decided once, so the CLI,
`pm.match_parquet`, `PolygonIndex.match` and both Dask paths agree on row numbers in
errors, on the metadata of the files they write, on CRS spellings, and on which input
a bad rank column is blamed on. Each defect the copies caused has its regression test
here, through every entry point it touched."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import polymatch as pm
from polymatch._core import resolve_columns, same_crs, write_results

from conftest import local_cluster, wkb_point, wkb_polygon

pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import dask.dataframe as dd  # noqa: E402

import polymatch.dask as pmd  # noqa: E402

BAD_ROW = 237
N_POINTS = 400
LINESTRING = bytes([1]) + (2).to_bytes(4, "little") + (2).to_bytes(4, "little") + b"\0" * 32


@pytest.fixture(scope="module")
def client():
    with local_cluster(allowed_failures=0) as c:
        yield c


def squares(n: int = 50) -> pa.Table:
    """``n`` unit squares along the diagonal, WKB, with a ``pid`` and a ``name``."""
    geoms = [
        wkb_polygon([(i, i), (i + 1.0, i), (i + 1.0, i + 1.0), (i, i + 1.0)]) for i in range(n)
    ]
    return pa.table(
        {
            "geometry": pa.array(geoms, pa.binary()),
            "pid": pa.array(range(n), pa.int64()),
            "name": [f"p{i}" for i in range(n)],
        }
    )


def geoparquet(table: pa.Table, path: Path, crs, types: list[str]) -> Path:
    geo = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "WKB", "geometry_types": types, "crs": crs}},
    }
    pq.write_table(table.replace_schema_metadata({"geo": json.dumps(geo)}), path)
    return path


def points_with_a_linestring() -> pa.Table:
    """WKB points along the diagonal, a LineString at row ``BAD_ROW``."""
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 50, N_POINTS)
    geoms = [wkb_point(v + 0.25, v + 0.5) for v in xy]
    geoms[BAD_ROW] = LINESTRING
    return pa.table({"geometry": pa.array(geoms, pa.binary()), "id": range(N_POINTS)})


# --- 1. one CRS in two spellings ---------------------------------------------------------


def test_same_crs_is_the_core_rule():
    projjson = {"type": "ProjectedCRS", "id": {"authority": "EPSG", "code": 32633}}
    assert same_crs("EPSG:32633", "urn:ogc:def:crs:EPSG::32633")
    assert same_crs("EPSG:32633", projjson)
    assert same_crs("EPSG:4326", {"id": {"authority": "EPSG", "code": 4326}})
    assert not same_crs("EPSG:32633", "EPSG:32634")
    assert same_crs(None, "EPSG:32633")  # unstated never conflicts


@pytest.mark.parametrize(
    "spellings",
    [
        ("EPSG:32633", "urn:ogc:def:crs:EPSG::32633"),
        ("EPSG:4326", {"type": "GeographicCRS", "id": {"authority": "EPSG", "code": 4326}}),
    ],
)
def test_partitioned_dask_accepts_one_crs_in_two_spellings(client, tmp_path, spellings):
    table = squares()
    files = [
        geoparquet(table.slice(0, 25), tmp_path / "a.parquet", spellings[0], ["Polygon"]),
        geoparquet(table.slice(25), tmp_path / "b.parquet", spellings[1], ["Polygon"]),
    ]
    points = pd_points()
    got = pmd.match(files, dd.from_pandas(points, npartitions=3), max_dist=1.0).compute()
    one = pm.match(table, pa.Table.from_pandas(points), max_dist=1.0)
    assert len(one) > 0
    assert got["point_index"].tolist() == one["point_index"].to_pylist()
    assert got["polygon_index"].tolist() == one["polygon_index"].to_pylist()


def pd_points():
    xy = np.arange(0.5, 50.0, 0.5)
    return pd.DataFrame({"x": xy, "y": xy})


# --- 2, 3. rows of bad points are rows of the whole input ----------------------------------


def _row_of(err: BaseException) -> int:
    assert getattr(err, "row", None) == BAD_ROW, (getattr(err, "row", None), str(err))
    assert f"row {BAD_ROW}" in str(err), str(err)
    assert f"row {BAD_ROW - 200}" not in str(err) and f"row {BAD_ROW % 100}" not in str(err)
    return err.row


def test_bad_point_row_in_memory_batches():
    index = pm.PolygonIndex.from_arrow(squares())
    batches = points_with_a_linestring().to_batches(max_chunksize=100)
    with pytest.raises(pm.SchemaError) as e:
        index.match(pa.Table.from_batches(batches), max_dist=1.0)
    _row_of(e.value)


def test_bad_point_row_in_files_cli_and_match_parquet(tmp_path):
    polygons = geoparquet(squares(), tmp_path / "polygons.parquet", None, ["Polygon"])
    points = tmp_path / "points.parquet"
    pq.write_table(points_with_a_linestring(), points)
    with pytest.raises(pm.SchemaError) as e:
        pm.match_parquet(polygons, points, tmp_path / "out.parquet", max_dist=1.0, batch_rows=100)
    _row_of(e.value)
    r = subprocess.run(
        [sys.executable, "-m", "polymatch", "match", "--polygons", polygons, "--points", points,
         "--out", tmp_path / "cli.parquet", "--max-dist", "1", "--batch-rows", "100"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 1
    assert f"(row {BAD_ROW})" in r.stderr and "(row 37)" not in r.stderr, r.stderr


@pytest.mark.parametrize("polygons_as", ["broadcast", "partitioned"])
def test_bad_point_row_on_dask_is_the_global_row(client, tmp_path, polygons_as):
    table = squares()
    polygons = (
        table
        if polygons_as == "broadcast"
        else [geoparquet(table, tmp_path / "p.parquet", None, ["Polygon"])]
    )
    frame = points_with_a_linestring().to_pandas(types_mapper=pd.ArrowDtype)
    points = dd.from_pandas(frame, npartitions=4)  # 100 rows each: row 237 is row 37 of #2
    with pytest.raises(pm.SchemaError) as e:
        pmd.match(polygons, points, max_dist=1.0, geometry="geometry").compute()
    _row_of(e.value)
    # per-partition numbering says so
    with pytest.raises(pm.SchemaError) as e:
        pmd.match(
            polygons, points, max_dist=1.0, geometry="geometry", point_index="partition"
        ).compute()
    assert "row 37" in str(e.value) and "points partition 2" in "\n".join(e.value.__notes__)
    # match_parquet: rows of the file
    src = tmp_path / "in"
    src.mkdir()
    pq.write_table(points_with_a_linestring(), src / "points.parquet", row_group_size=100)
    with pytest.raises(pm.SchemaError) as e:
        pmd.match_parquet(
            src, polygons, tmp_path / "out", max_dist=1.0, batch_rows=100, geometry="geometry"
        )
    _row_of(e.value)


# --- 4, 5. every output file: the same metadata, visible to pyarrow ---------------------


def _job_options(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if k not in ("job", "polygons", "points")}


def test_outputs_state_their_metadata_in_the_arrow_schema(tmp_path):
    gpd = pytest.importorskip("geopandas")
    polygons = geoparquet(squares(), tmp_path / "polygons.parquet", "EPSG:32633", ["Polygon"])
    points = tmp_path / "points.parquet"
    pq.write_table(
        pa.table({"x": [0.5, 3.5, 70.0], "y": [0.5, 3.5, 70.0], "id": [1, 2, 3]}), points
    )
    outs = [tmp_path / "api.parquet", tmp_path / "cli.parquet"]
    pm.match_parquet(polygons, points, outs[0], max_dist=1.0, how="left",
                     keep_polygons=["geometry", "pid"])  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "polymatch", "match", "--polygons", polygons, "--points", points,
         "--out", outs[1], "--max-dist", "1", "--how", "left", "--keep-polygons", "geometry,pid",
         "--quiet"],
        check=True,
    )  # fmt: skip
    for out in outs:
        schema = pq.read_table(out).schema
        assert schema.metadata is not None, out
        record = json.loads(schema.metadata[b"polymatch"])
        assert record["crs"] == "EPSG:32633" and record["how"] == "left"
        geo = json.loads(schema.metadata[b"geo"])
        assert geo["columns"]["geometry"]["geometry_types"] == ["Polygon"]
        copy = tmp_path / f"copy-{out.name}"
        pq.write_table(pq.read_table(out), copy)
        frame = gpd.read_parquet(copy)
        assert frame.crs.to_epsg() == 32633 and len(frame) == 3


def test_partitioned_outputs_carry_what_one_process_records(client, tmp_path):
    table = squares()
    files = [
        geoparquet(table.slice(0, 25), tmp_path / "a.parquet", "EPSG:32633", ["Polygon"]),
        geoparquet(table.slice(25), tmp_path / "b.parquet", "EPSG:32633", ["Polygon"]),
    ]
    src = tmp_path / "in"
    src.mkdir()
    xy = np.arange(0.5, 50.0, 0.5)
    pq.write_table(pa.table({"x": xy, "y": xy, "id": range(len(xy))}), src / "pts.parquet")
    opts = dict(max_dist=1.0, how="left", keep=["id"], keep_polygons=["geometry", "pid"])
    [tiled] = pmd.match_parquet(src, files, tmp_path / "tiled", **opts)
    whole = pa.concat_tables([pq.read_table(f) for f in files])
    [broadcast] = pmd.match_parquet(src, whole, tmp_path / "broadcast", **opts)
    a, b = pq.read_table(tiled), pq.read_table(broadcast)
    assert a.equals(b)
    ra, rb = (json.loads(t.schema.metadata[b"polymatch"]) for t in (a, b))
    assert _job_options(ra) == _job_options(rb)
    assert ra["crs"] == "EPSG:32633" and ra["keep_polygons"] == ["geometry", "pid"]
    ga, gb = (json.loads(t.schema.metadata[b"geo"]) for t in (a, b))
    assert ga["columns"]["geometry"]["geometry_types"] == ["Polygon"]
    assert ga == gb


def test_write_results_checks_options_and_leaves_nothing_on_error(tmp_path):
    result = pm.match(squares(), pa.table({"x": [0.5], "y": [0.5]}), max_dist=1.0)
    with pytest.raises(ValueError, match="max_dist"):
        write_results(result, tmp_path / "out.parquet", max_dist=-1.0)
    with pytest.raises(FileNotFoundError):
        write_results(result, tmp_path / "missing" / "out.parquet", max_dist=1.0)
    assert list(tmp_path.iterdir()) == []


# --- 6. a bad rank column is the polygons' ----------------------------------------------


def test_bad_rank_column_is_blamed_on_the_polygons(tmp_path):
    polygons = geoparquet(squares(), tmp_path / "polygons.parquet", None, ["Polygon"])
    points = tmp_path / "points.parquet"
    pq.write_table(pa.table({"x": [0.5], "y": [0.5]}), points)
    for rank_by, words in [("name", "Utf8"), ("nope", "missing column")]:
        with pytest.raises(pm.SchemaError) as e:
            pm.match_parquet(polygons, points, tmp_path / "o.parquet", rank_by=rank_by)
        msg = str(e.value)
        assert msg.startswith(str(polygons)) and words in msg, msg
        assert "points.parquet" not in msg, msg
        r = subprocess.run(
            [sys.executable, "-m", "polymatch", "match", "--polygons", polygons,
             "--points", points, "--out", tmp_path / "c.parquet", "--rank-by", rank_by],
            capture_output=True, text=True,
        )  # fmt: skip
        assert r.returncode == 1 and str(polygons) in r.stderr and words in r.stderr, r.stderr
        assert "points.parquet" not in r.stderr, r.stderr
    index = pm.PolygonIndex.from_arrow(squares())
    with pytest.raises(pm.SchemaError, match="numeric polygon column"):
        index.match(pa.table({"x": [0.5], "y": [0.5]}), rank_by="name")


# --- 7. decimal256 ranks ------------------------------------------------------------------


def test_decimal256_ranks_like_decimal128():
    table = squares(6).select(["geometry"])
    values = [Decimal("3.5"), None, Decimal("-2.25"), Decimal("3.5"), Decimal("10"), Decimal("0")]
    big = [Decimal(10) ** 60 * v if v is not None else None for v in values]
    points = pa.table({"x": [3.0], "y": [3.0]})  # every square within reach
    for descending in (False, True):
        want = pm.match(
            table.append_column("r", pa.array(values, pa.decimal128(20, 2))), points,
            max_dist=100.0, rank_by="r", descending=descending, k=6,
        )  # fmt: skip
        for column in (pa.array(values, pa.decimal256(40, 2)), pa.array(big, pa.decimal256(76, 2))):
            got = pm.match(
                table.append_column("r", column), points,
                max_dist=100.0, rank_by="r", descending=descending, k=6,
            )  # fmt: skip
            assert got["polygon_index"].to_pylist() == want["polygon_index"].to_pylist()


# --- columns once -------------------------------------------------------------------------


def test_resolve_columns_is_the_rule_of_every_entry_point():
    schema = pa.schema([("x", pa.float64()), ("y", pa.float64()), ("geometry", pa.binary())])
    assert resolve_columns(schema) == (["x", "y"], None)
    assert resolve_columns(schema, geometry="geometry") == (["geometry"], None)
    geo = {"version": "1.1.0", "primary_column": "geometry",
           "columns": {"geometry": {"encoding": "WKB", "crs": "EPSG:32633"}}}  # fmt: skip
    declared = schema.with_metadata({"geo": json.dumps(geo)})
    assert resolve_columns(declared) == (["geometry"], "EPSG:32633")
    with pytest.raises(pm.SchemaError, match="lon"):
        resolve_columns(schema, x="lon")
    with pytest.raises(ValueError, match="role"):
        resolve_columns(schema, "lines")
