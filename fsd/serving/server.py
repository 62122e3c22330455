"""Assembles the daemon: stores, registry, servicers, health, reflection, interceptors, graceful shutdown."""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from fsd.serving.backup import create_backup
from fsd.monitor.history import MetricHistory
from fsd.publish.events import EventPusher
from fsd.serving.grpc_server import new_server
from fsd.config import Settings
from fsd.deployment import open_storage
from fsd.serving.shared_state import SharedState
from fsd.domain import Clock, SystemClock
from fsd.serving.lookup import Lookup, LookupLimits
from fsd.online.base import Backupable, Warmable
from fsd.registry.watch import RegistryWatcher
from fsd.monitor.actions import PolicyActions
from fsd.monitor.periodic import PeriodicValidation
from fsd.monitor.ledger import ValidationLedger
from fsd.monitor.freshness import FreshnessMonitor
from fsd.monitor.skew import ServedValues
from fsd.monitor.validator import ConsistencyValidator
from fsd import codec
from fsd.domain import GroupInfo
from fsd.errors import FailedPrecondition, InvalidArgument
from fsd.serving.auth import AuthInterceptor, load_tokens
from fsd.serving.interceptors import ErrorMappingInterceptor
from fsd.serving.metrics import Metrics, MetricsInterceptor
from fsd.serving.monitor_servicer import MonitorServicer
from fsd.serving.registration import register
from fsd.serving.servicers import FeatureStoreServicer, RegistryServicer
from fsd.publish.publisher import Publisher, PublishLimits
from fsd.publish.retention import RetentionWorker, purge_group
from fsd.wire import services
from fsd.wire.serving import refs_from_wire

logger = logging.getLogger(__name__)

SERVICE_NAMES = services.SERVICE_NAMES


class _DaemonPublishEvents:
    """The one listener of the publish path: the registry records first publishes, the monitor the newest event."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon

    def written(self, slots) -> None:  # type: ignore[no-untyped-def]
        self._daemon.registry.note_published(slots)

    def chunk_done(self, group: str, newest_event_micros: int) -> None:
        self._daemon.freshness.note_written(group, newest_event_micros)

    def incident(self, group: str, kind: str, publish_id: str, detail: str) -> int:
        return self._daemon.registry.operations.open_incident(group, kind, publish_id, detail)


def require_codec() -> None:
    """A daemon never runs the pure-Python codec by accident (it is 3-14x slower): only when asked for."""
    if not codec.NATIVE and not codec.REFERENCE_REQUESTED:
        raise FailedPrecondition(
            "the compiled codec (fsd._native) is not importable — a source checkout is probably shadowing the installed package, "
            "or the package was installed without building its extension; reinstall (pip install .) or set FSD_NO_EXTENSIONS=1 "
            "to run the pure-Python reference deliberately"
        )


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS (and mutual TLS) of the public port, from the settings; None: plaintext."""
    s = settings.server
    if not (s.tls_cert or s.tls_key):
        return None
    if not (s.tls_cert and s.tls_key):
        raise InvalidArgument("server.tls_cert and server.tls_key go together")
    try:
        key, cert = Path(s.tls_key).read_bytes(), Path(s.tls_cert).read_bytes()
        client_ca = Path(s.tls_client_ca).read_bytes() if s.tls_client_ca else None
    except OSError as exc:
        raise InvalidArgument(f"TLS files: {exc}") from None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None)


@dataclass(frozen=True, slots=True)
class WorkerLink:
    """What the writer of a multi-worker node shares with its workers: the counters, the private socket, the
    folder where the workers' metrics are written."""

    state: SharedState
    socket: str  # unix:PATH the writer serves the workers' forwarded calls on
    metrics_dir: str
    public_port: int  # the port the workers share, which names this node
    wake: Callable[[], None]  # tells every worker, through its lifeline pipe, that the counters moved


class Daemon:
    """One serving process over one data directory. `start()` returns the bound port."""

    def __init__(self, settings: Settings, clock: Clock | None = None, workers: WorkerLink | None = None) -> None:
        """workers: this daemon is the writer of `fsd serve --workers N`: it serves the workers' forwarded calls on a
        private socket, tells them of every durable write and registry change before acknowledging it, and serves
        /metrics and the status page for the whole node."""
        require_codec()
        self.workers = workers
        self.settings = settings
        self.clock = clock or SystemClock()
        self.storage = open_storage(settings, self.clock)
        self.data_dir = self.storage.data_dir
        self.store = self.storage.online
        self.registry = self.storage.registry
        self.shared_registry = self.registry.store.shared
        self.deployment = self.storage.info
        if workers is not None:
            listen = getattr(self.store, "add_write_listener", None)
            if listen is not None:  # an embedded store the workers read as secondaries (a shared engine needs no word)
                listen(lambda: (workers.state.bump_writes(), workers.wake()))
            self.registry.add_listener(lambda snapshot: (workers.state.set_registry_epoch(snapshot.epoch), workers.wake()))
            workers.state.set_registry_epoch(self.registry.snapshot().epoch)
        self.watcher: RegistryWatcher | None = None
        logger.info("codec: %s; offline store: %s", "compiled (fsd._native)" if codec.NATIVE else "PURE-PYTHON REFERENCE (FSD_NO_EXTENSIONS=1)",
                    self.deployment.offline_root)
        limits = settings.limits
        self.publisher = Publisher(
            self.store, self.registry.snapshot, self.clock, _DaemonPublishEvents(self),
            PublishLimits(max_future_skew_micros=limits.max_future_skew_seconds * 1_000_000, max_chunk_rows=limits.max_chunk_rows),
        )
        # Computed features keep tiles by read-modify-write: one writer per group at a time, across replicas too.
        self.events = EventPusher(self.store, self.deployment.offline_root, self.registry.snapshot, self.clock,
                                  limits.max_future_skew_seconds * 1_000_000, hold=self.registry.store.hold, shared=self.shared_registry)
        self.retention = RetentionWorker(self.registry, self.publisher, settings.store.retire_retention_seconds, is_leader=self.is_leader)
        m = settings.monitor
        self.metrics = Metrics(request_histogram=workers is None)
        if workers is not None:
            self.metrics.add_workers(workers.metrics_dir)
        self.ledger = ValidationLedger()
        self.actions = PolicyActions(self.registry, self.ledger, is_leader=self.is_leader)
        self.freshness = FreshnessMonitor(
            self.registry.snapshot, lambda group: self.registry.operations.sync_runs(group, limit=200), self.store, self.clock,
            interval_seconds=m.freshness_interval_seconds, sample_rows=m.sample_rows, on_signals=self.actions.on_freshness,
        )
        self.history = MetricHistory(
            self.metrics.registry, lambda: {g: s.freshness_lag_seconds for g, s in self.freshness.signals().items() if s.freshness_lag_seconds is not None},
            self.clock.now_micros, interval_seconds=m.history_interval_seconds,
        )
        self.served = ServedValues(rate=m.served_sample_rate)
        self.offline = self.storage.offline
        self.validator = ConsistencyValidator(self.registry.snapshot, self.store, self.offline, self.clock, self.served,
                                              self.registry.operations.last_validation, m.min_promotion_consistency)
        self.registry.add_promotion_gate(self.validator.promotion_gate)
        self.metrics.watch(self.freshness, self.ledger.all, lambda: self.served.dropped)
        self.metrics_port = 0
        self._periodic = PeriodicValidation(self.registry.snapshot, self.validator, self.actions, m.validate_interval_seconds,
                                            m.validate_sample, self.is_leader)
        self.health = health.HealthServicer()
        self._server: grpc.Server | None = None
        self._errors = ErrorMappingInterceptor()
        self._page_auth: AuthInterceptor | None = None
        self.stopped_cleanly = True
        self._stopped = threading.Event()
        self._stop_warming = threading.Event()
        self._warm_thread: threading.Thread | None = None
        self.port = 0

    def is_leader(self) -> bool:
        """Whether this replica runs background work: always for an embedded registry, else the advisory-lock holder."""
        return self.watcher.is_leader() if self.watcher is not None else not self.shared_registry

    def lease_ok(self) -> bool:
        return self.watcher.lease_ok() if self.watcher is not None else not self.shared_registry

    def _on_lease(self, ok: bool) -> None:
        if self._stopped.is_set() or self._server is None:
            return
        if ok:
            logger.warning("registry confirmed again: SERVING")
        else:
            logger.error("registry not confirmed for %.1f s (registry.lease_seconds): NOT_SERVING, unpinned reads refused",
                         self.settings.registry.lease_seconds)
        self._set_health(health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING)

    def _purge_group(self, info: GroupInfo, purge_offline: bool) -> str:
        return purge_group(self.store, self.deployment.offline_root, info, purge_offline)

    def status_page(self) -> str:
        from fsd.serving.status_page import compose

        return compose(self.deployment, self.registry, self.freshness.current(), self.ledger, self.clock.now_micros(), self.history.samples())

    def _page_authorized(self, header: str | None) -> bool:
        """With tokens on, the page needs one with the read scope (the same tokens as the RPCs)."""
        if not self.settings.server.tokens_file:
            return True
        return bool(header) and self._page_auth is not None and self._page_auth.allows_header(header or "", "read")

    def _build_server(self) -> grpc.Server:
        s = self.settings.server
        limits = self.settings.limits
        server = new_server(
            # With workers, they time every call end to end (forwarded ones included): the writer times none twice.
            s, [*self._auth(), *([MetricsInterceptor(self.metrics)] if self.workers is None else []), self._errors],
            reuseport=False,  # a second daemon on a used port must fail, not share it
            name="fsd", max_concurrent_publishes=limits.max_concurrent_publishes,
        )
        lookup = Lookup(self.store, self.clock, LookupLimits(limits.max_entities, limits.max_features, limits.max_values), refs_from_wire)
        feature_store = FeatureStoreServicer(
            lookup, self.registry, self.publisher, self.served, self.metrics.record_publish, max_concurrent_publishes=limits.max_concurrent_publishes,
            lease_ok=self.lease_ok, events=self.events, max_chunk_rows=limits.max_chunk_rows,
        )
        # GetFeatures takes request bytes (split natively in the common shape) and replies with bytes the read
        # path serialised from rows.
        register(server, services.FEATURE_STORE, feature_store, frozenset({"GetFeatures"}), raw_requests=frozenset({"GetFeatures"}))
        self.monitor_servicer = MonitorServicer(self.registry, self.freshness, self.validator, self.actions, self.ledger, self.clock)
        register(server, services.MONITOR, self.monitor_servicer)
        backup_root = Path(self.settings.store.backup_root or self.data_dir / "backups")
        registry_servicer = RegistryServicer(
            self.registry, self.deployment, on_retire=self.retention.wake,
            backup=(lambda name: create_backup(self.store, self.registry.store, backup_root, name)) if isinstance(self.store, Backupable) else None,
            on_group_deleted=self._purge_group,
        )
        register(server, services.REGISTRY, registry_servicer)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        if s.reflection:
            reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
        return server

    def _auth(self) -> list[grpc.ServerInterceptor]:
        path = self.settings.server.tokens_file
        if not path:
            return []
        self._page_auth = AuthInterceptor(load_tokens(path))
        return [self._page_auth]

    def _credentials(self) -> grpc.ServerCredentials | None:
        return None if self.workers is not None else server_credentials(self.settings)

    def _set_health(self, status: int) -> None:
        for name in ("", *SERVICE_NAMES):
            self.health.set(name, status)

    def start(self) -> int:
        s = self.settings.server
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        self._server = self._build_server()
        address = self.workers.socket if self.workers is not None else f"{s.host}:{s.port}"
        credentials = self._credentials()
        try:
            self.port = self._server.add_secure_port(address, credentials) if credentials else self._server.add_insecure_port(address)
        except RuntimeError:
            self.port = 0
        if self.port == 0:
            raise FailedPrecondition(f"address {address} is in use (or not this machine's); choose --port (0 picks a free one)", field="server.port")
        if self.workers is None and s.host not in ("127.0.0.1", "localhost", "::1", "[::1]") and not (credentials and s.tokens_file):
            logger.warning("LISTENING ON %s WITHOUT %s: anyone who can reach it can read and write", address,
                           " AND ".join(x for x, on in (("TLS", credentials), ("TOKEN AUTH", s.tokens_file)) if not on))
        if self.shared_registry:
            port = self.workers.public_port if self.workers is not None else self.port
            replica = self.settings.registry.replica_id or f"{socket.gethostname()}:{port}"
            self.watcher = RegistryWatcher(self.registry, lease_seconds=self.settings.registry.lease_seconds, replica_id=replica,
                                           address=f"{s.host}:{port}", shared=True, on_lease=self._on_lease)
            self.watcher.start()
        if self.events is not None:  # tiles level with the event log before anything is served; refilled on new versions
            self.events.recover()
            events = self.events
            self.registry.add_listener(lambda snapshot: threading.Thread(target=events.recover, name="fsd-tiles-refill", daemon=True).start())
        self._server.start()
        self.retention.start()
        self.freshness.start()
        self.history.start()
        self._periodic.start()
        if s.metrics:
            try:
                self.metrics_port = self.metrics.serve(s.metrics_port, s.metrics_host, page=self.status_page, authorized=self._page_authorized)
                logger.info("metrics on http://%s:%d/metrics, status page on http://%s:%d/", s.metrics_host, self.metrics_port,
                            s.metrics_host, self.metrics_port)
            except OSError as exc:  # serving features matters more than exporting metrics about it
                logger.error("METRICS AND STATUS PAGE DISABLED: cannot listen on %s:%d (%s); start with --metrics-port 0 (any free "
                             "port) or another port (setting server.metrics_port)", s.metrics_host, s.metrics_port, exc)
        self._set_health(health_pb2.HealthCheckResponse.SERVING)
        if self.settings.store.warm_cache_on_start and isinstance(self.store, Warmable):
            self._warm_thread = threading.Thread(target=self._warm_cache, name="fsd-cache-warm", daemon=True)
            self._warm_thread.start()
        if self.workers is not None:
            logger.info("fsd writer serving its workers on %s (data dir %s, pid %d)", self.workers.socket, self.data_dir, os.getpid())
        else:
            logger.info("fsd serving on %s:%d (data dir %s, pid %d)", s.host, self.port, self.data_dir, os.getpid())
        return self.port

    def _warm_cache(self) -> None:
        began = time.perf_counter()
        try:
            rows, size = self.store.warm_cache(self._stop_warming)
        except Exception:  # noqa: BLE001 - a cold cache is slower, never wrong
            logger.exception("block cache warm-up failed")
            return
        logger.info("block cache warmed with %d rows (%d MiB of cache) in %.2f s", rows, size >> 20, time.perf_counter() - began)

    def wait(self) -> None:
        self._stopped.wait()

    def stop(self, grace: float | None = None) -> bool:
        """Stop taking calls, let in-flight ones finish within grace, then close the stores. Bounded by grace (plus
        a second): a handler still running then is left to the process exit, and the stores stay open under it —
        every acknowledged write is already synced, so nothing acknowledged depends on closing them. Returns
        whether the stop was clean (the caller should then exit the process without waiting for such handlers)."""
        if self._stopped.is_set():
            return self.stopped_cleanly
        grace = self.settings.server.grace_seconds if grace is None else grace
        deadline = time.monotonic() + grace + 1.0
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        if self._server is not None:
            self._server.stop(grace).wait(timeout=grace + 0.5)
        self._stop_warming.set()
        idle = self._errors.in_flight.wait_idle(deadline - time.monotonic())
        if self._warm_thread is not None:
            self._warm_thread.join(timeout=max(0.0, deadline - time.monotonic()))  # it iterates the store, which must outlive it
        if self.watcher is not None:
            self.watcher.stop(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
        self._periodic.stop()
        self.retention.stop(timeout=max(0.0, deadline - time.monotonic()))
        self.freshness.stop(timeout=max(0.0, deadline - time.monotonic()))
        self.history.stop()
        self.served.close()
        self.metrics.stop()
        busy = not idle or (self._warm_thread is not None and self._warm_thread.is_alive()) or self.retention.running or self.freshness.running
        if busy:
            logger.warning("handlers or workers still running %.1f s after SIGTERM (grace %.1f s): exiting without waiting for them",
                           grace + 1.0, grace)
            self.stopped_cleanly = False
        else:
            self.storage.close()
            logger.info("fsd stopped")
        self._stopped.set()
        return self.stopped_cleanly
