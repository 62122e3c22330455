"""The offline side of `fsd sync`: which feature versions have new offline snapshots, their latest value per
entity as of now (read whole, or scanned into entity partitions spilled to disk when a run would not fit its
memory budget), and the widened batches a run publishes. Pure reads of the offline store: publishing them is
the loader's job (fsd.sync.loader)."""
from __future__ import annotations

import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute below
import pyarrow.parquet as pq

from fsd.domain import GroupInfo, PublishMode, VersionState
from fsd.offline.key_hash import partition_of
from fsd.offline.retrieval import latest_rows
from fsd.offline.spill import PartitionSpill
from fsd.offline.store import CREATED_TIMESTAMP, EVENT_TIMESTAMP, VALUE, OfflineStore
from fsd.rows import checks

DEFAULT_SYNC_MEMORY = 512 << 20  # past this, a run goes one entity partition at a time
SYNC_BYTES_PER_ROW = 160  # a row read, its latest-value pick and its share of the widened publish table


def snapshot_micros(snapshot_id: str) -> int:
    head = snapshot_id.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


# The publish mode each kind of offline write is synced in (a forced resync uses RESYNC for all of them).
MODE_OF_KIND = {"ingest": PublishMode.REFRESH, "backfill": PublishMode.BACKFILL, "correction": PublishMode.CORRECTION}


@dataclass(frozen=True)
class SyncBatch:
    """Values of feature versions of one kind of write, ready to publish: one column per feature."""

    versions: dict[str, int]  # feature column -> the version it writes
    mode: PublishMode
    table: pa.Table
    snapshots: tuple[str, ...]  # "feature@N:snapshot" of the newest offline snapshot read per version
    feature_rows: int  # values read from the offline store (rows of every version, before widening)


def _widen(batches: list[SyncBatch], keys: list[str]) -> list[SyncBatch]:
    """Batches of one mode, one version per feature, as few streams' worth of rows as possible: entities whose
    latest value has the same (event, created) time in every version — the usual case, one ingest writing all
    features — become one row of a wide table; the rest stay per version. A value's row carries its own times,
    so nothing is rounded or reordered: the publish rules see exactly the values they would see one by one."""
    if len(batches) < 2:
        return batches
    same_rows = _aligned_in_place(batches, keys)
    if same_rows:  # one ingest wrote them all: same entities in the same order with the same times, no join needed
        first = batches[0].table
        table = pa.table({**{k: first[k] for k in keys}, EVENT_TIMESTAMP: first[EVENT_TIMESTAMP], CREATED_TIMESTAMP: first[CREATED_TIMESTAMP],
                          **{f: b.table[f] for b in batches for f in b.versions}})
        return [SyncBatch({f: v for b in batches for f, v in b.versions.items()}, batches[0].mode, table,
                       tuple(s for b in batches for s in b.snapshots), sum(b.feature_rows for b in batches))]
    stamp = [EVENT_TIMESTAMP, CREATED_TIMESTAMP]
    renamed = [b.table.rename_columns([c if c not in stamp else f"__{c}{i}" for c in b.table.column_names]) for i, b in enumerate(batches)]
    wide = renamed[0]
    for other in renamed[1:]:
        wide = wide.join(other, keys=keys, join_type="inner", use_threads=True)
    aligned = None
    for i in range(1, len(batches)):
        same = pa.compute.and_(pa.compute.equal(wide[f"__{EVENT_TIMESTAMP}{i}"], wide[f"__{EVENT_TIMESTAMP}0"]),
                               pa.compute.equal(wide[f"__{CREATED_TIMESTAMP}{i}"], wide[f"__{CREATED_TIMESTAMP}0"]))
        aligned = same if aligned is None else pa.compute.and_(aligned, same)
    wide = wide.filter(aligned)
    if wide.num_rows == 0:
        return batches
    features = [f for b in batches for f in b.versions]
    out_table = pa.table({**{k: wide[k] for k in keys}, EVENT_TIMESTAMP: wide[f"__{EVENT_TIMESTAMP}0"],
                          CREATED_TIMESTAMP: wide[f"__{CREATED_TIMESTAMP}0"], **{f: wide[f] for f in features}})
    merged = SyncBatch({f: v for b in batches for f, v in b.versions.items()}, batches[0].mode, out_table,
                    tuple(s for b in batches for s in b.snapshots), sum(b.feature_rows for b in batches))
    out = [merged]
    done = out_table.select(keys)
    for b in batches:
        rest = b.table.join(done, keys=keys, join_type="left anti", use_threads=True)
        if rest.num_rows:
            out.append(SyncBatch(b.versions, b.mode, rest, (), 0))
    return out


@dataclass(frozen=True, slots=True)
class WantedVersion:
    """A feature version with offline snapshots newer than the last run, and the kinds of write to take from it."""

    feature: str
    version: int
    kinds: frozenset[str] | None  # None: every kind (a forced resync)
    mode: PublishMode
    snapshot: str  # the newest offline snapshot among them


def wanted_versions(info: GroupInfo, store: OfflineStore, previous: int, full: bool) -> list[WantedVersion]:
    """Per SERVING/PENDING version with new offline snapshots, each kind of write to sync (a forced resync: all
    kinds together, authoritative)."""
    group = info.spec.name
    groups_of_kinds = [(None, PublishMode.RESYNC)] if full else [(frozenset({kind}), mode) for kind, mode in MODE_OF_KIND.items()]
    wanted = []
    for feature, versions in info.versions.items():
        for v in versions:
            if v.state not in (VersionState.SERVING, VersionState.PENDING):
                continue
            for kinds, mode in groups_of_kinds:
                fresh = [s for s in store.snapshots(group, feature, v.version, kinds) if full or snapshot_micros(s) > previous]
                if fresh:
                    wanted.append(WantedVersion(feature, v.version, kinds, mode, fresh[-1]))
    return wanted


def _latest_batch(item: WantedVersion, rows: pa.Table, keys: list[str], now: int, previous: int, full: bool) -> SyncBatch | None:
    """The latest value per entity of one wanted version among rows (all of their entities' rows), ready to publish."""
    feature, version, mode, snapshot = item.feature, item.version, item.mode, item.snapshot
    latest = latest_rows(rows, keys, as_of_micros=now, since_created_micros=None if full else previous)
    if latest.num_rows == 0:
        return None
    table = pa.table({**{k: latest[k] for k in keys}, EVENT_TIMESTAMP: latest[EVENT_TIMESTAMP],
                      CREATED_TIMESTAMP: latest[CREATED_TIMESTAMP], feature: latest[VALUE]})
    return SyncBatch({feature: version}, mode, table, (f"{feature}@{version}:{snapshot}",), latest.num_rows)


def inspect_footers(info: GroupInfo, store: OfflineStore, wanted: list[WantedVersion]) -> tuple[int, SyncBatch | None]:
    """One pass over the wanted versions' Parquet footers: how many rows a run would read, and the first data file
    whose entity-key columns differ from the group's (a source that renamed or retyped its key) as a batch of its
    own rows. Checked file by file: read together, such a file makes the whole version unreadable as one dataset,
    which would fail the run without saying which rule it breaks."""
    group = info.spec.name
    rows = 0
    for item in wanted:
        feature, version, mode, snapshot = item.feature, item.version, item.mode, item.snapshot
        for path, count, schema in store.footers(group, feature, version, item.kinds):
            if checks.entity_key_mismatch(schema, info.spec) is not None:
                table = pq.read_table(path)
                columns = {name: table[name] for name in table.column_names if name != VALUE}
                return rows, SyncBatch({feature: version}, mode, pa.table({**columns, feature: table[VALUE]}),
                                    (f"{feature}@{version}:{snapshot}",), table.num_rows)
            rows += count
    return rows, None


def read_batches(info: GroupInfo, store: OfflineStore, wanted: list[WantedVersion], previous: int, full: bool, now: int) -> list[SyncBatch]:
    """What a run publishes when it fits in memory: every wanted version read whole (in parallel threads: Parquet
    decoding and the native kernel release the GIL) before anything is published."""
    group = info.spec.name
    keys = [k.name for k in info.spec.entity_keys]

    def read(item: WantedVersion) -> SyncBatch | None:
        rows = store.read(group, item.feature, item.version, key_columns=keys, max_event_micros=now, kinds=item.kinds)
        return _latest_batch(item, rows, keys, now, previous, full)

    with ThreadPoolExecutor(max_workers=max(1, min(len(wanted), os.cpu_count() or 1)), thread_name_prefix="fsd-sync-read") as pool:
        return [b for b in pool.map(read, wanted) if b is not None]


def sync_partitions(rows: int, memory_budget: int) -> int:
    """How many entity partitions keep one partition's rows of every wanted version within the budget."""
    return max(1, min(4096, math.ceil(rows * SYNC_BYTES_PER_ROW / max(memory_budget, 1))))


def partitioned_batches(info: GroupInfo, store: OfflineStore, wanted: list[WantedVersion], previous: int, full: bool, now: int,
                         partitions: int, work: Path) -> Iterator[list[SyncBatch]]:
    """The run's batches one entity partition at a time: each wanted version's rows are scanned batch by batch
    (only the key, time and value columns) into hash partitions on disk, then each partition is read back, its
    latest values taken and published before the next is read. An entity's rows all land in one partition, so
    each partition's latest values are the whole run's for its entities."""
    group = info.spec.name
    keys = [k.name for k in info.spec.entity_keys]
    spills = []
    for i, item in enumerate(wanted):
        spill = PartitionSpill(work / f"version-{i}", partitions)
        try:
            for table in store.scan(group, item.feature, item.version, key_columns=keys, max_event_micros=now, kinds=item.kinds):
                spill.add(table, partition_of([table[k] for k in keys], partitions))
        finally:
            spill.close()
        spills.append(spill)
    for p in range(partitions):
        batches = []
        for item, spill in zip(wanted, spills):
            rows = spill.read(p)
            batch = _latest_batch(item, rows, keys, now, previous, full) if rows is not None else None
            if batch is not None:
                batches.append(batch)
        yield batches


_DONE = object()


def prefetched(parts: Iterator[list[SyncBatch]]) -> Iterator[list[SyncBatch]]:
    """The next partition is read and reduced in a helper thread while this one is published."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsd-sync-prefetch") as pool:
        pending = pool.submit(next, parts, _DONE)
        while True:
            batches = pending.result()
            if batches is _DONE:
                return
            pending = pool.submit(next, parts, _DONE)
            yield batches  # type: ignore[misc]


def _aligned_in_place(batches: list[SyncBatch], keys: list[str]) -> bool:
    """Whether every batch holds the same entities in the same row order with the same (event, created) times."""
    first = batches[0].table
    for b in batches[1:]:
        t = b.table
        if t.num_rows != first.num_rows:
            return False
        for column in (*keys, EVENT_TIMESTAMP, CREATED_TIMESTAMP):
            if not t[column].equals(first[column]):
                return False
    return True


def publish_streams(batches: list[SyncBatch], keys: list[str]) -> list[SyncBatch]:
    """Per mode, layers of one version per feature (SERVING and PENDING versions of a feature go in different
    layers), each widened into as few rows as the data allows."""
    out = []
    for mode in dict.fromkeys(b.mode for b in batches):
        layers: list[list[SyncBatch]] = []
        for batch in (b for b in batches if b.mode == mode):
            feature = next(iter(batch.versions))
            layer = next((l for l in layers if all(feature not in x.versions for x in l)), None)
            if layer is None:
                layers.append([batch])
            else:
                layer.append(batch)
        for layer in layers:
            out.extend(_widen(layer, keys))
    return out
