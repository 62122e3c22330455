"""Freshness signals per group: lag, time since sync, missed refreshes, stale-entity ratio (bounded sampling),
sync delay, and which policy thresholds they breach. Computation only: it never writes; what a breach does is
fsd.monitor.actions' job."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from fsd import codec
from fsd.codec import _rows_py
from fsd.domain import Clock, VersionState
from fsd.monitor.sampling import sample_rows
from fsd.online.base import OnlineStore
from fsd.domain import GroupInfo, RegistrySnapshot, SyncRun
from fsd.errors import FsdError

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class SlotSample:
    present: int = 0
    stale: int = 0
    feature: str = ""  # the serving version the slot holds (what metrics label it by)
    version: int = 0

    @property
    def ratio(self) -> float | None:
        """Share of sampled values older than max age; None when nothing was sampled (not measured)."""
        return self.stale / self.present if self.present else None


@dataclass(slots=True)
class GroupSignals:
    group: str
    newest_event_micros: int = 0
    freshness_lag_seconds: float | None = None  # None: nothing online yet
    seconds_since_sync: float | None = None     # None: never synced
    missed_refreshes: int = 0
    sync_delay_seconds: float | None = None     # None: no successful sync yet
    stale: bool = False
    breaches: list[str] = field(default_factory=list)
    samples: dict[int, SlotSample] = field(default_factory=dict)  # slot -> sample


SnapshotSource = Callable[[], RegistrySnapshot]
SyncRunSource = Callable[[str], list[SyncRun]]  # a group's recent runs, newest first
SignalsHandler = Callable[[dict[str, "GroupSignals"]], None]


class FreshnessMonitor:
    """Computes signals on its own thread every `interval` seconds and hands them to `on_signals` (the policy
    actions); readers get the last computed copy. `compute()` itself only reads."""

    def __init__(self, snapshots: SnapshotSource, sync_runs: SyncRunSource, store: OnlineStore, clock: Clock, *,
                 interval_seconds: float = 10.0, sample_rows: int = 2000, on_signals: SignalsHandler | None = None) -> None:
        self._snapshots = snapshots
        self._sync_runs = sync_runs
        self._store = store
        self._clock = clock
        self._interval = interval_seconds
        self._sample_rows = sample_rows
        self._on_signals = on_signals
        self._newest: dict[str, int] = {}  # group -> newest event time written online (kept by the publish events)
        self._signals: dict[str, GroupSignals] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fsd-freshness", daemon=True)

    def note_written(self, group: str, newest_event_micros: int) -> None:
        with self._lock:
            if newest_event_micros > self._newest.get(group, 0):
                self._newest[group] = newest_event_micros

    def signals(self) -> dict[str, GroupSignals]:
        with self._lock:
            return dict(self._signals)

    def current(self) -> dict[str, GroupSignals]:
        """The last computed signals, or freshly computed ones before the first cycle (read-only either way)."""
        return self.signals() or self.compute()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self._interval):
            try:
                self.refresh()
                failing = False
            except FsdError as exc:  # a store or registry that is briefly unreachable: say so once, not every cycle
                if not failing:
                    logger.warning("freshness refresh failed: %s", exc.message)
                failing = True
            except Exception:  # noqa: BLE001 - a monitor bug must never take the daemon down
                logger.exception("freshness refresh failed")

    def refresh(self) -> dict[str, GroupSignals]:
        """One monitor cycle: compute, keep as the current signals, then let the policy act on them."""
        computed = self.compute()
        with self._lock:
            self._signals = computed
        if self._on_signals is not None:
            self._on_signals(computed)
        return computed

    def _sample_computed(self, info: GroupInfo, now: int) -> tuple[dict[int, SlotSample], int]:
        """A computed group's freshness is the age of the newest event applied: read from a sample of its tiles, with
        each serving version's value counted stale as GetFeatures would serve it now."""
        from fsd.aggregation import tiles
        from fsd.aggregation.layout import computed_versions, tile_prefix

        versions = {v.slot: v for v in computed_versions(info)}
        samples = {slot: SlotSample(feature=v.feature, version=v.version) for slot, v in versions.items()
                   if v.state == VersionState.SERVING}
        newest = 0
        for _, blob in sample_rows(self._store, tile_prefix(info.group_id), self._sample_rows):
            for slot, state in tiles.decode(blob).items():
                newest = max(newest, state.newest_dropped, *(t.newest for t in state.tiles.values()))
                sample, version = samples.get(slot), versions.get(slot)
                if sample is None or version is None:
                    continue
                folder = tiles.FeatureTiles(slot, version.aggregation, info.spec.allowed_lateness_seconds * 1_000_000)
                status, _, _ = folder.value_at(state, now, version.max_age_micros)
                sample.present += 1
                sample.stale += status == tiles.STALE
        return samples, newest

    def _sample(self, info: GroupInfo, now: int) -> tuple[dict[int, SlotSample], int]:
        """Stale counts per serving slot over at most sample_rows rows from a random point of the group's range."""
        if info.spec.event_columns:
            return self._sample_computed(info, now)
        rows = sample_rows(self._store, codec.group_prefix(info.group_id), self._sample_rows)
        samples: dict[int, SlotSample] = {}
        newest = 0
        max_age_of = {}
        for feature, versions in info.versions.items():
            for v in versions:
                if v.state == VersionState.SERVING:
                    max_age_of[v.slot] = (v.spec.max_age_seconds or info.spec.max_age_seconds) * 1_000_000
                    samples[v.slot] = SlotSample(feature=feature, version=v.version)
        for _, row in rows:
            for slot, value in _rows_py.parse_row(row).items():
                sample = samples.get(slot)
                if sample is None:
                    continue
                event_time = _rows_py.stamp(value)[0]
                newest = max(newest, event_time)
                sample.present += 1
                if max_age_of[slot] and now - event_time > max_age_of[slot]:
                    sample.stale += 1
        return samples, newest

    def compute(self) -> dict[str, GroupSignals]:
        now = self._clock.now_micros()
        snapshot = self._snapshots()
        computed: dict[str, GroupSignals] = {}
        for name, info in snapshot.groups.items():
            signals = GroupSignals(name)
            samples, sampled_newest = self._sample(info, now)
            signals.samples = samples
            with self._lock:
                newest = max(self._newest.get(name, 0), sampled_newest)
                self._newest[name] = newest
            signals.newest_event_micros = newest
            signals.freshness_lag_seconds = (now - newest) / 1e6 if newest else None
            runs = [r for r in self._sync_runs(name) if r.outcome == "success"]
            interval = info.spec.sync_interval_seconds
            if runs:
                last = runs[0]
                signals.seconds_since_sync = (now - last.ended_micros) / 1e6
                signals.sync_delay_seconds = last.sync_delay_micros / 1e6
                if interval:
                    signals.missed_refreshes = int(signals.seconds_since_sync // interval)
            policy = info.spec.policy
            lag = signals.freshness_lag_seconds
            if policy.max_lag_seconds and lag is not None and lag > policy.max_lag_seconds:
                signals.breaches.append(f"freshness lag {lag:.0f}s > {policy.max_lag_seconds}s")
            if policy.max_missed_refreshes and signals.missed_refreshes > policy.max_missed_refreshes:
                signals.breaches.append(f"{signals.missed_refreshes} missed refreshes > {policy.max_missed_refreshes}")
            ratios = [r for r in (s.ratio for s in samples.values()) if r is not None]
            if policy.max_stale_ratio and ratios and max(ratios) > policy.max_stale_ratio:
                signals.breaches.append(f"stale-entity ratio {max(ratios):.2f} > {policy.max_stale_ratio}")
            signals.stale = bool(signals.breaches)
            computed[name] = signals
        return computed
