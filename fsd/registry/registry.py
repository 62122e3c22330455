"""The registry: applies definitions under the version rules, moves versions through their lifecycle, pins
manifests, and publishes immutable snapshots that serving resolves against. The only writer of which version
serves; its storage is any RegistryStore."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from fsd.domain import (
    ApplyResult, Change, Clock, GroupInfo, GroupSpec, History, ManifestInfo, RegistrySnapshot, SystemClock, VersionInfo,
    VersionState,
)
from fsd.errors import FailedPrecondition, InvalidArgument, NotFound
from fsd.registry import lifecycle, versioning
from fsd.registry.lifecycle import PromotionGate
from fsd.registry.manifests import new_manifest
from fsd.registry.operations import Operations
from fsd.registry.sql import open_registry_store
from fsd.registry.store import Audit, HistoryNote, RegistryStore

logger = logging.getLogger(__name__)

OFFLINE_WRITE_KINDS = ("ingest", "backfill", "correction")
APPLY_ATTEMPTS = 5  # an apply without an expected revision re-reads and re-plans this often when replicas race


class Registry:
    """Thread-safe; readers take `snapshot()`. Every write goes store first, then `_reload()`, the one place a
    new snapshot is built, so a reader never sees a state the store does not hold."""

    def __init__(self, store: RegistryStore | str, clock: Clock | None = None) -> None:
        self._store: RegistryStore = open_registry_store(store) if isinstance(store, str) else store
        self._clock = clock or SystemClock()
        self._write_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._promotion_gates: list[PromotionGate] = []
        self._listeners: list[Callable[[RegistrySnapshot], None]] = []
        self.operations = Operations(self._store, self._clock)
        self._snapshot = RegistrySnapshot(0, {})
        self._reload()
        self._published = {v.slot for g in self._snapshot.groups.values() for vs in g.versions.values() for v in vs if v.first_published_micros}

    @property
    def store(self) -> RegistryStore:
        return self._store

    def snapshot(self) -> RegistrySnapshot:
        return self._snapshot

    def _reload(self) -> RegistrySnapshot:
        with self._reload_lock:
            state = self._store.load()
            if state.epoch >= self._snapshot.epoch or state.epoch == 0:
                self._snapshot = RegistrySnapshot(state.revision, state.groups, state.manifests, state.blocked, state.stale_groups, state.epoch)
            for listener in self._listeners:
                listener(self._snapshot)
            return self._snapshot

    def add_listener(self, listener: Callable[[RegistrySnapshot], None]) -> None:
        """Called with each snapshot this process loads (after every write it makes, before the write returns)."""
        self._listeners.append(listener)

    def refresh(self) -> bool:
        """Re-read the store's epoch and reload when another replica changed it; True when the snapshot changed."""
        if self._store.epoch() == self._snapshot.epoch:
            return False
        self._reload()
        self._published |= {v.slot for g in self._snapshot.groups.values() for vs in g.versions.values() for v in vs if v.first_published_micros}
        return True

    # --- definitions -------------------------------------------------------------------------------------------

    def history(self, group: str, feature: str | None = None) -> History:
        """The change history of a group (or one feature with its group's entries) and its versions, each with
        the manifests pinning it."""
        snapshot = self._snapshot
        info = snapshot.group(group)
        names = [feature] if feature else [f.name for f in info.spec.features]
        versions: list[VersionInfo] = []
        for name in names:
            if name not in info.versions:
                raise NotFound(f"group {group!r} has no feature {name!r}", field="feature")
            versions.extend(replace(v, pinned_by=tuple(snapshot.manifests_pinning(group, name, v.version))) for v in info.versions[name])
        return History(tuple(self._store.history(group, feature)), tuple(versions))

    def plan(self, groups: Sequence[GroupSpec], snapshot: RegistrySnapshot | None = None,
             deadline: Callable[[], None] | None = None) -> list[Change]:
        """What `apply` would do, without changing anything (refusals raise exactly as apply would)."""
        return versioning.plan_changes(groups, (snapshot or self._snapshot).groups, deadline)

    def apply(self, groups: Sequence[GroupSpec], actor: str = "", reason: str = "", expected_revision: int | None = None,
              deadline: Callable[[], None] | None = None) -> ApplyResult:
        """Apply all groups atomically (all or nothing) under the version rules; with expected_revision, against
        exactly that revision (a plan), else against the current one — re-read when this process's view was
        behind the store (another replica wrote first), so only a caller who named a revision is told to re-plan."""
        for attempt in range(APPLY_ATTEMPTS):
            try:
                return self._apply_once(groups, actor, reason, expected_revision, deadline)
            except FailedPrecondition as exc:
                if expected_revision is not None or exc.field != "expected_revision" or attempt == APPLY_ATTEMPTS - 1:
                    raise
                self._reload()  # our snapshot was behind: plan again against the store's current state
        raise AssertionError("unreachable")

    def _apply_once(self, groups: Sequence[GroupSpec], actor: str, reason: str, expected_revision: int | None,
                    deadline: Callable[[], None] | None) -> ApplyResult:
        with self._write_lock:
            current = self._snapshot
            if expected_revision is not None and expected_revision != current.revision:
                raise FailedPrecondition(
                    f"registry revision is {current.revision}, apply expected {expected_revision}: re-run plan", field="expected_revision"
                )
            changes = versioning.plan_changes(groups, current.groups, deadline)
            if all(c.action == "unchanged" for c in changes):
                return ApplyResult(current.revision, tuple(changes))
            touched = {c.group for c in changes if c.action != "unchanged"}
            changed_groups = [g for g in groups if g.name in touched]
            revision = self._store.apply(
                changed_groups, versioning.version_writes(groups, changes), changes,
                current.revision if expected_revision is None else expected_revision, self._clock.now_micros(),
                Audit(actor, reason, actor_field="applied_by"),
            )
            self._reload()
            logger.info("registry revision %d applied: %d changes", revision, sum(c.action != "unchanged" for c in changes))
            return ApplyResult(revision, tuple(changes))

    # --- lifecycle -------------------------------------------------------------------------------------------

    def add_promotion_gate(self, gate: PromotionGate) -> None:
        """Checks a version must pass before it may serve (e.g. the consistency validator)."""
        self._promotion_gates.append(gate)

    def note_published(self, slots: Sequence[int]) -> None:
        """Values of these feature versions became durable online; records the first publish."""
        fresh = [s for s in slots if s not in self._published]
        if not fresh:
            return
        with self._write_lock:
            self._store.mark_published(fresh, self._clock.now_micros())
            self._published.update(fresh)
            self._reload()

    def promote(self, group: str, feature: str, version: int, actor: str = "", reason: str = "", force: bool = False) -> VersionInfo:
        """Make `version` the one SERVING version; the previous one becomes DEPRECATED. One atomic snapshot swap."""
        with self._write_lock:
            snapshot = self._snapshot
            info, target = snapshot.find_version(group, feature, version)
            if target.state == VersionState.SERVING:
                return target
            move = lifecycle.promotion(info, target, target.slot in self._published, self._promotion_gates, force)
            self._store.change_states(move.changes, move.notes, snapshot.revision, self._clock.now_micros(), Audit(actor, reason))
            return self._reload().find_version(group, feature, version)[1]

    def manifests_pinning(self, group: str, feature: str, version: int) -> list[str]:
        return self._snapshot.manifests_pinning(group, feature, version)

    def retire(self, group: str, feature: str, version: int, actor: str = "", reason: str = "", force: bool = False) -> VersionInfo:
        """RETIRED versions are refused to readers at once; their online values are purged after the retention."""
        with self._write_lock:
            snapshot = self._snapshot
            info, target = snapshot.find_version(group, feature, version)
            if target.state == VersionState.RETIRED:
                return target
            move = lifecycle.retirement(snapshot, info, target, force)
            self._store.change_states(move.changes, move.notes, snapshot.revision, self._clock.now_micros(), Audit(actor, reason))
            return self._reload().find_version(group, feature, version)[1]

    def retired_to_purge(self, retention_micros: int) -> list[tuple[int, int]]:
        """(group id, slot) of retired versions past retention whose online values are not yet purged."""
        return lifecycle.due_for_purge(self._snapshot, self._clock.now_micros(), retention_micros)

    def note_purged(self, slot: int) -> None:
        with self._write_lock:
            self._store.mark_purged(slot, self._clock.now_micros())
            self._reload()

    def set_blocked(self, slot: int, blocked: bool) -> None:
        """Serving of a feature version is blocked (BLOCKED statuses) or unblocked; recorded, so every replica and
        a restart honour it; takes effect with the next snapshot."""
        with self._write_lock:
            if self._store.set_blocked(slot, blocked, self._clock.now_micros()):
                self._reload()

    def record_offline_write(self, group: str, feature: str, version: int, kind: str, detail: str, actor: str) -> int:
        """History entry for an offline write; the scope (time range, rows, snapshot) is in detail."""
        if kind not in OFFLINE_WRITE_KINDS:
            raise InvalidArgument(f"offline write kind {kind[:40]!r} must be ingest, backfill or correction", field="kind")
        with self._write_lock:
            self._snapshot.find_version(group, feature, version)
            note = HistoryNote(group, feature, version, f"offline_{kind}", detail)
            revision = self._store.add_history([note], self._clock.now_micros(), Audit(actor), bump_revision=True)
            self._reload()
            return revision

    def set_group_stale(self, group: str, stale: bool, source: str = "freshness") -> bool:
        """Mark or clear one source's breach flag on a group (stale while any source says so); returns whether
        that source's flag changed, so callers log transitions rather than every check."""
        with self._write_lock:
            self._snapshot.group(group)
            if not self._store.set_stale_mark(group, source, stale, self._clock.now_micros()):
                return False
            self._reload()
            return True

    def blocked_slots(self) -> frozenset[int]:
        return self._snapshot.blocked

    # --- manifests ---------------------------------------------------------------------------------------------

    def create_manifest(self, name: str, refs: Sequence[str], actor: str = "", description: str = "") -> ManifestInfo:
        """Pin each ref (unpinned refs take the version SERVING now) under the next version of `name`."""
        with self._write_lock:
            snapshot = self._snapshot
            manifest = new_manifest(snapshot, name, refs, self._clock.now_micros(), actor, description)
            self._store.add_manifest(manifest, snapshot.revision, Audit(actor, description, "created_by", "description"))
            return self._reload().manifest(manifest.ref)

    def delete_manifest(self, name: str, actor: str = "", reason: str = "") -> int:
        """Every version of a manifest; its pins are recorded as released in the history of the pinned versions."""
        with self._write_lock:
            snapshot = self._snapshot
            versions = snapshot.manifests.get(name)
            if not versions:
                raise NotFound(f"unknown manifest {name[:100]!r}", field="name")
            notes = [HistoryNote(p.group, p.feature, p.version, "unpinned", f"manifest {m.ref} deleted") for m in versions for p in m.features
                     if p.group in snapshot.groups]
            revision = self._store.delete_manifest(name, notes, snapshot.revision, self._clock.now_micros(), Audit(actor, reason))
            self._reload()
            return revision

    def delete_group(self, name: str, force: bool = False, actor: str = "", reason: str = "") -> tuple[int, GroupInfo]:
        """Remove a group from the definitions (its history stays, its ids are never reused). Refused while a
        manifest pins one of its versions, unless force (recorded). Returns (revision, the group as it was)."""
        with self._write_lock:
            snapshot = self._snapshot
            info = snapshot.group(name)
            pinned = sorted({m for f, vs in info.versions.items() for v in vs for m in snapshot.manifests_pinning(name, f, v.version)})
            if pinned and not force:
                raise FailedPrecondition(f"group {name} has versions pinned by manifest(s) {', '.join(pinned)}; delete them first "
                                         "(fsd manifest delete NAME) or force, which breaks them (recorded)", field="name")
            detail = f"group deleted ({sum(len(vs) for vs in info.versions.values())} versions)" + (
                f"; forced past manifests {', '.join(pinned)}" if pinned else "")
            revision = self._store.delete_group(name, [HistoryNote(name, "", 0, "delete_group", detail)], snapshot.revision,
                                                self._clock.now_micros(), Audit(actor, reason))
            self._reload()
            return revision, info

    def close(self) -> None:
        self._store.close()
