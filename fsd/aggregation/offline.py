"""Point-in-time values of computed features from the event log, at each label row's time: the training side.

Per entity, the events are taken in arrival order and folded into the same tiles the daemon keeps online, and
each of the entity's labels (in time order) reads the tiles as of its instant, having folded exactly the events
received by then. So a training value is what GetFeatures would have answered at that instant, by construction
of the same partial states, and both are property-tested against the brute-force reference
(fsd.aggregation.reference). Never a later event: an event received after the label's time is not folded yet,
whatever its event time. Cost: one pass over the events plus 60 tiles per label and feature.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fsd.aggregation.event_log import RECEIVED, ROW, SEQ
from fsd.aggregation.reference import NOT_FOUND
from fsd.aggregation import batch_fold
from fsd.aggregation.tiles import FUNCTION_CODES, FeatureTiles, SlotTiles
from fsd.domain.aggregation import Aggregation, parse_filter


@dataclass(frozen=True, slots=True)
class ComputedFeature:
    name: str
    aggregation: Aggregation
    max_age_micros: int


@dataclass(slots=True)
class ComputedColumn:
    values: list[object] | pa.Array  # an Arrow array from the compiled path
    status: np.ndarray  # uint8: 1 PRESENT, 2 NOT_FOUND, 3 STALE
    event_micros: np.ndarray  # int64, 0 where NOT_FOUND


def _keys(table: pa.Table, names: Sequence[str]) -> list[tuple[object, ...]]:
    columns = [table[n].to_pylist() for n in names]
    return list(zip(*columns))


def compute(events: pa.Table | None, labels: pa.Table, key_names: Sequence[str], label_time: str,
            features: Sequence[ComputedFeature], event_columns: Sequence[str], as_of_micros: int | None = None) -> dict[str, ComputedColumn]:
    """Each feature's value for each label row (keys + a tz-aware time), in the labels' order. as_of: also hide
    events received after it (the window still ends at the label's time)."""
    n = labels.num_rows
    if events is not None and events.num_rows and n and batch_fold.available([f.aggregation for f in features]):
        return _compute_compiled(events, labels, key_names, label_time, features, as_of_micros)
    out = {f.name: ComputedColumn([None] * n, np.full(n, NOT_FOUND, dtype=np.uint8), np.zeros(n, dtype=np.int64)) for f in features}
    if events is None or events.num_rows == 0 or n == 0:
        return out
    label_keys = _keys(labels, key_names)
    label_times = labels[label_time].cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False)
    wanted: dict[tuple[object, ...], list[int]] = {}
    for row, key in enumerate(label_keys):
        wanted.setdefault(key, []).append(row)
    event_keys = _keys(events, key_names)
    event_times = events["event_timestamp"].cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False)
    received = events[RECEIVED].cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False)
    seqs = events[SEQ].to_numpy(zero_copy_only=False)
    rows = events[ROW].to_numpy(zero_copy_only=False)
    columns = {c: events[c].to_pylist() for c in event_columns if c in events.column_names}
    by_entity: dict[tuple[object, ...], list[int]] = {}
    for index, key in enumerate(event_keys):
        if key in wanted:
            by_entity.setdefault(key, []).append(index)
    folders = [FeatureTiles(0, f.aggregation, 0) for f in features]
    for key, indices in by_entity.items():
        indices.sort(key=lambda i: (received[i], seqs[i], rows[i]))  # arrival order
        states = [SlotTiles(f.aggregation.function) for f in features]
        label_rows = sorted(wanted[key], key=lambda r: label_times[r])
        position = 0
        for label_row in label_rows:
            t = int(label_times[label_row])
            seen_until = t if as_of_micros is None else min(t, as_of_micros)
            while position < len(indices) and received[indices[position]] <= seen_until:
                i = indices[position]
                values = {c: column[i] for c, column in columns.items()}
                arrival = (int(received[i]), int(seqs[i]), int(rows[i]))
                for folder, state in zip(folders, states):
                    folder.add(state, int(event_times[i]), arrival, values)
                position += 1
            if position == 0:
                continue  # nothing received by t: NOT_FOUND
            for feature, folder, state in zip(features, folders, states):
                status, value, newest = folder.value_at(state, t, feature.max_age_micros)
                column = out[feature.name]
                column.values[label_row], column.status[label_row], column.event_micros[label_row] = value, status, newest
    return out


def _entity_codes(events: pa.Table, labels: pa.Table, key_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """One int64 code per entity, shared by events and labels (a label whose key has a null matches nothing)."""
    if len(key_names) == 1 and pa.types.is_integer(events.schema.field(key_names[0]).type) and labels[key_names[0]].null_count == 0 \
            and pa.types.is_integer(labels.schema.field(key_names[0]).type):
        return (events[key_names[0]].cast(pa.int64()).to_numpy(zero_copy_only=False),
                labels[key_names[0]].cast(pa.int64()).to_numpy(zero_copy_only=False))
    parts = []
    for name in key_names:
        both = pa.chunked_array([*events[name].chunks, *labels[name].cast(events.schema.field(name).type).chunks], type=events.schema.field(name).type)
        encoded = pc.dictionary_encode(both).combine_chunks()
        parts.append(encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False) if encoded.null_count == 0 else
                     pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64))
    stacked = np.stack(parts, axis=1)
    _, codes = np.unique(stacked, axis=0, return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    missing = (stacked < 0).any(axis=1)
    codes[missing] = -1 - np.arange(int(missing.sum()))  # a null key part: an entity of its own, with no events
    return codes[: events.num_rows], codes[events.num_rows:]


def _in_arrival_order(received: np.ndarray, seqs: np.ndarray, rows: np.ndarray) -> bool:
    """Whether (received, sequence, row) never decreases from one event to the next."""
    if len(received) < 2:
        return True
    d_received, d_seq, d_row = np.diff(received), np.diff(seqs), np.diff(rows)
    return bool(np.all((d_received > 0) | ((d_received == 0) & ((d_seq > 0) | ((d_seq == 0) & (d_row >= 0))))))


def _filter_column(agg: Aggregation) -> str:
    condition = parse_filter(agg.filter)
    return condition.column if condition is not None else ""


def _compute_compiled(events: pa.Table, labels: pa.Table, key_names: Sequence[str], label_time: str, features: Sequence[ComputedFeature],
                      as_of_micros: int | None) -> dict[str, ComputedColumn]:
    """compute() for count/sum/mean/min/max through the compiled twin (fsd._native.computed_values_offline)."""
    ts = pa.timestamp("us", tz="UTC")
    event_codes, label_codes = _entity_codes(events, labels, key_names)
    received = events[RECEIVED].cast(ts).cast(pa.int64()).to_numpy(zero_copy_only=False)
    seqs, rows = events[SEQ].to_numpy(zero_copy_only=False), events[ROW].to_numpy(zero_copy_only=False)
    if _in_arrival_order(received, seqs, rows):  # the log as written: grouping by entity keeps arrival order
        order = np.argsort(event_codes, kind="stable")
    else:
        order = np.lexsort((rows, seqs, received, event_codes))
    used = sorted({c for f in features for c in (f.aggregation.column, _filter_column(f.aggregation)) if c})
    events = events.select(["event_timestamp", *used]).take(pa.array(order))  # only the columns the features read
    event_codes, received = np.ascontiguousarray(event_codes[order]), np.ascontiguousarray(received[order])
    event_times = np.ascontiguousarray(events["event_timestamp"].cast(ts).cast(pa.int64()).to_numpy(zero_copy_only=False))
    label_times = np.ascontiguousarray(labels[label_time].cast(ts).cast(pa.int64()).to_numpy(zero_copy_only=False))
    label_order = np.lexsort((label_times, label_codes)).astype(np.int64)
    label_codes = np.ascontiguousarray(label_codes)
    out = {}
    for f in features:
        values, counted = batch_fold.counted_rows(events, f.aggregation)
        got, valid, status, newest = batch_fold.offline_values(event_codes, event_times, received, label_codes, label_times, label_order,
                                                               FUNCTION_CODES[f.aggregation.function], f.aggregation.tile_micros,
                                                               f.max_age_micros, values, counted, as_of_micros)
        array = pa.array(got, mask=~valid.astype(np.bool_))
        out[f.name] = ComputedColumn(array.cast(pa.int64()) if f.aggregation.function == "count" else array, status, newest)
    return out


__all__ = ["ComputedColumn", "ComputedFeature", "compute"]
