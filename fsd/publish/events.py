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
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from fsd import codec
from fsd.aggregation import batch_fold, tiles
from fsd.aggregation.event_log import RECEIVED, ROW, SEQ, EventLog
from fsd.aggregation.layout import computed_versions, marker_key, tile_keys
from fsd.domain import Clock, FeatureSpec, GroupInfo, PublishResult, Rejection, RegistrySnapshot
from fsd.errors import FailedPrecondition, InvalidArgument, ResourceExhausted, echo
from fsd.online.base import OnlineStore
from fsd.publish.publisher import decode_ipc
from fsd.rows import columns
from fsd.rows.checks import RowRejections, require_utc_timestamp

logger = logging.getLogger(__name__)

PUSH_ID = "_push"
PUSH_CHUNK = "_chunk"  # with the push id: what a retried push after a crash skips
RECENT_PUSHES = 256
MAX_REJECTIONS_REPORTED = 1000
FOLD_ROWS = 262_144  # logged chunks of one push folded together up to this many rows: one blob write per entity
_TS = pa.timestamp("us", tz="UTC")


@dataclass(slots=True)
class _Marker:
    seq: int = 0
    slots: tuple[int, ...] = ()
    received: int = 0  # arrival times never go backwards, whatever the clock does
    pushes: dict[str, int] = field(default_factory=dict)  # push id -> last durable chunk

    def encode(self) -> bytes:
        return json.dumps({"seq": self.seq, "slots": list(self.slots), "received": self.received, "pushes": self.pushes}).encode()

    @staticmethod
    def decode(raw: bytes | None) -> _Marker:
        if raw is None:
            return _Marker()
        data = json.loads(raw)
        return _Marker(int(data["seq"]), tuple(data["slots"]), int(data["received"]), {str(k): int(v) for k, v in data["pushes"].items()})


class EventPusher:
    def __init__(self, store: OnlineStore, offline_root: Path, snapshot: Callable[[], RegistrySnapshot], clock: Clock,
                 max_future_skew_micros: int, hold: Callable[[str], AbstractContextManager[None]] | None = None, shared: bool = False) -> None:
        """hold: the registry's exclusive hold across processes (replicas sharing a registry push to the same tiles
        and event log: one of them at a time per group); shared: other processes write too, so the progress marker
        is re-read under the hold on every push instead of trusted from memory."""
        self._hold = hold or (lambda name: nullcontext())
        self._shared = shared
        self._store = store
        self._root = Path(offline_root)
        self._snapshot = snapshot
        self._clock = clock
        self._skew = max_future_skew_micros
        self._locks: dict[str, threading.Lock] = {}
        self._markers: dict[str, _Marker] = {}  # per group, once recovered (changed only under the group's lock)
        self._locks_guard = threading.Lock()

    def _lock(self, group: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(group, threading.Lock())

    # --- the push path --------------------------------------------------------------------------------------

    def push(self, group: str, chunks: Iterable[tuple[int, bytes | pa.Table]], push_id: str, max_chunk_rows: int = 1_000_000) -> PublishResult:
        info = self._snapshot().group(group)
        if not info.spec.event_columns:
            raise FailedPrecondition(f"group {echo(group)} has no event source: declare event_columns to push events to it", field="group")
        received_rows = accepted_rows = 0
        rejections: list[Rejection] = []
        reasons: dict[str, int] = {}
        written = skipped = 0
        with self._lock(group), self._hold(f"tiles:{info.group_id}"):
            marker = None if self._shared else self._markers.get(group)
            if marker is None or marker.slots != tuple(v.slot for v in computed_versions(info)):
                marker = self._recover_locked(info)
            logged: list[pa.Table] = []  # logged, not yet folded: folded together (one blob write per entity)
            try:
                for sequence, payload in chunks:
                    table = decode_ipc(payload) if isinstance(payload, bytes) else payload
                    if table.num_rows > max_chunk_rows:
                        raise ResourceExhausted(f"a chunk of {table.num_rows} rows is over limits.max_chunk_rows ({max_chunk_rows}); send smaller "
                                                "chunks (earlier chunks of this push are durable)", field="arrow_ipc")
                    received_rows += table.num_rows
                    if push_id and marker.pushes.get(push_id, -1) >= sequence:
                        skipped += 1
                        continue
                    accepted, chunk_rejections = self._check(info, table, marker, received_rows - table.num_rows)
                    for r in chunk_rejections:
                        reasons[r.rule] = reasons.get(r.rule, 0) + (r.row_end - r.row_start)
                    rejections.extend(chunk_rejections)
                    if accepted is not None and accepted.num_rows:
                        logged.append(self._log_locked(info, accepted, marker, push_id, sequence))
                        accepted_rows += accepted.num_rows
                        written += 1
                        if sum(t.num_rows for t in logged) >= FOLD_ROWS:
                            self._fold(info, pa.concat_tables(logged), marker)
                            logged = []
                    elif push_id:
                        marker.pushes[push_id] = sequence
                if logged:
                    self._fold(info, pa.concat_tables(logged), marker)
            except BaseException as exc:
                if logged and isinstance(exc, Exception):  # a later chunk failed: what was logged is folded, as acknowledged
                    try:
                        self._fold(info, pa.concat_tables(logged), marker)
                        logged = []
                    except Exception:  # noqa: BLE001 - the original error is the one to report
                        logger.warning("group %s: folding the logged chunks after a failed push failed too", group, exc_info=True)
                if logged:
                    self._markers.pop(group, None)  # the tiles lag the log: the next push recovers from the stored marker
                raise
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
        require_utc_timestamp(table, "event_timestamp")
        found = RowRejections(table.num_rows, row_offset)
        collect = found.collect

        for key in spec.entity_keys:
            collect(key.name, columns.entity_key_column(table.column(key.name), key.type).violations)
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
        rejections = found.sorted()
        keep = ~found.invalid
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
            out[name] = accepted[name] if name in accepted.column_names else pa.nulls(accepted.num_rows, columns.scalar_arrow_type(dtype))
        return pa.table(out), rejections

    def _log_locked(self, info: GroupInfo, batch: pa.Table, marker: _Marker, push_id: str, sequence: int) -> pa.Table:
        """Append an accepted chunk to the event log (durable) and advance the marker in memory; the logged batch."""
        seq = marker.seq + 1
        batch = batch.append_column(PUSH_ID, pa.array([push_id] * batch.num_rows, pa.string()))
        batch = batch.append_column(PUSH_CHUNK, pa.array(np.full(batch.num_rows, sequence, dtype=np.int64)))
        EventLog(self._root, info.spec.name).append(seq, batch)
        marker.seq = seq
        if push_id:
            marker.pushes[push_id] = sequence
            while len(marker.pushes) > RECENT_PUSHES:
                marker.pushes.pop(next(iter(marker.pushes)))
        return batch

    def _fold(self, info: GroupInfo, batch: pa.Table, marker: _Marker) -> None:
        """Fold logged batches (one, or consecutive ones of a push) into the stored tiles; one synced write with the
        marker. Each blob records the last batch folded into it; an entity already holding the first batch's
        sequence (a replay) is skipped."""
        versions = computed_versions(info)
        states: dict[bytes, dict[int, tiles.SlotTiles]] = {}
        seq = int(batch[SEQ][0].as_py()) if batch.num_rows else marker.seq
        last = int(batch[SEQ][-1].as_py()) if batch.num_rows else marker.seq
        puts = self._fold_compiled(info, batch, versions, seq, last)
        if puts is None:
            self._fold_into(info, batch, versions, states, load=True, seq=seq)
            puts = [(key, tiles.encode(entity, last)) for key, entity in states.items()]
        marker.slots = tuple(v.slot for v in versions)
        puts.append((marker_key(info.group_id), marker.encode()))
        self._store.write_batch(puts)

    def _folders(self, info: GroupInfo, versions: list) -> list[tiles.FeatureTiles]:  # type: ignore[type-arg]
        lateness = info.spec.allowed_lateness_seconds * 1_000_000
        return [tiles.FeatureTiles(v.slot, v.aggregation, lateness) for v in versions]

    def _keys(self, info: GroupInfo, batch: pa.Table) -> list[bytes]:
        spec = info.spec
        is_string = [k.type.name == "STRING" for k in spec.entity_keys]
        return tile_keys(info.group_id, codec.encode_entities([batch[k.name].to_pylist() for k in spec.entity_keys], is_string))

    def _fold_compiled(self, info: GroupInfo, batch: pa.Table, versions: list, seq: int, last: int) -> list[tuple[bytes, bytes]] | None:  # type: ignore[type-arg]
        """The batch folded by the compiled twin (batch_fold); None where it cannot take it (the Python path then)."""
        if not batch_fold.push_available(batch, [v.aggregation for v in versions]):
            return None
        keys = self._keys(info, batch)
        unique = list(dict.fromkeys(keys))
        loaded = dict(zip(unique, self._store.get_many(unique)))
        batch, keys, done = _skip_replayed(batch, keys, loaded, seq)
        stored = [raw for key, raw in loaded.items() if key not in done]
        times = batch["event_timestamp"].cast(pa.int64()).to_numpy(zero_copy_only=False)
        received = batch[RECEIVED].cast(pa.int64()).to_numpy(zero_copy_only=False)
        return batch_fold.fold_batch(keys, stored, batch, times, self._folders(info, versions), self._now_of(received), last)

    def _now_of(self, received: np.ndarray) -> int:
        """The instant a fold drops expired tiles at: the batch's latest arrival (the clock for an empty batch)."""
        return int(received.max()) if len(received) else self._clock.now_micros()

    def _fold_into(self, info: GroupInfo, batch: pa.Table, versions: list, states: dict[bytes, dict[int, tiles.SlotTiles]],  # type: ignore[type-arg]
                   load: bool, seq: int = 0) -> None:
        """Fold a batch into `states` (entity tile key -> slot -> tiles), loading entities not in it from the store when
        `load` (skipping the rows of entities whose stored tiles already hold push `seq`), else starting them empty
        (a refill builds new versions' tiles apart)."""
        spec = info.spec
        folders = self._folders(info, versions)
        keys = self._keys(info, batch)
        missing = [key for key in dict.fromkeys(keys) if key not in states]
        stored = self._store.get_many(missing) if load and missing else [None] * len(missing)
        loaded = dict(zip(missing, stored))
        batch, keys, done = _skip_replayed(batch, keys, loaded, seq)
        for key, raw in loaded.items():
            if key not in done:
                states[key] = tiles.decode(raw) if raw is not None else {}
        times = batch["event_timestamp"].cast(pa.int64()).to_numpy(zero_copy_only=False)
        received = batch[RECEIVED].cast(pa.int64()).to_numpy(zero_copy_only=False)
        seqs = batch[SEQ].to_numpy(zero_copy_only=False)
        rows = batch[ROW].to_numpy(zero_copy_only=False)
        values = {name: batch[name].to_pylist() for name, _ in spec.event_columns}
        arrivals = list(zip(received.tolist(), seqs.tolist(), rows.tolist()))
        event_times = times.tolist()
        for folder in folders:  # one loop per feature over the batch, rows in arrival order
            slot, function = folder.slot, folder.agg.function
            per_row = []
            for key in keys:
                entity = states[key]
                state = entity.get(slot)
                if state is None:
                    state = entity[slot] = tiles.SlotTiles(function)
                per_row.append(state)
            folder.add_rows(per_row, event_times, arrivals, values)
        now = self._now_of(received)
        for key in dict.fromkeys(keys):
            for folder in folders:
                if folder.slot in states[key]:
                    folder.drop_expired(states[key][folder.slot], now)

    def _refill(self, info: GroupInfo, log: EventLog, fresh: frozenset[int], upto: int) -> None:
        """Tiles of new computed versions from the log's batches up to `upto`, built apart and written in one batch
        into the entities' blobs: a reader sees the new version whole or not at all, the old ones unchanged."""
        versions = [v for v in computed_versions(info) if v.slot in fresh]
        built: dict[bytes, dict[int, tiles.SlotTiles]] = {}
        for seq in log.sequences():
            if seq <= upto:
                self._fold_into(info, log.batch(seq), versions, built, load=False)
        keys = list(built)
        puts = []
        for key, raw in zip(keys, self._store.get_many(keys) if keys else []):
            entity = {slot: state for slot, state in (tiles.decode(raw) if raw is not None else {}).items() if slot not in fresh}
            entity.update(built[key])
            puts.append((key, tiles.encode(entity, tiles.applied_seq(raw) if raw is not None else 0)))
        if puts:
            self._store.write_batch(puts)

    # --- recovery and refills ---------------------------------------------------------------------------------

    def recover(self) -> None:
        """Bring every event group's tiles level with its log (at start)."""
        for info in self._snapshot().groups.values():
            if info.spec.event_columns:
                with self._lock(info.spec.name), self._hold(f"tiles:{info.group_id}"):
                    self._recover_locked(info)

    def _recover_locked(self, info: GroupInfo) -> _Marker:
        marker = _Marker.decode(self._store.get_many([marker_key(info.group_id)])[0])
        log = EventLog(self._root, info.spec.name)
        wanted = tuple(v.slot for v in computed_versions(info))
        fresh = frozenset(wanted) - frozenset(marker.slots)
        if fresh and marker.seq:
            # New computed versions (a changed window, say) fill from the whole log into their own slots, batch by
            # batch in arrival order, while the versions already there keep serving from their tiles.
            logger.warning("group %s: filling tiles of new computed versions (slots %s) from the event log", info.spec.name, sorted(fresh))
            self._refill(info, log, fresh, marker.seq)
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
                    marker.pushes[push_ids[0]] = max(marker.pushes.get(push_ids[0], -1), chunk)
                self._fold(info, batch, marker)
        if marker.slots != wanted:
            marker.slots = wanted
            self._store.write_batch([(marker_key(info.group_id), marker.encode())])
        self._markers[info.spec.name] = marker
        return marker


def _skip_replayed(batch: pa.Table, keys: list[bytes], loaded: dict[bytes, bytes | None], seq: int) -> tuple[pa.Table, list[bytes], set[bytes]]:
    """Without the rows of entities whose stored tiles already hold push `seq` (a replay of a batch they hold): the
    batch, its keys, and those entities."""
    done = {key for key, raw in loaded.items() if raw is not None and seq and tiles.applied_seq(raw) >= seq}
    if done:
        keep = [key not in done for key in keys]
        batch = batch.filter(pa.array(keep))
        keys = [key for key, kept in zip(keys, keep) if kept]
    return batch, keys, done


__all__ = ["EventPusher"]
