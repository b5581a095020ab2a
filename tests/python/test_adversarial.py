"""Adversarial inputs, through every entry point: the Python API, the CLI (real Parquet
files, a subprocess: exit code and a one-line message), the compat module and Dask.

Each case has one documented outcome (docs/hardening.md lists them all): a correct
answer, checked here, or a specific error naming the file, column or row. Nothing
panics, nothing is half-written, nothing is silently wrong.
"""

from __future__ import annotations

import decimal
import json
import math
import os
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import polymatch as pm
from polymatch import compat

from conftest import (
    exact_area,
    exact_center,
    oracle_match,
    wkb_multipolygon,
    wkb_point,
    wkb_polygon,
)

ROOT = Path(__file__).resolve().parents[2]
INF, NAN = math.inf, math.nan
F64 = pa.float64()

# ---------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------

Ring = list[tuple[float, float]]


def square(x0: float = 0.0, y0: float = 0.0, side: float = 1.0) -> Ring:
    return [(x0, y0), (x0 + side, y0), (x0 + side, y0 + side), (x0, y0 + side)]


def xy_table(rings: list[Ring | None], value_type: pa.DataType = F64) -> pa.Table:
    """The article's layout: list columns x and y, one open ring per row."""

    def value(v: float):
        if pa.types.is_integer(value_type):
            return int(v)
        if pa.types.is_decimal(value_type):
            return decimal.Decimal(repr(v))
        return v

    def column(i: int) -> pa.Array:
        return pa.array(
            [None if r is None else [value(p[i]) for p in r] for r in rings],
            pa.list_(value_type),
        )

    return pa.table({"x": column(0), "y": column(1)})


def wkb_table(values: list[bytes | None]) -> pa.Table:
    return pa.table({"geometry": pa.array(values, pa.binary())})


COORD = pa.struct([("x", pa.float64()), ("y", pa.float64())])
POLYGON = pa.list_(pa.list_(COORD))
MULTIPOLYGON = pa.list_(POLYGON)


def coords(ring: Ring) -> list[dict[str, float]]:
    return [{"x": x, "y": y} for x, y in ring]


def geoarrow_table(array: pa.Array, extension: str = "geoarrow.polygon") -> pa.Table:
    field = pa.field("geometry", array.type, metadata={"ARROW:extension:name": extension})
    return pa.Table.from_arrays([array], schema=pa.schema([field]))


def points_table(points: list[tuple[float | None, float | None]], t: pa.DataType = F64) -> pa.Table:
    return pa.table(
        {"x": pa.array([p[0] for p in points], t), "y": pa.array([p[1] for p in points], t)}
    )


# Standard points: inside the unit square, inside the square at (5, 5), far away.
POINTS = points_table([(0.5, 0.5), (5.5, 5.5), (100.0, 100.0)])


@dataclass(frozen=True)
class Raises:
    """The documented error: exception class and a fragment of its message."""

    error: type[BaseException]
    fragment: str


@dataclass(frozen=True)
class Case:
    id: str
    polygons: Callable[[], pa.Table]
    expect: list[int | None] | Raises  # polygon_index per point (how="left"), or the error
    points: pa.Table = field(default_factory=lambda: POINTS)
    max_dist: float = 1.0
    rings: list[Ring | None] | None = None  # for the exact oracle and compat
    parquet: bool = True  # can be written to a Parquet file (CLI, match_parquet)


def xy_case(id: str, rings: list[Ring | None], expect, **kw) -> Case:
    return Case(id, lambda: xy_table(rings), expect, rings=rings, **kw)


def forged_decreasing_offsets() -> pa.Table:
    """A list array whose offsets go down, as a corrupt producer could hand over through
    the C data interface (pyarrow validates structure, not offset values, on creation)."""
    child = pa.array([coords(square())], pa.list_(COORD))
    offsets = np.array([0, 1, 1], np.int32)
    arr = pa.Array.from_buffers(POLYGON, 2, [None, pa.py_buffer(offsets)], children=[child])
    table = geoarrow_table(arr)
    offsets[2] = 0  # after pyarrow's checks, in the shared buffer
    return table


def forged_offsets_beyond_child() -> pa.Table:
    """LargeList offsets far beyond the i32 range and beyond the child array."""
    child = pa.array([coords(square())], pa.list_(COORD))
    offsets = np.array([0, 1], np.int64)
    arr = pa.Array.from_buffers(
        pa.large_list(pa.list_(COORD)), 1, [None, pa.py_buffer(offsets)], children=[child]
    )
    table = geoarrow_table(arr)
    offsets[1] = 3_000_000_000
    return table


GOOD_WKB = wkb_polygon(square())
FAR = square(5.0, 5.0)

CASES: list[Case] = [
    # --- sizes
    xy_case("zero_polygons", [], [None, None, None]),
    Case("zero_points", lambda: xy_table([square()]), [], points=points_table([])),
    # --- degenerate rings: a ring needs 1 vertex; fewer than 3 give area 0
    xy_case("one_vertex_ring", [[(0.5, 0.5)]], [0, None, None]),
    xy_case("two_vertex_ring", [[(0.0, 0.0), (1.0, 1.0)]], [0, None, None]),
    xy_case("closed_one_vertex_ring", [[(0.5, 0.5), (0.5, 0.5)]], [0, None, None]),
    xy_case(
        "empty_ring",
        [square(), []],
        Raises(pm.InvalidGeometryError, "row 1"),
    ),
    # --- zero area and duplicates: the smallest area wins, then the lowest row
    xy_case(
        "zero_area_beats_square", [square(), [(0.0, 0.0), (0.5, 0.5), (1.0, 1.0)]], [1, None, None]
    ),
    xy_case("duplicates_lowest_row", [FAR, square(), square(), FAR], [1, 0, None]),
    xy_case(
        "negative_zero_ties",
        [[(-0.0, -0.0), (1.0, -0.0), (1.0, 1.0), (-0.0, 1.0)], square(), [(-0.0, -0.0)]],
        [0, 2, None],
        points=points_table([(0.5, 0.5), (0.0, 0.0), (3.0, 3.0)]),
        max_dist=0.5,
    ),
    # --- special coordinates
    xy_case(
        "nan_coordinate",
        [square(), [(0.0, NAN), (1.0, 0.0), (1.0, 1.0)]],
        Raises(pm.InvalidGeometryError, "row 1"),
    ),
    xy_case(
        "inf_coordinate",
        [square(), [(0.0, 0.0), (INF, 0.0), (1.0, 1.0)]],
        Raises(pm.InvalidGeometryError, "row 1"),
    ),
    xy_case(
        "subnormal_coordinates",
        [square(0.0, 0.0, 5e-324), square(0.0, 0.0, 1e-300)],
        [0, None, 0],
        points=points_table([(0.0, 0.0), (5.5, 5.5), (1e-300, 1e-300)]),
        max_dist=1e-300,
    ),
    xy_case(
        "huge_coordinates_overflowing_squares",
        [[(1e300, -1e300), (1e300, 1e300)], [(-1e300, 0.0), (-1e300, 1.0)]],
        [0, 1, None],
        max_dist=INF,
        points=points_table([(1e300, 0.0), (-1e300, 0.0), (1e300, -1e300)]),
    ),
    xy_case(
        "area_overflows",
        [square(-1e300, -1e300, 2e300)],
        Raises(pm.InvalidGeometryError, "area overflows"),
    ),
    # --- coordinate types: cast to float64, same answers
    Case(
        "int32_coordinates",
        lambda: xy_table([square(), FAR], pa.int32()),
        [0, 1, None],
        points=points_table([(0.5, 0.5), (5.5, 5.5), (100, 100)]),
    ),
    Case(
        "float32_coordinates",
        lambda: xy_table([square(), FAR], pa.float32()),
        [0, 1, None],
        points=points_table([(0.5, 0.5), (5.5, 5.5), (100, 100)], pa.float32()),
    ),
    Case(
        "decimal_coordinates",
        lambda: xy_table([square(), FAR], pa.decimal128(12, 3)),
        [0, 1, None],
        points=pa.table(
            {
                "x": pa.array(
                    [decimal.Decimal("0.5"), decimal.Decimal("5.5"), None], pa.decimal128(6, 2)
                ),
                "y": pa.array(
                    [decimal.Decimal("0.5"), decimal.Decimal("5.5"), 1], pa.decimal128(6, 2)
                ),
            }
        ),
    ),
    Case(
        "string_coordinates",
        lambda: pa.table({"x": [["0", "1", "1"]], "y": [["0", "0", "1"]]}),
        Raises(pm.SchemaError, "x"),
    ),
    # --- nulls at every nesting level
    Case("null_polygon_row", lambda: wkb_table([None, GOOD_WKB]), [1, None, None]),
    Case(
        "null_ring",
        lambda: geoarrow_table(pa.array([[coords(square()), None]], POLYGON)),
        Raises(pm.InvalidGeometryError, "row 0"),
    ),
    Case(
        "null_part",
        lambda: geoarrow_table(
            pa.array([[[coords(FAR)]], [[coords(square())], None]], MULTIPOLYGON),
            "geoarrow.multipolygon",
        ),
        Raises(pm.InvalidGeometryError, "row 1"),
    ),
    Case(
        "null_vertex",
        lambda: geoarrow_table(pa.array([[coords(square()) + [None]]], POLYGON)),
        Raises(pm.InvalidGeometryError, "row 0"),
    ),
    Case(
        "null_x_value",
        lambda: geoarrow_table(
            pa.array(
                [
                    [coords(FAR)],
                    [[{"x": 0.0, "y": 0.0}, {"x": None, "y": 1.0}, {"x": 1.0, "y": 1.0}]],
                ],
                POLYGON,
            )
        ),
        Raises(pm.InvalidGeometryError, "row 1"),
    ),
    Case(
        "null_list_value",
        lambda: pa.table({"x": [[0.0, None, 1.0]], "y": [[0.0, 0.0, 1.0]]}),
        Raises(pm.InvalidGeometryError, "row 0"),
    ),
    Case(
        "x_null_y_not",
        lambda: pa.table({"x": [[0.0, 1.0, 1.0], None], "y": [[0.0, 0.0, 1.0], [1.0]]}),
        Raises(pm.InvalidGeometryError, "row 1"),
    ),
    Case(
        "null_points",
        lambda: xy_table([square()]),
        [None, None, 0],
        points=pa.table({"x": [None, 0.5, 0.5], "y": [0.5, None, 0.5]}),
    ),
    Case(
        "nan_inf_points",
        lambda: xy_table([square()]),
        [None, None, None, None],
        max_dist=INF,
        points=points_table([(NAN, 0.5), (INF, 0.5), (0.5, -INF), (NAN, NAN)]),
    ),
    # --- empty geometries: kept as rows, never match
    Case(
        "empty_polygon_row",
        lambda: geoarrow_table(pa.array([[], [coords(square())]], POLYGON)),
        [1, None, None],
    ),
    # --- sliced arrays: rows count from the slice
    Case(
        "sliced_geoarrow",
        lambda: geoarrow_table(
            pa.array([[coords(square())], None, [coords(FAR)], [coords(square())]], POLYGON).slice(
                2
            )
        ),
        [1, 0, None],
    ),
    Case(
        "sliced_points",
        lambda: xy_table([square(), FAR]),
        [1, 0],
        points=points_table([(0.5, 0.5), (5.5, 5.5), (0.5, 0.5)]).slice(1),
    ),
    Case(
        "large_list_layout",
        lambda: geoarrow_table(
            pa.array([[coords(square())], [coords(FAR)]], pa.large_list(pa.large_list(COORD)))
        ),
        [0, 1, None],
    ),
    # --- mixed geometry types
    Case(
        "polygon_and_multipolygon_wkb",
        lambda: wkb_table([wkb_multipolygon([FAR], [square(50, 50)]), GOOD_WKB]),
        [1, None, None],
    ),
    Case(
        "mixed_polygon_and_point",
        lambda: wkb_table([GOOD_WKB, wkb_point(1.0, 2.0)]),
        Raises(pm.SchemaError, "Point (row 1)"),
    ),
    Case(
        "points_as_polygons",
        lambda: geoarrow_table(pa.array([{"x": 1.0, "y": 2.0}], COORD), "geoarrow.point"),
        Raises(pm.SchemaError, "geoarrow.point"),
    ),
    # --- broken WKB
    Case(
        "wkb_big_endian",
        lambda: wkb_table([wkb_polygon(FAR, big_endian=True), GOOD_WKB]),
        [1, 0, None],
    ),
    Case(
        "wkb_truncated",
        lambda: wkb_table([GOOD_WKB, GOOD_WKB[:-3]]),
        Raises(pm.InvalidGeometryError, "row 1"),
    ),
    Case("wkb_empty_bytes", lambda: wkb_table([b""]), Raises(pm.InvalidGeometryError, "row 0")),
    Case(
        "wkb_garbage",
        lambda: wkb_table([GOOD_WKB, bytes(range(7, 60))]),
        Raises(pm.InvalidGeometryError, "row 1"),
    ),
    Case(
        "wkb_bad_byte_order_flag",
        lambda: wkb_table([b"\x02" + GOOD_WKB[1:]]),
        Raises(pm.InvalidGeometryError, "byte-order flag 2"),
    ),
    Case(
        "wkb_huge_ring_count",
        lambda: wkb_table([GOOD_WKB[:5] + struct.pack("<I", 2**32 - 1)]),
        Raises(pm.InvalidGeometryError, "row 0"),
    ),
    Case(
        "wkb_trailing_bytes",
        lambda: wkb_table([GOOD_WKB + b"\x00\x00"]),
        Raises(pm.InvalidGeometryError, "trailing"),
    ),
    # --- forged arrays (through the C data interface; cannot be written to Parquet)
    Case(
        "forged_decreasing_offsets",
        forged_decreasing_offsets,
        Raises(pm.InvalidGeometryError, "not a valid Arrow array"),
        parquet=False,
    ),
    Case(
        "forged_large_offsets_beyond_child",
        forged_offsets_beyond_child,
        Raises(pm.InvalidGeometryError, "not a valid Arrow array"),
        parquet=False,
    ),
]

IDS = [c.id for c in CASES]


def by_id(id: str) -> Case:
    return next(c for c in CASES if c.id == id)


def left_indices(table: pa.Table) -> list[int | None]:
    order = np.argsort(table["point_index"].to_numpy(), kind="stable")
    return [table["polygon_index"].to_pylist()[i] for i in order]


# ---------------------------------------------------------------------------------------
# Python API
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_python_api(case: Case):
    if isinstance(case.expect, Raises):
        with pytest.raises(case.expect.error, match=re.escape(case.expect.fragment)):
            pm.match(case.polygons(), case.points, case.max_dist, how="left")
        return
    result = pm.match(case.polygons(), case.points, case.max_dist, how="left")
    assert left_indices(result) == case.expect
    # The same through a prepared index, all candidates, and inner.
    index = pm.PolygonIndex.from_arrow(case.polygons())
    inner = index.match(case.points, case.max_dist)
    assert inner["polygon_index"].to_pylist() == [i for i in case.expect if i is not None]
    pairs = index.match(case.points, case.max_dist, all_candidates=True)
    for p, best in enumerate(case.expect):
        rows = [r["polygon_index"] for r in pairs.to_pylist() if r["point_index"] == p]
        assert (best is None) == (not rows)


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.rings is not None and not isinstance(c.expect, Raises)],
    ids=lambda c: c.id,
)
def test_expected_answers_are_the_exact_oracle(case: Case):
    """The hand-written expectations agree with SPEC.md evaluated in exact arithmetic."""
    rings = [r for r in case.rings if r is not None]
    centers = [exact_center([p[0] for p in r], [p[1] for p in r]) for r in rings]
    areas = [exact_area([p[0] for p in r], [p[1] for p in r]) for r in rings]
    points = [
        (NAN if x is None else x, NAN if y is None else y)
        for x, y in zip(case.points["x"].to_pylist(), case.points["y"].to_pylist())
    ]
    assert oracle_match(centers, areas, points, case.max_dist) == case.expect


# ---------------------------------------------------------------------------------------
# compat: the article's API
# ---------------------------------------------------------------------------------------


def compat_answer(rings: list[Ring], points: pa.Table, max_dist: float) -> list[int | None]:
    polygons = [
        compat.Polygon(np.array([p[0] for p in r]), np.array([p[1] for p in r])) for r in rings
    ]
    out: list[int | None] = []
    for x, y in zip(points["x"].to_pylist(), points["y"].to_pylist()):
        point = np.array([NAN if x is None else x, NAN if y is None else y])
        close = compat.find_close_polygons(polygons, point, max_dist)
        if not close:  # the article's main() skips such points
            out.append(None)
            continue
        ((_, best),) = compat.select_best_polygon([(point, close)])
        out.append(next(i for i, p in enumerate(polygons) if p is best))
    return out


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.rings is not None and None not in c.rings], ids=lambda c: c.id
)
def test_compat(case: Case):
    if isinstance(case.expect, Raises):
        with pytest.raises(case.expect.error):
            compat_answer(case.rings, case.points, case.max_dist)
        return
    assert compat_answer(case.rings, case.points, case.max_dist) == case.expect


def test_compat_bad_points_and_max_dist():
    polygons = [compat.Polygon(np.array([0.0, 1.0, 1.0]), np.array([0.0, 0.0, 1.0]))]
    for point in [np.array([0.5]), np.array([[0.5, 0.5]]), [0.5, 0.5, 0.5], ["a", "b"], 3.0]:
        with pytest.raises(ValueError, match="a point must be two numbers"):
            compat.find_close_polygons(polygons, point, 1.0)
    for max_dist in [NAN, -1.0, 0.0, -0.0, -INF]:
        with pytest.raises(ValueError, match="max_dist"):
            compat.find_close_polygons(polygons, np.array([0.5, 0.5]), max_dist)
        with pytest.raises(ValueError, match="max_dist"):
            compat.main(polygons, [np.array([0.5, 0.5])], max_dist)
    with pytest.raises(pm.InvalidGeometryError, match="row 0"):
        compat.Polygon(np.array([0.0, NAN]), np.array([0.0, 1.0]))
    with pytest.raises(pm.InvalidGeometryError):
        compat.Polygon(np.array([]), np.array([]))
    for bad in (None, 3.0, np.zeros((2, 2))):
        with pytest.raises(TypeError, match="1-D sequence of numbers"):
            compat.Polygon(bad, np.zeros(2))
    with pytest.raises(ValueError):
        compat.Polygon(np.array(["a", "b"]), np.zeros(2))
    with pytest.raises(pm.InvalidGeometryError, match="x has 3 values but y has 2"):
        compat.Polygon(np.zeros(3), np.zeros(2))


# ---------------------------------------------------------------------------------------
# CLI: real Parquet files, a subprocess
# ---------------------------------------------------------------------------------------


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "polymatch", *map(str, args)], capture_output=True, text=True
    )


def assert_one_line_error(r: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    assert r.returncode == code, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("polymatch: error:"), r.stderr
    assert "panicked" not in r.stderr and "Traceback" not in r.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def cli_left(polygons: pa.Table, points: pa.Table, max_dist: float, tmp_path: Path):
    """Write both tables to Parquet and run `polymatch match --how left`: (result, out)."""
    paths = [tmp_path / n for n in ("polygons.parquet", "points.parquet", "out.parquet")]
    pq.write_table(polygons, paths[0])
    pq.write_table(points, paths[1])
    args = ["--polygons", paths[0], "--points", paths[1], "--out", paths[2], "--how", "left"]
    return cli("match", *args, f"--max-dist={max_dist!r}", "--quiet"), paths[2]


@pytest.mark.parametrize("case", [c for c in CASES if c.parquet], ids=lambda c: c.id)
def test_cli(case: Case, tmp_path):
    r, out = cli_left(case.polygons(), case.points, case.max_dist, tmp_path)
    if isinstance(case.expect, Raises):
        assert_one_line_error(r, 1, case.expect.fragment, str(tmp_path / "polygons.parquet"))
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names == ["points.parquet", "polygons.parquet"]  # no output, no temporary
        return
    assert r.returncode == 0, r.stderr
    assert left_indices(pq.read_table(out)) == case.expect


# ---------------------------------------------------------------------------------------
# max_dist: tiny, huge, inf; NaN, negative, 0 refused everywhere
# ---------------------------------------------------------------------------------------

# The unit square's center, 1e-9 from it, 1e150 from it, and 1e200 from it: dy*dy
# overflows, so SPEC's d is inf, which is not < max_dist even for max_dist = inf.
MAX_DIST_POINTS = points_table([(0.5, 0.5), (0.5, 0.5 + 1e-9), (1e150, 0.0), (0.5, 1e200)])
MAX_DIST_OK = [
    (5e-324, [0, None, None, None]),  # only the exact center
    (1e-300, [0, None, None, None]),
    (1e-8, [0, 0, None, None]),
    (1e300, [0, 0, 0, None]),
    (1.7976931348623157e308, [0, 0, 0, None]),
    (INF, [0, 0, 0, None]),
]
MAX_DIST_BAD = [NAN, -1.0, 0.0, -0.0, -INF]


@pytest.mark.parametrize(("max_dist", "expect"), MAX_DIST_OK)
def test_max_dist_extremes(max_dist, expect, tmp_path):
    index = pm.PolygonIndex.from_arrow(xy_table([square()]))
    assert left_indices(index.match(MAX_DIST_POINTS, max_dist, how="left")) == expect
    r, out = cli_left(xy_table([square()]), MAX_DIST_POINTS, max_dist, tmp_path)
    assert r.returncode == 0, r.stderr
    assert left_indices(pq.read_table(out)) == expect
    polygon = compat.Polygon(np.array([0.0, 1.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0, 1.0]))
    got = [
        0 if compat.find_close_polygons([polygon], np.array(p), max_dist) else None
        for p in zip(MAX_DIST_POINTS["x"].to_pylist(), MAX_DIST_POINTS["y"].to_pylist())
    ]
    assert got == expect


@pytest.mark.parametrize("max_dist", MAX_DIST_BAD)
def test_max_dist_refused(max_dist, tmp_path):
    index = pm.PolygonIndex.from_arrow(xy_table([square()]))
    with pytest.raises(ValueError, match="max_dist must be > 0"):
        index.match(POINTS, max_dist)
    with pytest.raises(ValueError, match="max_dist must be > 0"):
        pm.match_parquet(
            index,
            ROOT / "sample_data/article/points.parquet",
            tmp_path / "o.parquet",
            max_dist=max_dist,
        )
    r = cli(
        "match",
        "--polygons",
        ROOT / "sample_data/article/polygons.parquet",
        "--points",
        ROOT / "sample_data/article/points.parquet",
        "--out",
        tmp_path / "o.parquet",
        f"--max-dist={max_dist!r}",
    )
    assert_one_line_error(r, 2, "max_dist")
    assert not (tmp_path / "o.parquet").exists()


# ---------------------------------------------------------------------------------------
# Files: not Parquet, truncated, broken GeoParquet metadata
# ---------------------------------------------------------------------------------------

GEO_OK = {
    "version": "1.1.0",
    "primary_column": "geometry",
    "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Polygon"]}},
}


def with_geo(geo: str) -> pa.Table:
    return wkb_table([GOOD_WKB]).replace_schema_metadata({"geo": geo})


BROKEN_FILES: list[tuple[str, Callable[[Path], None], type[BaseException], str]] = [
    ("not_parquet", lambda p: p.write_text("id,x,y\n1,2,3\n"), pm.PolymatchError, "Parquet"),
    ("empty_file", lambda p: p.write_bytes(b""), pm.PolymatchError, "Parquet"),
    (
        "truncated",
        lambda p: p.write_bytes(
            (ROOT / "sample_data/article/polygons.parquet").read_bytes()[:-200]
        ),
        pm.PolymatchError,
        "Parquet",
    ),
    (
        "truncated_in_data",
        lambda p: p.write_bytes(
            (b := (ROOT / "sample_data/article/polygons.parquet").read_bytes())[:100]
            + b[-(len(b) // 10) :]
        ),
        pm.PolymatchError,
        "Parquet",
    ),
    ("directory", lambda p: p.mkdir(), IsADirectoryError, "directory"),
    (
        "geo_not_json",
        lambda p: pq.write_table(with_geo("{not json"), p),
        pm.SchemaError,
        "not valid JSON",
    ),
    ("geo_empty", lambda p: pq.write_table(with_geo(""), p), pm.SchemaError, "not valid JSON"),
    ("geo_not_object", lambda p: pq.write_table(with_geo("[1, 2]"), p), pm.SchemaError, "columns"),
    (
        "geo_no_columns",
        lambda p: pq.write_table(with_geo('{"primary_column": "geometry"}'), p),
        pm.SchemaError,
        "columns",
    ),
    (
        "geo_no_primary",
        lambda p: pq.write_table(with_geo('{"columns": {"geometry": {"encoding": "WKB"}}}'), p),
        pm.SchemaError,
        "primary_column",
    ),
    (
        "geo_primary_undescribed",
        lambda p: pq.write_table(with_geo(json.dumps({**GEO_OK, "primary_column": "geom"})), p),
        pm.SchemaError,
        "geom",
    ),
    (
        "geo_column_not_object",
        lambda p: pq.write_table(
            with_geo(json.dumps({**GEO_OK, "columns": {"geometry": "WKB"}})), p
        ),
        pm.SchemaError,
        "not a JSON object",
    ),
    (
        "geo_no_encoding",
        lambda p: pq.write_table(with_geo(json.dumps({**GEO_OK, "columns": {"geometry": {}}})), p),
        pm.SchemaError,
        "encoding",
    ),
    (
        "geo_unknown_encoding",
        lambda p: pq.write_table(
            with_geo(json.dumps({**GEO_OK, "columns": {"geometry": {"encoding": "GeoJSON"}}})), p
        ),
        pm.SchemaError,
        "GeoJSON",
    ),
    (
        "geo_column_missing_from_file",
        lambda p: pq.write_table(
            wkb_table([GOOD_WKB])
            .rename_columns(["wkb"])
            .replace_schema_metadata({"geo": json.dumps(GEO_OK)}),
            p,
        ),
        pm.SchemaError,
        "geometry",
    ),
]


@pytest.mark.parametrize(
    ("name", "make", "error", "fragment"), BROKEN_FILES, ids=[b[0] for b in BROKEN_FILES]
)
def test_broken_polygon_files(name, make, error, fragment, tmp_path):
    bad = tmp_path / "bad.parquet"
    make(bad)
    with pytest.raises(error, match=fragment) as info:
        pm.read_polygons(bad)
    assert str(bad) in str(info.value)
    out = tmp_path / "out.parquet"
    points = ROOT / "sample_data/article/points.parquet"
    r = cli("match", "--polygons", bad, "--points", points, "--out", out, "--quiet")
    assert_one_line_error(r, 1, str(bad), fragment)
    assert not out.exists()
    # The same file as the points: refused by match_parquet and the CLI, nothing written.
    index = pm.read_polygons(ROOT / "sample_data/article/polygons.parquet")
    with pytest.raises((pm.PolymatchError, OSError)) as info:
        pm.match_parquet(index, bad, out)
    assert str(bad) in str(info.value)
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    r = cli(
        "match",
        "--polygons",
        ROOT / "sample_data/article/polygons.parquet",
        "--points",
        bad,
        "--out",
        out,
        "--quiet",
    )
    assert_one_line_error(r, 1, str(bad))
    assert not out.exists()


# ---------------------------------------------------------------------------------------
# No panic reaches Python: mutated WKB, index bytes and Parquet files (hypothesis; the
# cargo-fuzz targets in tests/fuzz do the same at a much larger scale)
# ---------------------------------------------------------------------------------------

SCALE = int(os.environ.get("POLYMATCH_EXAMPLES_SCALE", "1"))
SETTINGS = settings(
    max_examples=200 * SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    """Overwrite bytes at (position, value) and optionally truncate."""
    out = bytearray(data)
    for pos, value in edits:
        if out:
            out[pos % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


EDITS = st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 255)), max_size=8)
CUT = st.one_of(st.none(), st.integers(0, 400))


@SETTINGS
@given(edits=EDITS, cut=CUT, multi=st.booleans())
def test_no_panic_from_mutated_wkb(edits, cut, multi):
    good = wkb_multipolygon([square()], [FAR]) if multi else wkb_polygon(square(), [(0.2, 0.2)])
    table = wkb_table([good, mutate(good, edits, cut)])
    try:
        index = pm.PolygonIndex.from_arrow(table)
    except pm.InvalidGeometryError as e:
        assert "row 1" in str(e)
    except pm.SchemaError as e:  # a mutated type code: unsupported geometry type
        assert "row 1" in str(e)
    else:
        index.match(POINTS, INF, how="left")
    # the same bytes as a WKB point column
    points = wkb_table([wkb_point(0.5, 0.5), mutate(wkb_point(0.5, 0.5), edits, cut)])
    try:
        pm.PolygonIndex.from_arrow(xy_table([square()])).match(points, 1.0, geometry="geometry")
    except pm.PolymatchError as e:
        assert "row 1" in str(e)


@SETTINGS
@given(edits=EDITS, cut=CUT)
def test_no_panic_from_mutated_index_bytes(edits, cut):
    good = pm.PolygonIndex.from_arrow(xy_table([square(), FAR, [(3.0, 3.0)]])).to_bytes()
    try:
        index = pm.PolygonIndex.from_bytes(mutate(good, edits, cut))
    except pm.PolymatchError:
        return
    index.match(POINTS, 2.0, how="left")
    index.match(POINTS, INF, all_candidates=True)


@pytest.fixture(scope="module")
def parquet_seed(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("seed") / "polygons.parquet"
    geo = json.dumps(GEO_OK)
    table = wkb_table([GOOD_WKB, None, wkb_polygon(FAR)]).replace_schema_metadata({"geo": geo})
    pq.write_table(table, path, row_group_size=2)
    return path.read_bytes()


@SETTINGS
@given(edits=EDITS, cut=st.one_of(st.none(), st.integers(0, 4000)))
def test_no_panic_from_mutated_parquet(parquet_seed, edits, cut, tmp_path_factory):
    path = tmp_path_factory.mktemp("mutated") / "polygons.parquet"
    path.write_bytes(mutate(parquet_seed, edits, cut))
    out = path.with_name("out.parquet")
    try:
        index = pm.read_polygons(path, metric="planar")
        index.match(POINTS, 2.0)
    except (pm.PolymatchError, OSError):
        pass
    try:
        pm.match_parquet(pm.PolygonIndex.from_arrow(xy_table([square()])), path, out)
    except (pm.PolymatchError, OSError):
        assert not out.exists()


CORRUPT = sorted((ROOT / "tests/data/corrupt_parquet").glob("*.parquet"))


@pytest.mark.parametrize("path", CORRUPT, ids=[p.stem for p in CORRUPT])
def test_files_that_made_the_parquet_decoder_panic(path, tmp_path):
    """Regression: byte-mutated Parquet files (found by test_no_panic_from_mutated_parquet)
    on which the parquet crate panics. Each is an error naming the file, everywhere."""
    with pytest.raises(pm.PolymatchError, match="corrupt data") as info:
        pm.read_polygons(path)
    assert str(path) in str(info.value)
    out = tmp_path / "out.parquet"
    index = pm.PolygonIndex.from_arrow(xy_table([square()]))
    with pytest.raises(pm.PolymatchError, match="corrupt data"):
        pm.match_parquet(index, path, out)
    assert not out.exists()
    polygons = ROOT / "sample_data/article/polygons.parquet"
    points = ROOT / "sample_data/article/points.parquet"
    for args in (
        ("match", "--polygons", path, "--points", points, "--out", out),
        ("match", "--polygons", polygons, "--points", path, "--out", out),
    ):
        r = cli(*args)
        assert_one_line_error(r, 1, str(path))
        assert not out.exists()
    # `info` reads the footer only: it may describe the file, or refuse it in one line
    r = cli("info", path)
    if r.returncode != 0:
        assert_one_line_error(r, 1, str(path))


def test_every_case_is_documented():
    """docs/hardening.md lists every case of this file with its outcome."""
    doc = (ROOT / "docs/hardening.md").read_text()
    ids = IDS + [b[0] for b in BROKEN_FILES] + [p.stem for p in CORRUPT]
    missing = [i for i in ids if f"`{i}`" not in doc]
    assert not missing, missing


def test_bad_arguments_everywhere(tmp_path):
    """threads 0 or absurd (each is an OS thread), chunk/batch sizes of 0, unknown `how`:
    ValueError from Python, exit 2 from the CLI, before any work or output."""
    index = pm.PolygonIndex.from_arrow(xy_table([square()]))
    points = ROOT / "sample_data/article/points.parquet"
    polygons = ROOT / "sample_data/article/polygons.parquet"
    out = tmp_path / "o.parquet"
    for kwargs in ({"threads": 0}, {"threads": 100_000}, {"chunk_size": 0}, {"how": "outer"}):
        with pytest.raises(ValueError):
            index.match(POINTS, 1.0, **kwargs)
    for kwargs in ({"threads": 0}, {"threads": 100_000}, {"batch_rows": 0}):
        with pytest.raises(ValueError):
            pm.match_parquet(index, points, out, **kwargs)
    for extra in (["--threads", "0"], ["--threads", "100000"], ["--batch-rows", "0"],
                  ["--how", "outer"]):  # fmt: skip
        r = cli("match", "--polygons", polygons, "--points", points, "--out", out, *extra)
        assert r.returncode == 2, r.stderr
        assert "panicked" not in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
