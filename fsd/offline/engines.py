"""The point-in-time engines behind training sets, chosen by name: the same semantics on each.

local   numpy and the native as-of kernel; in memory when the set fits the budget, else out of core (hash
        partitions spilled to disk, merged back in input order) — the default and the fastest here.
duckdb  DuckDB's ASOF JOIN over the Parquet layout (pip install 'fsd[duckdb]'), spilling under its memory limit.
spark   Apache Spark (pip install 'fsd[spark]', JDK 17+): the same retrieval on a cluster (FSD_SPARK_MASTER).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from fsd.errors import InvalidArgument
from fsd.offline.partitioned import DEFAULT_MEMORY_BUDGET, DatasetSummary
from fsd.offline.retrieval import FeatureVersion
from fsd.offline.store import OfflineStore

ENGINES = ("local", "duckdb", "spark")


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise InvalidArgument(f"engine {engine[:40]!r} is not one of {', '.join(ENGINES)}", field="engine")
    return engine


def _as_table(entity_rows: pa.Table | Path) -> pa.Table:
    if isinstance(entity_rows, pa.Table):
        return entity_rows
    import pyarrow.parquet as pq

    return pq.read_table(entity_rows)


def historical_table(engine: str, store: OfflineStore, entity_rows: pa.Table, features: Sequence[FeatureVersion], *,
                     as_of_micros: int | None = None, with_status: bool = True) -> pa.Table:
    """The point-in-time table in memory, from the named engine."""
    if check_engine(engine) == "duckdb":
        from fsd.offline import duckdb_engine

        return duckdb_engine.get_historical_features(store, entity_rows, features, as_of_micros=as_of_micros, with_status=with_status)
    if engine == "spark":
        from fsd.offline import spark_engine

        return spark_engine.get_historical_features(store, entity_rows, features, as_of_micros=as_of_micros, with_status=with_status)
    from fsd.offline.retrieval import get_historical_features

    return get_historical_features(store, entity_rows, features, as_of_micros=as_of_micros, with_status=with_status)


def write_training_set(engine: str, store: OfflineStore, entity_rows: pa.Table | Path, features: Sequence[FeatureVersion], out: Path, *,
                       as_of_micros: int | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> DatasetSummary:
    """The training set written to the Parquet file `out` by the named engine (entity rows: a table or a Parquet file)."""
    if check_engine(engine) == "duckdb":
        from fsd.offline import duckdb_engine

        return duckdb_engine.write_training_set(store, _as_table(entity_rows), features, out, as_of_micros=as_of_micros)
    if engine == "spark":
        from fsd.offline import spark_engine

        return spark_engine.write_training_set(store, _as_table(entity_rows), features, out, as_of_micros=as_of_micros)
    from fsd.offline import partitioned

    return partitioned.write_training_set(store, entity_rows, features, out, as_of_micros=as_of_micros, memory_budget=memory_budget)
