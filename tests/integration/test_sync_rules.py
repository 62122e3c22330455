"""Each publish rule end to end through the daemon, the offline->online loader, and resume after kill -9."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pyarrow as pa
import pytest

from fsd.client import Client, table_to_ipc
from fsd.domain import ValueStatus
from fsd.offline.store import OfflineStore
from fsd.registry.definitions import load_text
from fsd.sync.loader import sync_group
from fsd.sync.scheduler import SyncScheduler
from fsd.client.training import ingest_offline
from fsd.v1 import serving_pb2, serving_pb2_grpc
from tests.helpers import raises_status, MICROS, now_micros

TS = pa.timestamp("us", tz="UTC")
REPO = """
feature_groups:
  - name: velocity
    entity_keys: [{name: customer_id, type: int64}]
    max_age: 10m
    sync_interval: 1s
    features:
      - {name: count_1h, dtype: int64, transformation: "count(*)"}
"""


def rows(ids: list[int], ages_s: list[float], values: list[int], created_offsets_s: list[float] | None = None) -> pa.Table:
    now = now_micros()
    columns = {
        "customer_id": pa.array(ids, pa.int64()),
        "event_timestamp": pa.array([now - int(a * MICROS) for a in ages_s], TS),
        "count_1h": pa.array(values, pa.int64()),
    }
    if created_offsets_s is not None:
        columns["created_timestamp"] = pa.array([now + int(c * MICROS) for c in created_offsets_s], TS)
    return pa.table(columns)


def served(client: Client, ids: list[int], ref: str = "velocity:count_1h") -> tuple[list[int], list[int]]:
    column = client.get_features([ref], {"customer_id": ids})[ref]
    return column.values.tolist(), column.statuses.tolist()


@pytest.fixture
def velocity(client: Client) -> Client:
    client.apply(load_text(REPO))
    return client


def test_new_feature_is_accepted_after_validation(velocity: Client) -> None:
    response = velocity.publish("velocity", rows([1, 2], [5, 5], [10, 20]), mode="INITIAL")
    assert response.reason_counts["NEW_FEATURE_ACCEPTED"] == 2
    assert served(velocity, [1, 2]) == ([10, 20], [ValueStatus.PRESENT] * 2)
    again = velocity.publish("velocity", rows([1], [1], [11]))
    assert "NEW_FEATURE_ACCEPTED" not in again.reason_counts


def test_refresh_keeps_the_latest_value_per_entity(velocity: Client) -> None:
    velocity.publish("velocity", rows([1], [10], [100], [0]))
    older = velocity.publish("velocity", rows([1], [20], [1]))
    assert older.reason_counts["OLDER_THAN_ONLINE"] == 1 and older.values_written == 0
    assert served(velocity, [1])[0] == [100]
    # Same event time: a later created time replaces, an earlier one does not.
    online_event = velocity.get_features(["velocity:count_1h"], {"customer_id": [1]})["velocity:count_1h"].event_time_micros.tolist()

    def same_event(value: int, created: int) -> pa.Table:
        return pa.table({"customer_id": pa.array([1], pa.int64()), "event_timestamp": pa.array(online_event, TS),
                         "count_1h": pa.array([value], pa.int64()), "created_timestamp": pa.array([created], TS)})

    assert velocity.publish("velocity", same_event(101, now_micros() + 5 * MICROS)).values_written == 1
    assert served(velocity, [1])[0] == [101]
    assert velocity.publish("velocity", same_event(7, now_micros() - 3600 * MICROS)).reason_counts["OLDER_THAN_ONLINE"] == 1
    assert served(velocity, [1])[0] == [101]


def test_backfill_changes_online_only_where_it_is_newest(velocity: Client) -> None:
    velocity.publish("velocity", rows([1, 2], [60, 60], [10, 20]))
    backfill = rows([1, 1, 2, 3], [3600, 30, 7200, 120], [-1, 11, -2, 33])  # entity 1 gets a newer row; 3 is new
    response = velocity.publish("velocity", backfill, mode="BACKFILL")
    assert response.reason_counts["BACKFILL_NOT_NEWEST"] == 1  # entity 2's row is older than online
    assert served(velocity, [1, 2, 3])[0] == [11, 20, 33]


def test_pending_version_is_written_but_not_served_unpinned(velocity: Client) -> None:
    velocity.publish("velocity", rows([1], [5], [10]))
    velocity.apply(load_text(REPO.replace('"count(*)"', '"count(distinct merchant)"')))
    response = velocity.publish("velocity", rows([1], [5], [3]), feature_versions={"count_1h": 2})
    assert response.reason_counts["PENDING_VERSION_WRITE"] == 1
    assert served(velocity, [1]) == ([10], [ValueStatus.PRESENT])
    assert served(velocity, [1], "velocity:count_1h@2")[0] == [3]


def test_nullable_expansion_is_null_safe(velocity: Client) -> None:
    velocity.publish("velocity", rows([1], [5], [10]))
    velocity.apply(load_text(REPO + "      - {name: avg_amount, dtype: double}\n"))
    got = velocity.get_features(["velocity:avg_amount", "velocity:count_1h"], {"customer_id": [1]})
    assert got["velocity:avg_amount"].statuses.tolist() == [ValueStatus.NOT_FOUND]
    assert got.to_arrow()["velocity:avg_amount"].to_pylist() == [None]
    assert got["velocity:count_1h"].values.tolist() == [10]


def test_breaking_change_is_refused_with_a_pointer_to_versions(velocity: Client) -> None:
    bad = rows([1], [5], [1]).set_column(2, "count_1h", pa.array(["ten"]))
    with raises_status() as info:
        velocity.publish("velocity", bad)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "new feature version" in info.value.details()


def test_entity_key_mismatch_opens_a_review_incident(velocity: Client) -> None:
    bad = rows([1], [5], [1]).rename_columns(["account_id", "event_timestamp", "count_1h"])
    with raises_status() as info:
        velocity.publish("velocity", bad, publish_id="nightly-42")
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    [incident] = velocity.incidents()
    assert (incident.group, incident.kind, incident.publish_id) == ("velocity", "entity_key_mismatch", "nightly-42")
    assert "'customer_id' is missing" in incident.detail
    velocity.resolve_incident(incident.id, resolved_by="oncall", resolution="loader config fixed")
    assert not velocity.incidents()
    assert velocity.incidents(include_resolved=True)[0].resolution == "loader config fixed"


def test_late_correction_applies_only_inside_the_serving_window(velocity: Client) -> None:
    velocity.publish("velocity", rows([1, 2], [60, 3600], [10, 20]))  # entity 2 is already outside max age (10m)
    fix = rows([1, 2], [60, 3600], [11, 21], [30, 30])
    fix = fix.set_column(1, "event_timestamp", pa.array(
        velocity.get_features(["velocity:count_1h"], {"customer_id": [1, 2]})["velocity:count_1h"].event_time_micros.tolist(), TS))
    response = velocity.publish("velocity", fix, mode="CORRECTION")
    assert response.reason_counts["CORRECTION_OUTSIDE_WINDOW"] == 1
    assert served(velocity, [1, 2])[0] == [11, 20]


def test_loader_syncs_offline_latest_incrementally(velocity: Client, tmp_path: Path) -> None:
    store = OfflineStore(tmp_path / "offline")
    ingest_offline(velocity, store, "velocity", rows([1, 1, 2], [120, 30, 60], [5, 6, 7]))
    first = sync_group(velocity, store, "velocity")
    assert first.outcome == "success" and first.rows_read == 2 and first.values_written == 2
    assert served(velocity, [1, 2])[0] == [6, 7]
    ingest_offline(velocity, store, "velocity", rows([2], [10], [8]))
    second = sync_group(velocity, store, "velocity")
    assert (second.rows_read, second.values_written) == (1, 1)  # only what changed since the watermark
    assert served(velocity, [1, 2])[0] == [6, 8]
    assert second.watermark_micros > first.watermark_micros and second.sync_delay_micros > 0
    runs = velocity.sync_runs("velocity")
    assert [r.outcome for r in runs] == ["success", "success"]


def test_scheduler_retries_failures_with_backoff(velocity: Client, tmp_path: Path) -> None:
    store = OfflineStore(tmp_path / "offline")
    ticks = [0.0]
    scheduler = SyncScheduler(velocity, store, clock=lambda: ticks[0], min_backoff=0.5)
    assert [r.outcome for r in scheduler.run_due()] == ["success"]  # nothing offline yet: an empty, successful run
    assert scheduler.run_due() == []  # not due before its 1 s interval
    ticks[0] = 1.5
    broken = tmp_path / "offline" / "velocity" / "count_1h" / "v1" / "month=2026-01"
    broken.mkdir(parents=True)
    (broken / "part-0000000000000001-deadbeef.parquet").write_bytes(b"not parquet")  # breaks the next read
    ingest_failure = scheduler.run_due()
    assert [r.outcome for r in ingest_failure] == ["failed"]
    assert scheduler.seconds_until_next() == pytest.approx(0.5)


def test_killed_publish_resumes_to_the_same_state(daemon_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids = list(range(1, 3001))
    table = rows(ids, [5] * len(ids), [i * 3 for i in ids])
    reference = daemon_factory("reference").start()
    with Client(reference.target) as client:
        client.apply(load_text(REPO))
        client.publish("velocity", table, chunk_rows=300)
        expected = served(client, ids)

    victim = daemon_factory("victim").start()
    with Client(victim.target) as client:
        client.apply(load_text(REPO))
    channel = grpc.insecure_channel(victim.target)
    stub = serving_pb2_grpc.FeatureStoreStub(channel)
    batches = table.to_batches(max_chunksize=300)
    durable = threading.Event()

    def chunks():  # type: ignore[no-untyped-def]
        for sequence, batch in enumerate(batches):
            yield serving_pb2.PublishChunk(publish_id="big-load", group="velocity", sequence=sequence, arrow_ipc=table_to_ipc(batch))
            if sequence == 4:
                durable.wait(30)  # hold the stream open until the kill
                time.sleep(60)

    def watch() -> None:
        with Client(victim.target) as probe:
            while probe.publish_status("big-load").last_durable_sequence < 3:
                time.sleep(0.02)
        victim.kill9()
        durable.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    with raises_status():
        stub.Publish(chunks(), timeout=60)
    watcher.join()
    channel.close()
    victim.start()
    with Client(victim.target) as client:
        status = client.publish_status("big-load")
        assert status.known and 3 <= status.last_durable_sequence < len(batches) - 1
        resumed = client.publish("velocity", table, publish_id="big-load", chunk_rows=300, resume=True)
        assert resumed.chunks_written == len(batches) - 1 - status.last_durable_sequence
        assert served(client, ids) == expected


WIDE = """
feature_groups:
  - name: wide
    entity_keys: [{name: customer_id, type: int64}]
    max_age: 1h
    features:
      - {name: a, dtype: int64}
      - {name: b, dtype: double}
      - {name: c, dtype: string}
"""


def test_the_loader_widens_aligned_versions_without_changing_what_goes_online(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    """All versions of a group go out together where their latest values share (event, created) times; entities
    where they do not keep each value's own times: online equals the offline latest of every version either way."""
    daemon = daemon_factory().start()
    with Client(daemon.target) as client:
        client.apply(load_text(WIDE))
        store = OfflineStore(client.get_deployment().offline_root)
        t = now_micros() - 600 * MICROS
        ids = list(range(1, 61))
        ingest_offline(client, store, "wide", pa.table({"customer_id": pa.array(ids, pa.int64()), "event_timestamp": pa.array([t] * 60, TS),
                                                         "a": pa.array(ids, pa.int64()), "b": [i * 0.5 for i in ids], "c": [f"s{i}" for i in ids]}))
        later = list(range(51, 61))  # b moves on for ten entities: not aligned with a and c any more
        ingest_offline(client, store, "wide", pa.table({"customer_id": pa.array(later, pa.int64()), "event_timestamp": pa.array([t + MICROS] * 10, TS),
                                                         "b": [-1.0] * 10}))
        run = sync_group(client, store, "wide")
        # rows count (entity, event time) rows sent, not values: 50 widened, then for the ten entities whose times
        # differ, a and c at t, b at t and b at t + 1 s
        assert run.outcome == "success" and run.rows_read == 50 + 10 + 10 + 10 and run.values_written == 60 * 3
        got = client.get_features(["wide:a", "wide:b", "wide:c"], {"customer_id": ids})
    assert got["wide:a"].values.tolist() == ids
    assert got["wide:b"].values.tolist() == [i * 0.5 for i in ids[:50]] + [-1.0] * 10
    assert got["wide:c"].values == [f"s{i}" for i in ids]
    assert got["wide:b"].event_time_micros.tolist() == [t] * 50 + [t + MICROS] * 10
    assert got["wide:a"].event_time_micros.tolist() == [t] * 60


ADAPTIVE = """
feature_groups:
  - name: velocity_a
    entity_keys: [{name: customer_id, type: int64}]
    sync_interval: adaptive
    sync_bounds: {min: 1m, max: 1h}
    features: [{name: count_1h, dtype: int64}]
  - name: profile_a
    entity_keys: [{name: customer_id, type: int64}]
    sync_interval: adaptive
    sync_bounds: {min: 1m, max: 1h}
    features: [{name: country, dtype: string}]
"""


def test_adaptive_intervals_follow_volatility_with_fewer_runs(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    """On a simulated clock: the volatile group (new values every minute) is synced every minute, the quiet one
    (values once) backs off to its upper bound — fewer runs in total than a fixed one-minute interval for both."""
    daemon = daemon_factory().start()
    with Client(daemon.target) as client:
        client.apply(load_text(ADAPTIVE))
        store = OfflineStore(client.get_deployment().offline_root)
        now = [0.0]
        scheduler = SyncScheduler(client, store, clock=lambda: now[0])
        ingest_offline(client, store, "profile_a", pa.table({"customer_id": pa.array([1, 2], pa.int64()),
                                                              "event_timestamp": pa.array([now_micros() - MICROS] * 2, TS), "country": ["DE", "FR"]}))
        runs = {"velocity_a": 0, "profile_a": 0}
        for minute in range(120):
            ingest_offline(client, store, "velocity_a", pa.table({"customer_id": pa.array([1], pa.int64()),
                                                                   "event_timestamp": pa.array([now_micros() - MICROS], TS),
                                                                   "count_1h": pa.array([minute], pa.int64())}))
            for run in scheduler.run_due():
                assert run.outcome == "success"
                runs[run.group] += 1
            now[0] += 60
        assert scheduler.interval_of("velocity_a") == 60 and scheduler.interval_of("profile_a") == 3600
        assert runs["velocity_a"] >= 115 and runs["profile_a"] <= 10 and sum(runs.values()) < 2 * 120


def test_a_sync_larger_than_its_memory_budget_goes_partition_by_partition(client: Client, tmp_path: Path) -> None:
    """The same online state as a run in memory, incremental runs included, with the rows spilled by entity."""
    import numpy as np

    from fsd.offline import latest_values as loader

    client.apply(load_text(WIDE))  # only a and b are written offline
    store = OfflineStore(tmp_path / "offline")
    rng = np.random.default_rng(7)
    n = 12_000
    ids = rng.integers(0, 4000, n)  # several rows per entity: the latest must win within each partition
    now = now_micros()

    def table(ages: np.ndarray, a: np.ndarray) -> pa.Table:
        return pa.table({"customer_id": pa.array(ids, pa.int64()), "event_timestamp": pa.array(now - ages, TS),
                         "a": pa.array(a, pa.int64()), "b": pa.array(a * 0.5)})

    ingest_offline(client, store, "wide", table(rng.integers(1, 1800, n) * MICROS, rng.integers(0, 1000, n)))
    info = client.get_group("wide")
    rows, _ = loader.inspect_footers(info, store, loader.wanted_versions(info, store, 0, False))
    assert loader.sync_partitions(rows, 1 << 20) > 1
    run = sync_group(client, store, "wide", memory_budget=1 << 20)  # a 1 MiB budget: several partitions
    assert run.outcome == "success", run.error
    latest: dict[int, tuple[int, int]] = {}
    offline = store.read("wide", "a", 1, key_columns=["customer_id"])
    for key, event, value in zip(offline["customer_id"].to_pylist(), offline["event_timestamp"].cast(pa.int64()).to_pylist(),
                                 offline["value"].to_pylist()):
        if key not in latest or event >= latest[key][0]:
            latest[key] = (event, value)
    keys = sorted(latest)
    got = client.get_features(["wide:a", "wide:b"], {"customer_id": keys})
    assert got["wide:a"].values.tolist() == [latest[k][1] for k in keys]
    assert got["wide:b"].values.tolist() == [latest[k][1] * 0.5 for k in keys]
    assert run.values_written == 2 * len(keys)
    # An incremental run after a newer ingest of a few entities moves only those, still partition by partition.
    update = pa.table({"customer_id": pa.array([keys[0], keys[-1]], pa.int64()), "event_timestamp": pa.array([now_micros()] * 2, TS),
                       "a": pa.array([-1, -2], pa.int64()), "b": pa.array([-1.0, -2.0])})
    ingest_offline(client, store, "wide", update)
    again = sync_group(client, store, "wide", memory_budget=1 << 20)
    assert again.outcome == "success" and again.values_written == 4
    assert client.get_features(["wide:a"], {"customer_id": [keys[0], keys[-1]]})["wide:a"].values.tolist() == [-1, -2]
