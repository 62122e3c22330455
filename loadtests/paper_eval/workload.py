"""The fraud-style workload, deterministic for a seed: a volatile group (transaction velocity, new values every
simulated minute, max age 10 minutes) and a slow one (customer profile, about daily), and the injected events.

Everything is decided up front from the seed: which entities change each minute, their values under each
transformation, and the minute of every event, so every mode and interval sees exactly the same history.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MINUTE = 60_000_000
SIM_START = 1_780_272_000_000_000  # 2026-06-01T00:00:00Z
VELOCITY_MAX_AGE_MIN = 10
PROFILE_MAX_AGE_MIN = 2 * 24 * 60


@dataclass(frozen=True, slots=True)
class Row:
    """One offline row of a feature: which entity, when it happened, when it landed offline, its value, and the
    transformation that computed it (t1 is what the model was trained on)."""

    entity: int
    event: int
    created: int
    value: float
    transformation: str
    kind: str = "ingest"  # ingest | backfill | correction


@dataclass
class Workload:
    seed: int
    entities: int
    minutes: int
    events: dict[str, int] = field(default_factory=dict)
    velocity: dict[int, list[Row]] = field(default_factory=dict)  # minute -> t1 rows landing then (the model's truth)
    velocity_t2: dict[int, list[Row]] = field(default_factory=dict)  # the new transformation's rows (after the change)
    velocity_t3: dict[int, list[Row]] = field(default_factory=dict)  # the breaking type change's rows (doubles)
    profile: dict[int, list[Row]] = field(default_factory=dict)

    @property
    def ids(self) -> np.ndarray:
        return np.arange(1, self.entities + 1, dtype=np.int64)

    def at(self, minute: int) -> int:
        return SIM_START + minute * MINUTE

    def in_place(self, minute: int) -> list[Row]:
        """What an unversioned producer writes at this minute: the current transformation's rows in the one
        dataset (t1, then t2 after the change, then t3 doubles after the type change), and t1's backfills and
        corrections."""
        e = self.events
        rows = [r for r in self.velocity.get(minute, []) if r.kind != "ingest"]
        if minute >= e["breaking_type_change"] and minute in self.velocity_t3:
            return rows + self.velocity_t3[minute]
        if minute >= e["transformation_change"] and minute in self.velocity_t2:
            return rows + self.velocity_t2[minute]
        return rows + [r for r in self.velocity.get(minute, []) if r.kind == "ingest"]


def build(seed: int, entities: int, hours: float) -> Workload:
    rng = np.random.default_rng(seed)
    minutes = int(hours * 60)
    w = Workload(seed, entities, minutes)

    def when(share: float) -> int:
        return int(np.clip(round(share * minutes + rng.integers(-3, 4)), 5, minutes - 5))

    w.events = {
        "model_trained": when(0.15),
        "transformation_change": when(0.30),
        "backfill": when(0.40),
        "late_correction_inside": when(0.50),
        "late_correction_outside": when(0.55),
        "schema_expansion": when(0.60),
        "breaking_type_change": when(0.70),
        "entity_key_change": when(0.75),
        "failed_sync": when(0.80),
        "late_offline_file": when(0.85),
    }
    w.events["entity_key_fixed"] = min(minutes - 1, w.events["entity_key_change"] + 10)
    w.events["late_file_lands"] = min(minutes - 1, w.events["late_offline_file"] + 15)
    ids = w.ids
    for minute in range(minutes):
        now = w.at(minute)
        changed = ids[rng.random(entities) < 0.25]
        base = rng.integers(0, 40, len(changed))
        delay = rng.integers(0, 30, len(changed)) * 1_000_000
        rows = [Row(int(e), now - int(d), now, float(b), "t1") for e, b, d in zip(changed, base, delay)]
        lands = minute
        if minute == w.events["late_offline_file"]:  # this minute's file lands 15 minutes late
            lands = w.events["late_file_lands"]
            rows = [Row(r.entity, r.event, w.at(lands), r.value, "t1") for r in rows]
        w.velocity.setdefault(lands, []).extend(rows)
        if minute >= w.events["transformation_change"]:
            w.velocity_t2.setdefault(lands, []).extend(Row(r.entity, r.event, r.created, float(round(r.value * 0.6) + 1), "t2") for r in rows)
        if minute >= w.events["breaking_type_change"]:
            w.velocity_t3.setdefault(lands, []).extend(Row(r.entity, r.event, r.created, r.value / 3 + 0.25, "t3") for r in rows)
        if minute == w.events["backfill"]:  # the last 30 minutes of t1 recomputed (a bug fix): same events, +1
            recent = [r for m in range(max(0, minute - 30), minute) for r in w.velocity.get(m, [])]
            w.velocity.setdefault(minute, []).extend(Row(r.entity, r.event, now, r.value + 1, "t1", "backfill") for r in recent)
        if minute in (w.events["late_correction_inside"], w.events["late_correction_outside"]):
            chosen = ids[rng.random(entities) < 0.05]
            back = 3 if minute == w.events["late_correction_inside"] else 40  # minutes: inside / outside the 10-minute window
            w.velocity.setdefault(minute, []).extend(Row(int(e), now - back * MINUTE, now, float(rng.integers(100, 140)), "t1", "correction") for e in chosen)
        profile_changed = ids[rng.random(entities) < (0.002 if minute else 1.0)]  # everyone once at the start, then ~daily
        w.profile[minute] = [Row(int(e), now - 1_000_000, now, float(rng.integers(1, 4000)), "t1") for e in profile_changed]
    return w
