"""A push batch folded into its entities' tile blobs in one compiled call (fsd._native.fold_tiles), every function
included: the Python path (tiles.decode, FeatureTiles.add_rows, drop_expired, tiles.encode) is the specification,
and the unit tests prove the two write the same bytes. Per row, what the compiled loop cannot compute itself is
prepared here: HyperLogLog registers (one BLAKE2b hash per distinct value of the batch) and the values `last`
keeps. Training values (computed_values_offline) are compiled for count/sum/mean/min/max."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fsd import codec
from fsd.aggregation import hll
from fsd.aggregation.event_log import RECEIVED, ROW, SEQ
from fsd.aggregation.reference import passes_value
from fsd.aggregation.tiles import FUNCTION_CODES, FeatureTiles, applied_seq
from fsd.domain.aggregation import Aggregation, parse_filter

NUMERIC = frozenset({"count", "sum", "mean", "min", "max"})
_native = getattr(codec, "_native", None)
_fold = getattr(_native, "fold_tiles", None) if _native is not None else None
_offline = getattr(_native, "computed_values_offline", None) if _native is not None else None


def available(aggregations: Sequence[Aggregation]) -> bool:
    """Whether the compiled training fold can take these features (count/sum/mean/min/max)."""
    return _offline is not None and bool(aggregations) and all(a.function in NUMERIC for a in aggregations)


def push_available(batch: pa.Table, aggregations: Sequence[Aggregation]) -> bool:
    """Whether the compiled push fold can take a batch of these features (`last` of a column it can encode)."""
    if _fold is None or not aggregations:
        return False
    return all(a.function != "last" or _value_kind(batch.schema.field(a.column).type) for a in aggregations)


def _value_kind(arrow_type: pa.DataType) -> int:
    """How `last` values of a column are kept: 1 int, 2 float, 3 string, 4 bool (0: not by the compiled fold)."""
    if pa.types.is_boolean(arrow_type):
        return 4
    if pa.types.is_integer(arrow_type):
        return 1 if arrow_type.bit_width <= 64 and (pa.types.is_signed_integer(arrow_type) or arrow_type.bit_width < 64) else 0
    if pa.types.is_floating(arrow_type):
        return 2
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return 3
    return 0


def _arrivals(batch: pa.Table) -> list[np.ndarray]:
    """Each row's (received, sequence, row): the arrival `last` orders its values by."""
    return [np.ascontiguousarray(batch[name].cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64) for name in (RECEIVED, SEQ, ROW)]


def _last_extra(batch: pa.Table, agg: Aggregation, arrivals: list[np.ndarray]) -> tuple[object, ...]:
    column = batch[agg.column].combine_chunks() if batch.num_rows else pa.array([], batch.schema.field(agg.column).type)
    kind = _value_kind(column.type)
    n = batch.num_rows
    ints, floats = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.float64)
    offsets, data, longest = np.zeros(n + 1, dtype=np.int64), b"", 9
    if kind == 1 or kind == 4:
        ints = np.ascontiguousarray(pc.fill_null(pc.cast(column, pa.int64()), 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    elif kind == 2:
        floats = np.ascontiguousarray(pc.fill_null(pc.cast(column, pa.float64()), 0.0).to_numpy(zero_copy_only=False), dtype=np.float64)
    else:
        strings = pc.cast(column, pa.large_string())
        buffers = strings.buffers()
        offsets = np.frombuffer(buffers[1], dtype=np.int64)[strings.offset: strings.offset + n + 1].copy() if n else offsets
        data = buffers[2].to_pybytes() if buffers[2] is not None else b""
        longest = 5 + int(np.diff(offsets).max()) if n else 5
    return (*arrivals, kind, ints, floats, np.ascontiguousarray(offsets), np.frombuffer(data, dtype=np.uint8) if data else np.zeros(0, np.uint8), longest)


def _distinct_extra(batch: pa.Table, agg: Aggregation) -> tuple[np.ndarray, np.ndarray]:
    """The HyperLogLog register (index, rank) each row's value sets: hashed once per distinct value of the batch."""
    column = batch[agg.column]
    n = batch.num_rows
    index, rank = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    if n == 0:
        return index, rank
    if pa.types.is_floating(column.type):  # distinct bit patterns: -0.0 and 0.0 hash apart, as their str() does
        bits = pc.fill_null(pc.cast(column, pa.float64()), 0.0).to_numpy(zero_copy_only=False).view(np.int64)
        uniques, inverse = np.unique(bits, return_inverse=True)
        values = uniques.view(np.float64).tolist()
    else:
        encoded = pc.dictionary_encode(column).combine_chunks()
        values = encoded.dictionary.to_pylist()
        inverse = pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False)
    registers = [hll.register_of(v) for v in values] or [(0, 0)]
    table = np.array(registers, dtype=np.int64)
    return np.ascontiguousarray(table[inverse, 0]), np.ascontiguousarray(table[inverse, 1])


def counted_rows(batch: pa.Table, agg: Aggregation) -> tuple[np.ndarray, np.ndarray]:
    """(values as float64 — zeros for last and count_distinct, which keep their own —, whether each row counts: it
    passes the filter and has a value) — as add_rows decides."""
    n = batch.num_rows
    if agg.column:
        column = batch[agg.column]
        counted = column.is_valid().to_numpy(zero_copy_only=False)
        numeric = agg.function in NUMERIC
        values = pc.cast(column, pa.float64(), safe=False).fill_null(0.0).to_numpy(zero_copy_only=False) if numeric else np.zeros(n, dtype=np.float64)
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
    arrivals: list[np.ndarray] = []
    for folder in sorted(folders, key=lambda f: f.slot):
        agg = folder.agg
        extra: object = None
        if agg.function == "last":
            arrivals = arrivals or _arrivals(batch)  # once per batch, whatever the number of `last` features
            extra = _last_extra(batch, agg, arrivals)
        elif agg.function == "count_distinct":
            extra = _distinct_extra(batch, agg)
        values, counted = counted_rows(batch, agg)
        specs.append((folder.slot, FUNCTION_CODES[agg.function], folder.tile, folder.keep_tiles, values, counted, extra))
    blobs = _fold(list(stored), order, starts, np.ascontiguousarray(times, dtype=np.int64), specs, int(now), int(seq))  # type: ignore[misc]
    return list(zip(unique, blobs))


def offline_values(event_entity: np.ndarray, event_times: np.ndarray, received: np.ndarray, label_entity: np.ndarray, label_times: np.ndarray,
                   label_order: np.ndarray, code: int, tile_micros: int, max_age_micros: int, values: np.ndarray, counted: np.ndarray,
                   as_of_micros: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(values, valid, status, event time) per label from the compiled offline fold (events sorted by entity and
    arrival, labels visited in label_order: by entity and time)."""
    return _offline(event_entity, event_times, received, label_entity, label_times, label_order, code, tile_micros, max_age_micros,  # type: ignore[misc, no-any-return]
                    values, counted, int(as_of_micros or 0), as_of_micros is not None)


__all__ = ["NUMERIC", "applied_seq", "available", "counted_rows", "fold_batch", "offline_values", "push_available"]
