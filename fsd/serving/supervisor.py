"""`fsd serve --workers N`: one node, every core. The supervisor runs the writer (a full Daemon on a private Unix
socket: the only process that writes the online store and the registry, and the one serving /metrics and the
status page for the node) and N serving workers started fresh (fsd.serving.worker) that share the public port.

Life cycle: a worker that dies is restarted (its in-flight calls fail UNAVAILABLE; the port keeps serving through
the others); when the supervisor dies, its workers see their lifeline pipe close and exit at once; SIGTERM
drains every worker within the grace period, then the writer. The port is reserved for this node with an
abstract-namespace socket named after it, so a second `fsd serve --workers` cannot join the workers' SO_REUSEPORT
group, and a one-process daemon cannot bind it either (it never sets SO_REUSEPORT)."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fsd.config import Settings, worker_count
from fsd.domain import Clock
from fsd.errors import FailedPrecondition, Unavailable
from fsd.serving.server import Daemon, WorkerLink
from fsd.serving.shared_state import SharedState
from fsd.serving.worker import EXIT_BIND_FAILED, WorkerSpec

logger = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 120.0
RESTART_BACKOFF_SECONDS = (0.2, 1.0, 5.0)


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen | None = None  # type: ignore[type-arg]
    lifeline: int = -1  # write end held open by the supervisor: a byte is a wake-up, its closing the end
    restarts: int = 0
    started: float = field(default_factory=time.monotonic)


def _reserve(host: str, port: int) -> tuple[int, socket.socket]:
    """The public port (a free one for port 0) and the abstract socket that reserves it for this node."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    if port == 0:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host.strip("[]"), 0))
            port = int(probe.getsockname()[1])
    guard = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        guard.bind(f"\0fsd-serve:{host}:{port}")
    except OSError:
        guard.close()
        raise FailedPrecondition(f"address {host}:{port} is served by another fsd serve --workers; choose --port (0 picks a free one)",
                                 field="server.port") from None
    return port, guard


class Supervisor:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.count = worker_count(settings.server)
        self.port, self._guard = _reserve(settings.server.host, settings.server.port)
        self.runtime = Path(tempfile.mkdtemp(prefix="fsd-serve-"))  # 0700: the writer's socket, the counters, metrics
        (self.runtime / "metrics").mkdir(mode=0o700)
        self.state = SharedState(self.runtime / "state", create=True)
        self._wake_lock = threading.Lock()  # a lifeline fd is never written while it is being closed or replaced
        self._workers = [_Worker(i) for i in range(self.count)]  # before the writer exists: its writes wake them
        link = WorkerLink(self.state, f"unix:{self.runtime / 'writer.sock'}", str(self.runtime / "metrics"), self.port, self._wake)
        try:
            self.daemon = Daemon(settings, clock, workers=link)
        except BaseException:
            self._cleanup()
            raise
        self.link = link
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self.stopped_cleanly = True

    @property
    def metrics_port(self) -> int:
        return self.daemon.metrics_port

    def _wake(self) -> None:
        """One byte down every lifeline: the worker catches up now rather than on its next read. A full pipe
        already holds a wake-up; a worker that is gone is the watch loop's business."""
        with self._wake_lock:
            for worker in self._workers:
                if worker.lifeline >= 0:
                    try:
                        os.write(worker.lifeline, b"!")
                    except OSError:
                        pass

    def _set_lifeline(self, worker: _Worker, fd: int) -> None:
        with self._wake_lock:
            if worker.lifeline >= 0:
                os.close(worker.lifeline)
            worker.lifeline = fd

    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process is not None and w.process.poll() is None]

    def _spawn(self, worker: _Worker) -> None:
        lifeline_r, lifeline_w = os.pipe()
        os.set_blocking(lifeline_w, False)  # a wake-up never blocks the writer
        ready_r, ready_w = os.pipe()
        spec = WorkerSpec(worker.index, dataclasses.asdict(self.settings), self.port, str(self.runtime), self.link.socket, lifeline_r, ready_w)
        env = {**os.environ, "FSD_WORKER_SPEC": json.dumps(dataclasses.asdict(spec)), "PROMETHEUS_MULTIPROC_DIR": self.link.metrics_dir}
        try:
            process = subprocess.Popen([sys.executable, "-m", "fsd.serving.worker"], env=env, pass_fds=(lifeline_r, ready_w), stdin=subprocess.DEVNULL)
        finally:
            os.close(lifeline_r)
            os.close(ready_w)
        worker.process, worker.started = process, time.monotonic()
        self._set_lifeline(worker, lifeline_w)
        try:
            self._await_ready(worker, ready_r)
        finally:
            os.close(ready_r)

    def _await_ready(self, worker: _Worker, ready_r: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        line = b""
        while time.monotonic() < deadline:
            readable, _, _ = select.select([ready_r], [], [], 0.1)
            if readable:
                chunk = os.read(ready_r, 64)
                line += chunk
                if b"\n" in line or not chunk:
                    break
        if line.startswith(b"ready"):
            return
        process = worker.process
        assert process is not None
        code = process.poll()
        if code is None:
            process.kill()
            process.wait()
        if code == EXIT_BIND_FAILED:
            raise FailedPrecondition(f"address {self.settings.server.host}:{self.port} is in use (or not this machine's); choose --port "
                                     "(0 picks a free one)", field="server.port")
        raise Unavailable(f"serving worker {worker.index} did not start (exit code {code}); see its log lines above")

    def start(self) -> int:
        """The writer, then every worker; returns the public port once all of them serve."""
        try:
            self.daemon.start()
            for worker in self._workers:
                self._spawn(worker)
        except BaseException:
            self.stop(grace=1.0)
            raise
        threading.Thread(target=self._watch, name="fsd-supervisor-watch", daemon=True).start()
        logger.info("fsd serving on %s:%d with %d workers (writer pid %d)", self.settings.server.host, self.port, self.count, os.getpid())
        return self.port

    def _watch(self) -> None:
        """Restart a worker that died (with a short backoff when it keeps dying)."""
        while not self._stopping.wait(0.1):
            for worker in self._workers:
                process = worker.process
                if process is None or process.poll() is None:
                    continue
                with self._lock:
                    if self._stopping.is_set():
                        return
                    self._set_lifeline(worker, -1)
                    quick = time.monotonic() - worker.started < 10
                    worker.restarts = worker.restarts + 1 if quick else 1
                    logger.error("serving worker %d (pid %d) exited with %s; restarting", worker.index, process.pid, process.returncode)
                    self.daemon.metrics.worker_restarts.labels(str(worker.index)).inc()
                    self._stopping.wait(RESTART_BACKOFF_SECONDS[min(worker.restarts, len(RESTART_BACKOFF_SECONDS)) - 1])
                    if self._stopping.is_set():
                        return
                    try:
                        self._spawn(worker)
                    except Exception:  # noqa: BLE001 - keep trying; the other workers serve meanwhile
                        logger.exception("restarting serving worker %d failed", worker.index)

    def wait(self) -> None:
        self._stopped.wait()

    def stop(self, grace: float | None = None) -> bool:
        """SIGTERM every worker (each drains within the grace period), then stop the writer; True when clean."""
        grace = self.settings.server.grace_seconds if grace is None else grace
        if self._stopping.is_set():
            self._stopped.wait()
            return self.stopped_cleanly
        self._stopping.set()
        with self._lock:
            running = [w.process for w in self._workers if w.process is not None and w.process.poll() is None]
            for process in running:
                process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace + 2.0
            for process in running:
                try:
                    code = process.wait(timeout=max(0.1, deadline - time.monotonic()))
                    self.stopped_cleanly &= code == 0
                except subprocess.TimeoutExpired:
                    logger.warning("serving worker pid %d did not drain within %.1f s; killing it", process.pid, grace)
                    process.kill()
                    process.wait()
                    self.stopped_cleanly = False
            self.stopped_cleanly &= self.daemon.stop(grace)
            for worker in self._workers:
                self._set_lifeline(worker, -1)
        self._cleanup()
        self._stopped.set()
        return self.stopped_cleanly

    def _cleanup(self) -> None:
        self.state.close()
        self._guard.close()
        shutil.rmtree(self.runtime, ignore_errors=True)
