"""The Python client: typed reads as numpy/Arrow, chunked Arrow publishes, registry calls."""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import grpc
import numpy as np
import pyarrow as pa

from fsd.domain import GroupSpec, ValueStatus
from fsd.serving import convert
from fsd.v1 import monitor_pb2, monitor_pb2_grpc, registry_pb2, registry_pb2_grpc, serving_pb2, serving_pb2_grpc

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_CHUNK_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class FeatureValues:
    """One served column: values are placeholders (0, "", b"") wherever is_null or status is not PRESENT/STALE."""

    ref: str
    group: str
    feature: str
    version: int
    values: object
    is_null: np.ndarray
    statuses: np.ndarray
    event_time_micros: np.ndarray

    def status_names(self) -> list[str]:
        return [ValueStatus(int(s)).name if s else "UNSPECIFIED" for s in self.statuses]


@dataclass(frozen=True, slots=True)
class OnlineFeatures:
    entity_count: int
    served_at_micros: int
    features: dict[str, FeatureValues]
    manifest: str = ""

    def __getitem__(self, ref: str) -> FeatureValues:
        return self.features[ref]

    def to_arrow(self) -> pa.Table:
        """One value column per ref (null unless a value is PRESENT or STALE and not null), plus ref + ':status'."""
        columns: dict[str, pa.Array] = {}
        for ref, f in self.features.items():
            has_value = ((f.statuses == ValueStatus.PRESENT) | (f.statuses == ValueStatus.STALE)) & ~f.is_null
            mask = ~has_value
            if isinstance(f.values, np.ndarray) and f.values.ndim == 2:
                items = [None if m else row.tolist() for row, m in zip(f.values, mask)]
                columns[ref] = pa.array(items, type=pa.list_(pa.float32()))
            elif isinstance(f.values, np.ndarray):
                columns[ref] = pa.array(f.values, mask=mask)
            else:
                columns[ref] = pa.array([None if m else v for v, m in zip(f.values, mask)])  # type: ignore[call-overload]
            columns[f"{ref}:status"] = pa.array(f.status_names(), type=pa.string())
        return pa.table(columns)


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.StreamUnaryClientInterceptor):
    """Adds 'authorization: Bearer <token>' to every call."""

    def __init__(self, token: str) -> None:
        self._metadata = ("authorization", f"Bearer {token}")

    def _details(self, details):  # type: ignore[no-untyped-def]
        metadata = list(details.metadata or []) + [self._metadata]
        return details._replace(metadata=metadata) if hasattr(details, "_replace") else _Details(details, metadata)

    def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request_iterator)


class _Details(grpc.ClientCallDetails):  # type: ignore[misc]
    def __init__(self, base, metadata) -> None:  # type: ignore[no-untyped-def]
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = getattr(base, "wait_for_ready", None)
        self.compression = getattr(base, "compression", None)


def table_to_ipc(table: pa.Table | pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write(table)
    return sink.getvalue().to_pybytes()


class Client:
    """A connection to one fsd daemon. Errors surface as grpc.RpcError with the daemon's status and message."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        timeout: float = 30.0,
        max_message_bytes: int = 64 * 1024 * 1024,
        token: str | None = None,
        tls_ca: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
    ) -> None:
        """token/tls_* default to $FSD_TOKEN, $FSD_TLS_CA, $FSD_TLS_CERT, $FSD_TLS_KEY (TLS when a CA is given)."""
        import os

        token = token if token is not None else os.environ.get("FSD_TOKEN") or None
        tls_ca = tls_ca or os.environ.get("FSD_TLS_CA") or None
        tls_cert = tls_cert or os.environ.get("FSD_TLS_CERT") or None
        tls_key = tls_key or os.environ.get("FSD_TLS_KEY") or None
        options = [("grpc.max_receive_message_length", max_message_bytes), ("grpc.max_send_message_length", max_message_bytes)]
        if tls_ca:
            with open(tls_ca, "rb") as fh:
                root = fh.read()
            chain = key = None
            if tls_cert and tls_key:
                with open(tls_cert, "rb") as fh:
                    chain = fh.read()
                with open(tls_key, "rb") as fh:
                    key = fh.read()
            credentials = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
            channel = grpc.secure_channel(target, credentials, options=options)
        else:
            channel = grpc.insecure_channel(target, options=options)
        self._channel = grpc.intercept_channel(channel, _BearerToken(token)) if token else channel
        self._raw_channel = channel
        self._serving = serving_pb2_grpc.FeatureStoreStub(self._channel)
        self._registry = registry_pb2_grpc.RegistryStub(self._channel)
        self._monitor = monitor_pb2_grpc.MonitorStub(self._channel)
        self.timeout = timeout

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._raw_channel.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        grpc.channel_ready_future(self._raw_channel).result(timeout=timeout)

    # --- serving ---

    def get_features(
        self, features: Sequence[str], entities: Mapping[str, Sequence[object] | np.ndarray], *, manifest: str = ""
    ) -> OnlineFeatures:
        """entities: {key column: values}, e.g. {"customer_id": [1, 2, 3]}; features: "group:feature[@N]".

        With `manifest` ("name" or "name@N"), exactly the versions it pins are served; `features` may then be empty.
        """
        request = serving_pb2.GetFeaturesRequest(
            entities=convert.entities_to_proto(dict(entities)), features=list(features), manifest=manifest
        )
        response = self._serving.GetFeatures(request, timeout=self.timeout)
        return _online_features(response)

    def publish(
        self,
        group: str,
        table: pa.Table,
        *,
        publish_id: str | None = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        first_sequence: int = 0,
        on_chunk: Callable[[int], None] | None = None,
        feature_versions: Mapping[str, int] | None = None,
        mode: str = "REFRESH",
        snapshot_id: str = "",
        resume: bool = False,
    ) -> serving_pb2.PublishResponse:
        """Stream table in chunks; a retry with the same publish_id skips chunks that are already durable.

        feature_versions names the version a column carries (needed for PENDING versions); others write SERVING.
        mode: INITIAL, REFRESH, BACKFILL or CORRECTION. resume: ask the daemon which chunks of publish_id are
        durable and send only the rest (after an interruption).
        """
        pid = publish_id or uuid.uuid4().hex
        mode_value = serving_pb2.PublishMode.Value(mode)
        skip_before = 0
        if resume and publish_id:
            status = self.publish_status(publish_id)
            skip_before = status.last_durable_sequence + 1 if status.known else 0

        def chunks() -> Iterator[serving_pb2.PublishChunk]:
            batches = table.to_batches(max_chunksize=chunk_rows) or [pa.RecordBatch.from_pylist([], schema=table.schema)]
            for offset, batch in enumerate(batches):
                sequence = first_sequence + offset
                if sequence < skip_before and offset < len(batches) - 1:
                    continue  # durable already; the last chunk is always sent so the stream is never empty
                yield serving_pb2.PublishChunk(
                    publish_id=pid, group=group, sequence=sequence, arrow_ipc=table_to_ipc(batch),
                    feature_versions=dict(feature_versions or {}), mode=mode_value, snapshot_id=snapshot_id,
                )
                if on_chunk is not None:
                    on_chunk(batch.num_rows)

        return self._serving.Publish(chunks(), timeout=self.timeout * 20)

    def publish_status(self, publish_id: str) -> serving_pb2.PublishStatusResponse:
        return self._serving.PublishStatus(serving_pb2.PublishStatusRequest(publish_id=publish_id), timeout=self.timeout)

    # --- registry ---

    def apply(
        self, groups: Sequence[GroupSpec], *, applied_by: str = "", reason: str = "", expected_revision: int | None = None
    ) -> registry_pb2.ApplyResponse:
        """Apply atomically; with expected_revision, refuse if the registry changed since that revision (a plan)."""
        request = registry_pb2.ApplyRequest(
            groups=[convert.group_to_proto(g) for g in groups],
            applied_by=applied_by,
            reason=reason,
            expected_revision=expected_revision or 0,
            has_expected_revision=expected_revision is not None,
        )
        return self._registry.Apply(request, timeout=self.timeout)

    def plan(self, groups: Sequence[GroupSpec]) -> registry_pb2.ApplyResponse:
        """What apply would do; `revision` is the registry revision the plan was made against."""
        request = registry_pb2.ApplyRequest(groups=[convert.group_to_proto(g) for g in groups])
        return self._registry.Plan(request, timeout=self.timeout)

    def history(self, group: str, feature: str = "") -> registry_pb2.HistoryResponse:
        return self._registry.History(registry_pb2.HistoryRequest(group=group, feature=feature), timeout=self.timeout)

    def promote(self, group: str, feature: str, version: int, *, actor: str = "", reason: str = "", force: bool = False) -> registry_pb2.VersionInfo:
        request = registry_pb2.VersionRequest(group=group, feature=feature, version=version, actor=actor, reason=reason, force=force)
        return self._registry.Promote(request, timeout=self.timeout)

    def retire(self, group: str, feature: str, version: int, *, actor: str = "", reason: str = "", force: bool = False) -> registry_pb2.VersionInfo:
        request = registry_pb2.VersionRequest(group=group, feature=feature, version=version, actor=actor, reason=reason, force=force)
        return self._registry.Retire(request, timeout=self.timeout)

    def create_manifest(self, name: str, features: Sequence[str], *, created_by: str = "", description: str = "") -> registry_pb2.Manifest:
        request = registry_pb2.CreateManifestRequest(name=name, features=list(features), created_by=created_by, description=description)
        return self._registry.CreateManifest(request, timeout=self.timeout)

    def get_manifest(self, name: str) -> registry_pb2.Manifest:
        return self._registry.GetManifest(registry_pb2.GetManifestRequest(name=name), timeout=self.timeout)

    def record_offline_write(self, write: registry_pb2.OfflineWrite) -> registry_pb2.OfflineWriteAck:
        return self._registry.RecordOfflineWrite(write, timeout=self.timeout)

    def incidents(self, include_resolved: bool = False) -> registry_pb2.ListIncidentsResponse:
        return self._registry.ListIncidents(registry_pb2.ListIncidentsRequest(include_resolved=include_resolved), timeout=self.timeout)

    def resolve_incident(self, incident_id: int, *, resolved_by: str = "", resolution: str = "") -> registry_pb2.Incident:
        request = registry_pb2.ResolveIncidentRequest(id=incident_id, resolved_by=resolved_by, resolution=resolution)
        return self._registry.ResolveIncident(request, timeout=self.timeout)

    def record_sync_run(self, run: registry_pb2.SyncRun) -> registry_pb2.SyncRun:
        return self._registry.RecordSyncRun(run, timeout=self.timeout)

    def sync_runs(self, group: str = "", limit: int = 50) -> registry_pb2.ListSyncRunsResponse:
        return self._registry.ListSyncRuns(registry_pb2.ListSyncRunsRequest(group=group, limit=limit), timeout=self.timeout)

    # --- monitor ---

    def status(self, group: str = "") -> monitor_pb2.StatusResponse:
        return self._monitor.GetStatus(monitor_pb2.StatusRequest(group=group), timeout=self.timeout)

    def validate(self, group: str, *, sample: int = 1000, skew: bool = False, action: str = "", feature: str = "",
                 versions: Sequence[int] = ()) -> monitor_pb2.ValidateResponse:
        request = monitor_pb2.ValidateRequest(group=group, sample=sample, skew=skew, action=action, feature=feature, versions=list(versions))
        return self._monitor.Validate(request, timeout=self.timeout * 10)

    def set_blocked(self, group: str, feature: str, version: int, blocked: bool) -> None:
        self._monitor.SetBlocked(monitor_pb2.SetBlockedRequest(group=group, feature=feature, version=version, blocked=blocked), timeout=self.timeout)

    def pending_resyncs(self) -> monitor_pb2.PendingResyncsResponse:
        return self._monitor.PendingResyncs(monitor_pb2.PendingResyncsRequest(), timeout=self.timeout)

    def ack_resync(self, request_id: int) -> None:
        self._monitor.AckResync(monitor_pb2.AckResyncRequest(id=request_id), timeout=self.timeout)

    def backup(self, name: str) -> registry_pb2.BackupInfo:
        return self._registry.Backup(registry_pb2.BackupRequest(name=name), timeout=self.timeout * 10)

    def list_manifests(self) -> registry_pb2.ListManifestsResponse:
        return self._registry.ListManifests(registry_pb2.ListManifestsRequest(), timeout=self.timeout)

    def list_groups(self) -> registry_pb2.ListGroupsResponse:
        return self._registry.ListGroups(registry_pb2.ListGroupsRequest(), timeout=self.timeout)

    def get_group(self, name: str) -> registry_pb2.GroupInfo:
        return self._registry.GetGroup(registry_pb2.GetGroupRequest(name=name), timeout=self.timeout)


def _online_features(response: serving_pb2.GetFeaturesResponse) -> OnlineFeatures:
    features = {}
    for column in response.features:
        features[column.ref] = FeatureValues(
            ref=column.ref,
            group=column.group,
            feature=column.feature,
            version=column.version,
            values=convert.column_from_proto(column.values),
            is_null=np.asarray(column.is_null, dtype=np.bool_),
            statuses=np.asarray(column.statuses, dtype=np.uint8),
            event_time_micros=np.asarray(column.event_time_micros, dtype=np.int64),
        )
    return OnlineFeatures(response.entity_count, response.served_at_micros, features, response.manifest)
