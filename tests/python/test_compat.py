"""polymatch.compat: the article's API as a drop-in (tests in the article's style, plus
identity, subclasses and the exact oracle)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import polymatch as pm
from polymatch import compat as poly_match

from conftest import exact_area, exact_center, oracle_match

SCALE = int(os.environ.get("POLYMATCH_EXAMPLES_SCALE", "1"))
SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}


def test_area():
    box = poly_match.Polygon(np.array([0.0, 1.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0, 1.0]))
    assert box.area() == 1.0
    poly = poly_match.generate_one_polygon()
    x, y = poly.x, poly.y
    article_area = 0.5 * np.abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    assert poly.area() == pytest.approx(article_area, rel=1e-12)
    assert poly.area() == exact_area(poly.x, poly.y)


def test_center():
    box = poly_match.Polygon(np.array([0.0, 1.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0, 1.0]))
    assert np.array_equal(box.center, [0.5, 0.5])
    poly = poly_match.generate_one_polygon()
    assert tuple(poly.center) == exact_center(poly.x, poly.y)
    np.testing.assert_allclose(poly.center, [0.45, np.sqrt(1 - np.arange(0, 1, 0.1) ** 2).mean()])


def test_main_on_example():
    polygons, points = poly_match.generate_example()
    assert len(polygons) == 1000 and len(points) == 100
    res = poly_match.main(polygons, points)
    assert len(res) == 100
    centers = [tuple(p.center) for p in polygons]
    areas = [p.area() for p in polygons]
    want = oracle_match(centers, areas, [tuple(p) for p in points], 10.0)
    got = [polygons.index(poly) for _, poly in res]
    # identity: the very same objects come back
    for (point, poly), p, w in zip(res, points, want):
        assert point is p
        assert poly is polygons[w]
    assert got == want


def test_generate_example_is_the_articles():
    polygons, points = poly_match.generate_example()
    rng = np.random.RandomState(6)
    xs = np.arange(0.0, 100.0, 1.0)
    rng.shuffle(xs)
    ys = np.arange(0.0, 100.0, 1.0)
    rng.shuffle(ys)
    assert all(np.array_equal(p, [x, y]) for p, x, y in zip(points, xs, ys))
    dx, dy = rng.randint(0.0, 100.0), rng.randint(0.0, 100.0)
    base = poly_match.generate_one_polygon()
    assert np.array_equal(polygons[0].x, base.x + dx)
    assert np.array_equal(polygons[0].y, base.y + dy)


def test_functions_agree_with_each_other():
    polygons, points = poly_match.generate_example()
    sets = [(p, poly_match.find_close_polygons(polygons, p, 10.0)) for p in points]
    assert sum(len(s) for _, s in sets) == 2925
    best = poly_match.select_best_polygon([s for s in sets if s[1]])
    assert [
        (a is c, b is d) for (a, b), (c, d) in zip(best, poly_match.main(polygons, points))
    ] == [(True, True)] * 100
    allc = poly_match.find_all_close_polygons(polygons, points, 10.0)
    assert [(p is q, list(a) == list(b)) for (p, a), (q, b) in zip(allc, sets)] == [
        (True, True)
    ] * 100
    assert all(x is y for (_, a), (_, b) in zip(allc, sets) for x, y in zip(a, b))


class MyPolygon(poly_match.Polygon):
    """A researcher's subclass, as in the article's final code."""

    label: str = ""

    def perimeter(self) -> float:
        return float(np.hypot(np.diff(self.x), np.diff(self.y)).sum())


def test_subclass_works_everywhere():
    polygons, points = poly_match.generate_example()
    mine = [MyPolygon(p.x, p.y) for p in polygons]
    for i, p in enumerate(mine):
        p.label = f"p{i}"
    res = poly_match.main(mine, points)
    assert all(isinstance(poly, MyPolygon) for _, poly in res)
    assert [poly.label for _, poly in res] == [
        f"p{polygons.index(q)}" for _, q in poly_match.main(polygons, points)
    ]
    assert res[0][1].perimeter() > 0
    close = poly_match.find_close_polygons(mine, points[0], 10.0)
    assert all(isinstance(p, MyPolygon) for p in close)
    assert repr(mine[0]).startswith("MyPolygon(x=array([")
    clone = pickle.loads(pickle.dumps(mine[3]))
    assert clone == mine[3] and clone.label == "p3" and type(clone) is MyPolygon


def test_subclass_area_override_is_used():
    class Weighted(poly_match.Polygon):
        def area(self) -> float:
            return -float(self.center[0])  # prefers the polygon farthest right

    polys = [Weighted([0.0, 1.0, 0.0], [0.0, 0.0, 1.0]), Weighted([3.0, 4.0, 3.0], [0.0, 0.0, 1.0])]
    res = poly_match.main(polys, [np.array([2.0, 0.0])])
    assert res[0][1] is polys[1]
    # many points (main then indexes the centers): the same order, and non-finite points
    # match nothing
    many = [np.array([2.0, 0.0])] * 20 + [np.array([np.nan, 0.0]), np.array([np.inf, 0.0])]
    res = poly_match.main(polys, many)
    assert len(res) == 20 and all(poly is polys[1] for _, poly in res)
    assert len(poly_match.main(polys, many, float("inf"))) == 20


def test_points_as_one_array_and_empty_results():
    polygons, points = poly_match.generate_example()
    arr = np.array(points)
    res = poly_match.main(polygons, arr)
    assert [tuple(p) for p, _ in res] == [tuple(p) for p in points]
    assert poly_match.main(polygons, [np.array([-1e6, -1e6])]) == []


def test_equality_and_errors():
    a = poly_match.Polygon([0, 1, 0], [0, 0, 1])
    assert a == poly_match.Polygon(np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0]))
    assert a != poly_match.Polygon([0, 2, 0], [0, 0, 1])
    with pytest.raises(TypeError):
        hash(a)
    with pytest.raises(pm.InvalidGeometryError, match="x has 3 values but y has 2"):
        poly_match.Polygon([0, 1, 0], [0, 0])
    with pytest.raises(pm.InvalidGeometryError, match="not finite"):
        poly_match.Polygon([0, np.nan, 0], [0, 0, 1])
    with pytest.raises(TypeError, match="Polygon objects"):
        poly_match.main([object()], [np.zeros(2)])


# --- main and find_all_close_polygons bucket the centers in a grid (32+ polygons): -------
# --- both must equal the plain scans of find_close_polygons / select_best_polygon --------


class Scored(poly_match.Polygon):
    """Areas chosen by the test (ties, negatives, infinities), through an override."""

    score: float = 0.0

    def area(self) -> float:
        return self.score


@st.composite
def grid_cases(draw):
    base = draw(st.sampled_from([0.0, -1e3, 1e6, 3e8, 1e12]))
    max_dist = draw(st.sampled_from([1e-3, 0.5, 1.0, 2.5, 7.0, 1e3, 1e9]))
    spread = draw(st.sampled_from([1.0, 10.0, 100.0, 1e4]))
    n = draw(st.integers(32, 90))
    offsets = draw(
        st.lists(st.tuples(st.integers(0, 64), st.integers(0, 64)), min_size=n, max_size=n)
    )
    scale = spread / 64
    polys = []
    for ox, oy in offsets:
        x0, y0 = base + ox * scale, base - oy * scale
        polys.append(((x0, x0 + 1.0, x0), (y0, y0, y0 + 1.0)))
    scores = draw(
        st.none()
        | st.lists(
            st.sampled_from([0.0, -0.0, 1.0, 2.0, -3.5, np.inf, -np.inf, np.nan]),
            min_size=n,
            max_size=n,
        )
    )
    n_points = draw(st.integers(2, 30))
    points = []
    for _ in range(n_points):
        kind = draw(st.sampled_from(["near", "edge", "free", "odd"]))
        i = draw(st.integers(0, n - 1))
        cx = sum(polys[i][0]) / 3
        cy = sum(polys[i][1]) / 3
        if kind == "near":
            fx, fy = draw(st.floats(-1.5, 1.5)), draw(st.floats(-1.5, 1.5))
            points.append((cx + fx * max_dist, cy + fy * max_dist))
        elif kind == "edge":  # at max_dist along an axis, and one ulp either side
            step = draw(st.sampled_from([-1, 0, 1]))
            sign = draw(st.sampled_from([-1.0, 1.0]))
            px = np.nextafter(cx + sign * max_dist, np.inf * step) if step else cx + sign * max_dist
            points.append((float(px), cy))
        elif kind == "free":
            points.append(
                (base + draw(st.floats(-2, 2)) * spread, base - draw(st.floats(-2, 2)) * spread)
            )
        else:
            points.append(
                draw(st.sampled_from([(np.nan, cy), (cx, np.inf), (-1e300, 1e300), (cx, cy)]))
            )
    return polys, scores, points, max_dist


@settings(max_examples=150 * SCALE, **SETTINGS)
@given(grid_cases())
def test_main_and_find_all_equal_the_plain_scans(case):
    polys, scores, points, max_dist = case
    if scores is None:
        polygons = [poly_match.Polygon(np.array(x), np.array(y)) for x, y in polys]
    else:
        polygons = []
        for (x, y), s in zip(polys, scores):
            p = Scored(np.array(x), np.array(y))
            p.score = s
            polygons.append(p)
    pts = [np.array(p, dtype=np.float64) for p in points]
    sets = [(p, poly_match.find_close_polygons(polygons, p, max_dist)) for p in pts]
    sets = [s for s in sets if s[1]]
    want = poly_match.select_best_polygon(sets)
    got = poly_match.main(polygons, pts, max_dist)
    assert [(a is c, b is d) for (a, b), (c, d) in zip(got, want)] == [(True, True)] * len(want)
    assert len(got) == len(want)
    centers = [tuple(map(float, p.center)) for p in polygons]
    areas = [p.area() for p in polygons]
    oracle = oracle_match(centers, areas, [tuple(map(float, p)) for p in pts], max_dist)
    if not any(np.isnan(areas)):  # the oracle's (area, row) order has no place for NaN
        positions = [next(i for i, q in enumerate(polygons) if q is b) for _, b in got]
        assert positions == [w for w in oracle if w is not None]
    allc = poly_match.find_all_close_polygons(polygons, pts, max_dist)
    assert [
        (p is q, [id(x) for x in a] == [id(x) for x in b]) for (p, a), (q, b) in zip(allc, sets)
    ] == [(True, True)] * len(sets)
    assert len(allc) == len(sets)
