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

from fsd.aggregation.event_log import RECEIVED, ROW, SEQ
from fsd.aggregation.reference import NOT_FOUND
from fsd.aggregation.tiles import FeatureTiles, SlotTiles
from fsd.domain.aggregation import Aggregation


@dataclass(frozen=True, slots=True)
class ComputedFeature:
    name: str
    aggregation: Aggregation
    max_age_micros: int


@dataclass(slots=True)
class ComputedColumn:
    values: list[object]
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


__all__ = ["ComputedColumn", "ComputedFeature", "compute"]
