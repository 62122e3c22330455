"""Validates an Arrow table of feature rows against a group and the feature versions it writes.

Shared by online publishes and offline ingests, so a row is judged by the same rules wherever it goes:
whole-table problems (missing or mistyped columns) raise InvalidArgument naming the column; bad rows are
flagged with a stable rule id and never written.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from fsd.domain import FeatureSpec, GroupSpec, Rejection
from fsd.errors import InvalidArgument
from fsd.rows import columns

EVENT_TIMESTAMP = "event_timestamp"
CREATED_TIMESTAMP = "created_timestamp"

RULE_REASONS = {
    "entity_key_null": "entity key is null",
    "entity_key_out_of_range": "entity key does not fit int64",
    "entity_key_too_long": "entity key is longer than 1024 UTF-8 bytes",
    "entity_key_not_nfc": "string entity key is not in Unicode NFC form (normalise it before publishing)",
    "timestamp_null": "timestamp is null",
    "timestamp_before_epoch": "timestamp is before 1970-01-01",
    "timestamp_in_future": "event_timestamp is further in the future than the allowed clock skew",
    "null_in_non_nullable": "null in a non-nullable feature",
    "nan_in_int_column": "NaN in an int64 feature",
    "not_integral": "non-integral or out-of-range number for an int64 feature",
    "int_out_of_range": "value does not fit int64",
    "nan_or_inf_not_allowed": "NaN or infinity in a feature that does not allow it",
    "vector_dim_mismatch": "vector length differs from the declared vector_dim",
    "null_inside_vector": "null element inside a vector",
    "late_correction": "event arrived later than the group's allowed_lateness after it happened (it would change a window already served)",
}


@dataclass(slots=True)
class ValidatedRows:
    valid: np.ndarray  # bool per row
    rejections: list[Rejection]
    keys: list[columns.ColumnValues]  # in the group's key order
    event_times: np.ndarray  # int64 µs
    created_times: np.ndarray | None  # int64 µs, when the table carries created_timestamp
    features: dict[str, columns.ColumnValues]


def ranges(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True as [start, end) ranges."""
    if not mask.any():
        return []
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(edges[i]), int(edges[i + 1])) for i in range(0, len(edges), 2)]


def require_utc_timestamp(table: pa.Table, name: str) -> None:
    ts_type = table.schema.field(name).type
    if not pa.types.is_timestamp(ts_type):
        raise InvalidArgument(f"column {name!r} is {ts_type}, expected a timezone-aware timestamp", field=name)
    if ts_type.tz is None:
        raise InvalidArgument(f"column {name!r} has no timezone; naive timestamps are refused (convert to UTC-aware timestamps)", field=name)


def entity_key_mismatch(schema: pa.Schema, group: GroupSpec) -> str | None:
    """How the table's entity-key columns differ from the group's (names, types, composite order), or None."""
    names = schema.names
    declared = [k.name for k in group.entity_keys]
    missing = [k for k in declared if k not in names]
    if missing:
        return f"entity key column {missing[0]!r} is missing (group {group.name} is keyed by {', '.join(declared)})"
    present = [n for n in names if n in declared]
    if present != declared:
        return f"entity key columns are in order {present}, group {group.name} declares {declared}"
    for key in group.entity_keys:
        arrow_type = schema.field(key.name).type
        if not columns.key_type_compatible(arrow_type, key.type):
            return f"entity key {key.name!r} is {arrow_type}, group {group.name} declares {key.type.name.lower()}"
    return None


def feature_columns(table: pa.Table, group: GroupSpec) -> list[str]:
    """Checks keys and timestamps; returns the feature columns present (in table order)."""
    names = table.column_names
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InvalidArgument(f"column {dup!r} appears more than once", field=dup)
    key_names = [k.name for k in group.entity_keys]
    present_keys = [n for n in names if n in key_names]
    missing = [k for k in key_names if k not in names]
    if missing:
        raise InvalidArgument(f"group {group.name}: entity key column {missing[0]!r} is missing (entity keys: {', '.join(key_names)})", field=missing[0])
    if present_keys != key_names:
        raise InvalidArgument(f"group {group.name}: entity key columns are in order {present_keys}, the group declares {key_names}", field=present_keys[0])
    for key in group.entity_keys:
        arrow_type = table.schema.field(key.name).type
        if not columns.key_type_compatible(arrow_type, key.type):
            raise InvalidArgument(f"group {group.name}: entity key {key.name!r} is {arrow_type}, the group declares {key.type.name.lower()}", field=key.name)
    if EVENT_TIMESTAMP not in names:
        raise InvalidArgument(f"column {EVENT_TIMESTAMP!r} is missing", field=EVENT_TIMESTAMP)
    require_utc_timestamp(table, EVENT_TIMESTAMP)
    if CREATED_TIMESTAMP in names:
        require_utc_timestamp(table, CREATED_TIMESTAMP)
    features = [n for n in names if n not in key_names and n not in (EVENT_TIMESTAMP, CREATED_TIMESTAMP)]
    if not features:
        raise InvalidArgument(f"group {group.name}: the table carries no feature columns", field="arrow_ipc")
    return features


def check_feature_types(table: pa.Table, group: GroupSpec, specs: Mapping[str, tuple[int, FeatureSpec]]) -> None:
    """Each feature column must fit the version it writes (name -> (version, spec))."""
    for name, (version, spec) in specs.items():
        arrow_type = table.schema.field(name).type
        if not columns.feature_type_compatible(arrow_type, spec):
            raise InvalidArgument(
                f"feature {group.name}:{name}@{version} is {spec.dtype.name.lower()}, column {name!r} is {arrow_type}; "
                "a type change needs a new feature version (change the definition, apply, and publish to that version)",
                field=name,
            )


class RowRejections:
    """Rows rejected so far, each reported once under the first rule it broke (rows counted from `offset`)."""

    def __init__(self, rows: int, offset: int = 0) -> None:
        self.invalid = np.zeros(rows, dtype=np.bool_)
        self.rejections: list[Rejection] = []
        self._offset = offset

    def collect(self, column: str, violations: dict[str, np.ndarray]) -> None:
        for rule, mask in violations.items():
            for start, end in ranges(mask & ~self.invalid):
                self.rejections.append(Rejection(self._offset + start, self._offset + end, column, rule, f"{column}: {RULE_REASONS.get(rule, rule)}"))
            self.invalid |= mask

    def sorted(self) -> list[Rejection]:
        return sorted(self.rejections, key=lambda r: (r.row_start, r.field))


def validate_rows(
    table: pa.Table, group: GroupSpec, specs: Mapping[str, FeatureSpec], now_micros: int, max_future_skew_micros: int
) -> ValidatedRows:
    """Every row rule, vectorised. A row breaking any rule is rejected whole, reported once under its first rule."""
    found = RowRejections(table.num_rows)
    collect = found.collect

    keys = []
    for key in group.entity_keys:
        col = columns.entity_key_column(table.column(key.name), key.type)
        collect(key.name, col.violations)
        keys.append(col)
    times = columns.event_time_column(table.column(EVENT_TIMESTAMP))
    times.violations["timestamp_in_future"] = (times.values > now_micros + max_future_skew_micros) & ~times.nulls
    collect(EVENT_TIMESTAMP, times.violations)
    created = None
    if CREATED_TIMESTAMP in table.column_names:
        created_col = columns.event_time_column(table.column(CREATED_TIMESTAMP))
        # A created time from the future would beat every later correction of the same event time: the same rules.
        created_col.violations["timestamp_in_future"] = (created_col.values > now_micros + max_future_skew_micros) & ~created_col.nulls
        collect(CREATED_TIMESTAMP, created_col.violations)
        created = created_col.values
    features = {}
    for name, spec in specs.items():
        col = columns.feature_column(table.column(name), spec)
        collect(name, col.violations)
        features[name] = col
    return ValidatedRows(~found.invalid, found.sorted(), keys, times.values, created, features)
