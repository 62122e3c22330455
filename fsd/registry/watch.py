"""Keeps a replica's registry snapshot current: wakes on every registry NOTIFY and at least every poll interval,
re-reads the epoch, reloads when it moved, heartbeats the replica and keeps (or takes) the background-work lease.
A replica that has not confirmed the registry within the lease is not to serve unpinned reads: `lease_ok`."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from fsd.errors import FsdError
from fsd.registry.registry import Registry
from fsd.registry.store import ReplicaInfo

logger = logging.getLogger(__name__)


class RegistryWatcher:
    def __init__(self, registry: Registry, *, lease_seconds: float, replica_id: str, address: str, shared: bool,
                 poll_seconds: float = 0.25, on_lease: Callable[[bool], None] | None = None, lead: bool = True) -> None:
        self._registry = registry
        self._lead = lead  # False: a serving worker, which confirms the registry but never takes the background-work lease
        self._lease = lease_seconds
        self._shared = shared  # a registry other processes write (PostgreSQL); SQLite is only ever written here
        self._poll = poll_seconds
        self._on_lease = on_lease
        self._id = replica_id
        self.address = address
        self._started = time.time_ns() // 1000
        self._confirmed = time.monotonic()
        self._leader = not shared
        self._lease_state = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fsd-registry-watch", daemon=True)
        self._lease_thread = threading.Thread(target=self._watch_lease, name="fsd-registry-lease", daemon=True)

    @property
    def replica_id(self) -> str:
        return self._id

    def lease_ok(self) -> bool:
        """Whether the registry's state was confirmed within the lease (always, for a registry only this process writes)."""
        return not self._shared or time.monotonic() - self._confirmed <= self._lease

    def confirmed_age(self) -> float:
        return time.monotonic() - self._confirmed

    def is_leader(self) -> bool:
        """Whether this replica runs background work (purges, periodic validation, freshness actions) now."""
        return self._leader and self.lease_ok()

    def start(self) -> None:
        if self._shared:
            self._check_once()
            self._thread.start()
            self._lease_thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        for thread in (self._thread, self._lease_thread):
            if thread.is_alive():
                thread.join(timeout=timeout)

    def _check_once(self) -> None:
        # The state read is only known to be current as of the moment the read began: a slow link must not stretch
        # the time a superseded version may serve beyond the lease, so the lease counts from there.
        began = time.monotonic()
        self._registry.refresh()
        self._confirmed = began
        self._leader = self._lead and self._registry.store.try_lead()
        self._registry.store.heartbeat(ReplicaInfo(self._id, self.address, self._registry.snapshot().epoch, time.time_ns() // 1000,
                                                   self._started, self._leader))

    def _run(self) -> None:
        backoff = 0.1
        failing = False
        while not self._stop.is_set():
            try:
                self._check_once()
                if failing:
                    logger.warning("registry reachable again; epoch %d confirmed", self._registry.snapshot().epoch)
                failing, backoff = False, 0.1
                self._registry.store.wait_for_change(self._poll)
            except FsdError as exc:
                if not failing:
                    logger.error("registry unreachable (%s): serving only pinned reads once the %.1f s lease runs out", exc.message, self._lease)
                failing = True
                self._leader = False
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 1.0)
            except Exception:  # noqa: BLE001 - the watcher must outlive any one failure
                logger.exception("registry watcher failed; retrying")
                self._stop.wait(1.0)

    def _watch_lease(self) -> None:
        """Reports lease changes (health SERVING / NOT_SERVING) promptly, whatever the database connection is doing."""
        while not self._stop.wait(0.05):
            ok = self.lease_ok()
            if ok != self._lease_state:
                self._lease_state = ok
                if self._on_lease is not None:
                    self._on_lease(ok)
