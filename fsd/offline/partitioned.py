"""Out-of-core point-in-time join: a training set of any size written to Parquet in bounded memory.

Entity rows and every feature version's rows are split by a hash of the entity key into the same partitions
(Arrow IPC spill files), each partition is joined in memory by the same code as get_historical_features, and
the partitions' results are merged back into the entity rows' input order while the output Parquet is written.
Memory is set by the partition count, which follows from the data's size and a budget; the answer is the same
as the in-memory join's for any partition count, because an entity's rows all land in one partition.
"""
from __future__ import annotations

import math
import os
import shutil
import time
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fsd.errors import StorageError
from fsd.offline.key_hash import partition_of
from fsd.offline.spill import PartitionSpill
from fsd.offline.retrieval import ROW, FeatureVersion, check_entity_rows, checked_key_columns, join_rows, read_feature_rows
from fsd.offline.store import CREATED_TIMESTAMP, EVENT_TIMESTAMP, VALUE, OfflineStore

DEFAULT_MEMORY_BUDGET = 1 << 30
_SCAN_BATCH_ROWS = 1 << 20
_MERGE_CHUNK_ROWS = 1 << 20
# Bytes of working memory per row, measured on the in-memory join (values, statuses, ids, sort buffers).
_BYTES_PER_ENTITY_ROW = 48
_BYTES_PER_ENTITY_ROW_AND_FEATURE = 40
_BYTES_PER_FEATURE_ROW = 96


@dataclass(slots=True)
class DatasetSummary:
    """What a written training set holds: its row count, time range and each column's status counts."""

    rows: int = 0
    min_time_micros: int | None = None
    max_time_micros: int | None = None
    status_counts: dict[str, np.ndarray] = field(default_factory=dict)
    partitions: int = 1
    phase_seconds: dict[str, float] = field(default_factory=dict)  # spill / join / merge, for the benchmark's report

    def timed(self, phase: str, began: float) -> float:
        now = time.perf_counter()
        self.phase_seconds[phase] = self.phase_seconds.get(phase, 0.0) + now - began
        return now

    def statuses(self, column: str) -> dict[str, int]:
        counts = self.status_counts.get(column, np.zeros(4, dtype=np.int64))
        return {"PRESENT": int(counts[1]), "STALE": int(counts[3]), "NOT_FOUND": int(counts[2])}

    def add_times(self, times: np.ndarray) -> None:
        if len(times):
            low, high = int(times.min()), int(times.max())
            self.min_time_micros = low if self.min_time_micros is None else min(self.min_time_micros, low)
            self.max_time_micros = high if self.max_time_micros is None else max(self.max_time_micros, high)


def partitions_for(entity_rows: int, feature_rows: Sequence[int], memory_budget: int) -> int:
    """How many partitions keep one partition's join within the budget: entity rows with their outputs, plus
    the two feature versions joined at once."""
    need = entity_rows * (_BYTES_PER_ENTITY_ROW + _BYTES_PER_ENTITY_ROW_AND_FEATURE * len(feature_rows))
    need += sum(sorted(feature_rows, reverse=True)[:2]) * _BYTES_PER_FEATURE_ROW
    return max(1, math.ceil(need / max(memory_budget, 1 << 20)))


def _entity_batches(entity_rows: pa.Table | Path) -> tuple[Iterator[pa.Table], int]:
    if isinstance(entity_rows, pa.Table):
        return (entity_rows.slice(start, _SCAN_BATCH_ROWS) for start in range(0, entity_rows.num_rows, _SCAN_BATCH_ROWS)), entity_rows.num_rows
    parquet = pq.ParquetFile(entity_rows)
    return (pa.Table.from_batches([b]) for b in parquet.iter_batches(batch_size=_SCAN_BATCH_ROWS)), parquet.metadata.num_rows


def _spill_entity_rows(entity_rows: pa.Table | Path, features: Sequence[FeatureVersion], timestamp_column: str, partitions: int,
                       spill: PartitionSpill, summary: DatasetSummary) -> None:
    batches, _ = _entity_batches(entity_rows)
    offset = 0
    for batch in batches:
        times = check_entity_rows(batch, timestamp_column)
        summary.add_times(times)
        batch = batch.append_column(ROW, pa.array(np.arange(offset, offset + batch.num_rows, dtype=np.int64)))
        offset += batch.num_rows
        spill.add(batch, partition_of(checked_key_columns(batch, features[0]), partitions))
    summary.rows = offset


def _spill_feature_rows(store: OfflineStore, feature: FeatureVersion, max_event_micros: int, as_of_micros: int | None,
                        partitions: int, spill: PartitionSpill) -> None:
    """The feature version's candidate rows, scanned batch by batch with only the columns the join needs."""
    for table in store.scan(feature.group, feature.feature, feature.version, key_columns=list(feature.key_names),
                            max_event_micros=max_event_micros, created_as_of_micros=as_of_micros, batch_rows=_SCAN_BATCH_ROWS):
        spill.add(table, partition_of([table[k] for k in feature.key_names], partitions))


class _Cursor:
    """Reads one partition's joined rows (sorted by input position) and hands out those below a bound."""

    def __init__(self, path: Path) -> None:
        self._source = pa.OSFile(str(path))
        self._reader = pa.ipc.open_file(self._source)
        self._next = 0
        self._buffer: pa.Table | None = None

    def below(self, bound: int) -> pa.Table | None:
        pieces = []
        while True:
            if self._buffer is None or self._buffer.num_rows == 0:
                if self._next >= self._reader.num_record_batches:
                    break
                self._buffer = pa.Table.from_batches([self._reader.get_batch(self._next)])
                self._next += 1
            rows = self._buffer[ROW].to_numpy()
            cut = int(np.searchsorted(rows, bound))
            pieces.append(self._buffer.slice(0, cut))
            self._buffer = self._buffer.slice(cut)
            if self._buffer.num_rows:
                break
        return pa.concat_tables(pieces) if pieces else None

    def close(self) -> None:
        self._source.close()


def _merge_in_input_order(result_paths: Sequence[Path], total_rows: int, writer: pq.ParquetWriter) -> None:
    """Chunks of the output in input order, each encoded to Parquet by a writer thread while the next is merged."""
    cursors = [_Cursor(p) for p in result_paths]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsd-pit-write") as pool:
        pending = None
        try:
            for low in range(0, total_rows, _MERGE_CHUNK_ROWS):
                high = min(low + _MERGE_CHUNK_ROWS, total_rows)
                pieces = [t for t in (c.below(high) for c in cursors) if t is not None and t.num_rows]
                chunk = pa.concat_tables(pieces)
                positions = chunk[ROW].to_numpy() - low
                if chunk.num_rows != high - low or positions.min() != 0 or positions.max() != high - low - 1:
                    raise StorageError("out-of-core join: partition results do not cover the entity rows once each")
                order = np.empty(len(positions), dtype=np.int64)
                order[positions] = np.arange(len(positions), dtype=np.int64)
                ordered = chunk.take(pa.array(order)).drop_columns([ROW])
                if pending is not None:
                    pending.result()
                pending = pool.submit(writer.write_table, ordered)
            if pending is not None:
                pending.result()
        finally:
            for cursor in cursors:
                cursor.close()


def write_partitioned(
    store: OfflineStore, entity_rows: pa.Table | Path, features: Sequence[FeatureVersion], out: Path, *, partitions: int,
    as_of_micros: int | None = None, timestamp_column: str = EVENT_TIMESTAMP, spill_dir: Path | None = None,
) -> DatasetSummary:
    """The training set of entity_rows × features written to the Parquet file `out`, `partitions` at a time in memory."""
    summary = DatasetSummary(partitions=partitions)
    key_sets = {f.key_names for f in features}
    if len(key_sets) > 1:
        # Entity rows are partitioned by one key set; features keyed otherwise would need another partitioning.
        return _write_per_key_set(store, entity_rows, features, out, partitions=partitions, as_of_micros=as_of_micros,
                                  timestamp_column=timestamp_column, spill_dir=spill_dir)
    work = Path(tempfile.mkdtemp(prefix="fsd-pit-spill-", dir=spill_dir))
    began = time.perf_counter()
    try:
        entities = PartitionSpill(work / "entities", partitions)
        try:
            _spill_entity_rows(entity_rows, features, timestamp_column, partitions, entities, summary)
        finally:
            entities.close()
        began = summary.timed("spill entity rows", began)
        latest = summary.max_time_micros if summary.max_time_micros is not None else 0
        feature_spills = [PartitionSpill(work / f"feature-{i}", partitions) for i in range(len(features))]

        def spill_feature(i: int) -> None:
            try:
                _spill_feature_rows(store, features[i], latest, as_of_micros, partitions, feature_spills[i])
            finally:
                feature_spills[i].close()

        # Parquet decoding, hashing and the partition sort release the GIL: two versions spill at once.
        with ThreadPoolExecutor(max_workers=max(1, min(len(features), os.cpu_count() or 1)), thread_name_prefix="fsd-pit-spill") as pool:
            list(pool.map(spill_feature, range(len(features))))
        began = summary.timed("spill feature rows", began)
        results = []
        empty_rights = {i: _empty_right(store, f, latest, as_of_micros) for i, f in enumerate(features)}
        for p in range(partitions):
            part = entities.read(p)
            if part is None:
                continue
            def right_rows(feature: FeatureVersion, p: int = p) -> pa.Table:  # read in the joining thread, two at a time
                i = features.index(feature)
                return feature_spills[i].read(p) or empty_rights[i]

            times = check_entity_rows(part, timestamp_column)
            joined = join_rows(part, times, features, right_rows, with_status=True, status_counts=summary.status_counts)
            path = work / f"result-{p:04d}.arrow"
            with pa.ipc.new_file(str(path), joined.schema) as writer:
                writer.write_table(joined, max_chunksize=_MERGE_CHUNK_ROWS // max(partitions, 1) or 1)
            results.append(path)
            del joined, part
        if not results:
            raise StorageError("out-of-core join: no entity rows were spilled")
        began = summary.timed("join partitions", began)
        with pa.OSFile(str(results[0])) as source:
            schema = pa.ipc.open_file(source).schema
        schema = schema.remove(schema.get_field_index(ROW))
        with pq.ParquetWriter(out, schema, compression="zstd") as writer:
            _merge_in_input_order(results, summary.rows, writer)
        summary.timed("merge and write Parquet", began)
        return summary
    except OSError as exc:
        raise StorageError(f"out-of-core join under {work} failed: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _empty_right(store: OfflineStore, feature: FeatureVersion, latest: int, as_of_micros: int | None) -> pa.Table:
    """A partition with no rows of a feature version joins against none, with the value column's real type."""
    schema = store.schema(feature.group, feature.feature, feature.version)
    if schema is None:
        return read_feature_rows(store, feature, latest, as_of_micros)
    columns = [*feature.key_names, EVENT_TIMESTAMP, CREATED_TIMESTAMP, VALUE]
    return pa.schema([schema.field(c) for c in columns]).empty_table()


def _write_per_key_set(store: OfflineStore, entity_rows: pa.Table | Path, features: Sequence[FeatureVersion], out: Path, *,
                       partitions: int, as_of_micros: int | None, timestamp_column: str, spill_dir: Path | None) -> DatasetSummary:
    """Features of several key sets: one partitioned pass per key set, then the per-set files zipped column-wise
    (every pass keeps the input order, so rows line up)."""
    work = Path(tempfile.mkdtemp(prefix="fsd-pit-sets-", dir=spill_dir))
    try:
        by_keys: dict[tuple[str, ...], list[FeatureVersion]] = {}
        for f in features:
            by_keys.setdefault(f.key_names, []).append(f)
        parts, summary = [], DatasetSummary(partitions=partitions)
        for i, group in enumerate(by_keys.values()):
            path = work / f"set-{i}.parquet"
            summary_i = write_partitioned(store, entity_rows, group, path, partitions=partitions, as_of_micros=as_of_micros,
                                          timestamp_column=timestamp_column, spill_dir=work)
            parts.append(path)
            summary.rows, summary.min_time_micros, summary.max_time_micros = summary_i.rows, summary_i.min_time_micros, summary_i.max_time_micros
            summary.status_counts.update(summary_i.status_counts)
        readers = [pq.ParquetFile(p) for p in parts]
        entity_count = len(entity_rows.column_names if isinstance(entity_rows, pa.Table) else pq.read_schema(entity_rows).names)
        schema = readers[0].schema_arrow
        for reader in readers[1:]:
            for name in reader.schema_arrow.names[entity_count:]:
                schema = schema.append(reader.schema_arrow.field(name))
        with pq.ParquetWriter(out, schema, compression="zstd") as writer:
            iterators = [r.iter_batches(batch_size=_MERGE_CHUNK_ROWS) for r in readers]
            for batches in zip(*iterators):
                table = pa.Table.from_batches([batches[0]])
                for batch in batches[1:]:
                    extra = pa.Table.from_batches([batch])
                    for name in extra.column_names[entity_count:]:
                        table = table.append_column(name, extra[name])
                writer.write_table(table)
        return summary
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_training_set(
    store: OfflineStore, entity_rows: pa.Table | Path, features: Sequence[FeatureVersion], out: Path, *,
    as_of_micros: int | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET, partitions: int | None = None,
    timestamp_column: str = EVENT_TIMESTAMP,
) -> DatasetSummary:
    """The local engine's training set at `out`: joined in memory when it fits the budget, else out of core."""
    if partitions is None:
        _, count = _entity_batches(entity_rows)
        partitions = partitions_for(count, [store.row_count(f.group, f.feature, f.version) for f in features], memory_budget)
    if partitions == 1 and not isinstance(entity_rows, pa.Table):
        entity_rows = pq.read_table(entity_rows)  # it fits: join in memory
    if partitions > 1:
        return write_partitioned(store, entity_rows, features, out, partitions=partitions, as_of_micros=as_of_micros,
                                 timestamp_column=timestamp_column)
    summary = DatasetSummary()
    times = check_entity_rows(entity_rows, timestamp_column)
    summary.rows = entity_rows.num_rows
    summary.add_times(times)
    latest = int(times.max())
    table = join_rows(entity_rows, times, features, lambda f: read_feature_rows(store, f, latest, as_of_micros), with_status=True,
                      status_counts=summary.status_counts)
    pq.write_table(table, out, compression="zstd")
    return summary


