"""Daemon lifecycle: health, reflection, restart, kill -9 durability, graceful SIGTERM, CLI."""
from __future__ import annotations

import re
import subprocess
import sys
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from fsd.client import Client
from fsd.domain import ValueStatus
from fsd.examples import FRAUD_REPO
from fsd.registry.definitions import load_repo
from tests.conftest import TYPES_REPO
from tests.helpers import all_types_table, seconds_ago, wait_for


def test_health_and_reflection(daemon) -> None:  # type: ignore[no-untyped-def]
    with grpc.insecure_channel(daemon.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "fsd.v1.FeatureStore", "fsd.v1.Registry"):
            assert health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"fsd.v1.FeatureStore", "fsd.v1.Registry", "grpc.health.v1.Health"} <= names


def test_restart_keeps_registry_and_values(daemon_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    daemon = daemon_factory().start()
    repo = tmp_path / "types.yaml"
    repo.write_text(TYPES_REPO)
    t = seconds_ago(2)
    with Client(daemon.target) as client:
        client.apply(load_repo(repo))
        client.publish("all_types", all_types_table([1, 2], [t, t]))
    assert daemon.terminate() == 0
    daemon.start()
    with Client(daemon.target) as client:
        assert [g.spec.name for g in client.list_groups()] == ["all_types", "pairs"]
        result = client.get_features(["all_types:f_string", "all_types:f_vec"], {"entity_id": [1, 2]})
    assert result["all_types:f_string"].values == ["s1-é", "s2-é"]
    assert result["all_types:f_vec"].values[1].tolist() == [2.0, -1.0, 0.5]
    assert result["all_types:f_vec"].event_time_micros.tolist() == [t, t]


def test_kill_9_right_after_acknowledged_publish_loses_nothing(daemon_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    daemon = daemon_factory().start()
    repo = tmp_path / "types.yaml"
    repo.write_text(TYPES_REPO)
    ids = list(range(1, 2001))
    with Client(daemon.target) as client:
        client.apply(load_repo(repo))
        response = client.publish("all_types", all_types_table(ids, [seconds_ago(1)] * len(ids)), chunk_rows=500)
        assert response.rows_accepted == len(ids)
    daemon.kill9()  # no chance to flush anything after the acknowledgement
    daemon.start()
    with Client(daemon.target) as client:
        result = client.get_features(["all_types:f_int", "all_types:f_string"], {"entity_id": ids})
    assert set(result["all_types:f_int"].statuses.tolist()) == {ValueStatus.PRESENT}
    assert result["all_types:f_int"].values.tolist() == [i * 10 for i in ids]
    assert result["all_types:f_string"].values[-1] == "s2000-é"


def test_sigterm_drains_and_exits_cleanly(daemon) -> None:  # type: ignore[no-untyped-def]
    assert daemon.terminate() == 0
    assert "fsd stopped" in daemon.log()


def test_cli_apply_publish_get(daemon, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pyarrow.parquet as pq

    from fsd.examples import fraud_data
    from tests.helpers import now_micros

    def fsd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fsd.cli", *args, "--target", daemon.target] if args[0] != "get" else
                              [sys.executable, "-m", "fsd.cli", *args], capture_output=True, text=True, timeout=120)

    applied = fsd("apply", str(FRAUD_REPO))
    assert applied.returncode == 0, applied.stderr
    assert "transaction_velocity" in applied.stdout and "create" in applied.stdout
    parquet = tmp_path / "velocity.parquet"
    pq.write_table(fraud_data.transaction_velocity(50, now_micros(), stale_share=0.0), parquet)
    published = fsd("publish", "transaction_velocity", str(parquet), "--quiet")
    assert published.returncode == 0, published.stderr
    assert "50 rows accepted, 0 rejected" in published.stdout
    got = fsd("get", "transaction_velocity:txn_count_1h", "--entity", "customer_id=1,2,777", "--target", daemon.target)
    assert got.returncode == 0, got.stderr
    lines = [line for line in got.stdout.splitlines() if "customer_id=" in line]
    assert [("PRESENT" in line, "NOT_FOUND" in line) for line in lines] == [(True, False), (True, False), (False, True)]
    bad = fsd("get", "transaction_velocity:txn_count_1h", "--entity", "customer_id=abc", "--target", daemon.target)
    assert bad.returncode == 2 and "not an integer" in bad.stderr


def test_demo_runs_end_to_end() -> None:
    run = subprocess.run([sys.executable, "-m", "fsd.cli", "demo", "--customers", "200"], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    for expected in ("PRESENT", "STALE", "NOT_FOUND", "composite key", "daemon stopped cleanly"):
        assert expected in run.stdout


def test_publish_stops_writing_when_its_deadline_expires(typed_client, daemon) -> None:  # type: ignore[no-untyped-def]
    import time as _time

    from fsd.client import table_to_ipc
    from fsd.domain import ValueStatus
    from fsd.v1 import serving_pb2, serving_pb2_grpc

    def chunks():  # type: ignore[no-untyped-def]
        for sequence in range(4):
            table = all_types_table([sequence + 1], [seconds_ago(1)])
            yield serving_pb2.PublishChunk(publish_id="slow-loader", group="all_types", sequence=sequence, arrow_ipc=table_to_ipc(table))
            _time.sleep(0.6)  # the caller is slower than its own deadline

    with grpc.insecure_channel(daemon.target) as channel:
        try:
            serving_pb2_grpc.FeatureStoreStub(channel).Publish(chunks(), timeout=1.0)
            raise AssertionError("the publish should have hit its deadline")
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The handler has ended once the daemon has timed the Publish call (its metrics observe every call when it
    # returns): from then on no straggling chunk can be written, so the reads below are final.
    assert daemon.metrics_port, "the test daemon serves /metrics"
    wait_for(lambda: re.search(r'fsd_request_seconds_count\{[^}]*method="Publish"[^}]*\} [1-9]',
                               urllib.request.urlopen(f"http://127.0.0.1:{daemon.metrics_port}/metrics", timeout=5).read().decode()))
    statuses = typed_client.get_features(["all_types:f_int"], {"entity_id": [1, 2, 3, 4]})["all_types:f_int"].statuses.tolist()
    assert statuses[:1] == [ValueStatus.PRESENT] and statuses[3] == ValueStatus.NOT_FOUND
    assert typed_client.publish_status("slow-loader").last_durable_sequence <= 1
