"""The registry state serving reads: an immutable snapshot of groups, versions, manifests and policy flags."""
from __future__ import annotations

from dataclasses import dataclass, field

from fsd.domain.records import GroupInfo, ManifestInfo, VersionInfo
from fsd.domain.resolution import ANY_STATE, find_manifest, resolve_ref, resolve_version
from fsd.domain.types import ResolvedFeature
from fsd.errors import NotFound, echo


@dataclass(frozen=True, slots=True)
class RegistrySnapshot:
    """Immutable after construction except for the memo of resolved refs (a pure function of the snapshot)."""

    revision: int
    groups: dict[str, GroupInfo]
    manifests: dict[str, tuple[ManifestInfo, ...]] = field(default_factory=dict)  # name -> versions, ascending
    blocked: frozenset[int] = frozenset()  # slots whose serving is blocked by policy
    stale_groups: frozenset[str] = frozenset()  # groups marked stale by a freshness breach
    epoch: int = 0  # the registry epoch this snapshot reflects (bumped by every change it shows)
    _resolved: dict[str, ResolvedFeature] = field(default_factory=dict, compare=False, repr=False)

    def manifest(self, text: str) -> ManifestInfo:
        """`name` (latest version) or `name@N`."""
        return find_manifest(self.manifests, text)

    def group(self, name: str) -> GroupInfo:
        info = self.groups.get(name)
        if info is None:
            raise NotFound(f"unknown feature group {echo(name)}", field="group")
        return info

    def group_by_id(self, group_id: int) -> GroupInfo | None:
        return next((g for g in self.groups.values() if g.group_id == group_id), None)

    def find_version(self, group: str, feature: str, version: int) -> tuple[GroupInfo, VersionInfo]:
        """The group and the numbered version of one of its features, whatever its state."""
        info = self.group(group)
        return info, resolve_version(info, feature, version, allowed=ANY_STATE, field="version")

    def manifests_pinning(self, group: str, feature: str, version: int) -> list[str]:
        return sorted(
            m.ref
            for versions in self.manifests.values()
            for m in versions
            for p in m.features
            if (p.group, p.feature, p.version) == (group, feature, version)
        )

    def resolve(self, text: str) -> ResolvedFeature:
        """The feature version a reference serves; memoised, so the hot path pays this once per revision."""
        cached = self._resolved.get(text)
        if cached is not None:
            return cached
        group, chosen = resolve_ref(self.groups, text)
        max_age = chosen.spec.max_age_seconds or group.spec.max_age_seconds
        resolved = ResolvedFeature(
            group=group.spec.name,
            group_id=group.group_id,
            feature=chosen.spec.name,
            version=chosen.version,
            slot=chosen.slot,
            dtype=chosen.spec.dtype,
            vector_dim=chosen.spec.vector_dim,
            max_age_micros=max_age * 1_000_000,
            blocked=chosen.slot in self.blocked,
            group_stale=group.spec.name in self.stale_groups,
        )
        self._resolved[text] = resolved
        return resolved
