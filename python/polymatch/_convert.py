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


def points_to_arrow(points: Any) -> Any:
    """Points as an Arrow table: numpy ``(N, 2)`` arrays, pandas DataFrames, dicts of
    columns, and sequences of ``(x, y)`` pairs are accepted."""
    to_arrow = getattr(points, "to_arrow", None)
    if to_arrow is not None and type(points).__module__.startswith("geopandas"):
        return to_arrow(index=False)
    if _has_arrow(points):
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
    """Polygons as an Arrow table: geopandas GeoDataFrames go through ``to_arrow()``
    (WKB), pandas DataFrames through pyarrow."""
    # geopandas first: a GeoDataFrame is a pandas DataFrame, whose own Arrow export
    # cannot convert the geometry column.
    to_arrow = getattr(polygons, "to_arrow", None)
    if to_arrow is not None and type(polygons).__module__.startswith("geopandas"):
        return to_arrow(index=False)
    if _has_arrow(polygons):
        return polygons
    if _is_pandas(polygons):
        return pa.Table.from_pandas(polygons, preserve_index=False)
    raise TypeError(
        "polygons must be an Arrow table-like object (pyarrow, polars, geopandas' to_arrow()), "
        f"a GeoDataFrame or a DataFrame; got {type(polygons).__name__}"
    )


def _is_pandas(obj: Any) -> bool:
    return type(obj).__module__.startswith("pandas") and hasattr(obj, "columns")
