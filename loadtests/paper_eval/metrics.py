"""The evaluation's metrics, kept while a run goes, against the offline truth of the model's transformation (t1).

freshness     share of served values that are PRESENT and within their feature's max age at serve time
sync success  share of sync runs after which every entity of the run's groups is served its valid offline
              truth, where that truth is inside the serving window (so every valid row of the run is served, and
              nothing invalid is); "not measured" without runs
consistency   share of served values equal to the offline truth of the model's version, as knowable then
drift events  5-minute windows in which some served value came from another version or transformation
serving lag   per offline row of the model's version: from its offline availability to the first check that
              finds it (or a newer value) online; mean and p95
skew          share of (entity, feature) values whose point-in-time training value (fsd's as-of kernel over the
              final offline truth) differs from what was served at that time
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fsd.offline.pit import asof_match
from loadtests.paper_eval.modes import MAX_AGE, REFS, Served
from loadtests.paper_eval.workload import MINUTE, Row, Workload

DRIFT_WINDOW_MIN = 5


def truth_rows(w: Workload, minute: int) -> dict[str, list[Row]]:
    """The valid offline rows of the model's transformation that become available at this minute. The file whose
    keys arrived as strings is not valid until on-call fixes it; its rows count from then."""
    e = w.events
    velocity = list(w.velocity.get(minute, []))
    if minute == e["entity_key_change"]:
        velocity = [r for r in velocity if r.kind != "ingest"]
    if minute == e["entity_key_fixed"]:
        fixed_at = w.at(minute)
        velocity += [Row(r.entity, r.event, fixed_at, r.value, r.transformation)
                     for r in w.velocity.get(e["entity_key_change"], []) if r.kind == "ingest"]
    return {"velocity:txn_count": velocity, "profile:account_age_days": list(w.profile.get(minute, []))}


@dataclass
class Tracker:
    workload: Workload
    latest: dict[str, dict[int, Row]] = field(default_factory=lambda: {r: {} for r in REFS})
    history: dict[str, list[Row]] = field(default_factory=lambda: {r: [] for r in REFS})
    pending: dict[str, list[Row]] = field(default_factory=lambda: {r: [] for r in REFS})
    served: int = 0
    fresh: int = 0
    compared: int = 0
    consistent: int = 0
    drift_windows: set[int] = field(default_factory=set)
    foreign_versions: int = 0  # served values of a version other than the manifest's (versioned mode: must stay 0)
    lags: list[float] = field(default_factory=list)
    runs: int = 0
    runs_ok: int = 0
    runs_by_group: dict[str, int] = field(default_factory=dict)
    skew_log: list[tuple[str, int, int, float | None]] = field(default_factory=list)
    expired: int = 0
    last_check: dict[str, int] = field(default_factory=dict)  # per feature, when a check last ran: rows available by then should be online

    def land(self, minute: int) -> None:
        for ref, rows in truth_rows(self.workload, minute).items():
            for r in rows:
                self.history[ref].append(r)
                self.pending[ref].append(r)
                best = self.latest[ref].get(r.entity)
                if r.event <= self.workload.at(minute) and (best is None or (r.event, r.created) >= (best.event, best.created)):
                    self.latest[ref][r.entity] = r

    def _matches(self, ref: str, entity: int, value: float | None) -> bool:
        truth = self.latest[ref].get(entity)
        return truth is not None and value is not None and abs(truth.value - value) < 1e-9

    def sample(self, minute: int, entities: np.ndarray, served: Served) -> None:
        now = self.workload.at(minute)
        for ref in REFS:
            for i, e in enumerate(entities.tolist()):
                value, status, event = served.values[ref][i], served.statuses[ref][i], served.events[ref][i]
                self.served += 1
                self.fresh += status == "PRESENT" and now - event <= MAX_AGE[ref]
                if self.latest[ref].get(e) is not None:
                    self.compared += 1
                    self.consistent += self._matches(ref, e, value)
                if served.transformations[ref][i] != "t1" and value is not None:
                    self.drift_windows.add(minute // DRIFT_WINDOW_MIN)
                    self.foreign_versions += 1
                self.skew_log.append((ref, e, now, value))

    def check_run(self, minute: int, refs: tuple[str, ...], served: Served, ids: np.ndarray, counts_as_run: bool) -> None:
        """After a sync run: is every entity served its truth? And which waiting rows are online now?"""
        now = self.workload.at(minute)
        ok = True
        for ref in refs:
            self.last_check[ref] = now
            window_start = now - MAX_AGE[ref]  # older values are served STALE whatever happens: not required online
            online_event = dict(zip(ids.tolist(), served.events[ref]))
            online_value = dict(zip(ids.tolist(), served.values[ref]))
            for e, truth in self.latest[ref].items():
                if truth.event >= window_start and not self._matches(ref, e, online_value.get(e)):
                    ok = False
                    break
            waiting = []
            for r in self.pending[ref]:
                if online_event.get(r.entity, 0) >= r.event and online_value.get(r.entity) is not None:
                    self.lags.append((now - r.created) / 1e6)
                elif r.event < window_start:
                    self.expired += 1  # too old to serve as PRESENT by the time a check looked
                else:
                    waiting.append(r)
            self.pending[ref] = waiting
        if counts_as_run:
            self.runs += 1
            self.runs_ok += ok

    def skew(self) -> float | None:
        """Point-in-time training values (fsd's as-of kernel over the final truth) against what was served."""
        differing = total = 0
        for ref in REFS:
            log = [x for x in self.skew_log if x[0] == ref]
            rows = self.history[ref]
            if not log or not rows:
                continue
            left_ids = np.array([x[1] for x in log], dtype=np.int64)
            left_t = np.array([x[2] for x in log], dtype=np.int64)
            right_ids = np.array([r.entity for r in rows], dtype=np.int64)
            match = asof_match(left_ids, left_t, right_ids, np.array([r.event for r in rows], dtype=np.int64),
                               np.array([r.created for r in rows], dtype=np.int64), self.workload.entities + 1)
            for (_, _, _, served), j in zip(log, match.tolist()):
                total += 1
                training = rows[j].value if j >= 0 else None
                differing += (training is None) != (served is None) or (training is not None and served is not None and abs(training - served) > 1e-9)
        return differing / total if total else None

    def summary(self) -> dict[str, object]:
        lags = np.array(self.lags) if self.lags else None
        return {
            "freshness": self.fresh / self.served if self.served else None,
            "sync_success": self.runs_ok / self.runs if self.runs else None,
            "consistency": self.consistent / self.compared if self.compared else None,
            "drift_events": len(self.drift_windows),
            "foreign_version_values": self.foreign_versions,
            "lag_mean_s": float(lags.mean()) if lags is not None else None,
            "lag_p95_s": float(np.percentile(lags, 95)) if lags is not None else None,
            # Rows available before the last check and still not online then: lost (not merely waiting for a run).
            "rows_never_served": sum(r.created <= self.last_check.get(ref, 0) for ref, rows in self.pending.items() for r in rows),
            "rows_expired_before_online": self.expired,
            "skew": self.skew(),
            "sync_runs": self.runs,
            "served_values": self.served,
            "minutes": self.workload.minutes,
            "lag_unit_note": f"simulated seconds, checked at {MINUTE // 60_000_000}-minute steps",
        }
