"""polymatch: match 2-D points to polygons, fast.

For each point, the *candidates* are the polygons whose center (the mean of the exterior
vertices) lies strictly within ``max_dist``; the *match* is the candidate with the smallest
area, the lowest polygon row on ties. Centers and areas are computed exactly (correctly
rounded), so answers are identical on every machine, thread count and batch size.

Example::

    import polymatch as pm
    index = pm.PolygonIndex.from_arrow(polygons_table)   # GeoArrow, WKB or x/y lists
    result = index.match(points_table, max_dist=10.0)    # -> pyarrow.Table
"""

from __future__ import annotations

from typing import Any, Literal

from polymatch._core import (
    InvalidGeometryError,
    PolygonIndex,
    PolymatchError,
    SchemaError,
    __version__,
    _debug_build,
    match_parquet,
    read_polygons,
)

__all__ = [
    "InvalidGeometryError",
    "PolygonIndex",
    "PolymatchError",
    "SchemaError",
    "__version__",
    "match",
    "match_parquet",
    "plot",
    "read_polygons",
]

if _debug_build:  # pragma: no cover - depends on how the extension was built
    import warnings

    warnings.warn(
        "polymatch was built in debug mode and will be slow; "
        "rebuild with `maturin develop --release`",
        RuntimeWarning,
        stacklevel=2,
    )


def plot(*args: Any, **kwargs: Any) -> Any:
    """Draw polygons, points and the lines between matched pairs (needs matplotlib:
    ``pip install "polymatch[plot]"``); the arguments are those of
    ``polymatch._plot.plot``."""
    from polymatch._plot import plot as _plot

    return _plot(*args, **kwargs)


def match(
    polygons: Any,
    points: Any,
    max_dist: float | None = None,
    how: Literal["inner", "left"] = "inner",
    all_candidates: bool = False,
    *,
    geometry: str | None = None,
    metric: Literal["planar", "sphere"] | None = None,
    **kwargs: Any,
) -> Any:
    """Match ``points`` to ``polygons`` in one call (builds the index, then matches).

    Args:
        polygons: a :class:`PolygonIndex`, or anything :meth:`PolygonIndex.from_arrow`
            takes (pyarrow/polars tables, geopandas GeoDataFrames and GeoSeries, bare
            WKB/GeoArrow arrays).
        points: anything :meth:`PolygonIndex.match` takes.
        max_dist: with ``predicate="center"`` (the default), candidates are polygons
            whose center is at distance ``< max_dist`` (default 10); with
            ``predicate="dwithin"`` (required), polygons whose outline is closer than
            it; ``"contains"`` and ``"covers"`` take none.
        how: ``"inner"`` keeps matched points only, ``"left"`` keeps every point.
        all_candidates: return every (point, candidate) pair instead of the best one.
        geometry: the polygons' geometry column (default: the rule of docs/SPEC.md).
        metric: ``"planar"`` (the default) or ``"sphere"``: longitude/latitude degrees,
            ``max_dist`` and ``distance`` in great-circle metres, ``area`` in square
            metres. Not given with geographic polygons: a ``UserWarning``.
        **kwargs: passed on to :meth:`PolygonIndex.match` (``predicate``, ``rank_by``,
            ``k``, ``x``, ``y``, ``keep``, ``keep_polygons``, ``allow_crs_mismatch``,
            ``threads``, ...).

    Returns:
        A ``pyarrow.Table`` with ``point_index``, ``polygon_index``, ``distance``, ``area``.
    """
    from polymatch._convert import polygons_to_arrow

    index = (
        polygons
        if isinstance(polygons, PolygonIndex)
        else PolygonIndex.from_arrow(polygons_to_arrow(polygons), geometry=geometry, metric=metric)
    )
    return index.match(points, max_dist, how, all_candidates, metric=metric, **kwargs)
