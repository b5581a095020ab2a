"""The spatially partitioned join of :mod:`polymatch.dask`: polygons that no process holds.

Used when the polygons are a Dask DataFrame or a list of polygon files. The plan, in
two phases (docs/scaling.md explains why the answer is exactly the single-process one):

1. *Sample* (computed when the join is set up): one task per polygon partition computes
   the exact centers and areas (:meth:`PolygonIndex.from_arrow`, the same arithmetic as
   one process) and returns its row count, its CRS and an evenly spaced sample of its
   centers. The client cuts the plane into tiles by a KD split of the sample
   (:class:`~polymatch._core.Tiling`), sized by count: about ``polygons_per_tile``
   polygons per tile.
2. *Join* (lazy): each polygon partition is split into one *piece* per tile (centers,
   areas, the carried columns and the global row, for every polygon whose center is
   within ``max_dist`` of the tile: its own polygons and a halo); each tile's pieces are
   concatenated in partition order (so global row order, which breaks ties) into an
   index built on a worker (:meth:`PolygonIndex.from_centers`); each points partition is
   routed, one tile per point, and each (tile, points partition) pair is one match task;
   a points partition's results are put back in point order.

No process holds all polygons: a partition task holds one partition, a tile task one
tile (its share plus its halo). Work per task is bounded by one points partition
against one tile, so points crowded into one tile spread over as many tasks as there
are points partitions.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from polymatch._core import PolygonIndex, PolymatchError, SchemaError, Tiling, same_crs

#: Centers sampled in all (spread over the polygon partitions) to cut the tiles.
SAMPLE_SIZE = 200_000
#: Default tile size: polygons per tile (before halos).
POLYGONS_PER_TILE = 250_000
#: Above this many copies per polygon (halo replication, estimated on the sample), use
#: fewer, larger tiles.
MAX_REPLICATION = 2.0

_CX = "__polymatch_center_x"
_CY = "__polymatch_center_y"
_AREA = "__polymatch_area"
_ROW = "__polymatch_row"
#: The shape rules' tiles also carry each polygon's outline and box.
_GEOM = "__polymatch_geometry"
_BOX = ("__polymatch_xmin", "__polymatch_ymin", "__polymatch_xmax", "__polymatch_ymax")
_U32_MAX = 2**32 - 1


# ---------------------------------------------------------------------------------------
# Polygon partitions
# ---------------------------------------------------------------------------------------


def _polygon_table(part: Any) -> pa.Table:
    """One polygon partition as Arrow: a Parquet file (its GeoParquet metadata, hence its
    CRS, kept) or a pandas/geopandas partition."""
    if isinstance(part, (str, os.PathLike)):
        import pyarrow.parquet as pq

        return pq.read_table(part)
    from polymatch._convert import polygons_to_arrow

    return pa.table(polygons_to_arrow(part))


def _centers(
    part: Any,
    geometry: str | None,
    carry: list[str],
    p: int,
    shapes: bool = False,
    metric: str | None = None,
    box_reach: float | None = None,
) -> tuple[pa.Table, Any]:
    """Partition ``p``'s exact centers and areas (null: unmatchable) and carried columns,
    and its CRS; for the shape rules (``shapes``) also each polygon's outline (GeoArrow)
    and box (with ``box_reach``, on the sphere: the box of every point within that many
    metres, :meth:`PolygonIndex.bounds`). Errors name the partition (their row numbers
    are within it)."""
    try:
        table = _polygon_table(part)
        index = PolygonIndex.from_arrow(table, geometry=geometry, metric=metric)  # type: ignore[arg-type]
    except (PolymatchError, OSError) as e:
        e.add_note(f"in polygon partition {p}{f' ({part})' if isinstance(part, str) else ''}")
        raise
    missing = [c for c in carry if c not in table.column_names]
    if missing:
        raise SchemaError(
            f"polygon partition {p} has no column {', '.join(map(repr, missing))} "
            f"(columns: {', '.join(table.column_names)})"
        )
    derived = index.to_arrow()
    fields = [derived.schema.field(c).with_name(n) for c, n in _DERIVED.items()]
    fields += [table.schema.field(c) for c in carry]  # field metadata (GeoArrow) kept
    arrays = [derived[c] for c in _DERIVED] + [table[c] for c in carry]
    if shapes:
        boxes = index.bounds(box_reach)
        fields.append(derived.schema.field("geometry").with_name(_GEOM))
        arrays.append(derived["geometry"])
        fields += [pa.field(name, pa.float64()) for name in _BOX]
        arrays += [boxes[c] for c in ("xmin", "ymin", "xmax", "ymax")]
    schema = pa.schema(fields, metadata=_carried_geo(table.schema, carry))
    return pa.Table.from_arrays(arrays, schema=schema), index.crs


#: The columns of ``PolygonIndex.to_arrow`` a tile is built from, and their names there.
_DERIVED = {"center_x": _CX, "center_y": _CY, "area": _AREA}


def _carried_geo(schema: pa.Schema, carry: list[str]) -> dict[bytes, bytes] | None:
    """The partition's GeoParquet ``geo`` metadata for the carried columns only, so
    that a kept polygon geometry column is described in the output as one process
    describes it (encoding, geometry types, CRS)."""
    raw = (schema.metadata or {}).get(b"geo")
    if raw is None:
        return None
    try:
        geo = json.loads(raw)
        columns = {c: v for c, v in geo["columns"].items() if c in carry}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # malformed: PolygonIndex.from_arrow refused it already, or ignores it
    if not columns:
        return None
    geo["columns"] = columns
    if geo.get("primary_column") not in columns:
        geo["primary_column"] = next(iter(columns))
    return {b"geo": json.dumps(geo).encode()}


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    """A float column as numpy float64, nulls as NaN."""
    return np.ascontiguousarray(
        pc.fill_null(column, float("nan")).to_numpy(zero_copy_only=False), dtype=np.float64
    )


def summarise(
    part: Any,
    geometry: str | None,
    carry: list[str],
    p: int,
    sample: int,
    shapes: bool = False,
    metric: str | None = None,
    box_reach: float | None = None,
) -> dict:
    """Phase 1 for one polygon partition: rows, matchable rows, CRS, the carried schema,
    and every ``step``-th matchable center (deterministic), with its box for the shape
    rules."""
    table, crs = _centers(part, geometry, carry, p, shapes, metric, box_reach)
    cx, cy = _floats(table[_CX]), _floats(table[_CY])
    ok = np.flatnonzero(~(np.isnan(cx) | np.isnan(cy)))
    step = max(1, math.ceil(len(ok) / max(1, sample)))
    chosen = ok[::step]
    return {
        "rows": table.num_rows,
        "matchable": len(ok),
        "x": cx[chosen],
        "y": cy[chosen],
        "crs": crs,
        "schema": table.schema,
        "boxes": [_floats(table[c])[chosen] for c in _BOX] if shapes else None,
    }


@dataclass(frozen=True)
class Halo:
    """What a polygon's tiles are: ``"center"``, the tiles within ``reach`` (the center
    rule's ``max_dist``) of its center; ``"boxes"``, the tiles its box widened by
    ``reach`` reaches (0 for ``contains``/``covers``, ``max_dist`` for ``dwithin``)."""

    kind: str
    reach: float
    #: ``"sphere"``: centers and tiles in longitude/latitude, ``reach`` in metres.
    metric: str = "planar"

    @property
    def sphere(self) -> bool:
        """Whether the tiles are in longitude/latitude (``metric="sphere"``)."""
        return self.metric == "sphere"

    @property
    def index_metric(self) -> str | None:
        """The ``metric`` to build the polygons' indexes with (None: planar, as given)."""
        return "sphere" if self.sphere else None

    @property
    def shapes(self) -> bool:
        """Whether the tiles are cut by boxes (the shape rules: outlines shipped)."""
        return self.kind == "boxes"

    @property
    def box_reach(self) -> float | None:
        """``dwithin`` on the sphere: the metres each polygon's box is computed for
        (:meth:`PolygonIndex.bounds`), which then needs no widening in degrees."""
        return self.reach if self.shapes and self.sphere and self.reach > 0 else None

    @property
    def box_widening(self) -> float:
        """How far the tiling widens each box (:meth:`Tiling.assign_boxes`)."""
        return 0.0 if self.box_reach is not None else self.reach

    def check(self) -> None:
        """Refuse a reach no tiling can serve (``ValueError``)."""
        if not (self.reach > 0 or (self.shapes and self.reach == 0)):
            raise ValueError(f"max_dist must be > 0, got {self.reach}")
        if math.isinf(self.reach):
            raise ValueError(
                "max_dist=inf makes every polygon a candidate of every point, so the "
                "polygons cannot be split into tiles; pass a PolygonIndex (broadcast to "
                "every worker) instead of partitioned polygons"
            )


#: The sphere's radius in metres (docs/SPEC.md, "On the sphere").
EARTH_RADIUS = 6_371_008.8


def sphere_boxes(
    cx: np.ndarray, cy: np.ndarray, reach: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For centers at longitude/latitude ``(cx, cy)``, a box of longitudes/latitudes
    holding every point closer than ``reach`` metres (the center rule on the sphere): the
    latitudes within the cap's angular radius ``t``, and the longitudes within
    ``asin(sin t / cos |lat|)`` where ``|lat|`` is the cap's farthest latitude from the
    equator, each widened by a relative 1e-6 and 1e-9 degrees (far beyond the rounding);
    every longitude where the cap reaches a pole or crosses the antimeridian (a box of
    the whole band, [-180, 180]: correct, if wider than needed). NaN centers give NaN
    boxes (no tile)."""
    t = reach / EARTH_RADIUS
    deg = np.degrees(t) * (1 + 1e-6) + 1e-9
    far = np.abs(cy) + deg
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.sin(min(t, np.pi / 2)) / np.cos(np.radians(np.minimum(far, 90.0)))
        half = np.degrees(np.arcsin(np.minimum(ratio, 1.0))) * (1 + 1e-6) + 1e-9
    whole = (far >= 90.0) | (ratio >= 1.0) | (t >= np.pi / 2)
    x0, x1 = cx - half, cx + half
    whole |= (x0 <= -180.0) | (x1 >= 180.0)
    x0 = np.where(whole, -180.0, x0)
    x1 = np.where(whole, 180.0, x1)
    y0 = np.maximum(cy - deg, -90.0)
    y1 = np.minimum(cy + deg, 90.0)
    nan = np.isnan(cx) | np.isnan(cy)
    return tuple(np.where(nan, np.nan, v) for v in (x0, y0, x1, y1))  # type: ignore[return-value]


def split(
    part: Any,
    geometry: str | None,
    carry: list[str],
    p: int,
    offset: int,
    tiling: Tiling,
    halo: Halo,
) -> list[pa.Table]:
    """Phase 2 for one polygon partition: its piece of every tile (own polygons and halo,
    or for the shape rules every tile its widened box reaches), each with the polygons'
    global rows in ``_ROW``, in row order."""
    table, _ = _centers(part, geometry, carry, p, halo.shapes, halo.index_metric, halo.box_reach)
    if halo.shapes:
        boxes = [_floats(table[c]) for c in _BOX]
        offsets, rows = tiling.assign_boxes(*boxes, halo.box_widening)
    elif halo.sphere:
        caps = sphere_boxes(_floats(table[_CX]), _floats(table[_CY]), halo.reach)
        offsets, rows = tiling.assign_boxes(*caps, 0.0)
    else:
        offsets, rows = tiling.assign(_floats(table[_CX]), _floats(table[_CY]), halo.reach)
    table = table.append_column(
        _ROW, pa.array(np.arange(offset, offset + table.num_rows, dtype=np.uint64))
    )
    return [table.take(rows[offsets[t] : offsets[t + 1]]) for t in range(len(tiling))]


@dataclass(frozen=True)
class Tile:
    """One tile's index (built from centers, carried columns as attributes) and the
    global row of each of its polygons."""

    index: PolygonIndex
    rows: pa.UInt32Array


def build_tile(
    pieces: list[pa.Table],
    schema: pa.Schema,
    crs: Any,
    rank_by: str,
    descending: bool,
    metric: str | None = None,
) -> Tile:
    """Concatenate a tile's pieces (in partition order: global row order) into its index,
    prepared for the rank rule."""
    full = schema.append(pa.field(_ROW, pa.uint64()))
    table = pa.concat_tables([p.cast(full) for p in pieces])
    rows = table[_ROW].combine_chunks().cast(pa.uint32())
    table = table.drop_columns([_ROW]).combine_chunks()
    if _GEOM in table.column_names:
        # The shape rules: the tile's outlines, stated in the polygons' CRS and with
        # their edges (GeoArrow metadata), its carried columns as attributes; centers
        # and areas recomputed, exactly as each partition computed them.
        i = table.schema.get_field_index(_GEOM)
        geom, stated = _storage(table.schema.field(i), table[_GEOM])
        edges = json.loads(stated).get("edges") if stated else None
        meta = {"crs": crs} if edges is None else {"crs": crs, "edges": edges}
        field = pa.field(
            _GEOM,
            geom.type,
            metadata={
                b"ARROW:extension:name": b"geoarrow.multipolygon",
                b"ARROW:extension:metadata": json.dumps(meta).encode(),
            },
        )
        table = table.set_column(i, field, geom)
        table = table.drop_columns([_CX, _CY, _AREA, *_BOX]).replace_schema_metadata(
            table.schema.metadata
        )
        index = PolygonIndex.from_arrow(table, geometry=_GEOM, metric=metric)  # type: ignore[arg-type]
    else:
        index = PolygonIndex.from_centers(
            table,
            crs,
            center_x=_CX,
            center_y=_CY,
            area=_AREA,
            metric=metric,  # type: ignore[arg-type]
        )
    return Tile(index.prepare(rank_by, descending), rows)


def _storage(field: pa.Field, column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, bytes | None]:
    """A GeoArrow column as its storage, and its extension metadata: from the field's
    metadata, or from its type where a registered extension type (geoarrow-pyarrow's,
    once imported) holds it."""
    stated = (field.metadata or {}).get(b"ARROW:extension:metadata")
    if isinstance(field.type, pa.ExtensionType):
        stated = field.type.__arrow_ext_serialize__() or stated
        storage = [c.storage for c in column.chunks]
        return pa.chunked_array(storage, type=field.type.storage_type), stated
    return column, stated


def empty_tile(
    schema: pa.Schema, crs: Any, rank_by: str, descending: bool, metric: str | None = None
) -> Tile:
    """A tile without polygons, of the carried schema (for the output's meta)."""
    piece = schema.append(pa.field(_ROW, pa.uint64())).empty_table()
    return build_tile([piece], schema, crs, rank_by, descending, metric)


# ---------------------------------------------------------------------------------------
# Points
# ---------------------------------------------------------------------------------------


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    """A table as one record batch (an empty one too: polymatch keeps columns only from
    a stream with batches)."""
    table = table.combine_chunks()
    batches = table.to_batches()
    if len(batches) == 1:
        return batches[0]
    return pa.RecordBatch.from_pylist([], schema=table.schema)


def route(
    points: pa.Table, tiling: Tiling, spec: dict[str, Any], wrap: bool = False
) -> list[tuple[Any, np.ndarray]]:
    """One points partition as one piece per tile: the tile's points (a record batch) and
    their rows in the partition (ascending); ``wrap``: longitudes routed in [-180, 180]."""
    tiles = tiling.route(points, wrap=wrap, **spec)
    order = np.argsort(tiles, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(tiles, minlength=len(tiling)))])
    return [
        (
            _one_batch(points.take(order[bounds[t] : bounds[t + 1]])),
            order[bounds[t] : bounds[t + 1]],
        )
        for t in range(len(tiling))
    ]


def match_piece(tile: Tile, piece: tuple[Any, np.ndarray], options: dict, threads: int) -> pa.Table:
    """Match one tile's points of one partition against the tile, and number the result
    as the whole inputs are numbered: ``point_index`` the row in the points partition,
    ``polygon_index`` the global polygon row."""
    points, local = piece
    result = tile.index.match(points, threads=threads, **options)
    point_index = pc.take(pa.array(local.astype(np.uint64)), result["point_index"])
    polygon_index = pc.take(tile.rows, result["polygon_index"])
    result = result.set_column(0, result.schema.field(0), point_index)
    return result.set_column(1, result.schema.field(1), polygon_index)


def combine(results: list[pa.Table], schema: pa.Schema | None, offset: int) -> pa.Table:
    """One points partition's results from every tile, in point order (each point is in
    one tile, so a stable sort keeps each point's rows in their order), ``point_index``
    shifted by ``offset``. Without ``schema``, the pieces' types are unified."""
    if schema is None:
        table = pa.concat_tables(results, promote_options="permissive")
        schema = table.schema
    else:
        table = pa.concat_tables([r.cast(schema) for r in results])
    table = table.take(pc.sort_indices(table["point_index"]))
    if offset:
        shifted = pc.add(table["point_index"], pa.scalar(offset, pa.uint64()))
        table = table.set_column(0, schema.field(0), shifted)
    return table


# ---------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------


@dataclass
class Plan:
    """The tiles of a partitioned join, and the polygon partitions' global row offsets."""

    tiling: Tiling
    offsets: list[int]
    schema: pa.Schema
    crs: Any
    replication: float
    polygons: int

    def token(self) -> str:
        """A hash of the tiles and row offsets (part of a file job's identity)."""
        text = json.dumps(
            {"tiles": repr(self.tiling.__reduce__()[1]), "offsets": self.offsets},
            sort_keys=True,
        )
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def plan(
    parts: list[Any],
    geometry: str | None,
    carry: list[str],
    halo: Halo,
    polygons_per_tile: int,
) -> Plan:
    """Phase 1: sample every polygon partition (computed now, on the cluster) and cut
    the tiles (see :class:`Halo` for which tiles a polygon goes to)."""
    import dask

    halo.check()
    shapes = halo.shapes
    if polygons_per_tile < 1:
        raise ValueError(f"polygons_per_tile must be >= 1, got {polygons_per_tile}")
    per_part = max(1, SAMPLE_SIZE // max(1, len(parts)))
    task = dask.delayed(summarise, pure=True)
    summaries = dask.compute(
        *[
            task(part, geometry, carry, p, per_part, shapes, halo.index_metric, halo.box_reach)
            for p, part in enumerate(parts)
        ]
    )
    crs = None
    for p, s in enumerate(summaries):
        if s["crs"] is not None:
            if crs is not None and not same_crs(crs, s["crs"]):
                raise SchemaError(
                    f"polygon partition {p} states another CRS than an earlier one: "
                    f"{s['crs']!r} vs {crs!r}"
                )
            crs = s["crs"]
    total = sum(s["rows"] for s in summaries)
    if total > _U32_MAX:
        raise ValueError(f"{total} polygons: polygon_index (uint32) holds at most {_U32_MAX}")
    offsets = list(np.cumsum([0] + [s["rows"] for s in summaries[:-1]]).tolist())
    matchable = sum(s["matchable"] for s in summaries)
    xs = np.concatenate([s["x"] for s in summaries]) if summaries else np.empty(0)
    ys = np.concatenate([s["y"] for s in summaries]) if summaries else np.empty(0)
    tiles = max(1, math.ceil(matchable / polygons_per_tile))
    while True:
        tiling = Tiling(xs, ys, tiles)
        if shapes:
            boxes = [np.concatenate([s["boxes"][k] for s in summaries]) for k in range(4)]
            _, rows = tiling.assign_boxes(*boxes, halo.box_widening)
        elif halo.sphere:
            _, rows = tiling.assign_boxes(*sphere_boxes(xs, ys, halo.reach), 0.0)
        else:
            _, rows = tiling.assign(xs, ys, halo.reach)
        replication = len(rows) / max(1, len(xs))
        if replication <= MAX_REPLICATION or tiles == 1:
            break
        tiles = max(1, tiles // 2)  # halos too wide for the tiles: fewer, larger tiles
    schema = pa.unify_schemas([s["schema"] for s in summaries], promote_options="permissive")
    return Plan(tiling, offsets, schema, crs, replication, total)
