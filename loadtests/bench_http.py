"""The Feast-compatible HTTP endpoint against gRPC, same daemon, same reads, same run.

    python -m loadtests.bench_http [--entities 20000] [--calls 2000] [--rounds 3]

One daemon (`fsd serve --http-port 0`), one dataset of 10 double features. Per case (1×10 and 100×10 entity rows ×
features, sequential): gRPC GetFeatures from one channel, then POST /get-online-features on one keep-alive
connection, alternating by round. Printed: p50/p99/p99.9 µs and QPS per side, and HTTP/gRPC ratios (median of
rounds). The HTTP side includes what an HTTP client pays: JSON encoding and parsing on both ends.
"""
from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import grpc

from fsd.client import Client
from loadtests import dataset
from loadtests.bench import GET_METHOD, percentile, require_native_codec, start_daemon


def _stats(latencies: list[float], seconds: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"p50": statistics.median(ordered), "p99": percentile(ordered, 99), "p999": percentile(ordered, 99.9), "qps": len(ordered) / seconds}


def grpc_side(target: str, bodies: list[dict], calls: int) -> dict[str, float]:  # type: ignore[type-arg]
    from fsd.v1 import serving_pb2

    requests = [serving_pb2.GetFeaturesRequest(entities=[serving_pb2.EntityColumn(name="entity_id", int64_values={"values": b["entities"]["entity_id"]})],
                                               features=b["features"]).SerializeToString() for b in bodies]
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(GET_METHOD)
        for r in requests[:50]:
            call(r)
        latencies = []
        began = time.perf_counter()
        for i in range(calls):
            t = time.perf_counter()
            call(requests[i % len(requests)], timeout=30)
            latencies.append((time.perf_counter() - t) * 1e6)
        return _stats(latencies, time.perf_counter() - began)


def http_side(port: int, bodies: list[dict], calls: int) -> dict[str, float]:  # type: ignore[type-arg]
    payloads = [json.dumps(b).encode() for b in bodies]
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Content-Type": "application/json"}

    def one(payload: bytes) -> None:
        conn.request("POST", "/get-online-features", payload, headers)
        response = conn.getresponse()
        body = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(body)

    for p in payloads[:50]:
        one(p)
    latencies = []
    began = time.perf_counter()
    for i in range(calls):
        t = time.perf_counter()
        one(payloads[i % len(payloads)])
        latencies.append((time.perf_counter() - t) * 1e6)
    conn.close()
    return _stats(latencies, time.perf_counter() - began)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    require_native_codec()
    work = Path(tempfile.mkdtemp(prefix="fsd-bench-http-"))
    proc, port, _ = start_daemon(work / "data", work / "daemon.log", "--metrics-port", "0", "--http-port", "0")
    target, http_port = f"127.0.0.1:{port}", int((work / "fsd.port.http").read_text())
    try:
        with Client(target, timeout=300) as client:
            client.wait_ready(60)
            dataset.prepare(client, args.entities)
        rng = random.Random(5)
        print(f"{'case':<8} {'side':<5} {'p50 µs':>8} {'p99 µs':>8} {'p99.9 µs':>9} {'QPS':>7}   rounds: HTTP/gRPC p50, p99, QPS")
        for per_call in (1, 100):
            bodies = [{"features": dataset.REFS, "entities": {"entity_id": [rng.randint(1, args.entities) for _ in range(per_call)]}} for _ in range(300)]
            ratios = []
            for _ in range(args.rounds):
                g = grpc_side(target, bodies, args.calls // per_call if per_call > 1 else args.calls)
                h = http_side(http_port, bodies, args.calls // per_call if per_call > 1 else args.calls)
                ratios.append((h["p50"] / g["p50"], h["p99"] / g["p99"], h["qps"] / g["qps"]))
            for side, r in (("gRPC", g), ("HTTP", h)):
                print(f"{per_call}x10{'':<4} {side:<5} {r['p50']:>8.0f} {r['p99']:>8.0f} {r['p999']:>9.0f} {r['qps']:>7.0f}")
            med = [statistics.median(x[i] for x in ratios) for i in range(3)]
            print(f"{per_call}x10    HTTP/gRPC, median of {args.rounds} rounds: p50 {med[0]:.2f}x, p99 {med[1]:.2f}x, QPS {med[2]:.2f}x")
    finally:
        proc.terminate()
        proc.wait(60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
