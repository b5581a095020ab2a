"""The Parquet batch job: the `polymatch` CLI (as installed with the Python package, the
same code as the Rust binary) and `pm.match_parquet`, on real (Geo)Parquet files."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import polymatch as pm

from conftest import exact_area, exact_center, oracle_match

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"


def cli(*args, check=True):
    r = subprocess.run(
        [sys.executable, "-m", "polymatch", *map(str, args)], capture_output=True, text=True
    )
    if check:
        assert r.returncode == 0, r.stderr
    return r


def read_csv(path: Path) -> pa.Table:
    lines = path.read_text().splitlines()
    names = lines[0].split(",")
    cols = list(zip(*(line.split(",") for line in lines[1:]))) or [[] for _ in names]
    out = {}
    for name, values in zip(names, cols):
        parse = float if name in ("distance", "area") else int
        out[name] = [None if v == "" else parse(v) for v in values]
    return pa.table(out)


def same(table: pa.Table, expected: pa.Table) -> None:
    assert table.column_names == expected.column_names
    for name in table.column_names:
        assert table[name].to_pylist() == expected[name].to_pylist(), name


# metric="sphere" (sample_data/make_golden.py): the bits of the pinned libm
GPS = ["--metric", "sphere", "--max-dist", "1000", "--rank-by", "distance", "--k", "2",
       "--how", "left", "--keep", "fix_id", "--keep-polygons", "zone_id"]  # fmt: skip
GPS_OUTLINE = ["--metric", "sphere", "--predicate", "dwithin", "--max-dist", "200",
               "--rank-by", "distance", "--k", "2", "--how", "left", "--keep", "fix_id",
               "--keep-polygons", "zone_id"]  # fmt: skip
GPS_ARCS = ["--metric", "sphere", "--predicate", "covers", "--how", "left", "--keep",
            "fix_id", "--keep-polygons", "zone_id"]  # fmt: skip

GOLDEN = [
    ("article_matches", "article/polygons.parquet", "article/points.parquet", []),
    ("article_matches", "article/polygons_xy.parquet", "article/points.parquet", []),
    ("article_left", "article/polygons.parquet", "article/points.parquet", ["--how", "left"]),
    (
        "article_all_candidates",
        "article/polygons.parquet",
        "article/points.parquet",
        ["--all-candidates"],
    ),
    (
        "synthetic_matches",
        "synthetic/polygons.parquet",
        "synthetic/points.parquet",
        ["--how", "left", "--keep", "point_id", "--keep-polygons", "polygon_id"],
    ),
    ("gps_matches", "gps/zones.parquet", "gps/fixes.parquet", GPS),
    ("gps_outline_matches", "gps/zones.parquet", "gps/fixes.parquet", GPS_OUTLINE),
    ("gps_zone_arcs_matches", "gps/zones_arcs.parquet", "gps/fixes.parquet", GPS_ARCS),
]


@pytest.mark.parametrize(("name", "polygons", "points", "extra"), GOLDEN)
def test_golden_files(tmp_path, name, polygons, points, extra):
    out = tmp_path / "out.parquet"
    r = cli("match", "--polygons", SAMPLE / polygons, "--points", SAMPLE / points, "--out", out,
            *extra)  # fmt: skip
    assert "points" in r.stderr and "matched" in r.stderr  # the one-line summary
    same(pq.read_table(out), read_csv(SAMPLE / "expected" / f"{name}.csv"))


def test_article_golden_is_the_exact_answer(article):
    rings, points = article
    centers = [exact_center(x, y) for x, y in rings]
    areas = [exact_area(x, y) for x, y in rings]
    want = oracle_match(centers, areas, points, 10.0)
    got = read_csv(SAMPLE / "expected" / "article_matches.csv")
    assert got["polygon_index"].to_pylist() == want


def test_batch_size_and_threads_do_not_change_the_answer(tmp_path):
    expected = read_csv(SAMPLE / "expected" / "synthetic_matches.csv")
    for extra in (["--batch-rows", "777", "--threads", "1"], ["--batch-rows", "5000000"]):
        out = tmp_path / "out.parquet"
        cli("match", "--polygons", SAMPLE / "synthetic/polygons.parquet", "--points",
            SAMPLE / "synthetic/points.parquet", "--out", out, "--how", "left", "--keep",
            "point_id", "--keep-polygons", "polygon_id", "--quiet", *extra)  # fmt: skip
        same(pq.read_table(out), expected)


def test_match_parquet_python_api_same_path(tmp_path):
    out = tmp_path / "o.parquet"
    summary = pm.match_parquet(
        SAMPLE / "article/polygons.parquet", SAMPLE / "article/points.parquet", out
    )
    assert summary == {"points": 100, "matched": 100, "rows_written": 100}
    same(pq.read_table(out), read_csv(SAMPLE / "expected" / "article_matches.csv"))
    index = pm.read_polygons(SAMPLE / "article/polygons.parquet", keep=["polygon_id"])
    assert len(index) == 1000
    pm.match_parquet(index, SAMPLE / "article/points.parquet", out, keep_polygons=["polygon_id"])
    t = pq.read_table(out)
    assert t["polygon_id"].to_pylist() == t["polygon_index"].to_pylist()
    meta = json.loads(pq.read_metadata(out).metadata[b"polymatch"])
    assert meta["max_dist"] == 10.0


def test_generate_is_deterministic_and_info(tmp_path):
    for d in ("a", "b"):
        cli("generate", "--polygons", 300, "--points", 1000, "--seed", 3, "--out-dir", tmp_path / d)
    for f in ("polygons.parquet", "points.parquet"):
        assert pq.read_table(tmp_path / "a" / f).equals(pq.read_table(tmp_path / "b" / f))
    info = cli("info", tmp_path / "a" / "polygons.parquet").stdout
    assert "rows:        300" in info and "GeoParquet WKB" in info and "bbox:" in info
    info = cli("info", tmp_path / "a" / "points.parquet").stdout
    assert "x, y" in info
    clustered = tmp_path / "c"
    cli("generate", "--polygons", 3000, "--points", 100, "--clustered", "--out-dir", clustered)
    assert pq.read_table(clustered / "polygons.parquet").num_rows == 3000


# --- files written by other tools --------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_points():
    return pq.read_table(SAMPLE / "synthetic/points.parquet")


def _in_memory(polygons_table, points, **kw):
    return pm.PolygonIndex.from_arrow(polygons_table).match(points, how="left", **kw)


def test_geopandas_wkb_and_geoarrow(tmp_path, synthetic_points):
    gpd = pytest.importorskip("geopandas")
    shapely = pytest.importorskip("shapely")
    polys = pq.read_table(SAMPLE / "synthetic/polygons.parquet")
    geoms = shapely.from_wkb(polys["geometry"].to_numpy(zero_copy_only=False))
    gdf = gpd.GeoDataFrame({"polygon_id": polys["polygon_id"].to_numpy()}, geometry=geoms)
    want = _in_memory(polys, synthetic_points)
    pts = gpd.GeoDataFrame(
        {"point_id": synthetic_points["point_id"].to_numpy()},
        geometry=gpd.points_from_xy(synthetic_points["x"], synthetic_points["y"]),
    )
    for encoding in ("WKB", "geoarrow"):
        p_path, q_path = tmp_path / f"p_{encoding}.parquet", tmp_path / f"q_{encoding}.parquet"
        gdf.to_parquet(p_path, geometry_encoding=encoding)
        pts.to_parquet(q_path, geometry_encoding=encoding)
        out = tmp_path / "out.parquet"
        cli("match", "--polygons", p_path, "--points", q_path, "--out", out, "--how", "left")
        got = pq.read_table(out)
        assert got["polygon_index"].to_pylist() == want["polygon_index"].to_pylist()
        assert got["distance"].to_pylist() == want["distance"].to_pylist()
    # geopandas in memory, through pm.match
    res = pm.match(gdf, synthetic_points, how="left")
    assert res["polygon_index"].to_pylist() == want["polygon_index"].to_pylist()


def test_polars_large_list_and_duckdb(tmp_path, synthetic_points):
    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    xy = pq.read_table(SAMPLE / "article/polygons_xy.parquet")
    want = _in_memory(xy, pq.read_table(SAMPLE / "article/points.parquet"))
    p_path = tmp_path / "polars.parquet"
    pl.from_arrow(xy).write_parquet(p_path)  # LargeList columns
    assert pa.types.is_large_list(pq.read_schema(p_path).field("x").type)
    d_path = tmp_path / "duckdb_points.parquet"
    con = duckdb.connect()
    src = SAMPLE / "article/points.parquet"
    con.execute(f"COPY (SELECT point_id, x, y FROM '{src}') TO '{d_path}' (FORMAT PARQUET)")
    out = tmp_path / "out.parquet"
    cli("match", "--polygons", p_path, "--points", d_path, "--out", out, "--how", "left")
    got = pq.read_table(out)
    assert got["polygon_index"].to_pylist() == want["polygon_index"].to_pylist()


def test_nulls_documented_behaviour(tmp_path):
    square = pa.array([[0.0, 1.0, 1.0, 0.0], None, [5.0, 6.0, 6.0, 5.0]], pa.list_(pa.float64()))
    ys = pa.array([[0.0, 0.0, 1.0, 1.0], None, [5.0, 5.0, 6.0, 6.0]], pa.list_(pa.float64()))
    pq.write_table(pa.table({"x": square, "y": ys}), tmp_path / "p.parquet")
    pts = pa.table({"x": [0.5, None, 5.5, math.nan], "y": [0.5, 1.0, 5.5, 0.0]})
    pq.write_table(pts, tmp_path / "q.parquet")
    out = tmp_path / "o.parquet"
    cli("match", "--polygons", tmp_path / "p.parquet", "--points", tmp_path / "q.parquet",
        "--out", out, "--how", "left", "--max-dist", 2)  # fmt: skip
    # the null polygon (row 1) is skipped; null and NaN points are unmatched
    assert pq.read_table(out)["polygon_index"].to_pylist() == [0, None, 2, None]


# --- bad input: one line naming the file, exit 1 (2 for usage), nothing written ----------


def _fails(tmp_path, *args, code=1, match=""):
    out = tmp_path / "out.parquet"
    r = cli("match", *args, "--out", out, check=False)
    assert r.returncode == code, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("polymatch: error:"), r.stderr
    assert match in lines[0], lines[0]
    assert "Traceback" not in r.stderr and "panicked" not in r.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".out.parquet*"))  # no temporary left behind
    return lines[0]


def test_bad_inputs(tmp_path):
    good_p, good_q = SAMPLE / "article/polygons.parquet", SAMPLE / "article/points.parquet"
    missing = tmp_path / "missing.parquet"
    _fails(tmp_path, "--polygons", missing, "--points", good_q, match=str(missing))
    text = tmp_path / "text.parquet"
    text.write_text("not parquet at all")
    _fails(tmp_path, "--polygons", good_p, "--points", text, match=str(text))
    truncated = tmp_path / "trunc.parquet"
    truncated.write_bytes((SAMPLE / "synthetic/points.parquet").read_bytes()[:-100])
    _fails(tmp_path, "--polygons", good_p, "--points", truncated, match=str(truncated))
    nogeom = tmp_path / "nogeom.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), nogeom)
    _fails(tmp_path, "--polygons", nogeom, "--points", good_q, match="no geometry")
    # points offered as polygons: an unsupported geometry type
    pts_geo = tmp_path / "pts.parquet"
    wkb = pa.array([bytes.fromhex("0101000000" + "00" * 16)], pa.binary())
    geo = {"version": "1.1.0", "primary_column": "geometry",
           "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Point"]}}}  # fmt: skip
    pq.write_table(pa.table({"geometry": wkb}).replace_schema_metadata({"geo": json.dumps(geo)}),
                   pts_geo)  # fmt: skip
    _fails(tmp_path, "--polygons", pts_geo, "--points", good_q, match="Point")
    # a missing point column, named
    _fails(tmp_path, "--polygons", good_p, "--points", good_q, "--x", "lon", match="lon")
    # usage errors: exit 2
    _fails(tmp_path, "--polygons", good_p, "--points", good_q, "--max-dist", "-1", code=2,
           match="max_dist")  # fmt: skip


def test_edges_refused_and_crs_mismatch_refused(tmp_path):
    t = pq.read_table(SAMPLE / "article/polygons.parquet")
    geo = json.loads(t.schema.metadata[b"geo"])
    # spherical edges need --metric sphere (for every predicate); ellipsoidal ones are
    # refused
    geo["columns"]["geometry"]["edges"] = "spherical"
    sph = tmp_path / "sph.parquet"
    pq.write_table(t.replace_schema_metadata({"geo": json.dumps(geo)}), sph)
    for predicate in ["center", "covers"]:
        _fails(tmp_path, "--polygons", sph, "--points", SAMPLE / "article/points.parquet",
               "--predicate", predicate, code=2, match="--metric sphere")  # fmt: skip
    geo["columns"]["geometry"]["edges"] = "vincenty"
    pq.write_table(t.replace_schema_metadata({"geo": json.dumps(geo)}), sph)
    _fails(tmp_path, "--polygons", sph, "--points", SAMPLE / "article/points.parquet",
           match="vincenty")  # fmt: skip
    geo["columns"]["geometry"].pop("edges")
    geo["columns"]["geometry"]["crs"] = "EPSG:3857"
    merc = tmp_path / "merc.parquet"
    pq.write_table(t.replace_schema_metadata({"geo": json.dumps(geo)}), merc)
    # plain x/y points state no CRS: not a conflict, the output carries the stated one
    out = tmp_path / "merc_out.parquet"
    cli("match", "--polygons", merc, "--points", SAMPLE / "article/points.parquet", "--out", out)
    meta = json.loads(pq.read_metadata(out).metadata[b"polymatch"])
    assert meta["crs"] == "EPSG:3857"
    # GeoParquet points in another CRS are refused, unless the user says so
    pts = pq.read_table(SAMPLE / "article/points.parquet")
    xy = zip(pts["x"].to_pylist(), pts["y"].to_pylist())
    head = bytes.fromhex("0101000000")  # little-endian WKB Point
    wkb = pa.array([head + pa.array(p).buffers()[1].to_pybytes() for p in xy], pa.binary())
    pgeo = {"version": "1.1.0", "primary_column": "geometry",
            "columns": {"geometry": {"encoding": "WKB", "crs": "EPSG:32633"}}}  # fmt: skip
    utm = tmp_path / "utm_points.parquet"
    geo_points = pa.table({"geometry": wkb}).replace_schema_metadata({"geo": json.dumps(pgeo)})
    pq.write_table(geo_points, utm)
    _fails(tmp_path, "--polygons", merc, "--points", utm, match="different CRS")
    cli("match", "--polygons", merc, "--points", utm, "--out", out, "--allow-crs-mismatch")
    assert pq.read_table(out).num_rows == 100


def test_existing_output_untouched_and_output_equal_input_refused(tmp_path):
    out = tmp_path / "out.parquet"
    out.write_bytes(b"precious")
    r = cli("match", "--polygons", SAMPLE / "article/polygons.parquet", "--points",
            tmp_path / "nope.parquet", "--out", out, check=False)  # fmt: skip
    assert r.returncode == 1 and out.read_bytes() == b"precious"
    pts = tmp_path / "pts.parquet"
    pts.write_bytes((SAMPLE / "article/points.parquet").read_bytes())
    r = cli("match", "--polygons", SAMPLE / "article/polygons.parquet", "--points", pts,
            "--out", pts, check=False)  # fmt: skip
    assert r.returncode == 2 and "also an input" in r.stderr
    assert pts.read_bytes() == (SAMPLE / "article/points.parquet").read_bytes()


def test_streaming_memory_does_not_grow_with_points(tmp_path):
    """Peak memory depends on the polygons and the batch size, not on the number of points."""
    big = tmp_path / "big"
    cli("generate", "--polygons", 1000, "--points", 2_000_000, "--out-dir", big)
    small = tmp_path / "small.parquet"
    pq.write_table(pq.read_table(big / "points.parquet").slice(0, 250_000), small)
    code = (
        "import resource, sys, polymatch as pm\n"
        "pm.match_parquet(sys.argv[1], sys.argv[2], sys.argv[3], batch_rows=65536)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    peaks = []
    for points in (small, big / "points.parquet"):
        args = [big / "polygons.parquet", points, tmp_path / "o.parquet"]
        r = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                           text=True, check=True)  # fmt: skip
        peaks.append(int(r.stdout.strip()))
    # 8x the points: the peak may not grow by more than a quarter.
    assert peaks[1] < 1.25 * peaks[0], peaks


def test_ctrl_c_stops_the_cli_cleanly(tmp_path, python_sigint_handler):
    """SIGINT in the middle of a long match: exit code 130, one line, no output file and
    no temporary left behind. (`python_sigint_handler`: the child must not inherit an
    ignored SIGINT from a test run started in the background.)"""
    import signal
    import time

    cli("generate", "--polygons", 20000, "--points", 2_000_000, "--out-dir", tmp_path)
    out = tmp_path / "out.parquet"
    proc = subprocess.Popen(
        [sys.executable, "-m", "polymatch", "match", "--polygons", tmp_path / "polygons.parquet",
         "--points", tmp_path / "points.parquet", "--out", out, "--all-candidates",
         "--max-dist", "30", "--batch-rows", "10000", "--quiet"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(1.0)
    assert proc.poll() is None, "the job should still be running"
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    latency = time.perf_counter() - sent
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["polymatch: interrupted; no output written"], err
    assert latency < 10.0, latency  # generous for a loaded CI machine
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["points.parquet", "polygons.parquet"]


def test_info_into_a_closed_pipe_is_not_an_error():
    # `polymatch info f | head -1`: the reader may be gone before polymatch writes; that
    # is the reader's choice, not an internal error (it used to panic in println!).
    import os

    r_fd, w_fd = os.pipe()
    os.close(r_fd)  # nobody will read: every write gets EPIPE
    try:
        r = subprocess.run(
            [sys.executable, "-m", "polymatch", "info", SAMPLE / "article/points.parquet"],
            stdout=w_fd,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(w_fd)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
