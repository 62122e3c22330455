"""Background removal of retired feature versions' online values once their retention has passed."""
from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from fsd import codec
from fsd.aggregation.event_log import EVENTS_DIR
from fsd.aggregation.layout import marker_key, tile_prefix
from fsd.domain import GroupInfo
from fsd.errors import FsdError
from fsd.online.base import OnlineStore
from fsd.paths import confine_below
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


def purge_group(store: OnlineStore, offline_root: str, info: GroupInfo, purge_offline: bool) -> str:
    """After a group's deletion: its online rows go; its offline datasets too when asked. Returns what was done."""
    store.delete_prefix(codec.group_prefix(info.group_id))
    store.delete_prefix(tile_prefix(info.group_id))  # computed features' tiles and their progress marker
    store.write_batch([], deletes=[marker_key(info.group_id)])
    done = f"group {info.spec.name} deleted; its online values were purged"
    if purge_offline:
        folder = confine_below(Path(offline_root), Path(offline_root) / info.spec.name)
        shutil.rmtree(folder, ignore_errors=True)
        done += f", and its offline data ({folder})"
    else:
        done += f"; its offline data stays in {Path(offline_root) / info.spec.name}"
        events = confine_below(Path(offline_root), Path(offline_root) / info.spec.name / EVENTS_DIR)
        if events.is_dir():  # kept, but never the event log of a later group of the same name
            events.rename(events.with_name(f"{EVENTS_DIR}.deleted-group-{info.group_id}"))
            done += f" (its event log as {EVENTS_DIR}.deleted-group-{info.group_id})"
    logger.warning("%s", done)
    return done
