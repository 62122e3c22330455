"""Small builders shared by tests: timestamps and typed Arrow tables."""
from __future__ import annotations

import time

import pyarrow as pa

MICROS = 1_000_000


def now_micros() -> int:
    return time.time_ns() // 1000


def ts_column(micros: list[int | None]) -> pa.Array:
    return pa.array(micros, type=pa.timestamp("us", tz="UTC"))


def seconds_ago(seconds: float) -> int:
    return now_micros() - int(seconds * MICROS)


def all_types_table(ids: list[int], event_micros: list[int], **overrides: object) -> pa.Table:
    """Rows for the `all_types` group of tests/conftest.py; row i has distinct, checkable values."""
    n = len(ids)
    columns: dict[str, object] = {
        "entity_id": pa.array(ids, type=pa.int64()),
        "event_timestamp": ts_column(event_micros),
        "f_int": pa.array([i * 10 for i in ids], type=pa.int64()),
        "f_double": pa.array([i * 1.5 for i in ids], type=pa.float64()),
        "f_float": pa.array([i * 0.25 for i in ids], type=pa.float32()),
        "f_bool": pa.array([i % 2 == 0 for i in ids]),
        "f_string": pa.array([f"s{i}-é" for i in ids]),
        "f_bytes": pa.array([bytes([i % 256, 0, 255]) for i in ids], type=pa.binary()),
        "f_vec": pa.array([[float(i), -1.0, 0.5] for i in ids], type=pa.list_(pa.float32())),
        "f_required": pa.array(list(range(n)), type=pa.int64()),
    }
    columns.update(overrides)
    return pa.table(columns)
