"""Shared fixtures: the article's workload, exact (fractions) oracles, the one WKB writer."""

from __future__ import annotations

import math
import signal
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import Any

import numpy as np
import pytest


def article_workload() -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """The seed article's `generate_example()` (ARTICLE_WORKLOAD.md), as rings and points."""
    rng = np.random.RandomState(6)
    xs = np.arange(0.0, 100.0, 1.0)
    rng.shuffle(xs)
    ys = np.arange(0.0, 100.0, 1.0)
    rng.shuffle(ys)
    points = np.stack([xs, ys], axis=1)
    base_x = np.arange(0.0, 1.0, 0.1)
    base_y = np.sqrt(1.0 - base_x**2)
    polygons = []
    for _ in range(1000):
        dx = rng.randint(0.0, 100.0)
        dy = rng.randint(0.0, 100.0)
        polygons.append((base_x + dx, base_y + dy))
    return polygons, points


def flat(rings: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rings as flat x, y and offsets."""
    x = np.concatenate([r[0] for r in rings]) if rings else np.zeros(0)
    y = np.concatenate([r[1] for r in rings]) if rings else np.zeros(0)
    offsets = np.concatenate([[0], np.cumsum([len(r[0]) for r in rings])]).astype(np.int64)
    return x.astype(np.float64), y.astype(np.float64), offsets


def _open(x: list[float], y: list[float]) -> tuple[list[float], list[float]]:
    if len(x) >= 2 and x[0] == x[-1] and y[0] == y[-1]:
        return x[:-1], y[:-1]
    return x, y


def exact_area(x, y) -> float:
    """Shoelace area in exact rational arithmetic, rounded once (SPEC.md)."""
    x, y = _open([float(v) for v in x], [float(v) for v in y])
    n = len(x)
    if n < 3:
        return 0.0
    s = sum(
        Fraction(x[i]) * Fraction(y[i - 1]) - Fraction(y[i]) * Fraction(x[i - 1]) for i in range(n)
    )
    return float(abs(s) / 2)


def exact_center(x, y) -> tuple[float, float]:
    """Vertex mean in exact rational arithmetic, rounded once per coordinate."""
    x, y = _open([float(v) for v in x], [float(v) for v in y])
    n = len(x)
    return float(sum(map(Fraction, x)) / n), float(sum(map(Fraction, y)) / n)


def oracle_match(centers, areas, points, max_dist):
    """Best polygon row per point (or None): SPEC.md with plain Python floats."""
    out = []
    for px, py in points:
        best = None
        for row, ((cx, cy), a) in enumerate(zip(centers, areas)):
            dx, dy = px - cx, py - cy
            d = math.sqrt(dx * dx + dy * dy)
            if d < max_dist and (best is None or (a, row) < (areas[best], best)):
                best = row
        out.append(best)
    return out


@pytest.fixture(scope="session")
def article():
    return article_workload()


@pytest.fixture
def python_sigint_handler():
    """Python's own SIGINT handler for the test's duration, restored after. A process
    started in the background (`cmd &` in a script) inherits an ignored SIGINT: then no
    KeyboardInterrupt arrives, and child processes inherit the ignored signal too (while
    with a handler installed here, a child starts with the default disposition)."""
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


def wkb_ring(ring: list[tuple[float, float]], endian: str = "<", close: bool = True) -> bytes:
    """One WKB ring; an open ring is closed (its first vertex repeated) unless ``close``
    is false."""
    closed = ring + ring[:1] if close and len(ring) > 1 else ring
    return struct.pack(endian + "I", len(closed)) + b"".join(
        struct.pack(endian + "dd", x, y) for x, y in closed
    )


def wkb_polygon(*rings: list[tuple[float, float]], big_endian: bool = False,
                close: bool = True) -> bytes:  # fmt: skip
    """A WKB Polygon (ISO, either byte order): the tests' one WKB writer."""
    e = ">" if big_endian else "<"
    head = bytes([0 if big_endian else 1]) + struct.pack(e + "II", 3, len(rings))
    return head + b"".join(wkb_ring(r, e, close) for r in rings)


def wkb_multipolygon(*polygons: list[list[tuple[float, float]]]) -> bytes:
    head = bytes([1]) + struct.pack("<II", 6, len(polygons))
    return head + b"".join(wkb_polygon(*p) for p in polygons)


def wkb_point(x: float, y: float) -> bytes:
    return bytes([1]) + struct.pack("<Idd", 1, x, y)


@contextmanager
def local_cluster(allowed_failures: int = 20, **config: Any) -> Iterator[Any]:
    """A real ``distributed`` cluster of two single-threaded worker processes (nannies)
    on this machine, and a client of it: the Dask test modules' cluster."""
    import dask
    import distributed

    with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures, **config}):
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
            ) as cluster,
            distributed.Client(cluster) as c,
        ):
            yield c
