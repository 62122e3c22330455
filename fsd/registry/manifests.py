"""Manifests: the versions a model was trained on, pinned under a name so serving can never drift from them."""
from __future__ import annotations

from collections.abc import Sequence

from fsd.domain import FeatureRef, ManifestInfo, PinnedFeature, RegistrySnapshot, is_valid_name, resolve_ref
from fsd.errors import InvalidArgument


def new_manifest(snapshot: RegistrySnapshot, name: str, refs: Sequence[str], at_micros: int, actor: str, description: str) -> ManifestInfo:
    """The next version of manifest `name`, pinning each ref (an unpinned ref takes the version SERVING now)."""
    if not is_valid_name(name):
        raise InvalidArgument(f"manifest name {name[:80]!r} must be lower-case letters, digits and '_'", field="name")
    if not refs:
        raise InvalidArgument("a manifest needs at least one feature", field="features")
    pins: list[PinnedFeature] = []
    seen: set[tuple[str, str]] = set()
    for text in refs:
        ref = FeatureRef.parse(text)
        _, chosen = resolve_ref(snapshot.groups, text)  # refuses unknown and RETIRED versions
        if (ref.group, ref.feature) in seen:
            raise InvalidArgument(f"manifest {name}: {ref.group}:{ref.feature} is listed twice", field="features")
        seen.add((ref.group, ref.feature))
        pins.append(PinnedFeature(ref.group, ref.feature, chosen.version, chosen.behaviour_hash))
    version = len(snapshot.manifests.get(name, ())) + 1
    return ManifestInfo(name, version, at_micros, actor, description, tuple(pins))
