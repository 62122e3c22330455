"""Point-in-time retrieval for training: one as-of join per feature version, rows kept in order, none dropped."""
from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fsd.domain import KeyType
from fsd.errors import InvalidArgument
from fsd.offline import pit
from fsd.offline.store import CREATED_TIMESTAMP, EVENT_TIMESTAMP, VALUE, OfflineStore

_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True, slots=True)
class FeatureVersion:
    """What retrieval needs of one feature version (resolved from the registry by the caller)."""

    group: str
    feature: str
    version: int
    key_names: tuple[str, ...]
    max_age_micros: int  # 0: never too old
    behaviour_hash: str = ""
    key_types: tuple[KeyType, ...] = ()  # checked against the entity rows' columns when given (as online reads check them)

    @property
    def column(self) -> str:
        return f"{self.group}:{self.feature}"


def _times(table: pa.Table, name: str) -> np.ndarray:
    field = table.schema.field(name)
    if not pa.types.is_timestamp(field.type) or field.type.tz is None:
        raise InvalidArgument(f"entity rows: {name!r} must be a timezone-aware timestamp (naive timestamps are refused)", field=name)
    column = table[name]
    if column.null_count:
        raise InvalidArgument(f"entity rows: {name!r} has nulls", field=name)
    return pc.cast(pc.cast(column, _TS, safe=False), pa.int64()).to_numpy(zero_copy_only=False)


def join_feature(
    store: OfflineStore, entity_rows: pit.EntityRows, row_times: np.ndarray, feature: FeatureVersion, as_of_micros: int | None
) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(values aligned with entity_rows, status codes 1 PRESENT / 2 NOT_FOUND / 3 STALE, matched event times)."""
    right = store.read(
        feature.group, feature.feature, feature.version, key_columns=list(feature.key_names),
        # No lower time bound: a value older than max age must still be seen, to report it STALE, not NOT_FOUND.
        max_event_micros=int(row_times.max()), created_as_of_micros=as_of_micros,
    )
    n = entity_rows.count
    if right.num_rows == 0:
        value_type = right.schema.field(VALUE).type if VALUE in right.column_names else pa.null()
        return pa.nulls(n, type=value_type), np.full(n, 2, dtype=np.uint8), np.zeros(n, dtype=np.int64)
    r_times = right[EVENT_TIMESTAMP].cast(pa.int64()).to_numpy(zero_copy_only=False)
    r_created = right[CREATED_TIMESTAMP].cast(pa.int64()).to_numpy(zero_copy_only=False)
    idx = entity_rows.asof([right[k] for k in feature.key_names], r_times, r_created)
    found = idx >= 0
    matched_times = np.where(found, r_times[np.where(found, idx, 0)], 0)
    stale = found & (feature.max_age_micros > 0) & (row_times - matched_times > feature.max_age_micros)
    usable = found & ~stale
    values = pc.take(right[VALUE], pa.array(np.where(usable, idx, 0), mask=~usable))
    status = np.where(usable, 1, np.where(stale, 3, 2)).astype(np.uint8)
    return values, status, np.where(usable, matched_times, 0)


def _key_column(entity_rows: pa.Table, name: str, key_type: KeyType | None, feature: FeatureVersion) -> pa.ChunkedArray:
    """An entity-row key column, checked like an online read checks it: an int64 key takes integers only (a string
    or float column is refused, never cast), a string key strings only; dictionary-encoded columns are decoded."""
    column = entity_rows[name]
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if column.null_count:
        raise InvalidArgument(f"entity rows: key column {name!r} has nulls", field=name)
    if key_type is None:
        return column
    t = column.type
    if key_type == KeyType.INT64:
        if not pa.types.is_integer(t):
            raise InvalidArgument(f"entity rows: key column {name!r} is {t}; {feature.column} keys it by int64 (integers only)", field=name)
        if pa.types.is_uint64(t) and len(column) and pc.max(column).as_py() > 2**63 - 1:
            raise InvalidArgument(f"entity rows: key column {name!r} holds a value over the int64 range", field=name)
        return column.cast(pa.int64())
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise InvalidArgument(f"entity rows: key column {name!r} is {t}; {feature.column} keys it by string", field=name)
    return column


def _index_entity_rows(entity_rows: pa.Table, row_times: np.ndarray, features: Sequence[FeatureVersion]) -> dict[tuple[str, ...], pit.EntityRows]:
    """One index per distinct key set, shared by every feature version keyed by it."""
    indexes: dict[tuple[str, ...], pit.EntityRows] = {}
    for feature in features:
        if feature.key_names in indexes:
            continue
        for name in feature.key_names:
            if name not in entity_rows.column_names:
                raise InvalidArgument(f"entity rows: column {name!r} is needed by {feature.column}", field=name)
        types = feature.key_types or (None,) * len(feature.key_names)
        columns = [_key_column(entity_rows, name, kt, feature) for name, kt in zip(feature.key_names, types)]
        indexes[feature.key_names] = pit.EntityRows(columns, row_times)
    return indexes


def get_historical_features(
    store: OfflineStore,
    entity_rows: pa.Table,
    features: Sequence[FeatureVersion],
    *,
    as_of_micros: int | None = None,
    with_status: bool = False,
    timestamp_column: str = EVENT_TIMESTAMP,
) -> pa.Table:
    """entity_rows (keys + a tz-aware timestamp per row) joined with each feature version as it was knowable then.

    Only rows with event time <= the row's time and (with as_of) created time <= as_of count; older than the
    feature's max age gives null (status STALE); no history gives null (NOT_FOUND). Row order is kept.
    """
    if timestamp_column not in entity_rows.column_names:
        raise InvalidArgument(f"entity rows: column {timestamp_column!r} is missing", field=timestamp_column)
    if entity_rows.num_rows == 0:
        raise InvalidArgument("entity rows: empty", field="entity_rows")
    row_times = _times(entity_rows, timestamp_column)
    indexes = _index_entity_rows(entity_rows, row_times, features)
    out = entity_rows
    # Feature versions join independently; Parquet decoding and numpy sorts release the GIL, so threads use the cores.
    workers = max(1, min(len(features), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fsd-pit") as pool:
        joined = list(pool.map(lambda f: join_feature(store, indexes[f.key_names], row_times, f, as_of_micros), features))
    for feature, (values, status, _) in zip(features, joined):
        name = feature.column if feature.column not in out.column_names else f"{feature.column}@{feature.version}"
        out = out.append_column(name, values)
        if with_status:
            names = np.array(["", "PRESENT", "NOT_FOUND", "STALE"])
            out = out.append_column(f"{name}:status", pa.array(names[status]))
    return out


def latest_values(
    store: OfflineStore, feature: FeatureVersion, *, as_of_micros: int, since_created_micros: int | None = None,
    kinds: frozenset[str] | None = None,
) -> pa.Table:
    """Latest row per entity with event time <= as_of (later created wins ties) — what online should hold.

    With since_created_micros, only entities with rows created after it are returned (incremental sync); with
    kinds, only rows of those kinds of write (ingest, backfill, correction).
    """
    table = store.read(feature.group, feature.feature, feature.version, key_columns=list(feature.key_names), max_event_micros=as_of_micros,
                       kinds=kinds)
    if table.num_rows == 0:
        return table
    ids = pit.entity_ids([table[k] for k in feature.key_names])
    times = table[EVENT_TIMESTAMP].cast(pa.int64()).to_numpy(zero_copy_only=False)
    created = table[CREATED_TIMESTAMP].cast(pa.int64()).to_numpy(zero_copy_only=False)
    order = np.lexsort((created, times, ids))
    last = np.ones(len(order), dtype=np.bool_)
    last[:-1] = ids[order][1:] != ids[order][:-1]
    chosen = order[last]
    if since_created_micros is not None:
        touched = np.unique(ids[created > since_created_micros])
        chosen = chosen[np.isin(ids[chosen], touched)]
    return table.take(pa.array(np.sort(chosen)))
