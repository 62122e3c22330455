"""The registry's storage protocol, in domain terms, one transaction per call, split by concern: the definitions
and their lifecycle, the operations record (incidents, sync runs, resyncs, validations), and coordination
between the processes that share a registry.

`fsd.registry.sql.SqlRegistryStore` implements all three on SQLite and PostgreSQL; any engine that keeps these
semantics is a drop-in: every write is atomic, `revision` only grows, and a write given an `expected_revision`
that is no longer the current one is refused with FailedPrecondition and changes nothing. The contract suite
(tests/contract/test_registry_store_contract.py) runs against every implementation.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from contextlib import AbstractContextManager
from typing import Protocol

from fsd.domain import (
    Change, FeatureSpec, GroupInfo, GroupSpec, HistoryEntry, Incident, ManifestInfo, ReplicaInfo, ResyncRequest, SyncRun, VersionState,
)

__all__ = ["Audit", "Coordination", "DefinitionStore", "HistoryNote", "OperationsRecord", "RegistryStore", "ReplicaInfo", "StateChange",
           "StoredState", "VersionWrite"]


@dataclass(frozen=True, slots=True)
class StoredState:
    """Everything a registry snapshot is built from."""

    revision: int
    groups: dict[str, GroupInfo]
    manifests: dict[str, tuple[ManifestInfo, ...]]
    epoch: int = 0
    blocked: frozenset[int] = frozenset()
    stale_groups: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class VersionWrite:
    """A new feature version (state PENDING or SERVING), or a metadata update of an existing one (`new=False`)."""

    group: str
    spec: FeatureSpec
    version: int
    state: VersionState
    behaviour_hash: str
    new: bool = True


@dataclass(frozen=True, slots=True)
class StateChange:
    """One version moving to another lifecycle state (RETIRED records when)."""

    slot: int
    state: VersionState


@dataclass(frozen=True, slots=True)
class Audit:
    """Who and why, recorded with a write in the history."""

    actor: str = ""
    reason: str = ""
    actor_field: str = "actor"  # the request field each came from, named when it is refused
    reason_field: str = "reason"


@dataclass(frozen=True, slots=True)
class HistoryNote:
    """A history line a write adds (the store stamps time and revision)."""

    group: str
    feature: str
    version: int
    action: str
    detail: str


class DefinitionStore(Protocol):
    """Definitions, versions and their lifecycle, manifests, serving flags and the history of all of them."""

    def load(self) -> StoredState: ...

    def revision(self) -> int: ...

    def epoch(self) -> int:
        """The counter every snapshot-visible change bumps (definitions, states, manifests, flags)."""
        ...

    def set_blocked(self, slot: int, blocked: bool, at_micros: int) -> bool:
        """Block or unblock serving of a version; returns whether it changed."""
        ...

    def set_stale_mark(self, group: str, source: str, stale: bool, at_micros: int) -> bool:
        """One source's stale mark on a group (stale while any source marks it); returns whether it changed."""
        ...

    def apply(self, groups: Sequence[GroupSpec], versions: Sequence[VersionWrite], changes: Sequence[Change],
              expected_revision: int, at_micros: int, audit: Audit) -> int:
        """Write the groups (created or updated) and versions of one plan; returns the new revision."""
        ...

    def change_states(self, changes: Sequence[StateChange], notes: Sequence[HistoryNote], expected_revision: int,
                      at_micros: int, audit: Audit) -> int:
        """Promote/retire: move versions between states in one transaction; returns the new revision."""
        ...

    def add_manifest(self, manifest: ManifestInfo, expected_revision: int, audit: Audit) -> int: ...

    def delete_manifest(self, name: str, notes: Sequence[HistoryNote], expected_revision: int, at_micros: int, audit: Audit) -> int: ...

    def delete_group(self, name: str, notes: Sequence[HistoryNote], expected_revision: int, at_micros: int, audit: Audit) -> int:
        """Remove a group and its versions from the definitions (history stays); ids are never reused."""
        ...

    def add_history(self, notes: Sequence[HistoryNote], at_micros: int, audit: Audit, bump_revision: bool) -> int:
        """History lines on their own (offline writes, purges); returns the revision they were recorded under."""
        ...

    def mark_published(self, slots: Sequence[int], at_micros: int) -> None: ...

    def mark_purged(self, slot: int, at_micros: int) -> None: ...

    def history(self, group: str, feature: str | None) -> list[HistoryEntry]: ...

    def claim_deployment(self, key: str, value: str) -> str:
        """Record a deployment property (e.g. the offline root) unless one is recorded; returns the recorded value."""
        ...


class OperationsRecord(Protocol):
    """What happened while serving: review incidents, sync runs, forced-resync requests, validation results."""

    def open_incident(self, group: str, kind: str, publish_id: str, detail: str, at_micros: int) -> int: ...

    def incidents(self, include_resolved: bool) -> list[Incident]: ...

    def resolve_incident(self, incident_id: int, resolved_by: str, resolution: str, at_micros: int) -> Incident: ...

    def record_sync_run(self, run: SyncRun) -> SyncRun: ...

    def sync_runs(self, group: str, limit: int) -> list[SyncRun]: ...

    def request_resync(self, group: str, reason: str, at_micros: int) -> int: ...

    def pending_resyncs(self) -> list[ResyncRequest]: ...

    def ack_resync(self, request_id: int, at_micros: int) -> None: ...

    def record_validation(self, slot: int, consistency: float | None, sampled: int, detail: dict[str, int], at_micros: int) -> None: ...

    def last_validation(self, slot: int) -> tuple[float | None, int, int] | None: ...


class Coordination(Protocol):
    """Processes sharing one registry: who is alive, who runs background work, and when to look again."""

    shared: bool  # other processes write this registry (a reader must watch it and hold a lease)

    def heartbeat(self, replica: ReplicaInfo) -> None: ...

    def replicas(self) -> list[ReplicaInfo]: ...

    def try_lead(self) -> bool:
        """Whether this process holds (or just took) the background-work lease."""
        ...

    def wait_for_change(self, timeout: float) -> None:
        """Return when another process may have changed the registry, or after `timeout` seconds."""
        ...

    def hold(self, name: str) -> AbstractContextManager[None]:
        """Exclusive, while the context lasts, among every process sharing this registry (per name): what keeps
        one writer at a time on state outside the registry, such as a group's computed-feature tiles."""
        ...


class RegistryStore(DefinitionStore, OperationsRecord, Coordination, Protocol):
    """A whole registry: the three concerns over one database, which `kind` names ("sqlite", "postgresql")."""

    kind: str

    def backup_to(self, path: Path) -> None:
        """A consistent copy of the registry at `path` (taken while the registry is live); FailedPrecondition
        where the database is backed up by its own tools."""
        ...

    def close(self) -> None: ...
