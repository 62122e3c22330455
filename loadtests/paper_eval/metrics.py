"""The evaluation's metrics, computed from the data — never from what a system says it served.

Every valid row any definition produced is indexed as it lands (the ideal ledger): a served value is traced to the
definition and revision whose numbers it equals. Every row a mode's own producer wrote is indexed per dataset (the
version, or the one in-place dataset), so "offline" means what that mode's offline store holds.

freshness            share of served values whose event time is at least that of the newest row of the served
                     version available offline by now minus the group's publish deadline (scored where one exists)
sync success         per group run: the job's own outcome is success and a sampled offline-vs-online check after it
                     finds every sampled entity's latest row (inside the serving window) online
value consistency    served value == the offline row of the served version at the served event time
version consistency  the served value traces to the definition the consumer was trained on
drift events         mismatch episodes per (feature, consumer), counted at onset: a served value differing from the
                     consumer's definition's newest revision at that event time; the onset's cause is recorded
lag                  offline availability -> first check that finds the row (or a newer one) online, in simulated
                     µs advanced by real durations; runs' propagation (start -> end) separately
skew                 served against fsd's own training retrieval (get_historical_features over the ideal ledger, same
                     version, same max age) for the same entity and time, with a tolerance, by cause
"""
from __future__ import annotations

import bisect
import shutil
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from fsd.domain import FixedClock
from fsd.offline.retrieval import FeatureVersion, get_historical_features
from fsd.offline.store import OfflineStore
from loadtests.paper_eval.common import FEATURES, RunRecord, Served, rows_table
from loadtests.paper_eval.workload import GROUP_OF, GROUPS, MINUTE, SECOND, Landing, Workload

SHAPE = {g.name: g for g in GROUPS}
CHECK_AFTER = 5 * SECOND  # the offline-vs-online check reads where the models read, this long after a run ends
TS = pa.timestamp("us", tz="UTC")


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


@dataclass
class _Dataset:
    """One entity's rows in one dataset, in landing order: availability, a running newest event, values by event."""

    available: list[int] = field(default_factory=list)
    newest: list[int] = field(default_factory=list)
    at_event: dict[int, list[tuple[int, float | None]]] = field(default_factory=dict)  # event -> [(available, value)]

    def add(self, event: int, available: int, value: float | None) -> None:
        self.available.append(available)
        self.newest.append(max(event, self.newest[-1]) if self.newest else event)
        self.at_event.setdefault(event, []).append((available, value))

    def newest_event_by(self, t: int) -> int | None:
        i = bisect.bisect_right(self.available, t)
        return self.newest[i - 1] if i else None

    def value_at(self, event: int, by: int) -> tuple[bool, float | None]:
        """(a row exists, its latest value) at this event time among rows available by `by`."""
        found = [v for a, v in self.at_event.get(event, []) if a <= by]
        return (True, found[-1]) if found else (False, None)


@dataclass
class Counts:
    total: int = 0
    good: int = 0

    def add(self, ok: bool) -> None:
        self.total += 1
        self.good += ok

    def share(self) -> float | None:
        return self.good / self.total if self.total else None


@dataclass
class Observer:
    workload: Workload
    versions_of: object  # the mode's versions_served(feature) -> tuple[int, ...]
    ideal_events: dict[tuple[str, int, int], dict[int, list[float | None]]] = field(default_factory=dict)
    datasets: dict[tuple[str, int, int], _Dataset] = field(default_factory=lambda: defaultdict(_Dataset))  # (feature, version, entity)
    entities_with_rows: dict[tuple[str, int], set[int]] = field(default_factory=lambda: defaultdict(set))
    pending: dict[tuple[str, int], dict[int, list[tuple[int, int]]]] = field(default_factory=lambda: defaultdict(dict))  # -> entity -> [(event, available)]
    freshness: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    sync: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    job_success: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    value_consistency: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    version_consistency: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    unavailable: Counts = field(default_factory=Counts)
    open_drift: dict[tuple[str, str], bool] = field(default_factory=dict)
    drift_onsets: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    drift_minutes: Counter[str] = field(default_factory=Counter)  # probes (minutes) with an open episode, per group
    lags: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    propagation: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    served_log: list[tuple[str, str, int, int, float | None, int, int]] = field(default_factory=list)  # consumer, feature, entity, t, value, event, def
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(99))

    # --- what lands offline --------------------------------------------------------------------------------------

    def land(self, landing: Landing, dataset: int | None) -> None:
        rows = landing.rows
        if not rows or rows[0].string_keys:
            return  # unreadable keys: valid only once fixed (its replacement lands then)
        for r in rows:
            self.ideal_events.setdefault((landing.feature, r.entity, r.event), {}).setdefault(landing.definition, []).append(r.value)
        if dataset is None:
            return
        pending = self.pending[(landing.feature, dataset)]
        for r in rows:
            self.datasets[(landing.feature, dataset, r.entity)].add(r.event, r.available, r.value)
            self.entities_with_rows[(landing.feature, dataset)].add(r.entity)
            pending.setdefault(r.entity, []).append((r.event, r.available))

    # --- what serving answers ------------------------------------------------------------------------------------

    def served(self, consumer: str, entities: np.ndarray, now: int, answer: Served, expected_version: dict[str, int]) -> None:
        w = self.workload
        for feature in FEATURES:
            group = GROUP_OF[feature]
            shape = SHAPE[group]
            got = answer[feature]
            expected_def = w.expected_definition(consumer, feature, now).number
            version = got.version or expected_version[feature]
            for i, entity in enumerate(entities.tolist()):
                status, value, event = got.statuses[i], got.values[i], got.events[i]
                has = status in ("PRESENT", "STALE")
                self.unavailable.add(status == "UNAVAILABLE")
                rows = self.datasets.get((feature, version, entity))
                due = rows.newest_event_by(now - shape.deadline_min * MINUTE) if rows else None
                if due is not None:
                    self.freshness[group].add(has and event >= due)
                present = status == "PRESENT"
                self.served_log.append((consumer, feature, entity, now, value if present else None, event if present else 0, expected_def))
                if not has:
                    continue
                exists, offline_value = rows.value_at(event, now) if rows else (False, None)
                self.value_consistency[group].add(exists and close(value, offline_value))
                revisions = self.ideal_events.get((feature, entity, event), {})
                self.version_consistency[group].add(any(close(value, v) for v in revisions.get(expected_def, [])))

    def probe(self, consumer: str, entities: np.ndarray, now: int, answer: Served) -> None:
        """Each simulated minute, every entity as a consumer is served it: does any value's provenance differ from
        the consumer's definition's newest revision at its event time? An episode per (feature, consumer) starts
        when one does and ends at the first probe where none does."""
        for feature in FEATURES:
            got = answer[feature]
            expected_def = self.workload.expected_definition(consumer, feature, now).number
            cause = ""
            for i, entity in enumerate(entities.tolist()):
                if got.statuses[i] not in ("PRESENT", "STALE"):
                    continue
                revisions = self.ideal_events.get((feature, entity, got.events[i]), {})
                newest = revisions.get(expected_def, [])
                if not (newest and close(got.values[i], newest[-1])):
                    cause = _cause(got.values[i], expected_def, revisions)
                    break
            key = (feature, consumer)
            group = GROUP_OF[feature]
            if cause and not self.open_drift.get(key):
                self.drift_onsets[group][cause] += 1
            self.drift_minutes[group] += bool(cause)
            self.open_drift[key] = bool(cause)

    # --- what sync runs did ---------------------------------------------------------------------------------------

    def run_finished(self, run: RunRecord, read_online) -> None:  # type: ignore[no-untyped-def]
        """Score the run (its outcome and a sampled check at its end) and find which waiting rows it made visible."""
        self.job_success[run.group].add(run.outcome == "success")
        self.propagation[run.group].append(run.end - run.start)
        ok = run.outcome == "success"
        shape = SHAPE[run.group]
        for feature in shape.features:
            for version in self.versions_of(feature):  # type: ignore[operator]
                candidates = sorted(self.entities_with_rows.get((feature, version), ()))
                if not candidates:
                    continue
                sample = np.sort(self.rng.choice(candidates, size=min(10, len(candidates)), replace=False))
                online = read_online(feature, version, sample, run.end + CHECK_AFTER)[feature]
                for i, entity in enumerate(sample.tolist()):
                    rows = self.datasets[(feature, version, entity)]
                    due = rows.newest_event_by(run.start)
                    if due is None or due < run.start - shape.max_age_min * MINUTE:
                        continue  # nothing inside the serving window to copy
                    _, want = rows.value_at(due, run.start)
                    got_event, got_value = online.events[i], online.values[i]
                    if got_event < due or (got_event == due and not close(got_value, want)):
                        ok = False
        self.sync[run.group].add(ok)
        self.check_visible(run.end, read_online, GROUPS_BY_NAME[run.group])

    def check_visible(self, now: int, read_online, groups=None) -> None:  # type: ignore[no-untyped-def]
        """Rows waiting to be online that are now (or a newer row of their entity is): their lag ends here."""
        for g in groups or GROUPS:
            for feature in g.features:
                for version in self.versions_of(feature):  # type: ignore[operator]
                    waiting = self.pending.get((feature, version))
                    if not waiting:
                        continue
                    ids = np.array(sorted(waiting), dtype=np.int64)
                    online = read_online(feature, version, ids, now)[feature]
                    for i, entity in enumerate(ids.tolist()):
                        seen = online.events[i] if online.values[i] is not None else -1
                        rest = []
                        for event, available in waiting[entity]:
                            if seen >= event and available <= now:
                                self.lags[g.name].append(now - available)
                            else:
                                rest.append((event, available))
                        if rest:
                            waiting[entity] = rest
                        else:
                            del waiting[entity]

    # --- at the end -------------------------------------------------------------------------------------------------

    def skew(self) -> tuple[dict[str, Counts], dict[str, Counter[str]]]:
        """Served values against fsd's own point-in-time training retrieval over the ideal ledger."""
        w = self.workload
        root = Path(tempfile.mkdtemp(prefix="fsd-paper-eval-training-"))
        try:
            return self._skew_against(OfflineStore(root, FixedClock(w.end)))
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def _skew_against(self, store: OfflineStore) -> tuple[dict[str, Counts], dict[str, Counter[str]]]:
        w = self.workload
        for feature in FEATURES:
            for d in w.definitions[feature]:
                rows = w.ledger(feature, d.number)
                if rows:
                    store.write(GROUP_OF[feature], feature, d.number, rows_table(rows, feature), kind="ingest")
        counts: dict[str, Counts] = defaultdict(Counts)
        causes: dict[str, Counter[str]] = defaultdict(Counter)
        by_version: dict[tuple[str, int], list[int]] = defaultdict(list)
        for i, (_, feature, _, _, _, _, d) in enumerate(self.served_log):
            by_version[(feature, d)].append(i)
        for (feature, d), idx in by_version.items():
            group = GROUP_OF[feature]
            fv = FeatureVersion(group, feature, d, ("customer_id",), SHAPE[group].max_age_min * MINUTE)
            log = [self.served_log[i] for i in idx]
            entity_rows = pa.table({"customer_id": pa.array([x[2] for x in log], pa.int64()), "event_timestamp": pa.array([x[3] for x in log], TS)})
            if store.schema(group, feature, d) is None:
                training = [None] * len(log)
            else:
                training = get_historical_features(store, entity_rows, [fv])[f"{group}:{feature}"].cast(pa.float64()).to_pylist()
            for (_, _, entity, t, value, event, _), want in zip(log, training):
                same = close(value, want)
                counts[group].add(not same)
                if not same:
                    causes[group][self._skew_cause(feature, entity, t, value, event, want, d)] += 1
        return counts, causes

    def _skew_cause(self, feature: str, entity: int, t: int, value: float | None, event: int, want: float | None, d: int) -> str:
        if value is None or want is None:
            return "staleness"
        revisions = self.ideal_events.get((feature, entity, event), {})
        newest = revisions.get(d, [])
        if newest and close(value, newest[-1]):
            return "staleness"  # the right value of an older event: training saw a newer row
        return _cause(value, d, revisions)

    def summary(self) -> dict[str, object]:
        skew, skew_causes = self.skew()
        out: dict[str, object] = {"groups": {}}
        for g in [*GROUPS, None]:
            names = [g.name] if g else [x.name for x in GROUPS]
            key = g.name if g else "pooled"
            lags = [x for n in names for x in self.lags[n]]
            prop = [x for n in names for x in self.propagation[n]]
            drift: Counter[str] = sum((self.drift_onsets[n] for n in names), Counter())
            skew_by: Counter[str] = sum((skew_causes[n] for n in names), Counter())
            out["groups"][key] = {  # type: ignore[index]
                "freshness": _pool(self.freshness, names),
                "sync_success": _pool(self.sync, names),
                "job_success": _pool(self.job_success, names),
                "value_consistency": _pool(self.value_consistency, names),
                "version_consistency": _pool(self.version_consistency, names),
                "drift_events": sum(drift.values()),
                "drift_by_cause": dict(drift),
                "drift_minutes": sum(self.drift_minutes[n] for n in names),
                "lag_mean_s": float(np.mean(lags)) / SECOND if lags else None,
                "lag_p95_s": float(np.percentile(lags, 95)) / SECOND if lags else None,
                "propagation_mean_s": float(np.mean(prop)) / SECOND if prop else None,
                "propagation_p95_s": float(np.percentile(prop, 95)) / SECOND if prop else None,
                "skew": _pool(skew, names),
                "skew_by_cause": dict(skew_by),
                "runs": sum(self.sync[n].total for n in names),
                "rows_waiting_at_end": sum(len(v) for (f, _), p in self.pending.items() if GROUP_OF[f] in names for v in p.values()),
            }
        out["unavailable_share"] = self.unavailable.share()
        out["served_values"] = self.unavailable.total
        return out


GROUPS_BY_NAME = {g.name: (g,) for g in GROUPS}


def _pool(counts: dict[str, Counts], names: list[str]) -> float | None:
    total = sum(counts[n].total for n in names)
    return sum(counts[n].good for n in names) / total if total else None


def _cause(value: float | None, expected: int, revisions: dict[int, list[float | None]]) -> str:
    """Why a served value is not the expected definition's newest revision at its event time."""
    if any(close(value, v) for v in revisions.get(expected, [])[:-1]):
        return "backfill"  # an older revision: a backfill or correction not yet in current values
    if any(close(value, v) for d, vs in revisions.items() if d != expected for v in vs):
        return "version"  # another definition's value: a new version, an in-place change
    if expected not in revisions:
        return "version"  # the expected definition never computed this event time: served from another definition
    return "unknown"  # traced to nothing produced: a copy error, truncation, corruption
