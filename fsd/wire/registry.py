"""fsd.v1.Registry on the wire: definitions, versions, plans, history, manifests, incidents, sync runs, backups,
both ways (the servicer decodes requests and encodes replies; the client the reverse)."""
from __future__ import annotations

from dataclasses import asdict
from typing import NamedTuple

from fsd.domain import (
    ApplyResult, BackupInfo, Change, Deployment, DType, EntityKeySpec, FeatureSpec, FreshnessPolicy, GroupInfo, GroupSpec, History,
    HistoryEntry, Incident, KeyType, ManifestInfo, OfflineWrite, PinnedFeature, ReplicaInfo, SyncRun, VersionInfo, VersionState,
)
from fsd.domain.aggregation import Aggregation
from fsd.errors import InvalidArgument, ResourceExhausted
from fsd.v1 import registry_pb2

# --- definitions -----------------------------------------------------------------------------------------------


def feature_to_proto(spec: FeatureSpec) -> registry_pb2.FeatureDef:
    return registry_pb2.FeatureDef(
        name=spec.name, dtype=int(spec.dtype), nullable=spec.nullable, vector_dim=spec.vector_dim, description=spec.description,
        transformation=spec.transformation, window_seconds=spec.window_seconds, source_dependencies=list(spec.source_dependencies),
        meaning=spec.meaning, owner=spec.owner, tags=dict(spec.tags), max_age_seconds=spec.max_age_seconds, allow_nan=spec.allow_nan,
        aggregation=None if spec.aggregation is None else registry_pb2.Aggregation(
            function=spec.aggregation.function, column=spec.aggregation.column, window_seconds=spec.aggregation.window_seconds,
            filter=spec.aggregation.filter),
    )


def group_to_proto(spec: GroupSpec) -> registry_pb2.GroupDef:
    return registry_pb2.GroupDef(
        name=spec.name,
        entity_keys=[registry_pb2.EntityKeySpec(name=k.name, type=int(k.type)) for k in spec.entity_keys],
        source=spec.source, owner=spec.owner, description=spec.description, tags=dict(spec.tags),
        max_age_seconds=spec.max_age_seconds, sync_interval_seconds=spec.sync_interval_seconds,
        features=[feature_to_proto(f) for f in spec.features], policy=registry_pb2.FreshnessPolicy(**asdict(spec.policy)),
        timestamp_field=spec.timestamp_field, sync_adaptive=spec.sync_adaptive, sync_min_seconds=spec.sync_min_seconds,
        sync_max_seconds=spec.sync_max_seconds,
        event_columns=[registry_pb2.EventColumn(name=name, dtype=int(dtype)) for name, dtype in spec.event_columns],
        allowed_lateness_seconds=spec.allowed_lateness_seconds,
    )


def feature_from_proto(msg: registry_pb2.FeatureDef) -> FeatureSpec:
    try:
        dtype = DType(msg.dtype)
    except ValueError:
        raise InvalidArgument(f"feature {msg.name[:100]!r}: unknown dtype {msg.dtype}", field="dtype") from None
    return FeatureSpec(
        name=msg.name, dtype=dtype, nullable=msg.nullable, vector_dim=msg.vector_dim, description=msg.description,
        transformation=msg.transformation, window_seconds=msg.window_seconds, source_dependencies=tuple(msg.source_dependencies),
        meaning=msg.meaning, owner=msg.owner, tags=tuple(sorted(msg.tags.items())), max_age_seconds=msg.max_age_seconds,
        allow_nan=msg.allow_nan,
        aggregation=Aggregation(msg.aggregation.function, msg.aggregation.column, msg.aggregation.window_seconds, msg.aggregation.filter)
        if msg.HasField("aggregation") else None,
    )


def group_from_proto(msg: registry_pb2.GroupDef) -> GroupSpec:
    keys = []
    for k in msg.entity_keys:
        try:
            keys.append(EntityKeySpec(k.name, KeyType(k.type)))
        except ValueError:
            raise InvalidArgument(f"group {msg.name[:100]!r}: entity key {k.name[:100]!r} has unknown type {k.type}", field="entity_keys") from None
    p = msg.policy
    return GroupSpec(
        name=msg.name, entity_keys=tuple(keys), features=tuple(feature_from_proto(f) for f in msg.features), source=msg.source,
        owner=msg.owner, description=msg.description, tags=tuple(sorted(msg.tags.items())), max_age_seconds=msg.max_age_seconds,
        sync_interval_seconds=msg.sync_interval_seconds,
        policy=FreshnessPolicy(max_lag_seconds=p.max_lag_seconds, max_stale_ratio=p.max_stale_ratio, max_missed_refreshes=p.max_missed_refreshes,
                               min_consistency=p.min_consistency, on_inconsistency=p.on_inconsistency or "report"),
        timestamp_field=msg.timestamp_field or "event_timestamp", sync_adaptive=msg.sync_adaptive, sync_min_seconds=msg.sync_min_seconds,
        sync_max_seconds=msg.sync_max_seconds, event_columns=tuple((c.name, _dtype(c.dtype, c.name)) for c in msg.event_columns),
        allowed_lateness_seconds=msg.allowed_lateness_seconds,
    )


def _dtype(code: int, name: str) -> DType:
    try:
        return DType(code)
    except ValueError:
        raise InvalidArgument(f"event column {name[:100]!r}: unknown dtype {code}", field="event_columns") from None


class ApplyArgs(NamedTuple):
    groups: list[GroupSpec]
    actor: str
    reason: str
    expected_revision: int | None
    dry_run: bool


def apply_request(groups: list[GroupSpec], applied_by: str = "", reason: str = "", expected_revision: int | None = None,
                  dry_run: bool = False) -> registry_pb2.ApplyRequest:
    return registry_pb2.ApplyRequest(
        groups=[group_to_proto(g) for g in groups], applied_by=applied_by, reason=reason, expected_revision=expected_revision or 0,
        has_expected_revision=expected_revision is not None, dry_run=dry_run,
    )


def apply_args(request: registry_pb2.ApplyRequest, max_features: int) -> ApplyArgs:
    """Limits first: a request over the feature limit is refused before anything in it is validated."""
    total = sum(len(g.features) for g in request.groups)
    if total > max_features:
        raise ResourceExhausted(f"apply declares {total} features, over the limit of {max_features} per request", field="groups")
    groups = [group_from_proto(g) for g in request.groups]
    expected = request.expected_revision if request.has_expected_revision else None
    return ApplyArgs(groups, request.applied_by, request.reason, expected, request.dry_run)


def apply_response(result: ApplyResult) -> registry_pb2.ApplyResponse:
    return registry_pb2.ApplyResponse(
        revision=result.revision,
        changes=[registry_pb2.ApplyChange(group=c.group, feature=c.feature, action=c.action, version=c.version, detail=c.detail)
                 for c in result.changes],
    )


def apply_result(response: registry_pb2.ApplyResponse) -> ApplyResult:
    return ApplyResult(response.revision, tuple(Change(c.group, c.feature, c.action, c.version, c.detail) for c in response.changes))


# --- versions and groups ---------------------------------------------------------------------------------------


def version_to_proto(group: str, info: VersionInfo, pinned_by: list[str] | None = None) -> registry_pb2.VersionInfo:
    return registry_pb2.VersionInfo(
        group=group, feature=info.spec.name, version=info.version, state=int(info.state), slot=info.slot,
        behaviour_hash=info.behaviour_hash, created_micros=info.created_micros, first_published_micros=info.first_published_micros or 0,
        retired_micros=info.retired_micros or 0, definition=feature_to_proto(info.spec), pinned_by=pinned_by or list(info.pinned_by),
    )


def version_from_proto(msg: registry_pb2.VersionInfo) -> VersionInfo:
    return VersionInfo(
        slot=msg.slot, version=msg.version, state=VersionState(msg.state), spec=feature_from_proto(msg.definition),
        behaviour_hash=msg.behaviour_hash, created_micros=msg.created_micros, first_published_micros=msg.first_published_micros or None,
        retired_micros=msg.retired_micros or None, group=msg.group, pinned_by=tuple(msg.pinned_by),
    )


class VersionArgs(NamedTuple):
    group: str
    feature: str
    version: int
    actor: str
    reason: str
    force: bool


def version_request(group: str, feature: str, version: int, actor: str = "", reason: str = "", force: bool = False) -> registry_pb2.VersionRequest:
    return registry_pb2.VersionRequest(group=group, feature=feature, version=version, actor=actor, reason=reason, force=force)


def version_args(request: registry_pb2.VersionRequest) -> VersionArgs:
    return VersionArgs(request.group, request.feature, request.version, request.actor, request.reason, request.force)


def group_info_to_proto(info: GroupInfo) -> registry_pb2.GroupInfo:
    msg = registry_pb2.GroupInfo(definition=group_to_proto(info.spec), group_id=info.group_id)
    for feature in info.spec.features:
        serving = info.serving_version(feature.name)
        versions = info.versions.get(feature.name, ())
        msg.features.add(
            definition=feature_to_proto(feature), serving_version=serving.version if serving else 0, versions=[v.version for v in versions],
            version_info=[version_to_proto(info.spec.name, v) for v in versions],
        )
    return msg


def group_info_from_proto(msg: registry_pb2.GroupInfo) -> GroupInfo:
    spec = group_from_proto(msg.definition)
    versions = {f.definition.name: tuple(version_from_proto(v) for v in f.version_info) for f in msg.features}
    return GroupInfo(msg.group_id, spec, versions)


def list_groups_response(groups: list[GroupInfo]) -> registry_pb2.ListGroupsResponse:
    return registry_pb2.ListGroupsResponse(groups=[group_info_to_proto(g) for g in groups])


# --- history ---------------------------------------------------------------------------------------------------


def history_response(history: History) -> registry_pb2.HistoryResponse:
    return registry_pb2.HistoryResponse(
        entries=[registry_pb2.HistoryEntry(at_micros=e.at_micros, revision=e.revision, group=e.group, feature=e.feature, version=e.version,
                                           action=e.action, detail=e.detail, actor=e.actor, reason=e.reason) for e in history.entries],
        versions=[version_to_proto(v.group, v) for v in history.versions],
    )


def history_from_proto(response: registry_pb2.HistoryResponse) -> History:
    entries = tuple(HistoryEntry(e.at_micros, e.revision, e.group, e.feature, e.version, e.action, e.detail, e.actor, e.reason)
                    for e in response.entries)
    return History(entries, tuple(version_from_proto(v) for v in response.versions))


# --- manifests -------------------------------------------------------------------------------------------------


def manifest_to_proto(info: ManifestInfo) -> registry_pb2.Manifest:
    return registry_pb2.Manifest(
        name=info.name, version=info.version, created_micros=info.created_micros, created_by=info.created_by, description=info.description,
        features=[registry_pb2.PinnedFeature(group=p.group, feature=p.feature, version=p.version, behaviour_hash=p.behaviour_hash)
                  for p in info.features],
    )


def manifest_from_proto(msg: registry_pb2.Manifest) -> ManifestInfo:
    pins = tuple(PinnedFeature(p.group, p.feature, p.version, p.behaviour_hash) for p in msg.features)
    return ManifestInfo(msg.name, msg.version, msg.created_micros, msg.created_by, msg.description, pins)


def list_manifests_response(manifests: list[ManifestInfo]) -> registry_pb2.ListManifestsResponse:
    return registry_pb2.ListManifestsResponse(manifests=[manifest_to_proto(m) for m in manifests])


# --- operational records ---------------------------------------------------------------------------------------


def incident_to_proto(i: Incident) -> registry_pb2.Incident:
    return registry_pb2.Incident(
        id=i.id, opened_micros=i.opened_micros, group=i.group, kind=i.kind, publish_id=i.publish_id, detail=i.detail,
        resolved_micros=i.resolved_micros or 0, resolved_by=i.resolved_by, resolution=i.resolution,
    )


def incident_from_proto(m: registry_pb2.Incident) -> Incident:
    return Incident(m.id, m.opened_micros, m.group, m.kind, m.publish_id, m.detail, m.resolved_micros or None, m.resolved_by, m.resolution)


_SYNC_FIELDS = ("group", "started_micros", "ended_micros", "outcome", "error", "snapshot", "rows_read", "values_written",
                "rows_rejected", "watermark_micros", "sync_delay_micros", "forced", "id")


def sync_run_to_proto(run: SyncRun) -> registry_pb2.SyncRun:
    return registry_pb2.SyncRun(**{f: getattr(run, f) for f in _SYNC_FIELDS}, reason_counts=run.reason_counts)


def sync_run_from_proto(msg: registry_pb2.SyncRun) -> SyncRun:
    return SyncRun(**{f: getattr(msg, f) for f in _SYNC_FIELDS}, reason_counts=dict(msg.reason_counts))


def offline_write_to_proto(w: OfflineWrite) -> registry_pb2.OfflineWrite:
    return registry_pb2.OfflineWrite(**asdict(w))


def offline_write_from_proto(m: registry_pb2.OfflineWrite) -> OfflineWrite:
    return OfflineWrite(m.group, m.feature, m.version, m.kind, m.min_event_micros, m.max_event_micros, m.rows, m.snapshot_id, m.actor)


def backup_to_proto(info: BackupInfo) -> registry_pb2.BackupInfo:
    return registry_pb2.BackupInfo(path=info.path, created_micros=info.created_micros, registry_revision=info.registry_revision)


def backup_from_proto(m: registry_pb2.BackupInfo) -> BackupInfo:
    return BackupInfo(m.path, m.created_micros, m.registry_revision)


def deployment_to_proto(d: Deployment) -> registry_pb2.Deployment:
    return registry_pb2.Deployment(**asdict(d))


def deployment_from_proto(m: registry_pb2.Deployment) -> Deployment:
    return Deployment(m.offline_root, m.store_engine, m.registry_kind, m.fsd_version, m.codec_native, m.proto_version, m.data_dir)


def replicas_response(replicas: list[ReplicaInfo], epoch: int) -> registry_pb2.ListReplicasResponse:
    return registry_pb2.ListReplicasResponse(replicas=[registry_pb2.Replica(**asdict(r)) for r in replicas], registry_epoch=epoch)


def replicas_from_proto(m: registry_pb2.ListReplicasResponse) -> tuple[list[ReplicaInfo], int]:
    return [ReplicaInfo(r.id, r.address, r.epoch_confirmed, r.heartbeat_micros, r.started_micros, r.leader) for r in m.replicas], m.registry_epoch


# request builders the client uses (one line each, kept here so the client never names a generated type)
list_groups_request = registry_pb2.ListGroupsRequest
get_group_request = registry_pb2.GetGroupRequest
history_request = registry_pb2.HistoryRequest
create_manifest_request = registry_pb2.CreateManifestRequest
get_manifest_request = registry_pb2.GetManifestRequest
list_manifests_request = registry_pb2.ListManifestsRequest
list_incidents_request = registry_pb2.ListIncidentsRequest
resolve_incident_request = registry_pb2.ResolveIncidentRequest
list_sync_runs_request = registry_pb2.ListSyncRunsRequest
backup_request = registry_pb2.BackupRequest
deployment_request = registry_pb2.GetDeploymentRequest
replicas_request = registry_pb2.ListReplicasRequest
delete_manifest_request = registry_pb2.DeleteManifestRequest
delete_group_request = registry_pb2.DeleteGroupRequest
delete_response = registry_pb2.DeleteResponse
incidents_response = registry_pb2.ListIncidentsResponse
sync_runs_response = registry_pb2.ListSyncRunsResponse
offline_write_ack = registry_pb2.OfflineWriteAck
