"""Property tests (hypothesis): every answer equals a plain numpy oracle of SPEC.md.

1. ``match`` (best match, inner/left, and all candidates) against a brute-force float64
   oracle built on the index's own derived columns.
2. The derived ``center_x``/``center_y``/``area`` columns against exact rational
   (``fractions.Fraction``) oracles, rounded once, for rings and for GeoArrow polygons
   and multipolygons with holes.
3. Invariance of the answers under threads, chunk sizes, record-batch splits and
   ``to_bytes``/``from_bytes``, including one large input that takes the Z-order path.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import polymatch as pm

from conftest import exact_area, exact_center, flat

MAX_FLOAT = float(np.finfo(np.float64).max)
# Every example count is multiplied by POLYMATCH_EXAMPLES_SCALE (default 1, as in CI):
# `POLYMATCH_EXAMPLES_SCALE=40 python -m pytest tests/python/test_properties.py` is the
# long differential run (20,000 examples of the numpy-oracle test).
SCALE = int(os.environ.get("POLYMATCH_EXAMPLES_SCALE", "1"))
SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}

# --- oracles --------------------------------------------------------------------------


def derived(index: pm.PolygonIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """center_x, center_y, area of every polygon row (NaN where the row has none)."""
    t = index.to_arrow()
    return tuple(
        t[c].to_numpy().astype(np.float64) if t.num_rows else np.zeros(0)
        for c in ("center_x", "center_y", "area")
    )


def distances(px, py, cx, cy) -> np.ndarray:
    """SPEC.md's d for every (point, polygon) pair: separate ufuncs, so no FMA."""
    with np.errstate(all="ignore"):
        dx = px[:, None] - cx[None, :]
        dy = py[:, None] - cy[None, :]
        return np.sqrt(dx * dx + dy * dy)


def oracle(cx, cy, area, px, py, valid, max_dist):
    """Best row per point (-1: none), its distance, and every candidate pair.

    Candidate iff ``d < max_dist`` (a NaN center, i.e. a null polygon, never is); the best
    is the smallest area, then the lowest row. Pairs come out ordered by point, then row.
    """
    n = len(px)
    d = distances(px, py, cx, cy)
    cand = (d < max_dist) & valid[:, None]
    if len(cx) == 0:
        best = np.full(n, -1, dtype=np.int64)
    else:
        key = np.where(cand, area[None, :], np.inf)
        amin = key.min(axis=1)
        winner = cand & (key == amin[:, None])
        best = np.where(cand.any(axis=1), winner.argmax(axis=1), -1)
    best_d = np.array([d[i, b] if b >= 0 else np.nan for i, b in enumerate(best)])
    pi, pj = np.nonzero(cand)
    return best, best_d, (pi, pj, d[pi, pj])


def _bits(values) -> list:
    """Floats as their bit patterns (None stays None): compares bit for bit."""
    return [None if v is None else np.float64(v).view(np.uint64).item() for v in values]


def check_best(result, best, best_d, area, how):
    rows = np.arange(len(best)) if how == "left" else np.flatnonzero(best >= 0)
    got = result.combine_chunks() if isinstance(result, pa.Table) else result
    assert got.column_names[:4] == ["point_index", "polygon_index", "distance", "area"]
    assert got["point_index"].to_pylist() == rows.tolist()
    want_poly = [int(best[i]) if best[i] >= 0 else None for i in rows]
    assert got["polygon_index"].to_pylist() == want_poly
    want_d = [float(best_d[i]) if best[i] >= 0 else None for i in rows]
    assert _bits(got["distance"].to_pylist()) == _bits(want_d)
    want_a = [float(area[best[i]]) if best[i] >= 0 else None for i in rows]
    assert _bits(got["area"].to_pylist()) == _bits(want_a)


def check_pairs(result, pairs, area, n_points, how="inner"):
    pi, pj, d = pairs
    want = [(int(i), int(j), float(dd), float(area[j])) for i, j, dd in zip(pi, pj, d)]
    if how == "left":  # a point without candidates keeps one row of nulls
        have = set(pi.tolist())
        want += [(i, None, None, None) for i in range(n_points) if i not in have]
        want.sort(key=lambda r: r[0])  # stable: rows of a point keep polygon order
    got = list(
        zip(
            result["point_index"].to_pylist(),
            result["polygon_index"].to_pylist(),
            _bits(result["distance"].to_pylist()),
            _bits(result["area"].to_pylist()),
        )
    )
    assert got == [(i, j, *_bits([dd, a])) for i, j, dd, a in want]


# --- strategies -----------------------------------------------------------------------


def _safe(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Floats in [-hi, hi] that are 0 or at least ``lo`` in magnitude.

    With ``lo >= 1e-100``, sums and differences of such values are 0 or far above the
    subnormal range, so polygon centers stay normal numbers (subnormal centers are tested
    on their own: ``test_subnormal_center_terminates``), and shoelace products of
    magnitudes up to 1e150 neither overflow nor underflow.
    """
    return st.one_of(
        st.sampled_from([0.0, -0.0]),
        st.builds(lambda m, neg: -m if neg else m, st.floats(lo, hi), st.booleans()),
    )


WIDE = _safe(1e-100, 1e150)
OFFSETS = st.sampled_from([0.0, 0.5, -3.25, 1e6, -1e6, 123456.789, 2.0**40, -7.25e12, 1e15])
SCALES = st.sampled_from([1e-9, 1e-3, 1.0, 37.5, 1e4])
UNIT = _safe(1e-50, 1.0)


@st.composite
def rings(draw, max_vertices: int = 8):
    """One ring of 1..max_vertices vertices, sometimes closed (last == first)."""
    n = draw(st.integers(1, max_vertices))
    kind = draw(st.sampled_from(["local", "grid", "wide"]))
    if kind == "wide":
        xs = draw(st.lists(WIDE, min_size=n, max_size=n))
        ys = draw(st.lists(WIDE, min_size=n, max_size=n))
    elif kind == "grid":  # small integers around an offset: many exact ties
        ox, oy = draw(OFFSETS), draw(OFFSETS)
        xs = [ox + v for v in draw(st.lists(st.integers(-4, 4), min_size=n, max_size=n))]
        ys = [oy + v for v in draw(st.lists(st.integers(-4, 4), min_size=n, max_size=n))]
    else:
        ox, oy, s = draw(OFFSETS), draw(OFFSETS), draw(SCALES)
        xs = [ox + s * u for u in draw(st.lists(UNIT, min_size=n, max_size=n))]
        ys = [oy + s * u for u in draw(st.lists(UNIT, min_size=n, max_size=n))]
    if draw(st.booleans()):
        xs, ys = xs + xs[:1], ys + ys[:1]
    return np.array(xs, dtype=np.float64), np.array(ys, dtype=np.float64)


def translate(ring, tx: float, ty: float):
    return ring[0] + tx, ring[1] + ty


SHIFT = st.one_of(_safe(1e-50, 100.0), st.integers(-50, 50).map(float), OFFSETS)


@st.composite
def polygon_sets(draw, max_size: int = 16):
    """Lists of rings: random, translated copies, identical copies, clusters, or a mix."""
    kind = draw(st.sampled_from(["random", "translated", "identical", "clustered", "mixed"]))
    if kind == "random":
        return draw(st.lists(rings(), max_size=max_size))
    if kind == "translated":  # the article's workload: copies of one shape
        base = draw(rings())
        shifts = draw(st.lists(st.tuples(SHIFT, SHIFT), min_size=1, max_size=max_size))
        return [translate(base, tx, ty) for tx, ty in shifts]
    if kind == "identical":  # equal areas and equal centers: the lowest row wins
        base = draw(rings())
        others = draw(st.lists(rings(), max_size=4))
        out = [base] * draw(st.integers(1, max_size - 4)) + others
        return list(draw(st.permutations(out)))
    if kind == "clustered":  # few distinct centers, many duplicates
        shapes = draw(st.lists(rings(), min_size=1, max_size=3))
        spots = draw(st.lists(st.tuples(SHIFT, SHIFT), min_size=1, max_size=3))
        picks = draw(
            st.lists(
                st.tuples(st.integers(0, len(shapes) - 1), st.integers(0, len(spots) - 1)),
                min_size=1,
                max_size=max_size,
            )
        )
        return [translate(shapes[a], *spots[b]) for a, b in picks]
    parts = draw(st.lists(polygon_sets(max_size=6), min_size=2, max_size=3))
    return [r for p in parts for r in p]


# max_dist values where the squared-distance fast path changes regime (SPEC: it must
# give the same answers as the exact comparison everywhere).
_ROOT_MAX = float(np.sqrt(MAX_FLOAT))
_ROOT_TINY = float(np.sqrt(np.finfo(np.float64).tiny * 1e10))
EDGE_DISTS = sorted(
    {
        v
        for r in (_ROOT_MAX, _ROOT_TINY, float(np.sqrt(np.finfo(np.float64).tiny)), 1e-160)
        for v in (r, math.nextafter(r, 0), math.nextafter(r, math.inf))
    }
)
BASE_DIST = st.one_of(
    st.floats(1e-6, 10.0),
    st.floats(10.0, 1e4),
    st.floats(5e-324, 1e-140),  # max_dist^2 underflows
    st.floats(1e6, MAX_FLOAT),  # max_dist^2 overflows
    st.sampled_from(EDGE_DISTS),
    st.just(math.inf),
)
# Unit directions (cos, sin) of an exactly representable length, and a random one.
DIRECTIONS = [(1.0, 0.0), (0.0, -1.0), (0.6, 0.8), (-0.8, 0.6), (5 / 13, 12 / 13)]


def draw_points(data, cx, cy, scale):
    """Points near, at and far from the centers, on the circle of radius ``scale``,
    with NaN/inf coordinates and nulls. Returns px, py, x-null, y-null."""
    rows = np.flatnonzero(np.isfinite(cx)).tolist()
    kinds = ["random", "nan", "inf", "null"]
    if rows:
        kinds += ["center", "near", "345", "circle", "circle"]
    n = data.draw(st.integers(0, 12), label="n_points")
    px, py = np.zeros(n), np.zeros(n)
    nx, ny = np.zeros(n, bool), np.zeros(n, bool)
    for i in range(n):
        kind = data.draw(st.sampled_from(kinds))
        if kind == "random":
            coord = st.one_of(
                st.floats(-1e3, 1e3), st.floats(allow_nan=False, allow_infinity=False), OFFSETS
            )
            px[i], py[i] = data.draw(coord), data.draw(coord)
        elif kind == "nan":
            px[i], py[i] = data.draw(st.sampled_from([(np.nan, 0.0), (0.0, np.nan), (np.nan,) * 2]))
        elif kind == "inf":
            px[i], py[i] = data.draw(
                st.sampled_from([(np.inf, 0.0), (0.0, -np.inf), (-np.inf,) * 2])
            )
        elif kind == "null":
            nx[i], ny[i] = data.draw(st.sampled_from([(True, False), (False, True), (True, True)]))
            if data.draw(st.booleans()) and rows:  # a null at a center must not match
                r = data.draw(st.sampled_from(rows))
                px[i], py[i] = cx[r], cy[r]
        else:
            r = data.draw(st.sampled_from(rows))
            px[i], py[i] = cx[r], cy[r]
            with np.errstate(all="ignore"):
                if kind == "near":
                    s = data.draw(st.sampled_from([1e-12, 1e-6, 1e-3, 1.0, 100.0]))
                    px[i] += s * data.draw(UNIT)
                    py[i] += s * data.draw(UNIT)
                elif kind == "345":  # distance 5 * s, exactly if the sums are exact
                    s = 2.0 ** data.draw(st.integers(-30, 30))
                    sx, sy = data.draw(st.sampled_from([(1, 1), (-1, 1), (1, -1), (-1, -1)]))
                    px[i] += sx * 3 * s
                    py[i] += sy * 4 * s
                elif kind == "circle" and math.isfinite(scale):
                    c, s = data.draw(st.sampled_from(DIRECTIONS))
                    f = data.draw(st.sampled_from([1.0, 1 - 2**-52, 1 + 2**-52, 1 + 2**-50]))
                    px[i] += scale * c * f
                    py[i] += scale * s * f
    return px, py, nx, ny


def draw_max_dist(data, scale, px, py, cx, cy):
    """``scale``, or exactly the distance of some (point, center) pair, or one ulp off it."""
    if not (len(px) and len(cx) and data.draw(st.booleans(), label="pair")):
        return scale
    i = data.draw(st.integers(0, len(px) - 1))
    j = data.draw(st.integers(0, len(cx) - 1))
    d = float(distances(px[i : i + 1], py[i : i + 1], cx[j : j + 1], cy[j : j + 1])[0, 0])
    d = data.draw(st.sampled_from([d, math.nextafter(d, 0), math.nextafter(d, math.inf)]))
    return d if d > 0 else scale  # NaN or 0 is not a valid max_dist


def points_input(px, py, nx, ny, as_table: bool):
    if not (nx.any() or ny.any() or as_table):
        return np.stack([px, py], axis=1)
    return pa.table({"x": pa.array(px, mask=nx), "y": pa.array(py, mask=ny)})


def draw_case(data, index):
    """Points and max_dist for ``index``: (points input, px, py, valid, max_dist)."""
    cx, cy, _ = derived(index)
    scale = data.draw(BASE_DIST, label="scale")
    px, py, nx, ny = draw_points(data, cx, cy, scale)
    max_dist = draw_max_dist(data, scale, px, py, cx, cy)
    pts = points_input(px, py, nx, ny, data.draw(st.booleans(), label="as_table"))
    return pts, px, py, ~(nx | ny), max_dist


# --- 1. matches equal the numpy oracle -------------------------------------------------


def check_all_modes(index, pts, px, py, valid, max_dist):
    cx, cy, area = derived(index)
    best, best_d, pairs = oracle(cx, cy, area, px, py, valid, max_dist)
    for how in ("left", "inner"):
        check_best(index.match(pts, max_dist, how=how), best, best_d, area, how)
        got = index.match(pts, max_dist, how=how, all_candidates=True)
        check_pairs(got, pairs, area, len(px), how)


@settings(max_examples=500 * SCALE, **SETTINGS)
@given(polys=polygon_sets(), data=st.data())
def test_match_equals_numpy_oracle(polys, data):
    index = pm.PolygonIndex.from_coords(*flat(polys))
    assert len(index) == len(polys)
    check_all_modes(index, *draw_case(data, index))


ANY = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def vertex_sets(draw):
    """Single-vertex polygons (center == the vertex) anywhere in the float64 range,
    clustered around a few anchors: 0..40 of them, so the index has more than one leaf."""
    anchors = draw(st.lists(st.tuples(ANY, ANY), min_size=1, max_size=3))

    def near(a):
        k = draw(st.integers(-3, 3))
        v = a
        for _ in range(abs(k)):
            w = math.nextafter(v, math.inf if k > 0 else -math.inf)
            v = w if math.isfinite(w) else v
        return v

    out = []
    for _ in range(draw(st.integers(0, 40))):
        if draw(st.booleans()):
            out.append(draw(st.tuples(ANY, ANY)))
        else:
            ax, ay = draw(st.sampled_from(anchors))
            out.append((near(ax), near(ay)))
    return out


@settings(max_examples=400 * SCALE, **SETTINGS)
@given(vertices=vertex_sets(), data=st.data())
def test_match_any_float_coordinates(vertices, data):
    # distances that overflow, underflow or sit next to max_dist at every magnitude:
    # the squared-distance fast path must agree with sqrt(dx*dx + dy*dy) < max_dist
    x = np.array([v[0] for v in vertices], dtype=np.float64)
    y = np.array([v[1] for v in vertices], dtype=np.float64)
    index = pm.PolygonIndex.from_coords(x, y, np.arange(len(x) + 1))
    cx, cy, area = derived(index)
    assert (cx == x).all() and (cy == y).all() and (area == 0).all()
    check_all_modes(index, *draw_case(data, index))


def test_distance_equal_to_max_dist_is_excluded():
    # center (0, 0) (a square around it), point (3, 4): d == 5.0 exactly
    for off in [0.0, 1e6, -(2.0**40)]:
        sq_x = np.array([-1.0, 1.0, 1.0, -1.0]) + off
        sq_y = np.array([-1.0, -1.0, 1.0, 1.0]) - off
        index = pm.PolygonIndex.from_coords(sq_x, sq_y, np.array([0, 4]))
        pts = np.array([[off + 3.0, -off + 4.0], [off - 4.0, -off - 3.0]])
        assert index.match(pts, 5.0, how="left")["polygon_index"].to_pylist() == [None, None]
        assert index.match(pts, 5.0, all_candidates=True).num_rows == 0
        res = index.match(pts, math.nextafter(5.0, 6.0), how="left")
        assert res["polygon_index"].to_pylist() == [0, 0]
        assert res["distance"].to_pylist() == [5.0, 5.0]


def test_max_dist_inf_and_overflowing_distances():
    # inf admits every finite distance; an overflowing d (inf) is not < inf (SPEC's formula)
    index = pm.PolygonIndex.from_coords(
        np.array([0.0, 1e150, 1e150]), np.array([0.0, 0.0, 1e150]), np.array([0, 1, 3])
    )
    pts = np.array([[1e154, 0.0], [-1e200, 0.0], [5.0, 5.0]])
    cx, cy, area = derived(index)
    for max_dist in [math.inf, MAX_FLOAT, _ROOT_MAX, 1e153]:
        best, best_d, pairs = oracle(cx, cy, area, pts[:, 0], pts[:, 1], np.ones(3, bool), max_dist)
        check_best(index.match(pts, max_dist, how="left"), best, best_d, area, "left")
        check_pairs(index.match(pts, max_dist, all_candidates=True), pairs, area, 3)


# --- 2. derived columns are exact --------------------------------------------------------


def _open(xs, ys):
    xs, ys = [float(v) for v in xs], [float(v) for v in ys]
    if len(xs) >= 2 and xs[0] == xs[-1] and ys[0] == ys[-1]:
        return xs[:-1], ys[:-1]
    return xs, ys


def _area2(xs, ys) -> Fraction:
    """Twice the signed shoelace area of an open ring, exactly."""
    n = len(xs)
    if n < 3:
        return Fraction(0)
    fx, fy = [Fraction(v) for v in xs], [Fraction(v) for v in ys]
    return sum(fx[i] * fy[i - 1] - fy[i] * fx[i - 1] for i in range(n))


def exact_polygon(parts) -> tuple[float, float, float]:
    """center_x, center_y, area of a (multi)polygon: parts of [exterior, *holes] rings."""
    sx = sy = area2 = Fraction(0)
    n = 0
    for part in parts:
        ex, ey = _open(*part[0])
        sx += sum(map(Fraction, ex))
        sy += sum(map(Fraction, ey))
        n += len(ex)
        area2 += abs(_area2(ex, ey))
        for hole in part[1:]:
            area2 -= abs(_area2(*_open(*hole)))
    return float(sx / n), float(sy / n), float(area2 / 2)


def _same_float(a, b) -> bool:
    """Bit-identical, except that 0.0 and -0.0 count as equal (an exact zero has no sign)."""
    if a is None or b is None:
        return a is b
    return np.float64(a + 0.0).view(np.uint64) == np.float64(b + 0.0).view(np.uint64)


def assert_derived(index, want):
    """``want``: per row (center_x, center_y, area), or None for a null row."""
    t = index.to_arrow()
    got = zip(t["center_x"].to_pylist(), t["center_y"].to_pylist(), t["area"].to_pylist())
    for row, (g, w) in enumerate(zip(got, want, strict=True)):
        w = (None, None, None) if w is None else w
        assert all(_same_float(a, b) for a, b in zip(g, w)), (row, g, w)


@settings(max_examples=300 * SCALE, **SETTINGS)
@given(polys=polygon_sets())
def test_ring_area_and_center_are_exact(polys):
    index = pm.PolygonIndex.from_coords(*flat(polys))
    assert_derived(index, [(*exact_center(x, y), exact_area(x, y)) for x, y in polys])


@settings(max_examples=150 * SCALE, **SETTINGS)
@given(ring=rings(), shifts=st.lists(st.tuples(SHIFT, SHIFT), min_size=1, max_size=6))
def test_open_and_closed_translated_copies(ring, shifts):
    x, y = _open(*ring)
    copies = [translate((np.array(x), np.array(y)), tx, ty) for tx, ty in shifts]
    closed = [(np.append(cx, cx[0]), np.append(cy, cy[0])) for cx, cy in copies]
    polys = [r for pair in zip(copies, closed) for r in pair]
    index = pm.PolygonIndex.from_coords(*flat(polys))
    assert_derived(index, [(*exact_center(cx, cy), exact_area(cx, cy)) for cx, cy in polys])
    t = index.to_arrow()
    for col in ("center_x", "center_y", "area"):
        v = t[col].to_pylist()
        for k, (ox, oy) in enumerate(copies):
            if not (len(ox) >= 2 and ox[0] == ox[-1] and oy[0] == oy[-1]):
                assert v[2 * k] == v[2 * k + 1]  # closing an open ring changes nothing


COORD = pa.struct([("x", pa.float64()), ("y", pa.float64())])


def geoarrow_table(polys, multi: bool) -> pa.Table:
    """A GeoArrow (multi)polygon column: each item None or parts of [exterior, *holes]."""
    ring_t = pa.list_(COORD)
    typ = pa.list_(pa.list_(ring_t)) if multi else pa.list_(ring_t)

    def ring(r):
        return [{"x": float(x), "y": float(y)} for x, y in zip(*r)]

    data = []
    for p in polys:
        if p is None:
            data.append(None)
        elif multi:
            data.append([[ring(r) for r in part] for part in p])
        else:
            data.append([ring(r) for r in p[0]])
    name = "geoarrow.multipolygon" if multi else "geoarrow.polygon"
    field = pa.field("geom", typ, metadata={"ARROW:extension:name": name})
    return pa.table([pa.array(data, typ)], schema=pa.schema([field]))


def polygons_with_holes(multi: bool):
    part = st.lists(rings(), min_size=1, max_size=4)  # exterior, then 0..3 holes
    parts = st.lists(part, min_size=1, max_size=3 if multi else 1)
    return st.lists(st.one_of(st.none(), parts), max_size=6)


@settings(max_examples=150 * SCALE, **SETTINGS)
@given(multi=st.booleans(), data=st.data())
def test_geoarrow_holes_area_center_and_match(multi, data):
    polys = data.draw(polygons_with_holes(multi), label="polys")
    index = pm.PolygonIndex.from_arrow(geoarrow_table(polys, multi))
    assert len(index) == len(polys)
    assert_derived(index, [None if p is None else exact_polygon(p) for p in polys])
    # null rows never match; negative areas (holes larger than the exterior) sort first
    check_all_modes(index, *draw_case(data, index))


def test_hole_area_is_rounded_once():
    # |exterior| = 2**54 + 3 (a float64 rounds it to 2**54 + 4), |hole| = 1: the exact
    # 2**54 + 2 is a tie that rounds to even, 2**54; rounding each ring first gives
    # fl(2**54 + 4 - 1) = 2**54 + 4.
    a, b = 1422061.0, 12667809967.0  # a * b = 2**54 + 3
    tri = ([0.0, a, 0.0], [0.0, 0.0, 2 * b])
    unit = ([5.0, 6.0, 6.0, 5.0, 5.0], [5.0, 5.0, 6.0, 6.0, 5.0])
    polys = [[[tri, unit]], [[unit, tri]]]
    index = pm.PolygonIndex.from_arrow(geoarrow_table(polys, multi=False))
    assert_derived(index, [exact_polygon(p) for p in polys])
    assert index.to_arrow()["area"].to_pylist() == [2.0**54, -(2.0**54)]


# --- subnormal edge cases ------------------------------------------------------------


def test_subnormal_center_terminates():
    """Regression: the midpoint step once looped forever for subnormal centers (run in a
    subprocess with a timeout so a regression fails instead of hanging)."""
    # center_x = 1.5 * 2**-1074 exactly, which rounds (half to even) to 2 * 2**-1074.
    code = textwrap.dedent(
        """
        import numpy as np, polymatch as pm
        idx = pm.PolygonIndex.from_coords(
            np.array([1.5e-323, 0.0]), np.array([0.0, 0.0]), np.array([0, 2]))
        print(repr(idx.to_arrow()["center_x"].to_pylist()[0]))
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=10, check=False
    )
    assert r.returncode == 0, r.stderr
    assert float(r.stdout) == exact_center([1.5e-323, 0.0], [0.0, 0.0])[0] == 1e-323


def test_area_with_underflowing_products_is_exact():
    # Shoelace products below 2**-969 lose TwoProduct's error term, and the area is
    # subnormal: the exact path sums such rings in fixed point (geometry.rs WideSum).
    a = 2.0**-537
    x, y = np.array([0.0, a, 0.0]), np.array([0.0, 0.0, a * (1 + 2.0**-52)])
    index = pm.PolygonIndex.from_coords(x, y, np.array([0, 3]))
    # exact area = 2**-1075 * (1 + 2**-52): just above half the smallest subnormal
    assert index.to_arrow()["area"].to_pylist() == [exact_area(x, y)] == [5e-324]


# --- 3. invariance -----------------------------------------------------------------------


def assert_invariant(index, table, max_dist, how, all_candidates, split_sizes):
    base = index.match(table, max_dist, how, all_candidates).combine_chunks()
    for threads in (1, 2):
        for chunk_size in (1, 3, 8192):
            got = index.match(
                table, max_dist, how, all_candidates, threads=threads, chunk_size=chunk_size
            )
            assert got.combine_chunks().equals(base), (threads, chunk_size)
    for k in split_sizes:
        split = pa.Table.from_batches(table.to_batches(max_chunksize=k), schema=table.schema)
        got = index.match(split, max_dist, how, all_candidates)
        assert got.combine_chunks().equals(base), k
    clone = pm.PolygonIndex.from_bytes(index.to_bytes())
    assert len(clone) == len(index)
    assert clone.match(table, max_dist, how, all_candidates).combine_chunks().equals(base)
    return base


@settings(max_examples=150 * SCALE, **SETTINGS)
@given(polys=polygon_sets(), data=st.data())
def test_invariant_under_threads_chunks_batches_and_bytes(polys, data):
    index = pm.PolygonIndex.from_coords(*flat(polys))
    _, px, py, valid, max_dist = draw_case(data, index)
    table = pa.table({"x": pa.array(px, mask=~valid), "y": pa.array(py, mask=~valid)})
    k = data.draw(st.integers(1, 5), label="batch rows")
    for how in ("left", "inner"):
        for all_candidates in (False, True):
            assert_invariant(index, table, max_dist, how, all_candidates, [k])


# --- a large input: the Z-order path (>= 32768 polygons, >= 4096 points) ----------------


def _large_rings(rng):
    rings_ = []
    for k in (3, 4, 5, 6):  # 24000 random small polygons
        c = rng.uniform(0, 1000, size=(6000, 2))
        xs = c[:, :1] + rng.uniform(-2, 2, size=(6000, k))
        ys = c[:, 1:] + rng.uniform(-2, 2, size=(6000, k))
        rings_ += list(zip(xs, ys))
    base_x = np.arange(0.0, 1.0, 0.1)
    base_y = np.sqrt(1.0 - base_x**2)
    for tx, ty in rng.uniform(0, 1000, size=(8000, 2)):  # the article's translated copies
        rings_.append((base_x + tx, base_y + ty))
    shapes = [
        (np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0])),
        (np.array([-1.0, 1.0, 1.0, -1.0, -1.0]), np.array([-1.0, -1.0, 1.0, 1.0, -1.0])),
        (np.array([0.0, 0.5, 0.25]), np.array([0.0, 0.0, 2.0])),
    ]
    spots = rng.integers(0, 1000, size=(40, 2)).astype(np.float64)
    for s, p in zip(rng.integers(0, 3, 6000), rng.integers(0, 40, 6000)):  # exact duplicates
        rings_.append(translate(shapes[s], *spots[p]))
    for tx, ty in rng.uniform(0, 1000, size=(2000, 2)):  # far away, large coordinates
        rings_.append((np.array([1e6, 1e6 + 3, 1e6]) + tx, np.array([-1e6, -1e6, -1e6 + 2]) + ty))
    for tx, ty in rng.uniform(0, 1000, size=(500, 2)):  # single vertices and segments: area 0
        rings_.append((np.array([tx]), np.array([ty])))
        rings_.append((np.array([tx, tx + 1]), np.array([ty, ty])))
    order = rng.permutation(len(rings_))
    return [rings_[i] for i in order], spots


def _large_points(rng, cx, cy, spots):
    parts = [rng.uniform(-10, 1010, size=(3000, 2))]
    rows = rng.integers(0, len(cx), 1500)
    parts.append(np.stack([cx[rows], cy[rows]], axis=1))  # exact centers
    parts.append(parts[-1][:500] + rng.uniform(-1e-9, 1e-9, size=(500, 2)))
    parts.append(spots[rng.integers(0, len(spots), 300)] + [1 / 3, 0.0])
    parts.append(rng.uniform(0, 1000, size=(500, 2)) + [1e6, -1e6])
    sign = rng.choice([-1.0, 1.0], size=(300, 2))
    parts.append(np.stack([cx[rows[:300]], cy[rows[:300]]], axis=1) + sign * [3.0, 4.0])
    weird = np.array([[np.nan, 1.0], [1.0, np.nan], [np.inf, 0.0], [-np.inf, np.inf]])
    parts.append(np.repeat(weird, 25, axis=0))
    pts = np.concatenate(parts)
    return pts[rng.permutation(len(pts))]


def chunked_oracle(cx, cy, area, px, py, dists, pair_dists, chunk=96):
    """The oracle for many polygons: polygons sorted by (area, row) once, so the best
    candidate is the first one in that order; points in chunks to bound memory."""
    order = np.lexsort((np.arange(len(area)), area))
    scx, scy = cx[order], cy[order]
    best = {m: np.full(len(px), -1, np.int64) for m in dists}
    best_d = {m: np.full(len(px), np.nan) for m in dists}
    pairs = {m: ([], [], []) for m in pair_dists}
    for lo in range(0, len(px), chunk):
        d = distances(px[lo : lo + chunk], py[lo : lo + chunk], scx, scy)
        for m in dists:
            cand = d < m
            k = cand.argmax(axis=1)
            has = cand.any(axis=1)
            best[m][lo : lo + chunk] = np.where(has, order[k], -1)
            best_d[m][lo : lo + chunk] = np.where(has, d[np.arange(len(k)), k], np.nan)
        for m in pair_dists:
            i, k = np.nonzero(d < m)
            j = order[k]
            s = np.lexsort((j, i))
            pairs[m][0].append(i[s] + lo)
            pairs[m][1].append(j[s])
            pairs[m][2].append(d[i, k][s])
    pairs = {m: tuple(np.concatenate(v) for v in p) for m, p in pairs.items()}
    return best, best_d, pairs


@pytest.fixture(scope="module")
def large_case():
    rng = np.random.default_rng(20240611)
    polys, spots = _large_rings(rng)
    index = pm.PolygonIndex.from_coords(*flat(polys))
    cx, cy, _ = derived(index)
    pts = _large_points(rng, cx, cy, spots)
    return polys, index, pts


def test_large_input_matches_oracle_and_is_invariant(large_case):
    polys, index, pts = large_case
    assert len(index) >= 40_000 and len(pts) >= 5_000
    cx, cy, area = derived(index)
    # spot-check the derived columns against the exact oracle
    rows = np.random.default_rng(1).choice(len(polys), 300, replace=False)
    sample = [(*exact_center(*polys[r]), exact_area(*polys[r])) for r in rows]
    assert list(zip(cx[rows], cy[rows], area[rows])) == sample

    px, py = pts[:, 0], pts[:, 1]
    dists = [1e-9, 2.0, 5.0, 12.5, math.inf]
    pair_dists = [2.0, 5.0]
    best, best_d, pairs = chunked_oracle(cx, cy, area, px, py, dists, pair_dists)
    table = pa.table({"x": px, "y": py})
    for m in dists:
        assert (best[m] >= 0).any()
        for how in ("left", "inner"):
            got = assert_invariant(index, table, m, how, False, [5000, 4095, 1000])
            check_best(got, best[m], best_d[m], area, how)
    for m in pair_dists:
        got = assert_invariant(index, table, m, "inner", True, [4095])
        check_pairs(got, pairs[m], area, len(px))
    # nulls in a large batch, on the Z-order path
    mask = np.zeros(len(px), bool)
    mask[::7] = True
    nulls = pa.table({"x": pa.array(px, mask=mask), "y": py})
    got = assert_invariant(index, nulls, 5.0, "left", False, [])
    check_best(got, np.where(mask, -1, best[5.0]), best_d[5.0], area, "left")


def test_threshold_sizes_with_degenerate_bounds():
    # exactly 32768 polygons and 4096 points (the Z-order thresholds), all centers on one
    # horizontal line at two spots (zero-height bounds) and exact duplicates: ties everywhere
    rng = np.random.default_rng(7)
    shapes = [
        (np.array([-1.0, 1.0, 1.0, -1.0]), np.array([-1.0, -1.0, 1.0, 1.0])),  # area 4
        (np.array([-2.0, 2.0, 0.0]), np.array([-1.0, -1.0, 2.0])),  # area 6, center (0, 0)
        (np.array([5.0]), np.array([0.0])),  # area 0 (center (5, 0))
    ]
    pick = rng.choice(3, size=1 << 15, p=[0.6, 0.3999, 0.0001])
    spot = rng.choice([0.0, 1e6], size=1 << 15)
    polys = [translate(shapes[k], s, 3.0) for k, s in zip(pick, spot)]
    index = pm.PolygonIndex.from_coords(*flat(polys))
    cx, cy, area = derived(index)
    pts = np.concatenate(
        [
            rng.uniform(-10, 10, size=(2000, 2)) + [0.0, 3.0],
            rng.uniform(-10, 10, size=(2000, 2)) + [1e6, 3.0],
            [[0.0, 3.0], [1e6, 3.0], [5.0, 3.0], [np.nan, 3.0]] * 24,
        ]
    )
    assert len(index) == 32768 and len(pts) == 4096
    px, py = pts[:, 0], pts[:, 1]
    dists = [1e-9, 1.0, 5.0, 2e6, math.inf]
    best, best_d, _ = chunked_oracle(cx, cy, area, px, py, dists, [])
    table = pa.table({"x": px, "y": py})
    for m in dists:
        got = assert_invariant(index, table, m, "left", False, [4095])
        check_best(got, best[m], best_d[m], area, "left")
