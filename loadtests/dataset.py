"""The standard benchmark data: N entities × 10 float features in one group, applied and published."""
from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from fsd.client import Client
from fsd.domain import DType, EntityKeySpec, FeatureSpec, GroupSpec, KeyType

GROUP = "bench"
FEATURES = [f"f{i}" for i in range(10)]
REFS = [f"{GROUP}:{name}" for name in FEATURES]


def group_spec() -> GroupSpec:
    return GroupSpec(
        name=GROUP,
        entity_keys=(EntityKeySpec("entity_id", KeyType.INT64),),
        features=tuple(FeatureSpec(name, DType.DOUBLE, nullable=False) for name in FEATURES),
        max_age_seconds=86_400,
    )


def table(start: int, count: int, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed + start)
    now = time.time_ns() // 1000
    columns: dict[str, object] = {
        "entity_id": pa.array(np.arange(start, start + count, dtype=np.int64)),
        "event_timestamp": pa.array(now - rng.integers(0, 3_600_000_000, count), type=pa.timestamp("us", tz="UTC")),
    }
    for name in FEATURES:
        columns[name] = rng.random(count)
    return pa.table(columns)


def prepare(client: Client, entities: int, chunk_rows: int = 20_000, batch: int = 200_000) -> tuple[float, int]:
    """Apply the bench group and publish `entities` rows; returns (seconds spent publishing, values written)."""
    client.apply([group_spec()], applied_by="loadtests", reason="benchmark data")
    seconds, values = 0.0, 0
    for start in range(1, entities + 1, batch):
        data = table(start, min(batch, entities + 1 - start))
        began = time.perf_counter()
        response = client.publish(GROUP, data, chunk_rows=chunk_rows)
        seconds += time.perf_counter() - began
        values += response.values_written
    return seconds, values
