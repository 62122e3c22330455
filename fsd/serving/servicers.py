"""Thin servicers: convert the request, call the domain function, convert the result."""
from __future__ import annotations

import threading
from collections.abc import Callable

import grpc

from fsd.domain import Clock
from fsd.backup import BackupResult
from fsd.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from fsd import codec
from fsd.lookup import LookupLimits, lookup_encoded, lookup_fast
from fsd.online.base import OnlineStore
from fsd.registry.registry import ApplyResult, Registry
from fsd.serving import convert
from fsd.serving.registration import strict_parser
from fsd.serving.wire import ResponseEncoder
from fsd.monitor.skew import ServedValues
from fsd.sync.publisher import Publisher, PublishStats
from fsd.v1 import registry_pb2, registry_pb2_grpc, serving_pb2, serving_pb2_grpc


class FeatureStoreServicer(serving_pb2_grpc.FeatureStoreServicer):
    def __init__(self, store: OnlineStore, registry: Registry, publisher: Publisher, clock: Clock, limits: LookupLimits,
                 served: ServedValues | None = None, on_published: Callable[[PublishStats], None] | None = None,
                 max_concurrent_publishes: int = 2) -> None:
        self._served = served
        self._on_published = on_published
        self._publish_slots = threading.BoundedSemaphore(max_concurrent_publishes)
        self._max_publishes = max_concurrent_publishes
        self._store = store
        self._registry = registry
        self._publisher = publisher
        self._clock = clock
        self._limits = limits
        self._encoder = ResponseEncoder()
        self._parse_get = strict_parser(serving_pb2.GetFeaturesRequest)

    def GetFeatures(self, raw: bytes, context: grpc.ServicerContext) -> bytes:
        """Takes the request bytes and returns the serialised GetFeaturesResponse (registered with raw requests and
        responses). Requests for one group skip protobuf objects altogether (lookup_fast); every other request, and
        every error, goes through the general path."""
        snapshot = self._registry.snapshot()
        # A sampled request's rows go to the skew sample, decoded off the request path.
        keep = self._served.offer if self._served is not None and self._served.wants_sample() else None
        split = codec.split_get_request(raw)
        if split is not None:
            fast = lookup_fast(self._store, snapshot, split, self._clock, self._limits, self._encoder.head, convert.refs_from_wire, keep)
            if fast is not None:
                return self._encoder.encoded_response(*fast)
        request = self._parse_get(raw)
        entities = convert.entities_from_proto(list(request.entities))
        count, columns, served_at, manifest = lookup_encoded(
            self._store, snapshot, entities, list(request.features), self._clock, self._limits, self._encoder.head, request.manifest, keep
        )
        return self._encoder.encoded_response(count, columns, served_at, manifest)

    def Publish(self, request_iterator, context: grpc.ServicerContext) -> serving_pb2.PublishResponse:  # type: ignore[no-untyped-def]
        # Each stream holds a worker thread for its whole length; beyond the limit, shed instead of starving reads.
        if not self._publish_slots.acquire(blocking=False):
            raise ResourceExhausted(
                f"{self._max_publishes} publishes are already streaming; retry this one later (limits.max_concurrent_publishes)",
                field="publish_id",
            )
        try:
            return self._publish(request_iterator, context)
        finally:
            self._publish_slots.release()

    def _publish(self, request_iterator, context: grpc.ServicerContext) -> serving_pb2.PublishResponse:  # type: ignore[no-untyped-def]
        session = None
        for chunk in request_iterator:
            if session is None:
                session = self._publisher.begin(chunk.publish_id, chunk.group, dict(chunk.feature_versions), chunk.mode)
            else:
                if chunk.publish_id and chunk.publish_id != session.stats.publish_id:
                    raise InvalidArgument("publish_id changed within one publish stream", field="publish_id")
                if chunk.group and chunk.group != session.stats.group:
                    raise InvalidArgument("group changed within one publish stream", field="group")
            if not context.is_active():
                break  # the caller gave up (deadline/cancel): write nothing more
            session.write_chunk(chunk.sequence, chunk.arrow_ipc)
        if session is None:
            raise InvalidArgument("publish stream carried no chunks", field="arrow_ipc")
        if self._on_published is not None:
            self._on_published(session.stats)
        return convert.publish_stats_to_proto(session.stats)


    def PublishStatus(self, request: serving_pb2.PublishStatusRequest, context: grpc.ServicerContext) -> serving_pb2.PublishStatusResponse:
        known, sequence, group_id = self._publisher.publish_status(request.publish_id)
        group = next((name for name, g in self._registry.snapshot().groups.items() if g.group_id == group_id), "") if known else ""
        return serving_pb2.PublishStatusResponse(publish_id=request.publish_id, known=known, last_durable_sequence=sequence, group=group)


class RegistryServicer(registry_pb2_grpc.RegistryServicer):
    def __init__(self, registry: Registry, on_retire: Callable[[], None] | None = None,
                 backup: Callable[[str], BackupResult] | None = None) -> None:
        self._backup = backup
        self._registry = registry
        self._on_retire = on_retire

    def Apply(self, request: registry_pb2.ApplyRequest, context: grpc.ServicerContext) -> registry_pb2.ApplyResponse:
        if request.dry_run:
            return self.Plan(request, context)
        groups = [convert.group_from_proto(g) for g in request.groups]
        expected = request.expected_revision if request.has_expected_revision else None
        result = self._registry.apply(groups, actor=request.applied_by, reason=request.reason, expected_revision=expected)
        return convert.apply_result_to_proto(result)

    def Plan(self, request: registry_pb2.ApplyRequest, context: grpc.ServicerContext) -> registry_pb2.ApplyResponse:
        snapshot = self._registry.snapshot()
        groups = [convert.group_from_proto(g) for g in request.groups]
        return convert.apply_result_to_proto(ApplyResult(snapshot.revision, tuple(self._registry.plan(groups, snapshot))))

    def History(self, request: registry_pb2.HistoryRequest, context: grpc.ServicerContext) -> registry_pb2.HistoryResponse:
        feature = request.feature or None
        rows = self._registry.history(request.group, feature)
        info = self._registry.snapshot().group(request.group)
        names = [feature] if feature else [f.name for f in info.spec.features]
        versions = []
        for name in names:
            if name not in info.versions:
                raise NotFound(f"group {request.group!r} has no feature {name!r}", field="feature")
            versions.extend(
                convert.version_to_proto(request.group, name, v, self._registry.manifests_pinning(request.group, name, v.version))
                for v in info.versions[name]
            )
        return registry_pb2.HistoryResponse(entries=convert.history_to_proto(rows), versions=versions)

    def Promote(self, request: registry_pb2.VersionRequest, context: grpc.ServicerContext) -> registry_pb2.VersionInfo:
        info = self._registry.promote(request.group, request.feature, request.version, request.actor, request.reason, request.force)
        return convert.version_to_proto(request.group, request.feature, info)

    def Retire(self, request: registry_pb2.VersionRequest, context: grpc.ServicerContext) -> registry_pb2.VersionInfo:
        info = self._registry.retire(request.group, request.feature, request.version, request.actor, request.reason, request.force)
        if self._on_retire is not None:
            self._on_retire()
        return convert.version_to_proto(request.group, request.feature, info)

    def CreateManifest(self, request: registry_pb2.CreateManifestRequest, context: grpc.ServicerContext) -> registry_pb2.Manifest:
        info = self._registry.create_manifest(request.name, list(request.features), request.created_by, request.description)
        return convert.manifest_to_proto(info)

    def GetManifest(self, request: registry_pb2.GetManifestRequest, context: grpc.ServicerContext) -> registry_pb2.Manifest:
        return convert.manifest_to_proto(self._registry.snapshot().manifest(request.name))

    def RecordOfflineWrite(self, request: registry_pb2.OfflineWrite, context: grpc.ServicerContext) -> registry_pb2.OfflineWriteAck:
        from fsd.registry.durations import format_duration

        span = format_duration((request.max_event_micros - request.min_event_micros) // 1_000_000)
        detail = (
            f"{request.rows} rows, event times {request.min_event_micros}..{request.max_event_micros} µs ({span}), "
            f"snapshot {request.snapshot_id}"
        )
        revision = self._registry.record_offline_write(request.group, request.feature, request.version, request.kind, detail, request.actor)
        return registry_pb2.OfflineWriteAck(revision=revision)

    def ListIncidents(self, request: registry_pb2.ListIncidentsRequest, context: grpc.ServicerContext) -> registry_pb2.ListIncidentsResponse:
        return registry_pb2.ListIncidentsResponse(
            incidents=[convert.incident_to_proto(i) for i in self._registry.operations.incidents(request.include_resolved)]
        )

    def ResolveIncident(self, request: registry_pb2.ResolveIncidentRequest, context: grpc.ServicerContext) -> registry_pb2.Incident:
        return convert.incident_to_proto(self._registry.operations.resolve_incident(request.id, request.resolved_by, request.resolution))

    def RecordSyncRun(self, request: registry_pb2.SyncRun, context: grpc.ServicerContext) -> registry_pb2.SyncRun:
        self._registry.snapshot().group(request.group)
        return convert.sync_run_to_proto(self._registry.operations.record_sync_run(convert.sync_run_from_proto(request)))

    def ListSyncRuns(self, request: registry_pb2.ListSyncRunsRequest, context: grpc.ServicerContext) -> registry_pb2.ListSyncRunsResponse:
        runs = self._registry.operations.sync_runs(request.group, request.limit)
        return registry_pb2.ListSyncRunsResponse(runs=[convert.sync_run_to_proto(r) for r in runs])

    def Backup(self, request: registry_pb2.BackupRequest, context: grpc.ServicerContext) -> registry_pb2.BackupInfo:
        if self._backup is None:
            raise FailedPrecondition("backups are not available on this store engine", field="name")
        revision = self._registry.snapshot().revision
        result = self._backup(request.name)
        return registry_pb2.BackupInfo(path=str(result.path), created_micros=result.created_micros, registry_revision=revision)

    def ListManifests(self, request: registry_pb2.ListManifestsRequest, context: grpc.ServicerContext) -> registry_pb2.ListManifestsResponse:
        snapshot = self._registry.snapshot()
        return registry_pb2.ListManifestsResponse(
            manifests=[convert.manifest_to_proto(m) for _, versions in sorted(snapshot.manifests.items()) for m in versions]
        )

    def ListGroups(self, request: registry_pb2.ListGroupsRequest, context: grpc.ServicerContext) -> registry_pb2.ListGroupsResponse:
        snapshot = self._registry.snapshot()
        return registry_pb2.ListGroupsResponse(groups=[convert.group_info_to_proto(g) for _, g in sorted(snapshot.groups.items())])

    def GetGroup(self, request: registry_pb2.GetGroupRequest, context: grpc.ServicerContext) -> registry_pb2.GroupInfo:
        return convert.group_info_to_proto(self._registry.snapshot().group(request.name))

