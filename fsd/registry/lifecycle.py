"""Version lifecycle decisions: promote (one SERVING version, the previous one DEPRECATED, gated) and retire
(never the SERVING version, never a pinned one without force). Pure: the registry writes what these decide."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fsd.domain import GroupInfo, RegistrySnapshot, VersionInfo, VersionState
from fsd.errors import FailedPrecondition
from fsd.registry.store import HistoryNote, StateChange

PromotionGate = Callable[[GroupInfo, VersionInfo], None]  # raises FailedPrecondition to refuse a promotion


@dataclass(frozen=True, slots=True)
class Transition:
    changes: tuple[StateChange, ...]
    notes: tuple[HistoryNote, ...]


def promotion(info: GroupInfo, target: VersionInfo, published: bool, gates: Sequence[PromotionGate], force: bool) -> Transition:
    """Make `target` the one SERVING version of its feature; the previous one becomes DEPRECATED."""
    group, feature, version = info.spec.name, target.spec.name, target.version
    ref = f"{group}:{feature}@{version}"
    if target.state == VersionState.RETIRED:
        raise FailedPrecondition(f"{ref} is RETIRED and cannot serve again", field="version")
    if not published:
        raise FailedPrecondition(f"{ref} has no published values; publish (and validate) it before promoting", field="version")
    gate_note = ""
    for gate in gates:
        try:
            gate(info, target)
        except FailedPrecondition as exc:
            if not force:
                raise
            gate_note = f"; gate overridden with --force: {exc.message}"
    changes, notes = [], []
    for v in info.versions[feature]:
        if v.state == VersionState.SERVING:
            changes.append(StateChange(v.slot, VersionState.DEPRECATED))
            notes.append(HistoryNote(group, feature, v.version, "deprecate", f"superseded by v{version}"))
    changes.append(StateChange(target.slot, VersionState.SERVING))
    notes.append(HistoryNote(group, feature, version, "promote", f"{target.state.name} -> SERVING{gate_note}"))
    return Transition(tuple(changes), tuple(notes))


def retirement(snapshot: RegistrySnapshot, info: GroupInfo, target: VersionInfo, force: bool) -> Transition:
    """RETIRED versions are refused to readers at once; their online values are purged after the retention."""
    group, feature, version = info.spec.name, target.spec.name, target.version
    ref = f"{group}:{feature}@{version}"
    if target.state == VersionState.SERVING:
        raise FailedPrecondition(f"{ref} is SERVING; promote another version before retiring it", field="version")
    pinned = snapshot.manifests_pinning(group, feature, version)
    if pinned and not force:
        raise FailedPrecondition(f"{ref} is pinned by manifest(s) {', '.join(pinned)}; retire with force to break them", field="version")
    detail = f"{target.state.name} -> RETIRED" + (f"; forced past manifests {', '.join(pinned)}" if pinned else "")
    return Transition((StateChange(target.slot, VersionState.RETIRED),), (HistoryNote(group, feature, version, "retire", detail),))


def due_for_purge(snapshot: RegistrySnapshot, now_micros: int, retention_micros: int) -> list[tuple[int, int]]:
    """(group id, slot) of retired versions past retention whose online values are not yet purged."""
    return [
        (g.group_id, v.slot)
        for g in snapshot.groups.values()
        for vs in g.versions.values()
        for v in vs
        if v.state == VersionState.RETIRED and v.purged_micros is None and v.retired_micros is not None
        and now_micros - v.retired_micros >= retention_micros
    ]
