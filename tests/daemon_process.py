"""A real fsd daemon as a subprocess on a free loopback port, for integration tests."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


class DaemonProcess:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, extra_args: list[str] | None = None, workers: int = 1) -> None:
        self.data_dir = data_dir
        self.workers = workers  # > 1: fsd serve --workers N (a supervisor, its writer and N serving processes)
        # Tests default to: any free metrics port, and no promotion gate (the gate's own tests turn it on).
        defaults = {"FSD_SERVER_METRICS_PORT": "0", "FSD_MONITOR_MIN_PROMOTION_CONSISTENCY": "0", "FSD_MONITOR_FRESHNESS_INTERVAL_SECONDS": "0.5"}
        self.env = {**os.environ, **defaults, **(env or {})}
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = data_dir.parent / f"{data_dir.name}-daemon.log"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0, health_tls_ca: str | None = None, health_cert: tuple[str, str] | None = None) -> DaemonProcess:
        self._tls = (health_tls_ca, health_cert)
        port_file = self.data_dir.parent / f"{self.data_dir.name}.port"
        port_file.unlink(missing_ok=True)
        (port_file.parent / f"{port_file.name}.metrics").unlink(missing_ok=True)
        (port_file.parent / f"{port_file.name}.http").unlink(missing_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fsd.cli", "serve", "--data-dir", str(self.data_dir), "--host", "127.0.0.1", "--port", "0",
             "--port-file", str(port_file), *(["--workers", str(self.workers)] if self.workers > 1 else []), *self.extra_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        deadline = time.monotonic() + timeout
        while not port_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}: {self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"daemon did not start: {self.log()}")
            time.sleep(0.02)
        self.port = int(port_file.read_text())
        metrics_file = port_file.parent / f"{port_file.name}.metrics"
        self.metrics_port = int(metrics_file.read_text()) if metrics_file.exists() else 0
        http_file = port_file.parent / f"{port_file.name}.http"
        self.http_port = int(http_file.read_text()) if http_file.exists() else 0  # with --http-port
        self.wait_serving(deadline - time.monotonic())
        return self

    def _channel(self) -> grpc.Channel:
        ca, cert = getattr(self, "_tls", (None, None))
        if ca is None:
            return grpc.insecure_channel(self.target)
        key_pair = (Path(cert[1]).read_bytes(), Path(cert[0]).read_bytes()) if cert else (None, None)
        credentials = grpc.ssl_channel_credentials(Path(ca).read_bytes(), private_key=key_pair[0], certificate_chain=key_pair[1])
        return grpc.secure_channel(self.target, credentials)

    def wait_serving(self, timeout: float) -> None:
        with self._channel() as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + max(timeout, 1.0)
            while True:
                try:
                    if stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("daemon never reported SERVING")
                time.sleep(0.05)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()
