"""The read path: one entry point, `Lookup.get_features`, walked in named steps — plan the request (resolve refs
against the registry snapshot, memoised per snapshot), check the entities, encode row keys, one batched read,
then one fused native pass from rows to serialised FeatureColumn bytes with freshness statuses. A computed
group's rows are made from its tiles as of the read (computed_rows), then take the same pass.

The commonest request (one group keyed by one int64 column, plan already known) takes an internal fast branch
that skips the general entity checks and builds keys straight from the packed ids; every other request, and
every error, takes the general branch. Both give the same bytes (tests/unit/test_fast_path.py)."""
from __future__ import annotations

import functools
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from fsd import codec
from fsd.aggregation.layout import computed_versions, tile_key_of_row
from fsd.aggregation import hll
from fsd.aggregation.tiles import FUNCTION_CODES, FeatureTiles
from fsd.aggregation.tiles import decode as decode_tiles
from fsd.codec import _columns_py
from fsd.domain import Clock, DType, GetRequest, KeyType, RegistrySnapshot, ResolvedFeature, column_name, manifest_refs
from fsd.errors import InvalidArgument, ResourceExhausted, Unavailable
from fsd.online.base import OnlineStore

ColumnSpec = tuple[bytes, int, int, int, int, int]  # head, slot, dtype, vector dim, max age µs, mode (codec.encode_feature_columns)
HeadEncoder = Callable[[str, ResolvedFeature], bytes]
RefsDecoder = Callable[[bytes], "list[str] | None"]


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
class ComputedRead:
    """A computed feature version a request reads: how its tiles combine into a value, and its stored form."""

    tiles: FeatureTiles
    dtype: DType
    max_age_micros: int


class ComputedRowCache:
    """Rows computed from tiles, by (the features read, each one's current tile, the blob): a value changes only
    when an event changes the blob or time enters a new tile, so a hot entity is combined once per tile, not once
    per read. Statuses (STALE) are still decided per read by the encoder from the row's event time. Bounded."""

    def __init__(self, entries: int = 65_536) -> None:
        self._rows: OrderedDict[tuple[object, ...], bytes | None] = OrderedDict()
        self._entries = entries
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> bytes | None | object:
        return self._rows.get(key, _MISSING)

    def put(self, key: tuple[object, ...], row: bytes | None) -> None:
        with self._lock:
            self._rows[key] = row
            while len(self._rows) > self._entries:
                self._rows.popitem(last=False)


_MISSING = object()


def computed_rows(blobs: Sequence[bytes | None], reads: tuple[ComputedRead, ...], now: int, cache: ComputedRowCache | None = None) -> list[bytes | None]:
    """Rows in the stored row format, computed from the entities' tile blobs as of `now`: the encoder downstream
    then treats them as any row (statuses, max age, blocking). No blob: no event ever, NOT_FOUND. The values of
    every entity not cached are combined first, then encoded one column per feature (one call each)."""
    out: list[bytes | None] = [None] * len(blobs)
    tiles_now = tuple(now // read.tiles.tile for read in reads)
    todo: list[tuple[int, tuple[object, ...], list[tuple[object, int] | None]]] = []
    for i, blob in enumerate(blobs):
        if blob is None:
            continue
        key = (reads, tiles_now, blob)
        if cache is not None:
            hit = cache.get(key)
            if hit is not _MISSING:
                out[i] = hit  # type: ignore[assignment]
                continue
        todo.append((i, key, tile_values(blob, reads, now)))
    if not todo:
        return out
    entries: list[dict[int, bytes]] = [{} for _ in todo]
    for r, read in enumerate(reads):
        having = [j for j, (_, _, values) in enumerate(todo) if values[r] is not None]  # None: tiles still filling from the log
        if not having:
            continue
        got = [todo[j][2][r] for j in having]
        nulls = np.fromiter((g[0] is None for g in got), dtype=np.bool_, count=len(got))  # type: ignore[index]
        newest = np.fromiter((g[1] for g in got), dtype=np.int64, count=len(got))  # type: ignore[index]
        if read.dtype == DType.STRING:
            column: object = ["" if g[0] is None else g[0] for g in got]  # type: ignore[index]
        else:
            column = np.asarray([0 if g[0] is None else g[0] for g in got], dtype=_NUMPY[read.dtype])  # type: ignore[index]
        encoded = codec.encode_values(int(read.dtype), column, nulls, newest, newest, 0)
        for j, value in zip(having, encoded):
            entries[j][read.tiles.slot] = value
    for (i, key, _), found in zip(todo, entries):
        row = codec.build_row(found) if found else None
        if cache is not None:
            cache.put(key, row)
        out[i] = row
    return out


def tile_values(blob: bytes, reads: tuple[ComputedRead, ...], now: int) -> list[tuple[object, int] | None]:
    """(value, newest event time) of each read as of `now` (None: the blob has no tiles for it) — FeatureTiles.value_at
    over the decoded blob, or its compiled twin (fsd._native.tile_values) reading the blob in place."""
    if _compiled_tile_values is None:
        states = decode_tiles(blob)
        out: list[tuple[object, int] | None] = []
        for read in reads:
            state = states.get(read.tiles.slot)
            out.append(None if state is None else read.tiles.value_at(state, now, read.max_age_micros)[1:])  # type: ignore[arg-type]
        return out
    got = _compiled_tile_values(blob, _tile_specs(reads), now)
    for i, read in enumerate(reads):
        if got[i] is not None and read.tiles.agg.function == "count_distinct":
            got[i] = (hll.estimate(got[i][0]), got[i][1])  # the merged registers, estimated as the Python path does
    return got  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=1024)
def _tile_specs(reads: tuple[ComputedRead, ...]) -> list[tuple[int, int, int]]:
    """(slot, function code, tile µs) of each read, as the compiled tile_values takes them: once per set of reads,
    not once per entity. Read only."""
    return [(r.tiles.slot, FUNCTION_CODES[r.tiles.agg.function], r.tiles.tile) for r in reads]


_compiled_tile_values = getattr(getattr(codec, "_native", None), "tile_values", None)
_NUMPY = {DType.INT64: np.int64, DType.DOUBLE: np.float64, DType.FLOAT: np.float32, DType.BOOL: np.bool_}


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """One group a request reads: its row-key layout and which of the request's features it serves."""

    name: str
    group_id: int
    key_columns: tuple[tuple[str, KeyType], ...]
    members: tuple[int, ...]  # indices into RequestPlan.resolved
    computed: tuple[ComputedRead, ...] = ()  # set: a group with an event source, read from its tiles


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """What a request shape (refs, manifest) resolves to under one registry snapshot."""

    refs: tuple[str, ...]  # the column names reported back (domain.column_name), in request order
    resolved: tuple[ResolvedFeature, ...]
    manifest: str  # "name@N" when served under a manifest
    groups: tuple[GroupPlan, ...]
    requested: int  # refs the caller named (the max_features limit counts these)
    pinned: bool  # every version named explicitly (@N, or a manifest): servable without a fresh registry lease
    int64_key: str = ""  # the key column's name when one group keyed by one int64 column serves it all (fast branch)
    _specs: dict[int, list[list[ColumnSpec]]] = field(default_factory=dict, compare=False, repr=False)

    def column_specs(self, heads: HeadEncoder) -> list[list[ColumnSpec]]:
        """Per group, the native pass's column specs; memoised per head encoder."""
        owner = id(getattr(heads, "__self__", heads))  # a bound method is a new object per access; its encoder is not
        specs = self._specs.get(owner)
        if specs is None:
            specs = [[_spec(self.resolved[i], heads(self.refs[i], self.resolved[i])) for i in g.members] for g in self.groups]
            self._specs[owner] = specs
        return specs


@dataclass(frozen=True, slots=True)
class FetchedRows:
    """What the read path returns: the rows read for a request, one row list per group, as of `now`, resolved
    against registry epoch `epoch`. The wire layer encodes them into the reply (fsd.wire.serving); decode_rows
    turns them into arrays off the request path (the served-values sample for skew checks)."""

    count: int
    plan: RequestPlan
    rows: dict[str, list[bytes | None]]
    now: int
    epoch: int = 0


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
    manifest: str = ""


_MAX_PLANS = 4096


class _PlanCache:
    """Plans of the current registry snapshot, keyed by the request's refs in wire form and its manifest. A new
    snapshot (any registry change, policy flags included) starts an empty cache."""

    def __init__(self) -> None:
        self._state: tuple[RegistrySnapshot | None, dict[tuple[bytes, str], RequestPlan]] = (None, {})
        self._lock = threading.Lock()

    def get(self, snapshot: RegistrySnapshot, key: tuple[bytes, str]) -> RequestPlan | None:
        owner, plans = self._state
        return plans.get(key) if owner is snapshot else None

    def put(self, snapshot: RegistrySnapshot, key: tuple[bytes, str], plan: RequestPlan) -> None:
        with self._lock:
            owner, plans = self._state
            if owner is not snapshot or len(plans) >= _MAX_PLANS:
                plans = {}
                self._state = (snapshot, plans)
            plans[key] = plan


def plan_request(snapshot: RegistrySnapshot, refs: Sequence[str], manifest: str) -> RequestPlan:
    """Resolve a request's refs (through its manifest, if any) and group them by feature group."""
    requested = len(refs)
    resolve_refs: Sequence[str] = refs
    served_manifest = ""
    if manifest:
        info = snapshot.manifest(manifest)
        refs, resolve_refs = manifest_refs(info, refs)
        served_manifest = info.ref
    resolved = tuple(snapshot.resolve(ref) for ref in resolve_refs)
    names: list[str] = []
    for feature in resolved:  # served under the training set's column names, whatever form the caller wrote
        names.append(column_name(names, feature.group, feature.feature, feature.version))
    members: dict[str, list[int]] = {}
    for index, feature in enumerate(resolved):
        members.setdefault(feature.group, []).append(index)
    groups = []
    for name, indices in members.items():
        info = snapshot.group(name)
        computed: tuple[ComputedRead, ...] = ()
        if info.spec.event_columns:
            lateness = info.spec.allowed_lateness_seconds * 1_000_000
            wanted = {resolved[i].slot: resolved[i] for i in indices}
            computed = tuple(ComputedRead(FeatureTiles(v.slot, v.aggregation, lateness), wanted[v.slot].dtype, v.max_age_micros)
                             for v in computed_versions(info) if v.slot in wanted)
        groups.append(GroupPlan(name, info.group_id, tuple((k.name, k.type) for k in info.spec.entity_keys), tuple(indices), computed))
    only = groups[0].key_columns if len(groups) == 1 else ()
    int64_key = only[0][0] if len(only) == 1 and only[0][1] == KeyType.INT64 else ""
    pinned = bool(manifest) or all("@" in ref for ref in refs)
    return RequestPlan(tuple(names), resolved, served_manifest, tuple(groups), requested, pinned, int64_key)


def _entity_columns(columns: Sequence[tuple[str, bytes | list[str]]]) -> list[EntityColumn]:
    return [
        EntityColumn(name, KeyType.INT64, np.frombuffer(values, dtype="<i8").astype(np.int64)) if isinstance(values, bytes)
        else EntityColumn(name, KeyType.STRING, values)
        for name, values in columns
    ]


def _check_entities(entities: Sequence[EntityColumn], limits: LookupLimits) -> tuple[dict[str, EntityColumn], int]:
    if not entities:
        raise InvalidArgument("entities: at least one entity-key column is required", field="entities")
    by_name: dict[str, EntityColumn] = {}
    for column in entities:
        if not column.name:
            raise InvalidArgument("entities: an entity column has no name", field="entities")
        if column.name in by_name:
            raise InvalidArgument(f"entities: column {column.name[:100]!r} appears more than once", field=f"entities.{column.name[:100]}")
        by_name[column.name] = column
    counts = {len(c) for c in entities}
    if len(counts) != 1:
        raise InvalidArgument(
            "entities: columns differ in length (" + ", ".join(f"{c.name[:100]}={len(c)}" for c in entities[:20]) + ")", field="entities"
        )
    count = counts.pop()
    if count > limits.max_entities:
        raise ResourceExhausted(f"entities: {count} rows exceed the limit of {limits.max_entities} per request", field="entities")
    for column in entities:
        if column.type == KeyType.STRING:
            bad = next((v for v in column.values if not unicodedata.is_normalized("NFC", v)), None)  # type: ignore[attr-defined]
            if bad is not None:
                raise InvalidArgument(f"entities: {column.name[:100]} key {bad[:100]!r} is not in Unicode NFC form", field=f"entities.{column.name[:100]}")
    if count == 0:
        raise InvalidArgument("entities: no entity rows given", field="entities")
    return by_name, count


def _row_keys(group: GroupPlan, by_name: dict[str, EntityColumn]) -> list[bytes]:
    """The row key of each entity of one group, from the request's columns named by the group's entity keys."""
    columns = []
    for key_name, key_type in group.key_columns:
        column = by_name.get(key_name)
        if column is None:
            raise InvalidArgument(f"entities: group {group.name} needs entity key column {key_name!r}", field=f"entities.{key_name}")
        if column.type != key_type:
            raise InvalidArgument(
                f"entities: column {key_name!r} is {column.type.name.lower()}, group {group.name} keys it by {key_type.name.lower()}",
                field=f"entities.{key_name}",
            )
        columns.append(column.values)
    try:
        encoded = codec.encode_entities(columns, [key_type == KeyType.STRING for _, key_type in group.key_columns])
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(f"entities: {str(exc)[:200]}", field="entities") from None
    return codec.entity_keys(group.group_id, encoded)


def _spec(feature: ResolvedFeature, head: bytes) -> ColumnSpec:
    mode = _columns_py.MODE_BLOCKED if feature.blocked else (_columns_py.MODE_GROUP_STALE if feature.group_stale else _columns_py.MODE_NORMAL)
    return (head, feature.slot, int(feature.dtype), feature.vector_dim, feature.max_age_micros, mode)


class Lookup:
    """Serves GetFeatures against one OnlineStore. Thread-safe; holds only the plan cache."""

    def __init__(self, store: OnlineStore, clock: Clock, limits: LookupLimits, refs_of: RefsDecoder, *, fast_branch: bool = True) -> None:
        self._store = store
        self._clock = clock
        self._limits = limits
        self._refs_of = refs_of
        self._fast_branch = fast_branch  # off only to prove both branches answer alike
        self._plans = _PlanCache()
        self._computed = ComputedRowCache()

    def get_features(self, snapshot: RegistrySnapshot, request: GetRequest, lease_ok: bool = True) -> FetchedRows:
        """Read the requested feature versions for all entity rows (a missing value is NOT_FOUND, never an error,
        when the reply is encoded). Without a current registry lease (a replica that could not confirm the
        registry's state lately) only fully pinned requests are served."""
        limits = self._limits
        key = (request.features_key, request.manifest)
        plan = self._plans.get(snapshot, key)
        if not lease_ok and (plan is None or not plan.pinned):
            plan = self._refuse_unpinned(snapshot, request, plan)
        if plan is not None and self._fast_branch and plan.int64_key and len(request.columns) == 1:
            name, ids = request.columns[0]
            count = len(ids) >> 3
            if name == plan.int64_key and isinstance(ids, bytes) and 0 < count <= limits.max_entities \
                    and count * len(plan.refs) <= limits.max_values and plan.requested <= limits.max_features:
                return self._read(plan, count, [codec.int64_row_keys(plan.groups[0].group_id, ids)], snapshot.epoch)
        by_name, count = _check_entities(_entity_columns(request.columns), limits)
        if plan is None:
            plan = self._plan(snapshot, request)
            self._plans.put(snapshot, key, plan)
        if plan.requested > limits.max_features:
            raise ResourceExhausted(f"features: {plan.requested} references exceed the limit of {limits.max_features}", field="features")
        if count * len(plan.refs) > limits.max_values:
            raise ResourceExhausted(
                f"request asks for {count * len(plan.refs)} values, over the limit of {limits.max_values}; split it", field="entities"
            )
        return self._read(plan, count, [_row_keys(g, by_name) for g in plan.groups], snapshot.epoch)

    def _refuse_unpinned(self, snapshot: RegistrySnapshot, request: GetRequest, plan: RequestPlan | None) -> RequestPlan:
        """The request's plan (planned and cached here if new), or Unavailable when it names an unpinned feature."""
        if plan is None:
            plan = self._plan(snapshot, request)
            self._plans.put(snapshot, (request.features_key, request.manifest), plan)
        if not plan.pinned:
            raise Unavailable(
                "this replica could not confirm the registry's current state within registry.lease_seconds, so it does not serve "
                "unpinned features (it might serve a superseded version); retry on another replica, or pin versions (@N or a manifest)"
            )
        return plan

    def _plan(self, snapshot: RegistrySnapshot, request: GetRequest) -> RequestPlan:
        refs = self._refs_of(request.features_key)
        if refs is None:
            raise InvalidArgument("features: not a list of feature references", field="features")
        if not refs and not request.manifest:
            raise InvalidArgument("features: at least one feature reference is required", field="features")
        if len(refs) > self._limits.max_features:
            raise ResourceExhausted(f"features: {len(refs)} references exceed the limit of {self._limits.max_features}", field="features")
        return plan_request(snapshot, refs, request.manifest)

    def _read(self, plan: RequestPlan, count: int, keys_per_group: list[list[bytes]], epoch: int) -> FetchedRows:
        """One batched read for every group; a computed group's rows come from its tiles, as of now."""
        computed = any(g.computed for g in plan.groups)
        if computed:
            keys_per_group = [[tile_key_of_row(k) for k in keys] if g.computed else keys for g, keys in zip(plan.groups, keys_per_group)]
        if len(plan.groups) == 1:
            rows = {plan.groups[0].name: self._store.get_many(keys_per_group[0])}
        else:
            raw = self._store.get_many([k for keys in keys_per_group for k in keys])
            rows = {g.name: raw[i * count:(i + 1) * count] for i, g in enumerate(plan.groups)}
        now = self._clock.now_micros()
        if computed:
            for g in plan.groups:
                if g.computed:
                    rows[g.name] = computed_rows(rows[g.name], g.computed, now, self._computed)
        return FetchedRows(count, plan, rows, now, epoch)


def decode_rows(fetched: FetchedRows) -> LookupResult:
    """The fetched rows as arrays per requested feature version (what the encoded columns say, decoded)."""
    results = []
    for ref, feature in zip(fetched.plan.refs, fetched.plan.resolved):
        values, is_null, statuses, event_times = _columns_py.decoded_column(
            fetched.rows[feature.group], _spec(feature, b""), fetched.now, codec.decode_feature, codec.freshness_status
        )
        results.append(FeatureResult(ref, feature, values, is_null, statuses, event_times))
    return LookupResult(fetched.count, results, fetched.now, fetched.plan.manifest)


__all__ = ["EntityColumn", "FetchedRows", "FeatureResult", "Lookup", "LookupLimits", "LookupResult", "RequestPlan", "decode_rows", "plan_request"]
