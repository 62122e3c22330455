"""The `fsd sync --watch` scheduler: each group at its own interval, fixed or adaptive, failed runs retried with
backoff, forced-resync requests from the monitor taken first."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from fsd.client import Client
from fsd.domain import Clock, SyncRun
from fsd.offline.store import OfflineStore
from fsd.sync.loader import sync_group


ADAPTIVE_TARGET_SHARE = 0.02  # an adaptive group is synced about when this share of its values has changed


def next_adaptive_interval(current: float, values_written: int, low: float, high: float, max_age: float = 0.0,
                           group_values: int = 0) -> float:
    """The adaptive policy, from the group's observed volatility: the share of its values the last run found
    changed (values_written of group_values, the most one run has written). The next interval aims at about
    ADAPTIVE_TARGET_SHARE of the values changing between runs, moving at most 2x a run: a group where a quarter
    of the values change a minute stays at its lower bound, one where a few in a thousand do backs off. Without
    a size yet, a run that found changes halves the interval and a quiet one doubles it. Always within
    [low, high], and at most half the group's max age, so a value goes online well before it would be STALE."""
    if group_values > 0 and values_written > 0:
        share = values_written / group_values
        interval = current * max(0.5, min(2.0, ADAPTIVE_TARGET_SHARE / share))
    else:
        interval = current / 2 if values_written else current * 2
    if max_age > 0:
        high = min(high, max(low, max_age / 2))
    return max(low, min(high, interval))


@dataclass
class _GroupSchedule:
    interval: float
    next_due: float
    failures: int = 0
    adaptive: tuple[float, float, float] | None = None  # (min, max, max age) when the group's interval is adaptive
    values: int = 0  # the most values one run of the group wrote: its size, as far as the scheduler has seen


class SyncScheduler:
    """Runs each group at its own sync interval — fixed, or adaptive (next_adaptive_interval) — with failed runs
    retried with exponential backoff (capped at the interval)."""

    def __init__(self, client: Client, store: OfflineStore, groups: list[str] | None = None, clock: Callable[[], float] = time.monotonic,
                 min_backoff: float = 1.0, run_clock: Clock | None = None) -> None:
        self._client = client
        self._store = store
        self._only = groups
        self._clock = clock
        self._min_backoff = min_backoff
        self._run_clock = run_clock  # the runs' own "now" (sync_group's clock); None: the wall clock
        self._schedules: dict[str, _GroupSchedule] = {}

    def _refresh_groups(self) -> None:
        for info in self._client.list_groups():
            name = info.spec.name
            if self._only and name not in self._only:
                continue
            spec = info.spec
            adaptive = (float(spec.sync_min_seconds or 60), float(spec.sync_max_seconds or 3600), float(spec.max_age_seconds)) if spec.sync_adaptive else None
            interval = adaptive[0] if adaptive else float(spec.sync_interval_seconds or 300)
            schedule = self._schedules.get(name)
            if schedule is None:
                self._schedules[name] = _GroupSchedule(interval, self._clock(), adaptive=adaptive)
            elif adaptive is None or schedule.adaptive is None:
                schedule.interval, schedule.adaptive = interval, adaptive  # a fixed interval as declared now
            else:
                schedule.adaptive = adaptive

    def interval_of(self, group: str) -> float:
        """The interval the scheduler currently uses for a group (adaptive groups move it run by run)."""
        return self._schedules[group].interval

    def run_due(self, forced: set[str] | None = None) -> list[SyncRun]:
        """Run every group that is due, or has a forced-resync request (from the monitor), once; returns the runs."""
        self._refresh_groups()
        requests = {r.group: r.id for r in self._client.pending_resyncs()}
        forced = set(forced or set()) | set(requests)
        now = self._clock()
        runs = []
        for name, schedule in sorted(self._schedules.items()):
            is_forced = name in (forced or set())
            if schedule.next_due > now and not is_forced:
                continue
            run = sync_group(self._client, self._store, name, full=is_forced, forced=is_forced, clock=self._run_clock)
            runs.append(run)
            if run.outcome == "success":
                if is_forced and name in requests:
                    self._client.ack_resync(requests[name])
                schedule.failures = 0
                if schedule.adaptive is not None:
                    schedule.values = max(schedule.values, run.values_written)
                    schedule.interval = next_adaptive_interval(schedule.interval, run.values_written, *schedule.adaptive,
                                                               group_values=schedule.values)
                schedule.next_due = self._clock() + schedule.interval
            else:
                schedule.failures += 1
                schedule.next_due = self._clock() + min(schedule.interval, self._min_backoff * 2 ** (schedule.failures - 1))
        return runs

    def seconds_until_next(self) -> float:
        if not self._schedules:
            return 1.0
        return max(0.0, min(s.next_due for s in self._schedules.values()) - self._clock())
