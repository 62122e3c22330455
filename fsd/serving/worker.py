"""One serving worker of `fsd serve --workers N`, started fresh by the supervisor (`python -m fsd.serving.worker`;
gRPC core and an open RocksDB do not survive fork). It binds the node's public port beside the other workers
(SO_REUSEPORT) and answers GetFeatures, health and reflection itself; every other call is forwarded to the writer.

Reads never go behind an acknowledged write: before each GetFeatures the worker compares the writer's counters
(fsd.serving.shared_state) with what it has seen, and when a durable write or registry change is newer it first
catches its RocksDB secondary up / reloads its registry snapshot (the wake-up the writer sends down the lifeline
pipe usually has had it done already). The worker exits when its supervisor does (the lifeline pipe closes), so
no worker serves a database nobody updates."""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from fsd.config import Settings, load_settings
from fsd.deployment import open_online_store, open_registry
from fsd.domain import SystemClock
from fsd.online.base import call_deadline
from fsd.registry.watch import RegistryWatcher
from fsd.serving.auth import AuthInterceptor, load_tokens
from fsd.serving.forward import Forwarder, register_forwarded
from fsd.serving.interceptors import ErrorMappingInterceptor
from fsd.serving.lookup import Lookup, LookupLimits
from fsd.serving.metrics import MetricsInterceptor, WorkerMetrics
from fsd.serving.grpc_server import new_server
from fsd.serving.server import SERVICE_NAMES, require_codec, server_credentials
from fsd.serving.shared_state import SharedState
from fsd.wire import services
from fsd.wire import serving as serving_wire
from fsd.wire.serving import refs_from_wire

logger = logging.getLogger(__name__)

EXIT_BIND_FAILED = 2
EXIT_SUPERVISOR_GONE = 3
FOLLOW_WHILE_READ_SECONDS = 1.0  # a wake-up catches up eagerly only while reads arrive


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What the supervisor hands a worker (as JSON in FSD_WORKER_SPEC)."""

    index: int
    settings: dict[str, dict[str, object]]
    port: int
    runtime_dir: str  # the supervisor's private folder: shared state, the writer's socket, secondaries
    writer: str  # unix:PATH of the writer
    lifeline_fd: int  # read end of a pipe the supervisor holds open: EOF means it is gone
    ready_fd: int  # write end of a pipe: one line once serving


class ServingWorker:
    def __init__(self, settings: Settings, spec: WorkerSpec) -> None:
        require_codec()
        self.settings = settings
        self.spec = spec
        self.ident = f"{spec.index}:{os.getpid()}"
        runtime = Path(spec.runtime_dir)
        self.state = SharedState(runtime / "state", create=False)
        data_dir = Path(settings.store.data_dir)
        reader = runtime / f"secondary-{spec.index}"
        reader.mkdir(mode=0o700, exist_ok=True)
        self.store = open_online_store(settings, data_dir, str(reader))
        self.clock = SystemClock()
        self.registry = open_registry(settings, data_dir, self.clock)
        self._seen_writes = -1
        self._last_read = 0.0
        self._catch_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._catch_up = getattr(self.store, "catch_up", None)  # an embedded store's secondary; a shared engine is always current
        self.watcher: RegistryWatcher | None = None
        self.health = health.HealthServicer()
        self.metrics = WorkerMetrics(str(spec.index))
        limits = settings.limits
        self.lookup = Lookup(self.store, self.clock, LookupLimits(limits.max_entities, limits.max_features, limits.max_values), refs_from_wire)
        self.encoder = serving_wire.ResponseEncoder()
        self.forwarder = Forwarder(spec.writer, settings.server.max_message_bytes)
        self._stopped = threading.Event()
        self._server: grpc.Server | None = None
        self.ensure_current()

    # --- reads that never go behind an acknowledged write --------------------------------------------------------

    def ensure_current(self) -> None:
        """Catch up with every durable write and registry change the writer made before now (cheap when none)."""
        if self._catch_up is not None and self.state.writes != self._seen_writes:
            with self._catch_lock:
                wanted = self.state.writes  # read before catching up: the catch-up includes at least these writes
                if wanted != self._seen_writes:
                    self._catch_up()
                    self._seen_writes = wanted
        if self.state.registry_epoch > self.registry.snapshot().epoch:
            with self._refresh_lock:
                if self.state.registry_epoch > self.registry.snapshot().epoch:
                    self.registry.refresh()

    def lease_ok(self) -> bool:
        return self.watcher.lease_ok() if self.watcher is not None else True

    def get_features(self, raw: bytes, context: grpc.ServicerContext) -> bytes:
        self._last_read = time.monotonic()
        self.ensure_current()
        with call_deadline(context.time_remaining()):
            fetched = self.lookup.get_features(self.registry.snapshot(), serving_wire.get_request(raw), self.lease_ok())
        context.set_trailing_metadata((("fsd-worker", self.ident),))
        return self.encoder.encode_rows(fetched)

    # --- life cycle ---------------------------------------------------------------------------------------------

    def _build_server(self) -> grpc.Server:
        s = self.settings.server
        auth = [AuthInterceptor(load_tokens(s.tokens_file))] if s.tokens_file else []
        server = new_server(
            s, [*auth, MetricsInterceptor(self.metrics), ErrorMappingInterceptor()],
            reuseport=True,  # the workers share the port; the supervisor keeps other processes off it
            name=f"fsd-w{self.spec.index}", max_concurrent_publishes=self.settings.limits.max_concurrent_publishes,
        )
        local = {"GetFeatures": grpc.unary_unary_rpc_method_handler(self.get_features)}
        register_forwarded(server, services.FEATURE_STORE, self.forwarder, local)
        register_forwarded(server, services.REGISTRY, self.forwarder)
        register_forwarded(server, services.MONITOR, self.forwarder)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        if s.reflection:
            reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
        return server

    def _set_health(self, status: int) -> None:
        for name in ("", *SERVICE_NAMES):
            self.health.set(name, status)

    def _on_lease(self, ok: bool) -> None:
        self._set_health(health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING)

    def start(self) -> None:
        s = self.settings.server
        if self.registry.store.shared:  # a shared registry: this worker confirms it within the lease, as a replica does
            self.watcher = RegistryWatcher(self.registry, lease_seconds=self.settings.registry.lease_seconds,
                                           replica_id=f"{s.host}:{self.spec.port}/worker-{self.spec.index}", address=f"{s.host}:{self.spec.port}",
                                           shared=True, on_lease=self._on_lease, lead=False)
            self.watcher.start()
        self._server = self._build_server()
        address = f"{s.host}:{self.spec.port}"
        credentials = server_credentials(self.settings)
        try:
            bound = self._server.add_secure_port(address, credentials) if credentials else self._server.add_insecure_port(address)
        except RuntimeError:
            bound = 0
        if bound == 0:
            logger.error("worker %d: cannot listen on %s (in use by a process that does not share it?)", self.spec.index, address)
            sys.exit(EXIT_BIND_FAILED)
        self._server.start()
        self._set_health(health_pb2.HealthCheckResponse.SERVING)
        threading.Thread(target=self._watch_lifeline, name="fsd-worker-lifeline", daemon=True).start()
        os.write(self.spec.ready_fd, f"ready {os.getpid()}\n".encode())
        os.close(self.spec.ready_fd)

    def _watch_lifeline(self) -> None:
        """Blocks on the pipe the supervisor holds: a byte means the writer's counters moved — catch up now, so a
        read rarely waits for it (only while reads arrive: a secondary's catch-up replays the writer's log, work an
        idle worker need not do during a bulk publish; its next read catches up on demand); end of file means the
        supervisor is gone: exit, since nobody updates this node's data any more."""
        try:
            while os.read(self.spec.lifeline_fd, 4096):
                if time.monotonic() - self._last_read <= FOLLOW_WHILE_READ_SECONDS:
                    try:
                        self.ensure_current()
                    except Exception:  # noqa: BLE001 - the read path catches up itself; this only saves it the wait
                        logger.exception("worker %s: catching up failed", self.ident)
        except OSError:
            pass
        if not self._stopped.is_set():
            logger.error("worker %d: the supervisor is gone; exiting", self.spec.index)
            logging.shutdown()
            os._exit(EXIT_SUPERVISOR_GONE)

    def stop(self) -> None:
        """Drain: take no new calls, let in-flight ones (forwarded ones too) finish within the grace period."""
        grace = self.settings.server.grace_seconds
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        if self._server is not None:
            self._server.stop(grace).wait(timeout=grace + 0.5)
        self._stopped.set()
        if self.watcher is not None:
            self.watcher.stop(timeout=1.0)
        self.forwarder.close()

    def wait(self) -> None:
        self._stopped.wait()


def main() -> int:
    raw = json.loads(os.environ["FSD_WORKER_SPEC"])
    spec = WorkerSpec(**raw)
    level = os.environ.get("FSD_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(level=getattr(logging, level, logging.WARNING),
                        format=f"%(asctime)s %(levelname)s %(name)s [worker {spec.index}]: %(message)s")
    worker = ServingWorker(load_settings(env={}, overrides=spec.settings), spec)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    worker.start()
    while not stopping.wait(0.2):
        pass
    worker.stop()
    logging.shutdown()
    os._exit(0)  # every acknowledged write is the writer's; nothing here needs the interpreter's slow exit
    return 0


if __name__ == "__main__":
    sys.exit(main())
