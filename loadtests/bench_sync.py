"""End-to-end sync throughput: offline Parquet -> `sync_group` -> online (validated, WAL-synced).

    python -m loadtests.bench_sync [--entities 100000]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fsd.client import Client
from fsd.offline.store import OfflineStore
from fsd.sync.loader import sync_group
from fsd.training import ingest_offline
from loadtests import dataset
from loadtests.bench import require_native_codec, start_daemon


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    args = parser.parse_args()
    require_native_codec()
    work = Path(tempfile.mkdtemp(prefix="fsd-sync-bench-"))
    daemon, port, _ = start_daemon(work / "data", work / "daemon.log")
    try:
        with Client(f"127.0.0.1:{port}", timeout=600) as client:
            client.apply([dataset.group_spec()])
            store = OfflineStore(work / "offline")
            table = dataset.table(1, args.entities)
            began = time.perf_counter()
            ingest_offline(client, store, dataset.GROUP, table)
            ingest_s = time.perf_counter() - began
            began = time.perf_counter()
            run = sync_group(client, store, dataset.GROUP)
            sync_s = time.perf_counter() - began
        values = run.values_written
        print(f"offline ingest: {args.entities} rows x 10 features in {ingest_s:.2f} s = {args.entities / ingest_s:.0f} rows/s")
        print(f"sync offline -> online: {run.rows_read} feature rows, {values} values in {sync_s:.2f} s = "
              f"{run.rows_read / sync_s:.0f} feature rows/s, {values / sync_s:.0f} values/s ({run.outcome})")
    finally:
        daemon.terminate()
        daemon.wait(30)


if __name__ == "__main__":
    main()
