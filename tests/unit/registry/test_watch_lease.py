"""The lease counts from the moment a registry refresh began: a slow but live link cannot stretch the time a
replica may serve a superseded version beyond the lease by one refresh's duration."""
from __future__ import annotations

import time

from fsd.domain import RegistrySnapshot
from fsd.registry.watch import RegistryWatcher


class _SlowRegistry:
    """A registry whose refresh takes `seconds` (a slow PostgreSQL link)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.store = self

    def refresh(self) -> bool:
        time.sleep(self.seconds)
        return False

    def snapshot(self) -> RegistrySnapshot:
        return RegistrySnapshot(1, {})

    def try_lead(self) -> bool:
        return False

    def heartbeat(self, replica: object) -> None:
        pass


def test_the_lease_is_measured_from_the_start_of_a_refresh() -> None:
    watcher = RegistryWatcher(_SlowRegistry(0.3), lease_seconds=0.5, replica_id="r", address="a", shared=True)  # type: ignore[arg-type]
    watcher._check_once()  # noqa: SLF001 - one refresh, as the watch loop runs it
    assert watcher.confirmed_age() >= 0.3  # the state read is as old as the moment the read began
    time.sleep(0.25)
    assert not watcher.lease_ok()  # 0.55 s since the read began: past the lease, though the refresh ended 0.25 s ago
