import os
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from typing_extensions import Self, disjoint_base

_Columns = str | Sequence[str]
_Metric = Literal["planar", "sphere"]

__all__ = [
    "PolymatchError",
    "SchemaError",
    "InvalidGeometryError",
    "PolygonIndex",
    "Polygon",
    "Tiling",
    "read_polygons",
    "same_crs",
    "resolve_columns",
    "write_results",
    "match_parquet",
    "run_cli",
    "find_close_polygons",
    "select_best_polygon",
    "find_all_close_polygons",
    "main",
    "__version__",
    "_debug_build",
]

__version__: str
_debug_build: bool

class PolymatchError(Exception): ...
class SchemaError(PolymatchError): ...
class InvalidGeometryError(PolymatchError): ...

@final
class PolygonIndex:
    """Polygons prepared for matching: columns with exact centers and areas, and a
    spatial index over the centers. Immutable and thread-safe."""

    @classmethod
    def from_arrow(
        cls, data: Any, geometry: str | None = None, *, metric: _Metric | None = None
    ) -> PolygonIndex:
        """Build from a table of polygons (Arrow table-likes, geopandas, bare geometry
        arrays, pandas, polars LazyFrames)."""

    @classmethod
    def from_coords(
        cls, x: Any, y: Any, offsets: Any, *, metric: _Metric | None = None
    ) -> PolygonIndex:
        """Build from flat coordinates, one ring per polygon, ``offsets`` of length P+1."""

    @classmethod
    def from_bytes(cls, data: bytes, crs: str | dict[str, Any] | None = None) -> PolygonIndex:
        """Read what :meth:`to_bytes` wrote (the outlines too, if it wrote them),
        carrying ``crs``."""

    @classmethod
    def from_centers(
        cls,
        data: Any,
        crs: str | dict[str, Any] | None = None,
        *,
        center_x: str = "center_x",
        center_y: str = "center_y",
        area: str = "area",
        metric: _Metric | None = None,
    ) -> PolygonIndex:
        """Build from precomputed centers and areas (null/NaN: unmatchable); every
        column is kept as an attribute."""

    @property
    def crs(self) -> str | dict[str, Any] | None:
        """The CRS the polygons were stated in."""

    @property
    def attributes(self) -> pa.Table | None:
        """The polygon attribute columns (the source table), or None."""

    def to_bytes(self, *, outlines: bool = True) -> bytes:
        """The match-ready index (centers, areas, tree, its rank order) and, unless
        ``outlines=False``, the polygons' outlines, as bytes."""

    def prepare(self, rank_by: str = "area", descending: bool = False) -> PolygonIndex:
        """The index ranked by ``rank_by`` (``"area"`` or a numeric polygon column)."""

    @property
    def rank_order(self) -> tuple[str, bool]:
        """The index's own order as ``(rank_by, descending)``."""

    @property
    def metric(self) -> _Metric:
        """What centers, areas and distances are measured in."""

    @property
    def edges(self) -> Literal["planar", "spherical"]:
        """How the edges run between the vertices, as the data states it."""

    def bounds(self, reach: float | None = None) -> pa.Table:
        """Each polygon's closed bounds: ``xmin``, ``ymin``, ``xmax``, ``ymax`` (on the
        sphere with ``reach``: holding every point within ``reach`` metres of it)."""

    def to_arrow(self) -> pa.Table:
        """The polygon columns with ``center_x``, ``center_y``, ``area`` as a pyarrow.Table."""

    def match(
        self,
        points: Any,
        max_dist: float | None = None,
        how: Literal["inner", "left"] = "inner",
        all_candidates: bool = False,
        *,
        predicate: Literal["center", "contains", "covers", "dwithin"] = "center",
        rank_by: str = "area",
        descending: bool = False,
        k: int = 1,
        x: str | None = None,
        y: str | None = None,
        geometry: str | None = None,
        keep: _Columns | None = None,
        keep_polygons: _Columns | None = None,
        allow_crs_mismatch: bool = False,
        threads: int | None = None,
        chunk_size: int | None = None,
        metric: _Metric | None = None,
    ) -> pa.Table:
        """Match points to polygons; returns a pyarrow.Table."""

    def __copy__(self) -> Self: ...
    def __deepcopy__(self, memo: Any, /) -> Self: ...
    def __len__(self) -> int: ...
    def __reduce__(
        self,
    ) -> tuple[
        Any, tuple[bytes, str | dict[str, Any] | None, pa.Table | None, pa.Table | None]
    ]: ...

@disjoint_base
class Polygon:
    """One open ring with exact center and area; subclass it freely."""

    def __new__(cls, x: Any, y: Any) -> Self: ...
    @property
    def x(self) -> np.ndarray: ...
    @property
    def y(self) -> np.ndarray: ...
    @property
    def center(self) -> np.ndarray: ...
    def area(self) -> float: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __reduce__(self) -> tuple[Any, ...]: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

def find_close_polygons(polygon_subset: Any, point: Any, max_dist: float) -> list[Any]: ...
def select_best_polygon(polygon_sets: Any) -> list[tuple[Any, Any]]: ...

@final
class Tiling:
    """Rectangular tiles from a KD split of sampled polygon centers (see polymatch.dask)."""

    def __new__(
        cls, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], tiles: int
    ) -> Self: ...
    def route(
        self,
        points: Any,
        *,
        x: str | None = None,
        y: str | None = None,
        geometry: str | None = None,
        wrap: bool = False,
    ) -> npt.NDArray[np.uint32]:
        """The one tile of every point, in row order."""

    def assign(
        self, center_x: npt.NDArray[np.float64], center_y: npt.NDArray[np.float64], max_dist: float
    ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint32]]:
        """Each tile's polygon rows (own and halo) as ``(offsets, rows)``."""

    def assign_boxes(
        self,
        xmin: npt.NDArray[np.float64],
        ymin: npt.NDArray[np.float64],
        xmax: npt.NDArray[np.float64],
        ymax: npt.NDArray[np.float64],
        reach: float = 0.0,
    ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint32]]:
        """Each tile's polygon rows by box (the shape rules' tiles) as ``(offsets, rows)``."""

    def bounds(self, tile: int) -> tuple[float, float, float, float]:
        """The closed bounds of ``tile``."""

    def __len__(self) -> int: ...

def find_all_close_polygons(
    polygons: Any, points: Any, max_dist: float
) -> list[tuple[Any, list[Any]]]: ...
def main(polygons: Any, points: Any, max_dist: float = 10.0) -> list[tuple[Any, Any]]: ...
def same_crs(a: str | dict[str, Any] | None, b: str | dict[str, Any] | None) -> bool:
    """Whether two CRS statements name the same CRS (None: unstated, never a conflict)."""

def resolve_columns(
    schema: Any,
    role: Literal["points", "polygons"] = "points",
    *,
    x: str | None = None,
    y: str | None = None,
    geometry: str | None = None,
) -> tuple[list[str], str | dict[str, Any] | None]:
    """The geometry columns of ``schema`` by the rule of every entry point, and their CRS."""

def write_results(
    result: Any,
    out: str | os.PathLike[str],
    max_dist: float | None = None,
    how: Literal["inner", "left"] = "inner",
    all_candidates: bool = False,
    *,
    predicate: Literal["center", "contains", "covers", "dwithin"] = "center",
    rank_by: str = "area",
    descending: bool = False,
    k: int = 1,
    keep: _Columns | None = None,
    keep_polygons: _Columns | None = None,
    crs: str | dict[str, Any] | None = None,
    points: str | os.PathLike[str] | None = None,
    polygons: str | os.PathLike[str] | None = None,
    job_id: str | None = None,
    metric: _Metric | None = None,
) -> None:
    """Write a match result as ``match_parquet`` writes its output (metadata included)."""

def read_polygons(
    path: str | os.PathLike[str],
    geometry: str | None = None,
    keep: _Columns | None = None,
    *,
    metric: _Metric | None = None,
) -> PolygonIndex: ...
def match_parquet(
    polygons: PolygonIndex | str | os.PathLike[str],
    points: str | os.PathLike[str],
    out: str | os.PathLike[str],
    max_dist: float | None = None,
    how: Literal["inner", "left"] = "inner",
    all_candidates: bool = False,
    *,
    predicate: Literal["center", "contains", "covers", "dwithin"] = "center",
    rank_by: str = "area",
    descending: bool = False,
    k: int = 1,
    keep: _Columns | None = None,
    keep_polygons: _Columns | None = None,
    x: str | None = None,
    y: str | None = None,
    point_geometry: str | None = None,
    polygon_geometry: str | None = None,
    allow_crs_mismatch: bool = False,
    threads: int | None = None,
    batch_rows: int = 262144,
    job_id: str | None = None,
    metric: _Metric | None = None,
) -> dict[str, int]: ...
def run_cli(args: list[str]) -> int: ...
