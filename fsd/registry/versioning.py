"""Version rules as pure functions: which fields alter model behaviour, their canonical hash, and diffs.

Behaviour-relevant (a change makes a new version): dtype, nullability, vector dimension, transformation,
aggregation window, source dependencies, semantic meaning, NaN policy, and the group's source.
Metadata (updated in place): description, owner, tags, max age.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence

from fsd.domain import Change, FeatureSpec, GroupInfo, GroupSpec, VersionState
from fsd.errors import FailedPrecondition, InvalidArgument, ResourceExhausted, echo
from fsd.registry.definitions import validate_group
from fsd.registry.store import VersionWrite
from fsd.rows import rules

MAX_FEATURES_PER_GROUP = 1024

BEHAVIOUR_FIELDS = (
    "dtype",
    "nullable",
    "vector_dim",
    "transformation",
    "window_seconds",
    "source_dependencies",
    "meaning",
    "allow_nan",
)
METADATA_FIELDS = ("description", "owner", "tags", "max_age_seconds")
GROUP_METADATA_FIELDS = ("owner", "description", "tags", "max_age_seconds", "sync_interval_seconds", "policy", "timestamp_field",
                         "sync_adaptive", "sync_min_seconds", "sync_max_seconds")


def behaviour_of(feature: FeatureSpec, group_source: str) -> dict[str, object]:
    values: dict[str, object] = {name: getattr(feature, name) for name in BEHAVIOUR_FIELDS}
    values["dtype"] = int(feature.dtype)
    values["source_dependencies"] = sorted(feature.source_dependencies)
    values["group_source"] = group_source
    if feature.aggregation is not None:  # only when declared: the hashes of precomputed features stay as they were
        a = feature.aggregation
        values["aggregation"] = {"function": a.function, "column": a.column, "window_seconds": a.window_seconds, "filter": a.filter}
    return values


def behaviour_hash(feature: FeatureSpec, group_source: str) -> str:
    """Canonical hash of what the feature computes: equal hashes mean a model sees the same semantics."""
    canonical = json.dumps(behaviour_of(feature, group_source), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def behaviour_diff(old: FeatureSpec, old_source: str, new: FeatureSpec, new_source: str) -> list[str]:
    """Names of behaviour-relevant fields that differ (group_source included)."""
    a, b = behaviour_of(old, old_source), behaviour_of(new, new_source)
    return [name for name in sorted(a) if a[name] != b[name]]


def metadata_diff(old: FeatureSpec, new: FeatureSpec) -> list[str]:
    return [name for name in METADATA_FIELDS if getattr(old, name) != getattr(new, name)]


def group_metadata_diff(old: GroupSpec, new: GroupSpec) -> list[str]:
    return [name for name in GROUP_METADATA_FIELDS if getattr(old, name) != getattr(new, name)]


def _keys_text(keys: Sequence[object]) -> str:
    return ", ".join(f"{k.name}:{k.type.name.lower()}" for k in keys)  # type: ignore[attr-defined]


def plan_changes(groups: Sequence[GroupSpec], current: Mapping[str, GroupInfo], deadline: Callable[[], None] | None = None) -> list[Change]:
    """The version rules applied to a whole repo: one Change per group and feature. Refusals raise before
    anything is written, so a plan that returns can be applied as is. Linear in the number of features;
    `deadline` (raises when the caller is gone) is checked per group."""
    seen: set[str] = set()
    for spec in groups:
        if spec.name in seen:
            raise InvalidArgument(f"group {echo(spec.name, 80)} is declared more than once", field="groups")
        seen.add(spec.name)
    changes: list[Change] = []
    for spec in groups:
        if deadline is not None:
            deadline()
        if len(spec.features) > MAX_FEATURES_PER_GROUP:
            raise ResourceExhausted(f"group {echo(spec.name, 80)}: {len(spec.features)} features, over the limit of {MAX_FEATURES_PER_GROUP}",
                                    field="features")
        validate_group(spec)
        existing = current.get(spec.name)
        if existing is None:
            changes.append(Change(spec.name, "", "create", 0, f"new group with {len(spec.features)} features"))
            changes.extend(Change(spec.name, f.name, "create", 1, "new feature") for f in spec.features)
            continue
        changes.extend(_group_changes(existing, spec))
    return changes


def _group_changes(existing: GroupInfo, spec: GroupSpec) -> list[Change]:
    old = existing.spec
    if old.entity_keys != spec.entity_keys:
        raise FailedPrecondition(
            f"group {spec.name}: entity keys cannot change in place ({_keys_text(old.entity_keys)} -> {_keys_text(spec.entity_keys)}); "
            f"declare a new group (e.g. {spec.name}_v2) and move consumers to it; existing serving is untouched",
            field="entity_keys",
        )
    declared = {f.name for f in spec.features}
    removed = [f.name for f in old.features if f.name not in declared]
    if removed:
        raise FailedPrecondition(
            f"group {spec.name}: feature {removed[0]!r} was removed from the definition; features cannot be removed "
            "in place: keep it declared (mark it deprecated in its description/tags) or declare a new group",
            field="features",
        )
    group_meta = group_metadata_diff(old, spec)
    changes = [Change(spec.name, "", "metadata_update" if group_meta else "unchanged", 0, ", ".join(group_meta))]
    for feature in spec.features:
        history = existing.versions.get(feature.name, ())
        if not history:
            rules.schema_expansion(spec.name, feature.name, feature.nullable)
            changes.append(Change(spec.name, feature.name, "compatible_expansion", 1, "new nullable feature"))
            continue
        latest = history[-1]
        if behaviour_hash(feature, spec.source) != latest.behaviour_hash:
            fields = behaviour_diff(latest.spec, old.source, feature, spec.source)
            changes.append(Change(spec.name, feature.name, "new_version", latest.version + 1, "changed: " + ", ".join(fields)))
            continue
        meta = metadata_diff(latest.spec, feature)
        changes.append(Change(spec.name, feature.name, "metadata_update" if meta else "unchanged", latest.version, ", ".join(meta)))
    return changes


def version_writes(groups: Sequence[GroupSpec], changes: Sequence[Change]) -> list[VersionWrite]:
    """The feature-version rows a plan creates or updates: a new version of an existing feature starts PENDING
    (the current one keeps serving); a first version serves at once."""
    by_name = {g.name: g for g in groups}
    writes = []
    for change in changes:
        if not change.feature or change.action == "unchanged":
            continue
        group = by_name[change.group]
        feature = group.feature(change.feature)
        assert feature is not None
        new = change.action in ("create", "compatible_expansion", "new_version")
        state = VersionState.PENDING if change.action == "new_version" else VersionState.SERVING
        writes.append(VersionWrite(group.name, feature, change.version, state, behaviour_hash(feature, group.source), new=new))
    return writes
