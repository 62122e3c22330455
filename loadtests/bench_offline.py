"""Point-in-time retrieval benchmark on real Parquet: N entity rows × 10 features over M feature rows.

    python -m loadtests.bench_offline [--entity-rows 100000] [--feature-rows 1000000] [--entities 100000]

Feature rows are split evenly over the 10 feature versions. Prints the median seconds of three retrievals (and
the first), rows/s and the process's peak RSS.
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time

import numpy as np
import pyarrow as pa

from fsd.offline.retrieval import FeatureVersion, get_historical_features
from fsd.offline.store import OfflineStore
from loadtests.bench import require_native_codec

TS = pa.timestamp("us", tz="UTC")
DAY = 86_400_000_000
BASE = 1_750_000_000_000_000


def build(root: str, feature_rows: int, entities: int, days: int = 30, seed: int = 3) -> list[FeatureVersion]:
    rng = np.random.default_rng(seed)
    store = OfflineStore(root)
    per_feature = feature_rows // 10
    features = []
    for i in range(10):
        times = BASE + rng.integers(0, days * DAY, per_feature)
        table = pa.table({
            "entity_id": pa.array(rng.integers(1, entities + 1, per_feature), pa.int64()),
            "event_timestamp": pa.array(times, TS),
            "created_timestamp": pa.array(times + rng.integers(0, 60_000_000, per_feature), TS),
            "value": rng.random(per_feature),
        })
        store.write("bench", f"f{i}", 1, table)
        features.append(FeatureVersion("bench", f"f{i}", 1, ("entity_id",), 7 * DAY))
    return features


def run(entity_rows: int, feature_rows: int, entities: int, repeats: int = 3) -> dict[str, float]:
    """The median of `repeats` retrievals (the first, which also warms imports and thread pools, is reported too)."""
    with tempfile.TemporaryDirectory(prefix="fsd-pit-") as root:
        began = time.perf_counter()
        features = build(root, feature_rows, entities)
        built = time.perf_counter() - began
        rng = np.random.default_rng(9)
        rows = pa.table({
            "entity_id": pa.array(rng.integers(1, entities + 1, entity_rows), pa.int64()),
            "event_timestamp": pa.array(BASE + rng.integers(0, 30 * DAY, entity_rows), TS),
        })
        store = OfflineStore(root)
        times = []
        for _ in range(repeats):  # a fresh retrieval each time (nothing is cached between calls)
            began = time.perf_counter()
            out = get_historical_features(store, rows, features)
            times.append(time.perf_counter() - began)
            assert out.num_rows == entity_rows
        filled = 1 - out["bench:f0"].null_count / entity_rows
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    took = sorted(times)[len(times) // 2]
    return {"entity_rows": entity_rows, "feature_rows": feature_rows, "seconds": took, "first_seconds": times[0],
            "rows_per_s": entity_rows / took, "filled_share": filled, "peak_rss_mib": peak_mib, "write_seconds": built}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entity-rows", type=int, default=100_000)
    parser.add_argument("--feature-rows", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=100_000)
    args = parser.parse_args()
    require_native_codec()
    r = run(args.entity_rows, args.feature_rows, args.entities)
    print(f"point-in-time: {r['entity_rows']:.0f} entity rows x 10 features over {r['feature_rows']:.0f} feature rows: "
          f"median {r['seconds']:.2f} s of 3 (first {r['first_seconds']:.2f} s) = {r['rows_per_s']:.0f} rows/s "
          f"(filled {r['filled_share']:.0%}), peak RSS {r['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
