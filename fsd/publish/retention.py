"""Background removal of retired feature versions' online values once their retention has passed."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from fsd.errors import FsdError
from fsd.registry.registry import Registry
from fsd.publish.publisher import Publisher

logger = logging.getLogger(__name__)


class RetentionWorker:
    """Wakes every `interval` seconds (or when told a version was retired) and purges what is due."""

    def __init__(self, registry: Registry, publisher: Publisher, retention_seconds: float, interval_seconds: float = 30.0,
                 is_leader: Callable[[], bool] = lambda: True) -> None:
        self._is_leader = is_leader  # with replicas, one of them purges for all
        self._registry = registry
        self._publisher = publisher
        self._retention_micros = int(retention_seconds * 1_000_000)
        self._interval = interval_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fsd-retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def run_once(self) -> int:
        purged = 0
        if not self._is_leader():
            return 0
        for group_id, slot in self._registry.retired_to_purge(self._retention_micros):
            rows = self._publisher.purge_slot(group_id, slot)
            self._registry.note_purged(slot)
            logger.info("purged retired version slot %d from %d rows of group %d", slot, rows, group_id)
            purged += 1
        return purged

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except FsdError as exc:
                logger.error("retention purge failed: %s", exc.message)
            self._wake.wait(self._interval)
            self._wake.clear()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()
