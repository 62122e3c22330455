"""The offline -> online loader: latest valid value per entity and feature version since the last successful
sync, streamed through Publish (so every publish rule applies), recorded as a sync run; and the scheduler
that runs it per group at the group's own interval with retry and backoff."""
from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fsd.client import Client
from fsd.domain import Clock, GroupInfo, SyncRun, SystemClock, VersionState
from fsd.errors import FsdError
from fsd.offline.key_hash import partition_of
from fsd.offline.retrieval import latest_rows
from fsd.offline.spill import PartitionSpill
from fsd.offline.store import CREATED_TIMESTAMP, EVENT_TIMESTAMP, VALUE, OfflineStore
from fsd.sync import rules

logger = logging.getLogger(__name__)
DEFAULT_SYNC_MEMORY = 512 << 20  # past this, a run goes one entity partition at a time
_SYNC_BYTES_PER_ROW = 160  # a row read, its latest-value pick and its share of the widened publish table


def _snapshot_micros(snapshot_id: str) -> int:
    head = snapshot_id.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


# The publish mode each kind of offline write is synced in (a forced resync uses RESYNC for all of them).
MODE_OF_KIND = {"ingest": "REFRESH", "backfill": "BACKFILL", "correction": "CORRECTION"}


@dataclass(frozen=True)
class _Batch:
    """Values of feature versions of one kind of write, ready to publish: one column per feature."""

    versions: dict[str, int]  # feature column -> the version it writes
    mode: str
    table: pa.Table
    snapshots: tuple[str, ...]  # "feature@N:snapshot" of the newest offline snapshot read per version
    feature_rows: int  # values read from the offline store (rows of every version, before widening)


def _widen(batches: list[_Batch], keys: list[str]) -> list[_Batch]:
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
        return [_Batch({f: v for b in batches for f, v in b.versions.items()}, batches[0].mode, table,
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
    merged = _Batch({f: v for b in batches for f, v in b.versions.items()}, batches[0].mode, out_table,
                    tuple(s for b in batches for s in b.snapshots), sum(b.feature_rows for b in batches))
    out = [merged]
    done = out_table.select(keys)
    for b in batches:
        rest = b.table.join(done, keys=keys, join_type="left anti", use_threads=True)
        if rest.num_rows:
            out.append(_Batch(b.versions, b.mode, rest, (), 0))
    return out


_Wanted = tuple[str, int, "frozenset[str] | None", str, str]  # feature, version, kinds of write, publish mode, newest snapshot


def _wanted(info: GroupInfo, store: OfflineStore, previous: int, full: bool) -> list[_Wanted]:
    """Per SERVING/PENDING version with new offline snapshots, each kind of write to sync (a forced resync: all
    kinds together, authoritative)."""
    group = info.spec.name
    groups_of_kinds = [(None, "RESYNC")] if full else [(frozenset({kind}), mode) for kind, mode in MODE_OF_KIND.items()]
    wanted = []
    for feature, versions in info.versions.items():
        for v in versions:
            if v.state not in (VersionState.SERVING, VersionState.PENDING):
                continue
            for kinds, mode in groups_of_kinds:
                fresh = [s for s in store.snapshots(group, feature, v.version, kinds) if full or _snapshot_micros(s) > previous]
                if fresh:
                    wanted.append((feature, v.version, kinds, mode, fresh[-1]))
    return wanted


def _batch(item: _Wanted, rows: pa.Table, keys: list[str], now: int, previous: int, full: bool) -> _Batch | None:
    """The latest value per entity of one wanted version among rows (all of their entities' rows), ready to publish."""
    feature, version, _, mode, snapshot = item
    latest = latest_rows(rows, keys, as_of_micros=now, since_created_micros=None if full else previous)
    if latest.num_rows == 0:
        return None
    table = pa.table({**{k: latest[k] for k in keys}, EVENT_TIMESTAMP: latest[EVENT_TIMESTAMP],
                      CREATED_TIMESTAMP: latest[CREATED_TIMESTAMP], feature: latest[VALUE]})
    return _Batch({feature: version}, mode, table, (f"{feature}@{version}:{snapshot}",), latest.num_rows)


def _inspect(info: GroupInfo, store: OfflineStore, wanted: list[_Wanted]) -> tuple[int, _Batch | None]:
    """One pass over the wanted versions' Parquet footers: how many rows a run would read, and the first data file
    whose entity-key columns differ from the group's (a source that renamed or retyped its key) as a batch of its
    own rows. Checked file by file: read together, such a file makes the whole version unreadable as one dataset,
    which would fail the run without saying which rule it breaks."""
    group = info.spec.name
    rows = 0
    for feature, version, kinds, mode, snapshot in wanted:
        for path, count, schema in store.footers(group, feature, version, kinds):
            if rules.entity_key_mismatch(schema, info.spec).reason:
                table = pq.read_table(path)
                columns = {name: table[name] for name in table.column_names if name != VALUE}
                return rows, _Batch({feature: version}, mode, pa.table({**columns, feature: table[VALUE]}),
                                    (f"{feature}@{version}:{snapshot}",), table.num_rows)
            rows += count
    return rows, None


def _batches(info: GroupInfo, store: OfflineStore, wanted: list[_Wanted], previous: int, full: bool, now: int) -> list[_Batch]:
    """What a run publishes when it fits in memory: every wanted version read whole (in parallel threads: Parquet
    decoding and the native kernel release the GIL) before anything is published."""
    group = info.spec.name
    keys = [k.name for k in info.spec.entity_keys]

    def read(item: _Wanted) -> _Batch | None:
        feature, version, kinds = item[0], item[1], item[2]
        rows = store.read(group, feature, version, key_columns=keys, max_event_micros=now, kinds=kinds)
        return _batch(item, rows, keys, now, previous, full)

    with ThreadPoolExecutor(max_workers=max(1, min(len(wanted), os.cpu_count() or 1)), thread_name_prefix="fsd-sync-read") as pool:
        return [b for b in pool.map(read, wanted) if b is not None]


def sync_partitions(rows: int, memory_budget: int) -> int:
    """How many entity partitions keep one partition's rows of every wanted version within the budget."""
    return max(1, min(4096, math.ceil(rows * _SYNC_BYTES_PER_ROW / max(memory_budget, 1))))


def _partitioned_batches(info: GroupInfo, store: OfflineStore, wanted: list[_Wanted], previous: int, full: bool, now: int,
                         partitions: int, work: Path) -> Iterator[list[_Batch]]:
    """The run's batches one entity partition at a time: each wanted version's rows are scanned batch by batch
    (only the key, time and value columns) into hash partitions on disk, then each partition is read back, its
    latest values taken and published before the next is read. An entity's rows all land in one partition, so
    each partition's latest values are the whole run's for its entities."""
    group = info.spec.name
    keys = [k.name for k in info.spec.entity_keys]
    spills = []
    for i, (feature, version, kinds, _, _) in enumerate(wanted):
        spill = PartitionSpill(work / f"version-{i}", partitions)
        try:
            for table in store.scan(group, feature, version, key_columns=keys, max_event_micros=now, kinds=kinds):
                spill.add(table, partition_of([table[k] for k in keys], partitions))
        finally:
            spill.close()
        spills.append(spill)
    for p in range(partitions):
        batches = []
        for item, spill in zip(wanted, spills):
            rows = spill.read(p)
            batch = _batch(item, rows, keys, now, previous, full) if rows is not None else None
            if batch is not None:
                batches.append(batch)
        yield batches


_DONE = object()


def _prefetched(parts: Iterator[list[_Batch]]) -> Iterator[list[_Batch]]:
    """The next partition is read and reduced in a helper thread while this one is published."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsd-sync-prefetch") as pool:
        pending = pool.submit(next, parts, _DONE)
        while True:
            batches = pending.result()
            if batches is _DONE:
                return
            pending = pool.submit(next, parts, _DONE)
            yield batches  # type: ignore[misc]


def _aligned_in_place(batches: list[_Batch], keys: list[str]) -> bool:
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


def _streams(batches: list[_Batch], keys: list[str]) -> list[_Batch]:
    """Per mode, layers of one version per feature (SERVING and PENDING versions of a feature go in different
    layers), each widened into as few rows as the data allows."""
    out = []
    for mode in dict.fromkeys(b.mode for b in batches):
        layers: list[list[_Batch]] = []
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


def sync_group(
    client: Client,
    store: OfflineStore,
    group: str,
    *,
    full: bool = False,
    forced: bool = False,
    chunk_rows: int = 20_000,
    on_rows: Callable[[int], None] | None = None,  # values published so far (progress)
    memory_budget: int = DEFAULT_SYNC_MEMORY,
    clock: Clock | None = None,
) -> SyncRun:
    """One sync run of a group's SERVING and PENDING versions, through Publish and so through every publish rule;
    always recorded, success or not. All or nothing: a batch the rules would block (an entity-key mismatch in an
    offline file) is sent alone, so the daemon refuses it and opens its review incident, and nothing of the run
    goes online. `full` is a forced resync: the offline truth replaces online values inside the serving window.
    A run whose offline rows would not fit memory_budget goes one entity partition at a time (bounded memory).
    clock: what "now" is (the as-of time of the values and the run's timestamps); a simulation injects its own."""
    clock = clock or SystemClock()
    started = clock.now_micros()
    rows_read = values_written = rows_rejected = 0
    reasons: dict[str, int] = {}
    work = None
    try:
        info = client.get_group(group)
        previous = 0 if full else next((r.watermark_micros for r in client.sync_runs(group, 200) if r.outcome == "success"), 0)
        wanted = _wanted(info, store, previous, full)
        keys = [k.name for k in info.spec.entity_keys]
        rows, mismatched = _inspect(info, store, wanted)
        partitions = sync_partitions(rows, memory_budget)
        if mismatched is not None:  # all or nothing: a file whose keys differ is sent alone, refused, with its incident
            parts: Iterator[list[_Batch]] = iter([[mismatched]])
        elif partitions == 1:
            parts = iter([_batches(info, store, wanted, previous, full, started)])
        else:
            work = Path(tempfile.mkdtemp(prefix="fsd-sync-spill-"))
            parts = _prefetched(_partitioned_batches(info, store, wanted, previous, full, started, partitions, work))
        watermark, newest_snapshot, snapshots = previous, 0, []
        for batches in parts:
            for batch in batches if mismatched is not None else _streams(batches, keys):
                features = len(batch.versions)
                progress = (lambda rows, n=features: on_rows(rows * n)) if on_rows is not None else None
                result = client.publish(group, batch.table, publish_id=f"sync-{group}-{uuid.uuid4().hex[:12]}", chunk_rows=chunk_rows,
                                        feature_versions=batch.versions, mode=batch.mode,
                                        snapshot_id=",".join(s.rsplit(":", 1)[-1] for s in batch.snapshots)[:200], on_chunk=progress)
                rows_read += batch.feature_rows  # the remainder of a widened batch was counted with it
                values_written += result.values_written
                rows_rejected += result.rows_rejected
                for reason, count in result.reason_counts.items():
                    reasons[reason] = reasons.get(reason, 0) + count
                watermark = max(watermark, int(pa.compute.max(batch.table[CREATED_TIMESTAMP].cast(pa.int64())).as_py()))
                for snap in batch.snapshots:
                    newest_snapshot = max(newest_snapshot, _snapshot_micros(snap.rsplit(":", 1)[-1]))
                    if snap not in snapshots:
                        snapshots.append(snap)
        ended = clock.now_micros()
        run = SyncRun(group, started, ended, "success", snapshot=",".join(snapshots), rows_read=rows_read, values_written=values_written,
                      rows_rejected=rows_rejected, reason_counts=reasons, watermark_micros=watermark,
                      sync_delay_micros=ended - newest_snapshot if newest_snapshot else 0, forced=forced)
    except (FsdError, OSError) as exc:
        error = exc.message if isinstance(exc, FsdError) else str(exc)
        logger.warning("sync of %s failed: %s", group, error)
        run = SyncRun(group, started, clock.now_micros(), "failed", error=error[:1000], rows_read=rows_read, values_written=values_written,
                      rows_rejected=rows_rejected, reason_counts=reasons, forced=forced)
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    return client.record_sync_run(run)


ADAPTIVE_TARGET_SHARE = 0.02  # an adaptive group is synced about when this share of its values has changed


def next_adaptive_interval(current: float, values_written: int, low: float, high: float, max_age: float = 0.0,
                           group_values: int = 0) -> float:
    """The adaptive policy, from the group's observed volatility: the share of its values the last run found
    changed (values_written of group_values, the most one run has written). The next interval aims at about
    ADAPTIVE_TARGET_SHARE of the values changing between runs, moving at most 2x a run: a group where a quarter
    of the values change a minute stays at its lower bound, one where a few in a thousand do backs off. Without
    a size yet, a run that found changes halves the interval and a quiet one doubles it. Always within
    [low, high], and at most half the group's max age, so a value goes online well before it would be STALE."""
    if group_values > 0 and values_written > 0:
        share = values_written / group_values
        interval = current * max(0.5, min(2.0, ADAPTIVE_TARGET_SHARE / share))
    else:
        interval = current / 2 if values_written else current * 2
    if max_age > 0:
        high = min(high, max(low, max_age / 2))
    return max(low, min(high, interval))


@dataclass
class _GroupSchedule:
    interval: float
    next_due: float
    failures: int = 0
    adaptive: tuple[float, float, float] | None = None  # (min, max, max age) when the group's interval is adaptive
    values: int = 0  # the most values one run of the group wrote: its size, as far as the scheduler has seen


class SyncScheduler:
    """Runs each group at its own sync interval — fixed, or adaptive (next_adaptive_interval) — with failed runs
    retried with exponential backoff (capped at the interval)."""

    def __init__(self, client: Client, store: OfflineStore, groups: list[str] | None = None, clock: Callable[[], float] = time.monotonic,
                 min_backoff: float = 1.0, run_clock: Clock | None = None) -> None:
        self._client = client
        self._store = store
        self._only = groups
        self._clock = clock
        self._min_backoff = min_backoff
        self._run_clock = run_clock  # the runs' own "now" (sync_group's clock); None: the wall clock
        self._schedules: dict[str, _GroupSchedule] = {}

    def _refresh_groups(self) -> None:
        for info in self._client.list_groups():
            name = info.spec.name
            if self._only and name not in self._only:
                continue
            spec = info.spec
            adaptive = (float(spec.sync_min_seconds or 60), float(spec.sync_max_seconds or 3600), float(spec.max_age_seconds)) if spec.sync_adaptive else None
            interval = adaptive[0] if adaptive else float(spec.sync_interval_seconds or 300)
            schedule = self._schedules.get(name)
            if schedule is None:
                self._schedules[name] = _GroupSchedule(interval, self._clock(), adaptive=adaptive)
            elif adaptive is None or schedule.adaptive is None:
                schedule.interval, schedule.adaptive = interval, adaptive  # a fixed interval as declared now
            else:
                schedule.adaptive = adaptive

    def interval_of(self, group: str) -> float:
        """The interval the scheduler currently uses for a group (adaptive groups move it run by run)."""
        return self._schedules[group].interval

    def run_due(self, forced: set[str] | None = None) -> list[SyncRun]:
        """Run every group that is due, or has a forced-resync request (from the monitor), once; returns the runs."""
        self._refresh_groups()
        requests = {r.group: r.id for r in self._client.pending_resyncs()}
        forced = set(forced or set()) | set(requests)
        now = self._clock()
        runs = []
        for name, schedule in sorted(self._schedules.items()):
            is_forced = name in (forced or set())
            if schedule.next_due > now and not is_forced:
                continue
            run = sync_group(self._client, self._store, name, full=is_forced, forced=is_forced, clock=self._run_clock)
            runs.append(run)
            if run.outcome == "success":
                if is_forced and name in requests:
                    self._client.ack_resync(requests[name])
                schedule.failures = 0
                if schedule.adaptive is not None:
                    schedule.values = max(schedule.values, run.values_written)
                    schedule.interval = next_adaptive_interval(schedule.interval, run.values_written, *schedule.adaptive,
                                                               group_values=schedule.values)
                schedule.next_due = self._clock() + schedule.interval
            else:
                schedule.failures += 1
                schedule.next_due = self._clock() + min(schedule.interval, self._min_backoff * 2 ** (schedule.failures - 1))
        return runs

    def seconds_until_next(self) -> float:
        if not self._schedules:
            return 1.0
        return max(0.0, min(s.next_due for s in self._schedules.values()) - self._clock())
