"""Distributed mode with real servers: stateless fsd replicas over a Redis Cluster (3 masters, 3 replicas) and a
PostgreSQL registry — round trips through two replicas, version switches every replica honours within the lease,
a replica cut off from the registry, compare-and-set writes under concurrent writers, failover, resumption."""
from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pyarrow as pa
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fsd.client import Client, table_to_ipc
from fsd.dev.ownership import identity
from fsd.domain import ValueStatus
from fsd.registry.definitions import load_text
from fsd.v1 import serving_pb2, serving_pb2_grpc
from tests.conftest import TYPES_REPO
from tests.helpers import MICROS, all_types_table, now_micros, rpc_error, seconds_ago, wait_for

TS = pa.timestamp("us", tz="UTC")
RISK_V1 = """
feature_groups:
  - name: risk
    entity_keys: [{name: id, type: int64}]
    features:
      - {name: score, dtype: double, transformation: "v1"}
"""
RISK_V2 = RISK_V1.replace('"v1"', '"v2"')


def risk(ids: list[int], value: float, at: int | None = None) -> pa.Table:
    t = at if at is not None else now_micros() - MICROS
    return pa.table({"id": pa.array(ids, pa.int64()), "event_timestamp": pa.array([t] * len(ids), TS), "score": [value] * len(ids)})


def health(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        try:
            return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status
        except grpc.RpcError:
            return -1


def comparable(result) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    out = []
    for ref, f in result.features.items():
        values = f.values.tolist() if isinstance(f.values, np.ndarray) else list(f.values)
        out.append((ref, f.version, values, f.is_null.tolist(), f.statuses.tolist(), f.event_time_micros.tolist()))
    return out


def test_two_replicas_serve_every_dtype_like_the_embedded_engine(deployment, daemon_factory) -> None:  # type: ignore[no-untyped-def]
    a, b = deployment.start(2)
    embedded = daemon_factory().start()
    t = seconds_ago(1)
    table = all_types_table([1, 2, 3], [t, t - 10 * 3600 * MICROS, t], f_string=pa.array(["x", None, "é"]))
    refs = ["all_types:f_int", "all_types:f_double", "all_types:f_float", "all_types:f_bool", "all_types:f_string", "all_types:f_bytes",
            "all_types:f_vec", "all_types:f_required", "pairs:score"]
    results = []
    for writer, reader in ((Client(a), Client(b)), (Client(embedded.target), Client(embedded.target))):
        with writer, reader:
            writer.apply(load_text(TYPES_REPO))
            writer.publish("all_types", table)
            writer.publish("pairs", pa.table({"user": ["u1"], "item_id": pa.array([1], pa.int64()), "event_timestamp": pa.array([t], TS), "score": [0.5]}))
            got = reader.get_features(refs[:-1], {"entity_id": [1, 2, 3, 4]})
            pairs = reader.get_features(refs[-1:], {"user": ["u1", "u2"], "item_id": [1, 1]})
            results.append((comparable(got), comparable(pairs)))
            if writer.target == a:
                assert got.registry_epoch > 0
    assert results[0] == results[1]
    assert results[0][0][0][4] == [ValueStatus.PRESENT, ValueStatus.STALE, ValueStatus.PRESENT, ValueStatus.NOT_FOUND]
    with Client(a) as client:
        d = client.get_deployment()
        assert (d.store_engine, d.registry_kind) == ("redis-cluster", "postgresql")
        replicas, _ = client.replicas()
        assert len(replicas) == 2 and sum(r.leader for r in replicas) == 1


def test_concurrent_applies_through_two_replicas_one_wins(deployment) -> None:  # type: ignore[no-untyped-def]
    a, b = deployment.start(2)
    with Client(a) as ca, Client(b) as cb:
        ca.apply(load_text(RISK_V1))
        wait_for(lambda: cb.list_groups())
        plan_a, plan_b = ca.plan(load_text(RISK_V2)), cb.plan(load_text(RISK_V2.replace('"v2"', '"v3"')))
        assert plan_a.revision == plan_b.revision
        ca.apply(load_text(RISK_V2), expected_revision=plan_a.revision)
        err = rpc_error(lambda: cb.apply(load_text(RISK_V2.replace('"v2"', '"v3"')), expected_revision=plan_b.revision))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "re-run plan" in err.details()


def test_a_promote_is_honoured_by_every_replica_within_the_lease(deployment) -> None:  # type: ignore[no-untyped-def]
    a, b = deployment.start(2, env={"FSD_REGISTRY_LEASE_SECONDS": "2"})
    lease = 2.0
    with Client(a) as ca:
        ca.apply(load_text(RISK_V1))
        ca.publish("risk", risk([1], 1.0))
        ca.apply(load_text(RISK_V2))
        ca.publish("risk", risk([1], 2.0), feature_versions={"score": 2})
    seen: list[tuple[str, float, int]] = []
    stop = threading.Event()

    def reader(target: str) -> None:
        with Client(target) as client:
            while not stop.is_set():
                began = time.monotonic()
                try:
                    version = client.get_features(["risk:score"], {"id": [1]})["risk:score"].version
                except Exception:  # noqa: BLE001 - an UNAVAILABLE refusal is allowed, a wrong version is not
                    continue
                seen.append((target, began, version))

    threads = [threading.Thread(target=reader, args=(t,)) for t in (a, b)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    with Client(a) as ca:
        ca.promote("risk", "score", 2)
    returned = time.monotonic()
    with Client(b) as cb:
        wait_for(lambda: cb.get_features(["risk:score"], {"id": [1]})["risk:score"].version == 2, timeout=lease)
    time.sleep(lease + 0.5)
    stop.set()
    for thread in threads:
        thread.join(10)
    late_old = [(t, round(began - returned, 3)) for t, began, v in seen if v == 1 and began > returned + lease]
    assert not late_old, late_old
    assert {t for t, _, v in seen if v == 2} == {a, b}


class _Proxy:
    """A TCP proxy between one replica and PostgreSQL, so one replica can be cut off while others are not."""

    def __init__(self, upstream: int) -> None:
        self._upstream = upstream
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.open = True
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self._upstream))
            self._conns += [client, server]
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass

    def cut(self) -> None:
        self.open = False
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            except OSError:
                pass
        self._conns.clear()

    def restore(self) -> None:
        self.open = True


def test_a_replica_cut_off_from_the_registry_stops_serving_unpinned_reads_and_recovers(deployment) -> None:  # type: ignore[no-untyped-def]
    pg = deployment.state.postgres
    proxy = _Proxy(int(pg["port"]))
    url = deployment.url.replace(f":{pg['port']}/", f":{proxy.port}/")
    (a,) = deployment.start(1)
    (b,) = deployment.start(1, env={"FSD_REGISTRY_URL": url, "FSD_REGISTRY_LEASE_SECONDS": "1"})
    with Client(a) as ca:
        ca.apply(load_text(RISK_V1))
        ca.publish("risk", risk([1], 1.0))
    with Client(b) as cb:
        wait_for(lambda: cb.list_groups())
        assert cb.get_features(["risk:score"], {"id": [1]})["risk:score"].version == 1
        proxy.cut()
        cut_at = time.monotonic()
        wait_for(lambda: health(b) == health_pb2.HealthCheckResponse.NOT_SERVING, timeout=5)
        # the 1 s lease, with a margin for the lease check, this poll and a busy 2-core machine (never a bare wall-clock bound)
        assert time.monotonic() - cut_at <= 1.0 + 3.0
        err = rpc_error(lambda: cb.get_features(["risk:score"], {"id": [1]}))
        assert err.code() == grpc.StatusCode.UNAVAILABLE and "lease" in err.details()
        assert cb.get_features(["risk:score@1"], {"id": [1]})["risk:score@1"].values.tolist() == [1.0]  # pinned reads still serve
        assert health(a) == health_pb2.HealthCheckResponse.SERVING
        proxy.restore()
        wait_for(lambda: health(b) == health_pb2.HealthCheckResponse.SERVING, timeout=10)
        assert cb.get_features(["risk:score"], {"id": [1]})["risk:score"].version == 1


def test_concurrent_writers_through_two_replicas_keep_the_greatest_event_time(deployment) -> None:  # type: ignore[no-untyped-def]
    a, b = deployment.start(2)
    with Client(a) as ca:
        ca.apply(load_text(RISK_V1))
    ids = list(range(1, 201))
    base = now_micros() - 600 * MICROS
    stamps = list(range(40))
    expected = {i: max(stamps) for i in ids}

    def writer(target: str, seed: int) -> None:
        order = stamps[:]
        random.Random(seed).shuffle(order)
        with Client(target) as client:
            for k in order:
                client.publish("risk", risk(ids, float(k), base + k * MICROS))

    threads = [threading.Thread(target=writer, args=(t, seed)) for t, seed in ((a, 1), (b, 2), (a, 3), (b, 4))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    with Client(b) as cb:
        got = cb.get_features(["risk:score"], {"id": ids})["risk:score"]
    assert got.values.tolist() == [float(expected[i]) for i in ids]
    assert got.event_time_micros.tolist() == [base + max(stamps) * MICROS] * len(ids)


def test_a_killed_publishing_replica_is_resumed_through_another(deployment) -> None:  # type: ignore[no-untyped-def]
    a, b = deployment.start(2)
    with Client(a) as ca:
        ca.apply(load_text(RISK_V1))
    n = 30_000
    table = risk(list(range(n)), 7.0)
    sent = threading.Event()

    def chunks():  # type: ignore[no-untyped-def]
        for sequence, batch in enumerate(table.to_batches(max_chunksize=1000)):
            yield serving_pb2.PublishChunk(publish_id="moving", group="risk", sequence=sequence, arrow_ipc=table_to_ipc(batch))
            if sequence == 10:
                sent.set()
                time.sleep(30)  # the replica is killed while this stream is open

    def publish() -> None:
        with grpc.insecure_channel(a) as channel, pytest.raises(grpc.RpcError):
            serving_pb2_grpc.FeatureStoreStub(channel).Publish(chunks(), timeout=60)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    assert sent.wait(30)
    time.sleep(0.5)
    deployment.kill(a)
    with Client(b) as cb:
        status = cb.publish_status("moving")
        assert status.known and status.last_durable_sequence >= 5
        result = cb.publish("risk", table, publish_id="moving", chunk_rows=1000, resume=True)
        assert result.chunks_written == 30 - (status.last_durable_sequence + 1)  # only what the killed replica had not made durable
        got = cb.get_features(["risk:score"], {"id": list(range(0, n, 997))})["risk:score"]
    assert got.values.tolist() == [7.0] * len(range(0, n, 997)) and set(got.statuses.tolist()) == {ValueStatus.PRESENT}


def test_killing_the_leader_moves_background_work(deployment) -> None:  # type: ignore[no-untyped-def]
    targets = deployment.start(2)
    with Client(targets[0]) as client:
        replicas = wait_for(lambda: (r := client.replicas()[0]) and sum(x.leader for x in r) == 1 and len(r) == 2 and r)
    leader = next(r for r in replicas if r.leader)
    survivor = next(t for t in targets if not leader.address.endswith(t.split(":")[1]))
    deployment.kill(next(t for t in targets if leader.address.endswith(t.split(":")[1])))
    with Client(survivor) as client:
        def moved() -> bool:
            rows, _ = client.replicas()
            me = next(r for r in rows if r.address.endswith(survivor.split(":")[1]))
            return me.leader
        wait_for(moved, timeout=15)


def test_postgres_restart_drains_replicas_within_the_lease_and_they_recover(deployment) -> None:  # type: ignore[no-untyped-def]
    from fsd.dev import cluster

    a, b = deployment.start(2, env={"FSD_REGISTRY_LEASE_SECONDS": "1"})
    with Client(a) as ca:
        ca.apply(load_text(RISK_V1))
        ca.publish("risk", risk([1], 1.0))
    pg = deployment.state.postgres
    cluster.stop_postgres(pg, mode="immediate")
    try:
        stopped = time.monotonic()
        for target in (a, b):
            wait_for(lambda t=target: health(t) == health_pb2.HealthCheckResponse.NOT_SERVING, timeout=5)
        assert time.monotonic() - stopped <= 1.0 + 1.5
    finally:
        cluster.restart_postgres(pg)
    for target in (a, b):
        wait_for(lambda t=target: health(t) == health_pb2.HealthCheckResponse.SERVING, timeout=20)
        with Client(target) as client:
            assert client.get_features(["risk:score"], {"id": [1]})["risk:score"].values.tolist() == [1.0]


def test_killing_a_redis_master_during_publishes_loses_no_acknowledged_write(deployment) -> None:  # type: ignore[no-untyped-def]
    """kill -9 of one master (cluster-node-timeout 2 s) under a publish loop, restarted a second later as a supervisor
    would (it rejoins as the replica of the promoted one; until a replica is back, WAIT 1 refuses writes to those
    slots rather than acknowledge them unreplicated): writes resume, reads during the outage fail UNAVAILABLE or
    show at least the last acknowledged value — never an older one — and every acknowledged publish is found
    afterwards (Redis documents a failover window in which acknowledged writes can be lost; WAIT 1 narrows it;
    the count is asserted, and printed)."""
    import redis

    from fsd.dev import cluster

    (a,) = deployment.start(1, env={"FSD_STORE_REDIS_TIMEOUT_SECONDS": "0.5"})
    ids = list(range(1, 301))
    base = now_micros() - 3600 * MICROS
    victim = None
    acked: list[int] = []
    refused = unavailable_reads = 0
    try:
        with Client(a, timeout=10) as client:
            client.apply(load_text(RISK_V1))
            killed_at_ack = 0
            for k in range(1, 400):
                try:
                    client.publish("risk", risk(ids, float(k), base + k * MICROS))
                    acked.append(k)
                except Exception:  # noqa: BLE001 - not acknowledged during the failover: allowed, counted
                    refused += 1
                try:
                    got = client.get_features(["risk:score"], {"id": ids})["risk:score"]
                    served = [v for v, ok in zip(got.values.tolist(), got.has_value()) if ok]
                    assert len(served) == len(ids) and min(served) >= (acked[-1] if acked else 0), (k, acked[-1:])
                except grpc.RpcError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    if "UNAVAILABLE" not in str(exc):
                        raise
                    unavailable_reads += 1
                if k == 20:
                    masters = [n for n in deployment.cluster.redis if redis.Redis(port=int(n["port"])).execute_command("ROLE")[0] == b"master"]
                    victim = masters[0]
                    os.kill(int(victim["pid"]), signal.SIGKILL)
                    killed, killed_at_ack = time.monotonic(), len(acked)
                if victim is not None and victim.get("restarted") is None and time.monotonic() - killed > 1.0:
                    victim.update(identity(cluster.start_redis_node(Path(deployment.cluster.dir), int(victim["port"]))) or {})
                    victim["restarted"] = True  # the new identity recorded: the fixture stops this process, not a stale PID
                if victim is not None and len(acked) == killed_at_ack + 1 and "resumed" not in victim:
                    victim["resumed"] = round(time.monotonic() - killed, 2)
                if victim is not None and len(acked) >= killed_at_ack + 20:
                    break
            final = client.get_features(["risk:score"], {"id": ids})["risk:score"]
        assert victim is not None and len(acked) >= killed_at_ack + 20, (len(acked), refused)  # writes resumed after the failover
        lost = sum(1 for v in final.values.tolist() if v < acked[-1])
        print(f"\nacknowledged {len(acked)}, refused during the failover {refused}, unavailable reads {unavailable_reads}, "
              f"writes acknowledged again {victim.get('resumed')} s after the kill, values behind the last acknowledged publish: {lost}")
        assert lost == 0
    finally:
        if victim is not None and victim.get("restarted") is None:  # rejoin as a replica, for the tests after this one
            victim.update(identity(cluster.start_redis_node(Path(deployment.cluster.dir), int(victim["port"]))) or {})
        if victim is not None:
            victim.pop("restarted", None)
            victim.pop("resumed", None)
            wait_for(lambda: cluster._replicas_attached([int(n["port"]) for n in deployment.cluster.redis], 1), timeout=60, step=0.2)


def test_the_server_side_merge_is_the_codec_merge(redis_cluster) -> None:  # type: ignore[no-untyped-def]
    """The Lua compare-and-set and fsd.codec's row merge (native, checked against its pure reference) agree on
    random rows, offers and the replace flag — including the per-row fallback path."""
    from fsd import codec
    from fsd.codec import _rows_py, _values_py
    from fsd.online.redis.adapter import RedisClusterOnlineStore, RedisSettings

    store = RedisClusterOnlineStore(RedisSettings((("127.0.0.1", int(redis_cluster.redis[0]["port"])),), min_replicas_ack=1))
    rng = random.Random(5)

    def value(marker: int) -> bytes:
        return _values_py.encode_values(1, np.array([marker]), np.zeros(1, bool), np.array([rng.randint(0, 4)]), np.array([rng.randint(0, 4)]))[0]

    try:
        for trial in range(150):
            keys = codec.entity_keys(900 + trial, codec.encode_entities([np.arange(4, dtype=np.int64)], [False]))
            existing = [None if rng.random() < 0.3 else _rows_py.build_row({s: value(1) for s in rng.sample([1, 2, 3], rng.randint(1, 3))})
                        for _ in keys]
            store.write_batch([(k, v) for k, v in zip(keys, existing) if v is not None])
            columns = [[None if rng.random() < 0.2 else value(2) for _ in keys] for _ in (1, 2)]
            replace = rng.random() < 0.3
            rows, written, skipped = codec.merge_rows(existing, [1, 2], columns, replace)
            assert store.merge_rows(keys, [1, 2], columns, replace) == (written, skipped)
            assert store.get_many(keys) == [new if new is not None else old for new, old in zip(rows, existing)]
    finally:
        store.close()


def test_replicas_with_serving_workers_share_the_cluster(deployment) -> None:  # type: ignore[no-untyped-def]
    """--workers over Redis Cluster: each worker reads the cluster and confirms the registry within its own lease;
    writes go through its node's writer; a promote through another replica reaches every worker within the lease."""
    (a,) = deployment.start(1, env={"FSD_SERVER_WORKERS": "2"})
    (b,) = deployment.start(1)
    with Client(a) as ca:
        ca.apply(load_text(RISK_V1))
        ca.publish("risk", risk([1, 2], 1.0))
        ca.apply(load_text(RISK_V2))
        ca.publish("risk", risk([1], 2.0), feature_versions={"score": 2})
    workers = set()
    for _ in range(12):
        with grpc.insecure_channel(a, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            request = serving_pb2.GetFeaturesRequest(entities=[serving_pb2.EntityColumn(name="id", int64_values={"values": [1, 2]})],
                                                     features=["risk:score"])
            reply, call = serving_pb2_grpc.FeatureStoreStub(channel).GetFeatures.with_call(request, timeout=10)
        workers.add(dict(call.trailing_metadata())["fsd-worker"])
        assert list(reply.features[0].values.double_values.values) == [1.0, 1.0] and reply.features[0].version == 1
    assert len(workers) == 2
    with Client(b) as cb:
        cb.promote("risk", "score", 2, force=True)

    def version_on_a_fresh_connection() -> int:
        with Client(a) as fresh:
            return fresh.get_features(["risk:score"], {"id": [1]})["risk:score"].version

    # every worker of a's node, on fresh connections, within the 2 s lease (and a margin for a busy machine)
    wait_for(lambda: all(version_on_a_fresh_connection() == 2 for _ in range(6)), timeout=2.0 + 3.0)
    with Client(a) as ca:  # each worker confirms the registry on its own (listed, with its epoch), and none leads
        workers_listed = [r for r in ca.replicas()[0] if "/worker-" in r.id]
        assert len(workers_listed) == 2 and not any(r.leader for r in workers_listed)
