"""The registry in SQLite (WAL, synchronous=FULL): the RegistryStore protocol, and the only place with registry SQL."""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from fsd.domain import (
    Change, GroupInfo, GroupSpec, HistoryEntry, Incident, ManifestInfo, PinnedFeature, ResyncRequest, SyncRun, VersionInfo,
    VersionState,
)
from fsd.errors import FailedPrecondition, NotFound, StorageError
from fsd.registry import serialization
from fsd.registry.store import Audit, HistoryNote, ReplicaInfo, StateChange, StoredState, VersionWrite

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS deployment (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocked_slots (slot INTEGER PRIMARY KEY, at_micros INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS stale_marks (group_name TEXT NOT NULL, source TEXT NOT NULL, at_micros INTEGER NOT NULL,
                                        PRIMARY KEY (group_name, source));
CREATE TABLE IF NOT EXISTS groups (
    name TEXT PRIMARY KEY,
    group_id INTEGER NOT NULL UNIQUE,
    spec_json TEXT NOT NULL,
    created_micros INTEGER NOT NULL,
    updated_micros INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS feature_versions (
    slot INTEGER PRIMARY KEY,
    group_name TEXT NOT NULL,
    feature TEXT NOT NULL,
    version INTEGER NOT NULL,
    state INTEGER NOT NULL,
    spec_json TEXT NOT NULL,
    behaviour_hash TEXT NOT NULL,
    created_micros INTEGER NOT NULL,
    first_published_micros INTEGER,
    retired_micros INTEGER,
    purged_micros INTEGER,
    UNIQUE (group_name, feature, version)
);
CREATE TABLE IF NOT EXISTS manifests (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_micros INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    description TEXT NOT NULL,
    features_json TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    opened_micros INTEGER NOT NULL,
    group_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    publish_id TEXT NOT NULL,
    detail TEXT NOT NULL,
    resolved_micros INTEGER,
    resolved_by TEXT,
    resolution TEXT
);
CREATE TABLE IF NOT EXISTS sync_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_name TEXT NOT NULL,
    started_micros INTEGER NOT NULL,
    ended_micros INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    run_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS resync_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_name TEXT NOT NULL,
    reason TEXT NOT NULL,
    requested_micros INTEGER NOT NULL,
    done_micros INTEGER
);
CREATE TABLE IF NOT EXISTS validations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slot INTEGER NOT NULL,
    at_micros INTEGER NOT NULL,
    consistency REAL NOT NULL,
    sampled INTEGER NOT NULL,
    detail_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_micros INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    group_name TEXT NOT NULL,
    feature TEXT NOT NULL,
    version INTEGER NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""


class SqliteRegistryStore:
    """RegistryStore over one SQLite file. Calls are serialised; each write is one IMMEDIATE transaction."""

    def __init__(self, path: str) -> None:
        try:
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"registry {path}: {exc}") from None
        self._lock = threading.RLock()
        with self._transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))

    # --- plumbing ----------------------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageError(f"registry: {exc}") from None
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple]:  # type: ignore[type-arg]
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    @staticmethod
    def _counter(conn: sqlite3.Connection, key: str) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    @classmethod
    def _next_counter(cls, conn: sqlite3.Connection, key: str) -> int:
        value = cls._counter(conn, key) + 1
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))
        return value

    @classmethod
    def _bump_epoch(cls, conn: sqlite3.Connection) -> int:
        """Every change a snapshot shows bumps the epoch: readers compare it to know whether to reload."""
        return cls._next_counter(conn, "epoch")

    @classmethod
    def _bump_revision(cls, conn: sqlite3.Connection, expected: int | None) -> int:
        cls._bump_epoch(conn)
        current = cls._counter(conn, "revision")
        if expected is not None and current != expected:
            raise FailedPrecondition(f"registry revision is {current}, the change expected {expected}: re-run plan", field="expected_revision")
        return cls._next_counter(conn, "revision")

    @staticmethod
    def _history(conn: sqlite3.Connection, notes: Sequence[HistoryNote], at: int, revision: int, audit: Audit) -> None:
        conn.executemany(
            "INSERT INTO history (at_micros, revision, group_name, feature, version, action, detail, actor, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(at, revision, n.group, n.feature, n.version, n.action, n.detail, audit.actor, audit.reason) for n in notes],
        )

    # --- definitions -------------------------------------------------------------------------------------------

    def revision(self) -> int:
        with self._lock:
            return self._counter(self._conn, "revision")

    def epoch(self) -> int:
        with self._lock:
            return self._counter(self._conn, "epoch")

    def load(self) -> StoredState:
        with self._lock:
            revision = self._counter(self._conn, "revision")
            epoch = self._counter(self._conn, "epoch")
            blocked = frozenset(r[0] for r in self._conn.execute("SELECT slot FROM blocked_slots").fetchall())
            stale = frozenset(r[0] for r in self._conn.execute("SELECT DISTINCT group_name FROM stale_marks").fetchall())
            group_rows = self._conn.execute("SELECT name, group_id, spec_json FROM groups ORDER BY name").fetchall()
            version_rows = self._conn.execute(
                "SELECT slot, group_name, feature, version, state, spec_json, behaviour_hash, created_micros, "
                "first_published_micros, retired_micros, purged_micros FROM feature_versions ORDER BY group_name, feature, version"
            ).fetchall()
            manifest_rows = self._conn.execute(
                "SELECT name, version, created_micros, created_by, description, features_json FROM manifests ORDER BY name, version"
            ).fetchall()
        versions: dict[str, dict[str, list[VersionInfo]]] = {}
        for slot, group, feature, version, state, spec_json, digest, created, published, retired, purged in version_rows:
            spec = serialization.feature_from_dict(json.loads(spec_json))
            info = VersionInfo(slot, version, VersionState(state), spec, digest, created, published, retired, purged, group=group)
            versions.setdefault(group, {}).setdefault(feature, []).append(info)
        groups = {
            name: GroupInfo(group_id, serialization.group_from_json(spec_json), {f: tuple(v) for f, v in versions.get(name, {}).items()})
            for name, group_id, spec_json in group_rows
        }
        manifests: dict[str, list[ManifestInfo]] = {}
        for name, version, created, by, description, features_json in manifest_rows:
            pins = tuple(PinnedFeature(**p) for p in json.loads(features_json))
            manifests.setdefault(name, []).append(ManifestInfo(name, version, created, by, description, pins))
        return StoredState(revision, groups, {k: tuple(v) for k, v in manifests.items()}, epoch, blocked, stale)

    def apply(self, groups: Sequence[GroupSpec], versions: Sequence[VersionWrite], changes: Sequence[Change],
              expected_revision: int, at_micros: int, audit: Audit) -> int:
        with self._transaction() as conn:
            revision = self._bump_revision(conn, expected_revision)
            for spec in groups:
                payload = serialization.group_to_json(spec)
                updated = conn.execute("UPDATE groups SET spec_json = ?, updated_micros = ? WHERE name = ?", (payload, at_micros, spec.name))
                if updated.rowcount == 0:
                    conn.execute(
                        "INSERT INTO groups (name, group_id, spec_json, created_micros, updated_micros) VALUES (?, ?, ?, ?, ?)",
                        (spec.name, self._next_counter(conn, "group_id"), payload, at_micros, at_micros),
                    )
            for v in versions:
                spec_json = json.dumps(serialization.feature_to_dict(v.spec), sort_keys=True)
                if v.new:
                    conn.execute(
                        "INSERT INTO feature_versions (slot, group_name, feature, version, state, spec_json, behaviour_hash, created_micros) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (self._next_counter(conn, "slot"), v.group, v.spec.name, v.version, int(v.state), spec_json, v.behaviour_hash, at_micros),
                    )
                else:
                    conn.execute(
                        "UPDATE feature_versions SET spec_json = ? WHERE group_name = ? AND feature = ? AND version = ?",
                        (spec_json, v.group, v.spec.name, v.version),
                    )
            notes = [HistoryNote(c.group, c.feature, c.version, c.action, c.detail) for c in changes if c.action != "unchanged"]
            self._history(conn, notes, at_micros, revision, audit)
        return revision

    def change_states(self, changes: Sequence[StateChange], notes: Sequence[HistoryNote], expected_revision: int,
                      at_micros: int, audit: Audit) -> int:
        with self._transaction() as conn:
            revision = self._bump_revision(conn, expected_revision)
            for change in changes:
                if change.state == VersionState.RETIRED:
                    conn.execute("UPDATE feature_versions SET state = ?, retired_micros = ? WHERE slot = ?", (int(change.state), at_micros, change.slot))
                else:
                    conn.execute("UPDATE feature_versions SET state = ? WHERE slot = ?", (int(change.state), change.slot))
            self._history(conn, notes, at_micros, revision, audit)
        return revision

    def add_manifest(self, manifest: ManifestInfo, expected_revision: int, audit: Audit) -> int:
        payload = json.dumps([asdict(p) for p in manifest.features])
        with self._transaction() as conn:
            revision = self._bump_revision(conn, expected_revision)
            conn.execute(
                "INSERT INTO manifests (name, version, created_micros, created_by, description, features_json) VALUES (?, ?, ?, ?, ?, ?)",
                (manifest.name, manifest.version, manifest.created_micros, manifest.created_by, manifest.description, payload),
            )
            notes = [HistoryNote(p.group, p.feature, p.version, "pinned", f"manifest {manifest.ref}") for p in manifest.features]
            self._history(conn, notes, manifest.created_micros, revision, Audit(audit.actor, manifest.description))
        return revision

    def delete_manifest(self, name: str, notes: Sequence[HistoryNote], expected_revision: int, at_micros: int, audit: Audit) -> int:
        with self._transaction() as conn:
            revision = self._bump_revision(conn, expected_revision)
            if conn.execute("DELETE FROM manifests WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"unknown manifest {name[:100]!r}", field="name")
            self._history(conn, notes, at_micros, revision, audit)
        return revision

    def delete_group(self, name: str, notes: Sequence[HistoryNote], expected_revision: int, at_micros: int, audit: Audit) -> int:
        with self._transaction() as conn:
            revision = self._bump_revision(conn, expected_revision)
            conn.execute("DELETE FROM blocked_slots WHERE slot IN (SELECT slot FROM feature_versions WHERE group_name = ?)", (name,))
            conn.execute("DELETE FROM feature_versions WHERE group_name = ?", (name,))
            conn.execute("DELETE FROM stale_marks WHERE group_name = ?", (name,))
            if conn.execute("DELETE FROM groups WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"unknown feature group {name[:100]!r}", field="name")
            self._history(conn, notes, at_micros, revision, audit)
        return revision

    def add_history(self, notes: Sequence[HistoryNote], at_micros: int, audit: Audit, bump_revision: bool) -> int:
        with self._transaction() as conn:
            revision = self._bump_revision(conn, None) if bump_revision else self._counter(conn, "revision")
            self._history(conn, notes, at_micros, revision, audit)
        return revision

    def mark_published(self, slots: Sequence[int], at_micros: int) -> None:
        with self._transaction() as conn:
            self._bump_epoch(conn)
            conn.executemany(
                "UPDATE feature_versions SET first_published_micros = ? WHERE slot = ? AND first_published_micros IS NULL",
                [(at_micros, slot) for slot in slots],
            )

    def mark_purged(self, slot: int, at_micros: int) -> None:
        with self._transaction() as conn:
            self._bump_epoch(conn)
            conn.execute("UPDATE feature_versions SET purged_micros = ? WHERE slot = ?", (at_micros, slot))
            row = conn.execute("SELECT group_name, feature, version FROM feature_versions WHERE slot = ?", (slot,)).fetchone()
            if row is not None:
                note = HistoryNote(row[0], row[1], row[2], "purge", "online values removed")
                self._history(conn, [note], at_micros, self._counter(conn, "revision"), Audit("fsd"))

    def history(self, group: str, feature: str | None) -> list[HistoryEntry]:
        query = "SELECT at_micros, revision, group_name, feature, version, action, detail, actor, reason FROM history WHERE group_name = ?"
        args: tuple[object, ...] = (group,)
        if feature is not None:
            query += " AND (feature = ? OR feature = '')"
            args = (group, feature)
        return [HistoryEntry(*r) for r in self._query(query + " ORDER BY id", args)]

    def set_blocked(self, slot: int, blocked: bool, at_micros: int) -> bool:
        with self._transaction() as conn:
            if blocked:
                changed = conn.execute("INSERT OR IGNORE INTO blocked_slots (slot, at_micros) VALUES (?, ?)", (slot, at_micros)).rowcount
            else:
                changed = conn.execute("DELETE FROM blocked_slots WHERE slot = ?", (slot,)).rowcount
            if changed:
                self._bump_epoch(conn)
            return bool(changed)

    def set_stale_mark(self, group: str, source: str, stale: bool, at_micros: int) -> bool:
        with self._transaction() as conn:
            if stale:
                changed = conn.execute("INSERT OR IGNORE INTO stale_marks (group_name, source, at_micros) VALUES (?, ?, ?)",
                                       (group, source, at_micros)).rowcount
            else:
                changed = conn.execute("DELETE FROM stale_marks WHERE group_name = ? AND source = ?", (group, source)).rowcount
            if changed:
                self._bump_epoch(conn)
            return bool(changed)

    def heartbeat(self, replica: ReplicaInfo) -> None:
        """A single SQLite daemon is its own only replica; nothing to record."""

    def replicas(self) -> list[ReplicaInfo]:
        return []

    def try_lead(self) -> bool:
        return True  # one process owns the file (SQLite is not shared between replicas)

    def wait_for_change(self, timeout: float) -> None:
        """Only this process writes the file, and it reloads after each write: nothing to wait for."""
        time.sleep(timeout)

    def claim_deployment(self, key: str, value: str) -> str:
        with self._transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO deployment (key, value) VALUES (?, ?)", (key, value))
            return str(conn.execute("SELECT value FROM deployment WHERE key = ?", (key,)).fetchone()[0])

    # --- operational records -----------------------------------------------------------------------------------

    def open_incident(self, group: str, kind: str, publish_id: str, detail: str, at_micros: int) -> int:
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO incidents (opened_micros, group_name, kind, publish_id, detail) VALUES (?, ?, ?, ?, ?)",
                (at_micros, group, kind, publish_id, detail),
            )
            return int(cursor.lastrowid)  # type: ignore[arg-type]

    def incidents(self, include_resolved: bool) -> list[Incident]:
        sql = "SELECT id, opened_micros, group_name, kind, publish_id, detail, resolved_micros, resolved_by, resolution FROM incidents"
        if not include_resolved:
            sql += " WHERE resolved_micros IS NULL"
        return [Incident(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] or "", r[8] or "") for r in self._query(sql + " ORDER BY id")]

    def resolve_incident(self, incident_id: int, resolved_by: str, resolution: str, at_micros: int) -> Incident:
        with self._transaction() as conn:
            row = conn.execute("SELECT resolved_micros FROM incidents WHERE id = ?", (incident_id,)).fetchone()
            if row is None:
                raise NotFound(f"no incident {incident_id}", field="id")
            if row[0] is not None:
                raise FailedPrecondition(f"incident {incident_id} is already resolved", field="id")
            conn.execute(
                "UPDATE incidents SET resolved_micros = ?, resolved_by = ?, resolution = ? WHERE id = ?",
                (at_micros, resolved_by, resolution, incident_id),
            )
        return next(i for i in self.incidents(include_resolved=True) if i.id == incident_id)

    def record_sync_run(self, run: SyncRun) -> SyncRun:
        payload = asdict(run)
        payload.pop("id")
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO sync_runs (group_name, started_micros, ended_micros, outcome, run_json) VALUES (?, ?, ?, ?, ?)",
                (run.group, run.started_micros, run.ended_micros, run.outcome, json.dumps(payload)),
            )
            run_id = int(cursor.lastrowid)  # type: ignore[arg-type]
        return SyncRun(**{**payload, "id": run_id})

    def sync_runs(self, group: str, limit: int) -> list[SyncRun]:
        sql = "SELECT id, run_json FROM sync_runs"
        args: tuple[object, ...] = ()
        if group:
            sql += " WHERE group_name = ?"
            args = (group,)
        return [SyncRun(id=r[0], **json.loads(r[1])) for r in self._query(sql + " ORDER BY id DESC LIMIT ?", (*args, limit or 100))]

    def request_resync(self, group: str, reason: str, at_micros: int) -> int:
        with self._transaction() as conn:
            row = conn.execute("SELECT id FROM resync_requests WHERE group_name = ? AND done_micros IS NULL", (group,)).fetchone()
            if row is not None:
                return int(row[0])
            cursor = conn.execute(
                "INSERT INTO resync_requests (group_name, reason, requested_micros) VALUES (?, ?, ?)", (group, reason, at_micros)
            )
            return int(cursor.lastrowid)  # type: ignore[arg-type]

    def pending_resyncs(self) -> list[ResyncRequest]:
        rows = self._query("SELECT id, group_name, reason, requested_micros FROM resync_requests WHERE done_micros IS NULL ORDER BY id")
        return [ResyncRequest(*r) for r in rows]

    def ack_resync(self, request_id: int, at_micros: int) -> None:
        with self._transaction() as conn:
            row = conn.execute("SELECT done_micros FROM resync_requests WHERE id = ?", (request_id,)).fetchone()
            if row is None:
                raise NotFound(f"no resync request {request_id}", field="id")
            conn.execute("UPDATE resync_requests SET done_micros = ? WHERE id = ? AND done_micros IS NULL", (at_micros, request_id))

    def record_validation(self, slot: int, consistency: float | None, sampled: int, detail: dict[str, int], at_micros: int) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO validations (slot, at_micros, consistency, sampled, detail_json) VALUES (?, ?, ?, ?, ?)",
                (slot, at_micros, 0.0 if consistency is None else consistency, sampled, json.dumps(detail)),
            )

    def last_validation(self, slot: int) -> tuple[float | None, int, int] | None:
        rows = self._query("SELECT consistency, sampled, at_micros FROM validations WHERE slot = ? ORDER BY id DESC LIMIT 1", (slot,))
        if not rows:
            return None
        consistency, sampled, at = rows[0]
        return (float(consistency) if sampled else None), int(sampled), int(at)

    def backup_to(self, path: Path) -> None:
        try:
            dest = sqlite3.connect(str(path))
            try:
                with self._lock:
                    self._conn.backup(dest)
            finally:
                dest.close()
        except sqlite3.Error as exc:
            raise StorageError(f"registry backup: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
