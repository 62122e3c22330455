"""fsd benchmark with a same-run baseline: GetFeatures and Publish against a bare gRPC echo on this machine.

    python -m loadtests.bench [--entities 100000] [--quick] [--json out.json]

Both servers run as separate processes; the client sends pre-serialised requests and takes raw reply bytes,
so the comparison is server + transport cost. Cases alternate in rounds (echo, fsd, echo, fsd, ...) so that
drift on a shared machine hits both sides alike; quote the ratios and medians, not single absolute figures.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc

from fsd import codec
from fsd.client import Client
from fsd.v1 import serving_pb2
from loadtests import dataset

GET_METHOD = "/fsd.v1.FeatureStore/GetFeatures"
ECHO_METHOD = "/bench.Echo/Call"


@dataclass
class Row:
    case: str
    side: str
    calls: int
    p50_us: float
    p99_us: float
    qps: float
    ratio_p99: float | None = None
    ratio_qps: float | None = None
    ratio_p99_rounds: float | None = None  # median over rounds of (fsd p99 / echo p99 of the same round)


def require_native_codec() -> None:
    """Figures from the pure-Python codec say nothing about the product: refuse to measure without fsd._native
    (a source tree on sys.path shadows an installed package's compiled extension)."""
    if not codec.NATIVE:
        sys.exit("the compiled codec is not loaded: run from an installed package (pip install .), "
                 "not a bare source tree, and without FSD_NO_EXTENSIONS")


def _wait_port(port_file: Path, proc: subprocess.Popen, timeout: float = 60) -> int:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start (exit {proc.poll()})")
        time.sleep(0.02)
    return int(port_file.read_text())


def start_daemon(data_dir: Path, log: Path, *extra: str) -> tuple[subprocess.Popen, int, float]:  # type: ignore[type-arg]
    """Start `fsd serve` (with `extra` arguments); returns (process, port, seconds until health SERVING). Side files
    the daemon writes beside its port file (`.metrics`, `.http`) are `data_dir.parent / "fsd.port.<kind>"`."""
    port_file = data_dir.parent / "fsd.port"
    port_file.unlink(missing_ok=True)
    began = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fsd.cli", "--log-level", "WARNING", "serve", "--data-dir", str(data_dir), "--port", "0", "--port-file", str(port_file),
         *extra],
        stdout=open(log, "ab"), stderr=subprocess.STDOUT,
    )
    port = _wait_port(port_file, proc)
    with Client(f"127.0.0.1:{port}") as client:
        client.wait_ready(30)
    return proc, port, time.perf_counter() - began


def start_echo(workdir: Path) -> tuple[subprocess.Popen, int]:  # type: ignore[type-arg]
    port_file = workdir / "echo.port"
    proc = subprocess.Popen([sys.executable, "-m", "loadtests.echo_server", str(port_file)])
    return proc, _wait_port(port_file, proc)


def rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process in KiB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields.get("VmRSS", "0 kB").split()[0]), int(fields.get("VmHWM", "0 kB").split()[0])


def build_requests(entities_per_call: int, total_entities: int, count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        ids = [rng.randint(1, total_entities) for _ in range(entities_per_call)]
        request = serving_pb2.GetFeaturesRequest(
            entities=[serving_pb2.EntityColumn(name="entity_id", int64_values={"values": ids})], features=dataset.REFS
        )
        out.append(request.SerializeToString())
    return out


def echo_requests(requests: list[bytes], reply_size: int) -> list[bytes]:
    """Same sizes as the real requests, first 4 bytes = the reply size the echo must send."""
    return [reply_size.to_bytes(4, "big") + r[4:] if len(r) >= 4 else reply_size.to_bytes(4, "big") for r in requests]


def sequential(call, requests: list[bytes]) -> list[float]:  # type: ignore[no-untyped-def]
    latencies = []
    for request in requests:
        began = time.perf_counter_ns()
        call(request, timeout=10)
        latencies.append((time.perf_counter_ns() - began) / 1000)
    return latencies


async def _concurrent(target: str, method: str, requests: list[bytes], in_flight: int) -> tuple[list[float], float]:
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(method)
        latencies: list[float] = []
        queue = iter(requests)

        async def worker() -> None:
            for request in queue:
                began = time.perf_counter_ns()
                await call(request, timeout=10)
                latencies.append((time.perf_counter_ns() - began) / 1000)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return latencies, time.perf_counter() - began


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def run_case(name: str, fsd_target: str, echo_target: str, requests: list[bytes], reply_size: int, rounds: int, in_flight: int) -> list[Row]:
    echo_reqs = echo_requests(requests, reply_size)
    per_round = max(1, len(requests) // rounds)
    results: dict[str, tuple[list[float], float]] = {"echo": ([], 0.0), "fsd": ([], 0.0)}
    round_p99: dict[str, list[float]] = {"echo": [], "fsd": []}
    with grpc.insecure_channel(fsd_target) as fsd_channel, grpc.insecure_channel(echo_target) as echo_channel:
        calls = {"fsd": fsd_channel.unary_unary(GET_METHOD), "echo": echo_channel.unary_unary(ECHO_METHOD)}
        warm = min(200, len(requests))
        sequential(calls["fsd"], requests[:warm])
        sequential(calls["echo"], echo_reqs[:warm])
        for r in range(rounds):
            chunk = slice(r * per_round, (r + 1) * per_round)
            for side, reqs in (("echo", echo_reqs), ("fsd", requests)):
                if in_flight <= 1:
                    began = time.perf_counter()
                    lat = sequential(calls[side], reqs[chunk])
                    elapsed = time.perf_counter() - began
                else:
                    target, method = (fsd_target, GET_METHOD) if side == "fsd" else (echo_target, ECHO_METHOD)
                    lat, elapsed = asyncio.run(_concurrent(target, method, reqs[chunk], in_flight))
                acc, total = results[side]
                results[side] = (acc + lat, total + elapsed)
                round_p99[side].append(percentile(lat, 99))
    rows = []
    for side in ("echo", "fsd"):
        lat, elapsed = results[side]
        rows.append(Row(name, side, len(lat), statistics.median(lat), percentile(lat, 99), len(lat) / elapsed))
    echo, fsd = rows
    fsd.ratio_p99 = fsd.p99_us / echo.p99_us
    fsd.ratio_qps = fsd.qps / echo.qps
    # One disturbed round (a neighbour on this shared machine) moves the pooled p99 of either side; the median of
    # the per-round ratios does not.
    fsd.ratio_p99_rounds = statistics.median(f / e for f, e in zip(round_p99["fsd"], round_p99["echo"]))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="about 30-60 s: 20k entities, fewer calls")
    parser.add_argument("--calls", type=int, default=None, help="calls per case and side")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write results here")
    parser.add_argument("--curves", action="store_true", help="growth curves instead: p99 over batch sizes, point-in-time over sizes")
    parser.add_argument("--pit-sizes", default="100000,1000000,10000000", help="with --curves: entity-row counts")
    parser.add_argument("--data", type=Path, default=None, help="with --curves: keep generated offline stores here")
    parser.add_argument("--out", type=Path, default=Path("docs/performance"), help="with --curves: where the plots go")
    args = parser.parse_args()
    require_native_codec()
    if args.curves:
        from loadtests import curves

        return curves.main(args.quick, [int(s) for s in args.pit_sizes.split(",") if s], args.data, args.out, args.entities, args.rounds)
    entities = 20_000 if args.quick and args.entities == 100_000 else args.entities
    calls_small = args.calls or (1000 if args.quick else 5000)
    calls_large = max(200, calls_small // 5)

    workdir = Path(tempfile.mkdtemp(prefix="fsd-bench-"))
    data_dir = workdir / "data"
    daemon, port, _ = start_daemon(data_dir, workdir / "daemon.log")
    echo, echo_port = start_echo(workdir)
    target, echo_target = f"127.0.0.1:{port}", f"127.0.0.1:{echo_port}"
    report: dict[str, object] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "entities": entities}
    try:
        with Client(target, timeout=120) as client:
            publish_s, values = dataset.prepare(client, entities)
        report["publish"] = {"rows": entities, "values": values, "seconds": publish_s,
                             "rows_per_s": entities / publish_s, "values_per_s": values / publish_s}
        daemon.terminate()
        daemon.wait(30)
        daemon, port, cold_start = start_daemon(data_dir, workdir / "daemon.log")
        target = f"127.0.0.1:{port}"
        report["cold_start_s"] = cold_start

        rows: list[Row] = []
        cases = [
            ("1x10 sequential", 1, calls_small, 1),
            ("100x10 sequential", 100, calls_large, 1),
            ("1x10 16-in-flight", 1, calls_small * 2, 16),
            ("100x10 16-in-flight", 100, calls_large, 16),
            ("1000x10 sequential", 1000, max(100, calls_large // 4), 1),
        ]
        for name, per_call, count, in_flight in cases:
            requests = build_requests(per_call, entities, count + 200, seed=per_call * 7 + in_flight)
            with grpc.insecure_channel(target) as channel:
                reply_size = len(channel.unary_unary(GET_METHOD)(requests[0], timeout=10))
            rows.extend(run_case(name, target, echo_target, requests, reply_size, args.rounds, in_flight))
        current, peak = rss_kib(daemon.pid)
        report["daemon_rss_kib"] = {"current": current, "peak": peak}
        report["rows"] = [asdict(r) for r in rows]
        from loadtests.bench_offline import run as run_offline

        pit_rows = 20_000 if args.quick else 100_000
        report["point_in_time"] = run_offline(pit_rows, pit_rows * 10, min(entities, pit_rows), ["local"], None, False, 3)[0]
    finally:
        for proc in (daemon, echo):
            proc.terminate()
            proc.wait(30)

    print(f"\nfsd benchmark: {entities} entities x 10 double features, random keys, loopback, {os.cpu_count()} cores")
    print(f"{'case':22s} {'side':5s} {'calls':>6s} {'p50 µs':>9s} {'p99 µs':>9s} {'QPS':>9s} {'p99/echo':>9s} {'rounds':>7s} {'QPS/echo':>9s}")
    for r in rows:
        ratio_p99 = f"{r.ratio_p99:.2f}" if r.ratio_p99 is not None else ""
        rounds = f"{r.ratio_p99_rounds:.2f}" if r.ratio_p99_rounds is not None else ""
        ratio_qps = f"{r.ratio_qps:.2f}" if r.ratio_qps is not None else ""
        print(f"{r.case:22s} {r.side:5s} {r.calls:6d} {r.p50_us:9.0f} {r.p99_us:9.0f} {r.qps:9.0f} {ratio_p99:>9s} {rounds:>7s} {ratio_qps:>9s}")
    print("p99/echo: pooled over all rounds; rounds: median over rounds of the same-round p99 ratio")
    pub = report["publish"]
    print(f"\npublish: {pub['rows']} rows, {pub['values']} values in {pub['seconds']:.2f} s = "  # type: ignore[index]
          f"{pub['rows_per_s']:.0f} rows/s, {pub['values_per_s']:.0f} values/s (Arrow IPC, validated, WAL-synced)")  # type: ignore[index]
    print(f"cold start to health SERVING with {entities} entity rows ({entities * 10} feature values) on disk: {report['cold_start_s']:.2f} s")
    pit = report["point_in_time"]
    print(f"point-in-time: {pit['entity_rows']:.0f} entity rows x 10 features over {pit['feature_rows']:.0f} feature rows in "  # type: ignore[index]
          f"{pit['seconds']:.2f} s (median of 3) = {pit['rows_per_s']:.0f} rows/s, peak RSS of the retrieval's process {pit['peak_rss_mib']:.0f} MiB")  # type: ignore[index]
    rss = report["daemon_rss_kib"]
    print(f"daemon RSS after the run: {rss['current'] / 1024:.0f} MiB (peak {rss['peak'] / 1024:.0f} MiB)")  # type: ignore[index]
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
