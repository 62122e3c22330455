"""The specification of a computed feature's value, as brute force over raw events. The online tiles
(fsd.aggregation.tiles) and the offline point-in-time computation (fsd.aggregation.offline) are compared against
it by property tests; where they disagree, this module is right.

The value of feature F (function f, column c, window W, optional filter) for an entity at instant t (µs):

- Tiles: T = W / 60. An event at event time e lies in tile k(e) = floor(e / T).
- Counted events E(t): the entity's events with k(t) − 60 < k(e) ≤ k(t) (the 60 tiles ending with t's tile: a
  window spanning between W − T and W of event time; an event time past t's tile is not counted yet),
  received(e) ≤ t (only events fsd had acknowledged by t), the filter true, and c not null (count without a
  column counts every event).
- Arrival order: (received time, push sequence, row in the push). It orders `last` ties and sums.
- f: count = |E| (0 when empty); sum = Σ over E's tiles in ascending order of (Σ within the tile in arrival
  order), a double (0.0 when empty) — one summation order, so every path gives the same bits; mean = sum / count
  (null when empty); min / max (null when empty); last = c of the event with the greatest (event time, arrival
  order) (null when empty); count_distinct = the HyperLogLog estimate of fsd.aggregation.hll (0 when empty).
- Status: NOT_FOUND when none of the entity's events was received by t; else PRESENT, or STALE when
  t − (newest event time among the entity's events received by t with k(e) ≤ k(t)) > max age. That newest
  event time is the value's event time: a computed value is as fresh as the newest event applied.
- Late and future events never reach the counted set: an event older than received − allowed_lateness is
  refused per row (rule late_correction), one newer than received + limits.max_future_skew_seconds too (rule
  future_event_time); this is what lets tiles older than W + lateness be dropped online.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fsd.aggregation import hll
from fsd.domain.aggregation import TILES_PER_WINDOW, Aggregation, EventFilter, parse_filter

PRESENT, NOT_FOUND, STALE = 1, 2, 3


@dataclass(frozen=True, slots=True)
class Event:
    event_micros: int
    received_micros: int
    order: tuple[int, int]  # (push sequence, row): with received_micros, the arrival order
    values: Mapping[str, object]  # column -> value (None: null)

    @property
    def arrival(self) -> tuple[int, int, int]:
        return (self.received_micros, *self.order)


def passes(condition: EventFilter | None, values: Mapping[str, object]) -> bool:
    if condition is None:
        return True
    return passes_value(condition, values.get(condition.column))


def passes_value(condition: EventFilter, value: object) -> bool:
    """Whether the filter holds for the filtered column's value (a null never passes)."""
    if value is None:
        return False
    literal = condition.literal
    if isinstance(literal, float):
        if isinstance(value, str) or isinstance(value, bool):
            return False
        value = float(value)  # type: ignore[arg-type]
    elif not isinstance(value, str):
        return False
    op = condition.op
    return bool(value == literal if op == "==" else value != literal if op == "!=" else value < literal if op == "<"  # type: ignore[operator]
                else value <= literal if op == "<=" else value > literal if op == ">" else value >= literal)  # type: ignore[operator]


def counted(agg: Aggregation, events: Sequence[Event], t: int) -> list[Event]:
    """E(t), in arrival order."""
    tile = agg.tile_micros
    now_tile = t // tile
    condition = parse_filter(agg.filter)
    chosen = [e for e in events if now_tile - TILES_PER_WINDOW < e.event_micros // tile <= now_tile and e.received_micros <= t
              and passes(condition, e.values) and (not agg.column or e.values.get(agg.column) is not None)]
    return sorted(chosen, key=lambda e: e.arrival)


def aggregate(agg: Aggregation, chosen: Sequence[Event]) -> object:
    """f over the counted events (given in arrival order)."""
    f, c = agg.function, agg.column
    if f == "count":
        return len(chosen)
    if f == "count_distinct":
        return hll.estimate(hll.of(e.values[c] for e in chosen))
    if f in ("sum", "mean"):
        by_tile: dict[int, float] = {}
        for e in chosen:
            k = e.event_micros // agg.tile_micros
            by_tile[k] = by_tile.get(k, 0.0) + float(e.values[c])  # type: ignore[arg-type]
        total = 0.0
        for k in sorted(by_tile):
            total += by_tile[k]
        if f == "sum":
            return total
        return total / len(chosen) if chosen else None
    if not chosen:
        return None
    if f == "min":
        return min(float(e.values[c]) for e in chosen)  # type: ignore[arg-type]
    if f == "max":
        return max(float(e.values[c]) for e in chosen)  # type: ignore[arg-type]
    return max(chosen, key=lambda e: (e.event_micros, e.arrival)).values[c]  # last


def value_at(agg: Aggregation, events: Sequence[Event], t: int, max_age_micros: int = 0) -> tuple[int, object, int]:
    """(status, value, event time µs) of the feature for one entity's events at instant t."""
    received = [e for e in events if e.received_micros <= t]
    if not received:
        return NOT_FOUND, None, 0
    now_tile = t // agg.tile_micros
    in_reach = [e.event_micros for e in received if e.event_micros // agg.tile_micros <= now_tile]
    newest = max(in_reach) if in_reach else 0
    value = aggregate(agg, counted(agg, events, t))
    status = STALE if max_age_micros and newest and t - newest > max_age_micros else PRESENT
    if isinstance(value, float) and math.isnan(value):
        value = None
    return status, value, newest


__all__ = ["Event", "NOT_FOUND", "PRESENT", "STALE", "aggregate", "counted", "passes", "value_at"]
