"""Every answer is right or loudly refused: one offline store per deployment, no vacuous numbers, no silent gaps in
training sets, the loader under the same rules as Publish, timestamps and idempotency, hostile input. Real daemon,
real RocksDB and Parquet, the CLI as a user runs it."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fsd.client import Client, table_to_ipc
from fsd.domain import SyncRun, ValueStatus
from fsd.examples import FRAUD_REPO
from fsd.offline.store import OfflineStore
from fsd.registry.definitions import load_text
from fsd.sync.loader import sync_group
from fsd.client.training import ingest_offline
from fsd.v1 import monitor_pb2, monitor_pb2_grpc, registry_pb2, registry_pb2_grpc, serving_pb2, serving_pb2_grpc
from tests.helpers import MICROS, now_micros, raises_status, rpc_error

TS = pa.timestamp("us", tz="UTC")
VELOCITY = """
feature_groups:
  - name: velocity
    entity_keys: [{name: customer_id, type: int64}]
    max_age: 10m
    sync_interval: 1m
    freshness_policy: {min_consistency: 0.9}
    features:
      - {name: count_1h, dtype: int64, transformation: "count(*)"}
      - {name: amount_1h, dtype: double, transformation: "sum(amount)"}
"""


def rows(ids: list[int], ages_s: list[float], counts: list[int], created_ages_s: list[float] | None = None) -> pa.Table:
    now = now_micros()
    columns = {
        "customer_id": pa.array(ids, pa.int64()),
        "event_timestamp": pa.array([now - int(a * MICROS) for a in ages_s], TS),
        "count_1h": pa.array(counts, pa.int64()),
        "amount_1h": pa.array([c * 1.5 for c in counts], pa.float64()),
    }
    if created_ages_s is not None:
        columns["created_timestamp"] = pa.array([now - int(a * MICROS) for a in created_ages_s], TS)
    return pa.table(columns)


def fsd(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fsd.cli", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, **(env or {})})


def served(client: Client, ids: list[int], ref: str = "velocity:count_1h") -> list[tuple[object, str]]:
    f = client.get_features([ref], {"customer_id": ids})[ref]
    return [(f.values[i].item() if f.has_value()[i] else None, name) for i, name in enumerate(f.status_names())]


@pytest.fixture
def velocity(daemon_factory) -> tuple[Client, object]:  # type: ignore[no-untyped-def]
    daemon = daemon_factory().start()
    client = Client(daemon.target)
    client.apply(load_text(VELOCITY))
    yield client, daemon
    client.close()


def deployment_store(client: Client) -> OfflineStore:
    return OfflineStore(client.get_deployment().offline_root)


# --- A. One deployment, one offline store ---------------------------------------------------------------------


def test_get_deployment_reports_the_recorded_offline_root_engines_and_codec(velocity) -> None:  # type: ignore[no-untyped-def]
    client, daemon = velocity
    d = client.get_deployment()
    assert d.offline_root == str((daemon.data_dir / "offline").resolve())
    assert (d.store_engine, d.registry_kind, d.proto_version, d.codec_native) == ("rocksdb", "sqlite", "fsd.v1", True)
    assert d.fsd_version


def test_the_same_cli_verbs_from_two_working_directories_agree(velocity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, daemon = velocity
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    pq.write_table(rows(list(range(1, 21)), [30] * 20, list(range(20))), one / "velocity.parquet")
    target = ["--target", daemon.target]
    assert fsd("offline", "ingest", "velocity", "velocity.parquet", *target, cwd=one).returncode == 0
    synced = fsd("sync", "velocity", *target, "--output", "json", cwd=two)
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["values_written"] == 40
    answers = []
    for cwd in (one, two):
        got = fsd("validate", "velocity", "--sample", "20", *target, "--output", "json", cwd=cwd)
        assert got.returncode == 0, got.stderr
        answers.append([(f["feature"], f["sampled"], f["matching"]) for f in json.loads(got.stdout)["features"]])
    assert answers[0] == answers[1] and sorted(answers[0]) == [("amount_1h", 20, 20), ("count_1h", 20, 20)]
    pq.write_table(pa.table({"customer_id": pa.array([1, 2], pa.int64()), "event_timestamp": pa.array([now_micros()] * 2, TS)}),
                   one / "entities.parquet")
    for cwd, out in ((one, "a.parquet"), (two, "b.parquet")):
        made = fsd("dataset", "create", "--entities", str(one / "entities.parquet"), "--features", "velocity:count_1h",
                   "--out", str(tmp_path / out), *target, cwd=cwd)
        assert made.returncode == 0, made.stderr
    assert pq.read_table(tmp_path / "a.parquet").equals(pq.read_table(tmp_path / "b.parquet"))


def test_an_explicit_other_offline_root_is_refused_naming_both(velocity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, daemon = velocity
    pq.write_table(rows([1], [30], [1]), tmp_path / "v.parquet")
    got = fsd("offline", "ingest", "velocity", str(tmp_path / "v.parquet"), "--target", daemon.target, "--offline-root", str(tmp_path / "elsewhere"))
    assert got.returncode == 2
    assert str(tmp_path / "elsewhere") in got.stderr and client.get_deployment().offline_root in got.stderr
    assert not (tmp_path / "elsewhere").exists()
    got = fsd("sync", "velocity", "--target", daemon.target, env={"FSD_OFFLINE_ROOT": str(tmp_path / "other")})
    assert got.returncode == 2 and "FSD_OFFLINE_ROOT" in got.stderr


def test_a_daemon_configured_with_another_offline_root_than_recorded_refuses_to_start(daemon_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = daemon_factory("deploy").start()
    first.terminate()
    second = daemon_factory("deploy", env={"FSD_STORE_OFFLINE_ROOT": str(tmp_path / "moved")})
    with pytest.raises(RuntimeError) as failed:
        second.start()
    assert "recorded in its registry" in str(failed.value)


def test_demo_data_dir_and_a_later_serve_agree(daemon_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "demo"
    run = fsd("demo", "--data-dir", str(data), "--customers", "200", timeout=300)
    assert run.returncode == 0, run.stderr
    daemon = daemon_factory("demo").start()
    with Client(daemon.target) as client:
        assert client.get_deployment().offline_root == str((data / "offline").resolve())
        result = client.validate("transaction_velocity", sample=100)
    assert all(f.sampled > 0 and f.consistency == 1.0 for f in result.features), result


# --- B. No vacuous numbers ----------------------------------------------------------------------------------


def test_consistency_with_nothing_compared_is_not_measured_everywhere(velocity) -> None:  # type: ignore[no-untyped-def]
    client, daemon = velocity
    client.publish("velocity", rows([1, 2], [30, 30], [1, 2]))  # online only: the offline store has nothing
    got = fsd("validate", "velocity", "--target", daemon.target)
    assert got.returncode == 4 and "not measured" in got.stdout and "nothing compared" in got.stderr
    assert "100.00%" not in got.stdout
    with grpc.insecure_channel(daemon.target) as channel:
        raw = monitor_pb2_grpc.MonitorStub(channel).Validate(monitor_pb2.ValidateRequest(group="velocity"), timeout=30)
        status = monitor_pb2_grpc.MonitorStub(channel).GetStatus(monitor_pb2.StatusRequest(group="velocity"), timeout=30)
    assert raw.features and all(math.isnan(f.consistency) and f.sampled == 0 for f in raw.features)
    assert all(math.isnan(f.last_consistency) and math.isnan(f.psi) for f in status.groups[0].features)
    result = client.validate("velocity")
    assert all(f.consistency is None and f.psi is None for f in result.features)
    assert all(f.last_consistency is None for f in client.status("velocity").groups[0].features)
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{daemon.metrics_port}/metrics", timeout=10).read().decode()
    assert not [line for line in metrics.splitlines() if line.startswith("fsd_consistency_ratio{")]


def test_validate_exits_non_zero_under_the_policy_threshold(velocity) -> None:  # type: ignore[no-untyped-def]
    client, daemon = velocity
    ingest_offline(client, deployment_store(client), "velocity", rows(list(range(1, 11)), [30] * 10, list(range(10))))
    assert sync_group(client, deployment_store(client), "velocity").outcome == "success"
    assert fsd("validate", "velocity", "--target", daemon.target).returncode == 0
    client.publish("velocity", rows([1, 2, 3], [1, 1, 1], [100, 100, 100]))  # drift: 3 of 10 differ, 70% < 90%
    got = fsd("validate", "velocity", "--target", daemon.target)
    assert got.returncode == 4 and "check failed" in got.stderr


def test_status_check_exits_non_zero_when_stale_or_blocked(velocity) -> None:  # type: ignore[no-untyped-def]
    client, daemon = velocity
    client.publish("velocity", rows([1], [30], [1]))
    assert fsd("status", "--check", "--target", daemon.target).returncode == 0
    client.set_blocked("velocity", "count_1h", 1, True)
    got = fsd("status", "--check", "--target", daemon.target)
    assert got.returncode == 4 and "velocity:count_1h@1" in got.stderr


def test_promotion_needs_a_validation_that_compared_values(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    daemon = daemon_factory(env={"FSD_MONITOR_MIN_PROMOTION_CONSISTENCY": "0.9"}).start()
    with Client(daemon.target) as client:
        client.apply(load_text(VELOCITY))
        client.apply(load_text(VELOCITY.replace('"count(*)"', '"count(approved)"')))
        client.publish("velocity", rows([1], [30], [1]).drop_columns(["amount_1h"]), feature_versions={"count_1h": 2})
        client.validate("velocity", feature="count_1h", versions=[2])  # nothing offline: compares nothing
        with raises_status() as refused:
            client.promote("velocity", "count_1h", 2)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "fsd offline ingest velocity" in refused.value.details() and "fsd validate velocity" in refused.value.details()


# --- C. Training sets -----------------------------------------------------------------------------------------


def test_a_dataset_of_a_version_without_offline_data_is_refused(velocity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, daemon = velocity
    pq.write_table(pa.table({"customer_id": pa.array([1], pa.int64()), "event_timestamp": pa.array([now_micros()], TS)}), tmp_path / "e.parquet")
    got = fsd("dataset", "create", "--entities", str(tmp_path / "e.parquet"), "--features", "velocity:count_1h", "--out",
              str(tmp_path / "train.parquet"), "--target", daemon.target)
    assert got.returncode == 1 and "no offline data for velocity:count_1h@1" in got.stderr
    assert not (tmp_path / "train.parquet").exists()


def test_dataset_writes_a_parquet_file_with_status_counts_and_an_optional_manifest(velocity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, daemon = velocity
    ingest_offline(client, deployment_store(client), "velocity", rows([1, 2], [30, 3 * 3600], [5, 6]))
    pq.write_table(pa.table({"customer_id": pa.array([1, 2, 3], pa.int64()), "event_timestamp": pa.array([now_micros()] * 3, TS)}),
                   tmp_path / "e.parquet")
    got = fsd("dataset", "create", "--entities", str(tmp_path / "e.parquet"), "--features", "velocity:count_1h", "--out",
              str(tmp_path / "train.parquet"), "--target", daemon.target)
    assert got.returncode == 0, got.stderr
    table = pq.read_table(tmp_path / "train.parquet")
    assert table["velocity:count_1h:status"].to_pylist() == ["PRESENT", "STALE", "NOT_FOUND"]
    assert "PRESENT" in got.stdout and "NOT_FOUND" in got.stdout
    manifest = json.loads((tmp_path / "train.parquet.manifest.json").read_text())
    assert manifest["serving_manifest"] is None and manifest["features"][0]["statuses"] == {"PRESENT": 1, "STALE": 1, "NOT_FOUND": 1}
    assert client.list_manifests() == []


@pytest.mark.parametrize("engine, memory", [("local", "64"), ("duckdb", "1024")])
def test_dataset_engines_write_the_same_set_from_the_cli(velocity, tmp_path: Path, engine: str, memory: str) -> None:  # type: ignore[no-untyped-def]
    client, daemon = velocity
    ingest_offline(client, deployment_store(client), "velocity", rows([1, 2], [30, 3 * 3600], [5, 6]))
    pq.write_table(pa.table({"customer_id": pa.array([3, 1, 2, 1], pa.int64()), "event_timestamp": pa.array([now_micros()] * 4, TS)}),
                   tmp_path / "e.parquet")
    got = fsd("dataset", "create", "--entities", str(tmp_path / "e.parquet"), "--features", "velocity:count_1h", "--out",
              str(tmp_path / "train.parquet"), "--target", daemon.target, "--engine", engine, "--memory-mib", memory)
    assert got.returncode == 0, got.stderr
    table = pq.read_table(tmp_path / "train.parquet")
    assert table["customer_id"].to_pylist() == [3, 1, 2, 1]
    assert table["velocity:count_1h"].to_pylist() == [None, 5, None, 5]
    assert table["velocity:count_1h:status"].to_pylist() == ["NOT_FOUND", "PRESENT", "STALE", "PRESENT"]
    manifest = json.loads((tmp_path / "train.parquet.manifest.json").read_text())
    assert manifest["engine"] == engine and manifest["features"][0]["statuses"] == {"PRESENT": 2, "STALE": 1, "NOT_FOUND": 1}


def test_the_python_api_builds_a_training_set_on_spark(velocity, spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, _ = velocity
    ingest_offline(client, deployment_store(client), "velocity", rows([1, 2], [30, 3 * 3600], [5, 6]))
    entity_rows = {"customer_id": [2, 1, 3], "event_timestamp": pa.array([now_micros()] * 3, TS)}
    local = client.get_historical_features(entity_rows, ["velocity:count_1h"])
    assert client.get_historical_features(entity_rows, ["velocity:count_1h"], engine="spark").equals(local)
    doc = client.create_dataset(entity_rows, str(tmp_path / "spark.parquet"), ["velocity:count_1h"], engine="spark")
    assert pq.read_table(tmp_path / "spark.parquet").equals(local) and doc["engine"] == "spark"


def test_as_of_without_a_utc_offset_is_refused(velocity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, daemon = velocity
    pq.write_table(pa.table({"customer_id": pa.array([1], pa.int64()), "event_timestamp": pa.array([now_micros()], TS)}), tmp_path / "e.parquet")
    args = ["dataset", "create", "--entities", str(tmp_path / "e.parquet"), "--features", "velocity:count_1h", "--out",
            str(tmp_path / "t.parquet"), "--target", daemon.target]
    for zone in ("UTC", "America/Los_Angeles"):
        got = fsd(*args, "--as-of", "2026-11-25T10:00:00", env={"TZ": zone})
        assert got.returncode == 2 and "no UTC offset" in got.stderr


@pytest.mark.parametrize("column, fragment", [
    (pa.array(["1", "2"]), "keys it by int64"),
    (pa.array([1.0, 2.0]), "keys it by int64"),
    (pa.array([1, 2], pa.int64()).dictionary_encode(), None),
])
def test_entity_key_columns_are_type_checked(velocity, column: pa.Array, fragment: str | None) -> None:  # type: ignore[no-untyped-def]
    from fsd.errors import InvalidArgument
    from fsd.client.training import historical_features

    client, _ = velocity
    store = deployment_store(client)
    ingest_offline(client, store, "velocity", rows([1, 2], [30, 30], [5, 6]))
    entity_rows = pa.table({"customer_id": column, "event_timestamp": pa.array([now_micros()] * 2, TS)})
    if fragment is None:
        table, _ = historical_features(client, store, entity_rows, ["velocity:count_1h"])
        assert table["velocity:count_1h"].to_pylist() == [5, 6]
    else:
        with pytest.raises(InvalidArgument, match=fragment):
            historical_features(client, store, entity_rows, ["velocity:count_1h"])


def test_an_int_column_for_a_string_key_is_refused(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    from fsd.errors import InvalidArgument
    from fsd.client.training import historical_features

    daemon = daemon_factory().start()
    with Client(daemon.target) as client:
        client.apply(load_text(VELOCITY.replace("name: customer_id, type: int64", "name: customer_id, type: string")))
        store = deployment_store(client)
        ingest_offline(client, store, "velocity", rows([1], [30], [5]).set_column(0, "customer_id", pa.array(["a"])))
        with pytest.raises(InvalidArgument, match="keys it by string"):
            historical_features(client, store, pa.table({"customer_id": pa.array([1]), "event_timestamp": pa.array([now_micros()], TS)}),
                                ["velocity:count_1h"])


# --- D. The loader applies the same rules as Publish ----------------------------------------------------------


def test_an_offline_correction_outside_the_window_stays_offline_through_sync(velocity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, daemon = velocity
    store = deployment_store(client)
    ingest_offline(client, store, "velocity", rows([1], [3600], [10]))  # an hour old: outside the 10 min window
    assert sync_group(client, store, "velocity").outcome == "success"
    assert served(client, [1, 2]) == [(10, "STALE"), (None, "NOT_FOUND")]
    pq.write_table(rows([1, 2], [3600, 3600], [11, 22]), tmp_path / "fix.parquet")
    got = fsd("offline", "ingest", "velocity", str(tmp_path / "fix.parquet"), "--kind", "correction", "--target", daemon.target)
    assert got.returncode == 0, got.stderr
    run = json.loads(fsd("sync", "velocity", "--target", daemon.target, "--output", "json").stdout)
    assert run["outcome"] == "success" and run["reason_counts"]["CORRECTION_OUTSIDE_WINDOW"] == 4
    assert served(client, [1, 2]) == [(10, "STALE"), (None, "NOT_FOUND")]


@pytest.mark.parametrize("memory_budget", [512 << 20, 100])  # 100 bytes: the run goes partition by partition
def test_a_group_sync_is_all_or_nothing_when_one_version_is_blocked(velocity, memory_budget: int) -> None:  # type: ignore[no-untyped-def]
    client, _ = velocity
    store = deployment_store(client)
    ingest_offline(client, store, "velocity", rows([1, 2], [30, 30], [1, 2]).drop_columns(["amount_1h"]))
    # A producer wrote amount_1h's offline file with the key as a string: its batch is blocked by entity_key_mismatch.
    bad = pa.table({"customer_id": pa.array(["1"]), "event_timestamp": pa.array([now_micros()], TS),
                    "created_timestamp": pa.array([now_micros()], TS), "value": pa.array([9.5])})
    store.write("velocity", "amount_1h", 1, bad)
    run = sync_group(client, store, "velocity", memory_budget=memory_budget)
    assert run.outcome == "failed" and "ENTITY_KEY_MISMATCH" in run.error
    assert served(client, [1, 2]) == [(None, "NOT_FOUND"), (None, "NOT_FOUND")]  # count_1h was not published either
    assert [i.kind for i in client.incidents()] == ["entity_key_mismatch"]


def test_forced_resync_repairs_drift(velocity) -> None:  # type: ignore[no-untyped-def]
    client, daemon = velocity
    store = deployment_store(client)
    ids = list(range(1, 101))
    ingest_offline(client, store, "velocity", rows(ids, [60] * 100, ids))
    assert sync_group(client, store, "velocity").outcome == "success"
    client.publish("velocity", rows(ids[:50], [1] * 50, [0] * 50))  # straight online, newer than the offline truth
    before = {f.feature: f.consistency for f in client.validate("velocity", sample=100).features}
    assert before["count_1h"] == 0.5
    run = json.loads(fsd("sync", "velocity", "--full", "--target", daemon.target, "--output", "json").stdout)
    assert run["outcome"] == "success" and run["reason_counts"]["RESYNC_REPLACED"] == 200
    after = {f.feature: f.consistency for f in client.validate("velocity", sample=100).features}
    assert after == {"count_1h": 1.0, "amount_1h": 1.0}
    assert served(client, [1]) == [(1, "PRESENT")]


# --- E. Timestamps and idempotency ----------------------------------------------------------------------------


def test_a_created_time_from_the_future_is_rejected_with_its_rule(velocity) -> None:  # type: ignore[no-untyped-def]
    client, _ = velocity
    result = client.publish("velocity", rows([1, 2], [30, 30], [1, 2], created_ages_s=[-10 * 365 * 86400, 0]))
    assert result.rows_rejected == 1
    assert [(r.row_start, r.field, r.rule) for r in result.rejections] == [(0, "created_timestamp", "timestamp_in_future")]
    fix = client.publish("velocity", rows([2], [30], [7]).set_column(1, "event_timestamp", pa.array(
        client.get_features(["velocity:count_1h"], {"customer_id": [2]})["velocity:count_1h"].event_time_micros.tolist(), TS)),
        mode="CORRECTION")
    assert fix.values_written == 2 and served(client, [1, 2]) == [(None, "NOT_FOUND"), (7, "PRESENT")]


def test_two_overlapping_streams_with_one_publish_id_apply_each_chunk_once(velocity) -> None:  # type: ignore[no-untyped-def]
    client, daemon = velocity
    t = now_micros() - 30 * MICROS
    def chunk(sequence: int, count: int) -> serving_pb2.PublishChunk:
        table = pa.table({"customer_id": pa.array([1], pa.int64()), "event_timestamp": pa.array([t], TS), "count_1h": pa.array([count], pa.int64())})
        return serving_pb2.PublishChunk(publish_id="dup", group="velocity", sequence=sequence, arrow_ipc=table_to_ipc(table))

    first_sent, retry_done = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def original() -> None:
        def chunks():  # type: ignore[no-untyped-def]
            yield chunk(0, 1)
            first_sent.set()
            retry_done.wait(30)
            yield chunk(1, 1)  # arrives after the retry already made sequence 1 (and 2) durable
        with grpc.insecure_channel(daemon.target) as channel:
            results["original"] = serving_pb2_grpc.FeatureStoreStub(channel).Publish(chunks(), timeout=60)

    thread = threading.Thread(target=original)
    thread.start()
    assert first_sent.wait(30)
    time.sleep(0.5)
    with grpc.insecure_channel(daemon.target) as channel:
        results["retry"] = serving_pb2_grpc.FeatureStoreStub(channel).Publish(iter([chunk(0, 1), chunk(1, 1), chunk(2, 2)]), timeout=60)
    retry_done.set()
    thread.join(60)
    original_result, retry_result = results["original"], results["retry"]
    assert (original_result.chunks_written, original_result.chunks_skipped_duplicate) == (1, 1)  # type: ignore[attr-defined]
    assert (retry_result.chunks_written, retry_result.chunks_skipped_duplicate) == (2, 1)  # type: ignore[attr-defined]
    assert served(client, [1]) == [(2, "PRESENT")]


# --- F. Hostile and careless input ----------------------------------------------------------------------------


def _group(name: str, features: int) -> registry_pb2.GroupDef:
    return registry_pb2.GroupDef(name=name, entity_keys=[registry_pb2.EntityKeySpec(name="id", type=1)],
                                 features=[registry_pb2.FeatureDef(name=f"f{i}", dtype=2, nullable=True) for i in range(features)])


def test_oversized_plans_are_refused_before_validation_quickly(velocity) -> None:  # type: ignore[no-untyped-def]
    _, daemon = velocity
    with grpc.insecure_channel(daemon.target, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        stub = registry_pb2_grpc.RegistryStub(channel)
        huge = registry_pb2.ApplyRequest(groups=[_group(f"g{i}", 1000) for i in range(20)])  # 20k features
        err = rpc_error(lambda: stub.Plan(huge, timeout=10))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit" in err.details()
        wide = registry_pb2.ApplyRequest(groups=[_group("wide", 1025)])
        err = rpc_error(lambda: stub.Apply(wide, timeout=10))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "1024" in err.details()
        many = registry_pb2.ApplyRequest(groups=[_group(f"g{i}", 1000) for i in range(16)])  # at the limit: validated, linearly
        assert len(stub.Plan(many, timeout=10).changes) == 16 * 1001


@pytest.mark.parametrize("call", ["resolve", "ack"])
def test_ids_beyond_int64_are_invalid_and_unknown_resyncs_not_found(velocity, call: str) -> None:  # type: ignore[no-untyped-def]
    _, daemon = velocity
    with grpc.insecure_channel(daemon.target) as channel:
        registry, monitor = registry_pb2_grpc.RegistryStub(channel), monitor_pb2_grpc.MonitorStub(channel)
        invoke = (lambda i: registry.ResolveIncident(registry_pb2.ResolveIncidentRequest(id=i), timeout=10)) if call == "resolve" else (
            lambda i: monitor.AckResync(monitor_pb2.AckResyncRequest(id=i), timeout=10))
        for big in (2**63, 2**64 - 1):
            err = rpc_error(lambda: invoke(big))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "id" in err.details()
        assert rpc_error(lambda: invoke(12345)).code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("policy", [
    {"on_inconsistency": "evil"}, {"max_stale_ratio": float("nan")}, {"min_consistency": 1.5}, {"max_lag_seconds": -1},
])
def test_apply_over_the_wire_refuses_policies_the_yaml_loader_refuses(velocity, policy: dict) -> None:  # type: ignore[type-arg,no-untyped-def]
    _, daemon = velocity
    group = _group("g", 1)
    group.policy.CopyFrom(registry_pb2.FreshnessPolicy(**policy))
    with grpc.insecure_channel(daemon.target) as channel:
        err = rpc_error(lambda: registry_pb2_grpc.RegistryStub(channel).Apply(registry_pb2.ApplyRequest(groups=[group]), timeout=10))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "freshness_policy" in err.details()


def test_impossible_sync_runs_and_offline_writes_are_refused(velocity) -> None:  # type: ignore[no-untyped-def]
    client, _ = velocity
    now = now_micros()
    for run in (SyncRun("velocity", now, now, "maybe"), SyncRun("velocity", now, now - 1, "success")):
        assert rpc_error(lambda: client.record_sync_run(run)).code() == grpc.StatusCode.INVALID_ARGUMENT
    from fsd.domain import OfflineWrite

    err = rpc_error(lambda: client.record_offline_write(OfflineWrite("velocity", "count_1h", 1, "ingest", now, now - 1, 1, "s")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert client.sync_runs("velocity") == []


def test_error_messages_do_not_echo_unbounded_input(velocity) -> None:  # type: ignore[no-untyped-def]
    client, daemon = velocity
    err = rpc_error(lambda: client.get_features(["velocity:" + "x" * 20_000], {"customer_id": [1]}))
    assert err.code() == grpc.StatusCode.NOT_FOUND and len(err.details()) < 1000
    err = rpc_error(lambda: client.get_features(["y" * 20_000], {"customer_id": [1]}))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and len(err.details()) < 1000
    with grpc.insecure_channel(daemon.target) as channel:
        bad = registry_pb2.ApplyRequest(groups=[_group("N" * 10_000, 1)])
        err = rpc_error(lambda: registry_pb2_grpc.RegistryStub(channel).Apply(bad, timeout=10))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and len(err.details()) < 1000


def test_names_are_checked_with_full_matches(velocity) -> None:  # type: ignore[no-untyped-def]
    client, daemon = velocity
    assert rpc_error(lambda: client.backup("ok\n")).code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not any("\n" in p.name for p in (daemon.data_dir / "backups").glob("*")) if (daemon.data_dir / "backups").exists() else True
    assert rpc_error(lambda: client.create_manifest("model\n", ["velocity:count_1h"])).code() == grpc.StatusCode.INVALID_ARGUMENT
    with grpc.insecure_channel(daemon.target) as channel:
        err = rpc_error(lambda: registry_pb2_grpc.RegistryStub(channel).Apply(registry_pb2.ApplyRequest(groups=[_group("g\n", 1)]), timeout=10))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_validate_of_an_unknown_feature_or_version_is_not_found(velocity) -> None:  # type: ignore[no-untyped-def]
    client, _ = velocity
    assert rpc_error(lambda: client.validate("velocity", feature="nope")).code() == grpc.StatusCode.NOT_FOUND
    assert rpc_error(lambda: client.validate("velocity", feature="count_1h", versions=[9])).code() == grpc.StatusCode.NOT_FOUND
    assert rpc_error(lambda: client.validate("nope")).code() == grpc.StatusCode.NOT_FOUND


def test_refused_publish_streams_say_why_and_two_tokens_are_refused(daemon_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"tokens": [{"name": "reader", "token": "r" * 32, "scopes": ["read"]},
                                             {"name": "admin", "token": "a" * 32, "scopes": ["admin"]}]}))
    daemon = daemon_factory(env={"FSD_SERVER_TOKENS_FILE": str(tokens)}).start()
    with grpc.insecure_channel(daemon.target) as channel:
        publish = serving_pb2_grpc.FeatureStoreStub(channel).Publish
        assert rpc_error(lambda: publish(iter([]), timeout=10)).code() == grpc.StatusCode.UNAUTHENTICATED
        weak = rpc_error(lambda: publish(iter([]), timeout=10, metadata=[("authorization", "Bearer " + "r" * 32)]))
        assert weak.code() == grpc.StatusCode.PERMISSION_DENIED
        groups = registry_pb2_grpc.RegistryStub(channel).ListGroups
        two = rpc_error(lambda: groups(registry_pb2.ListGroupsRequest(), timeout=10,
                                       metadata=[("authorization", "Bearer " + "r" * 32), ("authorization", "Bearer " + "a" * 32)]))
        assert two.code() == grpc.StatusCode.UNAUTHENTICATED and "more than one" in two.details()


def test_paths_are_confined_when_written_defaults_included(daemon_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    daemon = daemon_factory("allowed/data", env={"FSD_ALLOWED_ROOTS": str(allowed)}).start()
    (daemon.data_dir / "backups").symlink_to(outside, target_is_directory=True)
    with Client(daemon.target) as client:
        assert rpc_error(lambda: client.backup("b1")).code() == grpc.StatusCode.INVALID_ARGUMENT
        assert not any(outside.iterdir())
        client.apply(load_text(VELOCITY))
        store = deployment_store(client)
        (store.root / "velocity" / "count_1h" / "v1").mkdir(parents=True)
        month = np.datetime64(now_micros() - 30 * MICROS, "us").astype("datetime64[M]")
        (store.root / "velocity" / "count_1h" / "v1" / f"month={month}").symlink_to(outside, target_is_directory=True)
    with pytest.raises(Exception, match="outside"):
        with Client(daemon.target) as client:
            ingest_offline(client, OfflineStore(store.root), "velocity", rows([1], [30], [1]).drop_columns(["amount_1h"]))
    assert not any(outside.iterdir())


def test_sigterm_exit_is_bounded_by_the_grace_period(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    daemon = daemon_factory(env={"FSD_SERVER_GRACE_SECONDS": "1"}).start()
    with Client(daemon.target) as client:
        client.apply(load_text(VELOCITY))
    stop = threading.Event()

    def slow_publish() -> None:
        def chunks():  # type: ignore[no-untyped-def]
            yield serving_pb2.PublishChunk(publish_id="slow", group="velocity", sequence=0, arrow_ipc=table_to_ipc(rows([1], [30], [1])))
            stop.wait(60)  # the handler stays inside the stream, waiting for the next chunk
        with grpc.insecure_channel(daemon.target) as channel, pytest.raises(grpc.RpcError):
            serving_pb2_grpc.FeatureStoreStub(channel).Publish(chunks(), timeout=60)

    thread = threading.Thread(target=slow_publish)
    thread.start()
    time.sleep(1.0)
    began = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    daemon.proc.wait(timeout=30)  # type: ignore[union-attr]
    took = time.monotonic() - began
    stop.set()
    thread.join(30)
    assert took < 1 + 1 + 2.5, f"exit took {took:.1f} s with a 1 s grace period"  # grace, the documented second, start-up slack


def test_over_limit_input_is_resource_exhausted_as_documented(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    daemon = daemon_factory(env={"FSD_LIMITS_MAX_CHUNK_ROWS": "2"}).start()
    with Client(daemon.target) as client:
        client.apply(load_text(VELOCITY))
        err = rpc_error(lambda: client.publish("velocity", rows([1, 2, 3], [30, 30, 30], [1, 2, 3]), chunk_rows=3))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "max_chunk_rows" in err.details()
        missing = rpc_error(lambda: client.publish("velocity", rows([1], [30], [1]).rename_columns(["id", "event_timestamp", "count_1h", "amount_1h"])))
        assert missing.code() == grpc.StatusCode.FAILED_PRECONDITION and "ENTITY_KEY_MISMATCH" in missing.details()


def test_user_errors_in_the_cli_never_end_in_a_traceback(velocity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, daemon = velocity
    target = ["--target", daemon.target]
    csv = tmp_path / "v.csv"
    csv.write_text("customer_id,event_timestamp,count_1h,amount_1h\n1,2026-11-25T10:00:00Z,3,4.5\n")
    published = fsd("publish", "velocity", str(csv), "--quiet", *target)
    assert published.returncode == 0 and "1 rows accepted" in published.stdout, published.stderr
    out_of_range = fsd("get", "velocity:count_1h", "--entity", f"customer_id={2**64}", *target)
    assert out_of_range.returncode == 2 and "int64" in out_of_range.stderr
    binary = tmp_path / "repo.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    applied = fsd("apply", str(binary), *target)
    assert applied.returncode == 1 and "not a YAML text file" in applied.stderr
    for got in (published, out_of_range, applied):
        assert "Traceback" not in got.stderr


def test_ctrl_c_during_a_publish_prints_how_to_resume(velocity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, daemon = velocity
    big = tmp_path / "big.parquet"
    n = 400_000
    pq.write_table(pa.table({"customer_id": pa.array(np.arange(n), pa.int64()), "event_timestamp": pa.array(np.full(n, now_micros() - MICROS), TS),
                             "count_1h": pa.array(np.arange(n), pa.int64())}), big)
    proc = subprocess.Popen([sys.executable, "-m", "fsd.cli", "publish", "velocity", str(big), "--chunk-rows", "1000", "--target", daemon.target],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    with Client(daemon.target) as client:  # wait until the publish is under way
        while time.monotonic() < deadline and not any(client.get_features(["velocity:count_1h"], {"customer_id": [0]})["velocity:count_1h"].has_value()):
            time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err and "--publish-id" in err and "Traceback" not in err


# --- G. No silent slow mode -----------------------------------------------------------------------------------


def test_a_daemon_without_the_compiled_codec_refuses_to_start_unless_asked(tmp_path: Path) -> None:
    import shutil

    import fsd as package

    source = Path(package.__file__).resolve().parent
    shadow = tmp_path / "shadow"
    shutil.copytree(source, shadow / "fsd", ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    # A source tree ahead of the installed package on sys.path: its fsd/ has no compiled module.
    (shadow / "fsd" / "_native.py").write_text("raise ImportError('fsd._native is not built in this source tree')\n")
    env = {"PYTHONPATH": str(shadow), "FSD_SERVER_METRICS": "false"}
    refused = fsd("serve", "--data-dir", str(tmp_path / "d"), "--port", "0", env=env, cwd=tmp_path, timeout=60)
    assert refused.returncode == 1 and "compiled codec" in refused.stderr and "FSD_NO_EXTENSIONS=1" in refused.stderr
    version = fsd("--version", env=env, cwd=tmp_path)
    assert version.returncode == 0 and "pure-Python" in version.stdout
    native = fsd("--version")
    assert "native" in native.stdout and "fsd.v1" in native.stdout


def test_one_retyped_file_among_good_ones_is_refused_by_its_rule_with_an_incident(velocity) -> None:  # type: ignore[no-untyped-def]
    """A source that retyped its key in one file (the others fine): the run names entity_key_mismatch and opens a
    review incident instead of failing on an unreadable dataset; once the file is replaced, nothing is lost."""
    client, _ = velocity
    store = deployment_store(client)
    ingest_offline(client, store, "velocity", rows([1, 2], [30, 30], [1, 2]).drop_columns(["amount_1h"]))
    bad = pa.table({"customer_id": pa.array(["C3"]), "event_timestamp": pa.array([now_micros()], TS),
                    "created_timestamp": pa.array([now_micros()], TS), "value": pa.array([7], pa.int64())})
    written = store.write("velocity", "count_1h", 1, bad)
    run = sync_group(client, store, "velocity")
    assert run.outcome == "failed" and "ENTITY_KEY_MISMATCH" in run.error
    assert [i.kind for i in client.incidents()] == ["entity_key_mismatch"]
    assert served(client, [1, 2]) == [(None, "NOT_FOUND"), (None, "NOT_FOUND")]
    for path in written.files:
        Path(path).unlink()
    assert sync_group(client, store, "velocity").outcome == "success"
    assert served(client, [1, 2]) == [(1, "PRESENT"), (2, "PRESENT")]
