"""The only place that touches generated protobuf types for the serving and registry contracts."""
from __future__ import annotations

import numpy as np

from dataclasses import asdict

from fsd.domain import DType, EntityKeySpec, FeatureSpec, FreshnessPolicy, GroupSpec, KeyType
from fsd.errors import InvalidArgument
from fsd.lookup import EntityColumn, LookupResult
from fsd.registry.registry import ApplyResult, Change, GroupInfo, ManifestInfo, VersionInfo
from fsd.registry.operations import Incident, SyncRunRecord
from fsd.registry.storage import HistoryRow
from fsd.sync.publisher import PublishStats
from fsd.v1 import registry_pb2, serving_pb2, types_pb2
from google.protobuf.message import DecodeError


def entities_from_proto(columns: list[serving_pb2.EntityColumn]) -> list[EntityColumn]:
    out = []
    for column in columns:
        kind = column.WhichOneof("values")
        if kind == "int64_values":
            out.append(EntityColumn(column.name, KeyType.INT64, np.asarray(column.int64_values.values, dtype=np.int64)))
        elif kind == "string_values":
            out.append(EntityColumn(column.name, KeyType.STRING, list(column.string_values.values)))
        else:
            raise InvalidArgument(f"entities: column {column.name!r} carries no values (int64_values or string_values)", field=f"entities.{column.name}")
    return out


def refs_from_wire(features_key: bytes) -> list[str] | None:
    """The refs of GetFeaturesRequest `features` fields in wire form (codec.split_get_request); None if malformed."""
    try:
        return list(serving_pb2.GetFeaturesRequest.FromString(features_key).features)
    except (DecodeError, ValueError, RuntimeError):
        return None


def entities_to_proto(entities: dict[str, object]) -> list[serving_pb2.EntityColumn]:
    """Client side: {name: ints or strs} -> typed columns (type taken from the values)."""
    out = []
    for name, values in entities.items():
        items = values.tolist() if isinstance(values, np.ndarray) else list(values)  # type: ignore[attr-defined]
        column = serving_pb2.EntityColumn(name=name)
        if items and all(isinstance(v, str) for v in items):
            column.string_values.values.extend(items)
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
            column.int64_values.values.extend(int(v) for v in items)
        else:
            raise InvalidArgument(f"entities: column {name!r} must hold only ints or only strings", field=name)
        out.append(column)
    return out


def _fill_column(target: types_pb2.Column, dtype: DType, values: object, dim: int) -> None:
    if dtype == DType.INT64:
        target.int64_values.values.extend(values.tolist())  # type: ignore[attr-defined]
    elif dtype == DType.DOUBLE:
        target.double_values.values.extend(values.tolist())  # type: ignore[attr-defined]
    elif dtype == DType.FLOAT:
        target.float_values.values.extend(values.tolist())  # type: ignore[attr-defined]
    elif dtype == DType.BOOL:
        target.bool_values.values.extend(values.tolist())  # type: ignore[attr-defined]
    elif dtype == DType.STRING:
        target.string_values.values.extend(values)  # type: ignore[arg-type]
    elif dtype == DType.BYTES:
        target.bytes_values.values.extend(values)  # type: ignore[arg-type]
    else:
        target.vector_values.dim = dim
        target.vector_values.values.extend(values.ravel().tolist())  # type: ignore[attr-defined]


def lookup_to_proto(result: LookupResult) -> serving_pb2.GetFeaturesResponse:
    response = serving_pb2.GetFeaturesResponse(
        entity_count=result.entity_count, served_at_micros=result.served_at_micros, manifest=result.manifest
    )
    for item in result.features:
        f = item.feature
        column = response.features.add(ref=item.ref, group=f.group, feature=f.feature, version=f.version, dtype=int(f.dtype))
        _fill_column(column.values, f.dtype, item.values, f.vector_dim)
        column.is_null.extend(item.is_null.tolist())
        column.statuses.extend(item.statuses.tolist())
        column.event_time_micros.extend(item.event_times.tolist())
    return response


def column_from_proto(column: types_pb2.Column) -> object:
    """Client side: typed column -> numpy array (2-D for vectors) or list."""
    kind = column.WhichOneof("values")
    if kind == "int64_values":
        return np.asarray(column.int64_values.values, dtype=np.int64)
    if kind == "double_values":
        return np.asarray(column.double_values.values, dtype=np.float64)
    if kind == "float_values":
        return np.asarray(column.float_values.values, dtype=np.float32)
    if kind == "bool_values":
        return np.asarray(column.bool_values.values, dtype=np.bool_)
    if kind == "string_values":
        return list(column.string_values.values)
    if kind == "bytes_values":
        return list(column.bytes_values.values)
    if kind == "vector_values":
        dim = column.vector_values.dim
        flat = np.asarray(column.vector_values.values, dtype=np.float32)
        return flat.reshape(-1, dim) if dim else flat.reshape(0, 0)
    return np.zeros(0)


def publish_stats_to_proto(stats: PublishStats) -> serving_pb2.PublishResponse:
    response = serving_pb2.PublishResponse(
        publish_id=stats.publish_id,
        group=stats.group,
        chunks_written=stats.chunks_written,
        chunks_skipped_duplicate=stats.chunks_skipped_duplicate,
        rows_received=stats.rows_received,
        rows_accepted=stats.rows_accepted,
        rows_rejected=stats.rows_rejected,
        values_written=stats.values_written,
        values_skipped_older=stats.values_skipped_older,
        rejections_truncated=stats.rejections_truncated,
        reason_counts=stats.reason_counts,
    )
    for r in stats.rejections:
        response.rejections.add(row_start=r.row_start, row_end=r.row_end, field=r.field, rule=r.rule, reason=r.reason)
    return response


# --- registry -------------------------------------------------------------------------------------------------


def feature_to_proto(spec: FeatureSpec) -> registry_pb2.FeatureDef:
    return registry_pb2.FeatureDef(
        name=spec.name,
        dtype=int(spec.dtype),
        nullable=spec.nullable,
        vector_dim=spec.vector_dim,
        description=spec.description,
        transformation=spec.transformation,
        window_seconds=spec.window_seconds,
        source_dependencies=list(spec.source_dependencies),
        meaning=spec.meaning,
        owner=spec.owner,
        tags=dict(spec.tags),
        max_age_seconds=spec.max_age_seconds,
        allow_nan=spec.allow_nan,
    )


def group_to_proto(spec: GroupSpec) -> registry_pb2.GroupDef:
    return registry_pb2.GroupDef(
        name=spec.name,
        entity_keys=[registry_pb2.EntityKeySpec(name=k.name, type=int(k.type)) for k in spec.entity_keys],
        source=spec.source,
        owner=spec.owner,
        description=spec.description,
        tags=dict(spec.tags),
        max_age_seconds=spec.max_age_seconds,
        sync_interval_seconds=spec.sync_interval_seconds,
        features=[feature_to_proto(f) for f in spec.features],
        policy=registry_pb2.FreshnessPolicy(**asdict(spec.policy)),
    )


def feature_from_proto(msg: registry_pb2.FeatureDef) -> FeatureSpec:
    try:
        dtype = DType(msg.dtype)
    except ValueError:
        raise InvalidArgument(f"feature {msg.name!r}: unknown dtype {msg.dtype}", field="dtype") from None
    return FeatureSpec(
        name=msg.name,
        dtype=dtype,
        nullable=msg.nullable,
        vector_dim=msg.vector_dim,
        description=msg.description,
        transformation=msg.transformation,
        window_seconds=msg.window_seconds,
        source_dependencies=tuple(msg.source_dependencies),
        meaning=msg.meaning,
        owner=msg.owner,
        tags=tuple(sorted(msg.tags.items())),
        max_age_seconds=msg.max_age_seconds,
        allow_nan=msg.allow_nan,
    )


def group_from_proto(msg: registry_pb2.GroupDef) -> GroupSpec:
    keys = []
    for k in msg.entity_keys:
        try:
            keys.append(EntityKeySpec(k.name, KeyType(k.type)))
        except ValueError:
            raise InvalidArgument(f"group {msg.name!r}: entity key {k.name!r} has unknown type {k.type}", field="entity_keys") from None
    return GroupSpec(
        name=msg.name,
        entity_keys=tuple(keys),
        features=tuple(feature_from_proto(f) for f in msg.features),
        source=msg.source,
        owner=msg.owner,
        description=msg.description,
        tags=tuple(sorted(msg.tags.items())),
        max_age_seconds=msg.max_age_seconds,
        sync_interval_seconds=msg.sync_interval_seconds,
        policy=FreshnessPolicy(
            max_lag_seconds=msg.policy.max_lag_seconds, max_stale_ratio=msg.policy.max_stale_ratio,
            max_missed_refreshes=msg.policy.max_missed_refreshes, min_consistency=msg.policy.min_consistency,
            on_inconsistency=msg.policy.on_inconsistency or "report",
        ),
    )


def change_to_proto(change: Change) -> registry_pb2.ApplyChange:
    return registry_pb2.ApplyChange(group=change.group, feature=change.feature, action=change.action, version=change.version, detail=change.detail)


def apply_result_to_proto(result: ApplyResult) -> registry_pb2.ApplyResponse:
    return registry_pb2.ApplyResponse(revision=result.revision, changes=[change_to_proto(c) for c in result.changes])


def version_to_proto(group: str, feature: str, info: VersionInfo, pinned_by: list[str] | None = None) -> registry_pb2.VersionInfo:
    return registry_pb2.VersionInfo(
        group=group,
        feature=feature,
        version=info.version,
        state=int(info.state),
        slot=info.slot,
        behaviour_hash=info.behaviour_hash,
        created_micros=info.created_micros,
        first_published_micros=info.first_published_micros or 0,
        retired_micros=info.retired_micros or 0,
        definition=feature_to_proto(info.spec),
        pinned_by=pinned_by or [],
    )


def group_info_to_proto(info: GroupInfo) -> registry_pb2.GroupInfo:
    msg = registry_pb2.GroupInfo(definition=group_to_proto(info.spec))
    for feature in info.spec.features:
        serving = info.serving_version(feature.name)
        versions = info.versions.get(feature.name, ())
        msg.features.add(
            definition=feature_to_proto(feature),
            serving_version=serving.version if serving else 0,
            versions=[v.version for v in versions],
            version_info=[version_to_proto(info.spec.name, feature.name, v) for v in versions],
        )
    return msg


def history_to_proto(rows: list[HistoryRow]) -> list[registry_pb2.HistoryEntry]:
    return [
        registry_pb2.HistoryEntry(
            at_micros=r.at_micros, revision=r.revision, group=r.group_name, feature=r.feature, version=r.version,
            action=r.action, detail=r.detail, actor=r.actor, reason=r.reason,
        )
        for r in rows
    ]


def manifest_to_proto(info: ManifestInfo) -> registry_pb2.Manifest:
    return registry_pb2.Manifest(
        name=info.name,
        version=info.version,
        created_micros=info.created_micros,
        created_by=info.created_by,
        description=info.description,
        features=[registry_pb2.PinnedFeature(group=p.group, feature=p.feature, version=p.version, behaviour_hash=p.behaviour_hash) for p in info.features],
    )


def incident_to_proto(i: Incident) -> registry_pb2.Incident:
    return registry_pb2.Incident(
        id=i.id, opened_micros=i.opened_micros, group=i.group, kind=i.kind, publish_id=i.publish_id, detail=i.detail,
        resolved_micros=i.resolved_micros or 0, resolved_by=i.resolved_by, resolution=i.resolution,
    )


_SYNC_FIELDS = ("group", "started_micros", "ended_micros", "outcome", "error", "snapshot", "rows_read", "values_written",
                "rows_rejected", "watermark_micros", "sync_delay_micros", "forced", "id")


def sync_run_to_proto(run: SyncRunRecord) -> registry_pb2.SyncRun:
    return registry_pb2.SyncRun(**{f: getattr(run, f) for f in _SYNC_FIELDS}, reason_counts=run.reason_counts)


def sync_run_from_proto(msg: registry_pb2.SyncRun) -> SyncRunRecord:
    return SyncRunRecord(**{f: getattr(msg, f) for f in _SYNC_FIELDS}, reason_counts=dict(msg.reason_counts))
