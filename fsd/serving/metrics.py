"""Prometheus metrics of one daemon: RPC latency histograms, publish outcomes by reason, freshness signals."""
from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable, Iterator

import grpc
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, Info, generate_latest
from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from fsd.monitor.freshness import FreshnessMonitor
from fsd.serving.interceptors import WrappingInterceptor
from fsd.domain import PublishResult

logger = logging.getLogger(__name__)

_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


class _SignalCollector(Collector):
    def __init__(self, monitor: FreshnessMonitor, consistency: Callable[[], dict[tuple[str, str, int], tuple[float | None, float | None]]],
                 dropped_samples: Callable[[], int]) -> None:
        self._monitor = monitor
        self._consistency = consistency
        self._dropped_samples = dropped_samples

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily("fsd_freshness_lag_seconds", "now - newest online event time", labels=["group"])
        since = GaugeMetricFamily("fsd_seconds_since_sync", "now - last successful sync", labels=["group"])
        missed = GaugeMetricFamily("fsd_missed_refreshes", "sync intervals elapsed without a successful sync", labels=["group"])
        delay = GaugeMetricFamily("fsd_sync_delay_seconds", "offline availability -> online acknowledgement, last sync", labels=["group"])
        stale = GaugeMetricFamily("fsd_group_stale", "1 while a freshness policy breach marks the group stale", labels=["group"])
        ratio = GaugeMetricFamily("fsd_stale_entity_ratio", "sampled share of values older than max age", labels=["group", "feature", "version"])
        # A figure that was not measured has no sample at all: an absent series, never a made-up 0 or 1.
        for name, s in self._monitor.signals().items():
            if s.freshness_lag_seconds is not None:
                lag.add_metric([name], s.freshness_lag_seconds)
            if s.seconds_since_sync is not None:
                since.add_metric([name], s.seconds_since_sync)
            missed.add_metric([name], s.missed_refreshes)
            if s.sync_delay_seconds is not None:
                delay.add_metric([name], s.sync_delay_seconds)
            stale.add_metric([name], 1.0 if s.stale else 0.0)
            for sample in s.samples.values():
                if sample.ratio is not None:
                    ratio.add_metric([name, sample.feature, str(sample.version)], sample.ratio)
        consistency = GaugeMetricFamily("fsd_consistency_ratio", "last validation: online equal to offline", labels=["group", "feature", "version"])
        skew = GaugeMetricFamily("fsd_psi", "population stability index, offline vs served (absent: not enough data)", labels=["group", "feature", "version"])
        for (group, feature, version), (value, psi) in self._consistency().items():
            if value is not None:
                consistency.add_metric([group, feature, str(version)], value)
            if psi is not None:
                skew.add_metric([group, feature, str(version)], psi)
        dropped = CounterMetricFamily("fsd_skew_samples_dropped", "sampled GetFeatures rows dropped because the skew decoder fell behind")
        dropped.add_metric([], self._dropped_samples())
        yield from (lag, since, missed, delay, stale, ratio, consistency, skew, dropped)


class Metrics:
    """A private CollectorRegistry, so several daemons in one process (tests, demo) never collide."""

    def __init__(self, request_histogram: bool = True) -> None:
        """request_histogram=False: the writer of a multi-worker node, whose workers time every call (add_workers)."""
        self.registry = CollectorRegistry()
        if request_histogram:
            self.request_seconds = Histogram("fsd_request_seconds", "RPC latency in seconds", ["method", "code"], buckets=_BUCKETS,
                                             registry=self.registry)
        self.worker_restarts = Counter("fsd_worker_restarts", "serving workers restarted after they died", ["worker"], registry=self.registry)
        self.publish_rows = Counter("fsd_publish_rows", "published rows by outcome", ["group", "outcome"], registry=self.registry)
        self.publish_reasons = Counter("fsd_publish_rule_values", "values counted by publish rule reason code", ["group", "reason"], registry=self.registry)
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        from fsd import __version__, codec

        Info("fsd_build", "fsd version, wire contract and codec", registry=self.registry).info(
            {"version": __version__, "proto": "fsd.v1", "codec": "native" if codec.NATIVE else "python"})
        self._server: ThreadingHTTPServer | None = None

    def watch(self, monitor: FreshnessMonitor, consistency: Callable[[], dict[tuple[str, str, int], tuple[float | None, float | None]]],
              dropped_samples: Callable[[], int]) -> None:
        self.registry.register(_SignalCollector(monitor, consistency, dropped_samples))

    def add_workers(self, directory: str) -> None:
        """Serve the metrics the workers write into `directory` (prometheus-client's multiprocess mode), summed
        over workers, beside this process's own."""
        from prometheus_client.multiprocess import MultiProcessCollector

        MultiProcessCollector(self.registry, path=directory)

    def record_publish(self, stats: PublishResult) -> None:
        self.publish_rows.labels(stats.group, "accepted").inc(stats.rows_accepted)
        self.publish_rows.labels(stats.group, "rejected").inc(stats.rows_rejected)
        for reason, count in stats.reason_counts.items():
            self.publish_reasons.labels(stats.group, reason).inc(count)

    def serve(self, port: int, host: str = "127.0.0.1", page: Callable[[], str] | None = None,
              authorized: Callable[[str | None], bool] = lambda header: True) -> int:
        """Start the HTTP endpoint (port 0: any free port): /metrics for Prometheus, and the status page at / (both
        need the read scope when tokens are on: Prometheus sends it with `authorization: {credentials: TOKEN}`).
        Returns the bound port."""
        registry = self.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                if path in ("/metrics", "/", "/status") and not authorized(self.headers.get("Authorization")):
                    # with tokens on, /metrics names groups too: both need the read scope
                    self._send(401, "text/plain; charset=utf-8", b"this page needs a token with the read scope (Authorization: Bearer ...)")
                    return
                if path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
                elif path in ("/", "/status") and page is not None:
                    try:
                        body = page().encode("utf-8")
                    except Exception:  # noqa: BLE001 - the page must never take the endpoint down
                        logger.exception("status page failed")
                        self._send(500, "text/plain; charset=utf-8", b"status page failed (see the daemon log)")
                        return
                    self._send(200, "text/html; charset=utf-8", body)
                else:
                    self._send(404, "text/plain; charset=utf-8", b"not found: try / (status page) or /metrics")

            def _send(self, code: int, kind: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fsd-metrics-http", daemon=True).start()
        return int(self._server.server_port)

    def stop(self) -> None:
        """Non-blocking: the HTTP server's loop polls every 0.5 s, and shutdown should not wait for it."""
        if self._server is not None:
            threading.Thread(target=self._server.shutdown, name="fsd-metrics-stop", daemon=True).start()


class MetricsInterceptor(WrappingInterceptor):
    """Times every RPC into fsd_request_seconds{method, code}."""

    def __init__(self, metrics: Metrics | WorkerMetrics) -> None:
        super().__init__()
        self._metrics = metrics

    def wrap(self, behaviour: Callable, method: str, streaming: bool) -> Callable:  # type: ignore[type-arg]
        name = method.rsplit("/", 1)[-1]
        histogram = self._metrics.request_seconds
        calls = getattr(self._metrics, "calls", None)  # a worker's own count
        by_code: dict[str, object] = {}  # labelled children, so a call skips prometheus' label lookup

        def wrapped(request, context):  # type: ignore[no-untyped-def]
            began = time.perf_counter()
            code = "OK"
            try:
                return behaviour(request, context)
            except BaseException:
                code = (context.code() or grpc.StatusCode.UNKNOWN).name if hasattr(context, "code") else "ERROR"
                raise
            finally:
                child = by_code.get(code)
                if child is None:
                    child = by_code[code] = histogram.labels(name, code)
                child.observe(time.perf_counter() - began)  # type: ignore[attr-defined]
                if calls is not None:
                    calls.inc()

        return wrapped


class WorkerMetrics:
    """A serving worker's metrics, written to the multiprocess folder its supervisor serves /metrics from
    (PROMETHEUS_MULTIPROC_DIR is set before the worker imports prometheus_client): call latency, as a one-process
    daemon reports it, and calls per worker (the label on-call uses to see that load spreads)."""

    def __init__(self, worker: str) -> None:
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram("fsd_request_seconds", "RPC latency in seconds", ["method", "code"], buckets=_BUCKETS, registry=self.registry)
        self.calls = Counter("fsd_worker_calls", "calls answered (or forwarded) by each serving worker", ["worker"], registry=self.registry).labels(worker)
