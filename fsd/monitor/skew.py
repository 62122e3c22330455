"""Training/serving skew: a bounded sample of recently served values per feature version, and PSI.

PSI (population stability index) over 10 bins cut at the offline (expected) distribution's deciles:
  PSI = Σ (actual% − expected%) · ln(actual% / expected%), with 0.0001 as the floor of an empty bin.
Threshold documented and used here: PSI > 0.2 means a significant shift (0.1–0.2 moderate, < 0.1 none).
"""
from __future__ import annotations

import random
import threading
from collections import deque

import numpy as np

from fsd.domain import DType
from fsd.lookup import LookupResult

PSI_THRESHOLD = 0.2
MIN_SAMPLES = 50
_NUMERIC = (DType.INT64, DType.DOUBLE, DType.FLOAT, DType.BOOL)


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """PSI of actual against expected; -1 when either side has too few values to say anything."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    expected, actual = expected[np.isfinite(expected)], actual[np.isfinite(actual)]
    if len(expected) < MIN_SAMPLES or len(actual) < MIN_SAMPLES:
        return -1.0
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1) / len(expected)
    a = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1) / len(actual)
    e, a = np.maximum(e, 1e-4), np.maximum(a, 1e-4)
    return float(np.sum((a - e) * np.log(a / e)))


class ServedValues:
    """Keeps up to `capacity` served PRESENT values per numeric feature version, from a sampled share of requests."""

    def __init__(self, rate: float = 0.01, capacity: int = 5000) -> None:
        self._rate = rate
        self._capacity = capacity
        self._values: dict[int, deque[float]] = {}
        self._lock = threading.Lock()

    def wants_sample(self) -> bool:
        """Whether this request should be kept (the hot path pays one random() per request)."""
        return self._rate > 0 and random.random() < self._rate

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
        with self._lock:
            return np.asarray(self._values.get(slot, ()), dtype=np.float64)
