"""End-to-end sync throughput: offline Parquet -> `fsd sync` (a separate process) -> online (validated, WAL-synced).

    python -m loadtests.bench_sync [--entities 100000] [--memory-mib 512 64 ...]

Each sync starts from an empty online store (a fresh daemon over the same offline store), so every run moves
every value. Prints values/s of the whole command (process start included) and the command's peak RSS; with a
budget smaller than the run's rows it goes entity partition by entity partition. Baseline in the same run: a
plain `Publish` of the same table, which is what the loader's one wide stream costs at best.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fsd.client import Client
from fsd.offline.store import OfflineStore
from fsd.client.training import ingest_offline
from loadtests import dataset
from loadtests.bench import require_native_codec, start_daemon


_MEASURED = ("import resource, sys\nfrom fsd.cli import main\ncode = main(sys.argv[1:])\n"
             "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\nsys.exit(code)")


def _sync_command(target: str, offline: Path, memory_mib: int) -> tuple[float, float, dict[str, object]]:
    """(seconds, the command's own peak RSS in MiB, the run) of `fsd sync bench` in its own process."""
    began = time.perf_counter()
    got = subprocess.run([sys.executable, "-c", _MEASURED, "sync", dataset.GROUP, "--target", target, "--offline-root", str(offline),
                          "--memory-mib", str(memory_mib), "--output", "json"], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - began
    if got.returncode != 0:
        raise RuntimeError(f"fsd sync failed: {got.stderr[-2000:]}")
    return seconds, int(got.stderr.strip().splitlines()[-1]) / 1024, json.loads(got.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--memory-mib", type=int, nargs="+", default=[512])
    args = parser.parse_args()
    require_native_codec()
    work = Path(tempfile.mkdtemp(prefix="fsd-sync-bench-"))
    table = dataset.table(1, args.entities)
    offline = work / "offline"
    os.environ["FSD_STORE_OFFLINE_ROOT"] = str(offline)  # every fresh daemon shares the one offline store
    try:
        for round_ in range(len(args.memory_mib) + 1):
            data = work / f"data-{round_}"
            daemon, port, _ = start_daemon(data, work / "daemon.log")
            target = f"127.0.0.1:{port}"
            try:
                with Client(target, timeout=600) as client:
                    client.apply([dataset.group_spec()])
                    if round_ == 0:
                        began = time.perf_counter()
                        ingest_offline(client, OfflineStore(offline), dataset.GROUP, table)
                        ingest_s = time.perf_counter() - began
                        print(f"offline ingest: {args.entities} rows x 10 features in {ingest_s:.2f} s = {args.entities / ingest_s:,.0f} rows/s")
                        began = time.perf_counter()
                        baseline = client.publish(dataset.GROUP, table, chunk_rows=20_000)
                        publish_s = time.perf_counter() - began
                        print(f"baseline, Publish of the same table: {baseline.values_written:,} values in {publish_s:.2f} s = "
                              f"{baseline.values_written / publish_s:,.0f} values/s")
                        continue
                    memory = args.memory_mib[round_ - 1]
                    seconds, peak, run = _sync_command(target, offline, memory)
                    values = int(run["values_written"])  # type: ignore[arg-type]
                    print(f"fsd sync (--memory-mib {memory}): {values:,} values in {seconds:.2f} s = {values / seconds:,.0f} values/s "
                          f"({values / seconds / (baseline.values_written / publish_s):.2f} x Publish), peak RSS {peak:,.0f} MiB, {run['outcome']}")
            finally:
                daemon.terminate()
                daemon.wait(30)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
