"""Publish sessions: each Arrow chunk is validated against the registry, then written atomically and durably.

A chunk is all-or-nothing at the storage level: its valid rows, and the publish's progress marker, go in
one WriteBatch that is synced before the chunk counts as acknowledged. Invalid rows are rejected with a rule
id and never written. A retried chunk (same publish id, sequence already durable) has no further effect.
"""
from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from fsd import codec
from fsd.domain import Clock, DType, KeyType, VersionState
from fsd.errors import FailedPrecondition, InvalidArgument, NotFound
from fsd.online.base import OnlineStore
from fsd.registry.registry import GroupInfo, RegistrySnapshot, VersionInfo
from fsd import validation
from fsd.validation import Rejection

logger = logging.getLogger(__name__)

MARKER_FORMAT = 0x02  # key space of publish progress markers, apart from values (0x01)
_MARKER = struct.Struct(">qIq")  # last durable sequence, group id, updated at (µs)
MAX_PUBLISH_ID_CHARS = 128
MAX_REJECTIONS_REPORTED = 1000

# Publish modes (values equal the wire enum fsd.v1.PublishMode; 0 means REFRESH).
INITIAL, REFRESH, BACKFILL, CORRECTION = 1, 2, 3, 4
MODE_NAMES = {0: "REFRESH", INITIAL: "INITIAL", REFRESH: "REFRESH", BACKFILL: "BACKFILL", CORRECTION: "CORRECTION"}

# Reason codes of the publish rules (stable: they appear in responses, metrics and the README).
NEW_FEATURE_ACCEPTED = "NEW_FEATURE_ACCEPTED"          # rule new_feature
PENDING_VERSION_WRITE = "PENDING_VERSION_WRITE"        # rule definition_update
OLDER_THAN_ONLINE = "OLDER_THAN_ONLINE"                # rule value_refresh
BACKFILL_NOT_NEWEST = "BACKFILL_NOT_NEWEST"            # rule backfill
CORRECTION_OUTSIDE_WINDOW = "CORRECTION_OUTSIDE_WINDOW"  # rule late_correction
ENTITY_KEY_MISMATCH = "ENTITY_KEY_MISMATCH"            # rule entity_key_mismatch
ROW_REJECTED = "ROW_REJECTED"                          # rules timestamp_validity and the value rules


@dataclass(frozen=True, slots=True)
class PublishLimits:
    max_future_skew_micros: int = 300 * 1_000_000
    max_chunk_rows: int = 1_000_000


@dataclass(slots=True)
class PublishStats:
    publish_id: str = ""
    group: str = ""
    chunks_written: int = 0
    chunks_skipped_duplicate: int = 0
    rows_received: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    values_written: int = 0
    values_skipped_older: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    rejections_truncated: bool = False
    reason_counts: dict[str, int] = field(default_factory=dict)
    mode: int = REFRESH

    def count(self, reason: str, n: int) -> None:
        if n:
            self.reason_counts[reason] = self.reason_counts.get(reason, 0) + n


def marker_key(publish_id: str) -> bytes:
    return bytes([MARKER_FORMAT]) + publish_id.encode("utf-8")


def decode_ipc(payload: bytes) -> pa.Table:
    """Arrow IPC stream bytes -> Table; anything malformed is the caller's error, never ours."""
    try:
        with pa.ipc.open_stream(pa.py_buffer(payload)) as reader:
            table = reader.read_all()
        table.validate(full=True)
        return table
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, pa.ArrowException, OSError, ValueError) as exc:
        raise InvalidArgument(f"arrow_ipc: not a valid Arrow IPC stream: {exc}", field="arrow_ipc") from None


class PublishSession:
    """One publish stream. Not thread-safe by itself: the servicer feeds it chunks in order."""

    def __init__(
        self, publisher: Publisher, publish_id: str, group_name: str, feature_versions: dict[str, int] | None = None, mode: int = REFRESH
    ) -> None:
        if mode not in MODE_NAMES:
            raise InvalidArgument(f"unknown publish mode {mode}", field="mode")
        if not publish_id or len(publish_id) > MAX_PUBLISH_ID_CHARS:
            raise InvalidArgument(f"publish_id must be 1 to {MAX_PUBLISH_ID_CHARS} characters", field="publish_id")
        self._publisher = publisher
        snapshot = publisher.snapshot()
        self._group: GroupInfo = snapshot.group(group_name)
        self._snapshot = snapshot
        self._declared = dict(feature_versions or {})
        for name, version in self._declared.items():
            _target_version(self._group, name, version)  # refuse unknown/unwritable versions before any chunk
        self.stats = PublishStats(publish_id=publish_id, group=group_name, mode=mode or REFRESH)
        self._marker = marker_key(publish_id)
        self._schema: pa.Schema | None = None
        self._next_sequence = publisher.durable_sequence(publish_id, self._group.group_id) + 1

    def write_chunk(self, sequence: int, payload: bytes) -> None:
        if sequence < self._next_sequence:
            self.stats.chunks_skipped_duplicate += 1  # already durable from an earlier attempt
            return
        if sequence > self._next_sequence:
            raise FailedPrecondition(
                f"publish {self.stats.publish_id}: chunk sequence {sequence} arrived, expected {self._next_sequence} "
                "(resume from the last acknowledged chunk + 1)",
                field="sequence",
            )
        table = decode_ipc(payload)
        mismatch = validation.entity_key_mismatch(table.schema, self._group.spec)
        if mismatch is not None:
            incident = self._publisher.report_incident(self._group.spec.name, "entity_key_mismatch", self.stats.publish_id, mismatch)
            self.stats.count(ENTITY_KEY_MISMATCH, table.num_rows)
            raise FailedPrecondition(
                f"{ENTITY_KEY_MISMATCH}: {mismatch}; the publish is blocked and review incident #{incident} was opened "
                "(fsd incidents). Nothing of this chunk was written.",
                field="entity_keys",
            )
        if self._schema is None:
            self._schema = table.schema
        elif not table.schema.equals(self._schema, check_metadata=False):
            raise InvalidArgument(f"chunk {sequence}: schema differs from the first chunk of this publish", field="arrow_ipc")
        if table.num_rows > self._publisher.limits.max_chunk_rows:
            raise InvalidArgument(
                f"chunk {sequence}: {table.num_rows} rows exceed the limit of {self._publisher.limits.max_chunk_rows}", field="arrow_ipc"
            )
        row_offset = self.stats.rows_received
        prepared = _prepare_chunk(table, self._group, self._declared, self._publisher.clock.now_micros(), self._publisher.limits, self.stats)
        self._publisher.write_prepared(prepared, self._marker, sequence, self._group.group_id, self.stats)
        self._publisher.chunk_done(self._group.spec.name, self.stats, prepared.newest_event)
        self._next_sequence = sequence + 1
        self.stats.chunks_written += 1
        self.stats.rows_received += table.num_rows
        accepted = int(prepared.valid.sum())
        self.stats.rows_accepted += accepted
        self.stats.rows_rejected += table.num_rows - accepted
        self.stats.count(ROW_REJECTED, table.num_rows - accepted)
        for rejection in prepared.rejections:
            if len(self.stats.rejections) >= MAX_REJECTIONS_REPORTED:
                self.stats.rejections_truncated = True
                break
            self.stats.rejections.append(
                Rejection(rejection.row_start + row_offset, rejection.row_end + row_offset, rejection.field, rejection.rule, rejection.reason)
            )


@dataclass(slots=True)
class _PreparedChunk:
    valid: np.ndarray
    rejections: list[Rejection]
    entities: list[bytes]           # for valid rows, deduplicated to the newest row per entity
    newest_event: int               # greatest event time offered (0 when none)
    slots: list[int]
    encoded: list[list[bytes | None]]  # per feature slot, per kept entity; None = not offered online


def _target_version(info: GroupInfo, name: str, declared: int | None) -> VersionInfo:
    """The version a feature column writes: the declared one (PENDING or SERVING), else the SERVING one."""
    versions = info.versions.get(name)
    if not versions:
        raise InvalidArgument(f"column {name!r} is not a feature of group {info.spec.name}", field=name)
    if declared is None:
        for v in versions:
            if v.state == VersionState.SERVING:
                return v
        raise FailedPrecondition(f"feature {info.spec.name}:{name} has no SERVING version; name the version to write", field=name)
    for v in versions:
        if v.version == declared:
            if v.state not in (VersionState.PENDING, VersionState.SERVING):
                raise FailedPrecondition(
                    f"feature {info.spec.name}:{name}@{declared} is {v.state.name}; only PENDING and SERVING versions take writes", field=name
                )
            return v
    raise NotFound(f"feature {info.spec.name}:{name} has no version {declared}", field=name)


def target_versions(table: pa.Table, info: GroupInfo, declared: dict[str, int]) -> dict[str, VersionInfo]:
    """Schema checks against the versions written; returns feature column -> target version."""
    features = validation.feature_columns(table, info.spec)
    undeclared = sorted(set(declared) - set(features))
    if undeclared:
        raise InvalidArgument(f"feature_versions names {undeclared[0]!r}, which the chunk does not carry", field="feature_versions")
    targets = {name: _target_version(info, name, declared.get(name)) for name in features}
    validation.check_feature_types(table, info.spec, {n: (t.version, t.spec) for n, t in targets.items()})
    return targets


def _prepare_chunk(
    table: pa.Table, info: GroupInfo, declared: dict[str, int], now: int, limits: PublishLimits, stats: PublishStats
) -> _PreparedChunk:
    group = info.spec
    targets = target_versions(table, info, declared)
    checked = validation.validate_rows(table, group, {n: t.spec for n, t in targets.items()}, now, limits.max_future_skew_micros)
    keep_rows = np.flatnonzero(checked.valid)
    is_string = [k.type == KeyType.STRING for k in group.entity_keys]
    key_values = [[c.values[i] for i in keep_rows] if s else c.values[keep_rows] for c, s in zip(checked.keys, is_string)]  # type: ignore[index]
    entities = codec.encode_entities(key_values, is_string) if len(keep_rows) else []
    event_times = checked.event_times[keep_rows]
    created_times = checked.created_times[keep_rows] if checked.created_times is not None else np.full(len(keep_rows), now, dtype=np.int64)
    # One value per entity per chunk: the greatest (event time, created time); the later row among exact ties.
    newest: dict[bytes, int] = {}
    for pos, entity in enumerate(entities):
        prev = newest.get(entity)
        if prev is None or (event_times[pos], created_times[pos]) >= (event_times[prev], created_times[prev]):
            newest[entity] = pos
    chosen = np.fromiter(sorted(newest.values()), dtype=np.int64, count=len(newest))
    chosen_rows = keep_rows[chosen]
    chosen_times = event_times[chosen]
    slots: list[int] = []
    encoded: list[list[bytes | None]] = []
    for name, col in checked.features.items():
        target = targets[name]
        spec = target.spec
        slots.append(target.slot)
        if spec.dtype in (DType.STRING, DType.BYTES):
            values: object = [col.values[i] for i in chosen_rows]  # type: ignore[index]
        else:
            values = col.values[chosen_rows]  # type: ignore[index]
        column: list[bytes | None] = codec.encode_values(
            int(spec.dtype), values, col.nulls[chosen_rows], chosen_times, created_times[chosen], spec.vector_dim
        )
        if stats.mode == CORRECTION:
            # Late corrections go online only inside the active serving window (not older than max age).
            max_age = (spec.max_age_seconds or group.max_age_seconds) * 1_000_000
            if max_age:
                outside = now - chosen_times > max_age
                stats.count(CORRECTION_OUTSIDE_WINDOW, int(outside.sum()))
                column = [None if o else v for v, o in zip(column, outside)]
        offered = sum(v is not None for v in column)
        if target.state == VersionState.PENDING:
            stats.count(PENDING_VERSION_WRITE, offered)
        if target.first_published_micros is None:
            stats.count(NEW_FEATURE_ACCEPTED, offered)
        encoded.append(column)
    newest_event = int(chosen_times.max()) if len(chosen_times) else 0
    return _PreparedChunk(checked.valid, checked.rejections, [entities[i] for i in chosen], newest_event, slots, encoded)


class Publisher:
    """Owns the write path into one OnlineStore; serialises the read-compare-write of each chunk."""

    def __init__(
        self,
        store: OnlineStore,
        snapshot_source: Callable[[], RegistrySnapshot],
        clock: Clock,
        limits: PublishLimits | None = None,
        on_written: Callable[[Sequence[int]], None] | None = None,
        on_incident: Callable[[str, str, str, str], int] | None = None,
        on_chunk: Callable[[str, PublishStats, int], None] | None = None,
    ) -> None:
        self._on_incident = on_incident
        self._on_chunk = on_chunk  # (group, stats so far, newest event time) after each durable chunk
        self._store = store
        self._snapshot_source = snapshot_source
        self.clock = clock
        self.limits = limits or PublishLimits()
        self._on_written = on_written
        self._lock = threading.Lock()

    def snapshot(self) -> RegistrySnapshot:
        return self._snapshot_source()

    def begin(self, publish_id: str, group: str, feature_versions: dict[str, int] | None = None, mode: int = REFRESH) -> PublishSession:
        if not group:
            raise InvalidArgument("the first chunk must name the feature group", field="group")
        return PublishSession(self, publish_id, group, feature_versions, mode)

    def set_chunk_hook(self, hook: Callable[[str, PublishStats, int], None]) -> None:
        self._on_chunk = hook

    def chunk_done(self, group: str, stats: PublishStats, newest_event: int) -> None:
        if self._on_chunk is not None:
            self._on_chunk(group, stats, newest_event)

    def report_incident(self, group: str, kind: str, publish_id: str, detail: str) -> int:
        logger.warning("publish %s to %s blocked: %s", publish_id, group, detail)
        return self._on_incident(group, kind, publish_id, detail) if self._on_incident is not None else 0

    def publish_status(self, publish_id: str) -> tuple[bool, int, int]:
        """(known, last durable sequence, group id) of a publish."""
        raw = self._store.get_many([marker_key(publish_id)])[0]
        if raw is None:
            return False, -1, 0
        sequence, group_id, _ = _MARKER.unpack(raw)
        return True, sequence, group_id

    def durable_sequence(self, publish_id: str, group_id: int) -> int:
        known, sequence, marker_group = self.publish_status(publish_id)
        if known and marker_group != group_id:
            raise FailedPrecondition("publish_id was already used for another feature group", field="publish_id")
        return sequence

    def write_prepared(self, chunk: _PreparedChunk, marker: bytes, sequence: int, group_id: int, stats: PublishStats) -> None:
        with self._lock:  # read-merge-write of the chunk's rows must not interleave with another publish
            keys = codec.entity_keys(group_id, chunk.entities)
            existing = self._store.get_many(keys)
            rows, written, skipped = codec.merge_rows(existing, chunk.slots, chunk.encoded)
            puts = [(key, row) for key, row in zip(keys, rows) if row is not None]
            puts.append((marker, _MARKER.pack(sequence, group_id, self.clock.now_micros())))
            self._store.write_batch(puts)
        stats.values_written += written
        stats.values_skipped_older += skipped
        stats.count({BACKFILL: BACKFILL_NOT_NEWEST, CORRECTION: CORRECTION_OUTSIDE_WINDOW}.get(stats.mode, OLDER_THAN_ONLINE), skipped)
        if written and self._on_written is not None:
            self._on_written(chunk.slots)

    def purge_slot(self, group_id: int, slot: int, batch_rows: int = 5_000) -> int:
        """Remove one retired feature version's values from every row of its group; returns rows rewritten.

        Works in bounded batches under the write lock, so publishes interleave instead of waiting for the whole scan.
        """
        prefix = codec.group_prefix(group_id)
        rewritten = 0
        cursor: bytes | None = None
        while True:
            with self._lock:
                batch = list(self._store.scan(prefix, limit=batch_rows, start=cursor))
                if not batch:
                    return rewritten
                puts, deletes = [], []
                for key, row in batch:
                    if slot not in codec.parse_row(row):
                        continue
                    remaining = codec.remove_slot(row, slot)
                    if remaining is None:
                        deletes.append(key)
                    else:
                        puts.append((key, remaining))
                if puts or deletes:
                    self._store.write_batch(puts, deletes)
                rewritten += len(puts) + len(deletes)
            cursor = batch[-1][0] + b"\x00"
