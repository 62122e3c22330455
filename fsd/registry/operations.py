"""Operational records kept beside the definitions: review incidents and sync runs (durable, queryable)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from fsd.domain import Clock
from fsd.errors import FailedPrecondition, NotFound
from fsd.registry.storage import RegistryStorage


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    opened_micros: int
    group: str
    kind: str
    publish_id: str
    detail: str
    resolved_micros: int | None = None
    resolved_by: str = ""
    resolution: str = ""


@dataclass(slots=True)
class SyncRunRecord:
    group: str
    started_micros: int
    ended_micros: int
    outcome: str  # success | failed
    error: str = ""
    snapshot: str = ""
    rows_read: int = 0
    values_written: int = 0
    rows_rejected: int = 0
    reason_counts: dict[str, int] = field(default_factory=dict)
    watermark_micros: int = 0
    sync_delay_micros: int = 0
    forced: bool = False
    id: int = 0


class Operations:
    """Incidents and sync runs in the registry database (same durability as definitions)."""

    def __init__(self, storage: RegistryStorage, clock: Clock) -> None:
        self._storage = storage
        self._clock = clock

    def open_incident(self, group: str, kind: str, publish_id: str, detail: str) -> int:
        with self._storage.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO incidents (opened_micros, group_name, kind, publish_id, detail) VALUES (?, ?, ?, ?, ?)",
                (self._clock.now_micros(), group, kind, publish_id, detail),
            )
            return int(cursor.lastrowid)  # type: ignore[arg-type]

    def incidents(self, include_resolved: bool = False) -> list[Incident]:
        sql = "SELECT id, opened_micros, group_name, kind, publish_id, detail, resolved_micros, resolved_by, resolution FROM incidents"
        if not include_resolved:
            sql += " WHERE resolved_micros IS NULL"
        return [Incident(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] or "", r[8] or "") for r in self._storage.query(sql + " ORDER BY id")]

    def resolve_incident(self, incident_id: int, resolved_by: str, resolution: str) -> Incident:
        with self._storage.transaction() as conn:
            row = conn.execute("SELECT resolved_micros FROM incidents WHERE id = ?", (incident_id,)).fetchone()
            if row is None:
                raise NotFound(f"no incident {incident_id}", field="id")
            if row[0] is not None:
                raise FailedPrecondition(f"incident {incident_id} is already resolved", field="id")
            conn.execute(
                "UPDATE incidents SET resolved_micros = ?, resolved_by = ?, resolution = ? WHERE id = ?",
                (self._clock.now_micros(), resolved_by, resolution, incident_id),
            )
        return next(i for i in self.incidents(include_resolved=True) if i.id == incident_id)

    def record_sync_run(self, run: SyncRunRecord) -> SyncRunRecord:
        payload = asdict(run)
        payload.pop("id")
        with self._storage.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO sync_runs (group_name, started_micros, ended_micros, outcome, run_json) VALUES (?, ?, ?, ?, ?)",
                (run.group, run.started_micros, run.ended_micros, run.outcome, json.dumps(payload)),
            )
            run.id = int(cursor.lastrowid)  # type: ignore[arg-type]
        return run

    def sync_runs(self, group: str = "", limit: int = 100) -> list[SyncRunRecord]:
        sql = "SELECT id, run_json FROM sync_runs"
        args: tuple[object, ...] = ()
        if group:
            sql += " WHERE group_name = ?"
            args = (group,)
        rows = self._storage.query(sql + " ORDER BY id DESC LIMIT ?", (*args, limit or 100))
        return [SyncRunRecord(id=r[0], **json.loads(r[1])) for r in rows]

    def request_resync(self, group: str, reason: str) -> int:
        """A forced-resync request for the sync scheduler; one open request per group is enough."""
        with self._storage.transaction() as conn:
            row = conn.execute("SELECT id FROM resync_requests WHERE group_name = ? AND done_micros IS NULL", (group,)).fetchone()
            if row is not None:
                return int(row[0])
            cursor = conn.execute(
                "INSERT INTO resync_requests (group_name, reason, requested_micros) VALUES (?, ?, ?)", (group, reason, self._clock.now_micros())
            )
            return int(cursor.lastrowid)  # type: ignore[arg-type]

    def pending_resyncs(self) -> list[tuple[int, str, str, int]]:
        return [tuple(r) for r in self._storage.query(  # type: ignore[misc]
            "SELECT id, group_name, reason, requested_micros FROM resync_requests WHERE done_micros IS NULL ORDER BY id")]

    def ack_resync(self, request_id: int) -> None:
        with self._storage.transaction() as conn:
            conn.execute("UPDATE resync_requests SET done_micros = ? WHERE id = ?", (self._clock.now_micros(), request_id))

    def record_validation(self, slot: int, consistency: float, sampled: int, detail: dict[str, object]) -> None:
        with self._storage.transaction() as conn:
            conn.execute(
                "INSERT INTO validations (slot, at_micros, consistency, sampled, detail_json) VALUES (?, ?, ?, ?, ?)",
                (slot, self._clock.now_micros(), consistency, sampled, json.dumps(detail)),
            )

    def last_validation(self, slot: int) -> tuple[float, int, int] | None:
        """(consistency, sampled, at) of the latest validation of a feature version."""
        rows = self._storage.query("SELECT consistency, sampled, at_micros FROM validations WHERE slot = ? ORDER BY id DESC LIMIT 1", (slot,))
        return (float(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else None

    def last_successful_watermark(self, group: str) -> int:
        for run in self.sync_runs(group, limit=1000):
            if run.outcome == "success":
                return run.watermark_micros
        return 0
