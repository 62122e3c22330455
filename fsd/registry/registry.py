"""Applies definitions under the version rules and publishes immutable snapshots that serving resolves against."""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from fsd.domain import Clock, FeatureRef, FeatureSpec, GroupSpec, ResolvedFeature, SystemClock, VersionState
from fsd.errors import FailedPrecondition, InvalidArgument, NotFound
from fsd.registry import serialization, versioning
from fsd.registry.definitions import validate_group
from fsd.registry.operations import Operations
from fsd.registry.storage import HistoryRow, RegistryStorage

logger = logging.getLogger(__name__)

PromotionGate = Callable[["GroupInfo", "VersionInfo"], None]  # raises FailedPrecondition to refuse a promotion

MAX_FEATURES_PER_GROUP = 1024


@dataclass(frozen=True, slots=True)
class VersionInfo:
    slot: int
    version: int
    state: VersionState
    spec: FeatureSpec
    behaviour_hash: str
    created_micros: int
    first_published_micros: int | None = None
    retired_micros: int | None = None
    purged_micros: int | None = None


@dataclass(frozen=True, slots=True)
class PinnedFeature:
    group: str
    feature: str
    version: int
    behaviour_hash: str

    @property
    def ref(self) -> str:
        return f"{self.group}:{self.feature}@{self.version}"


@dataclass(frozen=True, slots=True)
class ManifestInfo:
    """A named, versioned list of pinned feature versions: the serving contract of a trained model."""

    name: str
    version: int
    created_micros: int
    created_by: str
    description: str
    features: tuple[PinnedFeature, ...]


@dataclass(frozen=True, slots=True)
class GroupInfo:
    group_id: int
    spec: GroupSpec
    versions: dict[str, tuple[VersionInfo, ...]]  # feature -> versions, ascending

    def serving_version(self, feature: str) -> VersionInfo | None:
        for info in self.versions.get(feature, ()):
            if info.state == VersionState.SERVING:
                return info
        return None


@dataclass(frozen=True, slots=True)
class Change:
    group: str
    feature: str  # "" for the group itself
    action: str   # create | unchanged | metadata_update | compatible_expansion | new_version
    version: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ApplyResult:
    revision: int
    changes: tuple[Change, ...]


@dataclass(slots=True)
class RegistrySnapshot:
    """What serving reads: immutable after construction except for the memo of resolved refs."""

    revision: int
    groups: dict[str, GroupInfo]
    manifests: dict[str, tuple[ManifestInfo, ...]] = field(default_factory=dict)  # name -> versions, ascending
    blocked: frozenset[int] = frozenset()  # slots whose serving is blocked by policy
    stale_groups: frozenset[str] = frozenset()  # groups marked stale by a freshness breach
    _resolved: dict[str, ResolvedFeature] = field(default_factory=dict)
    plans: dict[object, object] = field(default_factory=dict)  # request plans memoised by serving (fsd.lookup)

    def manifest(self, text: str) -> ManifestInfo:
        """`name` (latest version) or `name@N`."""
        name, sep, version_text = text.partition("@")
        versions = self.manifests.get(name)
        if not versions:
            raise NotFound(f"unknown manifest {name!r}", field="manifest")
        if not sep:
            return versions[-1]
        if not version_text.isdigit():
            raise InvalidArgument(f"manifest {text!r}: version after '@' must be a positive integer", field="manifest")
        for info in versions:
            if info.version == int(version_text):
                return info
        raise NotFound(f"manifest {name!r} has no version {version_text}", field="manifest")

    def group(self, name: str) -> GroupInfo:
        info = self.groups.get(name)
        if info is None:
            raise NotFound(f"unknown feature group {name!r}", field="group")
        return info

    def resolve(self, text: str) -> ResolvedFeature:
        """The feature version a reference serves; memoised, so the hot path pays this once per revision."""
        cached = self._resolved.get(text)
        if cached is not None:
            return cached
        ref = FeatureRef.parse(text)
        group = self.groups.get(ref.group)
        if group is None:
            raise NotFound(f"feature {text!r}: unknown feature group {ref.group!r}", field="features")
        versions = group.versions.get(ref.feature)
        if not versions:
            raise NotFound(f"feature {text!r}: group {ref.group!r} has no feature {ref.feature!r}", field="features")
        if ref.version is None:
            chosen = group.serving_version(ref.feature)
            if chosen is None:
                raise FailedPrecondition(f"feature {text!r} has no SERVING version; pin one with @N", field="features")
        else:
            chosen = next((v for v in versions if v.version == ref.version), None)
            if chosen is None:
                known = ", ".join(str(v.version) for v in versions)
                raise NotFound(f"feature {text!r}: no version {ref.version} (versions: {known})", field="features")
            if chosen.state == VersionState.RETIRED:
                raise FailedPrecondition(f"feature {text!r}: version {ref.version} is RETIRED", field="features")
        max_age = chosen.spec.max_age_seconds or group.spec.max_age_seconds
        resolved = ResolvedFeature(
            group=ref.group,
            group_id=group.group_id,
            feature=ref.feature,
            version=chosen.version,
            slot=chosen.slot,
            dtype=chosen.spec.dtype,
            vector_dim=chosen.spec.vector_dim,
            max_age_micros=max_age * 1_000_000,
            blocked=chosen.slot in self.blocked,
            group_stale=ref.group in self.stale_groups,
        )
        self._resolved[text] = resolved
        return resolved


class Registry:
    """The only writer of definitions and of which version serves. Thread-safe; readers take `snapshot()`."""

    def __init__(self, path: str, clock: Clock | None = None) -> None:
        self._storage = RegistryStorage(path)
        self._clock = clock or SystemClock()
        self._write_lock = threading.Lock()
        self._blocked: set[int] = set()
        self._stale_groups: dict[str, set[str]] = {}  # group -> sources that marked it stale
        self._published: set[int] = set()
        self._promotion_gates: list[PromotionGate] = []
        self.operations = Operations(self._storage, self._clock)
        self._snapshot = self._load()
        self._published = {v.slot for g in self._snapshot.groups.values() for vs in g.versions.values() for v in vs if v.first_published_micros}

    def snapshot(self) -> RegistrySnapshot:
        return self._snapshot

    def _load(self) -> RegistrySnapshot:
        versions: dict[str, dict[str, list[VersionInfo]]] = {}
        for row in self._storage.versions():
            spec = serialization.feature_from_dict(json.loads(row.spec_json))
            info = VersionInfo(
                row.slot, row.version, row.state, spec, row.behaviour_hash, row.created_micros,
                row.first_published_micros, row.retired_micros, row.purged_micros,
            )
            versions.setdefault(row.group_name, {}).setdefault(row.feature, []).append(info)
        groups = {}
        for row in self._storage.groups():
            per_feature = {name: tuple(infos) for name, infos in versions.get(row.name, {}).items()}
            groups[row.name] = GroupInfo(row.group_id, serialization.group_from_json(row.spec_json), per_feature)
        manifests: dict[str, list[ManifestInfo]] = {}
        for m in self._storage.manifests():
            pins = tuple(PinnedFeature(**p) for p in json.loads(m.features_json))
            manifests.setdefault(m.name, []).append(ManifestInfo(m.name, m.version, m.created_micros, m.created_by, m.description, pins))
        return RegistrySnapshot(
            self._storage.counter("revision"), groups, {k: tuple(v) for k, v in manifests.items()}, frozenset(self._blocked),
            frozenset(g for g, sources in self._stale_groups.items() if sources),
        )

    def history(self, group: str, feature: str | None = None) -> list[HistoryRow]:
        self._snapshot.group(group)
        return self._storage.history(group, feature)

    def plan(self, groups: list[GroupSpec], snapshot: RegistrySnapshot | None = None) -> list[Change]:
        """What `apply` would do, without changing anything (refusals raise exactly as apply would)."""
        return self._decide(groups, snapshot or self._snapshot)

    def apply(self, groups: list[GroupSpec], actor: str = "", reason: str = "", expected_revision: int | None = None) -> ApplyResult:
        """Apply all groups atomically (all or nothing) under the version rules."""
        with self._write_lock:
            current = self._snapshot
            if expected_revision is not None and expected_revision != current.revision:
                raise FailedPrecondition(
                    f"registry revision is {current.revision}, apply expected {expected_revision}: re-run plan", field="expected_revision"
                )
            changes = self._decide(groups, current)
            if all(c.action == "unchanged" for c in changes):
                return ApplyResult(current.revision, tuple(changes))
            now = self._clock.now_micros()
            by_name = {g.name: g for g in groups}
            with self._storage.transaction() as conn:
                revision = RegistryStorage.next_counter(conn, "revision")
                for change in changes:
                    spec = by_name[change.group]
                    if change.feature == "":
                        self._write_group(conn, spec, current, now, change)
                    else:
                        self._write_feature(conn, spec, change, now)
                    if change.action != "unchanged":
                        RegistryStorage.add_history(
                            conn, now, revision, change.group, change.feature, change.version, change.action, change.detail, actor, reason
                        )
            self._snapshot = self._load()
            logger.info("registry revision %d applied: %d changes", revision, sum(c.action != "unchanged" for c in changes))
            return ApplyResult(revision, tuple(changes))

    @staticmethod
    def _write_group(conn, spec: GroupSpec, current: RegistrySnapshot, now: int, change: Change) -> None:  # type: ignore[no-untyped-def]
        payload = serialization.group_to_json(spec)
        if spec.name in current.groups:
            conn.execute("UPDATE groups SET spec_json = ?, updated_micros = ? WHERE name = ?", (payload, now, spec.name))
        else:
            group_id = RegistryStorage.next_counter(conn, "group_id")
            conn.execute(
                "INSERT INTO groups (name, group_id, spec_json, created_micros, updated_micros) VALUES (?, ?, ?, ?, ?)",
                (spec.name, group_id, payload, now, now),
            )

    @staticmethod
    def _write_feature(conn, group: GroupSpec, change: Change, now: int) -> None:  # type: ignore[no-untyped-def]
        feature = group.feature(change.feature)
        assert feature is not None
        spec_json = json.dumps(serialization.feature_to_dict(feature), sort_keys=True)
        digest = versioning.behaviour_hash(feature, group.source)
        if change.action in ("create", "compatible_expansion", "new_version"):
            slot = RegistryStorage.next_counter(conn, "slot")
            state = VersionState.PENDING if change.action == "new_version" else VersionState.SERVING
            conn.execute(
                "INSERT INTO feature_versions (slot, group_name, feature, version, state, spec_json, behaviour_hash, created_micros) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (slot, group.name, feature.name, change.version, int(state), spec_json, digest, now),
            )
        elif change.action == "metadata_update":
            conn.execute(
                "UPDATE feature_versions SET spec_json = ? WHERE group_name = ? AND feature = ? AND version = ?",
                (spec_json, group.name, feature.name, change.version),
            )

    @staticmethod
    def _decide(groups: list[GroupSpec], current: RegistrySnapshot) -> list[Change]:
        """The version rules; refusals raise before anything is written."""
        names = [g.name for g in groups]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise InvalidArgument(f"group {sorted(duplicates)[0]!r} is declared more than once", field="groups")
        changes: list[Change] = []
        for spec in groups:
            validate_group(spec)
            if len(spec.features) > MAX_FEATURES_PER_GROUP:
                raise InvalidArgument(f"group {spec.name}: more than {MAX_FEATURES_PER_GROUP} features", field="features")
            existing = current.groups.get(spec.name)
            if existing is None:
                changes.append(Change(spec.name, "", "create", 0, f"new group with {len(spec.features)} features"))
                changes.extend(Change(spec.name, f.name, "create", 1, "new feature") for f in spec.features)
                continue
            old = existing.spec
            if old.entity_keys != spec.entity_keys:
                describe = lambda keys: ", ".join(f"{k.name}:{k.type.name.lower()}" for k in keys)  # noqa: E731
                raise FailedPrecondition(
                    f"group {spec.name}: entity keys cannot change in place ({describe(old.entity_keys)} -> {describe(spec.entity_keys)}); "
                    f"declare a new group (e.g. {spec.name}_v2) and move consumers to it; existing serving is untouched",
                    field="entity_keys",
                )
            removed = [f.name for f in old.features if spec.feature(f.name) is None]
            if removed:
                raise FailedPrecondition(
                    f"group {spec.name}: feature {removed[0]!r} was removed from the definition; features cannot be removed "
                    "in place: keep it declared (mark it deprecated in its description/tags) or declare a new group",
                    field="features",
                )
            group_meta = versioning.group_metadata_diff(old, spec)
            changes.append(Change(spec.name, "", "metadata_update" if group_meta else "unchanged", 0, ", ".join(group_meta)))
            for feature in spec.features:
                history = existing.versions.get(feature.name, ())
                if not history:
                    if not feature.nullable:
                        raise FailedPrecondition(
                            f"group {spec.name}: new feature {feature.name!r} is non-nullable; existing entities have no value for it. "
                            "Declare it nullable (a compatible expansion) or declare a new group",
                            field="features",
                        )
                    changes.append(Change(spec.name, feature.name, "compatible_expansion", 1, "new nullable feature"))
                    continue
                latest = history[-1]
                if versioning.behaviour_hash(feature, spec.source) != latest.behaviour_hash:
                    fields = versioning.behaviour_diff(latest.spec, old.source, feature, spec.source)
                    changes.append(
                        Change(spec.name, feature.name, "new_version", latest.version + 1, "changed: " + ", ".join(fields))
                    )
                    continue
                meta = versioning.metadata_diff(latest.spec, feature)
                if meta:
                    changes.append(Change(spec.name, feature.name, "metadata_update", latest.version, ", ".join(meta)))
                else:
                    changes.append(Change(spec.name, feature.name, "unchanged", latest.version))
        return changes

    # --- lifecycle -------------------------------------------------------------------------------------------

    def find_version(self, snapshot: RegistrySnapshot, group: str, feature: str, version: int) -> tuple[GroupInfo, VersionInfo]:
        """The group and the numbered version of one of its features; NotFound naming what is missing."""
        info = snapshot.group(group)
        versions = info.versions.get(feature)
        if not versions:
            raise NotFound(f"group {group!r} has no feature {feature!r}", field="feature")
        for v in versions:
            if v.version == version:
                return info, v
        raise NotFound(f"{group}:{feature} has no version {version}", field="version")

    def add_promotion_gate(self, gate: PromotionGate) -> None:
        """Checks a version must pass before it may serve (e.g. the consistency validator)."""
        self._promotion_gates.append(gate)

    def note_published(self, slots: Sequence[int]) -> None:
        """Called after values of these feature versions became durable online; records the first publish."""
        fresh = [s for s in slots if s not in self._published]
        if not fresh:
            return
        with self._write_lock:
            now = self._clock.now_micros()
            with self._storage.transaction() as conn:
                for slot in fresh:
                    conn.execute(
                        "UPDATE feature_versions SET first_published_micros = ? WHERE slot = ? AND first_published_micros IS NULL", (now, slot)
                    )
            self._published.update(fresh)
            self._snapshot = self._load()

    def promote(self, group: str, feature: str, version: int, actor: str = "", reason: str = "", force: bool = False) -> VersionInfo:
        """Make `version` the one SERVING version; the previous one becomes DEPRECATED. One atomic snapshot swap."""
        with self._write_lock:
            snapshot = self._snapshot
            info, target = self.find_version(snapshot, group, feature, version)
            if target.state == VersionState.SERVING:
                return target
            if target.state == VersionState.RETIRED:
                raise FailedPrecondition(f"{group}:{feature}@{version} is RETIRED and cannot serve again", field="version")
            if target.slot not in self._published:
                raise FailedPrecondition(
                    f"{group}:{feature}@{version} has no published values; publish (and validate) it before promoting", field="version"
                )
            gate_note = ""
            for gate in self._promotion_gates:
                try:
                    gate(info, target)
                except FailedPrecondition as exc:
                    if not force:
                        raise
                    gate_note = f"; gate overridden with --force: {exc.message}"
            now = self._clock.now_micros()
            with self._storage.transaction() as conn:
                revision = RegistryStorage.next_counter(conn, "revision")
                for v in info.versions[feature]:
                    if v.state == VersionState.SERVING:
                        conn.execute("UPDATE feature_versions SET state = ? WHERE slot = ?", (int(VersionState.DEPRECATED), v.slot))
                        RegistryStorage.add_history(conn, now, revision, group, feature, v.version, "deprecate", f"superseded by v{version}", actor, reason)
                conn.execute("UPDATE feature_versions SET state = ? WHERE slot = ?", (int(VersionState.SERVING), target.slot))
                RegistryStorage.add_history(
                    conn, now, revision, group, feature, version, "promote", f"{target.state.name} -> SERVING{gate_note}", actor, reason
                )
            self._snapshot = self._load()
            return self.find_version(self._snapshot, group, feature, version)[1]

    def manifests_pinning(self, group: str, feature: str, version: int) -> list[str]:
        return sorted(
            f"{m.name}@{m.version}"
            for versions in self._snapshot.manifests.values()
            for m in versions
            for p in m.features
            if (p.group, p.feature, p.version) == (group, feature, version)
        )

    def retire(self, group: str, feature: str, version: int, actor: str = "", reason: str = "", force: bool = False) -> VersionInfo:
        """RETIRED versions are refused to readers at once; their online values are purged after the retention."""
        with self._write_lock:
            info, target = self.find_version(self._snapshot, group, feature, version)
            if target.state == VersionState.RETIRED:
                return target
            if target.state == VersionState.SERVING:
                raise FailedPrecondition(
                    f"{group}:{feature}@{version} is SERVING; promote another version before retiring it", field="version"
                )
            pinned = self.manifests_pinning(group, feature, version)
            if pinned and not force:
                raise FailedPrecondition(
                    f"{group}:{feature}@{version} is pinned by manifest(s) {', '.join(pinned)}; retire with force to break them",
                    field="version",
                )
            now = self._clock.now_micros()
            with self._storage.transaction() as conn:
                revision = RegistryStorage.next_counter(conn, "revision")
                conn.execute(
                    "UPDATE feature_versions SET state = ?, retired_micros = ? WHERE slot = ?", (int(VersionState.RETIRED), now, target.slot)
                )
                detail = f"{target.state.name} -> RETIRED" + (f"; forced past manifests {', '.join(pinned)}" if pinned else "")
                RegistryStorage.add_history(conn, now, revision, group, feature, version, "retire", detail, actor, reason)
            self._snapshot = self._load()
            return self.find_version(self._snapshot, group, feature, version)[1]

    def retired_to_purge(self, retention_micros: int) -> list[tuple[int, int]]:
        """(group id, slot) of retired versions past retention whose online values are not yet purged."""
        now = self._clock.now_micros()
        return [
            (g.group_id, v.slot)
            for g in self._snapshot.groups.values()
            for vs in g.versions.values()
            for v in vs
            if v.state == VersionState.RETIRED and v.purged_micros is None and v.retired_micros is not None
            and now - v.retired_micros >= retention_micros
        ]

    def note_purged(self, slot: int) -> None:
        with self._write_lock:
            now = self._clock.now_micros()
            with self._storage.transaction() as conn:
                conn.execute("UPDATE feature_versions SET purged_micros = ? WHERE slot = ?", (now, slot))
                row = conn.execute("SELECT group_name, feature, version FROM feature_versions WHERE slot = ?", (slot,)).fetchone()
                RegistryStorage.add_history(conn, now, self._snapshot.revision, row[0], row[1], row[2], "purge", "online values removed", "fsd", "")
            self._snapshot = self._load()

    def set_blocked(self, slot: int, blocked: bool) -> None:
        """Serving of a feature version is blocked (BLOCKED statuses) or unblocked; takes effect with the next snapshot."""
        with self._write_lock:
            if blocked:
                self._blocked.add(slot)
            else:
                self._blocked.discard(slot)
            self._snapshot = self._load()

    def record_offline_write(self, group: str, feature: str, version: int, kind: str, detail: str, actor: str) -> int:
        """History entry for an offline write; the scope (time range, rows, snapshot) is in detail."""
        if kind not in ("ingest", "backfill", "correction"):
            raise InvalidArgument(f"offline write kind {kind!r} must be ingest, backfill or correction", field="kind")
        with self._write_lock:
            self.find_version(self._snapshot, group, feature, version)
            now = self._clock.now_micros()
            with self._storage.transaction() as conn:
                revision = RegistryStorage.next_counter(conn, "revision")
                RegistryStorage.add_history(conn, now, revision, group, feature, version, f"offline_{kind}", detail, actor, "")
            self._snapshot = self._load()
            return revision

    def set_group_stale(self, group: str, stale: bool, source: str = "freshness") -> bool:
        """Mark or clear one source's breach flag on a group (stale while any source says so); returns whether
        that source's flag changed, so callers log transitions rather than every check."""
        with self._write_lock:
            self._snapshot.group(group)
            sources = self._stale_groups.setdefault(group, set())
            if (source in sources) == stale:
                return False
            if stale:
                sources.add(source)
            else:
                sources.discard(source)
            self._snapshot = self._load()
            return True

    def blocked_slots(self) -> frozenset[int]:
        return self._snapshot.blocked

    # --- manifests ---------------------------------------------------------------------------------------------

    def create_manifest(self, name: str, refs: Sequence[str], actor: str = "", description: str = "") -> ManifestInfo:
        """Pin each ref (unpinned refs take the version SERVING now) under the next version of `name`."""
        from fsd.domain import FeatureRef, is_valid_name

        if not is_valid_name(name):
            raise InvalidArgument(f"manifest name {name!r} must be lower-case letters, digits and '_'", field="name")
        if not refs:
            raise InvalidArgument("a manifest needs at least one feature", field="features")
        with self._write_lock:
            snapshot = self._snapshot
            pins: list[PinnedFeature] = []
            seen: set[tuple[str, str]] = set()
            for text in refs:
                ref = FeatureRef.parse(text)
                resolved = snapshot.resolve(text)  # refuses unknown and RETIRED versions
                if (ref.group, ref.feature) in seen:
                    raise InvalidArgument(f"manifest {name}: {ref.group}:{ref.feature} is listed twice", field="features")
                seen.add((ref.group, ref.feature))
                _, info = self.find_version(snapshot, ref.group, ref.feature, resolved.version)
                pins.append(PinnedFeature(ref.group, ref.feature, resolved.version, info.behaviour_hash))
            version = len(snapshot.manifests.get(name, ())) + 1
            now = self._clock.now_micros()
            payload = json.dumps([{"group": p.group, "feature": p.feature, "version": p.version, "behaviour_hash": p.behaviour_hash} for p in pins])
            with self._storage.transaction() as conn:
                revision = RegistryStorage.next_counter(conn, "revision")
                conn.execute(
                    "INSERT INTO manifests (name, version, created_micros, created_by, description, features_json) VALUES (?, ?, ?, ?, ?, ?)",
                    (name, version, now, actor, description, payload),
                )
                for p in pins:
                    RegistryStorage.add_history(conn, now, revision, p.group, p.feature, p.version, "pinned", f"manifest {name}@{version}", actor, description)
            self._snapshot = self._load()
            return self._snapshot.manifest(f"{name}@{version}")

    def close(self) -> None:
        self._storage.close()
