"""The latest validation figures per feature version, kept in memory for status and metrics."""
from __future__ import annotations

import threading

from fsd.domain import FeatureValidation


class ValidationLedger:
    """The latest (consistency, PSI) per feature version, for status and metrics; None = not measured."""

    def __init__(self) -> None:
        self._checks: dict[tuple[str, str, int], tuple[float | None, float | None]] = {}
        self._lock = threading.Lock()

    def note(self, group: str, result: FeatureValidation) -> None:
        with self._lock:
            self._checks[(group, result.feature, result.version)] = (result.consistency, result.psi)

    def get(self, group: str, feature: str, version: int) -> tuple[float | None, float | None]:
        with self._lock:
            return self._checks.get((group, feature, version), (None, None))

    def all(self) -> dict[tuple[str, str, int], tuple[float | None, float | None]]:
        with self._lock:
            return dict(self._checks)
