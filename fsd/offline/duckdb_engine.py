"""The point-in-time join on DuckDB's ASOF JOIN, reading the offline store's Parquet layout directly.

Same answer as fsd.offline.retrieval (the property test against brute force runs on both): per entity row and
feature version, the row of the same entity with the greatest event time <= the row's time; among equal event
times the greatest created time, then the row written last (file name, then position in the file, as the local
engine's scan order); created after as_of is invisible; older than max age is STALE, none is NOT_FOUND.
DuckDB spills to disk under its memory limit, so it is bounded too.
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fsd.errors import FailedPrecondition
from fsd.offline.partitioned import DatasetSummary
from fsd.offline.retrieval import (
    ROW, TIME, FeatureVersion, add_status_counts, check_entity_rows, checked_key_columns, feature_columns, status_column, value_type,
)
from fsd.offline.store import OfflineStore

_BATCH_ROWS = 1 << 20


def _connect(memory_limit: str, spill_dir: str):  # type: ignore[no-untyped-def]
    try:
        import duckdb
    except ImportError:  # an optional engine: say how to get it
        raise FailedPrecondition("the duckdb engine needs the duckdb package: pip install 'fsd[duckdb]'", field="engine") from None
    return duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": spill_dir, "preserve_insertion_order": True})


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _feature_source(store: OfflineStore, feature: FeatureVersion, latest: int, as_of_micros: int | None, n: int) -> str | None:
    """The feature version's candidate rows, one per (entity, event time): the latest created, then the last written."""
    files = [str(p) for p in store.data_files(feature.group, feature.feature, feature.version)]
    if not files:
        return None
    keys = ", ".join(_quote(k) for k in feature.key_names)
    created = f" AND epoch_us(created_timestamp) <= {int(as_of_micros)}" if as_of_micros is not None else ""
    listing = "[" + ", ".join(_literal(f) for f in files) + "]"
    # arg_max over a struct (never NULL, so a NULL value still counts): a hash aggregate, not a window sort.
    return (
        f"f{n} AS (SELECT {keys}, epoch_us(event_timestamp) AS et, "
        f"arg_max(struct_pack(v := value), struct_pack(c := created_timestamp, f := filename, r := file_row_number)).v AS v "
        f"FROM read_parquet({listing}, filename = true, file_row_number = true, hive_partitioning = false) "
        f"WHERE epoch_us(event_timestamp) <= {int(latest)}{created} GROUP BY ALL)"
    )


def _query(store: OfflineStore, features: Sequence[FeatureVersion], latest: int, as_of_micros: int | None) -> str:
    """One statement: the spine ASOF LEFT JOINed with every feature version, each giving its value and status."""
    sources, joins, selects = [], [], [f"s.{ROW}"]
    for n, feature in enumerate(features):
        source = _feature_source(store, feature, latest, as_of_micros, n)
        if source is None:
            selects += [f"NULL AS v{n}", f"2::UTINYINT AS s{n}"]
            continue
        sources.append(source)
        on = " AND ".join(f"s.{_quote(f'k{features.index(feature)}_{i}')} = f{n}.{_quote(k)}" for i, k in enumerate(feature.key_names))
        joins.append(f"ASOF LEFT JOIN f{n} ON {on} AND s.{TIME} >= f{n}.et")
        stale = f"({feature.max_age_micros} > 0 AND s.{TIME} - f{n}.et > {feature.max_age_micros})"
        selects += [f"CASE WHEN f{n}.et IS NOT NULL AND NOT {stale} THEN f{n}.v END AS v{n}",
                    f"(CASE WHEN f{n}.et IS NULL THEN 2 WHEN {stale} THEN 3 ELSE 1 END)::UTINYINT AS s{n}"]
    with_clause = f"WITH {', '.join(sources)} " if sources else ""
    return f"{with_clause}SELECT {', '.join(selects)} FROM spine s {' '.join(joins)} ORDER BY s.{ROW}"


def _spine(entity_rows: pa.Table, times: np.ndarray, features: Sequence[FeatureVersion], offset: int) -> pa.Table:
    columns: dict[str, object] = {ROW: pa.array(np.arange(offset, offset + entity_rows.num_rows, dtype=np.int64)), TIME: pa.array(times)}
    for feature in features:
        for i, column in enumerate(checked_key_columns(entity_rows, feature)):
            columns[f"k{features.index(feature)}_{i}"] = column
    return pa.table(columns)


def _joined_batches(store: OfflineStore, entity_rows: pa.Table, features: Sequence[FeatureVersion], *, as_of_micros: int | None,
                    timestamp_column: str, memory_limit: str, summary: DatasetSummary) -> Iterator[pa.Table]:
    """The training set in input order, a batch at a time: entity rows with values and statuses appended."""
    times = check_entity_rows(entity_rows, timestamp_column)
    summary.rows = entity_rows.num_rows
    summary.add_times(times)
    with tempfile.TemporaryDirectory(prefix="fsd-duckdb-") as spill:
        con = _connect(memory_limit, spill)
        try:
            con.register("spine", _spine(entity_rows, times, features, 0))
            sql = _query(store, features, int(times.max()), as_of_micros)
            names = feature_columns(entity_rows.column_names, features)
            stored_types = [value_type(store, f) for f in features]
            done = 0
            for batch in con.sql(sql).to_arrow_reader(_BATCH_ROWS):
                out = entity_rows.slice(done, batch.num_rows)
                done += batch.num_rows
                for n, (name, stored) in enumerate(zip(names, stored_types)):
                    values = batch.column(f"v{n}")
                    status = batch.column(f"s{n}").to_numpy(zero_copy_only=False)
                    out = out.append_column(name, values.cast(stored) if stored is not None else values)
                    out = out.append_column(f"{name}:status", status_column(status))
                    add_status_counts(summary.status_counts, name, status)
                yield out
        finally:
            con.close()


def get_historical_features(store: OfflineStore, entity_rows: pa.Table, features: Sequence[FeatureVersion], *, as_of_micros: int | None = None,
                            with_status: bool = True, timestamp_column: str = "event_timestamp", memory_limit: str = "2GB") -> pa.Table:
    """As fsd.offline.retrieval.get_historical_features, on DuckDB."""
    summary = DatasetSummary()
    table = pa.concat_tables(_joined_batches(store, entity_rows, features, as_of_micros=as_of_micros, timestamp_column=timestamp_column,
                                             memory_limit=memory_limit, summary=summary))
    if not with_status:
        table = table.drop_columns([c for c in table.column_names[entity_rows.num_columns:] if c.endswith(":status")])
    return table


def write_training_set(store: OfflineStore, entity_rows: pa.Table, features: Sequence[FeatureVersion], out: Path, *,
                       as_of_micros: int | None = None, timestamp_column: str = "event_timestamp", memory_limit: str = "2GB") -> DatasetSummary:
    """The training set written to the Parquet file `out` as DuckDB streams it."""
    summary = DatasetSummary()
    writer = None
    try:
        for table in _joined_batches(store, entity_rows, features, as_of_micros=as_of_micros, timestamp_column=timestamp_column,
                                     memory_limit=memory_limit, summary=summary):
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema, compression="zstd")
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return summary
