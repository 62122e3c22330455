"""The offline -> online loader: latest valid value per entity and feature version since the last successful
sync, streamed through Publish (so every publish rule applies), recorded as a sync run; and the scheduler
that runs it per group at the group's own interval with retry and backoff."""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from fsd.client import Client
from fsd.domain import GroupInfo, SyncRun, VersionState
from fsd.errors import FsdError
from fsd.offline.retrieval import FeatureVersion, latest_values
from fsd.offline.store import CREATED_TIMESTAMP, EVENT_TIMESTAMP, VALUE, OfflineStore
from fsd.sync import rules

logger = logging.getLogger(__name__)


def _snapshot_micros(snapshot_id: str) -> int:
    head = snapshot_id.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


# The publish mode each kind of offline write is synced in (a forced resync uses RESYNC for all of them).
MODE_OF_KIND = {"ingest": "REFRESH", "backfill": "BACKFILL", "correction": "CORRECTION"}


@dataclass(frozen=True)
class _Batch:
    """Values of one feature version and one kind of write, ready to publish."""

    feature: str
    version: int
    mode: str
    table: pa.Table
    snapshot: str


def _batches(info: GroupInfo, store: OfflineStore, previous: int, full: bool, now: int) -> list[_Batch]:
    """What a run publishes: per SERVING/PENDING version with new offline snapshots, the latest value per entity of
    each kind of write (a forced resync: of all kinds together, authoritative). Read completely before anything is
    published, so a run that cannot publish one batch publishes none."""
    group = info.spec.name
    keys = [k.name for k in info.spec.entity_keys]
    out = []
    for feature, versions in info.versions.items():
        for v in versions:
            if v.state not in (VersionState.SERVING, VersionState.PENDING):
                continue
            fv = FeatureVersion(group, feature, v.version, tuple(keys), 0)
            groups_of_kinds = [(None, "RESYNC")] if full else [(frozenset({kind}), mode) for kind, mode in MODE_OF_KIND.items()]
            for kinds, mode in groups_of_kinds:
                fresh = [s for s in store.snapshots(group, feature, v.version, kinds) if full or _snapshot_micros(s) > previous]
                if not fresh:
                    continue
                latest = latest_values(store, fv, as_of_micros=now, since_created_micros=None if full else previous, kinds=kinds)
                if latest.num_rows == 0:
                    continue
                table = pa.table({**{k: latest[k] for k in keys}, EVENT_TIMESTAMP: latest[EVENT_TIMESTAMP],
                                  CREATED_TIMESTAMP: latest[CREATED_TIMESTAMP], feature: latest[VALUE]})
                out.append(_Batch(feature, v.version, mode, table, fresh[-1]))
    return out


def sync_group(
    client: Client,
    store: OfflineStore,
    group: str,
    *,
    full: bool = False,
    forced: bool = False,
    chunk_rows: int = 20_000,
    on_rows: Callable[[int], None] | None = None,
) -> SyncRun:
    """One sync run of a group's SERVING and PENDING versions, through Publish and so through every publish rule;
    always recorded, success or not. All or nothing: a batch the rules would block (an entity-key mismatch in an
    offline file) is sent alone, so the daemon refuses it and opens its review incident, and nothing of the run
    goes online. `full` is a forced resync: the offline truth replaces online values inside the serving window."""
    started = time.time_ns() // 1000
    rows_read = values_written = rows_rejected = 0
    reasons: dict[str, int] = {}
    try:
        info = client.get_group(group)
        previous = 0 if full else next((r.watermark_micros for r in client.sync_runs(group, 200) if r.outcome == "success"), 0)
        batches = _batches(info, store, previous, full, started)
        blocked = next((b for b in batches if rules.entity_key_mismatch(b.table.schema, info.spec).reason), None)
        if blocked is not None:
            batches = [blocked]  # the daemon refuses it (FAILED_PRECONDITION) and opens the incident
        watermark, newest_snapshot, snapshots = previous, 0, []
        for batch in batches:
            result = client.publish(group, batch.table, publish_id=f"sync-{group}-{uuid.uuid4().hex[:12]}", chunk_rows=chunk_rows,
                                    feature_versions={batch.feature: batch.version}, mode=batch.mode, snapshot_id=batch.snapshot,
                                    on_chunk=on_rows)
            rows_read += batch.table.num_rows
            values_written += result.values_written
            rows_rejected += result.rows_rejected
            for reason, count in result.reason_counts.items():
                reasons[reason] = reasons.get(reason, 0) + count
            watermark = max(watermark, int(pa.compute.max(batch.table[CREATED_TIMESTAMP].cast(pa.int64())).as_py()))
            newest_snapshot = max(newest_snapshot, _snapshot_micros(batch.snapshot))
            snapshots.append(f"{batch.feature}@{batch.version}:{batch.snapshot}")
        ended = time.time_ns() // 1000
        run = SyncRun(group, started, ended, "success", snapshot=",".join(snapshots), rows_read=rows_read, values_written=values_written,
                      rows_rejected=rows_rejected, reason_counts=reasons, watermark_micros=watermark,
                      sync_delay_micros=ended - newest_snapshot if newest_snapshot else 0, forced=forced)
    except (FsdError, OSError) as exc:
        error = exc.message if isinstance(exc, FsdError) else str(exc)
        logger.warning("sync of %s failed: %s", group, error)
        run = SyncRun(group, started, time.time_ns() // 1000, "failed", error=error[:1000], rows_read=rows_read, values_written=values_written,
                      rows_rejected=rows_rejected, reason_counts=reasons, forced=forced)
    return client.record_sync_run(run)


@dataclass
class _GroupSchedule:
    interval: float
    next_due: float
    failures: int = 0


class SyncScheduler:
    """Runs each group at its own sync interval; failed runs retry with exponential backoff (capped at the interval)."""

    def __init__(self, client: Client, store: OfflineStore, groups: list[str] | None = None, clock: Callable[[], float] = time.monotonic,
                 min_backoff: float = 1.0) -> None:
        self._client = client
        self._store = store
        self._only = groups
        self._clock = clock
        self._min_backoff = min_backoff
        self._schedules: dict[str, _GroupSchedule] = {}

    def _refresh_groups(self) -> None:
        for info in self._client.list_groups():
            name = info.spec.name
            if self._only and name not in self._only:
                continue
            interval = float(info.spec.sync_interval_seconds or 300)
            if name not in self._schedules:
                self._schedules[name] = _GroupSchedule(interval, self._clock())
            else:
                self._schedules[name].interval = interval

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
            run = sync_group(self._client, self._store, name, full=is_forced, forced=is_forced)
            runs.append(run)
            if run.outcome == "success":
                if is_forced and name in requests:
                    self._client.ack_resync(requests[name])
                schedule.failures = 0
                schedule.next_due = self._clock() + schedule.interval
            else:
                schedule.failures += 1
                schedule.next_due = self._clock() + min(schedule.interval, self._min_backoff * 2 ** (schedule.failures - 1))
        return runs

    def seconds_until_next(self) -> float:
        if not self._schedules:
            return 1.0
        return max(0.0, min(s.next_due for s in self._schedules.values()) - self._clock())
