"""Every entry point gives the same answer for the same data (issue 15's confirmed bugs,
each with a regression test through every entry point it touches): which columns are
read, CRS rules, geopandas and other in-memory inputs, empty inputs with kept columns,
kept geometry columns, copies of an index."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_cli import cli

import polymatch as pm

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"

gpd = pytest.importorskip("geopandas")
shapely = pytest.importorskip("shapely")

SQUARES = [shapely.box(0, 0, 2, 2), shapely.box(10, 10, 13, 13), shapely.box(100, 100, 101, 101)]


def wkb(points) -> pa.Array:
    return pa.array([shapely.to_wkb(shapely.Point(p)) for p in points], pa.binary())


@pytest.fixture(scope="module")
def polys(tmp_path_factory) -> tuple[pm.PolygonIndex, Path]:
    table = pa.table({"geometry": pa.array(shapely.to_wkb(SQUARES), pa.binary()), "id": [0, 1, 2]})
    path = tmp_path_factory.mktemp("polys") / "polys.parquet"
    pq.write_table(table, path)
    return pm.PolygonIndex.from_arrow(table), path


def run_everywhere(polys, points: pa.Table, tmp_path: Path, **kw) -> dict[str, list]:
    """polygon_index of every point (how="left") from the Python API, match_parquet and
    the CLI, on the same table."""
    index, poly_path = polys
    src = tmp_path / "pts.parquet"
    pq.write_table(points, src)
    got = {"memory": index.match(points, 5.0, how="left", **kw)["polygon_index"].to_pylist()}
    out = tmp_path / "o.parquet"
    pm.match_parquet(index, src, out, 5.0, how="left", **kw)
    got["match_parquet"] = pq.read_table(out)["polygon_index"].to_pylist()
    cli("match", "--polygons", poly_path, "--points", src, "--out", out, "--how", "left",
        "--max-dist", 5, "--quiet")  # fmt: skip
    got["cli"] = pq.read_table(out)["polygon_index"].to_pylist()
    return got


def test_points_with_xy_and_a_geometry_column_same_everywhere(polys, tmp_path):
    # x/y at (100, 100), an untagged WKB column at (1, 1): x/y wins everywhere (rule 3
    # before rule 4), naming the geometry column makes it win everywhere
    pts = pa.table({"x": [100.5], "y": [100.5], "geometry": wkb([(1, 1)])})
    assert set(map(tuple, run_everywhere(polys, pts, tmp_path).values())) == {(2,)}
    index = polys[0]
    assert index.match(pts, 5.0, geometry="geometry")["polygon_index"].to_pylist() == [0]
    out = tmp_path / "named.parquet"
    pm.match_parquet(index, tmp_path / "pts.parquet", out, 5.0, point_geometry="geometry")
    assert pq.read_table(out)["polygon_index"].to_pylist() == [0]


def test_declared_geometry_wins_over_xy(polys, tmp_path):
    # a GeoDataFrame with x/y attribute columns: its geometry is declared (GeoArrow type in
    # memory, GeoParquet primary column in a file), so it wins everywhere
    gdf = gpd.GeoDataFrame({"x": [100.5], "y": [100.5]}, geometry=[shapely.Point(1, 1)])
    index, poly_path = polys
    assert index.match(gdf, 5.0)["polygon_index"].to_pylist() == [0]
    assert index.match(pa.table(gdf.to_arrow()), 5.0)["polygon_index"].to_pylist() == [0]
    src = tmp_path / "g.parquet"
    gdf.to_parquet(src)
    out = tmp_path / "o.parquet"
    pm.match_parquet(index, src, out, 5.0)
    assert pq.read_table(out)["polygon_index"].to_pylist() == [0]
    cli("match", "--polygons", poly_path, "--points", src, "--out", out, "--max-dist", 5)
    assert pq.read_table(out)["polygon_index"].to_pylist() == [0]
    # and pyarrow reading the GeoParquet file keeps the `geo` metadata: same answer
    assert index.match(pq.read_table(src), 5.0)["polygon_index"].to_pylist() == [0]


def test_two_geoarrow_columns_are_ambiguous():
    idx = pm.PolygonIndex.from_arrow(gpd.GeoDataFrame(geometry=SQUARES))
    a = gpd.GeoDataFrame(geometry=[shapely.Point(1, 1)]).to_arrow()
    t = pa.table(a)
    f = t.schema.field(0)
    other = pa.field("other", f.type, metadata=f.metadata)
    t = t.append_column(other, t.column(0)).replace_schema_metadata(None)
    with pytest.raises(pm.SchemaError, match="geometry, other"):
        idx.match(t, 5.0)
    assert idx.match(t, 5.0, geometry="other")["polygon_index"].to_pylist() == [0]


UTM = "EPSG:32633"


def test_crs_rules_in_memory():
    polys = gpd.GeoDataFrame(geometry=SQUARES, crs=UTM)
    idx = pm.PolygonIndex.from_arrow(polys)
    # unstated on one side: not a conflict
    assert idx.match(pa.table({"x": [1.0], "y": [1.0]}), 5.0).num_rows == 1
    # the same CRS in another spelling
    same = gpd.GeoDataFrame(geometry=[shapely.Point(1, 1)], crs="epsg:32633")
    assert idx.match(same, 5.0).num_rows == 1
    # a real mismatch is refused in memory exactly like from files, unless allowed
    other = gpd.GeoDataFrame(geometry=[shapely.Point(1, 1)], crs="EPSG:3857")
    with pytest.raises(pm.SchemaError, match=r"different CRS \(EPSG:32633 vs EPSG:3857\)"):
        idx.match(other, 5.0)
    with pytest.raises(pm.SchemaError, match="different CRS"):
        pm.match(polys, other, 5.0)
    assert idx.match(other, 5.0, allow_crs_mismatch=True).num_rows == 1
    # edges in GeoArrow metadata are read in memory too: ellipsoidal ones are refused,
    # spherical ones need metric="sphere" (and longitudes/latitudes: not this UTM)
    t = pa.table(polys.to_arrow())
    f = t.schema.field("geometry")
    for edges, error, match in [
        ("karney", pm.SchemaError, "karney"),
        ("spherical", ValueError, 'metric="sphere"'),
    ]:
        meta = dict(f.metadata)
        stated = json.loads(meta.get(b"ARROW:extension:metadata") or b"{}")
        meta[b"ARROW:extension:metadata"] = json.dumps({**stated, "edges": edges}).encode()
        sph = pa.table([t.column("geometry")], schema=pa.schema([f.with_metadata(meta)]))
        with pytest.raises(error, match=match):
            pm.PolygonIndex.from_arrow(sph)
    with pytest.raises(ValueError, match="projected"):
        pm.PolygonIndex.from_arrow(sph, metric="sphere")


def test_crs_rules_with_files(tmp_path):
    polys = gpd.GeoDataFrame(geometry=SQUARES, crs=UTM)
    poly_path = tmp_path / "polys.parquet"
    polys.to_parquet(poly_path)
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"x": [1.0], "y": [1.0]}), plain)
    out = tmp_path / "out.parquet"
    # the most common job: projected GeoParquet polygons + plain x/y points
    for run in (
        lambda: cli("match", "--polygons", poly_path, "--points", plain, "--out", out),
        lambda: pm.match_parquet(poly_path, plain, out),
        lambda: pm.match_parquet(pm.read_polygons(poly_path), plain, out),
    ):
        run()
        meta = json.loads(pq.read_metadata(out).metadata[b"polymatch"])
        assert meta["crs"]["id"] == {"authority": "EPSG", "code": 32633}
    # "crs": null is unknown, not CRS84; a string spelling of the same CRS agrees
    pts = gpd.GeoDataFrame(geometry=[shapely.Point(1, 1)])
    for crs in (None, "EPSG:32633", "urn:ogc:def:crs:EPSG::32633"):
        src = tmp_path / "p.parquet"
        t = pa.table({"geometry": wkb([(1, 1)])})
        geo = {"version": "1.1.0", "primary_column": "geometry",
               "columns": {"geometry": {"encoding": "WKB", "crs": crs}}}  # fmt: skip
        pq.write_table(t.replace_schema_metadata({"geo": json.dumps(geo)}), src)
        assert pm.match_parquet(poly_path, src, out)["matched"] == 1, crs
    # a CRS carried only in a geoarrow.wkb field's extension metadata (pyarrow-written)
    arrow = pa.table(pts.set_crs("EPSG:3857").to_arrow()).replace_schema_metadata(None)
    src = tmp_path / "ext.parquet"
    pq.write_table(arrow, src)
    with pytest.raises(pm.SchemaError, match="different CRS"):
        pm.match_parquet(poly_path, src, out)
    r = cli("match", "--polygons", poly_path, "--points", src, "--out", out, check=False)
    assert r.returncode == 1 and "--allow-crs-mismatch" in r.stderr
    cli("match", "--polygons", poly_path, "--points", src, "--out", out, "--allow-crs-mismatch")
    assert pm.match_parquet(poly_path, src, out, allow_crs_mismatch=True)["matched"] == 1


def test_geopandas_inputs_everywhere():
    polys = gpd.GeoDataFrame({"name": ["a", "b", "c"]}, geometry=SQUARES, index=[7, 8, 9])
    pts = gpd.GeoDataFrame({"id": [5, 6]}, geometry=[shapely.Point(1, 1), shapely.Point(11, 11)],
                           index=["p", "q"])  # fmt: skip
    want = [0, 1]
    idx = pm.PolygonIndex.from_arrow(polys)
    assert idx.match(pts, 5.0)["polygon_index"].to_pylist() == want
    assert idx.match(pts.geometry, 5.0)["polygon_index"].to_pylist() == want
    assert pm.match(polys, pts, 5.0)["polygon_index"].to_pylist() == want
    assert pm.match(polys.geometry, pts, 5.0)["polygon_index"].to_pylist() == want
    assert pm.PolygonIndex.from_arrow(polys.geometry).match(pts, 5.0).num_rows == 2
    # bare arrays: WKB, GeoSeries.to_arrow(), a chunked array
    assert len(pm.PolygonIndex.from_arrow(pa.array(shapely.to_wkb(SQUARES)))) == 3
    assert len(pm.PolygonIndex.from_arrow(polys.geometry.to_arrow())) == 3
    assert idx.match(pts.geometry.to_arrow(), 5.0)["polygon_index"].to_pylist() == want
    assert idx.match(pa.chunked_array([wkb([(1, 1)])]), 5.0).num_rows == 1
    res = idx.match(pts, 5.0, keep="id", keep_polygons="name")
    assert res["id"].to_pylist() == [5, 6] and res["name"].to_pylist() == ["a", "b"]


def test_other_in_memory_inputs():
    pl = pytest.importorskip("polars")
    idx = pm.PolygonIndex.from_arrow(gpd.GeoDataFrame(geometry=SQUARES))
    lazy = pl.DataFrame({"x": [1.0, 11.0], "y": [1.0, 11.0]}).lazy()
    assert idx.match(lazy, 5.0)["polygon_index"].to_pylist() == [0, 1]
    # dictionary-encoded coordinates
    d = pa.table({"x": pa.array([1.0, 11.0]).dictionary_encode(),
                  "y": pa.array([1.0, 11.0]).dictionary_encode()})  # fmt: skip
    assert idx.match(d, 5.0)["polygon_index"].to_pylist() == [0, 1]
    # list_view polygon columns (the article's x/y layout)
    xs = pa.array([[0.0, 2.0, 2.0, 0.0]], pa.list_view(pa.float64()))
    ys = pa.array([[0.0, 0.0, 2.0, 2.0]], pa.list_view(pa.float64()))
    assert pm.PolygonIndex.from_arrow(pa.table({"x": xs, "y": ys})).match(d, 5.0).num_rows == 1
    # from_coords: Python lists and strided numpy arrays
    coords = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]])
    a = pm.PolygonIndex.from_coords(coords[:, 0], coords[:, 1], [0, 4])
    b = pm.PolygonIndex.from_coords([0.0, 2.0, 2.0, 0.0], [0.0, 0.0, 2.0, 2.0], np.array([0, 4]))
    assert a.to_arrow()["area"].to_pylist() == b.to_arrow()["area"].to_pylist() == [4.0]
    with pytest.raises(TypeError, match="integers"):
        pm.PolygonIndex.from_coords([0.0], [0.0], [0.0, 1.0])


def test_empty_points_keep_the_full_schema(polys):
    index = polys[0]
    pts = pa.table({"x": [1.0], "y": [1.0], "id": [3]})
    full = index.match(pts, 5.0, keep=["id"], keep_polygons=["id"])
    for empty in (pts.slice(0, 0), pts.schema.empty_table(), pts.to_pandas().query("id > 99")):
        got = index.match(empty, 5.0, keep=["id"], keep_polygons=["id"])
        assert got.num_rows == 0 and got.schema == full.schema
    assert index.match(pts.slice(0, 0), 5.0, keep_polygons="id").column_names[-1] == "id"
    assert full.column_names[-2:] == ["id_left", "id_right"]


def test_kept_geometry_columns_are_described(polys, tmp_path):
    _, poly_path = polys
    gdf = gpd.GeoDataFrame({"pid": [1, 2]}, geometry=[shapely.Point(1, 1), shapely.Point(11, 11)])
    src = tmp_path / "pts.parquet"
    gdf.to_parquet(src)
    out = tmp_path / "o.parquet"
    cli("match", "--polygons", poly_path, "--points", src, "--out", out, "--max-dist", 5,
        "--keep", "pid, geometry", "--keep-polygons", "geometry,id")  # fmt: skip
    back = gpd.read_parquet(out)
    assert list(back.columns) == ["point_index", "polygon_index", "distance", "area", "pid",
                                  "geometry_left", "geometry_right", "id"]  # fmt: skip
    assert back.geometry.name == "geometry_left"
    assert back["geometry_left"].geom_equals(gdf.geometry).all()
    right = gpd.GeoSeries.from_wkb(pq.read_table(out)["geometry_right"].to_pylist())
    assert right.geom_equals(gpd.GeoSeries(SQUARES[:2])).all()
    # polygon geometry alone (no point geometry kept) is the primary column
    cli("match", "--polygons", poly_path, "--points", src, "--out", out, "--max-dist", 5,
        "--keep-polygons", "geometry")  # fmt: skip
    assert gpd.read_parquet(out).geometry.name == "geometry"
    # in memory the result carries the same `geo` metadata: pq.write_table makes GeoParquet
    res = pm.read_polygons(poly_path).match(gdf, 5.0, keep_polygons=["geometry"])
    pq.write_table(res, tmp_path / "mem.parquet")
    assert gpd.read_parquet(tmp_path / "mem.parquet").geometry.name == "geometry"


def test_read_polygons_keeps_every_column_like_from_arrow(polys):
    _, path = polys
    idx = pm.read_polygons(path)
    res = idx.match(pa.table({"x": [1.0], "y": [1.0]}), 5.0, keep_polygons=["id"])
    assert res["id"].to_pylist() == [0]
    with pytest.raises(pm.SchemaError, match="no attribute columns|missing column"):
        pm.read_polygons(path, keep=[]).match(pa.table({"x": [1.0], "y": [1.0]}),
                                              keep_polygons=["id"])  # fmt: skip


def test_pickle_and_bytes_keep_the_crs():
    import pickle

    idx = pm.PolygonIndex.from_arrow(gpd.GeoDataFrame(geometry=SQUARES, crs="EPSG:32633"))
    assert idx.crs["id"] == {"authority": "EPSG", "code": 32633}
    back = pickle.loads(pickle.dumps(idx))
    assert back.crs == idx.crs
    other = gpd.GeoDataFrame(geometry=[shapely.Point(1, 1)], crs="EPSG:3857")
    with pytest.raises(pm.SchemaError, match="different CRS"):
        back.match(other, 5.0)
    assert pm.PolygonIndex.from_bytes(idx.to_bytes(), crs="EPSG:32633").crs == "EPSG:32633"
    assert pm.PolygonIndex.from_bytes(idx.to_bytes()).crs is None


def test_copies_keep_everything(polys):
    index = polys[0]
    for c in (copy.copy(index), copy.deepcopy(index)):
        assert c is index
        assert c.match(pa.table({"x": [1.0], "y": [1.0]}), 5.0, keep_polygons=["id"]).num_rows == 1


def test_argument_edges(polys):
    index = polys[0]
    pts = pa.table({"x": [1.0], "y": [1.0], "id": [4]})
    assert index.match(pts, 5.0, keep="id")["id"].to_pylist() == [4]
    for bad in (-1, 0, 100_000):
        with pytest.raises(ValueError, match="threads must be"):
            index.match(pts, 5.0, threads=bad)
    with pytest.raises(TypeError, match="column name"):
        index.match(pts, 5.0, keep=3)
    doc = pm.PolygonIndex.match.__doc__
    for arg in ("max_dist", "how", "all_candidates", "keep_polygons", "allow_crs_mismatch",
                "threads", "chunk_size", "Returns", "Raises"):  # fmt: skip
        assert arg in doc, arg


def test_cli_column_lists_and_output_directory(polys, tmp_path):
    _, poly_path = polys
    src = tmp_path / "pts.parquet"
    pq.write_table(pa.table({"x": [1.0], "y": [1.0], "id": [4]}), src)
    out = tmp_path / "o.parquet"
    cli("match", "--polygons", poly_path, "--points", src, "--out", out, "--keep", " id ,",
        "--keep-polygons", "")  # fmt: skip
    assert pq.read_table(out).column_names[-1] == "id"
    r = cli("match", "--polygons", poly_path, "--points", src, "--out",
            tmp_path / "nope" / "o.parquet", check=False)  # fmt: skip
    assert r.returncode == 1 and "output directory" in r.stderr, r.stderr
    assert not (tmp_path / "nope").exists()


GEOARROW_ROUND_TRIP = """
import geoarrow.pyarrow as ga, pyarrow as pa, polymatch as pm
square = [(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0)]
index = pm.PolygonIndex.from_coords(
    [x for x, _ in square], [y for _, y in square], [0, 4]
)
table = index.to_arrow()  # raised once geoarrow-pyarrow's types were registered
assert isinstance(table["geometry"].type, pa.ExtensionType), table.schema
again = pm.PolygonIndex.from_arrow(table)
assert again.match(pa.table({"x": [1.0], "y": [1.0]}), max_dist=5.0).num_rows == 1
print("ok")
"""


def test_derived_columns_with_geoarrow_pyarrow_registered():
    """With geoarrow-pyarrow imported (SedonaDB imports it), its extension types read
    ``to_arrow``'s GeoArrow geometry (List offsets), and polymatch reads theirs back. In a
    subprocess: registering the types changes how every later Arrow read behaves."""
    pytest.importorskip("geoarrow.pyarrow")
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", GEOARROW_ROUND_TRIP], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
