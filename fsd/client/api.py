"""The Python client: typed reads as numpy/Arrow, chunked Arrow publishes, registry and monitor calls.

Every method returns fsd's own records (fsd.domain) and raises fsd's own errors (fsd.errors), never protobuf
messages or grpc.RpcError, so callers need not know the wire."""
from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

import grpc

from fsd.domain import (
    ApplyResult, BackupInfo, Deployment, FeatureValues, GroupInfo, GroupSpec, History, Incident, ManifestInfo, OfflineWrite,
    OnlineFeatures, PublishMode, PublishResult, PublishStatus, ReplicaInfo, ResyncRequest, StatusReport, SyncRun, ValidationResult, VersionInfo,
)
from fsd.client.inputs import data_table
from fsd.errors import FsdError, error_for_code
from fsd.wire import monitor as monitor_wire
from fsd.wire import registry as registry_wire
from fsd.wire import serving as serving_wire
from fsd.wire.services import stubs

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Client", "OnlineFeatures", "FeatureValues", "DEFAULT_TARGET", "table_to_ipc"]

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_CHUNK_ROWS = 20_000
T = TypeVar("T")


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
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write(table)
    return sink.getvalue().to_pybytes()


EntityRows = object  # dict of columns, list of row dicts, pandas DataFrame or Arrow table


def entity_columns(entities: object) -> dict[str, list[object]]:
    """Entity rows in any of the accepted shapes -> {key column: list of values}."""
    if entities is None:
        raise error_for_code("INVALID_ARGUMENT", "entities: give the entity rows (e.g. {'customer_id': [1, 2]})", "entities")
    if hasattr(entities, "column_names") and hasattr(entities, "to_pydict"):  # Arrow table / record batch
        columns = entities.to_pydict()  # type: ignore[attr-defined]
    elif hasattr(entities, "to_dict") and hasattr(entities, "columns") and hasattr(entities, "dtypes"):  # pandas DataFrame
        columns = {str(c): entities[c].tolist() for c in entities.columns}  # type: ignore[index,union-attr]
    elif isinstance(entities, Mapping):
        columns = {str(k): (v.tolist() if hasattr(v, "tolist") else list(v)) for k, v in entities.items()}  # type: ignore[union-attr]
    elif isinstance(entities, Sequence) and not isinstance(entities, (str, bytes)):
        rows = list(entities)
        if not all(isinstance(r, Mapping) for r in rows):
            raise error_for_code("INVALID_ARGUMENT", "entities: a list must hold one dict per entity row, e.g. [{'customer_id': 1}]", "entities")
        names = list(dict.fromkeys(k for r in rows for k in r))
        missing = next(((i, n) for i, r in enumerate(rows) for n in names if n not in r), None)
        if missing is not None:
            raise error_for_code("INVALID_ARGUMENT", f"entities: row {missing[0]} has no {missing[1]!r}", "entities")
        columns = {n: [r[n] for r in rows] for n in names}
    else:
        raise error_for_code("INVALID_ARGUMENT", f"entities: {type(entities).__name__} is not a dict, list of dicts, DataFrame or Arrow table",
                             "entities")
    return {k: [v.item() if hasattr(v, "item") else v for v in values] for k, values in columns.items()}


def entity_table(entities: object) -> pa.Table:
    """Entity rows for point-in-time retrieval as an Arrow table (keys and a tz-aware event_timestamp)."""
    import pyarrow as pa

    try:
        if isinstance(entities, Mapping):
            return pa.table(dict(entities))
        if isinstance(entities, Sequence) and not isinstance(entities, (str, bytes)):
            if not all(isinstance(row, Mapping) for row in entities):
                raise error_for_code("INVALID_ARGUMENT", "entity rows: a list must hold one dict per entity row", "entity_df")
            return pa.Table.from_pylist(list(entities))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise error_for_code("INVALID_ARGUMENT", f"entity rows do not convert to a table: {str(exc)[:200]}", "entity_df") from None
    return data_table(entities, "entity_df")  # an Arrow table or batch, a pandas DataFrame; anything else refused


def as_of_micros(as_of: object) -> int | None:
    """A tz-aware datetime, an ISO time with an offset, or epoch µs; a naive time is refused (it would be read in
    this machine's zone)."""
    from datetime import datetime

    if as_of is None:
        return None
    if isinstance(as_of, int):
        return as_of
    if isinstance(as_of, str):
        try:
            as_of = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
        except ValueError:
            raise error_for_code("INVALID_ARGUMENT", f"as_of {as_of[:60]!r} is not an ISO 8601 time", "as_of") from None
    if isinstance(as_of, datetime):
        if as_of.tzinfo is None or as_of.utcoffset() is None:
            raise error_for_code("INVALID_ARGUMENT", "as_of has no UTC offset; a naive time is ambiguous", "as_of")
        return int(as_of.timestamp() * 1_000_000)
    raise error_for_code("INVALID_ARGUMENT", f"as_of: {type(as_of).__name__} is not a datetime, ISO string or epoch µs", "as_of")


def rpc_error(exc: grpc.RpcError, target: str) -> FsdError:
    """The fsd error a failed call stands for, with the daemon's status code and message."""
    code = exc.code().name if hasattr(exc, "code") and exc.code() is not None else "UNKNOWN"  # type: ignore[attr-defined]
    details = (exc.details() if hasattr(exc, "details") else "") or ""  # type: ignore[attr-defined]
    lowered = details.lower()
    if code == "UNAVAILABLE" and (not details or any(s in lowered for s in ("failed to connect", "connection refused", "dns resolution"))):
        details = f"no fsd daemon at {target} ({details or 'connection refused'}) — start `fsd serve` or set --target / FSD_TARGET"
    field = None
    try:
        field = next((str(v) for k, v in (exc.trailing_metadata() or ()) if k == "fsd-field"), None)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - not every RpcError carries metadata (e.g. a refused connection)
        field = None
    return error_for_code(code, details, field)


class Client:
    """A connection to one fsd daemon."""

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float = 30.0,
        max_message_bytes: int = 64 * 1024 * 1024,
        token: str | None = None,
        tls_ca: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
    ) -> None:
        """target defaults to $FSD_TARGET, then 127.0.0.1:50051; token/tls_* default to $FSD_TOKEN, $FSD_TLS_CA,
        $FSD_TLS_CERT, $FSD_TLS_KEY (TLS when a CA is given)."""
        self.target = target or os.environ.get("FSD_TARGET") or DEFAULT_TARGET
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
            channel = grpc.secure_channel(self.target, credentials, options=options)
        else:
            channel = grpc.insecure_channel(self.target, options=options)
        self._raw_channel = channel
        self._stubs = stubs(grpc.intercept_channel(channel, _BearerToken(token)) if token else channel)
        self.timeout = timeout

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._raw_channel.close()

    def _call(self, method: Callable[..., T], request: object, timeout: float | None = None) -> T:
        try:
            return method(request, timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as exc:
            raise rpc_error(exc, self.target) from None

    def wait_ready(self, timeout: float = 10.0) -> None:
        try:
            grpc.channel_ready_future(self._raw_channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise error_for_code("UNAVAILABLE", f"no fsd daemon answered at {self.target} within {timeout:g} s") from None

    # --- serving ---

    def get_features(self, features: Sequence[str] | None = None, entities: EntityRows = None, *, manifest: str = "") -> OnlineFeatures:
        """Serve features for entity rows.

        features: "group:feature" (the SERVING version) or "group:feature@N"; or leave them out and name a
        `manifest` ("name" or "name@N") to get exactly the versions it pins. entities: a dict of key column ->
        values (lists or numpy arrays), a list of dicts (Feast's entity rows), a pandas DataFrame or an Arrow
        table of key columns. The result's to_arrow() / to_pandas() / to_dict() put the key columns first.
        """
        columns = entity_columns(entities)
        request = serving_wire.get_features_request(list(features or ()), columns, manifest)
        return serving_wire.online_features(self._call(self._stubs.serving.GetFeatures, request), columns)

    def get_historical_features(self, entity_df: EntityRows, features: Sequence[str] | None = None, *, manifest: str = "",
                                as_of: object = None, engine: str = "local") -> pa.Table:
        """The point-in-time training table: for each entity row (its keys and a UTC-aware `event_timestamp`), each
        feature's value as it was knowable then — never a later value or another version — with `<ref>:status`
        (PRESENT, STALE, NOT_FOUND). Unpinned features use the version SERVING now; a `manifest` pins its versions.
        as_of (a tz-aware datetime, an ISO time with offset, or epoch µs) also hides values created after it.
        Reads the deployment's offline store (the daemon reports where). engine: "local" (default), "duckdb" or
        "spark" (fsd.offline.engines), the same answer on each. Returns an Arrow table (.to_pandas())."""
        from fsd.offline.store import OfflineStore
        from fsd.client.training import historical_features

        refs = self._training_refs(features, manifest)
        store = OfflineStore(self.get_deployment().offline_root)
        table, _ = historical_features(self, store, entity_table(entity_df), refs, as_of_micros=as_of_micros(as_of), with_status=True,
                                       engine=engine)
        return table

    def create_dataset(self, entity_df: EntityRows, out: str, features: Sequence[str] | None = None, *, manifest: str = "",
                       name: str | None = None, as_of: object = None, engine: str = "local",
                       memory_budget_mib: int = 1024) -> dict[str, object]:
        """get_historical_features written to the Parquet file `out`, with its manifest beside it
        (`<out>.manifest.json`: versions, definition hashes, offline snapshots, status counts); with `name`, also
        registers a serving manifest pinning the same versions. Returns that manifest document. entity_df may
        also be a Parquet file's path, which the local engine streams; past memory_budget_mib it joins out of core."""
        from fsd.offline.store import OfflineStore
        from fsd.client.training import create_dataset, entity_source

        refs = self._training_refs(features, manifest)
        store = OfflineStore(self.get_deployment().offline_root)
        rows = entity_source(entity_df) if isinstance(entity_df, (str, os.PathLike)) else entity_table(entity_df)
        return create_dataset(self, store, rows, refs, out, name=name, as_of_micros=as_of_micros(as_of), engine=engine,
                              memory_budget=memory_budget_mib << 20)

    def _training_refs(self, features: Sequence[str] | None, manifest: str) -> list[str]:
        if features and manifest:
            raise error_for_code("INVALID_ARGUMENT", "name features or a manifest, not both", "features")
        if manifest:
            return [p.ref for p in self.get_manifest(manifest).features]
        if not features:
            raise error_for_code("INVALID_ARGUMENT", "name at least one feature (group:feature[@N]) or a manifest", "features")
        return list(features)

    def publish(
        self,
        group: str,
        table: pa.Table | object,
        *,
        publish_id: str | None = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        first_sequence: int = 0,
        on_chunk: Callable[[int], None] | None = None,
        feature_versions: Mapping[str, int] | None = None,
        mode: str = "REFRESH",
        snapshot_id: str = "",
        resume: bool = False,
    ) -> PublishResult:
        """Stream table in chunks; a retry with the same publish_id skips chunks that are already durable.

        feature_versions names the version a column carries (needed for PENDING versions); others write SERVING.
        mode: INITIAL, REFRESH, BACKFILL or CORRECTION. resume: ask the daemon which chunks of publish_id are
        durable and send only the rest (after an interruption).
        """
        pid = publish_id or uuid.uuid4().hex
        PublishMode.of(mode)  # refused before anything is sent
        table = data_table(table)
        if "event_timestamp" not in table.column_names:  # the group may name its event-time column otherwise
            spec = self.get_group(group).spec
            if spec.timestamp_field in table.column_names:
                table = table.rename_columns(["event_timestamp" if c == spec.timestamp_field else c for c in table.column_names])
        skip_before = 0
        if resume and publish_id:
            status = self.publish_status(publish_id)
            skip_before = status.last_durable_sequence + 1 if status.known else 0

        import pyarrow as pa

        def chunks() -> Iterator[object]:
            batches = table.to_batches(max_chunksize=chunk_rows) or [pa.RecordBatch.from_pylist([], schema=table.schema)]
            for offset, batch in enumerate(batches):
                sequence = first_sequence + offset
                if sequence < skip_before and offset < len(batches) - 1:
                    continue  # durable already; the last chunk is always sent so the stream is never empty
                yield serving_wire.publish_chunk(pid, group, sequence, table_to_ipc(batch), feature_versions or {}, mode, snapshot_id)
                if on_chunk is not None:
                    on_chunk(batch.num_rows)

        return serving_wire.publish_result(self._call(self._stubs.serving.Publish, chunks(), self.timeout * 20))

    def push_events(self, group: str, events: object, *, push_id: str | None = None, chunk_rows: int = 50_000) -> PublishResult:
        """Raw events for a group with an event source (entity keys, a UTC-aware event_timestamp, the declared event
        columns; an Arrow table or batch, or a pandas DataFrame): the daemon appends them durably to the offline event
        log and folds them into its computed features before it answers. A retry with the same push_id skips the
        chunks already durable. Returns accepted rows and per-row rejections (late_correction, timestamp_in_future ...)."""
        pid = push_id or uuid.uuid4().hex
        table = data_table(events, "events")

        def chunks() -> Iterator[object]:
            batches = table.to_batches(max_chunksize=chunk_rows)
            for sequence, part in enumerate(batches or [table]):  # an empty table still sends one chunk: the stream names the group
                yield serving_wire.push_chunk(pid, group, sequence, table_to_ipc(part))

        return serving_wire.publish_result(self._call(self._stubs.serving.PushEvents, chunks(), self.timeout * 20))

    def publish_status(self, publish_id: str) -> PublishStatus:
        return serving_wire.publish_status(self._call(self._stubs.serving.PublishStatus, serving_wire.publish_status_request(publish_id)))

    # --- registry ---

    def apply(
        self, groups: Sequence[GroupSpec], *, applied_by: str = "", reason: str = "", expected_revision: int | None = None
    ) -> ApplyResult:
        """Apply atomically; with expected_revision, refuse if the registry changed since that revision (a plan)."""
        request = registry_wire.apply_request(list(groups), applied_by, reason, expected_revision)
        return registry_wire.apply_result(self._call(self._stubs.registry.Apply, request))

    def plan(self, groups: Sequence[GroupSpec]) -> ApplyResult:
        """What apply would do; `revision` is the registry revision the plan was made against."""
        return registry_wire.apply_result(self._call(self._stubs.registry.Plan, registry_wire.apply_request(list(groups))))

    def history(self, group: str, feature: str = "") -> History:
        return registry_wire.history_from_proto(self._call(self._stubs.registry.History, registry_wire.history_request(group=group, feature=feature)))

    def promote(self, group: str, feature: str, version: int, *, actor: str = "", reason: str = "", force: bool = False) -> VersionInfo:
        request = registry_wire.version_request(group, feature, version, actor, reason, force)
        return registry_wire.version_from_proto(self._call(self._stubs.registry.Promote, request))

    def retire(self, group: str, feature: str, version: int, *, actor: str = "", reason: str = "", force: bool = False) -> VersionInfo:
        request = registry_wire.version_request(group, feature, version, actor, reason, force)
        return registry_wire.version_from_proto(self._call(self._stubs.registry.Retire, request))

    def create_manifest(self, name: str, features: Sequence[str], *, created_by: str = "", description: str = "") -> ManifestInfo:
        request = registry_wire.create_manifest_request(name=name, features=list(features), created_by=created_by, description=description)
        return registry_wire.manifest_from_proto(self._call(self._stubs.registry.CreateManifest, request))

    def get_manifest(self, name: str) -> ManifestInfo:
        return registry_wire.manifest_from_proto(self._call(self._stubs.registry.GetManifest, registry_wire.get_manifest_request(name=name)))

    def list_manifests(self) -> list[ManifestInfo]:
        response = self._call(self._stubs.registry.ListManifests, registry_wire.list_manifests_request())
        return [registry_wire.manifest_from_proto(m) for m in response.manifests]

    def list_groups(self) -> list[GroupInfo]:
        response = self._call(self._stubs.registry.ListGroups, registry_wire.list_groups_request())
        return [registry_wire.group_info_from_proto(g) for g in response.groups]

    def get_group(self, name: str) -> GroupInfo:
        return registry_wire.group_info_from_proto(self._call(self._stubs.registry.GetGroup, registry_wire.get_group_request(name=name)))

    def record_offline_write(self, write: OfflineWrite) -> int:
        """Records an offline write's scope in the registry's history; returns the registry revision."""
        return self._call(self._stubs.registry.RecordOfflineWrite, registry_wire.offline_write_to_proto(write)).revision

    def incidents(self, include_resolved: bool = False) -> list[Incident]:
        response = self._call(self._stubs.registry.ListIncidents, registry_wire.list_incidents_request(include_resolved=include_resolved))
        return [registry_wire.incident_from_proto(i) for i in response.incidents]

    def resolve_incident(self, incident_id: int, *, resolved_by: str = "", resolution: str = "") -> Incident:
        request = registry_wire.resolve_incident_request(id=incident_id, resolved_by=resolved_by, resolution=resolution)
        return registry_wire.incident_from_proto(self._call(self._stubs.registry.ResolveIncident, request))

    def record_sync_run(self, run: SyncRun) -> SyncRun:
        return registry_wire.sync_run_from_proto(self._call(self._stubs.registry.RecordSyncRun, registry_wire.sync_run_to_proto(run)))

    def sync_runs(self, group: str = "", limit: int = 50) -> list[SyncRun]:
        response = self._call(self._stubs.registry.ListSyncRuns, registry_wire.list_sync_runs_request(group=group, limit=limit))
        return [registry_wire.sync_run_from_proto(r) for r in response.runs]

    def backup(self, name: str) -> BackupInfo:
        return registry_wire.backup_from_proto(self._call(self._stubs.registry.Backup, registry_wire.backup_request(name=name), self.timeout * 10))

    def get_deployment(self) -> Deployment:
        """The daemon's deployment: its offline root, engines, version and codec."""
        return registry_wire.deployment_from_proto(self._call(self._stubs.registry.GetDeployment, registry_wire.deployment_request()))

    def delete_manifest(self, name: str, *, actor: str = "", reason: str = "") -> int:
        """Delete every version of a manifest; returns the registry revision."""
        return self._call(self._stubs.registry.DeleteManifest, registry_wire.delete_manifest_request(name=name, actor=actor, reason=reason)).revision

    def delete_group(self, name: str, *, force: bool = False, purge_offline: bool = False, actor: str = "", reason: str = "") -> str:
        """Delete a feature group (refused while a manifest pins it, unless force); its online values are purged,
        its offline data kept unless purge_offline. Returns what was removed."""
        request = registry_wire.delete_group_request(name=name, force=force, purge_offline=purge_offline, actor=actor, reason=reason)
        return self._call(self._stubs.registry.DeleteGroup, request, self.timeout * 10).detail

    def replicas(self) -> tuple[list[ReplicaInfo], int]:
        """The replicas sharing the daemon's registry, and the registry's current epoch."""
        return registry_wire.replicas_from_proto(self._call(self._stubs.registry.ListReplicas, registry_wire.replicas_request()))

    # --- monitor ---

    def status(self, group: str = "") -> StatusReport:
        return monitor_wire.status_report(self._call(self._stubs.monitor.GetStatus, monitor_wire.status_request(group)))

    def validate(self, group: str, *, sample: int = 1000, skew: bool = False, action: str = "", feature: str = "",
                 versions: Sequence[int] = ()) -> ValidationResult:
        request = monitor_wire.validate_request(group, sample, skew, action, feature, list(versions))
        return monitor_wire.validation_result(self._call(self._stubs.monitor.Validate, request, self.timeout * 10))

    def set_blocked(self, group: str, feature: str, version: int, blocked: bool) -> None:
        self._call(self._stubs.monitor.SetBlocked, monitor_wire.set_blocked_request(group, feature, version, blocked))

    def pending_resyncs(self) -> list[ResyncRequest]:
        return monitor_wire.resync_requests(self._call(self._stubs.monitor.PendingResyncs, monitor_wire.pending_resyncs_request()))

    def ack_resync(self, request_id: int) -> None:
        self._call(self._stubs.monitor.AckResync, monitor_wire.ack_resync_request(id=request_id))

