"""Distributed-mode benchmark on a local cluster (3 Redis masters + 3 replicas, PostgreSQL, 2 fsd replicas), with
same-run baselines: the bare gRPC echo, and a bare redis-py (hiredis) client fetching the same keys with the same
per-master pipelines (the Redis floor).

    python -m loadtests.bench_cluster [--entities 100000] [--calls 3000] [--switches 100] [--json out.json]

Cases: GetFeatures 1x10 and 100x10 sequential (p50, p99, p99.9, max; ratio to echo p99 + Redis-floor p99);
1x10 at 16 in flight through one and through two replicas (throughput, scaling); Publish into the cluster,
durable as configured (appendfsync always + WAIT 1), beside a bare redis-py SET + WAIT of the same rows' bytes on
the same keys; version switch (promote returning -> every replica serving
the new version, p50/p99 over N switches); failover (kill -9 of a master -> writes to its slots acknowledged
again, the killed node restarted after 1 s as a supervisor would).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import pyarrow as pa
import redis
from redis.crc import key_slot

from fsd import cluster, codec
from fsd.client import Client
from fsd.domain import DType, EntityKeySpec, FeatureSpec, GroupSpec, KeyType
from fsd.online.redis.adapter import redis_key
from loadtests import dataset
from loadtests.bench import ECHO_METHOD, GET_METHOD, build_requests, echo_requests, percentile, require_native_codec, start_echo

TS = pa.timestamp("us", tz="UTC")
PUBLISH_CHUNK_ROWS = 20_000  # rows per publish chunk, and per round of the bare redis-py floor


def stats(latencies: list[float], elapsed: float) -> dict[str, float]:
    return {"p50_us": statistics.median(latencies), "p99_us": percentile(latencies, 99), "p999_us": percentile(latencies, 99.9),
            "max_us": max(latencies), "qps": len(latencies) / elapsed, "calls": len(latencies)}


def timed(call, items: list[object]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    latencies = []
    began = time.perf_counter()
    for item in items:
        t = time.perf_counter_ns()
        call(item)
        latencies.append((time.perf_counter_ns() - t) / 1000)
    return stats(latencies, time.perf_counter() - began)


class RedisFloor:
    """The same GETs the engine sends, from a bare redis-py client: per master one pipeline (hiredis parser)."""

    def __init__(self, state: cluster.ClusterState) -> None:
        probe = redis.Redis(port=int(state.redis[0]["port"]))
        self._owner: list[int] = [0] * 16384
        for start, end, master, *_ in probe.execute_command("CLUSTER", "SLOTS"):
            for s in range(int(start), int(end) + 1):
                self._owner[s] = int(master[1])
        probe.close()
        self._clients = {port: redis.Redis(port=port) for port in set(self._owner)}

    def _per_node(self, ids: list[int]) -> dict[int, list[bytes]]:
        per_node: dict[int, list[bytes]] = {}
        for key in codec.entity_keys(1, codec.encode_entities([ids], [False])):
            rkey = redis_key(key)
            per_node.setdefault(self._owner[key_slot(rkey)], []).append(rkey)
        return per_node

    def _get_all(self, port: int, rkeys: list[bytes]) -> list[object]:
        pipe = self._clients[port].pipeline(transaction=False)
        for rk in rkeys:
            pipe.get(rk)
        return pipe.execute()

    def fetch(self, ids: list[int]) -> None:
        for port, rkeys in self._per_node(ids).items():
            self._get_all(port, rkeys)

    def rewrite(self, ids: list[int], chunk_rows: int, min_replicas: int = 1, wait_timeout_ms: int = 1000) -> float:
        """Seconds to SET the published rows' bytes back to their keys: per chunk of rows, every master's commands
        sent before any reply is read, each master's ending with WAIT on the same connection (the engine's durability,
        without its merge script)."""
        chunks = []
        for start in range(0, len(ids), chunk_rows):
            per_node = self._per_node(ids[start:start + chunk_rows])
            chunks.append({port: list(zip(rkeys, self._get_all(port, rkeys))) for port, rkeys in per_node.items()})
        conns = {port: client.connection_pool.get_connection() for port, client in self._clients.items()}
        try:
            began = time.perf_counter()
            for chunk in chunks:
                for port, pairs in chunk.items():
                    commands = [("SET", rk, blob) for rk, blob in pairs] + [("WAIT", min_replicas, wait_timeout_ms)]
                    conns[port].send_packed_command(conns[port].pack_commands(commands))
                for port, pairs in chunk.items():
                    replies = [conns[port].read_response() for _ in range(len(pairs) + 1)]
                    if replies[-1] < min_replicas:
                        raise RuntimeError(f"WAIT on master {port}: {replies[-1]} replicas acknowledged, {min_replicas} wanted")
            return time.perf_counter() - began
        finally:
            for port, conn in conns.items():
                self._clients[port].connection_pool.release(conn)


async def _in_flight(targets: list[str], requests: list[bytes], in_flight: int) -> dict[str, float]:
    channels = [grpc.aio.insecure_channel(t) for t in targets]
    calls = [c.unary_unary(GET_METHOD) for c in channels]
    latencies: list[float] = []
    queue = iter(enumerate(requests))

    async def worker() -> None:
        for i, request in queue:
            t = time.perf_counter_ns()
            await calls[i % len(calls)](request, timeout=10)
            latencies.append((time.perf_counter_ns() - t) / 1000)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - began
    for c in channels:
        await c.close()
    return stats(latencies, elapsed)


def sequential_case(name: str, state: cluster.ClusterState, echo_target: str, floor: RedisFloor, entities: int, per_call: int,
                    calls: int, rounds: int = 3) -> dict[str, object]:
    requests = build_requests(per_call, entities, calls, seed=per_call)
    rng = random.Random(per_call)
    ids = [[rng.randint(1, entities) for _ in range(per_call)] for _ in range(calls)]
    with grpc.insecure_channel(state.targets[0]) as fsd_channel, grpc.insecure_channel(echo_target) as echo_channel:
        get = fsd_channel.unary_unary(GET_METHOD)
        reply_size = len(get(requests[0], timeout=10))
        echo = echo_channel.unary_unary(ECHO_METHOD)
        echo_reqs = echo_requests(requests, reply_size)
        sides: dict[str, list[dict[str, float]]] = {"echo": [], "redis_floor": [], "fsd": []}
        per_round = calls // rounds
        for r in range(rounds):  # alternate, so drift on a shared machine hits every side alike
            part = slice(r * per_round, (r + 1) * per_round)
            sides["echo"].append(timed(lambda q: echo(q, timeout=10), echo_reqs[part]))
            sides["redis_floor"].append(timed(floor.fetch, ids[part]))
            sides["fsd"].append(timed(lambda q: get(q, timeout=10), requests[part]))
    merged = {side: {k: statistics.median(run[k] for run in runs) for k in runs[0]} for side, runs in sides.items()}
    bound = merged["echo"]["p99_us"] + merged["redis_floor"]["p99_us"]
    return {"case": name, **merged, "fsd_p99_over_echo_plus_floor": merged["fsd"]["p99_us"] / bound}


def publish_case(state: cluster.ClusterState, entities: int) -> dict[str, float]:
    with Client(state.targets[0], timeout=60) as client:
        seconds, values = dataset.prepare(client, entities, chunk_rows=PUBLISH_CHUNK_ROWS)
    return {"rows_per_s": entities / seconds, "values_per_s": values / seconds, "seconds": seconds}


def switch_case(state: cluster.ClusterState, switches: int) -> dict[str, float]:
    spec = GroupSpec("switch", (EntityKeySpec("id", KeyType.INT64),), (FeatureSpec("x", DType.DOUBLE, transformation="a"),))
    row = pa.table({"id": pa.array([1], pa.int64()), "event_timestamp": pa.array([time.time_ns() // 1000], TS), "x": [1.0]})
    with Client(state.targets[0]) as writer:
        writer.apply([spec])
        writer.publish("switch", row)
        writer.apply([GroupSpec(spec.name, spec.entity_keys, (FeatureSpec("x", DType.DOUBLE, transformation="b"),))])
        writer.publish("switch", row, feature_versions={"x": 2})
    readers = [Client(t) for t in state.targets]
    times = []
    target_version = 2
    try:
        with Client(state.targets[0]) as writer:
            for _ in range(switches):
                writer.promote("switch", "x", target_version, force=True)
                returned = time.perf_counter()
                pending = set(range(len(readers)))
                while pending:
                    for i in list(pending):
                        if readers[i].get_features(["switch:x"], {"id": [1]})["switch:x"].version == target_version:
                            pending.discard(i)
                times.append((time.perf_counter() - returned) * 1000)
                target_version = 1 if target_version == 2 else 2
    finally:
        for r in readers:
            r.close()
    return {"switches": len(times), "p50_ms": statistics.median(times), "p99_ms": percentile(times, 99), "max_ms": max(times)}


def failover_case(state: cluster.ClusterState) -> dict[str, float]:
    masters = [n for n in state.redis if redis.Redis(port=int(n["port"])).execute_command("ROLE")[0] == b"master"]
    victim = masters[0]
    probe = redis.Redis(port=int(victim["port"]))
    slots = probe.execute_command("CLUSTER", "SLOTS")
    owned = next(int(s) for s, e, m, *_ in slots if int(m[1]) == int(victim["port"]))
    probe.close()
    entity = next(i for i in range(1, 10**6) if key_slot(redis_key(codec.entity_keys(1, codec.encode_entities([[i]], [False]))[0])) == owned)
    row = lambda k: pa.table({"entity_id": pa.array([entity], pa.int64()), "event_timestamp": pa.array([time.time_ns() // 1000], TS),  # noqa: E731
                              **{f: [float(k)] for f in dataset.FEATURES}})
    with Client(state.targets[0], timeout=5) as client:
        client.publish(dataset.GROUP, row(0))
        os.kill(int(victim["pid"]), signal.SIGKILL)
        killed = time.perf_counter()
        restarted = False
        attempts = 0
        while True:
            if not restarted and time.perf_counter() - killed > 1.0:
                victim["pid"] = cluster.start_redis_node(Path(state.dir), int(victim["port"]))
                restarted = True
            attempts += 1
            try:
                client.publish(dataset.GROUP, row(attempts))
                break
            except Exception:  # noqa: BLE001 - refused until the failover completes and a replica is back
                time.sleep(0.1)
    return {"writes_acknowledged_again_s": time.perf_counter() - killed, "refused_attempts": attempts - 1}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--switches", type=int, default=100)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    require_native_codec()
    root = Path(tempfile.mkdtemp(prefix="fsd-bench-cluster-"))
    state = cluster.up(root, replicas=2, redis_masters=3)
    echo_proc, echo_port = start_echo(root)
    echo_target = f"127.0.0.1:{echo_port}"
    results: dict[str, object] = {"machine": os.cpu_count(), "entities": args.entities}
    try:
        results["publish"] = publish_case(state, args.entities)
        floor = RedisFloor(state)
        floor_seconds = floor.rewrite(list(range(1, args.entities + 1)), PUBLISH_CHUNK_ROWS)
        results["publish"].update(redis_floor_seconds=floor_seconds, over_redis_floor=results["publish"]["seconds"] / floor_seconds)
        results["sequential"] = [sequential_case("1x10 sequential", state, echo_target, floor, args.entities, 1, args.calls),
                                 sequential_case("100x10 sequential", state, echo_target, floor, args.entities, 100, max(300, args.calls // 5))]
        requests = build_requests(1, args.entities, args.calls * 2, seed=7)
        one = asyncio.run(_in_flight(state.targets[:1], requests, 16))
        two = asyncio.run(_in_flight(state.targets, requests, 16))
        results["in_flight_16"] = {"one_replica": one, "two_replicas": two, "scaling": two["qps"] / one["qps"]}
        results["version_switch"] = switch_case(state, args.switches)
        results["failover"] = failover_case(state)
    finally:
        echo_proc.terminate()
        cluster.down(root, state)
    _print(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def _print(r: dict[str, object]) -> None:
    p = r["publish"]
    print(f"\nfsd on a local Redis Cluster (3 masters + 3 replicas, appendfsync always, WAIT 1), PostgreSQL registry, "
          f"{r['entities']} entities x 10 doubles")
    print(f"publish: {p['rows_per_s']:,.0f} rows/s, {p['values_per_s']:,.0f} values/s (durable as configured); "  # type: ignore[index]
          f"bare redis-py SET+WAIT of the same rows' bytes {p['redis_floor_seconds']:.2f} s: fsd / floor = {p['over_redis_floor']:.2f}")  # type: ignore[index]
    print(f"{'case':20s} {'side':12s} {'p50 us':>9s} {'p99 us':>9s} {'p99.9 us':>9s} {'max us':>9s} {'QPS':>8s}")
    for case in r["sequential"]:  # type: ignore[union-attr]
        for side in ("echo", "redis_floor", "fsd"):
            s = case[side]
            print(f"{case['case']:20s} {side:12s} {s['p50_us']:9.0f} {s['p99_us']:9.0f} {s['p999_us']:9.0f} {s['max_us']:9.0f} {s['qps']:8.0f}")
        print(f"{'':20s} fsd p99 / (echo p99 + Redis-floor p99) = {case['fsd_p99_over_echo_plus_floor']:.2f}")
    f = r["in_flight_16"]
    print(f"1x10, 16 in flight: one replica {f['one_replica']['qps']:,.0f} QPS (p99 {f['one_replica']['p99_us']:.0f} us), "  # type: ignore[index]
          f"two replicas {f['two_replicas']['qps']:,.0f} QPS (p99 {f['two_replicas']['p99_us']:.0f} us): scaling {f['scaling']:.2f}x")  # type: ignore[index]
    v = r["version_switch"]
    print(f"version switch (promote returned -> every replica serves it), {v['switches']} switches: p50 {v['p50_ms']:.1f} ms, "  # type: ignore[index]
          f"p99 {v['p99_ms']:.1f} ms, max {v['max_ms']:.1f} ms")  # type: ignore[index]
    o = r["failover"]
    print(f"failover: writes to the killed master's slots acknowledged again after {o['writes_acknowledged_again_s']:.1f} s "  # type: ignore[index]
          f"({o['refused_attempts']} refused attempts; node restarted after 1 s)")  # type: ignore[index]


if __name__ == "__main__":
    sys.exit(main())
