"""Publish rules against a real registry and the in-memory engine; property: online = newest valid row per key."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsd.client import table_to_ipc
from fsd.domain import DType, EntityKeySpec, FeatureSpec, FixedClock, GroupSpec, KeyType
from fsd.errors import FailedPrecondition, InvalidArgument
from tests.local import read_features
from fsd.online.memory import MemoryOnlineStore
from fsd.registry.registry import Registry
from fsd.publish.publisher import Publisher

NOW = 1_800_000_000_000_000
GROUP = GroupSpec("g", (EntityKeySpec("id", KeyType.INT64),), (FeatureSpec("x", DType.INT64, nullable=False),), max_age_seconds=3600)


@pytest.fixture
def parts(tmp_path: Path):  # type: ignore[no-untyped-def]
    registry = Registry(str(tmp_path / "r.sqlite"))
    registry.apply([GROUP])
    store = MemoryOnlineStore()
    clock = FixedClock(NOW)
    return registry, store, Publisher(store, registry.snapshot, clock), clock


def chunk(ids: list[int], times: list[int], xs: list[int]) -> bytes:
    return table_to_ipc(pa.table({"id": pa.array(ids, pa.int64()), "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC")), "x": pa.array(xs, pa.int64())}))


def read(registry: Registry, store: MemoryOnlineStore, clock: FixedClock, ids: list[int]) -> tuple[list[int], list[int], list[int]]:
    f = read_features(store, registry.snapshot(), clock, ["g:x"], {"id": ids})["g:x"]
    return f.values.tolist(), f.event_time_micros.tolist(), f.statuses.tolist()  # type: ignore[attr-defined]


@settings(max_examples=80)
@given(st.lists(st.lists(st.tuples(st.integers(1, 5), st.integers(0, 20), st.integers(-100, 100)), min_size=1, max_size=8), min_size=1, max_size=6))
def test_online_value_is_the_newest_row_per_entity(tmp_path_factory: pytest.TempPathFactory, publishes) -> None:  # type: ignore[no-untyped-def]
    registry = Registry(str(tmp_path_factory.mktemp("r") / "r.sqlite"))
    registry.apply([GROUP])
    store, clock = MemoryOnlineStore(), FixedClock(NOW)
    publisher = Publisher(store, registry.snapshot, clock)
    expected: dict[int, tuple[int, int]] = {}  # id -> (event time, x): newest wins, later publish wins ties
    for n, rows in enumerate(publishes):
        session = publisher.begin(f"p{n}", "g")
        session.write_chunk(0, chunk([r[0] for r in rows], [NOW - r[1] * 1000 for r in rows], [r[2] for r in rows]))
        for entity, age, x in rows:
            t = NOW - age * 1000
            if entity not in expected or t >= expected[entity][0]:
                expected[entity] = (t, x)
    ids = sorted(expected)
    values, times, _ = read(registry, store, clock, ids)
    assert values == [expected[i][1] for i in ids]
    assert times == [expected[i][0] for i in ids]
    registry.close()


def test_stale_status_uses_the_injected_clock(parts) -> None:  # type: ignore[no-untyped-def]
    registry, store, publisher, clock = parts
    publisher.begin("p", "g").write_chunk(0, chunk([1], [NOW], [5]))
    assert read(registry, store, clock, [1])[2] == [1]
    clock.advance(3600)
    assert read(registry, store, clock, [1])[2] == [1]  # exactly at max age: still PRESENT
    clock.advance(0.000001)
    assert read(registry, store, clock, [1])[2] == [3]  # one µs past it: STALE


def test_schema_change_between_chunks_is_refused(parts) -> None:  # type: ignore[no-untyped-def]
    _, _, publisher, _ = parts
    session = publisher.begin("p", "g")
    session.write_chunk(0, chunk([1], [NOW], [5]))
    other = table_to_ipc(pa.table({"id": pa.array([2], pa.int32()), "event_timestamp": pa.array([NOW], pa.timestamp("us", tz="UTC")), "x": [1]}))
    with pytest.raises(InvalidArgument, match="schema differs"):
        session.write_chunk(1, other)


def test_publish_id_cannot_move_to_another_group(parts, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, _, publisher, _ = parts
    registry.apply([GROUP, GroupSpec("h", GROUP.entity_keys, GROUP.features)])
    publisher.begin("p", "g").write_chunk(0, chunk([1], [NOW], [5]))
    with pytest.raises(FailedPrecondition, match="another feature group"):
        publisher.begin("p", "h")


def test_empty_publish_id_is_refused(parts) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgument, match="publish_id"):
        parts[2].begin("", "g")
