"""The read path: resolve refs against a registry snapshot, encode keys, one batched read, decode, freshness."""
from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fsd import codec
from fsd.codec import _columns_py
from fsd.domain import Clock, FeatureRef, KeyType, ResolvedFeature
from fsd.errors import FailedPrecondition, FsdError, InvalidArgument, ResourceExhausted
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
class _Plan:
    """What a request shape (refs, manifest) resolves to under one registry snapshot; memoised on the snapshot,
    so repeated requests of a model skip resolution, and a registry change (a new snapshot) drops every plan."""

    refs: list[str]
    resolved: list[ResolvedFeature]
    manifest: str
    groups: list[tuple[str, int, list[tuple[str, KeyType]], list[int]]]  # name, group id, key columns, feature indices
    specs: dict[int, list[list[tuple[bytes, int, int, int, int, int]]]]  # id(head encoder) -> specs per group, in group order
    int64_key: str = ""  # the key column's name when one group keyed by one int64 column serves it all (fast path)


_MAX_PLANS = 4096


def _plan(snapshot: RegistrySnapshot, refs: Sequence[str], manifest: str) -> _Plan:
    key = (tuple(refs), manifest)
    plan = snapshot.plans.get(key)
    if isinstance(plan, _Plan):
        return plan
    resolve_refs: Sequence[str] = refs
    served_manifest = ""
    if manifest:
        refs, resolve_refs, served_manifest = _manifest_refs(snapshot, manifest, refs)
    resolved = [snapshot.resolve(ref) for ref in resolve_refs]
    indices: dict[str, list[int]] = {}
    for index, feature in enumerate(resolved):
        indices.setdefault(feature.group, []).append(index)
    groups = []
    for name, members in indices.items():
        info = snapshot.group(name)
        groups.append((name, info.group_id, [(k.name, k.type) for k in info.spec.entity_keys], members))
    int64_key = groups[0][2][0][0] if len(groups) == 1 and len(groups[0][2]) == 1 and groups[0][2][0][1] == KeyType.INT64 else ""
    plan = _Plan(list(refs), resolved, served_manifest, groups, {}, int64_key)
    if len(snapshot.plans) >= _MAX_PLANS:
        snapshot.plans.clear()
    snapshot.plans[key] = plan
    return plan


def _specs(plan: _Plan, heads: Callable[[str, ResolvedFeature], bytes]) -> list[list[tuple[bytes, int, int, int, int, int]]]:
    owner = id(getattr(heads, "__self__", heads))  # a bound method is a new object per access; its encoder is not
    specs = plan.specs.get(owner)
    if specs is None:
        specs = [[_spec(plan.resolved[i], heads(plan.refs[i], plan.resolved[i])) for i in members] for *_, members in plan.groups]
        plan.specs[owner] = specs
    return specs


@dataclass(frozen=True, slots=True)
class FetchedRows:
    """Rows read for a request, before decoding: one row slice per group. decode_rows turns them into arrays
    later, off the request path (the served-values sample for skew checks)."""

    count: int
    plan: _Plan
    rows: dict[str, list[bytes | None]]
    now: int


def _row_keys(group_name: str, group_id: int, key_columns: list[tuple[str, KeyType]], by_name: dict[str, EntityColumn]) -> list[bytes]:
    """The row key of each entity of one group, from the request's columns named by the group's entity keys."""
    columns = []
    for key_name, key_type in key_columns:
        column = by_name.get(key_name)
        if column is None:
            raise InvalidArgument(f"entities: group {group_name} needs entity key column {key_name!r}", field=f"entities.{key_name}")
        if column.type != key_type:
            raise InvalidArgument(
                f"entities: column {key_name!r} is {column.type.name.lower()}, group {group_name} keys it by {key_type.name.lower()}",
                field=f"entities.{key_name}",
            )
        columns.append(column.values)
    try:
        encoded = codec.encode_entities(columns, [key_type == KeyType.STRING for _, key_type in key_columns])
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(f"entities: {exc}", field="entities") from None
    return codec.entity_keys(group_id, encoded)


def _fetch(
    store: OnlineStore, snapshot: RegistrySnapshot, entities: Sequence[EntityColumn], refs: Sequence[str], clock: Clock,
    limits: LookupLimits, manifest: str,
) -> FetchedRows:
    by_name, count = _check_entities(entities, limits)
    if not refs and not manifest:
        raise InvalidArgument("features: at least one feature reference is required", field="features")
    if len(refs) > limits.max_features:
        raise ResourceExhausted(f"features: {len(refs)} references exceed the limit of {limits.max_features}", field="features")
    plan = _plan(snapshot, refs, manifest)
    if count * len(plan.refs) > limits.max_values:
        raise ResourceExhausted(
            f"request asks for {count * len(plan.refs)} values, over the limit of {limits.max_values}; split it", field="entities"
        )
    # One row key per (group, entity): a single batched read serves every feature of every group.
    keys: list[bytes] = []
    starts: list[int] = []
    for group_name, group_id, key_columns, _ in plan.groups:
        starts.append(len(keys))
        keys.extend(_row_keys(group_name, group_id, key_columns, by_name))
    raw = store.get_many(keys)
    if len(plan.groups) == 1:
        rows = {plan.groups[0][0]: raw}
    else:
        rows = {g[0]: raw[start : start + count] for g, start in zip(plan.groups, starts)}
    return FetchedRows(count, plan, rows, clock.now_micros())


def _spec(feature: ResolvedFeature, head: bytes) -> tuple[bytes, int, int, int, int, int]:
    mode = _columns_py.MODE_BLOCKED if feature.blocked else (_columns_py.MODE_GROUP_STALE if feature.group_stale else _columns_py.MODE_NORMAL)
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
    return decode_rows(_fetch(store, snapshot, entities, refs, clock, limits, manifest))


def decode_rows(fetched: FetchedRows) -> LookupResult:
    """The fetched rows as arrays per requested feature version."""
    results = []
    for ref, feature in zip(fetched.plan.refs, fetched.plan.resolved):
        values, is_null, statuses, event_times = _columns_py.decoded_column(
            fetched.rows[feature.group], _spec(feature, b""), fetched.now, codec.decode_feature, codec.freshness_status
        )
        results.append(FeatureResult(ref, feature, values, is_null, statuses, event_times))
    return LookupResult(fetched.count, results, fetched.now, fetched.plan.manifest)


def lookup_encoded(
    store: OnlineStore,
    snapshot: RegistrySnapshot,
    entities: Sequence[EntityColumn],
    refs: Sequence[str],
    clock: Clock,
    limits: LookupLimits,
    heads: Callable[[str, ResolvedFeature], bytes],
    manifest: str = "",
    keep: Callable[[FetchedRows], None] | None = None,
) -> tuple[int, list[bytes], int, str]:
    """Like lookup, but each column comes back already serialised (fsd.v1.FeatureColumn bytes) from one fused
    native pass per group: (entity count, columns in request order, served-at, manifest). keep, if given,
    receives the fetched rows (for sampling)."""
    fetched = _fetch(store, snapshot, entities, refs, clock, limits, manifest)
    if keep is not None:
        keep(fetched)
    plan = fetched.plan
    specs = _specs(plan, heads)
    if len(plan.groups) == 1:
        columns = codec.encode_feature_columns(fetched.rows[plan.groups[0][0]], specs[0], fetched.now)
    else:
        columns = [b""] * len(plan.resolved)
        for (group, _, _, members), group_specs in zip(plan.groups, specs):
            for i, column in zip(members, codec.encode_feature_columns(fetched.rows[group], group_specs, fetched.now)):
                columns[i] = column
    return fetched.count, columns, fetched.now, plan.manifest


SplitRequest = tuple[bytes, str, list[tuple[str, "bytes | list[str]"]]]  # codec.split_get_request's answer


def lookup_fast(
    store: OnlineStore,
    snapshot: RegistrySnapshot,
    split: SplitRequest,
    clock: Clock,
    limits: LookupLimits,
    heads: Callable[[str, ResolvedFeature], bytes],
    refs_of: Callable[[bytes], list[str] | None],
    keep: Callable[[FetchedRows], None] | None = None,
) -> tuple[int, list[bytes], int, str] | None:
    """lookup_encoded for requests whose features all come from one group, from codec.split_get_request's parts.
    The plan is memoised under the refs' raw bytes, so a repeated request shape costs one dict lookup, and keys
    come straight from the packed ids (or strings). None whenever the general path must decide (several
    groups, limits, unknown refs, malformed columns): that path raises the errors, so they stay in one place."""
    features_key, manifest, columns = split
    cached = snapshot.plans.get((features_key, manifest))
    if cached is None:
        refs = refs_of(features_key)
        if refs is None or not (refs or manifest):
            return None
        try:
            cached = (_plan(snapshot, refs, manifest), len(refs))
        except FsdError:
            return None
        snapshot.plans[(features_key, manifest)] = cached
    plan, requested = cached
    if len(plan.groups) != 1 or requested > limits.max_features:
        return None
    group, group_id, key_columns, _ = plan.groups[0]
    if plan.int64_key and len(columns) == 1:  # the commonest request: skip the general column checks
        name, ids = columns[0]
        count = len(ids) >> 3
        if name != plan.int64_key or not isinstance(ids, bytes) or not 0 < count <= limits.max_entities:
            return None
        keys = codec.int64_row_keys(group_id, ids)
    else:
        entities = [
            EntityColumn(name, KeyType.INT64, np.frombuffer(values, dtype="<i8").astype(np.int64)) if isinstance(values, bytes)
            else EntityColumn(name, KeyType.STRING, values)
            for name, values in columns
        ]
        try:  # the general path's own checks: any error is its to report
            by_name, count = _check_entities(entities, limits)
            keys = _row_keys(group, group_id, key_columns, by_name)
        except FsdError:
            return None
    if count * len(plan.refs) > limits.max_values:
        return None
    specs = _specs(plan, heads)
    rows = store.get_many(keys)
    now = clock.now_micros()
    if keep is not None:
        keep(FetchedRows(count, plan, {group: rows}, now))
    return count, codec.encode_feature_columns(rows, specs[0], now), now, plan.manifest
