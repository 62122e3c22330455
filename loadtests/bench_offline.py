"""Point-in-time retrieval benchmark on real Parquet: N entity rows × 10 features over M feature rows, per engine.

    python -m loadtests.bench_offline [--entity-rows 1000000] [--feature-rows 10000000] [--entities 1000000]
                                      [--engines local,duckdb,spark] [--data DIR] [--out-of-core] [--json FILE]

Feature rows are split evenly over the 10 feature versions; every value gets its status. Each engine runs in a
fresh process, so its peak RSS is its own: the local engine in memory (get_historical_features), or with
--out-of-core (or past its 1 GiB budget) written to Parquet by the out-of-core join; DuckDB likewise in memory
or streamed to Parquet; Spark (local[2]) in memory. Prints the median seconds of the runs, rows/s and peak RSS.
--data keeps the generated store for the next run (building 100M rows takes minutes).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fsd.offline.retrieval import FeatureVersion
from fsd.offline.store import OfflineStore
from loadtests.bench import require_native_codec

TS = pa.timestamp("us", tz="UTC")
DAY = 86_400_000_000
BASE = 1_750_000_000_000_000
ENGINES = ("local", "duckdb", "spark")


def feature_versions() -> list[FeatureVersion]:
    return [FeatureVersion("bench", f"f{i}", 1, ("entity_id",), 7 * DAY) for i in range(10)]


def build(root: str, feature_rows: int, entities: int, days: int = 30, seed: int = 3, chunk: int = 5_000_000) -> list[FeatureVersion]:
    """10 feature versions of feature_rows // 10 rows each, written in chunks (bounded memory at any size)."""
    rng = np.random.default_rng(seed)
    store = OfflineStore(root)
    per_feature = feature_rows // 10
    for feature in feature_versions():
        for start in range(0, per_feature, chunk):
            count = min(chunk, per_feature - start)
            times = BASE + rng.integers(0, days * DAY, count)
            store.write("bench", feature.feature, 1, pa.table({
                "entity_id": pa.array(rng.integers(1, entities + 1, count), pa.int64()),
                "event_timestamp": pa.array(times, TS),
                "created_timestamp": pa.array(times + rng.integers(0, 60_000_000, count), TS),
                "value": rng.random(count),
            }))
    return feature_versions()


def entity_rows(count: int, entities: int, seed: int = 9) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "entity_id": pa.array(rng.integers(1, entities + 1, count), pa.int64()),
        "event_timestamp": pa.array(BASE + rng.integers(0, 30 * DAY, count), TS),
    })


def prepare(data: Path, entity_count: int, feature_rows: int, entities: int) -> Path:
    """The store and entities.parquet under data, built once per shape."""
    shape = data / f"e{entity_count}-f{feature_rows}-k{entities}"
    if not (shape / "ready").exists():
        shape.mkdir(parents=True, exist_ok=True)
        build(str(shape / "offline"), feature_rows, entities)
        pq.write_table(entity_rows(entity_count, entities), shape / "entities.parquet")
        (shape / "ready").write_text("1")
    return shape


def run_child(engine: str, shape: Path, out_of_core: bool, repeats: int) -> dict[str, object]:
    """One engine's retrievals in this process; its peak RSS is the engine's."""
    from fsd.offline import engines

    store = OfflineStore(shape / "offline")
    features = feature_versions()
    source = shape / "entities.parquet"
    times, rows, phases = [], 0, {}
    for i in range(repeats):
        out = shape / f"out-{engine}-{i}.parquet"
        out.unlink(missing_ok=True)
        began = time.perf_counter()
        if out_of_core:
            summary = engines.write_training_set(engine, store, source, features, out)
            rows, partitions, phases = summary.rows, summary.partitions, summary.phase_seconds
        else:
            table = engines.historical_table(engine, store, pq.read_table(source), features, with_status=True)
            rows, partitions = table.num_rows, 1
            del table
        times.append(time.perf_counter() - began)
        out.unlink(missing_ok=True)
    took = sorted(times)[len(times) // 2]
    return {"engine": engine, "out_of_core": out_of_core, "rows": rows, "seconds": took, "runs": times, "partitions": partitions, "phase_seconds": phases,
            "rows_per_s": rows / took, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(engine: str, shape: Path, out_of_core: bool, repeats: int) -> dict[str, object]:
    """run_child in a fresh interpreter."""
    got = subprocess.run([sys.executable, "-m", "loadtests.bench_offline", "--child", engine, "--shape", str(shape),
                          "--repeats", str(repeats), *(["--out-of-core"] if out_of_core else [])],
                         capture_output=True, text=True, check=False)
    if got.returncode != 0:
        raise RuntimeError(f"{engine} run failed:\n{got.stderr[-3000:]}")
    return json.loads(got.stdout.strip().splitlines()[-1])


def run(entity_count: int, feature_rows: int, entities: int, engines: list[str], data: Path | None, out_of_core: bool,
        repeats: int) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="fsd-pit-") as scratch:
        shape = prepare(data or Path(scratch), entity_count, feature_rows, entities)
        results = []
        for engine in engines:
            result = measure(engine, shape, out_of_core, repeats)
            result.update(entity_rows=entity_count, feature_rows=feature_rows)
            results.append(result)
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entity-rows", type=int, default=1_000_000)
    parser.add_argument("--feature-rows", type=int, default=10_000_000)
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--engines", default="local", help="comma-separated: local, duckdb, spark")
    parser.add_argument("--out-of-core", action="store_true", help="write the set to Parquet through each engine's bounded path")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=None, help="keep the generated store here for later runs")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--shape", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    require_native_codec()
    if args.child:
        print(json.dumps(run_child(args.child, args.shape, args.out_of_core, args.repeats)))
        return
    engines = [e for e in args.engines.split(",") if e]
    results = run(args.entity_rows, args.feature_rows, args.entities, engines, args.data, args.out_of_core, args.repeats)
    for r in results:
        mode = f"out of core, {r['partitions']} partitions" if r["out_of_core"] else "in memory"
        print(f"point-in-time [{r['engine']}, {mode}]: {r['entity_rows']:,} entity rows x 10 features over {r['feature_rows']:,} feature rows: "
              f"median {r['seconds']:.2f} s of {len(r['runs'])} = {r['rows_per_s']:,.0f} rows/s, peak RSS {r['peak_rss_mib']:,.0f} MiB")
        if r.get("phase_seconds"):
            print("  " + ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in r["phase_seconds"].items()))  # type: ignore[union-attr]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
