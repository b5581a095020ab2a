"""Run polymatch on a Dask cluster: the same matches, on points that outgrow one machine.

Two entry points, and a reader:

- :func:`match`: a lazy ``dask.dataframe.DataFrame`` of matches of a Dask DataFrame of
  points to polygons, argument order as :func:`polymatch.match` (polygons first).
  ``point_index`` is the *global* row position of the point (its row in
  ``points.compute()``), exactly what :meth:`polymatch.PolygonIndex.match` returns for
  the whole table in one process.
- :func:`match_parquet`: one output file per Parquet file of points, each written
  atomically; a rerun after a failure skips the outputs that are complete and record
  the same job, and redoes the others.
- :func:`read_parquet`: ``dd.read_parquet`` that keeps Arrow types (lists, binary,
  integers with nulls) and the GeoParquet CRS, for polygons and points alike.

Two ways to get the polygons to the points, chosen by what ``polygons`` is:

- *broadcast* (a :class:`~polymatch.PolygonIndex`, a table, a single path): one index,
  built on the client, shipped once to every worker. Best while the polygons fit one
  process (about 32 bytes per polygon on the wire, plus kept attribute columns and, for a
  shape ``predicate``, 16 bytes per vertex of the outlines).
- *partitioned* (a Dask DataFrame of polygons, or a list of polygon Parquet files): the
  polygons are cut into spatial tiles, each extended by a halo of ``max_dist``, one index
  per tile built on a worker; no process, the client included, ever holds every polygon.
  The answers are the same, row for row (see :mod:`polymatch._tiles` and
  docs/scaling.md).

The broadcast pattern: the polygon index is built once on the
client, serialised once with :meth:`~polymatch.PolygonIndex.to_bytes` (the match-ready
index: centers, areas, tree and rank order; for a shape ``predicate`` the outlines too,
for the center rule not: ``to_bytes(outlines=False)``; never attribute columns or the
CRS), with the kept ``keep_polygons`` columns beside it as an Arrow IPC stream (the CRS
is passed to each task: it is small), and
placed in the task graph as a *single* key that every matching task depends on. The
scheduler ships that key to each worker once (workers fetch it from each other like any
other dependency), and each worker process deserialises it at most once:
:func:`cached_index` keeps a small per-process cache keyed by a hash of the bytes (see
:func:`cache_info`, :func:`clear_cache`).

Threads: Dask provides the parallelism (one task per Dask worker thread), so each task
matches with ``threads=1`` rayon thread by default, the same convention as the
``OMP_NUM_THREADS=1`` that ``distributed``'s nanny sets. Pass ``threads=N`` to give each
task its own pool of N rayon threads (useful with one single-threaded worker per machine),
or set ``RAYON_NUM_THREADS`` in the workers' environment, which is then the default.
Every task passes an explicit thread count, so tasks always run on a pool created in the
worker process itself and never on rayon's global pool. That keeps forked workers safe (a
forked child inherits a global pool whose threads do not exist in the child); still,
prefer ``distributed``'s default ``spawn`` start method and nanny processes.

Dask is an optional dependency: ``pip install "polymatch[dask]"`` (``dask[dataframe]`` and
``distributed``). This module imports without it; :func:`match` and :func:`match_parquet`
raise an ``ImportError`` naming that extra when it is missing.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from math import isqrt
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from polymatch._core import PolygonIndex, PolymatchError
from polymatch._core import match_parquet as _match_parquet_file

__all__ = ["cache_info", "cached_index", "clear_cache", "match", "match_parquet", "read_parquet"]

# ---------------------------------------------------------------------------------------
# Per-process index cache (lives in each worker process)
# ---------------------------------------------------------------------------------------

_CACHE_SIZE = 4
_cache: OrderedDict[str, PolygonIndex] = OrderedDict()
_cache_lock = threading.Lock()
_cache_stats = {"loads": 0, "hits": 0}


def cached_index(
    token: str,
    data: bytes,
    crs: Any = None,
    attributes: bytes | None = None,
    outlines: bytes | None = None,
) -> PolygonIndex:
    """The index for ``token``, deserialised from ``data`` (``PolygonIndex.to_bytes()``,
    which carries the outlines the shape predicates need unless written with
    ``outlines=False``, with the original's ``index.crs``, ``attributes``: polygon
    attribute columns as an Arrow IPC stream, if any, and ``outlines``: for bytes without
    them, the polygons' geometry as an Arrow IPC stream) only if this process has not done
    so yet; ``token`` is
    any string that identifies all of them (this module uses a blake2b hash, computed
    once on the client).
    Thread-safe: concurrent tasks in one process wait for a single load. The last few
    indexes are kept. Usable from any engine's workers (Spark, Ray): it needs no Dask."""
    with _cache_lock:
        index = _cache.get(token)
        if index is not None:
            _cache.move_to_end(token)
            _cache_stats["hits"] += 1
            return index
        if attributes is None and outlines is None:
            index = PolygonIndex.from_bytes(data, crs=crs)
        else:
            table = None if attributes is None else pa.ipc.open_stream(attributes).read_all()
            shapes = None if outlines is None else pa.ipc.open_stream(outlines).read_all()
            index = PolygonIndex._from_pickle(data, crs, table, shapes)
        _cache_stats["loads"] += 1
        _cache[token] = index
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return index


def cache_info() -> dict[str, Any]:
    """This process's index cache: ``loads`` (deserialisations so far), ``hits`` (tasks
    served from the cache), ``entries`` (indexes held) and ``pid``. On a cluster, read
    it on every worker with ``client.run(polymatch.dask.cache_info)``."""
    with _cache_lock:
        return {**_cache_stats, "entries": len(_cache), "pid": os.getpid()}


def clear_cache() -> None:
    """Drop the cached indexes of this process and reset the counters (on a cluster:
    ``client.run(polymatch.dask.clear_cache)``)."""
    with _cache_lock:
        _cache.clear()
        _cache_stats.update(loads=0, hits=0)


# ---------------------------------------------------------------------------------------
# Helpers shared by both entry points
# ---------------------------------------------------------------------------------------

_DASK_MISSING = 'polymatch.dask needs Dask: pip install "polymatch[dask]"'


def _require_dask(dataframe: bool = False) -> None:
    """Import Dask (and ``dask.dataframe`` if ``dataframe``), or raise an ``ImportError``
    that names the extra to install, chained to the original one."""
    try:
        import dask  # noqa: F401

        if dataframe:
            import dask.dataframe  # noqa: F401
    except ImportError as e:
        raise ImportError(_DASK_MISSING) from e


def _as_index(
    polygons: Any, geometry: str | None = None, metric: str | None = None
) -> PolygonIndex:
    if isinstance(polygons, PolygonIndex):
        return polygons
    if isinstance(polygons, (str, os.PathLike)):
        from polymatch._core import read_polygons

        return read_polygons(polygons, geometry=geometry, metric=metric)  # type: ignore[arg-type]
    from polymatch._convert import polygons_to_arrow

    return PolygonIndex.from_arrow(
        polygons_to_arrow(polygons),
        geometry=geometry,
        metric=metric,  # type: ignore[arg-type]
    )


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _broadcast(
    polygons: Any,
    rank_by: str = "area",
    descending: bool = False,
    keep_polygons: Sequence[str] = (),
    predicate: str = "center",
) -> tuple[str, Any, int, Any]:
    """Serialise the index once, prepared for the rank rule (so that workers need no
    polygon column to rank by: the order travels in the bytes) and, for a shape
    predicate, with the outlines in the bytes, with the kept polygon columns (Arrow IPC)
    if any; return its token, a single graph key holding ``(bytes, attributes, None)``
    (the last slot, outlines beside the bytes, is for :func:`cached_index`'s other
    callers), its size in bytes, and its CRS (small: passed to each task, so that workers
    check the points' CRS against it exactly as one process does)."""
    import json

    import dask

    index = _as_index(polygons).prepare(rank_by, descending)
    shapes = predicate != "center"
    if shapes and "geometry" not in index.to_arrow().column_names:
        raise ValueError(
            f"predicate={predicate!r} tests the polygons' outlines, and this index has "
            "none (built from centers, or read from bytes without them): build it from "
            "the polygons themselves, or re-save it with to_bytes() of this version to "
            "keep the outlines"
        )
    data = index.to_bytes(outlines=shapes)
    crs = index.crs
    attributes = None
    if keep_polygons:
        table = index.attributes
        missing = [c for c in keep_polygons if table is None or c not in table.column_names]
        if missing:
            from polymatch._core import SchemaError

            have = ", ".join(table.column_names) if table is not None else "none"
            raise SchemaError(
                f"the polygons have no column {', '.join(map(repr, missing))} to keep "
                f"(columns: {have})"
            )
        attributes = _ipc(table.select(list(dict.fromkeys(keep_polygons))))
    h = hashlib.blake2b(data, digest_size=16)
    h.update(json.dumps(crs, sort_keys=True).encode())
    h.update(b"-" if attributes is None else attributes)
    token = h.hexdigest()
    # One key for the whole graph: every task depends on it, so it is shipped to each
    # worker once instead of being embedded in every task.
    key = dask.delayed((data, attributes, None), name=f"polymatch-index-{token}", pure=True)
    return token, key, len(data) + len(attributes or b""), crs


def _resolve_threads(threads: int | None) -> int:
    """Rayon threads for one task: ``threads`` if given, else ``RAYON_NUM_THREADS`` of this
    process, else 1 (Dask's own threads and processes provide the parallelism)."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        return int(threads)
    env = os.environ.get("RAYON_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return 1


# ---------------------------------------------------------------------------------------
# read_parquet: Arrow types and the GeoParquet CRS kept
# ---------------------------------------------------------------------------------------

#: The GeoParquet ``geo`` metadata (None: the files state none) of each frame that
#: :func:`read_parquet` made, by the name of its Parquet-reading expression (which every
#: frame derived from it, projected or filtered, keeps as a leaf of its graph).
_read_geo: dict[str, bytes | None] = {}
_LOST_HINT = (
    "read the polygons with polymatch.dask.read_parquet(...), which keeps Arrow types and the CRS"
)


def read_parquet(path: Any, columns: Sequence[str] | None = None, **kwargs: Any) -> Any:
    """Read (Geo)Parquet files as a Dask DataFrame for :func:`match`, losing nothing.

    ``dd.read_parquet`` with its defaults turns list columns (the ``x``/``y`` list
    layout) into Python objects (several times the memory), integers with nulls into
    float64 (ranks beyond 2**53 tie, and the wrong polygon may win) and drops the
    GeoParquet CRS (so a CRS mismatch goes unrefused). This reads with
    ``dtype_backend="pyarrow"`` (every column stays exactly its Arrow type) and
    remembers the files' GeoParquet ``geo`` metadata (read from the first file's
    footer) for :func:`match` and :func:`match_parquet`: the CRS of polygons and of
    points read here is checked as one process checks it (``allow_crs_mismatch``), and
    every partition reaches the matcher as an Arrow table carrying that metadata. Frames
    derived from the result (column selections, filters) keep it.

    Args:
        path: what ``dd.read_parquet`` takes: a file, a directory, a glob pattern or a
            list of files.
        columns: the columns to read (default: all).
        **kwargs: passed on to ``dd.read_parquet`` (``dtype_backend`` is always
            ``"pyarrow"``).

    Returns:
        A lazy ``dask.dataframe.DataFrame`` with ``pd.ArrowDtype`` columns.

    Raises:
        ImportError: Dask is not installed (``pip install "polymatch[dask]"``).
        ValueError: ``dtype_backend`` other than ``"pyarrow"``.

    Example::

        import polymatch.dask as pmd

        footprints = pmd.read_parquet("footprints/*.parquet")
        points = pmd.read_parquet("gps/*.parquet")
        matches = pmd.match(footprints, points, max_dist=10.0, keep_polygons=["id"])
    """
    _require_dask(dataframe=True)
    import dask.dataframe as dd

    backend = kwargs.pop("dtype_backend", "pyarrow")
    if backend != "pyarrow":
        raise ValueError(
            f"read_parquet keeps Arrow types: dtype_backend must be 'pyarrow', got {backend!r}"
        )
    frame = dd.read_parquet(
        path,
        columns=list(columns) if columns is not None else None,
        dtype_backend="pyarrow",
        **kwargs,
    )
    for leaf in _parquet_leaves(frame):
        known, geo = _leaf_geo(leaf)
        if not known:
            geo = _first_file_geo(path)
        _read_geo[leaf._name] = geo
    return frame


def _parquet_leaves(frame: Any) -> list[Any]:
    """The Parquet-reading expressions a Dask DataFrame is computed from."""
    try:
        return [e for e in frame.expr.walk() if type(e).__name__.startswith("ReadParquet")]
    except Exception:  # another Dask: no expressions to look into
        return []


def _leaf_geo(leaf: Any) -> tuple[bool, bytes | None]:
    """``(known, geo)``: a Parquet-reading expression's GeoParquet metadata, remembered
    by :func:`read_parquet` or read from its first file's footer (not known when this
    Dask's reader does not tell its files)."""
    if leaf._name in _read_geo:
        return True, _read_geo[leaf._name]
    try:
        import pyarrow.parquet as pq

        info = leaf._dataset_info
        files = info["ds"].files
        if not files:
            return True, None
        schema = pq.read_schema(files[0], filesystem=info.get("fs"))
    except Exception:
        return False, None
    return True, (schema.metadata or {}).get(b"geo")


def _first_file_geo(path: Any) -> bytes | None:
    """The ``geo`` metadata of the first file of a local ``path`` (file, directory,
    glob or list), or None."""
    import pyarrow.parquet as pq

    try:
        if isinstance(path, (list, tuple)):
            first = str(path[0])
        else:
            files, _ = _list_inputs(path, "Parquet")
            first = str(files[0])
        return (pq.read_schema(first).metadata or {}).get(b"geo")
    except Exception:
        return None


def _frame_geo(frame: Any) -> tuple[bool, bytes | None]:
    """``(known, geo)`` of a Dask DataFrame: known if it reads no Parquet (its
    partitions carry what they carry, e.g. a dask-geopandas CRS) or if the ``geo``
    metadata of every Parquet source is known; ``geo`` the first one stated."""
    known, geo = True, None
    for leaf in _parquet_leaves(frame):
        k, g = _leaf_geo(leaf)
        known = known and k
        geo = geo if geo is not None else g
    return known, geo


def _from_integers(leaves: list[Any], column: str) -> bool:
    """Whether ``column`` is an integer column in its Parquet source (True if unknown)."""
    for leaf in leaves:
        try:
            schema = leaf._dataset_info["physical_schema"]
        except Exception:
            return True
        if column in schema.names:
            return pa.types.is_integer(schema.field(column).type)
    return True


def _with_geo(part: Any, geo: bytes) -> pa.Table:
    """A pandas partition as an Arrow table carrying GeoParquet metadata ``geo`` (only
    the columns the partition has: a projection may have dropped some), so that the
    matcher resolves the geometry column and its CRS as it would from the file."""
    import json

    from polymatch._convert import points_to_arrow

    table = pa.table(points_to_arrow(part))
    metadata = dict(table.schema.metadata or {})
    if b"geo" not in metadata:
        try:
            meta = json.loads(geo)
            described = {
                k: v for k, v in meta.get("columns", {}).items() if k in table.column_names
            }
            if described and meta.get("primary_column") in described:
                metadata[b"geo"] = json.dumps({**meta, "columns": described}).encode()
        except (ValueError, TypeError, AttributeError):
            pass  # unreadable metadata: the matcher would refuse it; pass the table as is
    return table.replace_schema_metadata(metadata)


def _carrying_geo(parts: list[Any], frame: Any) -> list[Any]:
    """The delayed partitions of ``frame``, each as an Arrow table carrying its Parquet
    source's GeoParquet metadata if it states one (else unchanged)."""
    import dask

    _, geo = _frame_geo(frame)
    if geo is None:
        return parts
    task = dask.delayed(_with_geo, pure=True)
    return [task(part, geo) for part in parts]


def _warn_lossy(polygons: Any, rank_by: str, polygon_geometry: str | None) -> None:
    """One ``UserWarning`` naming what a Dask DataFrame of polygons lost on its way from
    Parquet (``dd.read_parquet``'s defaults): list columns as Python objects, an integer
    ``rank_by`` column as float64, a CRS that cannot be read."""
    import warnings

    leaves = _parquet_leaves(polygons)
    if not leaves or all(leaf._name in _read_geo for leaf in leaves):
        return
    meta = polygons._meta
    geometry = (
        {polygon_geometry} if polygon_geometry else {"geometry", "geom", "wkb", "wkb_geometry"}
    )
    problems = []
    objects = [
        str(c)
        for c, t in meta.dtypes.items()
        if isinstance(t, np.dtype) and t.kind == "O" and c not in geometry
    ]
    if objects:
        problems.append(
            f"column(s) {', '.join(map(repr, objects))} arrive as Python objects "
            "(list columns: several times the memory)"
        )
    rank_type = meta[rank_by].dtype if rank_by in meta.columns else None
    if (
        isinstance(rank_type, np.dtype)
        and rank_type.kind in "iuf"
        and _from_integers(leaves, rank_by)
    ):
        # the meta may say int64 while a partition with nulls arrives as float64
        problems.append(
            f"the integer rank_by column {rank_by!r} arrives as float64 wherever it has "
            "nulls (integers beyond 2**53 then tie, and the wrong polygon may win)"
        )
    if not _frame_geo(polygons)[0]:
        problems.append("the polygons' CRS is unknown (a CRS mismatch cannot be refused)")
    if problems:
        warnings.warn(
            f"polygons from dd.read_parquet: {'; '.join(problems)}; {_LOST_HINT}",
            UserWarning,
            stacklevel=4,  # the caller of match / match_parquet
        )


# ---------------------------------------------------------------------------------------
# match: Dask DataFrame in, lazy Dask DataFrame out
# ---------------------------------------------------------------------------------------


def _point_columns(points: Any, x: str | None, y: str | None, geometry: str | None) -> list[str]:
    """The point columns a partition is matched on, by the single-process rule (the
    core's resolver, :func:`polymatch._core.resolve_columns`, on the Arrow schema of
    the frame's meta), so that only those are read."""
    from polymatch._convert import points_to_arrow
    from polymatch._core import resolve_columns

    schema = pa.table(points_to_arrow(points._meta)).schema
    columns, _ = resolve_columns(schema, "points", x=x, y=y, geometry=geometry)
    return columns


def _to_arrow(part: Any) -> pa.Table | pa.RecordBatch:
    """A pandas partition as Arrow; an empty one as one empty record batch (polymatch
    refuses to keep columns from a stream without batches)."""
    from polymatch._convert import points_to_arrow

    table = pa.table(points_to_arrow(part))
    if table.num_rows == 0:
        return pa.RecordBatch.from_pylist([], schema=table.schema)
    return table


def _match_table(
    part: Any,
    index: PolygonIndex,
    options: dict[str, Any],
    threads: int | None,
) -> pa.Table:
    return index.match(_to_arrow(part), threads=_resolve_threads(threads), **options)


def _match_partition(
    part: Any,
    data: tuple[bytes, bytes | None],
    token: str,
    crs: Any,
    options: dict[str, Any],
    threads: int | None,
    schema: pa.Schema,
    partition: int | None,
) -> Any:
    """Match one partition; ``point_index`` is the row within the partition. A bad
    point's error is returned (not raised) when the global row is wanted: the
    partition's offset is known only to :func:`_shift`, which raises it there."""
    import pandas as pd

    try:
        table = _match_table(part, cached_index(token, *data[:1], crs, *data[1:]), options, threads)
    except PolymatchError as e:
        return _row_error(e, partition)
    if partition is not None:
        column = pa.array([partition] * table.num_rows, type=pa.uint32())
        table = table.append_column("partition", column)
    if not table.schema.equals(schema, check_metadata=False):
        # e.g. a kept object column that is all None in this partition (Arrow type null)
        table = table.cast(schema)
    return table.to_pandas(types_mapper=pd.ArrowDtype)


@dataclass(frozen=True)
class _RowError:
    """The error of a partition's bad point (a ``row`` within the partition), passed on
    as a value to the task that knows the partition's global offset."""

    error: PolymatchError


def _row_error(e: PolymatchError, partition: int | None) -> _RowError:
    """Hold ``e`` for a task that knows the offset if it names a row and rows are global
    (``partition`` is None); else raise it, saying which partition its row is in."""
    if getattr(e, "row", None) is None:
        raise e
    if partition is not None:
        e.add_note(f"row numbered within points partition {partition} (point_index='partition')")
        raise e
    return _RowError(e)


def _raise_at(failure: _RowError, offset: int) -> None:
    """Raise a partition's row error with the row numbered in the whole frame, as one
    process numbers it (``point_index``)."""
    e = failure.error
    row = int(e.row)  # type: ignore[attr-defined]
    shifted = type(e)(str(e).replace(f"row {row}", f"row {row + offset}", 1))
    shifted.row = row + offset  # type: ignore[attr-defined]
    for note in getattr(e, "__notes__", []):
        shifted.add_note(note)
    raise shifted from None


def _shift(df: Any, offset: int) -> Any:
    """Turn partition-local ``point_index`` values into global row positions (and a
    held row error into the error about the global row)."""
    import pandas as pd

    if isinstance(df, _RowError):
        _raise_at(df, offset)
    if offset == 0 or len(df) == 0:
        return df
    local = pa.array(df["point_index"].array)
    shifted = pc.add(local, pa.scalar(offset, pa.uint64()))
    df = df.copy(deep=False)
    df["point_index"] = pd.Series(
        pd.arrays.ArrowExtensionArray(shifted), index=df.index, name="point_index"
    )
    return df


def _total(*values: int) -> int:
    return int(sum(values))


def _global_offsets(lengths: list[Any]) -> list[Any]:
    """Lazy prefix sums of the partition lengths: the global row of each partition's
    first point. Two levels (blocks of about sqrt(n) partitions): O(n) small tasks, a
    critical path of about 2*sqrt(n), and partition i waits only for the lengths of the
    blocks up to its own, so results can stream instead of waiting for every partition."""
    import dask

    add = dask.delayed(_total, pure=True)
    n = len(lengths)
    block = max(1, isqrt(n))
    offsets: list[Any] = []
    base: Any = 0
    for start in range(0, n, block):
        lens = lengths[start : start + block]
        offset = base
        for i, length in enumerate(lens):
            offsets.append(offset)
            if i + 1 < len(lens):
                offset = add(offset, length)
        if start + block < n:
            base = add(base, *lens)
    return offsets


def _is_dask_frame(obj: Any) -> bool:
    try:
        import dask.dataframe as dd
    except ImportError:
        return False
    return isinstance(obj, dd.DataFrame)


def _polygon_parts(
    polygons: Any, rank_by: str = "area", polygon_geometry: str | None = None
) -> list[Any] | None:
    """The polygon partitions of a partitioned join (delayed partitions of a Dask
    DataFrame, carrying their Parquet source's GeoParquet metadata, or Parquet paths,
    checked to exist), or None: broadcast. Warns about what a Dask DataFrame read by
    ``dd.read_parquet``'s defaults lost (see :func:`read_parquet`)."""
    if _is_dask_frame(polygons):
        _warn_lossy(polygons, rank_by, polygon_geometry)
        return _carrying_geo(list(polygons.to_delayed()), polygons)
    if (
        isinstance(polygons, (list, tuple))
        and polygons
        and all(isinstance(p, (str, os.PathLike)) for p in polygons)
    ):
        files, _ = _list_inputs(polygons, "polygons")
        return [str(f) for f in files]
    return None


def _check_order(polygons: Any, points: Any) -> None:
    """Refuse the argument order of polymatch 0.1 (points first) with a clear message."""
    if points is None or polygons is None:
        raise TypeError("match() needs polygons and points: match(polygons, points, ...)")
    if not _is_dask_frame(points):
        hint = ""
        if _is_dask_frame(polygons):
            hint = (
                "; polymatch.dask.match takes the polygons first, as polymatch.match does: "
                "match(polygons, points, ...) (the points came first in polymatch 0.1)"
            )
        raise TypeError(f"points must be a Dask DataFrame, got a {type(points).__name__}{hint}")


def _halo(predicate: str, max_dist: float | None, metric: str | None = None) -> Any:
    """Which tiles a partitioned join's polygons go to (:class:`polymatch._tiles.Halo`):
    for the center rule, the tiles within ``max_dist`` (10 when not given) of the
    center (on the sphere, the tiles its cap's box of longitudes/latitudes reaches); for
    the shape rules, every tile their box reaches
    (:meth:`polymatch._core.Tiling.assign_boxes`), widened by ``max_dist`` for
    ``dwithin`` (on the sphere, the box of every point within ``max_dist`` metres:
    :meth:`polymatch.PolygonIndex.bounds`)."""
    from polymatch._tiles import Halo

    if predicate == "center":
        return Halo("center", 10.0 if max_dist is None else max_dist, metric or "planar")
    if predicate == "dwithin":
        if max_dist is None:
            raise ValueError(
                'predicate "dwithin" needs max_dist: the distance to the outline below '
                "which a polygon is a candidate"
            )
        return Halo("boxes", max_dist, metric or "planar")
    return Halo("boxes", 0.0, metric or "planar")


def _match_max_dist(predicate: str, max_dist: float | None) -> float | None:
    """The ``max_dist`` a tile's match takes: the center rule's default made explicit."""
    return 10.0 if predicate == "center" and max_dist is None else max_dist


def _carried(keep_polygons: Sequence[str], rank_by: str) -> list[str]:
    """The polygon columns a tile must carry: the kept ones and a rank column."""
    rank_col = [] if rank_by in ("area", "distance") else [rank_by]
    return list(dict.fromkeys([*keep_polygons, *rank_col]))


def _routed_frame(
    part: Any,
    tiling: Any,
    spec: dict[str, Any],
    tiles: int,
    partition: int | None,
    wrap: bool = False,
) -> list[Any]:
    """Route one points partition (a held row error for each tile if a point is bad;
    see :func:`_row_error`)."""
    from polymatch import _tiles

    try:
        return _tiles.route(pa.table(_to_arrow(part)), tiling, spec, wrap)
    except PolymatchError as e:
        return [_row_error(e, partition)] * tiles


def _match_piece(
    tile: Any, piece: Any, options: dict[str, Any], threads: int | None
) -> pa.Table | _RowError:
    from polymatch import _tiles

    if isinstance(piece, _RowError):
        return piece
    return _tiles.match_piece(tile, piece, options, _resolve_threads(threads))


def _combined_frame(
    results: list[pa.Table], schema: pa.Schema, offset: int, partition: int | None
) -> Any:
    import pandas as pd

    from polymatch import _tiles

    failed = [r for r in results if isinstance(r, _RowError)]
    if failed:
        _raise_at(failed[0], offset)
    table = _tiles.combine(
        results,
        schema.remove(schema.get_field_index("partition")) if partition is not None else schema,
        offset,
    )
    if partition is not None:
        column = pa.array([partition] * table.num_rows, type=pa.uint32())
        table = table.append_column("partition", column)
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _tile_keys(
    parts: list[Any],
    plan: Any,
    tiling: Any,
    geometry: str | None,
    carry: list[str],
    halo: Any,
    rank_by: str,
    descending: bool,
) -> list[Any]:
    """Phase 2's polygon side: one split task per polygon partition (a piece per tile)
    and one build task per tile (its index, on a worker)."""
    import dask

    from polymatch import _tiles

    n = len(plan.tiling)
    split = dask.delayed(_tiles.split, pure=True, nout=n)
    pieces = [
        split(part, geometry, carry, p, plan.offsets[p], tiling, halo)
        for p, part in enumerate(parts)
    ]
    build = dask.delayed(_tiles.build_tile, pure=True)
    return [
        build(
            [piece[t] for piece in pieces],
            plan.schema,
            plan.crs,
            rank_by,
            descending,
            halo.index_metric,
        )
        for t in range(n)
    ]


def _matched_pieces(
    routed: Any, tiles: list[Any], options: dict[str, Any], threads: int | None
) -> list[Any]:
    """One match task per tile for one routed points partition."""
    import dask

    task = dask.delayed(_match_piece, pure=True)
    return [task(tile, routed[t], options, threads) for t, tile in enumerate(tiles)]


def match(
    polygons: Any = None,
    points: Any = None,
    max_dist: float | None = None,
    how: Literal["inner", "left"] = "inner",
    keep: Sequence[str] | None = None,
    x: str | None = None,
    y: str | None = None,
    threads: int | None = None,
    *,
    geometry: str | None = None,
    keep_polygons: Sequence[str] | None = None,
    polygon_geometry: str | None = None,
    all_candidates: bool = False,
    rank_by: str = "area",
    descending: bool = False,
    k: int = 1,
    point_index: Literal["global", "partition"] = "global",
    polygons_per_tile: int | None = None,
    allow_crs_mismatch: bool = False,
    predicate: Literal["center", "contains", "covers", "dwithin"] = "center",
    metric: Literal["planar", "sphere"] | None = None,
) -> Any:
    """Match a Dask DataFrame of points to polygons; returns a lazy Dask DataFrame.

    The result has the columns of :meth:`polymatch.PolygonIndex.match` (``point_index``
    uint64, ``polygon_index`` uint32, ``distance``, ``area``, then the ``keep`` and
    ``keep_polygons`` columns), pyarrow-backed (``pd.ArrowDtype``), one Dask partition
    per points partition, rows in point order within each partition: row for row what
    one process gives for the whole table. Its divisions are unknown and each partition
    has its own ``RangeIndex``: identify rows by ``point_index`` or by the columns you
    keep.

    Args:
        polygons: either what fits one process, *broadcast*: a
            :class:`~polymatch.PolygonIndex`, anything
            :meth:`~polymatch.PolygonIndex.from_arrow` takes, or a (Geo)Parquet path,
            indexed on the client, serialised once and deserialised at most once per
            worker process; or polygons to *partition*: a Dask DataFrame of polygons
            (dask-geopandas, or :func:`read_parquet` of GeoParquet (WKB) or of the
            article's ``x``/``y`` list layout: it keeps Arrow types and the CRS;
            ``dd.read_parquet``'s defaults lose them, and a ``UserWarning`` says so)
            or a list of polygon Parquet files. Then
            the plane is cut into tiles of about ``polygons_per_tile`` polygons each,
            extended by a halo of ``max_dist``, and no process ever holds every polygon.
            Setting up a partitioned join reads every polygon partition once, now, on
            the cluster, to sample its centers; the join itself reads them again.
            ``polygon_index`` is the polygon's global row (its row in
            ``polygons.compute()``, or counted across the files in order).
        points: a ``dask.dataframe.DataFrame`` with ``x``/``y`` columns, or a point
            geometry column named by ``geometry`` (WKB, e.g. ``pd.ArrowDtype(pa.binary())``).
        max_dist: with ``predicate="center"`` (the default), candidates are polygons
            whose center is at distance ``< max_dist`` (default 10); with
            ``"dwithin"`` (required), polygons whose outline is closer than it;
            ``"contains"`` and ``"covers"`` take none.
            A partitioned join needs it finite (``inf`` makes every polygon a candidate
            of every point: pass a PolygonIndex to broadcast instead).
        how: ``"inner"`` keeps matched points only, ``"left"`` every point.
        keep: point columns carried into the result (ids, attributes).
        x, y: the coordinate columns. By default the columns are chosen by the rule
            of :meth:`polymatch.PolygonIndex.match` (docs/SPEC.md): a dask-geopandas
            GeoDataFrame's geometry, else ``x``/``y``, else a column named
            ``geometry``/``geom``/``wkb``/``wkb_geometry``.
        threads: rayon threads per task; default ``RAYON_NUM_THREADS`` of the worker if
            set, else 1 (Dask's workers and threads give the parallelism).
        geometry: a point geometry column to use instead of ``x``/``y``.
        keep_polygons: polygon attribute columns carried into the result (shipped with
            the broadcast index, or carried through the tiles), named as
            :meth:`~polymatch.PolygonIndex.match` names them.
        polygon_geometry: the polygons' geometry column (partitioned polygons), if the
            detection rule would not find it.
        all_candidates: every (point, candidate) pair instead of the best match.
        rank_by, descending, k: the rank rule, as for :meth:`polymatch.PolygonIndex.match`
            (``k > 1`` adds a ``rank`` column). A broadcast index is prepared for it on
            the client and its order shipped in the bytes; partitioned tiles carry the
            column and are prepared on the workers.
        predicate: ``"center"``, ``"contains"``, ``"covers"`` or ``"dwithin"``, as for
            :meth:`polymatch.PolygonIndex.match`. A shape predicate ships the polygons'
            outlines with a broadcast index; partitioned polygons then go to every tile
            their box reaches (for ``"dwithin"``, their box widened by ``max_dist``),
            with their outlines.
        point_index: ``"global"`` (default): the point's row in the whole DataFrame,
            which needs every partition's length (computed lazily, in the same graph:
            ``len`` of each partition and two-level prefix sums; no extra pass over the
            data, and no known divisions required). ``"partition"``: the row within its
            partition plus a ``partition`` column (uint32); no dependency between
            partitions at all.
        polygons_per_tile: the tile size of a partitioned join (default 250,000):
            smaller tiles, less memory per task, more halo copies and tasks.
        allow_crs_mismatch: match even if the points and the polygons state different
            CRS, as for :meth:`polymatch.PolygonIndex.match` (the CRS of points and
            polygons read by :func:`read_parquet` or dask-geopandas is known).
        metric: ``"planar"`` or ``"sphere"`` (longitude/latitude, metres), as for
            :meth:`polymatch.PolygonIndex.match`. A broadcast index carries its metric
            in its bytes; partitioned polygons go to tiles of longitude/latitude, each
            to every tile its cap's box reaches (docs/scaling.md). Default: the index's,
            planar for polygons indexed here.

    Raises:
        TypeError: the points came first (the order of polymatch 0.1).
        ValueError: a partitioned join with ``max_dist=inf``; bad options.
        SchemaError: missing columns, different CRS across polygon partitions, points
            and polygons in different CRS (without ``allow_crs_mismatch``; raised when
            the partitions are matched, i.e. on compute).

    Example::

        import polymatch as pm
        import polymatch.dask as pmd

        index = pm.read_polygons("polygons.parquet")
        points = pmd.read_parquet("points/*.parquet")  # Arrow types and CRS kept
        matches = pmd.match(index, points, max_dist=10.0, keep=["point_id"])
        matches.to_parquet("matches/")                 # or .compute()

        # polygons that do not fit one process: partition them too
        footprints = pmd.read_parquet("footprints/*.parquet")
        matches = pmd.match(footprints, points, max_dist=10.0, keep_polygons=["id"])
    """
    _require_dask(dataframe=True)
    import dask

    _check_order(polygons, points)
    if point_index not in ("global", "partition"):
        raise ValueError(f"point_index must be 'global' or 'partition', got {point_index!r}")
    if point_index == "partition" and "partition" in (keep or []):
        raise ValueError("keep has a column 'partition', which point_index='partition' adds")
    if how not in ("inner", "left"):
        raise ValueError(f"how must be 'inner' or 'left', got {how!r}")
    keep = list(keep or [])
    keep_polygons = list(keep_polygons or [])
    coords = _point_columns(points, x, y, geometry)
    columns = list(dict.fromkeys(coords + keep))
    missing = [c for c in columns if c not in points.columns]
    if missing:
        from polymatch._core import SchemaError

        raise SchemaError(
            f"points have no column {', '.join(map(repr, missing))} "
            f"(columns: {', '.join(map(str, points.columns))})"
        )
    points = points[columns]  # a projection: read_parquet then reads only these columns
    options: dict[str, Any] = {
        "predicate": predicate,
        "max_dist": max_dist,
        "how": how,
        "all_candidates": all_candidates,
        "rank_by": rank_by,
        "descending": descending,
        "k": k,
        "keep": keep or None,
        "keep_polygons": keep_polygons or None,
        "allow_crs_mismatch": allow_crs_mismatch,
        "metric": metric,
    }
    spec: dict[str, Any] = {}
    if geometry is not None:
        spec["geometry"] = geometry
    elif x is not None or y is not None:
        spec.update(x=x, y=y)
    options.update(spec)
    per_partition = point_index == "partition"
    parts = _carrying_geo(points.to_delayed(), points)
    import pandas as pd

    polygon_parts = _polygon_parts(polygons, rank_by, polygon_geometry)
    if polygon_parts is None:
        index = _as_index(polygons, polygon_geometry, metric).prepare(rank_by, descending)
        schema = _meta_schema(points, index, options, per_partition)
        token, data, _, crs = _broadcast(index, rank_by, descending, keep_polygons, predicate)
        match_part = dask.delayed(_match_partition, pure=True)
        results = [
            match_part(
                part, data, token, crs, options, threads, schema, i if per_partition else None
            )
            for i, part in enumerate(parts)
        ]
        if not per_partition:
            length = dask.delayed(len, pure=True)
            offsets = _global_offsets([length(part) for part in parts])
            shift = dask.delayed(_shift, pure=True)
            results = [shift(r, off) for r, off in zip(results, offsets)]
    else:
        from polymatch import _tiles

        halo = _halo(predicate, max_dist, metric)
        options["max_dist"] = _match_max_dist(predicate, max_dist)
        carry = _carried(keep_polygons, rank_by)
        plan = _tiles.plan(
            polygon_parts,
            polygon_geometry,
            carry,
            halo,
            polygons_per_tile or _tiles.POLYGONS_PER_TILE,
        )
        empty = _tiles.empty_tile(plan.schema, plan.crs, rank_by, descending, halo.index_metric)
        schema = _meta_schema(points, empty.index, options, per_partition)
        tiling = dask.delayed(plan.tiling, name=f"polymatch-tiling-{plan.token()}", pure=True)
        tiles = _tile_keys(
            polygon_parts, plan, tiling, polygon_geometry, carry, halo, rank_by, descending
        )
        if per_partition:
            offsets: list[Any] = [0] * len(parts)
        else:
            length = dask.delayed(len, pure=True)
            offsets = _global_offsets([length(part) for part in parts])
        route = dask.delayed(_routed_frame, pure=True, nout=len(tiles))
        combine = dask.delayed(_combined_frame, pure=True)
        results = [
            combine(
                _matched_pieces(
                    route(
                        part, tiling, spec, len(tiles), i if per_partition else None, halo.sphere
                    ),
                    tiles,
                    options,
                    threads,
                ),
                schema,
                off,
                i if per_partition else None,
            )
            for i, (part, off) in enumerate(zip(parts, offsets))
        ]
    meta = schema.empty_table().to_pandas(types_mapper=pd.ArrowDtype)
    import dask.dataframe as dd

    return dd.from_delayed(results, meta=meta, verify_meta=False)


def _meta_schema(
    points: Any, index: PolygonIndex, options: dict[str, Any], per_partition: bool
) -> pa.Schema:
    """The output schema: the real thing run on Dask's non-empty fake partition (so that
    object columns get a real Arrow type); every partition is cast to it."""
    try:
        sample = _match_table(points._meta_nonempty, index, options, 1)
    except PolymatchError:  # fake values Dask made up, e.g. for a WKB column
        sample = _match_table(points._meta, index, options, 1)
    if per_partition:
        sample = sample.append_column("partition", pa.array([0] * sample.num_rows, pa.uint32()))
    return sample.schema


# ---------------------------------------------------------------------------------------
# match_parquet: files in, files out
# ---------------------------------------------------------------------------------------


def _recorded_job(path: str | os.PathLike[str]) -> str | None:
    """The ``job`` recorded in the ``polymatch`` metadata of a complete output file, or
    None if the file is not a readable Parquet file (footer and metadata intact) or was
    not written by such a job."""
    import json

    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata.metadata or {}
        return json.loads(meta[b"polymatch"]).get("job")
    except Exception:
        return None


def _job_id(token: str, src: Path, options: dict[str, Any]) -> str:
    """What identifies one file's job: the index (its bytes' hash), every option, the
    input file (resolved path, size, modification time) and polymatch's version. An
    output may be skipped on a rerun only if it records exactly this."""
    import json

    from polymatch import __version__

    st = src.stat()
    what = {
        "index": token,
        "options": options,
        "src": os.path.realpath(src),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "version": __version__,
    }
    text = json.dumps(what, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _remove_stale_temps(out: Path) -> None:
    """Remove temporary files left beside ``out`` by a writer that died (a killed worker
    cannot clean up). Called after ``out`` was committed, so none of them is needed."""
    for stale in out.parent.glob(f".{glob.escape(out.name)}.polymatch-*.tmp"):
        try:
            stale.unlink()
        except OSError:
            pass


def _match_file(
    data: tuple[bytes, bytes | None],
    token: str,
    crs: Any,
    src: str,
    dst: str,
    options: dict[str, Any],
    threads: int | None,
    job: str,
) -> dict[str, Any]:
    """One task of :func:`match_parquet`: match ``src`` into ``dst`` unless ``dst`` is a
    complete output of this very job (``job``, see :func:`_job_id`); an output of any
    other job (other options, index or input) is redone. An error in the input is
    returned, not raised (under ``"error"``), so that the job settles (every other file
    finished, no temporary file in flight) before :func:`match_parquet` raises it."""
    out = Path(dst)
    if out.exists() and _recorded_job(out) == job:
        return {"out": dst, "skipped": True}
    out.parent.mkdir(parents=True, exist_ok=True)
    index = cached_index(token, *data[:1], crs, *data[1:])
    try:
        summary = _match_parquet_file(
            index, src, dst, threads=_resolve_threads(threads), job_id=job, **options
        )
    except (PolymatchError, OSError, ValueError) as e:
        return {"out": dst, "error": e}
    _remove_stale_temps(out)
    return {"out": dst, "skipped": False, **summary}


def _list_inputs(points: Any, what: str = "points") -> tuple[list[Path], Path | None]:
    """Input files, and the directory their output paths are relative to (None: flat).
    Every file is checked to exist here, on the client, before anything is computed: a
    missing one is a ``FileNotFoundError`` naming it (the others missing in a note)."""
    if isinstance(points, (str, os.PathLike)):
        p = Path(points)
        if p.is_dir():
            files = sorted(
                f
                for f in p.rglob("*.parquet")
                if f.is_file()
                and not any(part.startswith((".", "_")) for part in f.relative_to(p).parts)
            )
            return files, p
        if glob.has_magic(str(points)) and not p.exists():
            files = [Path(f) for f in sorted(glob.glob(str(points), recursive=True))]
        else:
            files = [p]
    elif isinstance(points, Iterable):
        files = [Path(f) for f in points]
    else:
        raise TypeError(
            f"{what} must be a list of Parquet paths, a glob pattern or a directory; "
            f"got {type(points).__name__}"
        )
    missing = [f for f in files if not f.exists()]
    if missing:
        e = FileNotFoundError(errno.ENOENT, f"no such {what} file", str(missing[0]))
        if len(missing) > 1:
            more = ", ".join(map(str, missing[1:]))
            e.add_note(f"{len(missing) - 1} more {what} file(s) do not exist: {more}")
        raise e
    for f in files:
        if f.is_dir():
            raise IsADirectoryError(
                errno.EISDIR,
                f"{what} path is a directory (pass a directory alone to match every "
                "Parquet file below it)",
                str(f),
            )
    return files, None


def _new_dirs(out_root: Path, outs: list[Path]) -> list[Path]:
    """The directories the outputs need that do not exist yet (``out_root``, its missing
    parents, and the parents of nested outputs), deepest first."""
    new: set[Path] = set()
    for d in {out_root, *(o.parent for o in outs)}:
        while not d.exists() and d not in new:
            new.add(d)
            d = d.parent
    return sorted(new, key=lambda d: len(d.absolute().parts), reverse=True)


def _remove_empty(dirs: list[Path]) -> None:
    """Remove the directories this call created, deepest first, if they are empty (a
    failed job that wrote no output leaves no empty output directory behind)."""
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            pass  # not empty (an output or a file someone else wrote), or already gone


def _output_paths(files: list[Path], root: Path | None, out_dir: Path) -> list[Path]:
    if root is not None:
        rel = [f.relative_to(root) for f in files]
    else:
        rel = [Path(f.name) for f in files]
    outs = [out_dir / r.with_suffix(".parquet") for r in rel]
    seen: dict[Path, Path] = {}
    for f, o in zip(files, outs):
        if o in seen:
            raise ValueError(
                f"{seen[o]} and {f} would both be written to {o}; "
                "pass a directory (its layout is mirrored) or rename the inputs"
            )
        seen[o] = f
    inputs = {os.path.realpath(f) for f in files}
    clash = [o for o in outs if os.path.realpath(o) in inputs]
    if clash:
        raise ValueError(f"output {clash[0]} would overwrite an input file")
    return outs


def match_parquet(
    points: Any,
    polygons: Any,
    out_dir: str | os.PathLike[str],
    max_dist: float | None = None,
    how: Literal["inner", "left"] = "inner",
    keep: Sequence[str] | None = None,
    threads: int | None = None,
    *,
    x: str | None = None,
    y: str | None = None,
    geometry: str | None = None,
    keep_polygons: Sequence[str] | None = None,
    polygon_geometry: str | None = None,
    all_candidates: bool = False,
    rank_by: str = "area",
    descending: bool = False,
    k: int = 1,
    batch_rows: int = 262_144,
    polygons_per_tile: int | None = None,
    allow_crs_mismatch: bool = False,
    predicate: Literal["center", "contains", "covers", "dwithin"] = "center",
    metric: Literal["planar", "sphere"] | None = None,
) -> list[str]:
    """Match Parquet files of points on the current Dask scheduler, one task per file.

    Each task streams one input file through :func:`polymatch.match_parquet` into
    ``out_dir/<stem>.parquet`` (with a directory input, its sub-directory layout is
    mirrored), written atomically (a temporary file beside the target, then a rename).
    A task whose output already exists, complete, from the *same job* does nothing, so
    rerunning the same call after a failure (a killed worker, a full disk, Ctrl-C)
    finishes the job without duplicating or redoing finished files. "The same job" is
    recorded in each output's ``polymatch`` metadata (``"job"``): a hash of the index's
    bytes, every option, the input file's path, size and modification time, and
    polymatch's version; an output from any other job (another ``max_dist``, index,
    kept columns, or a changed input) is redone. Outputs hold
    ``point_index`` as the row *within its file*; keep an id column to join across files.

    The inputs and ``out_dir`` must be on a filesystem every worker sees (local disk for
    a ``LocalCluster``, a shared mount otherwise). The graph is computed with
    ``dask.compute``, i.e. on the active ``distributed`` client if there is one.

    Args:
        points: a list of Parquet paths, a glob pattern (``"points/*.parquet"``) or a
            directory (every ``*.parquet`` below it, skipping ``.``/``_`` names).
        polygons: broadcast: a :class:`~polymatch.PolygonIndex`, anything
            :meth:`~polymatch.PolygonIndex.from_arrow` takes, or a (Geo)Parquet path
            (read once, here, on the client); or partitioned (see :func:`match`): a
            Dask DataFrame of polygons or a list of polygon Parquet files. A
            partitioned job reads each points file in one task, matches it against each
            tile in one task per tile, and writes its output in one more.
        out_dir: where the outputs go (created if needed, after the inputs and the
            polygons were checked; removed again, with any sub-directory this call
            created, if the job fails before any output is complete).
        predicate, max_dist, how, keep, x, y, all_candidates, rank_by, descending, k,
        batch_rows:
            as for :func:`polymatch.match_parquet`; ``geometry`` is its
            ``point_geometry``. A ``rank_by`` column is read on the client and its order
            shipped with the index (see :func:`match`).
        threads: rayon threads per task (see :func:`match`).
        keep_polygons, polygon_geometry, polygons_per_tile: as for :func:`match`.
        allow_crs_mismatch: match even if the points and the polygons state different
            CRS (as for :func:`polymatch.match_parquet`); part of the job's identity.
        metric: as for :func:`match`.

    Returns:
        The output paths, in input order (including the ones a rerun skipped).

    Raises:
        FileNotFoundError: an input file does not exist (checked for every input before
            anything is computed), or a glob or directory holds no Parquet file.
        ImportError: Dask is not installed (``pip install "polymatch[dask]"``).
        PolymatchError, OSError, ValueError: the first input that failed, once every
            other task has settled; a note tells whether other outputs are complete (a
            rerun then does only the failed files).
    """
    _require_dask()
    import dask

    # Everything that can be checked on the client is checked before anything is created
    # or computed: inputs exist, outputs do not clash, the polygons are readable.
    files, root = _list_inputs(points)
    if not files:
        raise FileNotFoundError(f"no Parquet files in {points!r}")
    out_root = Path(out_dir)
    outs = _output_paths(files, root, out_root)
    options: dict[str, Any] = {
        "predicate": predicate,
        "max_dist": max_dist,
        "how": how,
        "all_candidates": all_candidates,
        "keep": list(keep) if keep else None,
        "x": x,
        "y": y,
        "point_geometry": geometry,
        "rank_by": rank_by,
        "descending": descending,
        "k": k,
        "batch_rows": batch_rows,
        "keep_polygons": list(keep_polygons) if keep_polygons else None,
        "allow_crs_mismatch": allow_crs_mismatch,
        "metric": metric,
    }
    polygon_parts = _polygon_parts(polygons, rank_by, polygon_geometry)
    if polygon_parts is not None:
        return _match_parquet_tiles(
            polygons,
            polygon_parts,
            files,
            outs,
            out_root,
            options,
            threads,
            polygon_geometry,
            polygons_per_tile,
        )
    token, data, nbytes, crs = _broadcast(
        _as_index(polygons, polygon_geometry, metric),
        rank_by,
        descending,
        keep_polygons or (),
        predicate,
    )
    created = _new_dirs(out_root, outs)
    out_root.mkdir(parents=True, exist_ok=True)
    task = dask.delayed(_match_file, pure=True)
    tasks = [
        task(data, token, crs, str(f), str(o), options, threads, _job_id(token, f, options))
        for f, o in zip(files, outs)
    ]
    # The index is in the graph once, by design; do not let distributed warn about it.
    from dask.utils import parse_bytes

    threshold = dask.config.get("distributed.admin.large-graph-warning-threshold", "10MB")
    threshold = max(parse_bytes(threshold), 2 * nbytes + 10**7)
    try:
        with dask.config.set({"distributed.admin.large-graph-warning-threshold": threshold}):
            results = dask.compute(*tasks)
    except Exception:
        if not any(o.exists() for o in outs):
            _remove_empty(created)
        raise
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        done = len(results) - len(errors)
        first = errors[0]
        if len(errors) > 1:
            more = "; ".join(str(e) for e in errors[1:])
            first.add_note(f"{len(errors) - 1} more input file(s) failed: {more}")
        if done:
            first.add_note(
                f"the other {done} file(s)' outputs are complete; rerun to finish the job"
            )
        else:
            _remove_empty(created)
        raise first
    return [r["out"] for r in results]


# ---------------------------------------------------------------------------------------
# match_parquet with partitioned polygons
# ---------------------------------------------------------------------------------------


def _file_point_columns(
    schema: pa.Schema, spec: dict[str, Any], keep: list[str]
) -> tuple[list[str], Any]:
    """The columns of a points file that matching reads (the point columns by the
    single-process rule, :func:`polymatch._core.resolve_columns`, then the kept ones that
    exist: a missing one is then refused by the match, as one process refuses it), and
    the CRS the file states."""
    from polymatch._core import resolve_columns

    coords, crs = resolve_columns(schema, "points", **spec)
    wanted = list(dict.fromkeys(coords + keep))
    return [c for c in wanted if c in schema.names], crs


def _routed_file(
    src: str, tiling: Any, spec: dict[str, Any], keep: list[str], wrap: bool = False
) -> list[Any]:
    """Read one points file (only the columns matching needs) and route it."""
    import pyarrow.parquet as pq

    from polymatch import _tiles

    try:
        columns, _ = _file_point_columns(pq.read_schema(src), spec, keep)
        table = pq.read_table(src, columns=columns)
        return _tiles.route(table, tiling, spec, wrap)
    except (PolymatchError, OSError, pa.ArrowException) as e:
        e.add_note(f"in points file {src}")
        raise


#: The options a result file records (``polymatch._core.write_results``'s arguments).
_RECORDED = (
    "predicate",
    "max_dist",
    "how",
    "all_candidates",
    "rank_by",
    "descending",
    "k",
    "keep",
    "keep_polygons",
    "metric",
)


def _write_tiles_output(
    results: list[pa.Table],
    dst: str,
    job: str,
    src: str,
    options: dict[str, Any],
    spec: dict[str, Any],
    polygons_crs: Any,
) -> dict[str, Any]:
    """Put one points file's results in point order and write them as one process
    writes its output (:func:`polymatch._core.write_results`: atomically, with the same
    ``geo`` and ``polymatch`` metadata), recording ``job``."""
    import pyarrow.parquet as pq

    from polymatch import _tiles
    from polymatch._core import write_results

    table = _tiles.combine(results, None, 0)
    _, points_crs = _file_point_columns(pq.read_schema(src), spec, [])
    # The result's CRS: the polygons' if they state one, else the points' (an unstated
    # CRS never conflicts; a mismatch was refused by the match, or allowed).
    crs = polygons_crs if polygons_crs is not None else points_crs
    out = Path(dst)
    out.parent.mkdir(parents=True, exist_ok=True)
    recorded = {k: options[k] for k in _RECORDED}
    write_results(table, out, **recorded, crs=crs, points=src, job_id=job)
    _remove_stale_temps(out)
    # Points with a match: the rows are in point order, so count where point_index steps.
    # (pc.count_distinct would build a hash table of hundreds of MB for a million rows.)
    rows = pc.filter(table["point_index"], pc.is_valid(table["polygon_index"]))
    rows = rows.to_numpy() if rows.num_chunks != 1 else rows.chunk(0).to_numpy()
    matched = int(len(rows) > 0) + int(np.count_nonzero(np.diff(rows)))
    return {"out": dst, "skipped": False, "matched": matched, "rows_written": table.num_rows}


def _match_parquet_tiles(
    polygons: Any,
    polygon_parts: list[Any],
    files: list[Path],
    outs: list[Path],
    out_root: Path,
    options: dict[str, Any],
    threads: int | None,
    polygon_geometry: str | None,
    polygons_per_tile: int | None,
) -> list[str]:
    """:func:`match_parquet` with partitioned polygons: per points file, one read-and-route
    task, one match task per tile and one write task; files whose output is complete
    from this very job are left out of the graph."""
    import dask
    from dask.base import tokenize

    from polymatch import _tiles

    keep = list(options["keep"] or [])
    keep_polygons = list(options["keep_polygons"] or [])
    rank_by, descending = options["rank_by"], options["descending"]
    spec = {
        k: v
        for k, v in (
            ("x", options["x"]),
            ("y", options["y"]),
            ("geometry", options["point_geometry"]),
        )
        if v is not None
    }
    match_options = {
        "predicate": options["predicate"],
        "max_dist": _match_max_dist(options["predicate"], options["max_dist"]),
        "how": options["how"],
        "all_candidates": options["all_candidates"],
        "rank_by": rank_by,
        "descending": descending,
        "k": options["k"],
        "keep": keep or None,
        "keep_polygons": keep_polygons or None,
        "allow_crs_mismatch": options["allow_crs_mismatch"],
        "metric": options["metric"],
        **spec,
    }
    carry = _carried(keep_polygons, rank_by)
    plan = _tiles.plan(
        polygon_parts,
        polygon_geometry,
        carry,
        _halo(options["predicate"], options["max_dist"], options["metric"]),
        polygons_per_tile or _tiles.POLYGONS_PER_TILE,
    )
    if isinstance(polygons, (list, tuple)):
        sources = [
            (str(Path(f).resolve()), Path(f).stat().st_size, Path(f).stat().st_mtime_ns)
            for f in polygon_parts
        ]
    else:
        sources = tokenize(polygons)
    what = hashlib.blake2b(
        repr((plan.token(), sources, polygon_geometry, polygons_per_tile)).encode(),
        digest_size=16,
    ).hexdigest()
    jobs = [_job_id(what, f, options) for f in files]
    todo = [
        i
        for i, (o, job) in enumerate(zip(outs, jobs))
        if not (o.exists() and _recorded_job(o) == job)
    ]
    results: dict[int, dict[str, Any]] = {
        i: {"out": str(outs[i]), "skipped": True} for i in range(len(files)) if i not in todo
    }
    created = _new_dirs(out_root, outs)
    out_root.mkdir(parents=True, exist_ok=True)
    if todo:
        tiling = dask.delayed(plan.tiling, name=f"polymatch-tiling-{plan.token()}", pure=True)
        tiles = _tile_keys(
            polygon_parts,
            plan,
            tiling,
            polygon_geometry,
            carry,
            _halo(options["predicate"], options["max_dist"], options["metric"]),
            rank_by,
            descending,
        )
        route = dask.delayed(_routed_file, pure=True, nout=len(tiles))
        write = dask.delayed(_write_tiles_output, pure=True)
        tasks = [
            write(
                _matched_pieces(
                    route(str(files[i]), tiling, spec, keep, options["metric"] == "sphere"),
                    tiles,
                    match_options,
                    threads,
                ),
                str(outs[i]),
                jobs[i],
                str(files[i]),
                match_options,
                spec,
                plan.crs,
            )
            for i in todo
        ]
        try:
            done = dask.compute(*tasks)
        except Exception as e:
            complete = [o for o in outs if o.exists()]
            if complete:
                e.add_note(f"{len(complete)} output file(s) are complete; rerun to finish the job")
            else:
                _remove_empty(created)
            raise
        results.update(zip(todo, done))
    return [results[i]["out"] for i in range(len(files))]
