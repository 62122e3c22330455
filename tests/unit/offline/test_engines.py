"""The point-in-time engines against the brute-force reference and against the local engine: the out-of-core
local join (any partition count) and DuckDB's ASOF JOIN. Spark, whose session takes seconds to start, is tested
the same way in tests/integration/test_spark_engine.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsd.offline import duckdb_engine, partitioned
from fsd.offline.key_hash import key_hash, partition_of
from fsd.offline.retrieval import FeatureVersion, get_historical_features
from fsd.offline.store import OfflineStore
from tests.unit.offline.test_point_in_time import (
    BASE, SEC, TS, brute_force_case, brute_force_inputs, check_against_brute_force,
)


def _partitioned(store: OfflineStore, entity_rows: pa.Table, features, as_of, partitions: int, tmp: Path) -> pa.Table:  # type: ignore[no-untyped-def]
    out = tmp / f"set-{partitions}.parquet"
    partitioned.write_training_set(store, entity_rows, features, out, as_of_micros=as_of, partitions=partitions)
    return pq.read_table(out)


@settings(max_examples=60)
@given(partitions=st.integers(1, 5), **brute_force_inputs)
def test_out_of_core_join_matches_brute_force(tmp_path_factory, partitions, rows, queries, max_age_s, as_of_s) -> None:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("ooc")
    store = OfflineStore(tmp / "off")
    entity_rows, feature, as_of = brute_force_case(store, rows, queries, max_age_s, as_of_s)
    out = _partitioned(store, entity_rows, [feature], as_of, partitions, tmp)
    check_against_brute_force(out, rows, queries, max_age_s, as_of)
    assert out.equals(get_historical_features(store, entity_rows, [feature], as_of_micros=as_of, with_status=True))


@settings(max_examples=60)
@given(**brute_force_inputs)
def test_duckdb_join_matches_brute_force(tmp_path_factory, rows, queries, max_age_s, as_of_s) -> None:  # type: ignore[no-untyped-def]
    store = OfflineStore(tmp_path_factory.mktemp("duck"))
    entity_rows, feature, as_of = brute_force_case(store, rows, queries, max_age_s, as_of_s)
    out = duckdb_engine.get_historical_features(store, entity_rows, [feature], as_of_micros=as_of)
    check_against_brute_force(out, rows, queries, max_age_s, as_of)


def _random_store(root: Path, seed: int, entities: int, rows_per_feature: int) -> tuple[OfflineStore, list[FeatureVersion], pa.Table]:
    """Two int-keyed feature versions (one with ties and nulls) and a string-keyed one, in several snapshots."""
    rng = np.random.default_rng(seed)
    store = OfflineStore(root)
    for name in ("a", "b"):
        for _ in range(2):
            times = BASE + rng.integers(0, 40, rows_per_feature) * SEC
            values = rng.integers(-5, 5, rows_per_feature).astype(float)
            store.write("users", name, 1, pa.table({
                "user_id": pa.array(rng.integers(0, entities, rows_per_feature), pa.int64()),
                "event_timestamp": pa.array(times, TS), "created_timestamp": pa.array(times + rng.integers(0, 3, rows_per_feature) * SEC, TS),
                "value": pa.array(values, mask=rng.random(rows_per_feature) < 0.1),
            }))
    shops = [f"shop-{i}-é" for i in range(entities)]
    times = BASE + rng.integers(0, 40, rows_per_feature) * SEC
    store.write("shops", "rating", 1, pa.table({
        "shop": pa.array([shops[i] for i in rng.integers(0, entities, rows_per_feature)]),
        "event_timestamp": pa.array(times, TS), "created_timestamp": pa.array(times, TS),
        "value": pa.array(rng.integers(0, 100, rows_per_feature), pa.int64()),
    }))
    features = [FeatureVersion("users", "a", 1, ("user_id",), 10 * SEC), FeatureVersion("users", "b", 1, ("user_id",), 0),
                FeatureVersion("shops", "rating", 1, ("shop",), 5 * SEC)]
    n = rows_per_feature
    entity_rows = pa.table({
        "user_id": pa.array(rng.integers(-1, entities + 1, n), pa.int64()),
        "shop": pa.array([shops[i % entities] for i in rng.integers(0, entities + 3, n)]),
        "event_timestamp": pa.array(BASE + rng.integers(-2, 45, n) * SEC, TS),
    })
    return store, features, entity_rows


@pytest.mark.parametrize("partitions", [2, 7])
def test_out_of_core_equals_in_memory_with_several_key_sets(tmp_path: Path, partitions: int) -> None:
    store, features, entity_rows = _random_store(tmp_path / "off", seed=partitions, entities=300, rows_per_feature=4000)
    expected = get_historical_features(store, entity_rows, features, with_status=True)
    assert _partitioned(store, entity_rows, features, None, partitions, tmp_path).equals(expected)


def test_out_of_core_streams_entity_rows_from_a_parquet_file(tmp_path: Path) -> None:
    store, features, entity_rows = _random_store(tmp_path / "off", seed=3, entities=200, rows_per_feature=3000)
    source = tmp_path / "entities.parquet"
    pq.write_table(entity_rows, source, row_group_size=500)
    out = tmp_path / "set.parquet"
    summary = partitioned.write_training_set(store, source, features[:2], out, partitions=3)
    expected = get_historical_features(store, entity_rows, features[:2], with_status=True)
    assert pq.read_table(out).equals(expected)
    assert summary.rows == entity_rows.num_rows
    assert summary.statuses("users:a") == {s: expected["users:a:status"].to_pylist().count(s) for s in ("PRESENT", "STALE", "NOT_FOUND")}


def test_the_budget_decides_the_partition_count(tmp_path: Path) -> None:
    assert partitioned.partitions_for(1_000, [10_000], 1 << 30) == 1
    assert partitioned.partitions_for(10_000_000, [10_000_000] * 10, 1 << 30) > 4
    store, features, entity_rows = _random_store(tmp_path / "off", seed=5, entities=100, rows_per_feature=2000)
    out = tmp_path / "small-budget.parquet"
    summary = partitioned.write_training_set(store, entity_rows, features, out, memory_budget=1 << 20)
    assert summary.partitions > 1
    assert pq.read_table(out).equals(get_historical_features(store, entity_rows, features, with_status=True))


def test_duckdb_equals_the_local_engine_on_random_data(tmp_path: Path) -> None:
    store, features, entity_rows = _random_store(tmp_path / "off", seed=11, entities=150, rows_per_feature=3000)
    expected = get_historical_features(store, entity_rows, features, with_status=True)
    assert duckdb_engine.get_historical_features(store, entity_rows, features).equals(expected)
    out = tmp_path / "duck.parquet"
    duckdb_engine.write_training_set(store, entity_rows, features, out)
    assert pq.read_table(out).equals(expected)


@settings(max_examples=100)
@given(values=st.lists(st.one_of(st.text(max_size=12), st.none()), min_size=1, max_size=30), cut=st.integers(0, 30))
def test_key_hash_is_the_same_for_equal_strings_whatever_the_layout(values, cut) -> None:  # type: ignore[no-untyped-def]
    cut = min(cut, len(values))
    whole = pa.array(values, pa.string())
    chunked = pa.chunked_array([pa.array(values[:cut], pa.string()), pa.array(values[cut:], pa.string())])
    wide = pa.array(values, pa.large_string())
    expected = key_hash([whole])
    assert key_hash([chunked]).tolist() == expected.tolist() == key_hash([wide]).tolist()
    assert key_hash([whole.slice(cut)]).tolist() == expected[cut:].tolist()
    by_value: dict[object, int] = {}
    for value, h in zip(values, expected.tolist()):
        assert by_value.setdefault(value or "", h) == h  # equal strings, equal hashes (a null key hashes as "")


@settings(max_examples=100)
@given(ints=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=30), partitions=st.integers(1, 9))
def test_int_keys_partition_alike_at_any_width(ints, partitions) -> None:  # type: ignore[no-untyped-def]
    wide = partition_of([pa.array(ints, pa.int64())], partitions)
    assert ((wide >= 0) & (wide < partitions)).all()
    small = [i for i in ints if -(2**31) <= i < 2**31]
    if small:
        assert partition_of([pa.array(small, pa.int32())], partitions).tolist() == partition_of([pa.array(small, pa.int64())], partitions).tolist()
