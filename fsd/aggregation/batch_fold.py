"""A push batch folded into its entities' tile blobs in one compiled call (fsd._native.fold_numeric_tiles), when
every computed feature of the group is a count, sum, mean, min or max: the Python path (tiles.decode,
FeatureTiles.add_rows, drop_expired, tiles.encode) is the specification, and the unit tests prove the two write
the same bytes. Other groups (last, count_distinct) take the Python path."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fsd import codec
from fsd.aggregation.reference import passes_value
from fsd.aggregation.tiles import FUNCTION_CODES, FeatureTiles, applied_seq
from fsd.domain.aggregation import Aggregation, parse_filter

NUMERIC = frozenset({"count", "sum", "mean", "min", "max"})
_native = getattr(codec, "_native", None)
_fold = getattr(_native, "fold_numeric_tiles", None) if _native is not None else None
_offline = getattr(_native, "computed_values_offline", None) if _native is not None else None


def available(aggregations: Sequence[Aggregation]) -> bool:
    """Whether the compiled folds (push and training) can take these features."""
    return _fold is not None and _offline is not None and bool(aggregations) and all(a.function in NUMERIC for a in aggregations)


def counted_rows(batch: pa.Table, agg: Aggregation) -> tuple[np.ndarray, np.ndarray]:
    """(values as float64, whether each row counts: it passes the filter and has a value) — as add_rows decides."""
    n = batch.num_rows
    if agg.column:
        column = batch[agg.column]
        values = pc.cast(column, pa.float64(), safe=False).fill_null(0.0).to_numpy(zero_copy_only=False)
        counted = column.is_valid().to_numpy(zero_copy_only=False)
    else:
        values, counted = np.zeros(n, dtype=np.float64), np.ones(n, dtype=np.bool_)
    condition = parse_filter(agg.filter)
    if condition is not None:
        tested = batch[condition.column].to_pylist()
        counted = counted & np.fromiter((passes_value(condition, x) for x in tested), dtype=np.bool_, count=n)
    return np.ascontiguousarray(values, dtype=np.float64), np.ascontiguousarray(counted, dtype=np.uint8)


def fold_batch(keys: Sequence[bytes], stored: Sequence[bytes | None], batch: pa.Table, times: np.ndarray,
               folders: Sequence[FeatureTiles], now: int, seq: int) -> list[tuple[bytes, bytes]]:
    """The new blobs of the batch's entities. keys[i]: row i's tile key; stored: the blobs of the distinct keys in
    first-seen order (rows of entities already holding push `seq` must be filtered out before)."""
    unique = list(dict.fromkeys(keys))
    if len(stored) != len(unique):
        raise ValueError("fold_batch: one stored blob per distinct key")
    index = {key: i for i, key in enumerate(unique)}
    entity = np.fromiter((index[k] for k in keys), dtype=np.int64, count=len(keys))
    order = np.argsort(entity, kind="stable").astype(np.int64)
    starts = np.zeros(len(unique) + 1, dtype=np.int64)
    np.cumsum(np.bincount(entity, minlength=len(unique)), out=starts[1:])
    specs = []
    for folder in sorted(folders, key=lambda f: f.slot):
        values, counted = counted_rows(batch, folder.agg)
        specs.append((folder.slot, FUNCTION_CODES[folder.agg.function], folder.tile, folder.keep_tiles, values, counted))
    blobs = _fold(list(stored), order, starts, np.ascontiguousarray(times, dtype=np.int64), specs, int(now), int(seq))  # type: ignore[misc]
    return list(zip(unique, blobs))


def offline_values(event_entity: np.ndarray, event_times: np.ndarray, received: np.ndarray, label_entity: np.ndarray, label_times: np.ndarray,
                   label_order: np.ndarray, code: int, tile_micros: int, max_age_micros: int, values: np.ndarray, counted: np.ndarray,
                   as_of_micros: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(values, valid, status, event time) per label from the compiled offline fold (events sorted by entity and
    arrival, labels visited in label_order: by entity and time)."""
    return _offline(event_entity, event_times, received, label_entity, label_times, label_order, code, tile_micros, max_age_micros,  # type: ignore[misc, no-any-return]
                    values, counted, int(as_of_micros or 0), as_of_micros is not None)


__all__ = ["NUMERIC", "applied_seq", "available", "counted_rows", "fold_batch", "offline_values"]
