"""Training values of computed features at scale: fsd's point-in-time fold over an event log beside DuckDB's window
join on the same data, in one run.

    python -m loadtests.bench_computed_offline [--events 10000000] [--labels 1000000] [--entities 100000]

fsd: `fsd.aggregation.offline.compute` — what `get_historical_features` and `fsd dataset create` run on the event
log they read — for a count and a sum over one hour at each label's instant (arrival order, tiles, lateness: the
semantics serving has). DuckDB: `count(*)` and `sum(amount)` of the events in the hour before each label
(a range join; no arrival times or tiles). Seconds and peak memory of each; the events span two days.
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pyarrow as pa

from fsd.aggregation.event_log import RECEIVED, ROW, SEQ
from fsd.aggregation.offline import ComputedFeature, compute
from fsd.domain.aggregation import Aggregation
from loadtests.bench import require_native_codec

TS = pa.timestamp("us", tz="UTC")
HOUR = 3_600_000_000
START = 1_780_272_000_000_000


def event_log(n: int, entities: int, seed: int) -> pa.Table:
    """An event log as PushEvents writes it: keys, event and received times, push sequence and row, the columns."""
    rng = np.random.default_rng(seed)
    event = START + np.sort(rng.integers(0, 48 * HOUR, n))
    received = event + rng.integers(0, 5_000_000, n)
    return pa.table({"card_id": pa.array(rng.integers(1, entities + 1, n), pa.int64()), "event_timestamp": pa.array(event, pa.int64()).cast(TS),
                     RECEIVED: pa.array(received, pa.int64()).cast(TS), SEQ: pa.array(np.arange(n) // 50_000, pa.int64()),
                     ROW: pa.array(np.arange(n) % 50_000, pa.int64()), "amount": np.round(rng.random(n) * 100, 2)})


def duckdb_window(events: pa.Table, labels: pa.Table) -> tuple[float, int] | None:
    """DuckDB's count and sum of `amount` over the hour before each label (a range join; no arrival times or tiles):
    (seconds, rows), or None without DuckDB."""
    try:
        import duckdb
    except ImportError:
        return None
    con = duckdb.connect()
    con.register("events", events)
    con.register("labels", labels)
    began = time.perf_counter()
    rows = con.execute("""SELECT l.card_id, l.event_timestamp, count(e.card_id), sum(e.amount) FROM labels l LEFT JOIN events e
                          ON e.card_id = l.card_id AND e.event_timestamp > l.event_timestamp - INTERVAL 1 HOUR
                          AND e.event_timestamp <= l.event_timestamp GROUP BY ALL""").fetchall()
    return time.perf_counter() - began, len(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=100_000)
    args = parser.parse_args()
    require_native_codec()
    events = event_log(args.events, args.entities, 1)
    rng = np.random.default_rng(2)
    labels = pa.table({"card_id": pa.array(rng.integers(1, args.entities + 1, args.labels), pa.int64()),
                       "event_timestamp": pa.array(START + rng.integers(HOUR, 48 * HOUR, args.labels), pa.int64()).cast(TS)})
    features = [ComputedFeature("txn_count_1h", Aggregation("count", "", 3600), 0), ComputedFeature("amount_sum_1h", Aggregation("sum", "amount", 3600), 0)]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    began = time.perf_counter()
    got = compute(events, labels, ["card_id"], "event_timestamp", features, ["amount"])
    fsd_s = time.perf_counter() - began
    fsd_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    present = int((got["txn_count_1h"].status == 1).sum())
    print(f"fsd: {args.labels:,} labels x 2 computed features over {args.events:,} events: {fsd_s:.2f} s "
          f"(peak RSS {fsd_mb:,.0f} MiB, {base:,.0f} MiB before; {present:,} labels with events)")
    duck = duckdb_window(events.select(["card_id", "event_timestamp", "amount"]), labels)
    if duck is None:
        print("DuckDB not installed (pip install 'fsd[duckdb]')")
        return 0
    duck_s, rows = duck
    duck_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"DuckDB window join, same events and labels: {duck_s:.2f} s ({rows:,} rows; peak RSS {duck_mb:,.0f} MiB); fsd/DuckDB {fsd_s / duck_s:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
