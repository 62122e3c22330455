"""Property: for any interleaving of refreshes, backfills and corrections, the online value is the greatest
(event time, created time) among the values each rule let through — and equals the offline latest when no
correction fell outside the serving window."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsd.client import table_to_ipc
from fsd.domain import DType, EntityKeySpec, FeatureSpec, FixedClock, GroupSpec, KeyType
from tests.local import read_features
from fsd.online.memory import MemoryOnlineStore
from fsd.registry.registry import Registry
from fsd.publish.publisher import Publisher
from fsd.domain import PublishMode

REFRESH, BACKFILL, CORRECTION = PublishMode.REFRESH, PublishMode.BACKFILL, PublishMode.CORRECTION

NOW = 1_800_000_000_000_000
SEC = 1_000_000
MAX_AGE_S = 30
GROUP = GroupSpec("g", (EntityKeySpec("id", KeyType.INT64),), (FeatureSpec("x", DType.INT64),), max_age_seconds=MAX_AGE_S)
TS = pa.timestamp("us", tz="UTC")

op = st.tuples(st.sampled_from([REFRESH, BACKFILL, CORRECTION]), st.integers(1, 3), st.integers(0, 60), st.integers(0, 3), st.integers(-50, 50))


@settings(max_examples=100)
@given(st.lists(st.lists(op, min_size=1, max_size=4), min_size=1, max_size=8))
def test_online_follows_the_rules(tmp_path_factory: pytest.TempPathFactory, publishes) -> None:  # type: ignore[no-untyped-def]
    registry = Registry(str(tmp_path_factory.mktemp("r") / "r.sqlite"))
    registry.apply([GROUP])
    store, clock = MemoryOnlineStore(), FixedClock(NOW)
    publisher = Publisher(store, registry.snapshot, clock)
    eligible: dict[int, tuple[int, int, int, int]] = {}  # id -> (event, created, write order, value)
    offline: dict[int, tuple[int, int, int, int]] = {}
    corrections_dropped = False
    order = 0
    for n, rows in enumerate(publishes):
        mode = rows[0][0]  # one mode per publish
        session = publisher.begin(f"p{n}", "g", mode=mode)
        table = pa.table({
            "id": pa.array([r[1] for r in rows], pa.int64()),
            "event_timestamp": pa.array([NOW - r[2] * SEC for r in rows], TS),
            "created_timestamp": pa.array([NOW + r[3] * SEC for r in rows], TS),
            "x": pa.array([r[4] for r in rows], pa.int64()),
        })
        session.write_chunk(0, table_to_ipc(table))
        # Within one chunk only the greatest (event, created) row per entity is offered, the later among ties.
        best: dict[int, tuple[int, int, int, int]] = {}
        for _, entity, age, created, value in rows:
            order += 1
            candidate = (NOW - age * SEC, NOW + created * SEC, order, value)
            if entity not in best or candidate[:2] >= best[entity][:2]:
                best[entity] = candidate
            if entity not in offline or candidate[:2] >= offline[entity][:2]:
                offline[entity] = candidate
        for entity, candidate in best.items():
            if mode == CORRECTION and NOW - candidate[0] > MAX_AGE_S * SEC:
                corrections_dropped = True
                continue  # outside the serving window: offline only
            if entity not in eligible or candidate[:2] >= eligible[entity][:2]:
                eligible[entity] = candidate
    ids = [1, 2, 3]
    column = read_features(store, registry.snapshot(), clock, ["g:x"], {"id": ids})["g:x"]
    for i, entity in enumerate(ids):
        if entity in eligible:
            assert column.values[i] == eligible[entity][3]  # type: ignore[index]
            assert column.event_time_micros[i] == eligible[entity][0]
        else:
            assert column.statuses[i] == 2  # NOT_FOUND
        if not corrections_dropped and entity in offline:
            assert column.values[i] == offline[entity][3]  # type: ignore[index]
    registry.close()
