"""Load shedding at twice capacity: how fast refusals come back, whether admitted calls complete, goodput.

    python -m loadtests.bench_shedding [--entities 100000] [--per-call 1000] [--seconds 10] [--overload 2.0] [--env K=V ...]

Capacity is measured first (closed loop, 16 in flight); then an open loop sends calls at `overload` x that rate
from 4 connections, each with a 5 s deadline, without waiting for replies. Reported: refusal latency p50/p99
(RESOURCE_EXHAUSTED), admitted calls that ended CANCELLED or DEADLINE_EXCEEDED, and goodput / capacity. Goal
(issue 23): refusal p50 < 50 ms, p99 < 250 ms, no admitted call cancelled, goodput >= 0.8 x capacity.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from fsd.client import Client
from loadtests import dataset
from loadtests.bench import GET_METHOD, percentile, require_native_codec
from loadtests.bench_cores import requests_for


IN_FLIGHT = 8  # the closed loop that measures capacity


def start(data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:  # type: ignore[type-arg]
    port_file = data_dir.parent / "shed.port"
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "fsd.cli", "--log-level", "WARNING", "serve", "--data-dir", str(data_dir), "--port", "0",
                             "--port-file", str(port_file), "--metrics-port", "0"], env={**os.environ, **env},
                            stdout=open(data_dir.parent / "shed.log", "ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("fsd did not start")
        time.sleep(0.05)
    target = f"127.0.0.1:{int(port_file.read_text())}"
    with Client(target) as client:
        client.wait_ready(60)
    return proc, target


async def closed_loop(target: str, requests: list[bytes], seconds: float) -> float:
    channels = [grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(4)]
    calls = [c.unary_unary(GET_METHOD) for c in channels]
    done = 0
    end = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        nonlocal done
        while time.perf_counter() < end:
            try:
                await calls[i % 4](requests[(done + i) % len(requests)], timeout=30)
            except grpc.aio.AioRpcError as err:  # a low max_concurrent_rpcs refuses some of the closed loop too
                if err.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                continue
            done += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(IN_FLIGHT)))
    for c in channels:
        await c.close()
    return done / (time.perf_counter() - began)


LOOP_LAG_MS: list[float] = []  # the measuring client's own event-loop delay, sampled every 10 ms


async def _watch_lag(stop: asyncio.Event) -> None:
    while not stop.is_set():
        began = time.perf_counter()
        await asyncio.sleep(0.01)
        LOOP_LAG_MS.append((time.perf_counter() - began - 0.01) * 1000)


async def open_loop(target: str, requests: list[bytes], rate: float, seconds: float, connections: int = 4) -> list[tuple[str, float]]:
    channels = [grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(connections)]
    calls = [c.unary_unary(GET_METHOD) for c in channels]
    results: list[tuple[str, float]] = []
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_lag(stop))

    async def one(i: int) -> None:
        began = time.perf_counter()
        try:
            await calls[i % connections](requests[i % len(requests)], timeout=5.0)
            outcome = "OK"
        except grpc.aio.AioRpcError as err:
            outcome = err.code().name
        results.append((outcome, time.perf_counter() - began))

    tasks = []
    began = time.perf_counter()
    n = 0
    while time.perf_counter() - began < seconds:
        due = began + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
        n += 1
    await asyncio.gather(*tasks)
    stop.set()
    await watcher
    for c in channels:
        await c.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--per-call", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--overload", type=float, default=2.0)
    parser.add_argument("--env", action="append", default=[], help="daemon environment, e.g. FSD_SERVER_MAX_CONCURRENT_RPCS=16")
    parser.add_argument("--connections", type=int, default=4, help="of the open loop")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    require_native_codec()
    env = dict(e.split("=", 1) for e in args.env)
    work = Path(tempfile.mkdtemp(prefix="fsd-bench-shed-"))
    proc, target = start(work / "data", env)
    try:
        with Client(target, timeout=300) as client:
            dataset.prepare(client, args.entities)
        requests = requests_for(args.per_call, args.entities, 300, seed=3)
        capacity = asyncio.run(closed_loop(target, requests, min(5.0, args.seconds)))
        results = asyncio.run(open_loop(target, requests, capacity * args.overload, args.seconds, args.connections))
    finally:
        proc.terminate()
        proc.wait(60)
    refused = sorted(d * 1000 for o, d in results if o == "RESOURCE_EXHAUSTED")
    ok = [d * 1000 for o, d in results if o == "OK"]
    lost = sum(1 for o, _ in results if o in ("CANCELLED", "DEADLINE_EXCEEDED"))
    other = {o for o, _ in results} - {"OK", "RESOURCE_EXHAUSTED", "CANCELLED", "DEADLINE_EXCEEDED"}
    goodput = len(ok) / args.seconds
    report = {"capacity_qps": capacity, "offered_qps": capacity * args.overload, "calls": len(results), "ok": len(ok), "refused": len(refused),
              "admitted_lost": lost, "other": sorted(other), "goodput_ratio": goodput / capacity,
              "refusal_p50_ms": statistics.median(refused) if refused else None, "refusal_p99_ms": percentile(refused, 99) if refused else None,
              "ok_p50_ms": statistics.median(ok) if ok else None, "ok_p99_ms": percentile(ok, 99) if ok else None, "env": env,
              "client_loop_lag_p50_ms": statistics.median(LOOP_LAG_MS) if LOOP_LAG_MS else None,
              "client_loop_lag_p99_ms": percentile(LOOP_LAG_MS, 99) if LOOP_LAG_MS else None}
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
