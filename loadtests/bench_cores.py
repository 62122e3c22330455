"""Many-core serving benchmark: `fsd serve --workers N` against N bare gRPC echo processes sharing one port.

    python -m loadtests.bench_cores [--workers 1,2,4,8] [--load-procs 1,4,8] [--entities 100000] [--seconds 5] [--json out.json]

For each N: fsd with N serving workers (one data dir, prepared once) and, in the same run, N echo processes on one
port with SO_REUSEPORT (the transport alone: a fixed reply the size of fsd's). P load-generator processes each
keep 16 calls in flight over 4 connections for a fixed time, for 1x10 and 100x10 GetFeatures. Reported: QPS,
p50/p99/p99.9, and the server side's cores busy (CPU seconds of the server processes over the wall time). Also:
sequential 1x10 p99 and publish throughput per N. Runs unchanged on 2 cores and on 64; quote the ratios.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent import futures
from pathlib import Path

import grpc
import psutil

from fsd.client import Client
from fsd.v1 import serving_pb2
from loadtests import dataset
from loadtests.bench import GET_METHOD, ECHO_METHOD, percentile, require_native_codec

IN_FLIGHT = 16
CHANNELS = 4


# --- the echo side: N processes on one port -------------------------------------------------------------------


def serve_echo(port: int) -> None:
    replies: dict[int, bytes] = {}

    def call(request: bytes, context: grpc.ServicerContext) -> bytes:
        size = int.from_bytes(request[:4], "big")
        reply = replies.get(size)
        return reply if reply is not None else replies.setdefault(size, b"x" * size)

    handler = grpc.method_handlers_generic_handler("bench.Echo", {"Call": grpc.unary_unary_rpc_method_handler(call)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 1)])
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_echoes(count: int) -> tuple[list[subprocess.Popen], int]:  # type: ignore[type-arg]
    port = free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "loadtests.bench_cores", "--serve-echo", str(port)]) for _ in range(count)]
    deadline = time.monotonic() + 30
    while True:
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                channel.unary_unary(ECHO_METHOD)((100).to_bytes(4, "big"), timeout=1)
            break
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise RuntimeError("echo servers did not start") from None
            time.sleep(0.1)
    time.sleep(0.5)  # every process listening before the load starts
    return procs, port


# --- the fsd side ------------------------------------------------------------------------------------------------


def start_fsd(data_dir: Path, workers: int, log: Path) -> tuple[subprocess.Popen, int]:  # type: ignore[type-arg]
    port_file = data_dir.parent / f"fsd-{workers}.port"
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "fsd.cli", "--log-level", "WARNING", "serve", "--data-dir", str(data_dir), "--port", "0",
                             "--port-file", str(port_file), "--workers", str(workers), "--metrics-port", "0"],
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"fsd --workers {workers} did not start; see {log}")
        time.sleep(0.05)
    port = int(port_file.read_text())
    with Client(f"127.0.0.1:{port}") as client:
        client.wait_ready(60)
    return proc, port


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of these processes and all their children (a supervisor's workers)."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for p in (root, *root.children(recursive=True)):
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


# --- load ---------------------------------------------------------------------------------------------------------


def requests_for(per_call: int, entities: int, count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [serving_pb2.GetFeaturesRequest(entities=[serving_pb2.EntityColumn(name="entity_id", int64_values={"values": [
        rng.randint(1, entities) for _ in range(per_call)]})], features=dataset.REFS).SerializeToString() for _ in range(count)]


async def _drive(target: str, method: str, requests: list[bytes], seconds: float) -> list[float]:
    channels = [grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(CHANNELS)]
    calls = [c.unary_unary(method) for c in channels]
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        n = i
        while time.perf_counter() < end:
            request = requests[n % len(requests)]
            n += IN_FLIGHT
            began = time.perf_counter_ns()
            await calls[i % CHANNELS](request, timeout=30)
            latencies.append((time.perf_counter_ns() - began) / 1000)

    await asyncio.gather(*(worker(i) for i in range(IN_FLIGHT)))
    for channel in channels:
        await channel.close()
    return latencies


def generate(spec: str) -> None:
    """A load-generator process: prints its latencies (µs) as JSON."""
    job = json.loads(spec)
    requests = requests_for(job["per_call"], job["entities"], 500, job["seed"])
    if job["reply_size"]:
        requests = [job["reply_size"].to_bytes(4, "big") + r[4:] for r in requests]
    print(json.dumps(asyncio.run(_drive(job["target"], job["method"], requests, job["seconds"]))))


def load(target: str, method: str, per_call: int, entities: int, procs: int, seconds: float, reply_size: int, servers: list[int]) -> dict[str, float]:
    jobs = [json.dumps({"target": target, "method": method, "per_call": per_call, "entities": entities, "seed": i * 31 + per_call,
                        "seconds": seconds, "reply_size": reply_size}) for i in range(procs)]
    gens = [subprocess.Popen([sys.executable, "-m", "loadtests.bench_cores", "--generate", job], stdout=subprocess.PIPE) for job in jobs]
    time.sleep(0.3)  # let the generators start up before the measured window is taken on the server side
    cpu0, wall0 = cpu_seconds(servers), time.perf_counter()
    outputs = [g.communicate(timeout=seconds + 120)[0] for g in gens]
    cpu1, wall1 = cpu_seconds(servers), time.perf_counter()
    latencies = [x for out in outputs for x in json.loads(out)]
    return {"calls": len(latencies), "qps": len(latencies) / seconds, "p50_us": statistics.median(latencies),
            "p99_us": percentile(latencies, 99), "p999_us": percentile(latencies, 99.9),
            "cores": (cpu1 - cpu0) / max(1e-9, wall1 - wall0 - 0.3)}


def sequential_p99(target: str, method: str, requests: list[bytes]) -> float:
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(method)
        for r in requests[:100]:
            call(r, timeout=10)
        latencies = []
        for r in requests:
            began = time.perf_counter_ns()
            call(r, timeout=10)
            latencies.append((time.perf_counter_ns() - began) / 1000)
    return percentile(latencies, 99)


def publish_rate(target: str, rows: int) -> float:
    """Values per second of publishing `rows` fresh rows (10 doubles each) through this node."""
    with Client(target, timeout=300) as client:
        table = dataset.table(10_000_000, rows, seed=3)
        began = time.perf_counter()
        result = client.publish(dataset.GROUP, table, chunk_rows=20_000)
        return result.values_written / (time.perf_counter() - began)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker counts to measure (comma-separated)")
    parser.add_argument("--load-procs", default="1,2", help="load-generator process counts (each keeps 16 calls in flight)")
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--publish-rows", type=int, default=100_000)
    parser.add_argument("--json", default=None)
    parser.add_argument("--serve-echo", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--generate", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_echo:
        serve_echo(args.serve_echo)
        return 0
    if args.generate:
        generate(args.generate)
        return 0
    require_native_codec()
    worker_counts = [int(x) for x in args.workers.split(",") if x]
    proc_counts = [int(x) for x in args.load_procs.split(",") if x]
    work = Path(tempfile.mkdtemp(prefix="fsd-bench-cores-"))
    data_dir = work / "data"
    proc, port = start_fsd(data_dir, 1, work / "fsd.log")
    with Client(f"127.0.0.1:{port}", timeout=300) as client:
        dataset.prepare(client, args.entities)
    proc.terminate()
    proc.wait(60)
    report: dict[str, object] = {"cpus": os.cpu_count(), "entities": args.entities, "rows": []}
    rows: list[dict[str, object]] = report["rows"]  # type: ignore[assignment]
    seq_requests = requests_for(1, args.entities, 1000, seed=5)
    for n in worker_counts:
        fsd_proc, fsd_port = start_fsd(data_dir, n, work / "fsd.log")
        echoes, echo_port = start_echoes(n)
        target, echo_target = f"127.0.0.1:{fsd_port}", f"127.0.0.1:{echo_port}"
        try:
            for per_call in (1, 100):
                with grpc.insecure_channel(target) as channel:
                    reply_size = len(channel.unary_unary(GET_METHOD)(requests_for(per_call, args.entities, 1, 9)[0], timeout=10))
                for p in proc_counts:
                    echo = load(echo_target, ECHO_METHOD, per_call, args.entities, p, args.seconds, reply_size, [e.pid for e in echoes])
                    fsd = load(target, GET_METHOD, per_call, args.entities, p, args.seconds, 0, [fsd_proc.pid])
                    rows.append({"workers": n, "case": f"{per_call}x10", "load_procs": p, "fsd": fsd, "echo": echo,
                                 "qps_ratio": fsd["qps"] / echo["qps"], "p99_ratio": fsd["p99_us"] / echo["p99_us"]})
                    print(f"workers {n} {per_call}x10 {p}x16: fsd {fsd['qps']:.0f} QPS p99 {fsd['p99_us']:.0f} µs, {fsd['cores']:.2f} cores | "
                          f"echo {echo['qps']:.0f} QPS p99 {echo['p99_us']:.0f} µs, {echo['cores']:.2f} cores", flush=True)
            report.setdefault("sequential_1x10_p99_us", {})[str(n)] = sequential_p99(target, GET_METHOD, seq_requests)  # type: ignore[index]
            report.setdefault("publish_values_per_s", {})[str(n)] = publish_rate(target, args.publish_rows)  # type: ignore[index]
        finally:
            for e in echoes:
                e.terminate()
            fsd_proc.terminate()
            fsd_proc.wait(60)
            for e in echoes:
                e.wait(10)
    print(f"\nfsd serve --workers N against N echo processes on one port, {os.cpu_count()} cores, {args.entities} entities x 10 doubles, "
          f"P load processes x {IN_FLIGHT} in flight, {args.seconds:.0f} s each")
    print(f"{'N':>2s} {'case':7s} {'P':>2s} | {'fsd QPS':>8s} {'p50':>7s} {'p99':>7s} {'p99.9':>7s} {'cores':>5s} | {'echo QPS':>8s} {'p50':>7s} {'p99':>7s} "
          f"{'p99.9':>7s} {'cores':>5s} | {'QPS/echo':>8s} {'p99/echo':>8s}")
    for r in rows:
        f, e = r["fsd"], r["echo"]
        print(f"{r['workers']:>2} {r['case']:7s} {r['load_procs']:>2} | {f['qps']:8.0f} {f['p50_us']:7.0f} {f['p99_us']:7.0f} {f['p999_us']:7.0f} "  # type: ignore[index]
              f"{f['cores']:5.2f} | {e['qps']:8.0f} {e['p50_us']:7.0f} {e['p99_us']:7.0f} {e['p999_us']:7.0f} {e['cores']:5.2f} | "  # type: ignore[index]
              f"{r['qps_ratio']:8.2f} {r['p99_ratio']:8.2f}")
    seq = report["sequential_1x10_p99_us"]
    pub = report["publish_values_per_s"]
    print("sequential 1x10 p99 (µs): " + ", ".join(f"{n} workers {v:.0f}" for n, v in seq.items()))  # type: ignore[union-attr]
    print("publish (values/s): " + ", ".join(f"{n} workers {v:.0f}" for n, v in pub.items()))  # type: ignore[union-attr]
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
