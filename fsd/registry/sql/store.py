"""The registry store in SQL, for SQLite and PostgreSQL alike: every RegistryStore call is one transaction, the
revision is checked inside it (a stale write is refused and changes nothing), and every change a snapshot shows
bumps the epoch (announced to other processes by the dialect). Free text is checked here, once for both
databases: no NUL (PostgreSQL cannot store it) and at most MAX_TEXT_CHARS."""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict
from pathlib import Path

from fsd.domain import (
    Change, GroupInfo, GroupSpec, HistoryEntry, Incident, ManifestInfo, PinnedFeature, ReplicaInfo, ResyncRequest, SyncRun, VersionInfo,
    VersionState,
)
from fsd.errors import FailedPrecondition, InvalidArgument, NotFound
from fsd.registry import serialization
from fsd.registry.sql.dialect import Dialect, SqliteDialect, Tx
from fsd.registry.sql.schema import MIGRATIONS, statements
from fsd.registry.store import Audit, HistoryNote, StateChange, StoredState, VersionWrite

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 64 * 1024
_POSTGRES_PREFIXES = ("postgresql://", "postgres://")


def registry_kind(url: str) -> str:
    """The one reading of a registry URL: "postgresql" (shared by replicas) or "sqlite" (sqlite:///path or a path)."""
    return "postgresql" if url.startswith(_POSTGRES_PREFIXES) else "sqlite"


def open_registry_store(url: str) -> SqlRegistryStore:
    """The registry store `url` names."""
    if registry_kind(url) == "postgresql":
        from fsd.registry.sql.postgres import PostgresDialect

        return SqlRegistryStore(PostgresDialect(url))
    return SqlRegistryStore(SqliteDialect(url.removeprefix("sqlite://") if url.startswith("sqlite:///") else url))


def free_text(field: str, value: str) -> str:
    """Text a person typed (actor, reason, description ...), refused the same way on both databases."""
    if "\x00" in value:
        raise InvalidArgument(f"{field} must not contain a NUL character", field=field)
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidArgument(f"{field} is {len(value)} characters; at most {MAX_TEXT_CHARS}", field=field)
    return value


def _checked(audit: Audit) -> Audit:
    free_text(audit.actor_field, audit.actor)
    free_text(audit.reason_field, audit.reason)
    return audit


class SqlRegistryStore:
    """RegistryStore over one database; calls are serialised by the dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self._db = dialect
        self._migrate()

    @property
    def kind(self) -> str:
        return self._db.kind

    @property
    def shared(self) -> bool:
        """Whether other processes (replicas) write this registry, so a reader must watch it for changes."""
        return self._db.shared

    def _migrate(self) -> None:
        with self._db.transaction(write=True) as tx:
            self._db.lock(tx, "fsd-registry-migrate")
            tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = int((tx.one("SELECT max(version) FROM schema_version") or (0,))[0] or 0)
            for number, script in enumerate(MIGRATIONS, start=1):
                if number > current:
                    for statement in statements(script, self._db.types):
                        tx.execute(statement)
                    tx.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
                    logger.info("registry schema migrated to version %d", number)

    # --- counters and history ---------------------------------------------------------------------------------

    def _counter(self, tx: Tx, key: str, lock: bool = False) -> int:
        row = tx.one("SELECT value FROM meta WHERE key = ?" + (self._db.for_update if lock else ""), (key,))
        return int(row[0]) if row else 0

    @staticmethod
    def _next_counter(tx: Tx, key: str) -> int:
        row = tx.one("INSERT INTO meta (key, value) VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET value = meta.value + 1 RETURNING value", (key,))
        return int(row[0])  # type: ignore[index]

    def _bump_epoch(self, tx: Tx) -> int:
        """Every change a snapshot shows bumps the epoch: readers compare it to know whether to reload."""
        epoch = self._next_counter(tx, "epoch")
        self._db.epoch_bumped(tx, epoch)
        return epoch

    def _bump_revision(self, tx: Tx, expected: int | None) -> int:
        current = self._counter(tx, "revision", lock=True)  # concurrent writers queue here; the second sees the first's revision
        if expected is not None and current != expected:
            raise FailedPrecondition(f"registry revision is {current}, the change expected {expected}: re-run plan", field="expected_revision")
        self._bump_epoch(tx)
        return self._next_counter(tx, "revision")

    @staticmethod
    def _history(tx: Tx, notes: Sequence[HistoryNote], at: int, revision: int, audit: Audit) -> None:
        tx.many(
            "INSERT INTO history (at_micros, revision, group_name, feature, version, action, detail, actor, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(at, revision, n.group, n.feature, n.version, n.action, free_text("detail", n.detail), audit.actor, audit.reason) for n in notes],
        )

    # --- definitions -------------------------------------------------------------------------------------------

    def revision(self) -> int:
        with self._db.transaction(write=False) as tx:
            return self._counter(tx, "revision")

    def epoch(self) -> int:
        with self._db.transaction(write=False) as tx:
            return self._counter(tx, "epoch")

    def load(self) -> StoredState:
        with self._db.transaction(write=False) as tx:
            revision, epoch = self._counter(tx, "revision"), self._counter(tx, "epoch")
            blocked = frozenset(int(r[0]) for r in tx.all("SELECT slot FROM blocked_slots"))
            stale = frozenset(r[0] for r in tx.all("SELECT DISTINCT group_name FROM stale_marks"))
            group_rows = tx.all("SELECT name, group_id, spec_json FROM groups ORDER BY name")
            version_rows = tx.all(
                "SELECT slot, group_name, feature, version, state, spec_json, behaviour_hash, created_micros, "
                "first_published_micros, retired_micros, purged_micros FROM feature_versions ORDER BY group_name, feature, version"
            )
            manifest_rows = tx.all("SELECT name, version, created_micros, created_by, description, features_json FROM manifests ORDER BY name, version")
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

    def apply(self, groups: Sequence[GroupSpec], versions: Sequence[VersionWrite], changes: Sequence[Change],
              expected_revision: int, at_micros: int, audit: Audit) -> int:
        _checked(audit)
        with self._db.transaction(write=True) as tx:
            revision = self._bump_revision(tx, expected_revision)
            for spec in groups:
                payload = serialization.group_to_json(spec)
                if tx.execute("UPDATE groups SET spec_json = ?, updated_micros = ? WHERE name = ?", (payload, at_micros, spec.name)) == 0:
                    tx.execute("INSERT INTO groups (name, group_id, spec_json, created_micros, updated_micros) VALUES (?, ?, ?, ?, ?)",
                               (spec.name, self._next_counter(tx, "group_id"), payload, at_micros, at_micros))
            for v in versions:
                spec_json = json.dumps(serialization.feature_to_dict(v.spec), sort_keys=True)
                if v.new:
                    tx.execute(
                        "INSERT INTO feature_versions (slot, group_name, feature, version, state, spec_json, behaviour_hash, created_micros) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (self._next_counter(tx, "slot"), v.group, v.spec.name, v.version, int(v.state), spec_json, v.behaviour_hash, at_micros),
                    )
                else:
                    tx.execute("UPDATE feature_versions SET spec_json = ? WHERE group_name = ? AND feature = ? AND version = ?",
                               (spec_json, v.group, v.spec.name, v.version))
            notes = [HistoryNote(c.group, c.feature, c.version, c.action, c.detail) for c in changes if c.action != "unchanged"]
            self._history(tx, notes, at_micros, revision, audit)
        return revision

    def change_states(self, changes: Sequence[StateChange], notes: Sequence[HistoryNote], expected_revision: int,
                      at_micros: int, audit: Audit) -> int:
        _checked(audit)
        with self._db.transaction(write=True) as tx:
            revision = self._bump_revision(tx, expected_revision)
            for change in changes:
                if change.state == VersionState.RETIRED:
                    tx.execute("UPDATE feature_versions SET state = ?, retired_micros = ? WHERE slot = ?", (int(change.state), at_micros, change.slot))
                else:
                    tx.execute("UPDATE feature_versions SET state = ? WHERE slot = ?", (int(change.state), change.slot))
            self._history(tx, notes, at_micros, revision, audit)
        return revision

    def add_manifest(self, manifest: ManifestInfo, expected_revision: int, audit: Audit) -> int:
        free_text("created_by", manifest.created_by)
        free_text("description", manifest.description)
        payload = json.dumps([asdict(p) for p in manifest.features])
        with self._db.transaction(write=True) as tx:
            revision = self._bump_revision(tx, expected_revision)
            tx.execute("INSERT INTO manifests (name, version, created_micros, created_by, description, features_json) VALUES (?, ?, ?, ?, ?, ?)",
                       (manifest.name, manifest.version, manifest.created_micros, manifest.created_by, manifest.description, payload))
            notes = [HistoryNote(p.group, p.feature, p.version, "pinned", f"manifest {manifest.ref}") for p in manifest.features]
            self._history(tx, notes, manifest.created_micros, revision, Audit(audit.actor, manifest.description))
        return revision

    def delete_manifest(self, name: str, notes: Sequence[HistoryNote], expected_revision: int, at_micros: int, audit: Audit) -> int:
        _checked(audit)
        with self._db.transaction(write=True) as tx:
            revision = self._bump_revision(tx, expected_revision)
            if tx.execute("DELETE FROM manifests WHERE name = ?", (name,)) == 0:
                raise NotFound(f"unknown manifest {name[:100]!r}", field="name")
            self._history(tx, notes, at_micros, revision, audit)
        return revision

    def delete_group(self, name: str, notes: Sequence[HistoryNote], expected_revision: int, at_micros: int, audit: Audit) -> int:
        _checked(audit)
        with self._db.transaction(write=True) as tx:
            revision = self._bump_revision(tx, expected_revision)
            tx.execute("DELETE FROM blocked_slots WHERE slot IN (SELECT slot FROM feature_versions WHERE group_name = ?)", (name,))
            tx.execute("DELETE FROM feature_versions WHERE group_name = ?", (name,))
            tx.execute("DELETE FROM stale_marks WHERE group_name = ?", (name,))
            if tx.execute("DELETE FROM groups WHERE name = ?", (name,)) == 0:
                raise NotFound(f"unknown feature group {name[:100]!r}", field="name")
            self._history(tx, notes, at_micros, revision, audit)
        return revision

    def add_history(self, notes: Sequence[HistoryNote], at_micros: int, audit: Audit, bump_revision: bool) -> int:
        _checked(audit)
        with self._db.transaction(write=True) as tx:
            revision = self._bump_revision(tx, None) if bump_revision else self._counter(tx, "revision")
            self._history(tx, notes, at_micros, revision, audit)
        return revision

    def mark_published(self, slots: Sequence[int], at_micros: int) -> None:
        with self._db.transaction(write=True) as tx:
            self._bump_epoch(tx)
            tx.many("UPDATE feature_versions SET first_published_micros = ? WHERE slot = ? AND first_published_micros IS NULL",
                    [(at_micros, slot) for slot in slots])

    def mark_purged(self, slot: int, at_micros: int) -> None:
        with self._db.transaction(write=True) as tx:
            self._bump_epoch(tx)
            row = tx.one("UPDATE feature_versions SET purged_micros = ? WHERE slot = ? RETURNING group_name, feature, version", (at_micros, slot))
            if row is not None:
                self._history(tx, [HistoryNote(row[0], row[1], row[2], "purge", "online values removed")], at_micros,
                              self._counter(tx, "revision"), Audit("fsd"))

    def history(self, group: str, feature: str | None) -> list[HistoryEntry]:
        query = "SELECT at_micros, revision, group_name, feature, version, action, detail, actor, reason FROM history WHERE group_name = ?"
        args: tuple[object, ...] = (group,)
        if feature is not None:
            query += " AND (feature = ? OR feature = '')"
            args = (group, feature)
        with self._db.transaction(write=False) as tx:
            return [HistoryEntry(*r) for r in tx.all(query + " ORDER BY id", args)]

    def set_blocked(self, slot: int, blocked: bool, at_micros: int) -> bool:
        with self._db.transaction(write=True) as tx:
            if blocked:
                changed = tx.execute("INSERT INTO blocked_slots (slot, at_micros) VALUES (?, ?) ON CONFLICT DO NOTHING", (slot, at_micros))
            else:
                changed = tx.execute("DELETE FROM blocked_slots WHERE slot = ?", (slot,))
            if changed > 0:
                self._bump_epoch(tx)
            return changed > 0

    def set_stale_mark(self, group: str, source: str, stale: bool, at_micros: int) -> bool:
        with self._db.transaction(write=True) as tx:
            if stale:
                changed = tx.execute("INSERT INTO stale_marks (group_name, source, at_micros) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                                     (group, source, at_micros))
            else:
                changed = tx.execute("DELETE FROM stale_marks WHERE group_name = ? AND source = ?", (group, source))
            if changed > 0:
                self._bump_epoch(tx)
            return changed > 0

    def claim_deployment(self, key: str, value: str) -> str:
        with self._db.transaction(write=True) as tx:
            tx.execute("INSERT INTO deployment (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING", (key, free_text(key, value)))
            return str(tx.one("SELECT value FROM deployment WHERE key = ?", (key,))[0])  # type: ignore[index]

    # --- coordination between processes -------------------------------------------------------------------------

    def heartbeat(self, replica: ReplicaInfo) -> None:
        with self._db.transaction(write=True) as tx:
            tx.execute(
                "INSERT INTO replicas (id, address, epoch_confirmed, heartbeat_micros, started_micros, leader) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET address = excluded.address, epoch_confirmed = excluded.epoch_confirmed, "
                "heartbeat_micros = excluded.heartbeat_micros, leader = excluded.leader",
                (free_text("replica_id", replica.id), free_text("address", replica.address), replica.epoch_confirmed, replica.heartbeat_micros,
                 replica.started_micros, replica.leader),
            )

    def replicas(self) -> list[ReplicaInfo]:
        with self._db.transaction(write=False) as tx:
            rows = tx.all("SELECT id, address, epoch_confirmed, heartbeat_micros, started_micros, leader FROM replicas ORDER BY id")
        return [ReplicaInfo(r[0], r[1], int(r[2]), int(r[3]), int(r[4]), bool(r[5])) for r in rows]

    def try_lead(self) -> bool:
        return self._db.try_lead()

    def hold(self, name: str) -> AbstractContextManager[None]:
        return self._db.hold(name)

    def wait_for_change(self, timeout: float) -> None:
        self._db.wait_for_change(timeout)

    # --- the operations record ---------------------------------------------------------------------------------

    def open_incident(self, group: str, kind: str, publish_id: str, detail: str, at_micros: int) -> int:
        with self._db.transaction(write=True) as tx:
            row = tx.one("INSERT INTO incidents (opened_micros, group_name, kind, publish_id, detail) VALUES (?, ?, ?, ?, ?) RETURNING id",
                         (at_micros, group, kind, free_text("publish_id", publish_id), free_text("detail", detail)))
            return int(row[0])  # type: ignore[index]

    def incidents(self, include_resolved: bool) -> list[Incident]:
        sql = "SELECT id, opened_micros, group_name, kind, publish_id, detail, resolved_micros, resolved_by, resolution FROM incidents"
        with self._db.transaction(write=False) as tx:
            rows = tx.all(sql + ("" if include_resolved else " WHERE resolved_micros IS NULL") + " ORDER BY id")
        return [Incident(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7] or "", r[8] or "") for r in rows]

    def resolve_incident(self, incident_id: int, resolved_by: str, resolution: str, at_micros: int) -> Incident:
        free_text("resolved_by", resolved_by)
        free_text("resolution", resolution)
        with self._db.transaction(write=True) as tx:
            row = tx.one("SELECT resolved_micros FROM incidents WHERE id = ?" + self._db.for_update, (incident_id,))
            if row is None:
                raise NotFound(f"no incident {incident_id}", field="id")
            if row[0] is not None:
                raise FailedPrecondition(f"incident {incident_id} is already resolved", field="id")
            tx.execute("UPDATE incidents SET resolved_micros = ?, resolved_by = ?, resolution = ? WHERE id = ?",
                       (at_micros, resolved_by, resolution, incident_id))
        return next(i for i in self.incidents(include_resolved=True) if i.id == incident_id)

    def record_sync_run(self, run: SyncRun) -> SyncRun:
        payload = asdict(run)
        payload.pop("id")
        with self._db.transaction(write=True) as tx:
            row = tx.one("INSERT INTO sync_runs (group_name, started_micros, ended_micros, outcome, run_json) VALUES (?, ?, ?, ?, ?) RETURNING id",
                         (run.group, run.started_micros, run.ended_micros, run.outcome, free_text("run", json.dumps(payload))))
        return SyncRun(**{**payload, "id": int(row[0])})  # type: ignore[index]

    def sync_runs(self, group: str, limit: int) -> list[SyncRun]:
        with self._db.transaction(write=False) as tx:
            if group:
                rows = tx.all("SELECT id, run_json FROM sync_runs WHERE group_name = ? ORDER BY id DESC LIMIT ?", (group, limit or 100))
            else:
                rows = tx.all("SELECT id, run_json FROM sync_runs ORDER BY id DESC LIMIT ?", (limit or 100,))
        return [SyncRun(id=int(r[0]), **json.loads(r[1])) for r in rows]

    def request_resync(self, group: str, reason: str, at_micros: int) -> int:
        free_text("reason", reason)
        with self._db.transaction(write=True) as tx:
            self._db.lock(tx, f"resync:{group}")
            row = tx.one("SELECT id FROM resync_requests WHERE group_name = ? AND done_micros IS NULL", (group,))
            if row is not None:
                return int(row[0])
            row = tx.one("INSERT INTO resync_requests (group_name, reason, requested_micros) VALUES (?, ?, ?) RETURNING id", (group, reason, at_micros))
            return int(row[0])  # type: ignore[index]

    def pending_resyncs(self) -> list[ResyncRequest]:
        with self._db.transaction(write=False) as tx:
            rows = tx.all("SELECT id, group_name, reason, requested_micros FROM resync_requests WHERE done_micros IS NULL ORDER BY id")
        return [ResyncRequest(int(r[0]), r[1], r[2], r[3]) for r in rows]

    def ack_resync(self, request_id: int, at_micros: int) -> None:
        with self._db.transaction(write=True) as tx:
            if tx.execute("UPDATE resync_requests SET done_micros = COALESCE(done_micros, ?) WHERE id = ?", (at_micros, request_id)) == 0:
                raise NotFound(f"no resync request {request_id}", field="id")

    def record_validation(self, slot: int, consistency: float | None, sampled: int, detail: dict[str, int], at_micros: int) -> None:
        with self._db.transaction(write=True) as tx:
            tx.execute("INSERT INTO validations (slot, at_micros, consistency, sampled, detail_json) VALUES (?, ?, ?, ?, ?)",
                       (slot, at_micros, 0.0 if consistency is None else consistency, sampled, json.dumps(detail)))

    def last_validation(self, slot: int) -> tuple[float | None, int, int] | None:
        with self._db.transaction(write=False) as tx:
            row = tx.one("SELECT consistency, sampled, at_micros FROM validations WHERE slot = ? ORDER BY id DESC LIMIT 1", (slot,))
        if row is None:
            return None
        return (float(row[0]) if row[1] else None), int(row[1]), int(row[2])

    def backup_to(self, path: Path) -> None:
        self._db.backup_to(path)

    def close(self) -> None:
        self._db.close()
