"""Daemon memory and start-up at scale: publish N entities × 10 doubles, restart, serve, report RSS.

    python -m loadtests.scale --entities 1000000 [--entities 10000000 ...]

For each N: publish throughput, cold start to health SERVING, RSS right after start, after the block-cache
warm-up, and after 2,000 random 1 × 10 lookups; plus the data directory's size. The daemon keeps values in
RocksDB (its block cache is bounded by store.block_cache_mb), never in Python objects, so RSS should stay
near the cache size plus a fixed base whatever N is.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import grpc

from fsd.client import Client
from loadtests import dataset
from loadtests.bench import GET_METHOD, build_requests, rss_kib, sequential, start_daemon


def _dir_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def measure(entities: int, workdir: Path) -> dict[str, float]:
    data_dir = workdir / f"data-{entities}"
    daemon, port, _ = start_daemon(data_dir, workdir / "daemon.log")
    try:
        with Client(f"127.0.0.1:{port}", timeout=600) as client:
            publish_s, values = dataset.prepare(client, entities, batch=500_000, chunk_rows=50_000)
    finally:
        daemon.terminate()
        daemon.wait(60)
    daemon, port, cold_start = start_daemon(data_dir, workdir / "daemon.log")
    try:
        after_start, _ = rss_kib(daemon.pid)
        time.sleep(5)  # the warm-up thread runs after SERVING; give it time at the largest sizes
        after_warm, _ = rss_kib(daemon.pid)
        requests = build_requests(1, entities, 2000, seed=5)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            latencies = sorted(sequential(channel.unary_unary(GET_METHOD), requests))
        current, peak = rss_kib(daemon.pid)
    finally:
        daemon.terminate()
        daemon.wait(60)
    return {
        "entities": entities, "values": values, "publish_values_per_s": values / publish_s, "cold_start_s": cold_start,
        "rss_after_start_mib": after_start / 1024, "rss_after_warm_mib": after_warm / 1024,
        "rss_after_lookups_mib": current / 1024, "rss_peak_mib": peak / 1024, "data_dir_mib": _dir_mib(data_dir),
        "lookup_p50_us": latencies[len(latencies) // 2], "lookup_p99_us": latencies[int(len(latencies) * 0.99)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, action="append", help="repeatable; default 1,000,000")
    parser.add_argument("--json", default=None, help="also write results here")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="fsd-scale-"))
    results = []
    try:
        for entities in args.entities or [1_000_000]:
            r = measure(entities, workdir)
            results.append(r)
            print(f"{r['entities']:>11,d} entities ({r['values']:,d} values, {r['data_dir_mib']:,.0f} MiB on disk): "
                  f"publish {r['publish_values_per_s'] / 1e6:.2f} M values/s, cold start {r['cold_start_s']:.2f} s, "
                  f"RSS {r['rss_after_start_mib']:.0f} MiB at start / {r['rss_after_warm_mib']:.0f} after warm-up / "
                  f"{r['rss_after_lookups_mib']:.0f} after lookups (peak {r['rss_peak_mib']:.0f}), "
                  f"1x10 p50 {r['lookup_p50_us']:.0f} µs p99 {r['lookup_p99_us']:.0f} µs", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
