"""PushEvents: raw events in, computed features kept current online, the events kept offline.

Per accepted batch, under the group's lock (so arrival order is application order): the rows are checked (keys,
a UTC event time, the event columns' types; an event older than received − allowed_lateness is refused per row
under rule late_correction, one too far in the future under timestamp_in_future), stamped with their arrival
(received time, push sequence, row), appended durably to the offline event log, then folded into the
entities' tiles, written in one synced batch with the group's progress marker (last applied sequence, the
computed versions the tiles hold, the recent push ids). Acknowledged means durable in both.

A crash between the two writes leaves log batches the tiles lack: `recover()` (at start, and whenever the set
of computed versions changed, e.g. a new window) replays the log after the marker's sequence, or rebuilds every
tile from the whole log when the versions differ, which is how a new version of an aggregation fills while the
old one keeps serving. A retried push (same push id) skips the chunks already durable.
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from fsd import codec
from fsd.aggregation import tiles
from fsd.aggregation.event_log import RECEIVED, ROW, SEQ, EventLog
from fsd.domain import Clock, DType, FeatureSpec, GroupInfo, PublishResult, Rejection, RegistrySnapshot, VersionState
from fsd.domain.aggregation import Aggregation
from fsd.errors import FailedPrecondition, InvalidArgument, echo
from fsd.online.base import OnlineStore
from fsd.rows import columns
from fsd.rows.checks import RULE_REASONS, ranges

logger = logging.getLogger(__name__)

TILE_FORMAT = 0x03  # key space of tile blobs: 0x03 | group id | entity
TILE_MARKER_FORMAT = 0x04  # one progress marker per group
PUSH_ID = "_push"
PUSH_CHUNK = "_chunk"  # with the push id: what a retried push after a crash skips
RECENT_PUSHES = 256
MAX_REJECTIONS_REPORTED = 1000
_TS = pa.timestamp("us", tz="UTC")


def tile_prefix(group_id: int) -> bytes:
    return bytes([TILE_FORMAT]) + int(group_id).to_bytes(4, "big")


def tile_keys(group_id: int, entities: Sequence[bytes]) -> list[bytes]:
    prefix = tile_prefix(group_id)
    return [prefix + entity for entity in entities]


def marker_key(group_id: int) -> bytes:
    return bytes([TILE_MARKER_FORMAT]) + int(group_id).to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class ComputedVersion:
    slot: int
    feature: str
    version: int
    aggregation: Aggregation
    max_age_micros: int


def computed_versions(info: GroupInfo) -> list[ComputedVersion]:
    """The group's computed feature versions that tiles are kept for (PENDING ones too: they fill before promotion)."""
    found = []
    for feature, versions in sorted(info.versions.items()):
        for v in versions:
            if v.spec.aggregation is not None and v.state in (VersionState.PENDING, VersionState.SERVING, VersionState.DEPRECATED):
                max_age = (v.spec.max_age_seconds or info.spec.max_age_seconds) * 1_000_000
                found.append(ComputedVersion(v.slot, feature, v.version, v.spec.aggregation, max_age))
    return found


@dataclass(slots=True)
class _Marker:
    seq: int = 0
    slots: tuple[int, ...] = ()
    received: int = 0  # arrival times never go backwards, whatever the clock does
    pushes: dict[str, int] | None = None  # push id -> last durable chunk

    def encode(self) -> bytes:
        return json.dumps({"seq": self.seq, "slots": list(self.slots), "received": self.received, "pushes": self.pushes or {}}).encode()

    @staticmethod
    def decode(raw: bytes | None) -> _Marker:
        if raw is None:
            return _Marker(pushes={})
        data = json.loads(raw)
        return _Marker(int(data["seq"]), tuple(data["slots"]), int(data["received"]), {str(k): int(v) for k, v in data["pushes"].items()})


class EventPusher:
    def __init__(self, store: OnlineStore, offline_root: Path, snapshot: Callable[[], RegistrySnapshot], clock: Clock,
                 max_future_skew_micros: int) -> None:
        self._store = store
        self._root = Path(offline_root)
        self._snapshot = snapshot
        self._clock = clock
        self._skew = max_future_skew_micros
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, group: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(group, threading.Lock())

    # --- the push path --------------------------------------------------------------------------------------

    def push(self, group: str, chunks: Sequence[tuple[int, pa.Table]], push_id: str) -> PublishResult:
        info = self._snapshot().group(group)
        if not info.spec.event_columns:
            raise FailedPrecondition(f"group {echo(group)} has no event source: declare event_columns to push events to it", field="group")
        received_rows = accepted_rows = 0
        rejections: list[Rejection] = []
        reasons: dict[str, int] = {}
        written = skipped = 0
        with self._lock(group):
            marker = self._recover_locked(info)
            for sequence, table in chunks:
                received_rows += table.num_rows
                if push_id and marker.pushes.get(push_id, -1) >= sequence:  # type: ignore[union-attr]
                    skipped += 1
                    continue
                accepted, chunk_rejections = self._check(info, table, marker, received_rows - table.num_rows)
                for r in chunk_rejections:
                    reasons[r.rule] = reasons.get(r.rule, 0) + (r.row_end - r.row_start)
                rejections.extend(chunk_rejections)
                if accepted is not None and accepted.num_rows:
                    self._apply_locked(info, accepted, marker, push_id, sequence)
                    accepted_rows += accepted.num_rows
                    written += 1
                elif push_id:
                    marker.pushes[push_id] = sequence  # type: ignore[index]
        values = accepted_rows * len(computed_versions(info))
        if accepted_rows:
            reasons["EVENT_ACCEPTED"] = accepted_rows
        return PublishResult(push_id, group, written, skipped, received_rows, accepted_rows, received_rows - accepted_rows, values, 0,
                             tuple(rejections[:MAX_REJECTIONS_REPORTED]), len(rejections) > MAX_REJECTIONS_REPORTED, reasons)

    def _check(self, info: GroupInfo, table: pa.Table, marker: _Marker, row_offset: int) -> tuple[pa.Table | None, list[Rejection]]:
        """The rows that pass, stamped with their arrival; per-row rejections for the rest."""
        spec = info.spec
        declared = dict(spec.event_columns)
        keys = [k.name for k in spec.entity_keys]
        if "event_timestamp" not in table.column_names and spec.timestamp_field in table.column_names:
            table = table.rename_columns(["event_timestamp" if c == spec.timestamp_field else c for c in table.column_names])
        for name in (*keys, "event_timestamp"):
            if name not in table.column_names:
                raise InvalidArgument(f"events: column {name!r} is missing", field=name)
        unknown = [c for c in table.column_names if c not in declared and c not in keys and c != "event_timestamp"]
        if unknown:
            raise InvalidArgument(f"events: column {echo(unknown[0])} is not an event column of group {spec.name} "
                                  f"(declared: {', '.join(declared) or 'none'})", field=unknown[0][:100])
        ts_type = table.schema.field("event_timestamp").type
        if not pa.types.is_timestamp(ts_type) or ts_type.tz is None:
            raise InvalidArgument("events: event_timestamp must be a timezone-aware (UTC) timestamp", field="event_timestamp")
        invalid = np.zeros(table.num_rows, dtype=np.bool_)
        rejections: list[Rejection] = []

        def collect(column: str, violations: dict[str, np.ndarray]) -> None:
            nonlocal invalid
            for rule, mask in violations.items():
                for start, end in ranges(mask & ~invalid):
                    rejections.append(Rejection(row_offset + start, row_offset + end, column, rule, f"{column}: {RULE_REASONS.get(rule, rule)}"))
                invalid |= mask

        key_columns = []
        for key in spec.entity_keys:
            col = columns.entity_key_column(table.column(key.name), key.type)
            collect(key.name, col.violations)
            key_columns.append(col)
        received = max(self._clock.now_micros(), marker.received)
        times = columns.event_time_column(table.column("event_timestamp"))
        times.violations["timestamp_in_future"] = (times.values > received + self._skew) & ~times.nulls
        lateness = spec.allowed_lateness_seconds * 1_000_000
        times.violations["late_correction"] = (times.values < received - lateness) & ~times.nulls
        collect("event_timestamp", times.violations)
        for name, dtype in spec.event_columns:
            if name in table.column_names:
                col = columns.feature_column(table.column(name), FeatureSpec(name, dtype, nullable=True))
                collect(name, col.violations)
        rejections.sort(key=lambda r: (r.row_start, r.field))
        keep = ~invalid
        if not keep.any():
            return None, rejections
        marker.received = received
        accepted = table.filter(pa.array(keep))
        positions = np.flatnonzero(keep).astype(np.int64) + row_offset
        out = {name: accepted[name] for name in keys}
        out["event_timestamp"] = accepted["event_timestamp"].cast(_TS)
        out[RECEIVED] = pa.array(np.full(accepted.num_rows, received, dtype=np.int64)).cast(_TS)
        out[SEQ] = pa.array(np.full(accepted.num_rows, marker.seq + 1, dtype=np.int64))
        out[ROW] = pa.array(positions)
        for name, dtype in spec.event_columns:
            out[name] = accepted[name] if name in accepted.column_names else pa.nulls(accepted.num_rows, _arrow_type(dtype))
        return pa.table(out), rejections

    def _apply_locked(self, info: GroupInfo, batch: pa.Table, marker: _Marker, push_id: str, sequence: int) -> None:
        seq = marker.seq + 1
        batch = batch.append_column(PUSH_ID, pa.array([push_id] * batch.num_rows, pa.string()))
        batch = batch.append_column(PUSH_CHUNK, pa.array(np.full(batch.num_rows, sequence, dtype=np.int64)))
        EventLog(self._root, info.spec.name).append(seq, batch)
        marker.seq = seq
        if push_id:
            marker.pushes[push_id] = sequence  # type: ignore[index]
            while len(marker.pushes) > RECENT_PUSHES:  # type: ignore[arg-type]
                marker.pushes.pop(next(iter(marker.pushes)))  # type: ignore[union-attr, arg-type]
        self._fold(info, batch, marker)

    def _fold(self, info: GroupInfo, batch: pa.Table, marker: _Marker) -> None:
        """Fold one logged batch into the tiles; one synced write with the marker."""
        versions = computed_versions(info)
        spec = info.spec
        lateness = spec.allowed_lateness_seconds * 1_000_000
        folders = [tiles.FeatureTiles(v.slot, v.aggregation, lateness) for v in versions]
        is_string = [k.type.name == "STRING" for k in spec.entity_keys]
        entities = codec.encode_entities([batch[k.name].to_pylist() for k in spec.entity_keys], is_string)
        keys = tile_keys(info.group_id, entities)
        unique = list(dict.fromkeys(keys))
        stored = dict(zip(unique, self._store.get_many(unique)))
        states = {key: (tiles.decode(raw) if raw is not None else {}) for key, raw in stored.items()}
        times = batch["event_timestamp"].cast(pa.int64()).to_numpy(zero_copy_only=False)
        received = batch[RECEIVED].cast(pa.int64()).to_numpy(zero_copy_only=False)
        seqs = batch[SEQ].to_numpy(zero_copy_only=False)
        rows = batch[ROW].to_numpy(zero_copy_only=False)
        values = {name: batch[name].to_pylist() for name, _ in spec.event_columns}
        for i, key in enumerate(keys):
            entity = states[key]
            row_values = {name: column[i] for name, column in values.items()}
            arrival = (int(received[i]), int(seqs[i]), int(rows[i]))
            for folder in folders:
                state = entity.get(folder.slot)
                if state is None:
                    state = entity[folder.slot] = tiles.SlotTiles(folder.agg.function)
                folder.add(state, int(times[i]), arrival, row_values)
        now = int(received.max()) if len(received) else self._clock.now_micros()
        for entity in states.values():
            for folder in folders:
                if folder.slot in entity:
                    folder.drop_expired(entity[folder.slot], now)
        marker.slots = tuple(v.slot for v in versions)
        puts = [(key, tiles.encode(entity)) for key, entity in states.items()]
        puts.append((marker_key(info.group_id), marker.encode()))
        self._store.write_batch(puts)

    # --- recovery and refills ---------------------------------------------------------------------------------

    def recover(self) -> None:
        """Bring every event group's tiles level with its log (at start)."""
        for info in self._snapshot().groups.values():
            if info.spec.event_columns:
                with self._lock(info.spec.name):
                    self._recover_locked(info)

    def _recover_locked(self, info: GroupInfo) -> _Marker:
        marker = _Marker.decode(self._store.get_many([marker_key(info.group_id)])[0])
        log = EventLog(self._root, info.spec.name)
        wanted = tuple(v.slot for v in computed_versions(info))
        if marker.slots != wanted and (marker.seq or log.last_seq()):
            logger.warning("group %s: computed versions changed (%s -> %s): rebuilding tiles from the event log", info.spec.name,
                           list(marker.slots), list(wanted))
            self._store.delete_prefix(tile_prefix(info.group_id))
            marker = _Marker(0, wanted, marker.received, marker.pushes)
        for seq in log.sequences():
            if seq <= marker.seq:
                continue
            batch = log.batch(seq)
            marker.seq = seq
            if batch.num_rows:
                marker.received = max(marker.received, int(batch[RECEIVED].cast(pa.int64()).to_numpy().max()))
                push_ids = batch[PUSH_ID].to_pylist() if PUSH_ID in batch.column_names else []
                if push_ids and push_ids[0]:
                    chunk = int(batch[PUSH_CHUNK][0].as_py())
                    marker.pushes[push_ids[0]] = max(marker.pushes.get(push_ids[0], -1), chunk)  # type: ignore[union-attr]
                self._fold(info, batch, marker)
        if marker.slots != wanted:
            marker.slots = wanted
            self._store.write_batch([(marker_key(info.group_id), marker.encode())])
        return marker


def _arrow_type(dtype: DType) -> pa.DataType:
    return {DType.INT64: pa.int64(), DType.DOUBLE: pa.float64(), DType.FLOAT: pa.float32(), DType.BOOL: pa.bool_(),
            DType.STRING: pa.string(), DType.BYTES: pa.binary()}.get(dtype, pa.float64())


__all__ = ["ComputedVersion", "EventPusher", "computed_versions", "marker_key", "tile_keys", "tile_prefix"]
