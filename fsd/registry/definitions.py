"""Reads a feature repo (a folder of YAML files) into GroupSpecs, with file:line in every error."""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import yaml

from fsd.domain import DTYPE_NAMES, KEY_TYPE_NAMES, DType, EntityKeySpec, FeatureSpec, FreshnessPolicy, GroupSpec, is_valid_name
from fsd.errors import InvalidArgument, echo
from fsd.domain.durations import parse_duration
from fsd.domain.aggregation import Aggregation, check_event_source

_GROUP_KEYS = {"name", "description", "owner", "entity_keys", "source", "max_age", "sync_interval", "tags", "features", "freshness_policy", "event_source",
               "timestamp_field", "sync_bounds"}
POLICY_ACTIONS = ("report", "mark_stale", "block", "resync")  # what a consistency breach does
_POLICY_KEYS = {"max_lag", "max_stale_ratio", "max_missed_refreshes", "min_consistency", "on_inconsistency"}


def _policy(ctx: "_Context", m: Mapping[str, object]) -> FreshnessPolicy:
    raw = m.get("freshness_policy")
    if raw is None:
        return FreshnessPolicy()
    p = _check_keys(ctx, raw, _POLICY_KEYS, "freshness_policy")

    def ratio(key: str) -> float:
        value = p.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ctx.fail(p, key, f"freshness_policy.{key} must be a number from 0 to 1")
        return float(value)

    missed = p.get("max_missed_refreshes", 0)
    if isinstance(missed, bool) or not isinstance(missed, int) or missed < 0:
        raise ctx.fail(p, "max_missed_refreshes", "freshness_policy.max_missed_refreshes must be a whole number")
    action = p.get("on_inconsistency", "report")
    if action not in POLICY_ACTIONS:
        raise ctx.fail(p, "on_inconsistency", "freshness_policy.on_inconsistency must be report, mark_stale, block or resync")
    return FreshnessPolicy(_duration(ctx, p, "max_lag"), ratio("max_stale_ratio"), missed, ratio("min_consistency"), str(action))
_FEATURE_KEYS = {
    "name", "dtype", "nullable", "vector_dim", "description", "transformation", "window",
    "source_dependencies", "meaning", "owner", "tags", "max_age", "allow_nan", "aggregation",
}
_AGGREGATION_KEYS = {"function", "column", "window", "filter"}
_EVENT_SOURCE_KEYS = {"columns", "allowed_lateness"}
_KEY_KEYS = {"name", "type"}


class _Located(dict):  # type: ignore[type-arg]
    """A mapping that remembers the line of each key, so errors can point into the file."""

    lines: dict[str, int]
    line: int


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Located:
    mapping = _Located()
    mapping.lines = {}
    mapping.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise InvalidArgument(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = key_node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Context:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, mapping: object, key: str | None, message: str) -> InvalidArgument:
        line = None
        if isinstance(mapping, _Located):
            line = mapping.lines.get(key, mapping.line) if key else mapping.line
        where = f"{self.path}:{line}" if line else self.path
        return InvalidArgument(f"{where}: {message}", field=key)


def _str(ctx: _Context, m: Mapping[str, object], key: str, default: str = "") -> str:
    value = m.get(key, default)
    if value is None:
        return default
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ctx.fail(m, key, f"{key} must be text")
    return str(value)


def _bool(ctx: _Context, m: Mapping[str, object], key: str, default: bool) -> bool:
    value = m.get(key, default)
    if not isinstance(value, bool):
        raise ctx.fail(m, key, f"{key} must be true or false")
    return value


def _duration(ctx: _Context, m: Mapping[str, object], key: str) -> int:
    if key not in m or m[key] is None:
        return 0
    try:
        return parse_duration(m[key])
    except ValueError as exc:
        raise ctx.fail(m, key, f"{key}: {exc}") from None


def _sync_schedule(ctx: _Context, m: Mapping[str, object]) -> dict[str, object]:
    """`sync_interval: 5m`, or `sync_interval: adaptive` with optional `sync_bounds: {min: 1m, max: 1h}`."""
    if m.get("sync_interval") != "adaptive":
        if "sync_bounds" in m:
            raise ctx.fail(m, "sync_bounds", "sync_bounds goes with sync_interval: adaptive")
        return {"sync_interval_seconds": _duration(ctx, m, "sync_interval")}
    bounds = _check_keys(ctx, m.get("sync_bounds") or {}, {"min", "max"}, "sync_bounds")
    low, high = _duration(ctx, bounds, "min") or 60, _duration(ctx, bounds, "max") or 3600
    if not 0 < low <= high:
        raise ctx.fail(bounds, "min", "sync_bounds: min must be positive and at most max")
    return {"sync_interval_seconds": high, "sync_adaptive": True, "sync_min_seconds": low, "sync_max_seconds": high}


def _tags(ctx: _Context, m: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    value = m.get("tags") or {}
    if not isinstance(value, dict):
        raise ctx.fail(m, "tags", "tags must be a mapping of text to text")
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))


def _check_keys(ctx: _Context, m: object, allowed: set[str], what: str) -> Mapping[str, object]:
    if not isinstance(m, dict):
        raise ctx.fail(m, None, f"{what} must be a mapping")
    unknown = sorted(set(m) - allowed)
    if unknown:
        raise ctx.fail(m, unknown[0], f"unknown key {unknown[0]!r} in {what} (allowed: {', '.join(sorted(allowed))})")
    return m


def _name(ctx: _Context, m: Mapping[str, object], what: str) -> str:
    name = m.get("name")
    if not isinstance(name, str) or not is_valid_name(name):
        raise ctx.fail(m, "name", f"{what} name {name!r} must be lower-case letters, digits and '_' (max 63)")
    return name


def _feature(ctx: _Context, raw: object) -> FeatureSpec:
    m = _check_keys(ctx, raw, _FEATURE_KEYS, "feature")
    name = _name(ctx, m, "feature")
    dtype_text = m.get("dtype")
    if not isinstance(dtype_text, str) or dtype_text.lower() not in DTYPE_NAMES:
        raise ctx.fail(m, "dtype", f"feature {name}: unknown dtype {dtype_text!r} (one of: {', '.join(DTYPE_NAMES)})")
    dtype = DTYPE_NAMES[dtype_text.lower()]
    dim = m.get("vector_dim", 0)
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 0 or dim > 65536:
        raise ctx.fail(m, "vector_dim", f"feature {name}: vector_dim must be an integer from 1 to 65536")
    if dtype == DType.FLOAT_VECTOR and dim == 0:
        raise ctx.fail(m, "dtype", f"feature {name}: float_vector needs vector_dim")
    if dtype != DType.FLOAT_VECTOR and dim:
        raise ctx.fail(m, "vector_dim", f"feature {name}: vector_dim is only for float_vector")
    deps = m.get("source_dependencies") or []
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ctx.fail(m, "source_dependencies", f"feature {name}: source_dependencies must be a list of text")
    allow_nan = _bool(ctx, m, "allow_nan", False)
    if allow_nan and dtype not in (DType.DOUBLE, DType.FLOAT, DType.FLOAT_VECTOR):
        raise ctx.fail(m, "allow_nan", f"feature {name}: allow_nan is only for float types")
    aggregation = None
    if m.get("aggregation") is not None:
        a = _check_keys(ctx, m["aggregation"], _AGGREGATION_KEYS, "aggregation")
        aggregation = Aggregation(_str(ctx, a, "function"), _str(ctx, a, "column"), _duration(ctx, a, "window"), _str(ctx, a, "filter"))
    return FeatureSpec(
        name=name,
        dtype=dtype,
        nullable=_bool(ctx, m, "nullable", True),
        vector_dim=dim,
        description=_str(ctx, m, "description"),
        transformation=_str(ctx, m, "transformation"),
        window_seconds=_duration(ctx, m, "window"),
        source_dependencies=tuple(deps),
        meaning=_str(ctx, m, "meaning"),
        owner=_str(ctx, m, "owner"),
        tags=_tags(ctx, m),
        max_age_seconds=_duration(ctx, m, "max_age"),
        allow_nan=allow_nan,
        aggregation=aggregation,
    )


def _group(ctx: _Context, raw: object) -> GroupSpec:
    m = _check_keys(ctx, raw, _GROUP_KEYS, "feature group")
    name = _name(ctx, m, "group")
    keys_raw = m.get("entity_keys")
    if not isinstance(keys_raw, list) or not keys_raw:
        raise ctx.fail(m, "entity_keys", f"group {name}: entity_keys must be a non-empty list")
    keys = []
    for key_raw in keys_raw:
        km = _check_keys(ctx, key_raw, _KEY_KEYS, "entity key")
        key_name = _name(ctx, km, "entity key")
        type_text = km.get("type")
        if not isinstance(type_text, str) or type_text.lower() not in KEY_TYPE_NAMES:
            raise ctx.fail(km, "type", f"group {name}: entity key {key_name} type must be int64 or string")
        keys.append(EntityKeySpec(key_name, KEY_TYPE_NAMES[type_text.lower()]))
    if len({k.name for k in keys}) != len(keys):
        raise ctx.fail(m, "entity_keys", f"group {name}: duplicate entity key names")
    features_raw = m.get("features")
    if not isinstance(features_raw, list) or not features_raw:
        raise ctx.fail(m, "features", f"group {name}: features must be a non-empty list")
    features = [_feature(ctx, f) for f in features_raw]
    seen: set[str] = set()
    reserved = {k.name for k in keys} | {"event_timestamp", "created_timestamp"}
    for feature, feature_raw in zip(features, features_raw):
        if feature.name in seen:
            raise ctx.fail(feature_raw, "name", f"group {name}: duplicate feature {feature.name!r}")
        if feature.name in reserved:
            raise ctx.fail(feature_raw, "name", f"group {name}: feature name {feature.name!r} is reserved (entity key or timestamp column)")
        seen.add(feature.name)
    event_columns: tuple[tuple[str, DType], ...] = ()
    lateness = 0
    if m.get("event_source") is not None:
        source = _check_keys(ctx, m["event_source"], _EVENT_SOURCE_KEYS, "event_source")
        cols = source.get("columns")
        if not isinstance(cols, dict) or not cols:
            raise ctx.fail(source, "columns", f"group {name}: event_source.columns maps each event column to its dtype")
        typed = []
        for column, dtype_text in cols.items():
            if not isinstance(column, str) or not is_valid_name(column):
                raise ctx.fail(source, "columns", f"group {name}: event column {column!r} must be a lower-case identifier")
            if not isinstance(dtype_text, str) or dtype_text.lower() not in DTYPE_NAMES or dtype_text.lower() in ("float_vector", "bytes"):
                raise ctx.fail(source, "columns", f"group {name}: event column {column}: dtype must be int64, double, float, bool or string")
            typed.append((column, DTYPE_NAMES[dtype_text.lower()]))
        event_columns, lateness = tuple(typed), _duration(ctx, source, "allowed_lateness")
    spec = GroupSpec(
        name=name,
        entity_keys=tuple(keys),
        features=tuple(features),
        source=_str(ctx, m, "source"),
        owner=_str(ctx, m, "owner"),
        description=_str(ctx, m, "description"),
        tags=_tags(ctx, m),
        max_age_seconds=_duration(ctx, m, "max_age"),
        **_sync_schedule(ctx, m),
        policy=_policy(ctx, m),
        timestamp_field=_str(ctx, m, "timestamp_field") or "event_timestamp",
        event_columns=event_columns,
        allowed_lateness_seconds=lateness,
    )
    problem = check_event_source(spec)
    if problem is not None:
        raise ctx.fail(m, problem[0] if problem[0] in m else "features", f"group {name}: {problem[1]}")
    return spec


def load_text(text: str, path: str = "<text>") -> list[GroupSpec]:
    """Groups declared in one YAML document: a mapping with `feature_groups:` (a list)."""
    ctx = _Context(path)
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise InvalidArgument(f"{path}{line}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:  # e.g. control characters the reader refuses
        raise InvalidArgument(f"{path}: invalid YAML: {str(exc)[:200]}") from None
    except InvalidArgument as exc:
        raise InvalidArgument(f"{path}: {exc.message}") from None
    if doc is None:
        return []
    m = _check_keys(ctx, doc, {"feature_groups"}, "document")
    groups_raw = m.get("feature_groups")
    if not isinstance(groups_raw, list):
        raise ctx.fail(m, "feature_groups", "feature_groups must be a list")
    return [_group(ctx, g) for g in groups_raw]


def load_repo(path: str | Path) -> list[GroupSpec]:
    """Every group in a YAML file, or in all *.yaml/*.yml files of a folder (sorted, not recursive)."""
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise InvalidArgument(f"{root}: no .yaml files in feature repo")
    elif root.is_file():
        files = [root]
    else:
        raise InvalidArgument(f"{root}: no such file or folder")
    groups: list[GroupSpec] = []
    seen: dict[str, str] = {}
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InvalidArgument(f"{file}: not a YAML text file (it is not UTF-8 text)") from None
        except OSError as exc:
            raise InvalidArgument(f"{file}: cannot be read ({exc.strerror})") from None
        for group in load_text(text, str(file)):
            if group.name in seen:
                raise InvalidArgument(f"{file}: group {group.name!r} is also declared in {seen[group.name]}")
            seen[group.name] = str(file)
            groups.append(group)
    return groups


def validate_policy(policy: FreshnessPolicy, where: str) -> None:
    """A freshness policy's bounds, the same for YAML and for definitions that arrive over the wire."""
    for name in ("max_stale_ratio", "min_consistency"):
        value = getattr(policy, name)
        if not isinstance(value, (int, float)) or math.isnan(value) or not 0.0 <= value <= 1.0:
            raise InvalidArgument(f"{where}: freshness_policy.{name} must be a ratio between 0 and 1", field=f"policy.{name}")
    if policy.max_lag_seconds < 0 or policy.max_missed_refreshes < 0:
        raise InvalidArgument(f"{where}: freshness_policy durations and counts must not be negative", field="policy")
    if policy.on_inconsistency not in POLICY_ACTIONS:
        raise InvalidArgument(f"{where}: freshness_policy.on_inconsistency must be {', '.join(POLICY_ACTIONS)}", field="policy.on_inconsistency")


def validate_group(spec: GroupSpec) -> None:
    """The same checks as the YAML loader, for definitions that arrive over the wire; linear in the feature count."""
    where = f"group {echo(spec.name, 80)}"
    if not is_valid_name(spec.name):
        raise InvalidArgument(f"{where}: name must be lower-case letters, digits and '_' (max 63)", field="name")
    if not spec.entity_keys:
        raise InvalidArgument(f"{where}: needs at least one entity key", field="entity_keys")
    key_names = [k.name for k in spec.entity_keys]
    if len(set(key_names)) != len(key_names) or not all(is_valid_name(n) for n in key_names):
        raise InvalidArgument(f"{where}: entity key names must be unique identifiers", field="entity_keys")
    if not spec.features:
        raise InvalidArgument(f"{where}: needs at least one feature", field="features")
    occurrences = Counter(f.name for f in spec.features)
    reserved = set(key_names) | {"event_timestamp", "created_timestamp"}
    for feature in spec.features:
        fw = f"{where} feature {echo(feature.name, 80)}"
        if not is_valid_name(feature.name) or feature.name in reserved or occurrences[feature.name] > 1:
            raise InvalidArgument(f"{fw}: name must be a unique identifier, not an entity key or timestamp column", field="features")
        if (feature.dtype == DType.FLOAT_VECTOR) != (feature.vector_dim > 0) or feature.vector_dim > 65536:
            raise InvalidArgument(f"{fw}: vector_dim (1..65536) goes with float_vector and only with it", field="vector_dim")
        if feature.allow_nan and feature.dtype not in (DType.DOUBLE, DType.FLOAT, DType.FLOAT_VECTOR):
            raise InvalidArgument(f"{fw}: allow_nan is only for float types", field="allow_nan")
        if feature.window_seconds < 0 or feature.max_age_seconds < 0:
            raise InvalidArgument(f"{fw}: durations must not be negative", field="features")
    if spec.max_age_seconds < 0 or spec.sync_interval_seconds < 0:
        raise InvalidArgument(f"{where}: durations must not be negative", field="max_age")
    if spec.sync_adaptive and not 0 < spec.sync_min_seconds <= spec.sync_max_seconds:
        raise InvalidArgument(f"{where}: adaptive sync bounds need 0 < min <= max", field="sync_bounds")
    validate_policy(spec.policy, where)
    if not is_valid_name(spec.timestamp_field) or spec.timestamp_field in set(key_names) | set(occurrences):
        raise InvalidArgument(f"{where}: timestamp_field must be a column name that is not a key or feature", field="timestamp_field")
    problem = check_event_source(spec)
    if problem is not None:
        raise InvalidArgument(f"{where}: {echo(problem[1], 300)}", field=problem[0])
