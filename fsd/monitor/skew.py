"""Training/serving skew: a bounded sample of recently served values per feature version, and PSI.

PSI (population stability index) over 10 bins cut at the offline (expected) distribution's deciles:
  PSI = Σ (actual% − expected%) · ln(actual% / expected%), with 0.0001 as the floor of an empty bin.
Threshold documented and used here: PSI > 0.2 means a significant shift (0.1–0.2 moderate, < 0.1 none).
"""
from __future__ import annotations

import logging
import random
import threading
from collections import deque

import numpy as np

from fsd.domain import PSI_THRESHOLD, DType
from fsd.serving.lookup import FetchedRows, LookupResult, decode_rows

logger = logging.getLogger(__name__)

__all__ = ["PSI_THRESHOLD", "ServedValues", "psi"]
MIN_SAMPLES = 50
_NUMERIC = (DType.INT64, DType.DOUBLE, DType.FLOAT, DType.BOOL)


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float | None:
    """PSI of actual against expected; None (not measured) when either side has too few values to say anything."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    expected, actual = expected[np.isfinite(expected)], actual[np.isfinite(actual)]
    if len(expected) < MIN_SAMPLES or len(actual) < MIN_SAMPLES:
        return None
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1) / len(expected)
    a = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1) / len(actual)
    e, a = np.maximum(e, 1e-4), np.maximum(a, 1e-4)
    return float(np.sum((a - e) * np.log(a / e)))


class ServedValues:
    """Keeps up to `capacity` served PRESENT values per numeric feature version, from a sampled share of requests.

    Sampled requests hand over their fetched rows (offer); a background thread decodes them, because decoding
    on the request path made the sampled 1% the slowest requests (≈400 µs in the daemon, the whole p99 tail
    of GetFeatures 1 × 10). values() first drains what is pending, so a reader sees every sample offered before.
    """

    def __init__(self, rate: float = 0.01, capacity: int = 5000, max_pending: int = 256) -> None:
        self._rate = rate
        self._capacity = capacity
        self._values: dict[int, deque[float]] = {}
        self._lock = threading.Lock()
        self._pending: deque[FetchedRows] = deque()
        self._max_pending = max_pending
        self._drain_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._worker: threading.Thread | None = None
        self.dropped = 0  # samples refused because the decoder fell behind

    def wants_sample(self) -> bool:
        """Whether this request should be kept (the hot path pays one random() per request)."""
        return self._rate > 0 and random.random() < self._rate

    def offer(self, fetched: FetchedRows) -> None:
        """Queue a sampled request's rows (cheap: the request path only appends)."""
        if len(self._pending) >= self._max_pending or self._closed:
            self.dropped += 1
            return
        self._pending.append(fetched)
        if self._worker is None:
            with self._drain_lock:
                if self._worker is None:
                    self._worker = threading.Thread(target=self._run, name="fsd-served-sample", daemon=True)
                    self._worker.start()
        self._wake.set()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait()
            self._wake.clear()
            self._drain()

    def _drain(self) -> None:
        with self._drain_lock:
            while self._pending:
                try:
                    self.observe(decode_rows(self._pending.popleft()))
                except Exception:  # noqa: BLE001 - a sample that cannot be decoded must not stop sampling or its readers
                    logger.exception("decoding a served-values sample failed")

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def observe(self, result: LookupResult) -> None:
        for item in result.features:
            if item.feature.dtype not in _NUMERIC:
                continue
            keep = (item.statuses == 1) & ~item.is_null
            if keep.any():
                self.add(item.feature.slot, np.asarray(item.values)[keep])

    def add(self, slot: int, values: np.ndarray) -> None:
        with self._lock:
            bucket = self._values.setdefault(slot, deque(maxlen=self._capacity))
            bucket.extend(np.asarray(values, dtype=np.float64).tolist())

    def values(self, slot: int) -> np.ndarray:
        self._drain()
        with self._lock:
            return np.asarray(self._values.get(slot, ()), dtype=np.float64)
