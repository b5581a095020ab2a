"""Argument conversion for inputs that do not speak the Arrow PyCapsule interface.

Pure convenience: no loops over rows. Each function returns an object with
``__arrow_c_stream__`` or ``__arrow_c_array__``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa


def _has_arrow(obj: Any) -> bool:
    return hasattr(obj, "__arrow_c_stream__") or hasattr(obj, "__arrow_c_array__")


def _geopandas_to_arrow(obj: Any) -> Any:
    """A GeoDataFrame or GeoSeries as an Arrow table with a ``geoarrow.wkb`` geometry
    column (its CRS in the extension metadata) and GeoParquet-style ``geo`` metadata;
    the index is not exported (``point_index`` is the row position). None if ``obj`` is
    not a geopandas object."""
    if not type(obj).__module__.startswith("geopandas"):
        return None
    import geopandas

    if isinstance(obj, geopandas.GeoSeries):
        obj = geopandas.GeoDataFrame(geometry=obj.reset_index(drop=True))
    if isinstance(obj, geopandas.GeoDataFrame):
        return obj.to_arrow(index=False)
    return None


def _collect(obj: Any) -> Any:
    """A polars LazyFrame, collected (matching needs every row)."""
    if type(obj).__name__ == "LazyFrame" and hasattr(obj, "collect"):
        return obj.collect()
    return obj


def points_to_arrow(points: Any) -> Any:
    """Points as an Arrow table: geopandas GeoDataFrames and GeoSeries, numpy ``(N, 2)``
    arrays, pandas DataFrames, polars LazyFrames (collected), dicts of columns, and
    sequences of ``(x, y)`` pairs are accepted."""
    geo = _geopandas_to_arrow(points)
    if geo is not None:
        return geo
    points = _collect(points)
    if _has_arrow(points) and not _is_pandas(points):
        return points
    if _is_pandas(points):
        return pa.Table.from_pandas(points, preserve_index=False)
    if isinstance(points, dict):
        return pa.table(points)
    arr = np.asarray(points)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(
            "points must be an Arrow table-like object, a pandas/polars DataFrame, or a numeric "
            f"(N, 2) array; got {type(points).__name__} of dtype {arr.dtype}"
        )
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"a points array must have shape (N, 2), got {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    return pa.table({"x": np.ascontiguousarray(arr[:, 0]), "y": np.ascontiguousarray(arr[:, 1])})


def polygons_to_arrow(polygons: Any) -> Any:
    """Polygons as an Arrow table: geopandas GeoDataFrames and GeoSeries go through
    ``to_arrow()`` (WKB, CRS kept), pandas DataFrames through pyarrow, polars LazyFrames
    are collected."""
    # geopandas first: a GeoDataFrame is a pandas DataFrame, whose own Arrow export
    # cannot convert the geometry column.
    geo = _geopandas_to_arrow(polygons)
    if geo is not None:
        return geo
    polygons = _collect(polygons)
    if _has_arrow(polygons) and not _is_pandas(polygons):
        return polygons
    if _is_pandas(polygons):
        return pa.Table.from_pandas(polygons, preserve_index=False)
    raise TypeError(
        "polygons must be an Arrow table-like object (pyarrow, polars, geopandas' to_arrow()), "
        f"a GeoDataFrame, a GeoSeries or a DataFrame; got {type(polygons).__name__}"
    )


def _is_pandas(obj: Any) -> bool:
    return type(obj).__module__.startswith("pandas") and hasattr(obj, "columns")
