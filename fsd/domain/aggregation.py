"""A computed feature's declaration: `aggregation: {function, column, window, filter}` over a group's events.

The meaning of the value at an instant is written once, in fsd/aggregation/semantics.md terms, in
fsd.aggregation.reference; this module only holds the declaration and its checks.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from typing import TYPE_CHECKING

from fsd.domain.types import DType

if TYPE_CHECKING:
    from fsd.domain.types import GroupSpec

FUNCTIONS = ("count", "sum", "mean", "min", "max", "last", "count_distinct")
TILES_PER_WINDOW = 60  # a window is 60 tiles; tile = window / 60
FILTER_OPS = ("==", "!=", "<=", ">=", "<", ">")
_FILTER_RE = re.compile(r"^\s*([a-z][a-z0-9_]*)\s*(==|!=|<=|>=|<|>)\s*(.+?)\s*$")


@dataclass(frozen=True, slots=True)
class Aggregation:
    function: str
    column: str  # "" only for count (every event)
    window_seconds: int
    filter: str = ""  # "column op literal", e.g. "amount > 100" or "country == 'FR'"

    @property
    def tile_micros(self) -> int:
        return self.window_seconds * 1_000_000 // TILES_PER_WINDOW

    def result_dtype(self, column_dtype: DType | None) -> DType:
        """The feature's dtype this aggregation produces over a column of `column_dtype`."""
        if self.function in ("count", "count_distinct"):
            return DType.INT64
        if self.function in ("sum", "mean"):
            return DType.DOUBLE
        assert column_dtype is not None
        if self.function in ("min", "max"):
            return DType.DOUBLE if column_dtype in (DType.INT64, DType.DOUBLE, DType.FLOAT) else column_dtype
        return column_dtype  # last

    @property
    def nullable_result(self) -> bool:
        """An empty window gives null (mean, min, max, last) rather than 0 (count, sum, count_distinct)."""
        return self.function in ("mean", "min", "max", "last")


@dataclass(frozen=True, slots=True)
class EventFilter:
    column: str
    op: str
    literal: object  # float or str


def parse_filter(text: str) -> EventFilter | None:
    """"column op literal" (numbers, or strings in single or double quotes); None for no filter; ValueError with
    what is wrong otherwise."""
    if not text.strip():
        return None
    match = _FILTER_RE.match(text)
    if match is None:
        raise ValueError("a filter is 'column op literal' with op one of == != < <= > >=, e.g. amount > 100")
    column, op, raw = match.groups()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return EventFilter(column, op, raw[1:-1])
    try:
        return EventFilter(column, op, float(raw))
    except ValueError:
        raise ValueError(f"filter literal {raw[:40]!r} is neither a number nor a quoted string") from None


def check_aggregation(agg: Aggregation, event_columns: dict[str, DType], feature_dtype: DType) -> str | None:
    """What is wrong with an aggregation against the group's event columns and the feature's dtype, or None."""
    if agg.function not in FUNCTIONS:
        return f"aggregation.function must be one of {', '.join(FUNCTIONS)}"
    if agg.window_seconds < 60 or agg.window_seconds % 60:
        return "aggregation.window must be a whole number of minutes (it is cut into 60 tiles)"
    if agg.column and agg.column not in event_columns:
        return f"aggregation.column {agg.column!r} is not a column of the group's events"
    if not agg.column and agg.function != "count":
        return f"aggregation.column is needed for {agg.function}"
    column_dtype = event_columns.get(agg.column) if agg.column else None
    numeric = (DType.INT64, DType.DOUBLE, DType.FLOAT)
    if agg.function in ("sum", "mean", "min", "max") and column_dtype not in numeric:
        return f"aggregation {agg.function} needs a numeric column (int64, double, float)"
    if agg.function == "last" and column_dtype not in (*numeric, DType.STRING, DType.BOOL):
        return "aggregation last needs an int64, double, float, bool or string column"
    if agg.function == "count_distinct" and column_dtype not in (DType.INT64, DType.STRING):
        return "aggregation count_distinct needs an int64 or string column"
    expected = agg.result_dtype(column_dtype)
    if agg.function == "last" and column_dtype == DType.FLOAT:
        expected = DType.FLOAT
    if feature_dtype != expected:
        return f"an aggregation {agg.function} over this column gives {expected.name.lower()}, not {feature_dtype.name.lower()}"
    try:
        parsed = parse_filter(agg.filter)
    except ValueError as exc:
        return f"aggregation.filter: {exc}"
    if parsed is not None and parsed.column not in event_columns:
        return f"aggregation.filter names {parsed.column!r}, not a column of the group's events"
    return None


def check_event_source(spec: "GroupSpec") -> tuple[str, str] | None:
    """(field, what is wrong) with a group's event source and computed features, or None. Computed features need an
    event source, and a group with one holds only computed features (its values are never published directly)."""
    declared = dict(spec.event_columns)
    keys = {k.name for k in spec.entity_keys}
    for name, _ in spec.event_columns:
        if name in keys or name in ("event_timestamp", "received_timestamp") or name.startswith("_"):
            return "event_source", f"event column {name!r} is reserved (an entity key, a timestamp or a name starting with _)"
    if len(declared) != len(spec.event_columns):
        return "event_source", "event columns must be unique"
    if spec.allowed_lateness_seconds < 0:
        return "event_source", "allowed_lateness must not be negative"
    for feature in spec.features:
        if feature.aggregation is None:
            if declared:
                return "features", f"feature {feature.name!r}: a group with an event source holds only computed features (add an aggregation)"
            continue
        if not declared:
            return "features", f"feature {feature.name!r}: an aggregation needs the group's event_source"
        problem = check_aggregation(feature.aggregation, declared, feature.dtype)
        if problem is not None:
            return "aggregation", f"feature {feature.name!r}: {problem}"
        if not feature.nullable and feature.aggregation.nullable_result:
            return "nullable", f"feature {feature.name!r}: {feature.aggregation.function} over an empty window is null: declare it nullable"
    return None


__all__ = ["Aggregation", "check_event_source", "EventFilter", "FILTER_OPS", "FUNCTIONS", "TILES_PER_WINDOW", "check_aggregation", "parse_filter"]
