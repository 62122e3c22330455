"""Operational records kept beside the definitions: review incidents, sync runs, forced-resync requests and
validation results, stamped with the registry's clock and kept by its store (same durability as definitions)."""
from __future__ import annotations

from fsd.domain import Clock, Incident, ResyncRequest, SyncRun
from fsd.errors import InvalidArgument
from fsd.registry.store import RegistryStore

MAX_INCIDENT_ID = 2**63 - 1


class Operations:
    def __init__(self, store: RegistryStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def open_incident(self, group: str, kind: str, publish_id: str, detail: str) -> int:
        return self._store.open_incident(group, kind, publish_id, detail, self._clock.now_micros())

    def incidents(self, include_resolved: bool = False) -> list[Incident]:
        return self._store.incidents(include_resolved)

    def resolve_incident(self, incident_id: int, resolved_by: str, resolution: str) -> Incident:
        _check_id(incident_id)
        return self._store.resolve_incident(incident_id, resolved_by, resolution, self._clock.now_micros())

    def record_sync_run(self, run: SyncRun) -> SyncRun:
        return self._store.record_sync_run(run)

    def sync_runs(self, group: str = "", limit: int = 100) -> list[SyncRun]:
        return self._store.sync_runs(group, limit)

    def request_resync(self, group: str, reason: str) -> int:
        """A forced-resync request for the sync scheduler; one open request per group is enough."""
        return self._store.request_resync(group, reason, self._clock.now_micros())

    def pending_resyncs(self) -> list[ResyncRequest]:
        return self._store.pending_resyncs()

    def ack_resync(self, request_id: int) -> None:
        _check_id(request_id)
        self._store.ack_resync(request_id, self._clock.now_micros())

    def record_validation(self, slot: int, consistency: float | None, sampled: int, detail: dict[str, int]) -> None:
        self._store.record_validation(slot, consistency, sampled, detail, self._clock.now_micros())

    def last_validation(self, slot: int) -> tuple[float | None, int, int] | None:
        """(consistency or None when nothing was compared, sampled, at) of the latest validation of a version."""
        return self._store.last_validation(slot)


def _check_id(value: int) -> None:
    if not 0 < value <= MAX_INCIDENT_ID:
        raise InvalidArgument(f"id must be 1 to {MAX_INCIDENT_ID}", field="id")
