"""Publish streams: each Arrow chunk is checked by the publish rules (fsd.rows.rules), then written atomically
and durably.

A chunk is all-or-nothing at the storage level: its valid rows, and the publish's progress marker, go in one
WriteBatch that is synced before the chunk counts as acknowledged. Invalid rows are rejected with a rule id and
never written. A retried chunk (same publish id, sequence already durable) has no further effect: the durable
sequence is re-read inside the same critical section as the write, so two overlapping streams with one publish
id cannot both apply a chunk.

One stream reads top to bottom: begin (group, declared versions, mode) -> per chunk: decode, rules, encode,
merge-write, account -> result. Whoever must hear of a write (the registry, the freshness monitor, metrics)
hears it through one PublishEvents object.
"""
from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pyarrow as pa

from fsd import codec
from fsd.rows import checks
from fsd.domain import (
    WRITABLE, Clock, DType, GroupInfo, KeyType, PublishChunk, PublishMode, PublishResult, PublishStatus, Rejection, RegistrySnapshot, VersionInfo,
    resolve_version,
)
from fsd.errors import FailedPrecondition, InvalidArgument, ResourceExhausted, echo
from fsd.online.base import OnlineStore
from fsd.rows import rules

logger = logging.getLogger(__name__)

MARKER_FORMAT = 0x02  # key space of publish progress markers, apart from values (0x01)
_MARKER = struct.Struct(">qIq")  # last durable sequence, group id, updated at (µs)
MAX_PUBLISH_ID_CHARS = 128
MAX_REJECTIONS_REPORTED = 1000


class PublishEvents(Protocol):
    """What the rest of the daemon hears of publishes."""

    def written(self, slots: Sequence[int]) -> None:
        """Values of these feature versions became durable online."""

    def chunk_done(self, group: str, newest_event_micros: int) -> None:
        """A chunk of `group` is durable; its greatest offered event time."""

    def incident(self, group: str, kind: str, publish_id: str, detail: str) -> int:
        """A publish was blocked for review; returns the incident id."""
        ...


@dataclass(frozen=True, slots=True)
class PublishLimits:
    max_future_skew_micros: int = 300 * 1_000_000
    max_chunk_rows: int = 1_000_000


@dataclass(slots=True)
class PublishStats:
    """A stream's running totals (its PublishResult once it ends)."""

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
    mode: PublishMode = PublishMode.REFRESH

    def count(self, decision: rules.Decision) -> None:
        if decision.reason and decision.count:
            self.reason_counts[decision.reason] = self.reason_counts.get(decision.reason, 0) + decision.count

    def result(self) -> PublishResult:
        return PublishResult(
            self.publish_id, self.group, self.chunks_written, self.chunks_skipped_duplicate, self.rows_received, self.rows_accepted,
            self.rows_rejected, self.values_written, self.values_skipped_older, tuple(self.rejections), self.rejections_truncated,
            dict(self.reason_counts),
        )


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
        raise InvalidArgument(f"arrow_ipc: not a valid Arrow IPC stream: {str(exc)[:200]}", field="arrow_ipc") from None


def _target_version(info: GroupInfo, name: str, declared: int | None) -> VersionInfo:
    """The version a feature column writes: the declared one (PENDING or SERVING), else the SERVING one."""
    if name not in info.versions:
        raise InvalidArgument(f"column {echo(name)} is not a feature of group {info.spec.name}; drop it from the file "
                              "(or publish with --ignore-extra-columns)", field=name[:100])
    try:
        return resolve_version(info, name, declared, allowed=WRITABLE, field=name)
    except FailedPrecondition as exc:
        hint = "; name the version to write" if declared is None else ""
        raise FailedPrecondition(exc.message + hint, field=name) from None


def target_versions(table: pa.Table, info: GroupInfo, declared: dict[str, int]) -> dict[str, VersionInfo]:
    """Schema checks against the versions written; returns feature column -> target version."""
    features = checks.feature_columns(table, info.spec)
    undeclared = sorted(set(declared) - set(features))
    if undeclared:
        raise InvalidArgument(f"feature_versions names {echo(undeclared[0])}, which the chunk does not carry", field="feature_versions")
    targets = {name: _target_version(info, name, declared.get(name)) for name in features}
    rules.breaking_change(table, info, targets)
    return targets


@dataclass(slots=True)
class PreparedChunk:
    """A chunk after the rules, ready to merge: one value per kept entity and feature version."""

    valid: np.ndarray
    rejections: list[Rejection]
    entities: list[bytes]           # for valid rows, deduplicated to the newest row per entity
    newest_event: int               # greatest event time offered (0 when none)
    slots: list[int]
    encoded: list[list[bytes | None]]  # per feature slot, per kept entity; None = not offered online
    decisions: list[rules.Decision]


def prepare_chunk(table: pa.Table, info: GroupInfo, declared: dict[str, int], mode: PublishMode, now: int, limits: PublishLimits) -> PreparedChunk:
    """Rules and encoding of one chunk; pure (reads nothing, writes nothing)."""
    group = info.spec
    targets = target_versions(table, info, declared)
    checked = checks.validate_rows(table, group, {n: t.spec for n, t in targets.items()}, now, limits.max_future_skew_micros)
    decisions = [rules.timestamp_validity(checked.valid)]
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
        values: object = [col.values[i] for i in chosen_rows] if spec.dtype in (DType.STRING, DType.BYTES) else col.values[chosen_rows]  # type: ignore[index]
        column: list[bytes | None] = codec.encode_values(
            int(spec.dtype), values, col.nulls[chosen_rows], chosen_times, created_times[chosen], spec.vector_dim
        )
        max_age = (spec.max_age_seconds or group.max_age_seconds) * 1_000_000
        for window in (rules.late_correction(mode, chosen_times, now, max_age), rules.forced_resync(mode, chosen_times, now, max_age)):
            if window.keep is not None:
                column = [v if k else None for v, k in zip(column, window.keep)]
            decisions.append(window)
        offered = sum(v is not None for v in column)
        decisions.extend((rules.definition_update(target, offered), rules.new_feature(target, offered)))
        encoded.append(column)
    newest_event = int(chosen_times.max()) if len(chosen_times) else 0
    return PreparedChunk(checked.valid, checked.rejections, [entities[i] for i in chosen], newest_event, slots, encoded, decisions)


class _NoEvents:
    def written(self, slots: Sequence[int]) -> None:
        pass

    def chunk_done(self, group: str, newest_event_micros: int) -> None:
        pass

    def incident(self, group: str, kind: str, publish_id: str, detail: str) -> int:
        return 0


class PublishSession:
    """A publish fed chunk by chunk in-process (tests, the evaluation harness): the same path as a stream."""

    def __init__(self, publisher: Publisher, stream: _Stream) -> None:
        self._publisher = publisher
        self._stream = stream

    @property
    def stats(self) -> PublishStats:
        return self._stream.stats

    def write_chunk(self, sequence: int, payload: bytes) -> None:
        s = self._stream
        chunk = PublishChunk(s.stats.publish_id, s.stats.group, sequence, payload, dict(s.declared), s.stats.mode)
        self._publisher._write_chunk(s, chunk)


class Publisher:
    """Owns the write path into one OnlineStore; serialises the read-compare-write of each chunk."""

    def __init__(self, store: OnlineStore, snapshots: Callable[[], RegistrySnapshot], clock: Clock, events: PublishEvents | None = None,
                 limits: PublishLimits | None = None) -> None:
        self._store = store
        self._snapshots = snapshots
        self._events: PublishEvents = events or _NoEvents()
        self.clock = clock
        self.limits = limits or PublishLimits()
        self._lock = threading.Lock()

    # --- one stream ------------------------------------------------------------------------------------------

    def publish_stream(self, chunks: Iterable[PublishChunk], is_active: Callable[[], bool] = lambda: True) -> PublishResult:
        """Apply a stream of chunks in order; stops reading once the caller is gone (deadline, cancel)."""
        stream: _Stream | None = None
        for chunk in chunks:
            if stream is None:
                stream = _Stream.begin(self._snapshots(), chunk, self._durable_sequence)
            else:
                stream.check_same(chunk)
            if not is_active():
                break
            self._write_chunk(stream, chunk)
        if stream is None:
            raise InvalidArgument("publish stream carried no chunks", field="arrow_ipc")
        return stream.stats.result()

    def begin(self, publish_id: str, group: str, feature_versions: dict[str, int] | None = None,
              mode: PublishMode = PublishMode.REFRESH) -> PublishSession:
        """A publish to feed chunk by chunk (first chunk checks as in publish_stream)."""
        first = PublishChunk(publish_id, group, 0, b"", dict(feature_versions or {}), mode)
        return PublishSession(self, _Stream.begin(self._snapshots(), first, self._durable_sequence))

    def _write_chunk(self, stream: _Stream, chunk: PublishChunk) -> None:
        table = stream.decode(chunk, self.limits)
        if table is None:
            return
        mismatch = rules.entity_key_mismatch(table.schema, stream.group.spec)
        if mismatch.reason:
            stream.stats.count(rules.Decision(mismatch.rule, mismatch.reason, table.num_rows))
            logger.warning("publish %s to %s blocked: %s", stream.stats.publish_id, stream.group.spec.name, mismatch.detail)
            incident = self._events.incident(stream.group.spec.name, "entity_key_mismatch", stream.stats.publish_id, mismatch.detail)
            raise FailedPrecondition(
                f"{rules.ENTITY_KEY_MISMATCH}: {mismatch.detail}; the publish is blocked and review incident #{incident} was opened "
                "(fsd incidents). Nothing of this chunk was written.",
                field="entity_keys",
            )
        prepared = prepare_chunk(table, stream.group, stream.declared, stream.stats.mode, self.clock.now_micros(), self.limits)
        written, skipped = self._merge_write(prepared, stream, chunk.sequence)
        if written is None:
            stream.stats.chunks_skipped_duplicate += 1  # another stream with this publish id made it durable first
            return
        stream.account(table.num_rows, prepared, written, skipped)
        if written:
            self._events.written(prepared.slots)
        self._events.chunk_done(stream.group.spec.name, prepared.newest_event)

    def _merge_write(self, chunk: PreparedChunk, stream: _Stream, sequence: int) -> tuple[int | None, int]:
        """Merge the chunk into the stored rows and write them with the progress marker, all under the write lock;
        (None, 0) when the marker shows the sequence already durable."""
        group_id = stream.group.group_id
        marker = marker_key(stream.stats.publish_id)
        with self._lock:  # the durable-sequence check and the write are one step for this process's streams
            if self._durable_sequence(stream.stats.publish_id, group_id) >= sequence:
                return None, 0
            keys = codec.entity_keys(group_id, chunk.entities)
            progress = (marker, _MARKER.pack(sequence, group_id, self.clock.now_micros()))
            written, skipped = self._store.merge_rows(keys, chunk.slots, chunk.encoded, rules.replaces_online(stream.stats.mode), [progress])
        return written, skipped

    # --- progress markers --------------------------------------------------------------------------------------

    def publish_status(self, publish_id: str) -> PublishStatus:
        """Where a publish stands (its group named when the registry still knows it)."""
        raw = self._store.get_many([marker_key(publish_id)])[0] if publish_id else None
        if raw is None:
            return PublishStatus(publish_id, False, -1)
        sequence, group_id, _ = _MARKER.unpack(raw)
        group = self._snapshots().group_by_id(group_id)
        return PublishStatus(publish_id, True, sequence, group.spec.name if group else "")

    def _durable_sequence(self, publish_id: str, group_id: int) -> int:
        raw = self._store.get_many([marker_key(publish_id)])[0]
        if raw is None:
            return -1
        sequence, marker_group, _ = _MARKER.unpack(raw)
        if marker_group != group_id:
            raise FailedPrecondition("publish_id was already used for another feature group", field="publish_id")
        return sequence

    # --- retention -------------------------------------------------------------------------------------------

    def purge_slot(self, group_id: int, slot: int, batch_rows: int = 5_000) -> int:
        """Remove one retired feature version's values from every row of its group; returns rows rewritten."""
        return self._store.purge_slot(codec.group_prefix(group_id), slot, batch_rows)


@dataclass(slots=True)
class _Stream:
    """The state of one publish stream: its group as of the first chunk, declared versions, and totals."""

    group: GroupInfo
    declared: dict[str, int]
    stats: PublishStats
    next_sequence: int
    schema: pa.Schema | None = None

    @staticmethod
    def begin(snapshot: RegistrySnapshot, first: PublishChunk, durable_sequence: Callable[[str, int], int]) -> _Stream:
        mode = PublishMode.of(first.mode)
        if not first.publish_id or len(first.publish_id) > MAX_PUBLISH_ID_CHARS:
            raise InvalidArgument(f"publish_id must be 1 to {MAX_PUBLISH_ID_CHARS} characters", field="publish_id")
        if not first.group:
            raise InvalidArgument("the first chunk must name the feature group", field="group")
        group = snapshot.group(first.group)
        declared = dict(first.feature_versions)
        for name, version in declared.items():
            _target_version(group, name, version)  # refuse unknown/unwritable versions before any chunk
        stats = PublishStats(publish_id=first.publish_id, group=first.group, mode=mode)
        return _Stream(group, declared, stats, durable_sequence(first.publish_id, group.group_id) + 1)

    def check_same(self, chunk: PublishChunk) -> None:
        if chunk.publish_id and chunk.publish_id != self.stats.publish_id:
            raise InvalidArgument("publish_id changed within one publish stream", field="publish_id")
        if chunk.group and chunk.group != self.stats.group:
            raise InvalidArgument("group changed within one publish stream", field="group")

    def decode(self, chunk: PublishChunk, limits: PublishLimits) -> pa.Table | None:
        """The chunk's table, or None for a chunk already durable from an earlier attempt."""
        if chunk.sequence < self.next_sequence:
            self.stats.chunks_skipped_duplicate += 1
            return None
        if chunk.sequence > self.next_sequence:
            raise FailedPrecondition(
                f"publish {self.stats.publish_id}: chunk sequence {chunk.sequence} arrived, expected {self.next_sequence} "
                "(resume from the last acknowledged chunk + 1)",
                field="sequence",
            )
        table = decode_ipc(chunk.arrow_ipc)
        if self.schema is None:
            self.schema = table.schema
        elif not table.schema.equals(self.schema, check_metadata=False):
            raise InvalidArgument(f"chunk {chunk.sequence}: schema differs from the first chunk of this publish", field="arrow_ipc")
        if table.num_rows > limits.max_chunk_rows:
            raise ResourceExhausted(f"chunk {chunk.sequence}: {table.num_rows} rows exceed the limit of {limits.max_chunk_rows} (limits.max_chunk_rows)",
                                    field="arrow_ipc")
        self.next_sequence = chunk.sequence + 1
        return table

    def account(self, rows: int, prepared: PreparedChunk, written: int, skipped: int) -> None:
        stats = self.stats
        row_offset = stats.rows_received
        stats.chunks_written += 1
        stats.rows_received += rows
        accepted = int(prepared.valid.sum())
        stats.rows_accepted += accepted
        stats.rows_rejected += rows - accepted
        stats.values_written += written
        stats.values_skipped_older += skipped
        resynced = rules.Decision("forced_resync", rules.RESYNC_REPLACED, written) if rules.replaces_online(stats.mode) else rules.Decision("forced_resync")
        for decision in (*prepared.decisions, rules.skipped_as_older(stats.mode, skipped), resynced):
            stats.count(decision)
        for rejection in prepared.rejections:
            if len(stats.rejections) >= MAX_REJECTIONS_REPORTED:
                stats.rejections_truncated = True
                break
            stats.rejections.append(
                Rejection(rejection.row_start + row_offset, rejection.row_end + row_offset, rejection.field, rejection.rule, rejection.reason)
            )


__all__ = ["PublishSession", "PublishEvents", "PublishLimits", "PublishStats", "Publisher", "decode_ipc", "marker_key", "prepare_chunk"]
