"""Computed features against their precomputed twins, same daemon, same run.

    python -m loadtests.bench_computed [--events 200000] [--entities 10000] [--calls 1000] [--labels 100000] [--functions numeric|mixed]

1. PushEvents, durable (event log fsynced, tiles synced), beside a Publish of the same columns and rows to a
   precomputed group: rows/s of each and the ratio.
2. GetFeatures of 10 computed features (1×10 and 100×10, sequential) beside 10 precomputed features of the same
   entities, after one read of every entity on both sides (steady state: warm row caches; a computed row is then
   recombined only when its blob changes or time enters a new tile): p50/p99/p99.9 µs and the p99 ratio.
3. Training values: `--labels` label rows point-in-time over the pushed events (fsd's fold from the event log)
   beside DuckDB's window query over the same events (a count and a sum in the hour before each label, without
   fsd's tiles, arrival times or lateness), seconds each.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from fsd.client import Client
from fsd.registry.definitions import load_text
from loadtests.bench import percentile, require_native_codec, start_daemon
from loadtests.bench_computed_offline import duckdb_window

TS = pa.timestamp("us", tz="UTC")
MIXED = [("count", ""), ("sum", "amount"), ("mean", "amount"), ("min", "amount"), ("max", "amount"), ("last", "amount"),
         ("count_distinct", "merchant"), ("count", "amount"), ("sum", "amount"), ("max", "amount")]
NUMERIC = [("count", ""), ("sum", "amount"), ("mean", "amount"), ("min", "amount"), ("max", "amount"), ("count", "amount"),
           ("sum", "amount"), ("max", "amount"), ("min", "amount"), ("mean", "amount")]


def repo(funcs: list[tuple[str, str]]) -> str:
    return REPO % (
        "\n".join(f"      - {{name: f{i}, dtype: {'int64' if fn in ('count', 'count_distinct') else 'double'}, "
                  f"aggregation: {{function: {fn}, {'column: ' + col + ', ' if col else ''}window: {1 + i % 2}h}}}}" for i, (fn, col) in enumerate(funcs)),
        "\n".join([f"      - {{name: f{i}, dtype: double}}" for i in range(10)] + ["      - {name: amount, dtype: double}", "      - {name: merchant, dtype: string}"]),
    )


REPO = """
feature_groups:
  - name: activity
    entity_keys: [{name: card_id, type: int64}]
    max_age: 2h
    event_source: {columns: {amount: double, merchant: string}, allowed_lateness: 1h}
    features:
%s
  - name: plain
    entity_keys: [{name: card_id, type: int64}]
    features:
%s
"""


def event_table(n: int, entities: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    now = time.time_ns() // 1000
    return pa.table({"card_id": pa.array(rng.integers(1, entities + 1, n), pa.int64()),
                     "event_timestamp": pa.array(now - rng.integers(0, 3_000_000_000, n), pa.int64()).cast(TS),
                     "amount": rng.random(n) * 100, "merchant": pa.array([f"m{x}" for x in rng.integers(0, 50, n)])})


def reads(client: Client, refs: list[str], per_call: int, entities: int, calls: int) -> dict[str, float]:
    rng = random.Random(3)
    latencies = []
    for _ in range(calls):
        ids = [rng.randint(1, entities) for _ in range(per_call)]
        t = time.perf_counter()
        client.get_features(refs, {"card_id": ids})
        latencies.append((time.perf_counter() - t) * 1e6)
    latencies.sort()
    return {"p50": statistics.median(latencies), "p99": percentile(latencies, 99), "p999": percentile(latencies, 99.9)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--labels", type=int, default=100_000)
    parser.add_argument("--functions", choices=("numeric", "mixed"), default="numeric",
                        help="numeric: count/sum/mean/min/max (the compiled fold); mixed: with last and count_distinct (the Python fold)")
    args = parser.parse_args()
    funcs = NUMERIC if args.functions == "numeric" else MIXED
    require_native_codec()
    work = Path(tempfile.mkdtemp(prefix="fsd-bench-computed-"))
    proc, port, _ = start_daemon(work / "data", work / "daemon.log", "--metrics-port", "0")
    target = f"127.0.0.1:{port}"
    try:
        with Client(target, timeout=600) as client:
            client.wait_ready(60)
            client.apply(load_text(repo(funcs)))
            events = event_table(args.events, args.entities, 1)
            began = time.perf_counter()
            pushed = client.push_events("activity", events, chunk_rows=50_000)
            push_s = time.perf_counter() - began
            plain = events.select(["card_id", "event_timestamp", "amount", "merchant"])
            began = time.perf_counter()
            client.publish("plain", plain, chunk_rows=50_000)
            publish_s = time.perf_counter() - began
            print(f"PushEvents: {pushed.rows_accepted} events in {push_s:.2f} s = {pushed.rows_accepted / push_s:,.0f} events/s (durable: log + tiles, "
                  f"{len(funcs)} {args.functions} computed features); Publish of the same {plain.num_rows} rows: {plain.num_rows / publish_s:,.0f} rows/s; "
                  f"push/publish = {(pushed.rows_accepted / push_s) / (plain.num_rows / publish_s):.2f}")
            client.publish("plain", pa.table({"card_id": pa.array(range(1, args.entities + 1), pa.int64()),
                                              "event_timestamp": pa.array([dt.datetime.now(dt.timezone.utc)] * args.entities, TS),
                                              **{f"f{i}": np.random.default_rng(i).random(args.entities) for i in range(10)}}))
            for first in range(1, args.entities + 1, 100):  # one read of every entity on both sides first: steady state, warm caches
                ids = list(range(first, min(first + 100, args.entities + 1)))
                client.get_features([f"plain:f{i}" for i in range(10)], {"card_id": ids})
                client.get_features([f"activity:f{i}" for i in range(10)], {"card_id": ids})
            print(f"{'case':<10} {'side':<12} {'p50 µs':>8} {'p99 µs':>8} {'p99.9 µs':>9}")
            for per_call in (1, 100):
                calls = args.calls if per_call == 1 else max(100, args.calls // 5)
                pre = reads(client, [f"plain:f{i}" for i in range(10)], per_call, args.entities, calls)
                comp = reads(client, [f"activity:f{i}" for i in range(10)], per_call, args.entities, calls)
                for side, r in (("precomputed", pre), ("computed", comp)):
                    print(f"{per_call}x10{'':<6} {side:<12} {r['p50']:>8.0f} {r['p99']:>8.0f} {r['p999']:>9.0f}")
                print(f"{per_call}x10 computed/precomputed p99: {comp['p99'] / pre['p99']:.2f}x")
            labels = pa.table({"card_id": pa.array(np.random.default_rng(9).integers(1, args.entities + 1, args.labels), pa.int64()),
                               "event_timestamp": pa.array([dt.datetime.now(dt.timezone.utc)] * args.labels, TS)})
            began = time.perf_counter()
            client.get_historical_features(labels, ["activity:f0", "activity:f1"])
            fold_s = time.perf_counter() - began
        window = duckdb_window(events, labels)
        duck = (f"; DuckDB's window join over the same events: {window[0]:.2f} s (fsd/DuckDB {fold_s / window[0]:.1f}x)" if window
                 else "; DuckDB not installed (pip install 'fsd[duckdb]')")
        print(f"training values: {args.labels} labels x 2 computed features over {args.events} events: {fold_s:.2f} s{duck}")
    finally:
        proc.terminate()
        proc.wait(60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
