"""The registry in PostgreSQL (psycopg 3), shared by every fsd replica: the RegistryStore protocol with the same
semantics as SQLite — one transaction per call, the revision checked inside it (a stale apply is refused), an
epoch bumped by every change a snapshot shows and announced with NOTIFY at commit — plus replica heartbeats and
an advisory lock that elects the one replica running background work. Migrations run at start."""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

import psycopg
from psycopg import errors as pg_errors

from fsd.domain import Change, GroupInfo, GroupSpec, HistoryEntry, Incident, ManifestInfo, PinnedFeature, ResyncRequest, SyncRun, VersionInfo, VersionState
from fsd.errors import FailedPrecondition, NotFound, StorageError, Unavailable
from fsd.registry import serialization
from fsd.registry.store import Audit, HistoryNote, ReplicaInfo, StateChange, StoredState, VersionWrite

logger = logging.getLogger(__name__)

CHANNEL = "fsd_registry"
LEADER_LOCK = 0x66736401  # pg advisory lock key of the background-work leader ("fsd" 1)
MIGRATION_LOCK = 0x66736402
T = TypeVar("T")

MIGRATIONS: list[str] = [
    # 1: the registry as SQLite holds it
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
    CREATE TABLE deployment (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE groups (name TEXT PRIMARY KEY, group_id BIGINT NOT NULL UNIQUE, spec_json TEXT NOT NULL,
                         created_micros BIGINT NOT NULL, updated_micros BIGINT NOT NULL);
    CREATE TABLE feature_versions (slot BIGINT PRIMARY KEY, group_name TEXT NOT NULL, feature TEXT NOT NULL, version INT NOT NULL,
                                   state INT NOT NULL, spec_json TEXT NOT NULL, behaviour_hash TEXT NOT NULL, created_micros BIGINT NOT NULL,
                                   first_published_micros BIGINT, retired_micros BIGINT, purged_micros BIGINT,
                                   UNIQUE (group_name, feature, version));
    CREATE TABLE manifests (name TEXT NOT NULL, version INT NOT NULL, created_micros BIGINT NOT NULL, created_by TEXT NOT NULL,
                            description TEXT NOT NULL, features_json TEXT NOT NULL, PRIMARY KEY (name, version));
    CREATE TABLE incidents (id BIGSERIAL PRIMARY KEY, opened_micros BIGINT NOT NULL, group_name TEXT NOT NULL, kind TEXT NOT NULL,
                            publish_id TEXT NOT NULL, detail TEXT NOT NULL, resolved_micros BIGINT, resolved_by TEXT, resolution TEXT);
    CREATE TABLE sync_runs (id BIGSERIAL PRIMARY KEY, group_name TEXT NOT NULL, started_micros BIGINT NOT NULL, ended_micros BIGINT NOT NULL,
                            outcome TEXT NOT NULL, run_json TEXT NOT NULL);
    CREATE TABLE resync_requests (id BIGSERIAL PRIMARY KEY, group_name TEXT NOT NULL, reason TEXT NOT NULL, requested_micros BIGINT NOT NULL,
                                  done_micros BIGINT);
    CREATE TABLE validations (id BIGSERIAL PRIMARY KEY, slot BIGINT NOT NULL, at_micros BIGINT NOT NULL, consistency DOUBLE PRECISION NOT NULL,
                              sampled BIGINT NOT NULL, detail_json TEXT NOT NULL);
    CREATE TABLE history (id BIGSERIAL PRIMARY KEY, at_micros BIGINT NOT NULL, revision BIGINT NOT NULL, group_name TEXT NOT NULL,
                          feature TEXT NOT NULL, version INT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL, actor TEXT NOT NULL,
                          reason TEXT NOT NULL);
    CREATE INDEX history_group ON history (group_name, id);
    CREATE TABLE blocked_slots (slot BIGINT PRIMARY KEY, at_micros BIGINT NOT NULL);
    CREATE TABLE stale_marks (group_name TEXT NOT NULL, source TEXT NOT NULL, at_micros BIGINT NOT NULL, PRIMARY KEY (group_name, source));
    CREATE TABLE replicas (id TEXT PRIMARY KEY, address TEXT NOT NULL, epoch_confirmed BIGINT NOT NULL, heartbeat_micros BIGINT NOT NULL,
                           started_micros BIGINT NOT NULL, leader BOOLEAN NOT NULL);
    INSERT INTO meta (key, value) VALUES ('revision', 0), ('epoch', 0), ('group_id', 0), ('slot', 0);
    """,
]


def _unavailable(exc: Exception) -> Unavailable:
    return Unavailable(f"registry database unavailable: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__}")


class PostgresRegistryStore:
    """RegistryStore over one PostgreSQL database. Calls are serialised on one connection; a lost connection is
    reopened on the next call (the call that found it lost answers UNAVAILABLE)."""

    def __init__(self, url: str, connect_timeout: float = 3.0) -> None:
        self._url = url
        self._timeout = connect_timeout
        self._lock = threading.RLock()
        self._conn: psycopg.Connection | None = None
        self._listen: psycopg.Connection | None = None
        self._leader: psycopg.Connection | None = None
        self._leading = False
        self._migrate()

    # --- connections ------------------------------------------------------------------------------------------

    def _connect(self, autocommit: bool = False) -> psycopg.Connection:
        try:
            return psycopg.connect(self._url, autocommit=autocommit, connect_timeout=max(1, int(self._timeout)))
        except psycopg.Error as exc:
            raise _unavailable(exc) from None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self._connect()
        return self._conn

    def _run(self, work: Callable[[psycopg.Cursor], T]) -> T:
        """`work` in one transaction; database loss becomes Unavailable, constraint races FailedPrecondition."""
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    return work(cur)
            except (FailedPrecondition, NotFound):
                raise
            except pg_errors.UniqueViolation as exc:
                raise FailedPrecondition(f"another replica changed the registry at the same moment ({exc.diag.constraint_name}); retry") from None
            except psycopg.OperationalError as exc:
                self._conn = None
                raise _unavailable(exc) from None
            except psycopg.Error as exc:
                if conn.broken:
                    self._conn = None
                    raise _unavailable(exc) from None
                raise StorageError(f"registry: {exc}") from None

    def _migrate(self) -> None:
        def work(cur: psycopg.Cursor) -> None:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL)")
            cur.execute("SELECT max(version) FROM schema_version")
            current = cur.fetchone()[0] or 0
            for number, script in enumerate(MIGRATIONS, start=1):
                if number > current:
                    cur.execute(script)
                    cur.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))
                    logger.info("registry schema migrated to version %d", number)

        self._run(work)

    # --- counters ---------------------------------------------------------------------------------------------

    @staticmethod
    def _counter(cur: psycopg.Cursor, key: str, lock: bool = False) -> int:
        cur.execute("SELECT value FROM meta WHERE key = %s" + (" FOR UPDATE" if lock else ""), (key,))
        row = cur.fetchone()
        return int(row[0]) if row else 0

    @classmethod
    def _next_counter(cls, cur: psycopg.Cursor, key: str) -> int:
        cur.execute("UPDATE meta SET value = value + 1 WHERE key = %s RETURNING value", (key,))
        return int(cur.fetchone()[0])

    @classmethod
    def _bump_epoch(cls, cur: psycopg.Cursor) -> int:
        epoch = cls._next_counter(cur, "epoch")
        cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(epoch)))  # delivered at commit, never on rollback
        return epoch

    @classmethod
    def _bump_revision(cls, cur: psycopg.Cursor, expected: int | None) -> int:
        current = cls._counter(cur, "revision", lock=True)  # concurrent writers queue here; the second sees the first's revision
        if expected is not None and current != expected:
            raise FailedPrecondition(f"registry revision is {current}, the change expected {expected}: re-run plan", field="expected_revision")
        cls._bump_epoch(cur)
        return cls._next_counter(cur, "revision")

    @staticmethod
    def _history(cur: psycopg.Cursor, notes: Sequence[HistoryNote], at: int, revision: int, audit: Audit) -> None:
        if notes:
            cur.executemany(
                "INSERT INTO history (at_micros, revision, group_name, feature, version, action, detail, actor, reason) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(at, revision, n.group, n.feature, n.version, n.action, n.detail, audit.actor, audit.reason) for n in notes],
            )

    # --- definitions -------------------------------------------------------------------------------------------

    def revision(self) -> int:
        return self._run(lambda cur: self._counter(cur, "revision"))

    def epoch(self) -> int:
        return self._run(lambda cur: self._counter(cur, "epoch"))

    def load(self) -> StoredState:
        def work(cur: psycopg.Cursor) -> StoredState:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")  # one consistent view
            revision, epoch = self._counter(cur, "revision"), self._counter(cur, "epoch")
            cur.execute("SELECT name, group_id, spec_json FROM groups ORDER BY name")
            group_rows = cur.fetchall()
            cur.execute("SELECT slot, group_name, feature, version, state, spec_json, behaviour_hash, created_micros, "
                        "first_published_micros, retired_micros, purged_micros FROM feature_versions ORDER BY group_name, feature, version")
            version_rows = cur.fetchall()
            cur.execute("SELECT name, version, created_micros, created_by, description, features_json FROM manifests ORDER BY name, version")
            manifest_rows = cur.fetchall()
            cur.execute("SELECT slot FROM blocked_slots")
            blocked = frozenset(int(r[0]) for r in cur.fetchall())
            cur.execute("SELECT DISTINCT group_name FROM stale_marks")
            stale = frozenset(r[0] for r in cur.fetchall())
            versions: dict[str, dict[str, list[VersionInfo]]] = {}
            for slot, group, feature, version, state, spec_json, digest, created, published, retired, purged in version_rows:
                spec = serialization.feature_from_dict(json.loads(spec_json))
                info = VersionInfo(int(slot), version, VersionState(state), spec, digest, created, published, retired, purged, group=group)
                versions.setdefault(group, {}).setdefault(feature, []).append(info)
            groups = {
                name: GroupInfo(int(gid), serialization.group_from_json(spec_json), {f: tuple(v) for f, v in versions.get(name, {}).items()})
                for name, gid, spec_json in group_rows
            }
            manifests: dict[str, list[ManifestInfo]] = {}
            for name, version, created, by, description, features_json in manifest_rows:
                pins = tuple(PinnedFeature(**p) for p in json.loads(features_json))
                manifests.setdefault(name, []).append(ManifestInfo(name, version, created, by, description, pins))
            return StoredState(revision, groups, {k: tuple(v) for k, v in manifests.items()}, epoch, blocked, stale)

        return self._run(work)

    def apply(self, groups: Sequence[GroupSpec], versions: Sequence[VersionWrite], changes: Sequence[Change],
              expected_revision: int, at_micros: int, audit: Audit) -> int:
        def work(cur: psycopg.Cursor) -> int:
            revision = self._bump_revision(cur, expected_revision)
            for spec in groups:
                payload = serialization.group_to_json(spec)
                cur.execute("UPDATE groups SET spec_json = %s, updated_micros = %s WHERE name = %s", (payload, at_micros, spec.name))
                if cur.rowcount == 0:
                    cur.execute("INSERT INTO groups (name, group_id, spec_json, created_micros, updated_micros) VALUES (%s, %s, %s, %s, %s)",
                                (spec.name, self._next_counter(cur, "group_id"), payload, at_micros, at_micros))
            for v in versions:
                spec_json = json.dumps(serialization.feature_to_dict(v.spec), sort_keys=True)
                if v.new:
                    cur.execute(
                        "INSERT INTO feature_versions (slot, group_name, feature, version, state, spec_json, behaviour_hash, created_micros) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        (self._next_counter(cur, "slot"), v.group, v.spec.name, v.version, int(v.state), spec_json, v.behaviour_hash, at_micros),
                    )
                else:
                    cur.execute("UPDATE feature_versions SET spec_json = %s WHERE group_name = %s AND feature = %s AND version = %s",
                                (spec_json, v.group, v.spec.name, v.version))
            notes = [HistoryNote(c.group, c.feature, c.version, c.action, c.detail) for c in changes if c.action != "unchanged"]
            self._history(cur, notes, at_micros, revision, audit)
            return revision

        return self._run(work)

    def change_states(self, changes: Sequence[StateChange], notes: Sequence[HistoryNote], expected_revision: int,
                      at_micros: int, audit: Audit) -> int:
        def work(cur: psycopg.Cursor) -> int:
            revision = self._bump_revision(cur, expected_revision)
            for change in changes:
                if change.state == VersionState.RETIRED:
                    cur.execute("UPDATE feature_versions SET state = %s, retired_micros = %s WHERE slot = %s", (int(change.state), at_micros, change.slot))
                else:
                    cur.execute("UPDATE feature_versions SET state = %s WHERE slot = %s", (int(change.state), change.slot))
            self._history(cur, notes, at_micros, revision, audit)
            return revision

        return self._run(work)

    def add_manifest(self, manifest: ManifestInfo, expected_revision: int, audit: Audit) -> int:
        payload = json.dumps([asdict(p) for p in manifest.features])

        def work(cur: psycopg.Cursor) -> int:
            revision = self._bump_revision(cur, expected_revision)
            cur.execute("INSERT INTO manifests (name, version, created_micros, created_by, description, features_json) VALUES (%s, %s, %s, %s, %s, %s)",
                        (manifest.name, manifest.version, manifest.created_micros, manifest.created_by, manifest.description, payload))
            notes = [HistoryNote(p.group, p.feature, p.version, "pinned", f"manifest {manifest.ref}") for p in manifest.features]
            self._history(cur, notes, manifest.created_micros, revision, Audit(audit.actor, manifest.description))
            return revision

        return self._run(work)

    def delete_manifest(self, name: str, notes: Sequence[HistoryNote], expected_revision: int, at_micros: int, audit: Audit) -> int:
        def work(cur: psycopg.Cursor) -> int:
            revision = self._bump_revision(cur, expected_revision)
            cur.execute("DELETE FROM manifests WHERE name = %s", (name,))
            if cur.rowcount == 0:
                raise NotFound(f"unknown manifest {name[:100]!r}", field="name")
            self._history(cur, notes, at_micros, revision, audit)
            return revision

        return self._run(work)

    def delete_group(self, name: str, notes: Sequence[HistoryNote], expected_revision: int, at_micros: int, audit: Audit) -> int:
        def work(cur: psycopg.Cursor) -> int:
            revision = self._bump_revision(cur, expected_revision)
            cur.execute("DELETE FROM blocked_slots WHERE slot IN (SELECT slot FROM feature_versions WHERE group_name = %s)", (name,))
            cur.execute("DELETE FROM feature_versions WHERE group_name = %s", (name,))
            cur.execute("DELETE FROM stale_marks WHERE group_name = %s", (name,))
            cur.execute("DELETE FROM groups WHERE name = %s", (name,))
            if cur.rowcount == 0:
                raise NotFound(f"unknown feature group {name[:100]!r}", field="name")
            self._history(cur, notes, at_micros, revision, audit)
            return revision

        return self._run(work)

    def add_history(self, notes: Sequence[HistoryNote], at_micros: int, audit: Audit, bump_revision: bool) -> int:
        def work(cur: psycopg.Cursor) -> int:
            revision = self._bump_revision(cur, None) if bump_revision else self._counter(cur, "revision")
            self._history(cur, notes, at_micros, revision, audit)
            return revision

        return self._run(work)

    def mark_published(self, slots: Sequence[int], at_micros: int) -> None:
        def work(cur: psycopg.Cursor) -> None:
            self._bump_epoch(cur)
            cur.executemany("UPDATE feature_versions SET first_published_micros = %s WHERE slot = %s AND first_published_micros IS NULL",
                            [(at_micros, slot) for slot in slots])

        self._run(work)

    def mark_purged(self, slot: int, at_micros: int) -> None:
        def work(cur: psycopg.Cursor) -> None:
            self._bump_epoch(cur)
            cur.execute("UPDATE feature_versions SET purged_micros = %s WHERE slot = %s RETURNING group_name, feature, version", (at_micros, slot))
            row = cur.fetchone()
            if row is not None:
                self._history(cur, [HistoryNote(row[0], row[1], row[2], "purge", "online values removed")], at_micros,
                              self._counter(cur, "revision"), Audit("fsd"))

        self._run(work)

    def history(self, group: str, feature: str | None) -> list[HistoryEntry]:
        def work(cur: psycopg.Cursor) -> list[HistoryEntry]:
            query = "SELECT at_micros, revision, group_name, feature, version, action, detail, actor, reason FROM history WHERE group_name = %s"
            args: tuple[object, ...] = (group,)
            if feature is not None:
                query += " AND (feature = %s OR feature = '')"
                args = (group, feature)
            cur.execute(query + " ORDER BY id", args)
            return [HistoryEntry(*r) for r in cur.fetchall()]

        return self._run(work)

    def set_blocked(self, slot: int, blocked: bool, at_micros: int) -> bool:
        def work(cur: psycopg.Cursor) -> bool:
            if blocked:
                cur.execute("INSERT INTO blocked_slots (slot, at_micros) VALUES (%s, %s) ON CONFLICT DO NOTHING", (slot, at_micros))
            else:
                cur.execute("DELETE FROM blocked_slots WHERE slot = %s", (slot,))
            changed = cur.rowcount > 0
            if changed:
                self._bump_epoch(cur)
            return changed

        return self._run(work)

    def set_stale_mark(self, group: str, source: str, stale: bool, at_micros: int) -> bool:
        def work(cur: psycopg.Cursor) -> bool:
            if stale:
                cur.execute("INSERT INTO stale_marks (group_name, source, at_micros) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                            (group, source, at_micros))
            else:
                cur.execute("DELETE FROM stale_marks WHERE group_name = %s AND source = %s", (group, source))
            changed = cur.rowcount > 0
            if changed:
                self._bump_epoch(cur)
            return changed

        return self._run(work)

    def claim_deployment(self, key: str, value: str) -> str:
        def work(cur: psycopg.Cursor) -> str:
            cur.execute("INSERT INTO deployment (key, value) VALUES (%s, %s) ON CONFLICT DO NOTHING", (key, value))
            cur.execute("SELECT value FROM deployment WHERE key = %s", (key,))
            return str(cur.fetchone()[0])

        return self._run(work)

    # --- replicas and the leader ----------------------------------------------------------------------------

    def heartbeat(self, replica: ReplicaInfo) -> None:
        self._run(lambda cur: cur.execute(
            "INSERT INTO replicas (id, address, epoch_confirmed, heartbeat_micros, started_micros, leader) VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET address = excluded.address, epoch_confirmed = excluded.epoch_confirmed, "
            "heartbeat_micros = excluded.heartbeat_micros, leader = excluded.leader",
            (replica.id, replica.address, replica.epoch_confirmed, replica.heartbeat_micros, replica.started_micros, replica.leader)))

    def replicas(self) -> list[ReplicaInfo]:
        def work(cur: psycopg.Cursor) -> list[ReplicaInfo]:
            cur.execute("SELECT id, address, epoch_confirmed, heartbeat_micros, started_micros, leader FROM replicas ORDER BY id")
            return [ReplicaInfo(*r) for r in cur.fetchall()]

        return self._run(work)

    def try_lead(self) -> bool:
        """Hold the advisory lock on a connection of its own: when this process dies or loses the database, the
        session ends, the lock is released, and another replica takes over on its next try."""
        with self._lock:
            try:
                if self._leader is None or self._leader.closed or self._leader.broken:
                    self._leader, self._leading = self._connect(autocommit=True), False
                if self._leading:
                    self._leader.execute("SELECT 1")  # the session, and the lock with it, is still alive
                else:
                    self._leading = bool(self._leader.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()[0])
                return self._leading
            except (psycopg.Error, Unavailable):
                self._leader, self._leading = None, False
                return False

    def wait_for_change(self, timeout: float) -> None:
        """Block until a NOTIFY on the registry channel or `timeout`; Unavailable when the database is gone."""
        try:
            if self._listen is None or self._listen.closed or self._listen.broken:
                self._listen = self._connect(autocommit=True)
                self._listen.execute(f"LISTEN {CHANNEL}")
            for _ in self._listen.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error as exc:
            self._listen = None
            raise _unavailable(exc) from None

    # --- operational records -----------------------------------------------------------------------------------

    def open_incident(self, group: str, kind: str, publish_id: str, detail: str, at_micros: int) -> int:
        def work(cur: psycopg.Cursor) -> int:
            cur.execute("INSERT INTO incidents (opened_micros, group_name, kind, publish_id, detail) VALUES (%s, %s, %s, %s, %s) RETURNING id",
                        (at_micros, group, kind, publish_id, detail))
            return int(cur.fetchone()[0])

        return self._run(work)

    def incidents(self, include_resolved: bool) -> list[Incident]:
        def work(cur: psycopg.Cursor) -> list[Incident]:
            sql = "SELECT id, opened_micros, group_name, kind, publish_id, detail, resolved_micros, resolved_by, resolution FROM incidents"
            cur.execute(sql + ("" if include_resolved else " WHERE resolved_micros IS NULL") + " ORDER BY id")
            return [Incident(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7] or "", r[8] or "") for r in cur.fetchall()]

        return self._run(work)

    def resolve_incident(self, incident_id: int, resolved_by: str, resolution: str, at_micros: int) -> Incident:
        def work(cur: psycopg.Cursor) -> None:
            cur.execute("SELECT resolved_micros FROM incidents WHERE id = %s FOR UPDATE", (incident_id,))
            row = cur.fetchone()
            if row is None:
                raise NotFound(f"no incident {incident_id}", field="id")
            if row[0] is not None:
                raise FailedPrecondition(f"incident {incident_id} is already resolved", field="id")
            cur.execute("UPDATE incidents SET resolved_micros = %s, resolved_by = %s, resolution = %s WHERE id = %s",
                        (at_micros, resolved_by, resolution, incident_id))

        self._run(work)
        return next(i for i in self.incidents(include_resolved=True) if i.id == incident_id)

    def record_sync_run(self, run: SyncRun) -> SyncRun:
        payload = asdict(run)
        payload.pop("id")

        def work(cur: psycopg.Cursor) -> int:
            cur.execute("INSERT INTO sync_runs (group_name, started_micros, ended_micros, outcome, run_json) VALUES (%s, %s, %s, %s, %s) RETURNING id",
                        (run.group, run.started_micros, run.ended_micros, run.outcome, json.dumps(payload)))
            return int(cur.fetchone()[0])

        return SyncRun(**{**payload, "id": self._run(work)})

    def sync_runs(self, group: str, limit: int) -> list[SyncRun]:
        def work(cur: psycopg.Cursor) -> list[SyncRun]:
            if group:
                cur.execute("SELECT id, run_json FROM sync_runs WHERE group_name = %s ORDER BY id DESC LIMIT %s", (group, limit or 100))
            else:
                cur.execute("SELECT id, run_json FROM sync_runs ORDER BY id DESC LIMIT %s", (limit or 100,))
            return [SyncRun(id=int(r[0]), **json.loads(r[1])) for r in cur.fetchall()]

        return self._run(work)

    def request_resync(self, group: str, reason: str, at_micros: int) -> int:
        def work(cur: psycopg.Cursor) -> int:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"resync:{group}",))
            cur.execute("SELECT id FROM resync_requests WHERE group_name = %s AND done_micros IS NULL", (group,))
            row = cur.fetchone()
            if row is not None:
                return int(row[0])
            cur.execute("INSERT INTO resync_requests (group_name, reason, requested_micros) VALUES (%s, %s, %s) RETURNING id", (group, reason, at_micros))
            return int(cur.fetchone()[0])

        return self._run(work)

    def pending_resyncs(self) -> list[ResyncRequest]:
        def work(cur: psycopg.Cursor) -> list[ResyncRequest]:
            cur.execute("SELECT id, group_name, reason, requested_micros FROM resync_requests WHERE done_micros IS NULL ORDER BY id")
            return [ResyncRequest(int(r[0]), r[1], r[2], r[3]) for r in cur.fetchall()]

        return self._run(work)

    def ack_resync(self, request_id: int, at_micros: int) -> None:
        def work(cur: psycopg.Cursor) -> None:
            cur.execute("UPDATE resync_requests SET done_micros = COALESCE(done_micros, %s) WHERE id = %s", (at_micros, request_id))
            if cur.rowcount == 0:
                raise NotFound(f"no resync request {request_id}", field="id")

        self._run(work)

    def record_validation(self, slot: int, consistency: float | None, sampled: int, detail: dict[str, int], at_micros: int) -> None:
        self._run(lambda cur: cur.execute(
            "INSERT INTO validations (slot, at_micros, consistency, sampled, detail_json) VALUES (%s, %s, %s, %s, %s)",
            (slot, at_micros, 0.0 if consistency is None else consistency, sampled, json.dumps(detail))))

    def last_validation(self, slot: int) -> tuple[float | None, int, int] | None:
        def work(cur: psycopg.Cursor) -> tuple[float | None, int, int] | None:
            cur.execute("SELECT consistency, sampled, at_micros FROM validations WHERE slot = %s ORDER BY id DESC LIMIT 1", (slot,))
            row = cur.fetchone()
            if row is None:
                return None
            return (float(row[0]) if row[1] else None), int(row[1]), int(row[2])

        return self._run(work)

    def backup_to(self, path: Path) -> None:
        raise FailedPrecondition("the PostgreSQL registry is backed up by PostgreSQL itself (pg_dump, base backups), not by fsd backup",
                                 field="name")

    def close(self) -> None:
        with self._lock:
            for conn in (self._conn, self._listen, self._leader):
                if conn is not None and not conn.closed:
                    conn.close()

