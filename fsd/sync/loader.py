"""`fsd sync`: one run moves a group's new offline values online through the daemon's Publish stream (so every
publish rule applies), and records the run, success or not. The offline reads are fsd.offline.latest_values."""
from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute below

from fsd.client import Client
from fsd.domain import Clock, SyncRun, SystemClock
from fsd.errors import FsdError
from fsd.offline.latest_values import (
    DEFAULT_SYNC_MEMORY, SyncBatch, inspect_footers, partitioned_batches, prefetched, publish_streams, read_batches, snapshot_micros,
    sync_partitions, wanted_versions,
)
from fsd.offline.store import CREATED_TIMESTAMP, OfflineStore

logger = logging.getLogger(__name__)


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
        wanted = wanted_versions(info, store, previous, full)
        keys = [k.name for k in info.spec.entity_keys]
        rows, mismatched = inspect_footers(info, store, wanted)
        partitions = sync_partitions(rows, memory_budget)
        if mismatched is not None:  # all or nothing: a file whose keys differ is sent alone, refused, with its incident
            parts: Iterator[list[SyncBatch]] = iter([[mismatched]])
        elif partitions == 1:
            parts = iter([read_batches(info, store, wanted, previous, full, started)])
        else:
            work = Path(tempfile.mkdtemp(prefix="fsd-sync-spill-"))
            parts = prefetched(partitioned_batches(info, store, wanted, previous, full, started, partitions, work))
        watermark, newest_snapshot, snapshots = previous, 0, []
        for batches in parts:
            for batch in batches if mismatched is not None else publish_streams(batches, keys):
                features = len(batch.versions)
                progress = (lambda rows, n=features: on_rows(rows * n)) if on_rows is not None else None
                result = client.publish(group, batch.table, publish_id=f"sync-{group}-{uuid.uuid4().hex[:12]}", chunk_rows=chunk_rows,
                                        feature_versions=batch.versions, mode=batch.mode,
                                        snapshot_id=",".join(s.rsplit(":", 1)[-1] for s in batch.snapshots)[:200], on_chunk=progress)
                rows_read += batch.table.num_rows  # group rows (entity, event time), not values: a row carries every feature in it
                values_written += result.values_written
                rows_rejected += result.rows_rejected
                for reason, count in result.reason_counts.items():
                    reasons[reason] = reasons.get(reason, 0) + count
                watermark = max(watermark, int(pa.compute.max(batch.table[CREATED_TIMESTAMP].cast(pa.int64())).as_py()))
                for snap in batch.snapshots:
                    newest_snapshot = max(newest_snapshot, snapshot_micros(snap.rsplit(":", 1)[-1]))
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
