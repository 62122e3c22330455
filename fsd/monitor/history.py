"""The last hours of the daemon's own figures, for the status page's charts: freshness lag per group, and serving
QPS and p99 of GetFeatures, sampled every `interval` seconds into a bounded ring (no external time-series store).

Why from the Prometheus registry: the request histogram is already there (summed over workers with --workers), so
the page shows exactly what /metrics would let an alert compute; QPS and p99 come from the counts' differences
between two samples, p99 as the upper bound of the bucket holding the 99th percentile (what histogram_quantile
would give without interpolation). A figure nothing was measured for is absent, never a 0.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

logger = logging.getLogger(__name__)

READ_METHOD = "GetFeatures"


@dataclass(frozen=True, slots=True)
class Sample:
    at_micros: int
    lag_seconds: dict[str, float] = field(default_factory=dict)  # per group with data online
    qps: float | None = None  # GetFeatures calls per second since the previous sample (None: first sample)
    p99_seconds: float | None = None  # None: no call in the interval


def _read_histogram(registry: CollectorRegistry) -> tuple[float, list[tuple[float, float]]]:
    """(GetFeatures calls so far, cumulative bucket counts by upper bound), summed over codes and workers."""
    total = 0.0
    buckets: dict[float, float] = {}
    for family in registry.collect():
        if family.name != "fsd_request_seconds":
            continue
        for s in family.samples:
            if s.labels.get("method") != READ_METHOD:
                continue
            if s.name.endswith("_count"):
                total += s.value
            elif s.name.endswith("_bucket"):
                bound = float(s.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + s.value
    return total, sorted(buckets.items())


def _p99(before: list[tuple[float, float]], after: list[tuple[float, float]]) -> float | None:
    earlier = dict(before)
    deltas = [(bound, count - earlier.get(bound, 0.0)) for bound, count in after]
    total = deltas[-1][1] if deltas else 0.0
    if total <= 0:
        return None
    for bound, cumulative in deltas:
        if cumulative >= 0.99 * total:
            return bound if bound != float("inf") else None
    return None


class MetricHistory:
    """Samples on its own thread; `samples()` is what the page draws. Bounded: `keep` samples."""

    def __init__(self, registry: CollectorRegistry, lags: Callable[[], dict[str, float]], now_micros: Callable[[], int], *,
                 interval_seconds: float = 60.0, keep: int = 360) -> None:
        self._registry = registry
        self._lags = lags
        self._now = now_micros
        self.interval_seconds = interval_seconds
        self._samples: deque[Sample] = deque(maxlen=keep)
        self._last: tuple[float, list[tuple[float, float]], int] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> Sample:
        now = self._now()
        total, buckets = _read_histogram(self._registry)
        qps = p99 = None
        if self._last is not None:
            last_total, last_buckets, last_at = self._last
            seconds = (now - last_at) / 1e6
            if seconds > 0:
                qps = max(0.0, total - last_total) / seconds
                p99 = _p99(last_buckets, buckets)
        self._last = (total, buckets, now)
        taken = Sample(now, dict(self._lags()), qps, p99)
        with self._lock:
            self._samples.append(taken)
        return taken

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fsd-history", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - a chart must never take the daemon down
                logger.exception("metric history sample failed")
            self._stop.wait(self.interval_seconds)


__all__ = ["MetricHistory", "Sample"]
