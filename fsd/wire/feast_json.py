"""Feast's HTTP/JSON shapes (`feast serve`) to and from fsd's messages: what the HTTP endpoint speaks.

POST /get-online-features takes `{"features": ["group:feature", ...] | "feature_service": "manifest",
"entities": {"key": [values]}}` and answers `{"metadata": {"feature_names": [...]}, "results": [{"values",
"statuses", "event_timestamps"}, ...]}`, key columns first, as Feast does. Differences, on purpose: names are fsd's
one column name (`group:feature`, what training sets use, whatever `full_feature_names` says); statuses are fsd's
(PRESENT, NOT_FOUND, STALE ≙ Feast's OUTSIDE_MAX_AGE, BLOCKED); metadata also carries each column's version and the
manifest served. Values follow protobuf's JSON mapping where JSON has no type: bytes as base64, NaN/±Infinity as
strings. POST /push takes `{"push_source_name" (or "group"), "df": {column: [values]}, "to": "online"}`.
Pure functions: no I/O here (fsd.serving.http_api serves them).
"""
from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from fsd.domain import DType, GroupSpec, OnlineFeatures, PublishResult
from fsd.errors import InvalidArgument
from fsd.v1 import serving_pb2
from fsd.wire.serving import get_features_request

if TYPE_CHECKING:
    import pyarrow as pa

MAX_NAME_ECHO = 100  # a name from the request is quoted at most this long in an error


def _cut(text: object) -> str:
    s = str(text)
    return s if len(s) <= MAX_NAME_ECHO else s[:MAX_NAME_ECHO] + "…"


def _object(body: object, what: str) -> dict[str, object]:
    if not isinstance(body, dict):
        raise InvalidArgument(f"{what}: the body must be a JSON object", field="body")
    return body


def online_request(body: object) -> serving_pb2.GetFeaturesRequest:
    """A Feast get-online-features body as fsd's GetFeaturesRequest (a feature service is a manifest)."""
    request = _object(body, "get-online-features")
    unknown = sorted(set(request) - {"features", "feature_service", "manifest", "entities", "full_feature_names"})
    if unknown:
        raise InvalidArgument(f"get-online-features: unknown key {_cut(unknown[0])!r}", field=_cut(unknown[0]))
    features = request.get("features") or []
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise InvalidArgument("features: a list of \"group:feature\" strings", field="features")
    manifest = request.get("feature_service") or request.get("manifest") or ""
    if not isinstance(manifest, str):
        raise InvalidArgument("feature_service: a manifest name (\"name\" or \"name@N\")", field="feature_service")
    if not features and not manifest:
        raise InvalidArgument("get-online-features: name \"features\" or a \"feature_service\"", field="features")
    entities = request.get("entities")
    if not isinstance(entities, dict) or not entities:
        raise InvalidArgument("entities: an object of key column -> list of values, e.g. {\"customer_id\": [1, 2]}", field="entities")
    for name, values in entities.items():
        if not isinstance(values, list):
            raise InvalidArgument(f"entities: column {_cut(name)!r} must be a list of values", field="entities")
    return get_features_request(features, entities, manifest)


_STATUS_NAMES = ["UNSPECIFIED", "PRESENT", "NOT_FOUND", "STALE", "BLOCKED"]


def _json_values(values: object, present: np.ndarray, dtype: DType) -> list[object]:
    """One column's values as JSON items (None where nothing was served), whole columns at a time."""
    if dtype == DType.BYTES:
        items = [base64.b64encode(v).decode("ascii") for v in values]  # type: ignore[attr-defined]
    elif isinstance(values, np.ndarray):
        items = values.tolist()
        if dtype in (DType.DOUBLE, DType.FLOAT) and not np.isfinite(values).all():
            items = [x if math.isfinite(x) else ("NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")) for x in items]
    else:
        items = list(values)  # type: ignore[call-overload]
    if not present.all():
        items = [x if ok else None for x, ok in zip(items, present.tolist())]
    return items


def _iso(micros: np.ndarray) -> list[str | None]:
    """UTC ISO times; None where no value was served (event time 0)."""
    unique, index = np.unique(micros, return_inverse=True)  # a batch's rows mostly share a few event times
    text = [f"{t}Z" if m > 0 else None for t, m in zip(np.datetime_as_string(unique.astype("datetime64[us]"), unit="us").tolist(), unique.tolist())]
    return [text[i] for i in index.tolist()]


def online_response(served: OnlineFeatures, dtypes: Mapping[str, DType]) -> dict[str, object]:
    """fsd's answer in Feast's response shape: key columns first, then one result per feature."""
    names: list[str] = []
    results: list[dict[str, object]] = []
    for key, values in served.entities.items():
        names.append(key)
        results.append({"values": list(values), "statuses": ["PRESENT"] * len(values), "event_timestamps": [None] * len(values)})
    versions: dict[str, int] = {}
    for name, column in served.features.items():
        names.append(name)
        versions[name] = column.version
        results.append({"values": _json_values(column.values, column.has_value(), dtypes.get(name, DType.INT64)),
                        "statuses": [_STATUS_NAMES[s] for s in column.statuses.tolist()],
                        "event_timestamps": _iso(column.event_time_micros)})
    metadata: dict[str, object] = {"feature_names": names, "versions": versions}
    if served.manifest:
        metadata["manifest"] = served.manifest
    return {"metadata": metadata, "results": results}


def push_request(body: object) -> tuple[str, dict[str, list[object]]]:
    """(group, columns) of a Feast push body; only "to": "online" (fsd's offline store takes `fsd ingest`)."""
    request = _object(body, "push")
    unknown = sorted(set(request) - {"push_source_name", "group", "df", "to", "allow_registry_cache"})
    if unknown:
        raise InvalidArgument(f"push: unknown key {_cut(unknown[0])!r}", field=_cut(unknown[0]))
    group = request.get("group") or request.get("push_source_name")
    if not isinstance(group, str) or not group:
        raise InvalidArgument("push: name the group (\"push_source_name\" or \"group\")", field="push_source_name")
    to = request.get("to", "online")
    if to != "online":
        raise InvalidArgument(f"push: \"to\" must be \"online\" (got {_cut(to)!r}); write the offline store with fsd ingest", field="to")
    df = request.get("df")
    if not isinstance(df, dict) or not df or not all(isinstance(v, list) for v in df.values()):
        raise InvalidArgument("df: an object of column -> list of values", field="df")
    lengths = {len(v) for v in df.values()}  # type: ignore[arg-type]
    if len(lengths) != 1:
        raise InvalidArgument("df: every column must have the same number of values", field="df")
    return group, df  # type: ignore[return-value]


def _timestamps(name: str, values: list[object]) -> list[dt.datetime]:
    out = []
    for row, value in enumerate(values):
        try:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                stamp = dt.datetime.fromtimestamp(float(value), dt.timezone.utc)  # epoch seconds, as Feast's push accepts
            elif isinstance(value, str):
                stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            else:
                raise ValueError
        except (ValueError, OverflowError, OSError):
            raise InvalidArgument(f"df: {name} row {row} is not an ISO time or epoch seconds", field=name) from None
        if stamp.tzinfo is None:
            raise InvalidArgument(f"df: {name} row {row} has no UTC offset (naive times are refused: add Z or +00:00)", field=name)
        out.append(stamp)
    return out


_ARROW_TYPES = {DType.INT64: "int64", DType.DOUBLE: "float64", DType.FLOAT: "float32", DType.BOOL: "bool", DType.STRING: "string",
                DType.BYTES: "binary"}


def _number(value: object) -> object:
    if value in ("NaN", "Infinity", "-Infinity"):
        return float(value)  # type: ignore[arg-type]
    return value


def push_table(spec: GroupSpec, df: Mapping[str, list[object]]) -> pa.Table:
    """The pushed columns as the Arrow table Publish takes, typed by the group's definition."""
    import pyarrow as pa

    columns: dict[str, pa.Array] = {}
    time_field = "event_timestamp" if "event_timestamp" in df else spec.timestamp_field
    for name, values in df.items():
        try:
            if name == time_field:
                columns["event_timestamp"] = pa.array(_timestamps(name, values), pa.timestamp("us", tz="UTC"))
                continue
            key = next((k for k in spec.entity_keys if k.name == name), None)
            if key is not None:
                columns[name] = pa.array(values, pa.int64() if key.type.name == "INT64" else pa.string())
                continue
            feature = spec.feature(name)
            if feature is None:
                columns[name] = pa.array(values)  # not in the definition: Publish names the column in its refusal
            elif feature.dtype == DType.FLOAT_VECTOR:
                columns[name] = pa.array(values, pa.list_(pa.float32()))
            elif feature.dtype == DType.BYTES:
                columns[name] = pa.array([None if v is None else base64.b64decode(v, validate=True) for v in values], pa.binary())  # type: ignore[arg-type]
            elif feature.dtype in (DType.DOUBLE, DType.FLOAT):
                columns[name] = pa.array([_number(v) for v in values], pa.float64() if feature.dtype == DType.DOUBLE else pa.float32())
            else:
                columns[name] = pa.array(values, _ARROW_TYPES[feature.dtype])
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidArgument):
                raise
            raise InvalidArgument(f"df: column {_cut(name)!r} does not hold values of its type: {str(exc)[:200]}", field=_cut(name)) from None
    if "event_timestamp" not in columns:
        raise InvalidArgument(f"df: the event time column ({spec.timestamp_field!r}) is missing", field="event_timestamp")
    return pa.table(columns)


def push_response(result: PublishResult) -> dict[str, object]:
    return {"group": result.group, "rows_accepted": result.rows_accepted, "rows_rejected": result.rows_rejected,
            "values_written": result.values_written, "reason_counts": dict(result.reason_counts),
            "rejections": [{"rows": [r.row_start, r.row_end], "field": r.field, "rule": r.rule, "reason": r.reason} for r in result.rejections[:100]],
            "rejections_truncated": result.rejections_truncated or len(result.rejections) > 100}


__all__ = ["online_request", "online_response", "push_request", "push_response", "push_table"]
