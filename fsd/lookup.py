"""The read path: resolve refs against a registry snapshot, encode keys, one batched read, decode, freshness."""
from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fsd import codec
from fsd.codec import _columns_py
from fsd.domain import Clock, FeatureRef, KeyType, ResolvedFeature
from fsd.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from fsd.online.base import OnlineStore
from fsd.registry.registry import RegistrySnapshot


@dataclass(frozen=True, slots=True)
class LookupLimits:
    max_entities: int = 10_000
    max_features: int = 1_000
    max_values: int = 1_000_000  # entities × features


@dataclass(frozen=True, slots=True)
class EntityColumn:
    name: str
    type: KeyType
    values: object  # np.ndarray[int64] or list[str]

    def __len__(self) -> int:
        return len(self.values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class FeatureResult:
    ref: str
    feature: ResolvedFeature
    values: object  # ndarray for fixed types and vectors (2-D), list for string/bytes
    is_null: np.ndarray
    statuses: np.ndarray  # uint8, ValueStatus values
    event_times: np.ndarray  # int64 µs


@dataclass(frozen=True, slots=True)
class LookupResult:
    entity_count: int
    features: list[FeatureResult]
    served_at_micros: int
    manifest: str = ""  # "name@N" when the request named a manifest


def _manifest_refs(snapshot: RegistrySnapshot, manifest: str, refs: Sequence[str]) -> tuple[list[str], list[str], str]:
    """(refs as reported, refs pinned to the manifest's versions, "name@N"): a manifest never serves another version."""
    info = snapshot.manifest(manifest)
    pins = {(p.group, p.feature): p for p in info.features}
    if not refs:
        return [p.ref for p in info.features], [p.ref for p in info.features], f"{info.name}@{info.version}"
    pinned = []
    for text in refs:
        ref = FeatureRef.parse(text)
        pin = pins.get((ref.group, ref.feature))
        if pin is None:
            raise InvalidArgument(f"features: {text!r} is not in manifest {info.name}@{info.version}", field="features")
        if ref.version is not None and ref.version != pin.version:
            raise FailedPrecondition(
                f"features: {text!r} asks for version {ref.version}, manifest {info.name}@{info.version} pins {pin.version}", field="features"
            )
        pinned.append(pin.ref)
    return list(refs), pinned, f"{info.name}@{info.version}"


def _check_entities(entities: Sequence[EntityColumn], limits: LookupLimits) -> tuple[dict[str, EntityColumn], int]:
    if not entities:
        raise InvalidArgument("entities: at least one entity-key column is required", field="entities")
    by_name: dict[str, EntityColumn] = {}
    for column in entities:
        if not column.name:
            raise InvalidArgument("entities: an entity column has no name", field="entities")
        if column.name in by_name:
            raise InvalidArgument(f"entities: column {column.name!r} appears more than once", field=f"entities.{column.name}")
        by_name[column.name] = column
    counts = {len(c) for c in entities}
    if len(counts) != 1:
        raise InvalidArgument(
            "entities: columns differ in length (" + ", ".join(f"{c.name}={len(c)}" for c in entities) + ")", field="entities"
        )
    count = counts.pop()
    for column in entities:
        if column.type == KeyType.STRING:
            bad = next((v for v in column.values if not unicodedata.is_normalized("NFC", v)), None)  # type: ignore[attr-defined]
            if bad is not None:
                raise InvalidArgument(f"entities: {column.name} key {bad!r} is not in Unicode NFC form", field=f"entities.{column.name}")
    if count == 0:
        raise InvalidArgument("entities: no entity rows given", field="entities")
    if count > limits.max_entities:
        raise ResourceExhausted(f"entities: {count} rows exceed the limit of {limits.max_entities} per request", field="entities")
    return by_name, count


@dataclass(frozen=True, slots=True)
class _Fetched:
    """Rows read for a request, before decoding: one row slice per group."""

    count: int
    refs: list[str]
    resolved: list[ResolvedFeature]
    rows: dict[str, list[bytes | None]]
    now: int
    manifest: str


def _fetch(
    store: OnlineStore, snapshot: RegistrySnapshot, entities: Sequence[EntityColumn], refs: Sequence[str], clock: Clock,
    limits: LookupLimits, manifest: str,
) -> _Fetched:
    by_name, count = _check_entities(entities, limits)
    resolve_refs: Sequence[str] = refs
    served_manifest = ""
    if manifest:
        refs, resolve_refs, served_manifest = _manifest_refs(snapshot, manifest, refs)
    if not refs:
        raise InvalidArgument("features: at least one feature reference is required", field="features")
    if len(refs) > limits.max_features:
        raise ResourceExhausted(f"features: {len(refs)} references exceed the limit of {limits.max_features}", field="features")
    if count * len(refs) > limits.max_values:
        raise ResourceExhausted(
            f"request asks for {count * len(refs)} values, over the limit of {limits.max_values}; split it", field="entities"
        )
    resolved = [snapshot.resolve(ref) for ref in resolve_refs]

    # One row key per (group, entity): a single batched read serves every feature of every group.
    group_order = list(dict.fromkeys(f.group for f in resolved))
    keys: list[bytes] = []
    starts: dict[str, int] = {}
    for group_name in group_order:
        group = snapshot.group(group_name)
        columns = []
        is_string = []
        for key in group.spec.entity_keys:
            column = by_name.get(key.name)
            if column is None:
                raise InvalidArgument(
                    f"entities: group {group_name} needs entity key column {key.name!r}", field=f"entities.{key.name}"
                )
            if column.type != key.type:
                raise InvalidArgument(
                    f"entities: column {key.name!r} is {column.type.name.lower()}, group {group_name} keys it by {key.type.name.lower()}",
                    field=f"entities.{key.name}",
                )
            columns.append(column.values)
            is_string.append(key.type == KeyType.STRING)
        try:
            encoded = codec.encode_entities(columns, is_string)
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(f"entities: {exc}", field="entities") from None
        starts[group_name] = len(keys)
        keys.extend(codec.entity_keys(group.group_id, encoded))
    raw = store.get_many(keys)
    rows = {g: raw[start : start + count] for g, start in starts.items()} if len(starts) > 1 else {group_order[0]: raw}
    return _Fetched(count, list(refs), resolved, rows, clock.now_micros(), served_manifest)


def _spec(feature: ResolvedFeature, head: bytes) -> tuple[bytes, int, int, int, int, int]:
    mode = 1 if feature.blocked else (2 if feature.group_stale else 0)
    return (head, feature.slot, int(feature.dtype), feature.vector_dim, feature.max_age_micros, mode)


def lookup(
    store: OnlineStore,
    snapshot: RegistrySnapshot,
    entities: Sequence[EntityColumn],
    refs: Sequence[str],
    clock: Clock,
    limits: LookupLimits,
    manifest: str = "",
) -> LookupResult:
    """Serve the requested feature versions for all entity rows; never raises for a missing value (NOT_FOUND)."""
    fetched = _fetch(store, snapshot, entities, refs, clock, limits, manifest)
    results = []
    for ref, feature in zip(fetched.refs, fetched.resolved):
        values, is_null, statuses, event_times = _columns_py.decoded_column(
            fetched.rows[feature.group], _spec(feature, b""), fetched.now, codec.decode_feature, codec.freshness_status
        )
        results.append(FeatureResult(ref, feature, values, is_null, statuses, event_times))
    return LookupResult(fetched.count, results, fetched.now, fetched.manifest)


def lookup_encoded(
    store: OnlineStore,
    snapshot: RegistrySnapshot,
    entities: Sequence[EntityColumn],
    refs: Sequence[str],
    clock: Clock,
    limits: LookupLimits,
    heads: Callable[[str, ResolvedFeature], bytes],
    manifest: str = "",
) -> tuple[int, list[bytes], int, str]:
    """Like lookup, but each column comes back already serialised (fsd.v1.FeatureColumn bytes) from one fused
    native pass per group: (entity count, columns in request order, served-at, manifest)."""
    fetched = _fetch(store, snapshot, entities, refs, clock, limits, manifest)
    by_group: dict[str, list[int]] = {}
    for index, feature in enumerate(fetched.resolved):
        by_group.setdefault(feature.group, []).append(index)
    columns: list[bytes] = [b""] * len(fetched.resolved)
    for group, indices in by_group.items():
        specs = [_spec(fetched.resolved[i], heads(fetched.refs[i], fetched.resolved[i])) for i in indices]
        for i, column in zip(indices, codec.encode_feature_columns(fetched.rows[group], specs, fetched.now)):
            columns[i] = column
    return fetched.count, columns, fetched.now, fetched.manifest
