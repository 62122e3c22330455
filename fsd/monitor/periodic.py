"""Periodic validation: every group, on the monitor's interval, validated and acted on by its policy, by the one
replica that leads background work. A group whose validation fails is logged and the others still run."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from fsd.domain import RegistrySnapshot
from fsd.monitor.actions import PolicyActions, validate_and_act
from fsd.monitor.validator import ConsistencyValidator

logger = logging.getLogger(__name__)


class PeriodicValidation:
    def __init__(self, snapshot: Callable[[], RegistrySnapshot], validator: ConsistencyValidator, actions: PolicyActions,
                 interval_seconds: float, sample: int, is_leader: Callable[[], bool]) -> None:
        self._snapshot = snapshot
        self._validator = validator
        self._actions = actions
        self._interval = interval_seconds
        self._sample = sample
        self._is_leader = is_leader
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fsd-validator", daemon=True)

    def start(self) -> None:
        if self._interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def run_once(self) -> None:
        for group in list(self._snapshot().groups):
            try:
                validate_and_act(self._validator, self._actions, group, sample=self._sample)
            except Exception:  # noqa: BLE001 - one group's failure must not stop the others or the daemon
                logger.exception("periodic validation of %s failed", group)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if self._is_leader():  # one replica validates for all of them
                self.run_once()
