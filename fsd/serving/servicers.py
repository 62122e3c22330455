"""Thin servicers of fsd.v1.FeatureStore and fsd.v1.Registry: convert the request (fsd.wire), call the domain
function, convert the result back. Status handling lives in the error interceptor."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import grpc

from fsd.serving.backup import BackupResult
from fsd.domain import ApplyResult, BackupInfo, Deployment, GroupInfo, PublishResult, PublishStatus, SyncRun
from fsd.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, ResourceExhausted
from fsd.online.base import call_deadline
from fsd.serving.lookup import Lookup
from fsd.monitor.skew import ServedValues
from fsd.domain.durations import format_duration
from fsd.registry.registry import Registry
from fsd.publish.events import EventPusher
from fsd.publish.publisher import Publisher
from fsd.wire import registry as wire
from fsd.wire import serving as serving_wire

MAX_APPLY_FEATURES = 16 * 1024  # per Apply/Plan request, checked before any definition is validated
SYNC_OUTCOMES = ("success", "failed")


def check_sync_run(run: SyncRun) -> None:
    """A sync run record must be one that could have happened."""
    if run.outcome not in SYNC_OUTCOMES:
        raise InvalidArgument(f"outcome must be {' or '.join(SYNC_OUTCOMES)}", field="outcome")
    if run.started_micros <= 0 or run.ended_micros < run.started_micros:
        raise InvalidArgument("ended_micros is before started_micros (or started_micros is not set)", field="ended_micros")
    if run.watermark_micros < 0 or run.sync_delay_micros < 0:
        raise InvalidArgument("watermark_micros and sync_delay_micros must not be negative", field="watermark_micros")
    if len(run.error) > 4000 or len(run.snapshot) > 100_000:
        raise InvalidArgument("error or snapshot is too long", field="error")


def _deadline_guard(context: grpc.ServicerContext) -> Callable[[], None]:
    """Raises DeadlineExceeded once the caller's deadline has passed: long handlers stop instead of working for nobody."""
    def check() -> None:
        remaining = context.time_remaining() if context is not None else None
        if remaining is not None and remaining <= 0:
            raise DeadlineExceeded("the call's deadline passed while its definitions were being checked; nothing was applied")

    return check


MAX_OFFLINE_WRITE_ROWS = 2**53  # a count any store can hold exactly; far beyond one write's rows


class FeatureStoreServicer:
    def __init__(self, lookup: Lookup, registry: Registry, publisher: Publisher, served: ServedValues | None = None,
                 on_published: Callable[[PublishResult], None] | None = None, max_concurrent_publishes: int = 2,
                 lease_ok: Callable[[], bool] = lambda: True, events: EventPusher | None = None, max_chunk_rows: int = 1_000_000) -> None:
        self._events = events
        self._max_chunk_rows = max_chunk_rows
        self._lookup = lookup
        self._lease_ok = lease_ok
        self._served = served
        self._on_published = on_published
        self._publish_slots = threading.BoundedSemaphore(max_concurrent_publishes)
        self._max_publishes = max_concurrent_publishes
        self._registry = registry
        self._publisher = publisher
        self._encoder = serving_wire.ResponseEncoder()

    def GetFeatures(self, raw: bytes, context: grpc.ServicerContext) -> bytes:
        """Takes the request bytes and returns the serialised GetFeaturesResponse (registered with raw requests
        and responses, so the common request never becomes a protobuf object)."""
        with call_deadline(context.time_remaining()):  # an engine on the network answers within it
            fetched = self._lookup.get_features(self._registry.snapshot(), serving_wire.get_request(raw), self._lease_ok())
        if self._served is not None and self._served.wants_sample():
            self._served.offer(fetched)  # the skew sample, decoded later off the request path
        return self._encoder.encode_rows(fetched)

    def Publish(self, request_iterator: Iterator[object], context: grpc.ServicerContext) -> object:
        # Each stream holds a control-pool thread for its whole length; beyond the limit, shed instead of queueing.
        if not self._publish_slots.acquire(blocking=False):
            raise ResourceExhausted(
                f"{self._max_publishes} publishes are already streaming; retry this one later (limits.max_concurrent_publishes)",
                field="publish_id",
            )
        try:
            result = self._publisher.publish_stream(serving_wire.publish_chunks(request_iterator), context.is_active)  # type: ignore[arg-type]
        finally:
            self._publish_slots.release()
        if self._on_published is not None:
            self._on_published(result)
        return serving_wire.publish_response(result)

    def PushEvents(self, request_iterator: Iterator[object], context: grpc.ServicerContext) -> object:
        if self._events is None:
            raise FailedPrecondition("this process does not take PushEvents", field="group")
        if not self._publish_slots.acquire(blocking=False):
            raise ResourceExhausted(
                f"{self._max_publishes} publishes are already streaming; retry this push later (limits.max_concurrent_publishes)", field="push_id",
            )
        try:
            group, push_id, chunks = serving_wire.push_chunks(request_iterator)  # type: ignore[arg-type]
            result = self._events.push(group, chunks, push_id, self._max_chunk_rows)
        finally:
            self._publish_slots.release()
        return serving_wire.publish_response(result)

    def PublishStatus(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        status: PublishStatus = self._publisher.publish_status(request.publish_id)
        return serving_wire.publish_status_response(status)


class RegistryServicer:
    def __init__(self, registry: Registry, deployment: Deployment, on_retire: Callable[[], None] | None = None,
                 backup: Callable[[str], BackupResult] | None = None,
                 on_group_deleted: Callable[[GroupInfo, bool], str] | None = None) -> None:
        self._on_group_deleted = on_group_deleted
        self._deployment = deployment
        self._backup = backup
        self._registry = registry
        self._on_retire = on_retire

    def Apply(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        args = wire.apply_args(request, MAX_APPLY_FEATURES)
        if args.dry_run:
            return self.Plan(request, context)
        result = self._registry.apply(args.groups, args.actor, args.reason, args.expected_revision, deadline=_deadline_guard(context))
        return wire.apply_response(result)

    def Plan(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        args = wire.apply_args(request, MAX_APPLY_FEATURES)
        snapshot = self._registry.snapshot()
        changes = self._registry.plan(args.groups, snapshot, deadline=_deadline_guard(context))
        return wire.apply_response(ApplyResult(snapshot.revision, tuple(changes)))

    def History(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        return wire.history_response(self._registry.history(request.group, request.feature or None))

    def Promote(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        a = wire.version_args(request)
        return wire.version_to_proto(a.group, self._registry.promote(a.group, a.feature, a.version, a.actor, a.reason, a.force))

    def Retire(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        a = wire.version_args(request)
        info = self._registry.retire(a.group, a.feature, a.version, a.actor, a.reason, a.force)
        if self._on_retire is not None:
            self._on_retire()
        return wire.version_to_proto(a.group, info)

    def CreateManifest(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        return wire.manifest_to_proto(self._registry.create_manifest(request.name, list(request.features), request.created_by, request.description))

    def GetManifest(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        return wire.manifest_to_proto(self._registry.snapshot().manifest(request.name))

    def RecordOfflineWrite(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        w = wire.offline_write_from_proto(request)
        if not 0 <= w.rows <= MAX_OFFLINE_WRITE_ROWS:
            raise InvalidArgument(f"rows must be 0 to {MAX_OFFLINE_WRITE_ROWS} (one offline write's row count)", field="rows")
        if w.max_event_micros < w.min_event_micros:
            raise InvalidArgument("max_event_micros is before min_event_micros", field="max_event_micros")
        span = format_duration((w.max_event_micros - w.min_event_micros) // 1_000_000)
        detail = f"{w.rows} rows, event times {w.min_event_micros}..{w.max_event_micros} µs ({span}), snapshot {w.snapshot_id[:200]}"
        return wire.offline_write_ack(revision=self._registry.record_offline_write(w.group, w.feature, w.version, w.kind, detail, w.actor))

    def ListIncidents(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        incidents = self._registry.operations.incidents(request.include_resolved)
        return wire.incidents_response(incidents=[wire.incident_to_proto(i) for i in incidents])

    def ResolveIncident(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        return wire.incident_to_proto(self._registry.operations.resolve_incident(request.id, request.resolved_by, request.resolution))

    def RecordSyncRun(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        run: SyncRun = wire.sync_run_from_proto(request)
        check_sync_run(run)
        self._registry.snapshot().group(run.group)
        return wire.sync_run_to_proto(self._registry.operations.record_sync_run(run))

    def ListSyncRuns(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        runs = self._registry.operations.sync_runs(request.group, request.limit)
        return wire.sync_runs_response(runs=[wire.sync_run_to_proto(r) for r in runs])

    def Backup(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        if self._backup is None:
            raise FailedPrecondition("backups are not available on this store engine", field="name")
        revision = self._registry.snapshot().revision
        result = self._backup(request.name)
        return wire.backup_to_proto(BackupInfo(str(result.path), result.created_micros, revision))

    def ListManifests(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        snapshot = self._registry.snapshot()
        return wire.list_manifests_response([m for _, versions in sorted(snapshot.manifests.items()) for m in versions])

    def ListGroups(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        return wire.list_groups_response([g for _, g in sorted(self._registry.snapshot().groups.items())])

    def GetGroup(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        return wire.group_info_to_proto(self._registry.snapshot().group(request.name))

    def GetDeployment(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        return wire.deployment_to_proto(self._deployment)

    def DeleteManifest(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        revision = self._registry.delete_manifest(request.name, request.actor, request.reason)
        return wire.delete_response(revision=revision, detail=f"manifest {request.name} deleted")

    def DeleteGroup(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        revision, info = self._registry.delete_group(request.name, request.force, request.actor, request.reason)
        detail = self._on_group_deleted(info, request.purge_offline) if self._on_group_deleted is not None else ""
        return wire.delete_response(revision=revision, detail=detail)

    def ListReplicas(self, request, context: grpc.ServicerContext) -> object:  # type: ignore[no-untyped-def]
        return wire.replicas_response(self._registry.store.replicas(), self._registry.store.epoch())
