"""The seed article's library, as a drop-in: ``from polymatch import compat as poly_match``.

Same names, same arguments, same Python objects in and out (the caller's own
``Polygon`` objects, subclasses included, and the points as given), only native.
Answers follow polymatch's SPEC: exact centers and areas, ``distance < max_dist``,
smallest area wins, the first polygon on ties.

Differences from the article, on purpose:

* ``Polygon.center`` and ``Polygon.area()`` are exactly rounded (the article's numpy
  versions can differ in the last bit between machines, which flips its tie-breaks);
* ``Polygon`` is a native class: subclass it to add methods and attributes, as the
  article's final code does. A subclass that overrides ``area()`` is asked for it.
"""

from __future__ import annotations

import numpy as np

from polymatch._core import (
    Polygon,
    find_all_close_polygons,
    find_close_polygons,
    main,
    select_best_polygon,
)

__all__ = [
    "Polygon",
    "find_all_close_polygons",
    "find_close_polygons",
    "generate_example",
    "generate_one_polygon",
    "main",
    "select_best_polygon",
]


def generate_one_polygon() -> Polygon:
    """The article's base shape: a quarter circle sampled at ``x = 0, 0.1, ..., 0.9``."""
    x = np.arange(0.0, 1.0, 0.1)
    y = np.sqrt(1.0 - x**2)
    return Polygon(x, y)


def generate_example() -> tuple[list[Polygon], list[np.ndarray]]:
    """The article's workload: 1000 translated copies of the base shape and 100 points,
    from ``numpy.random.RandomState(6)`` exactly as the article draws them."""
    rng = np.random.RandomState(6)

    xs = np.arange(0.0, 100.0, 1.0)
    rng.shuffle(xs)

    ys = np.arange(0.0, 100.0, 1.0)
    rng.shuffle(ys)

    points = [np.array([x, y]) for x, y in zip(xs, ys)]

    base = generate_one_polygon()
    base_x, base_y = base.x, base.y
    polygons = []
    for _ in range(1000):
        dx = rng.randint(0.0, 100.0)
        dy = rng.randint(0.0, 100.0)
        polygons.append(Polygon(base_x + dx, base_y + dy))

    return polygons, points
