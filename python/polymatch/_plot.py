"""A picture of a match: polygons, points, and a line from each point to its match.

matplotlib is an optional dependency: ``pip install "polymatch[plot]"``. Without it,
:func:`plot` raises an ``ImportError`` naming that extra. Reached as ``polymatch.plot``
(this module is private so that importing it never shadows that function).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from polymatch._convert import points_to_arrow


def _outlines(index: Any, limit: int) -> list[np.ndarray]:
    geometry = index.to_arrow()
    if "geometry" not in geometry.column_names:
        return []
    geom = geometry["geometry"].combine_chunks()
    if isinstance(geom, pa.ExtensionArray):  # geoarrow-pyarrow registered: its own type
        geom = geom.storage
    parts = geom.values  # polygon -> parts
    rings = parts.values  # part -> rings
    coords = rings.values  # ring -> coordinates
    first_ring = parts.offsets[0].as_py()
    last_ring = parts.offsets[min(limit, len(parts))].as_py() if len(parts) else first_ring
    offsets = rings.offsets.to_numpy()[first_ring : last_ring + 1]
    x = coords.field("x").to_numpy()
    y = coords.field("y").to_numpy()
    return [np.column_stack([x[a:b], y[a:b]]) for a, b in zip(offsets[:-1], offsets[1:])]


def plot(
    index: Any,
    points: Any,
    matches: Any,
    *,
    ax: Any = None,
    path: str | None = None,
    max_polygons: int = 20_000,
    x: str = "x",
    y: str = "y",
) -> Any:
    """Draw polygons (outlines), points, and a line from each matched point to the center
    of its polygon.

    Args:
        index: the :class:`polymatch.PolygonIndex` that was matched against.
        points: the points that were matched (anything ``PolygonIndex.match`` takes with
            ``x``/``y`` columns, or a numpy ``(N, 2)`` array).
        matches: the result of ``index.match(points, ...)``.
        ax: a matplotlib Axes to draw on (a new figure if ``None``).
        path: if given, save the figure there (PNG by extension).
        max_polygons: draw at most this many polygon outlines.
        x, y: names of the point coordinate columns.

    Returns:
        The matplotlib Axes.
    """
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError('polymatch.plot needs matplotlib: pip install "polymatch[plot]"') from e

    if ax is None and path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection, PolyCollection

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 8))
    table = pa.table(points_to_arrow(points))
    px, py = table[x].to_numpy(), table[y].to_numpy()
    ax.add_collection(
        PolyCollection(
            _outlines(index, max_polygons), facecolor="#dbe9f6", edgecolor="#3b6ea5", lw=0.6
        )
    )
    derived = index.to_arrow()
    cx, cy = derived["center_x"].to_numpy(), derived["center_y"].to_numpy()
    m = pa.table(matches).filter(pa.compute.is_valid(pa.table(matches)["polygon_index"]))
    pi = m["point_index"].to_numpy().astype(np.int64)
    gi = m["polygon_index"].to_numpy().astype(np.int64)
    segments = np.stack([np.column_stack([px[pi], py[pi]]), np.column_stack([cx[gi], cy[gi]])], 1)
    ax.add_collection(LineCollection(segments, colors="#d95f02", lw=0.8))
    ax.scatter(px, py, s=8, color="#1b9e77", zorder=3, label="points")
    ax.set_aspect("equal")
    ax.autoscale_view()
    ax.set_title(f"{m.num_rows} of {len(px)} points matched")
    if path is not None:
        ax.figure.savefig(path, dpi=110, bbox_inches="tight")
    return ax
