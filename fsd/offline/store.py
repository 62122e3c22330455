"""Parquet layout and IO of the offline store: one hive-partitioned dataset per (group, feature, version).

    <root>/<group>/<feature>/v<N>/month=YYYY-MM/part-<snapshot>.parquet

columns: the group's entity keys, event_timestamp, created_timestamp (UTC µs), and `value`. One dataset per
feature version makes mixing versions impossible by construction. Files are written to a temp name, fsynced
and renamed, so a crash never leaves a half file visible; each write is one snapshot id. Partitions are months,
not days: a day of one feature is often a few thousand rows, and per-file overhead then dominates retrieval
(30 daily files read in 8.6 ms against 3.4 ms for the same rows in one file); row-group statistics on
event_timestamp still prune inside a month.
"""
from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from fsd.domain.types import Clock, SystemClock
from fsd.errors import InvalidArgument, StorageError
from fsd.paths import confine_below

VALUE = "value"
EVENT_TIMESTAMP = "event_timestamp"
CREATED_TIMESTAMP = "created_timestamp"
_TS = pa.timestamp("us", tz="UTC")
_PARTITION = "month"  # YYYY-MM of the event time
_SNAPSHOT_RE = re.compile(r"part-(\d{16})-([0-9a-f]{8})(?:-(backfill|correction))?\.parquet")
WRITE_KINDS = ("ingest", "backfill", "correction")  # a write's kind decides the publish mode the loader syncs it in


@dataclass(frozen=True, slots=True)
class WriteResult:
    snapshot_id: str
    rows: int
    files: tuple[str, ...]
    min_event_micros: int
    max_event_micros: int


def _month(micros: int) -> str:
    return str(np.datetime64(micros, "us").astype("datetime64[M]"))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OfflineStore:
    """Reads and writes feature-version datasets under one root folder."""

    def __init__(self, root: str | Path, clock: Clock | None = None) -> None:
        """clock: what snapshot ids are stamped with (they order writes and tell the loader what is new); a
        simulation injects its own, so its files and its sync runs share one time line."""
        from fsd.paths import confine

        self.root = confine(root, "offline root")
        self._clock = clock or SystemClock()

    def dataset_dir(self, group: str, feature: str, version: int) -> Path:
        return self.root / group / feature / f"v{version}"

    def write(self, group: str, feature: str, version: int, table: pa.Table, kind: str = "ingest") -> WriteResult:
        """table: key columns..., event_timestamp, created_timestamp (timestamp[us, UTC]), value. The kind (ingest,
        backfill, correction) is part of each file's name, so the loader can sync every write by its own rule."""
        if kind not in WRITE_KINDS:
            raise InvalidArgument(f"offline write kind {kind[:40]!r} must be one of {', '.join(WRITE_KINDS)}", field="kind")
        for name in (EVENT_TIMESTAMP, CREATED_TIMESTAMP, VALUE):
            if name not in table.column_names:
                raise InvalidArgument(f"offline write: column {name!r} missing", field=name)
        if table.num_rows == 0:
            return WriteResult("", 0, (), 0, 0)
        table = table.set_column(table.schema.get_field_index(EVENT_TIMESTAMP), EVENT_TIMESTAMP, pc.cast(table[EVENT_TIMESTAMP], _TS))
        table = table.set_column(table.schema.get_field_index(CREATED_TIMESTAMP), CREATED_TIMESTAMP, pc.cast(table[CREATED_TIMESTAMP], _TS))
        snapshot = f"{self._clock.now_micros():016d}-{uuid.uuid4().hex[:8]}"
        micros = table[EVENT_TIMESTAMP].cast(pa.int64()).to_numpy(zero_copy_only=False)
        months = micros.astype("datetime64[us]").astype("datetime64[M]")
        base = self.dataset_dir(group, feature, version)
        suffix = "" if kind == "ingest" else f"-{kind}"
        files = []
        try:
            for month in np.unique(months):
                part = table.filter(pa.array(months == month))
                folder = confine_below(self.root, base / f"{_PARTITION}={month}")
                folder.mkdir(parents=True, exist_ok=True)
                final = folder / f"part-{snapshot}{suffix}.parquet"
                tmp = folder / f".tmp-{snapshot}.parquet"
                pq.write_table(part, tmp, compression="zstd")
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
                os.replace(tmp, final)
                _fsync_dir(folder)
                files.append(str(final))
        except OSError as exc:
            raise StorageError(f"offline write to {base} failed: {exc}") from exc
        return WriteResult(snapshot, table.num_rows, tuple(files), int(micros.min()), int(micros.max()))

    def _files(self, group: str, feature: str, version: int) -> list[tuple[Path, str, str]]:
        """(file, snapshot id, kind) of every complete data file of a feature version."""
        base = self.dataset_dir(group, feature, version)
        out = []
        for p in base.rglob("part-*.parquet") if base.exists() else ():
            m = _SNAPSHOT_RE.fullmatch(p.name)
            if m:
                out.append((p, f"{m.group(1)}-{m.group(2)}", m.group(3) or "ingest"))
        return out

    def data_files(self, group: str, feature: str, version: int, kinds: frozenset[str] | None = None) -> list[Path]:
        """Every complete data file of a feature version (of those kinds of write), in write order within each month."""
        return sorted(p for p, _, kind in self._files(group, feature, version) if kinds is None or kind in kinds)

    def footers(self, group: str, feature: str, version: int, kinds: frozenset[str] | None = None) -> list[tuple[Path, int, pa.Schema]]:
        """(file, rows, schema) of each data file of a feature version (of those kinds of write), from the Parquet
        footers alone: no data is read."""
        out = []
        for path in self.data_files(group, feature, version, kinds):
            try:
                metadata = pq.read_metadata(path)
            except (pa.ArrowException, OSError) as exc:
                raise StorageError(f"offline read of {path} failed: {exc}") from exc
            out.append((path, metadata.num_rows, metadata.schema.to_arrow_schema()))
        return out

    def row_count(self, group: str, feature: str, version: int, kinds: frozenset[str] | None = None) -> int:
        """Rows of a feature version (of those kinds of write), from the Parquet footers."""
        return sum(rows for _, rows, _ in self.footers(group, feature, version, kinds))

    def schema(self, group: str, feature: str, version: int) -> pa.Schema | None:
        """The stored columns of a feature version (None before its first write)."""
        files = self.data_files(group, feature, version)
        return pq.read_schema(files[0]) if files else None

    def snapshots(self, group: str, feature: str, version: int, kinds: frozenset[str] | None = None) -> list[str]:
        return sorted({snap for _, snap, kind in self._files(group, feature, version) if kinds is None or kind in kinds})

    def read(
        self,
        group: str,
        feature: str,
        version: int,
        *,
        key_columns: list[str],
        key_filter: pa.Array | None = None,
        max_event_micros: int | None = None,
        min_event_micros: int | None = None,
        created_as_of_micros: int | None = None,
        kinds: frozenset[str] | None = None,
    ) -> pa.Table:
        """Rows of one feature version, pruned by time (partition pruning) and optionally by entity key and by the
        kind of write they came from."""
        base = self.dataset_dir(group, feature, version)
        dataset, condition, columns = self._scanner_parts(group, feature, version, key_columns, key_filter, max_event_micros,
                                                         min_event_micros, created_as_of_micros, kinds)
        if dataset is None:
            return _empty(columns)
        try:
            return dataset.to_table(columns=columns, filter=condition)
        except (pa.ArrowException, OSError) as exc:
            raise StorageError(f"offline read of {base} failed: {exc}") from exc

    def scan(
        self, group: str, feature: str, version: int, *, key_columns: list[str], max_event_micros: int | None = None,
        created_as_of_micros: int | None = None, kinds: frozenset[str] | None = None, batch_rows: int = 1 << 20,
    ) -> Iterator[pa.Table]:
        """read, a batch at a time (bounded memory whatever the version's size), with only the columns joins need."""
        base = self.dataset_dir(group, feature, version)
        dataset, condition, columns = self._scanner_parts(group, feature, version, key_columns, None, max_event_micros, None,
                                                         created_as_of_micros, kinds)
        if dataset is None:
            return
        try:
            for batch in dataset.to_batches(columns=columns, filter=condition, batch_size=batch_rows):
                if batch.num_rows:
                    yield pa.Table.from_batches([batch])
        except (pa.ArrowException, OSError) as exc:
            raise StorageError(f"offline read of {base} failed: {exc}") from exc

    def _scanner_parts(self, group: str, feature: str, version: int, key_columns: list[str], key_filter: pa.Array | None,
                       max_event_micros: int | None, min_event_micros: int | None, created_as_of_micros: int | None,
                       kinds: frozenset[str] | None) -> tuple[ds.Dataset | None, object, list[str]]:
        base = self.dataset_dir(group, feature, version)
        columns = [*key_columns, EVENT_TIMESTAMP, CREATED_TIMESTAMP, VALUE]
        sources: object = base
        if kinds is not None:
            sources = [str(p) for p, _, kind in self._files(group, feature, version) if kind in kinds]
        if not base.exists() or sources == []:
            return None, None, columns
        condition = None

        def both(a, b):  # type: ignore[no-untyped-def]
            return b if a is None else a & b

        if max_event_micros is not None:
            condition = both(condition, ds.field(EVENT_TIMESTAMP) <= pa.scalar(max_event_micros, _TS))
            condition = both(condition, ds.field(_PARTITION) <= _month(max_event_micros))
        if min_event_micros is not None:
            condition = both(condition, ds.field(EVENT_TIMESTAMP) >= pa.scalar(min_event_micros, _TS))
            condition = both(condition, ds.field(_PARTITION) >= _month(min_event_micros))
        if created_as_of_micros is not None:
            condition = both(condition, ds.field(CREATED_TIMESTAMP) <= pa.scalar(created_as_of_micros, _TS))
        if key_filter is not None and len(key_columns) == 1:
            condition = both(condition, ds.field(key_columns[0]).isin(key_filter))
        try:
            partitioning = ds.partitioning(pa.schema([(_PARTITION, pa.string())]), flavor="hive")
            dataset = ds.dataset(sources, format="parquet", partitioning=partitioning, partition_base_dir=str(base),
                                 ignore_prefixes=[".tmp-", "."])
        except (pa.ArrowException, OSError) as exc:
            raise StorageError(f"offline read of {base} failed: {exc}") from exc
        return dataset, condition, columns


def _empty(columns: list[str]) -> pa.Table:
    return pa.table({c: pa.array([], type=_TS if c in (EVENT_TIMESTAMP, CREATED_TIMESTAMP) else pa.null()) for c in columns})
