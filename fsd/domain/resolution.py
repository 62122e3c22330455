"""What a feature reference means: the one function that picks a version for `group:feature` (the SERVING
version), `group:feature@N` (version N) or a manifest's pin. Serving, publishing, training and the registry
all call it, so a reference cannot mean one version to a reader and another to a writer."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from fsd.domain.records import GroupInfo, ManifestInfo, VersionInfo
from fsd.domain.types import FeatureRef, VersionState
from fsd.errors import FailedPrecondition, InvalidArgument, NotFound, echo

# Which states a use may name explicitly with @N (an unpinned reference always means SERVING).
READABLE = frozenset({VersionState.PENDING, VersionState.SERVING, VersionState.DEPRECATED})
WRITABLE = frozenset({VersionState.PENDING, VersionState.SERVING})
ANY_STATE = frozenset(VersionState)


def resolve_version(
    group: GroupInfo, feature: str, version: int | None, *, allowed: frozenset[VersionState] = READABLE, field: str = "features"
) -> VersionInfo:
    """The version `feature` (unpinned: SERVING) or `feature@version` means in `group`; NotFound for an unknown
    feature or version, FailedPrecondition when the version exists but its state forbids this use."""
    name = group.spec.name
    versions = group.versions.get(feature)
    if not versions:
        raise NotFound(f"group {echo(name)} has no feature {echo(feature)}", field=field)
    if version is None:
        serving = group.serving_version(feature)
        if serving is None:
            raise FailedPrecondition(f"feature {name}:{feature} has no SERVING version; pin one with @N", field=field)
        return serving
    chosen = next((v for v in versions if v.version == version), None)
    if chosen is None:
        known = ", ".join(str(v.version) for v in versions)
        raise NotFound(f"feature {name}:{feature} has no version {version} (versions: {known})", field=field)
    if chosen.state not in allowed:
        if chosen.state == VersionState.RETIRED:
            raise FailedPrecondition(f"feature {name}:{feature}@{version} is RETIRED", field=field)
        states = " and ".join(sorted(s.name for s in allowed))
        raise FailedPrecondition(f"feature {name}:{feature}@{version} is {chosen.state.name}; only {states} versions take this", field=field)
    return chosen


def resolve_ref(groups: Mapping[str, GroupInfo], text: str, *, allowed: frozenset[VersionState] = READABLE) -> tuple[GroupInfo, VersionInfo]:
    """A textual reference `group:feature[@N]` -> (group, version)."""
    ref = FeatureRef.parse(text)
    group = groups.get(ref.group)
    if group is None:
        raise NotFound(f"feature {echo(text)}: unknown feature group {echo(ref.group)}", field="features")
    try:
        return group, resolve_version(group, ref.feature, ref.version, allowed=allowed)
    except NotFound as exc:
        raise NotFound(f"feature {echo(text)}: {exc.message}", field="features") from None
    except FailedPrecondition as exc:
        raise FailedPrecondition(f"feature {echo(text)}: {exc.message}", field="features") from None


def find_manifest(manifests: Mapping[str, Sequence[ManifestInfo]], text: str) -> ManifestInfo:
    """`name` (latest version) or `name@N`."""
    name, sep, version_text = text.partition("@")
    versions = manifests.get(name)
    if not versions:
        raise NotFound(f"unknown manifest {echo(name)}", field="manifest")
    if not sep:
        return versions[-1]
    if not version_text.isdigit():
        raise InvalidArgument(f"manifest {echo(text)}: version after '@' must be a positive integer", field="manifest")
    for info in versions:
        if info.version == int(version_text):
            return info
    raise NotFound(f"manifest {echo(name)} has no version {echo(version_text)}", field="manifest")


def column_name(taken: Sequence[str] | set[str], group: str, feature: str, version: int) -> str:
    """The one column name of a feature version, in training sets and served results alike: "group:feature", or
    "group:feature@N" only when that name is already taken (two versions of one feature side by side). The
    version itself travels beside the value (include=version, the wire's `version`), never in the name."""
    name = f"{group}:{feature}"
    return name if name not in taken else f"{name}@{version}"


def manifest_refs(manifest: ManifestInfo, refs: Sequence[str]) -> tuple[list[str], list[str]]:
    """(refs as the caller wrote them, the same refs pinned to the manifest's versions): a manifest never serves
    another version. No refs: every feature the manifest pins."""
    pins = {(p.group, p.feature): p for p in manifest.features}
    if not refs:
        return [p.ref for p in manifest.features], [p.ref for p in manifest.features]
    pinned = []
    for text in refs:
        ref = FeatureRef.parse(text)
        pin = pins.get((ref.group, ref.feature))
        if pin is None:
            raise InvalidArgument(f"features: {echo(text)} is not in manifest {manifest.ref}", field="features")
        if ref.version is not None and ref.version != pin.version:
            raise FailedPrecondition(f"features: {echo(text)} asks for version {ref.version}, manifest {manifest.ref} pins {pin.version}", field="features")
        pinned.append(pin.ref)
    return list(refs), pinned
