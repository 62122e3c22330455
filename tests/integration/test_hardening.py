"""The surfaces hardened after they were tried as an attacker and a careless operator: the local cluster's folder,
processes and passwords, files written through planted symlinks, fsd init's confinement, reads while a shard is
down, applies through a replica whose view is behind, an absurd offline-write row count, and CI's own script."""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pyarrow as pa
import pytest

from fsd.client import Client
from fsd.dev import cluster
from fsd.domain import DType, EntityKeySpec, FeatureSpec, GroupSpec, KeyType
from fsd.errors import FailedPrecondition, InvalidArgument
from fsd.examples import FRAUD_REPO
from fsd.registry.definitions import load_repo, load_text
from fsd.registry.registry import Registry
from fsd.v1 import registry_pb2, registry_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534


def _victim() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "120"])


# --- 1, 2: the local cluster ------------------------------------------------------------------------------------


def test_down_acts_only_on_recorded_processes_and_its_own_folders(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    cluster.private_folder(folder, create=True)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data").write_text("keep me")
    victim = _victim()
    try:
        state = cluster.ClusterState(str(folder), redis=[{"port": 1, "pid": victim.pid}],  # a PID without an identity
                                     postgres={"port": 2, "pid": victim.pid, "start": 0, "exe": "/bin/sleep", "data": str(outside)},
                                     replicas=[{"port": 3, "pid": victim.pid, "start": 1, "exe": "/usr/bin/sleep", "data_dir": str(folder)}])
        state.save()
        cluster.down(folder)
        assert victim.poll() is None, "down killed a process that was not the one it started"
        assert (outside / "data").read_text() == "keep me", "down deleted a folder outside its own"
    finally:
        victim.kill()
        victim.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the folder to another user")
def test_down_refuses_a_folder_owned_by_someone_else(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    victim = _victim()
    try:
        (folder / "cluster.json").write_text(json.dumps({"dir": str(folder), "redis": [{"port": 1, "pid": victim.pid}]}))
        os.chown(folder, NOBODY, NOBODY)
        os.chown(folder / "cluster.json", NOBODY, NOBODY)
        run = subprocess.run([sys.executable, "-m", "fsd.cli", "cluster", "down", "--dir", str(folder)], capture_output=True, text=True, timeout=60)
        assert run.returncode != 0 and "owned by uid" in run.stderr
        assert victim.poll() is None
        with pytest.raises(FailedPrecondition):
            cluster.up(folder, replicas=0)
    finally:
        victim.kill()
        victim.wait()


def test_up_keeps_the_cluster_private_and_its_servers_password_protected(tmp_path: Path, redis_cluster) -> None:  # type: ignore[no-untyped-def]
    import psycopg
    import redis

    folder = tmp_path / "local"
    state = cluster.up(folder, replicas=0, redis_masters=3)
    try:
        assert os.stat(folder).st_mode & 0o777 == 0o700
        assert os.stat(folder / "cluster.json").st_mode & 0o777 == 0o600
        assert state.redis_password and state.postgres_password
        anonymous = redis.Redis(port=int(state.redis[0]["port"]))
        with pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.set("x", "1")
        anonymous.close()
        authorised = redis.Redis(port=int(state.redis[0]["port"]), password=state.redis_password)
        assert authorised.ping()
        authorised.close()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(f"postgresql://{state.postgres['user']}@127.0.0.1:{state.postgres['port']}/fsd", connect_timeout=5).close()
        psycopg.connect(state.registry_url, connect_timeout=5).close()
    finally:
        cluster.down(folder)
    assert not any(folder.glob("redis-*")) and not Path(str(state.postgres["data"])).exists()  # nothing left behind
    for node in state.redis:
        assert not cluster.same_process(node)


# --- 3, 4: files written for the user ---------------------------------------------------------------------------


def test_dataset_create_never_writes_through_planted_symlinks(fraud_client: Client, tmp_path: Path, daemon) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path / "work"
    work.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    out = work / "train.parquet"
    for planted in (work / ".train.parquet.tmp", work / ".train.parquet.manifest.json.tmp"):
        planted.symlink_to(victim)
    from fsd.client.training import create_dataset, ingest_offline
    from fsd.offline.store import OfflineStore

    store = OfflineStore(tmp_path / "offline")
    now = dt.datetime.now(dt.timezone.utc)
    ingest_offline(fraud_client, store, "transaction_velocity", pa.table({
        "customer_id": pa.array([1, 2], pa.int64()), "event_timestamp": pa.array([now - dt.timedelta(minutes=5)] * 2, pa.timestamp("us", tz="UTC")),
        "txn_count_1h": pa.array([3, 4], pa.int64()), "txn_amount_sum_1h": [1.0, 2.0]}))
    entities = pa.table({"customer_id": pa.array([1, 2], pa.int64()), "event_timestamp": pa.array([now] * 2, pa.timestamp("us", tz="UTC"))})
    create_dataset(fraud_client, store, entities, ["transaction_velocity:txn_count_1h"], out)
    assert victim.read_text() == "untouched"
    assert out.is_file() and not out.is_symlink() and not (work / "train.parquet.manifest.json").is_symlink()
    assert sorted(p.name for p in work.iterdir() if not p.is_symlink()) == ["train.parquet", "train.parquet.manifest.json"]


def test_init_is_confined_to_the_allowed_roots(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (allowed / "link").symlink_to(outside)
    env = {**os.environ, "FSD_ALLOWED_ROOTS": str(allowed)}
    for target in (str(outside / "repo"), str(allowed / ".." / "outside" / "repo2"), str(allowed / "link" / "repo3")):
        run = subprocess.run([sys.executable, "-m", "fsd.cli", "init", target], capture_output=True, text=True, timeout=120, env=env, cwd=allowed)
        assert run.returncode != 0 and "outside the allowed roots" in run.stderr, (target, run.stderr)
    assert list(outside.iterdir()) == []
    ok = subprocess.run([sys.executable, "-m", "fsd.cli", "init", "repo"], capture_output=True, text=True, timeout=120, env=env, cwd=allowed)
    assert ok.returncode == 0, ok.stderr
    assert (allowed / "repo" / "features" / "transaction_velocity.yaml").is_file()


# --- 7: reads while a shard is down honour the caller's deadline -----------------------------------------------


def test_a_read_touching_a_frozen_shard_is_unavailable_within_the_callers_deadline(deployment) -> None:  # type: ignore[no-untyped-def]
    import redis

    (a,) = deployment.start(1)
    with Client(a) as client:
        client.apply(load_text(_RISK))
        client.publish("risk", _risk(list(range(1, 101))))
        masters = []
        for node in deployment.cluster.redis:
            probe = redis.Redis(port=int(node["port"]))
            if probe.execute_command("ROLE")[0] == b"master":
                masters.append(node)
            probe.close()
        frozen = masters[0]
        os.kill(int(frozen["pid"]), signal.SIGSTOP)  # a partition: the shard holds its connections and answers nothing
        try:
            began = time.monotonic()
            with grpc.insecure_channel(a) as channel:
                from fsd.v1 import serving_pb2, serving_pb2_grpc

                request = serving_pb2.GetFeaturesRequest(entities=[serving_pb2.EntityColumn(name="id", int64_values={"values": list(range(1, 101))})],
                                                         features=["risk:score"])
                with pytest.raises(grpc.RpcError) as failed:
                    serving_pb2_grpc.FeatureStoreStub(channel).GetFeatures(request, timeout=0.8)
            elapsed = time.monotonic() - began
        finally:
            os.kill(int(frozen["pid"]), signal.SIGCONT)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE, failed.value.code()
        assert elapsed < 0.8, elapsed  # answered while the caller still listened


_RISK = """
feature_groups:
  - name: risk
    entity_keys: [{name: id, type: int64}]
    features:
      - {name: score, dtype: double}
"""


def _risk(ids: list[int]) -> pa.Table:
    at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    return pa.table({"id": pa.array(ids, pa.int64()), "event_timestamp": pa.array([at] * len(ids), pa.timestamp("us", tz="UTC")),
                     "score": [1.0] * len(ids)})


# --- 9: applies through a replica whose view is behind ------------------------------------------------------------


def test_an_apply_without_an_expected_revision_is_replanned_when_the_view_was_behind(tmp_path: Path) -> None:
    path = str(tmp_path / "registry.sqlite")
    first, second = Registry(path), Registry(path)  # two processes' views of one registry

    def group(name: str) -> GroupSpec:
        return GroupSpec(name=name, entity_keys=(EntityKeySpec("id", KeyType.INT64),), features=(FeatureSpec("x", DType.DOUBLE),))

    first.apply([group("a")])
    result = second.apply([group("b")])  # second's snapshot is behind: re-read and applied, not refused
    assert result.revision == 2 and {c.group for c in result.changes} == {"b"}
    with pytest.raises(FailedPrecondition) as refused:
        first.apply([group("c")], expected_revision=1)  # a caller who named a revision is still told to re-plan
    assert refused.value.field == "expected_revision"
    assert set(Registry(path).snapshot().groups) == {"a", "b"}


# --- 11: offline-write row counts ---------------------------------------------------------------------------------


def test_an_absurd_offline_write_row_count_is_refused(fraud_client: Client, daemon) -> None:  # type: ignore[no-untyped-def]
    with grpc.insecure_channel(daemon.target) as channel:
        stub = registry_pb2_grpc.RegistryStub(channel)
        write = registry_pb2.OfflineWrite(group="transaction_velocity", feature="txn_count_1h", version=1, kind="ingest", rows=2**64 - 1,
                                          min_event_micros=1, max_event_micros=2, actor="x")
        with pytest.raises(grpc.RpcError) as refused:
            stub.RecordOfflineWrite(write, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(refused.value.trailing_metadata()).get("fsd-field") == "rows"
    assert not any("18446744073709551615" in h.detail for h in fraud_client.history("transaction_velocity", "txn_count_1h").entries)


# --- 13: CI stops only what it started ----------------------------------------------------------------------------


def test_ci_never_stops_processes_by_name() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert "pkill" not in script and "killall" not in script and "policy-rc.d" in script


def test_free_text_refusals_name_the_field_over_grpc(client: Client) -> None:
    with pytest.raises(InvalidArgument) as refused:
        client.apply(load_repo(FRAUD_REPO), applied_by="ann\x00")
    assert refused.value.field == "applied_by" and client.list_groups() == []


# --- 12: load shedding: reads have threads of their own ----------------------------------------------------------


@pytest.mark.parametrize("daemon_workers", [1, 2], ids=["one-process", "two-workers"])
def test_open_publish_streams_and_health_watches_never_take_the_read_threads(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    """GetFeatures runs on its own small pool (what keeps refusals fast at overload, see grpc_server.py); calls
    that hold a thread for their whole life (publish streams, health watches) run on another, so a node with one
    read thread still answers reads while they are open."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from fsd.v1 import serving_pb2_grpc

    daemon = daemon_factory(env={"FSD_SERVER_MAX_WORKERS": "1"}).start()
    with Client(daemon.target, timeout=10) as client:
        client.apply(load_repo(FRAUD_REPO))
        release = __import__("threading").Event()

        from fsd.client.api import table_to_ipc
        from fsd.examples import fraud_data
        from fsd.wire import serving as serving_wire

        rows = table_to_ipc(fraud_data.transaction_velocity(5, time.time_ns() // 1000, stale_share=0.0))

        def held_stream(publish_id: str):  # type: ignore[no-untyped-def]
            yield serving_wire.publish_chunk(publish_id, "transaction_velocity", 0, rows, {}, "REFRESH", "")
            release.wait(60)  # the stream stays open, holding the thread that serves it

        channel = grpc.insecure_channel(daemon.target)
        publishes = [serving_pb2_grpc.FeatureStoreStub(channel).Publish.future(held_stream(f"held-{i}"), timeout=60) for i in range(2)]
        watches = [health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=60) for _ in range(3)]
        for watch in watches:
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        try:
            time.sleep(0.5)  # let the held streams reach their handlers
            for _ in range(3):
                served = client.get_features(["transaction_velocity:txn_count_1h"], entities={"customer_id": [1, 2]})
                assert len(served.to_dict()["customer_id"]) == 2
            assert not any(publish.done() for publish in publishes)  # both streams were open all along
        finally:
            release.set()
            for watch in watches:
                watch.cancel()
            for publish in publishes:
                publish.cancel()
            channel.close()
