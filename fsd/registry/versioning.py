"""Version rules as pure functions: which fields alter model behaviour, their canonical hash, and diffs.

Behaviour-relevant (a change makes a new version): dtype, nullability, vector dimension, transformation,
aggregation window, source dependencies, semantic meaning, NaN policy, and the group's source.
Metadata (updated in place): description, owner, tags, max age.
"""
from __future__ import annotations

import hashlib
import json

from fsd.domain import FeatureSpec, GroupSpec

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
GROUP_METADATA_FIELDS = ("owner", "description", "tags", "max_age_seconds", "sync_interval_seconds", "policy")


def behaviour_of(feature: FeatureSpec, group_source: str) -> dict[str, object]:
    values: dict[str, object] = {name: getattr(feature, name) for name in BEHAVIOUR_FIELDS}
    values["dtype"] = int(feature.dtype)
    values["source_dependencies"] = sorted(feature.source_dependencies)
    values["group_source"] = group_source
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
