"""The evaluation's workload, deterministic for a seed: a synthetic card-transaction stream and the feature rows a
producer computes from it, with definition changes, backfills, late corrections, key mismatches and late files as
repeated random processes.

Feature values are real aggregates of the stream (counts, sums, maxima, means over a window), so features of one
group are correlated and a changed definition gives different numbers. Every row a producer could write is kept in
the *ledger* with the definition and the data (which transactions had arrived) that produced it: a metric traces a
served value to its definition by the numbers, never by what a system says it served.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

SECOND = 1_000_000
MINUTE = 60 * SECOND
SIM_START = 1_780_272_000_000_000  # 2026-06-01T00:00:00Z


@dataclass(frozen=True, slots=True)
class Definition:
    """One definition of a feature: the aggregation over the stream that computes it. `number` is its version in
    a versioned store (1 for the definition a feature starts with)."""

    feature: str
    number: int
    function: str  # count | sum | max | mean
    window_min: int
    min_amount: float = 0.0  # transactions below this amount are left out

    @property
    def transformation(self) -> str:
        filt = f" where amount >= {self.min_amount:g}" if self.min_amount else ""
        return f"{self.function}(amount) over {self.window_min}m{filt}"


@dataclass(frozen=True, slots=True)
class GroupShape:
    name: str
    features: tuple[str, ...]
    cadence_min: int  # the producer computes the group's rows this often
    max_age_min: int
    deadline_min: int  # publish deadline: a row available offline this long ago must be online


GROUPS = (
    GroupShape("txn", ("txn_count", "amount_sum", "amount_max"), cadence_min=1, max_age_min=10, deadline_min=2),
    GroupShape("profile", ("day_count", "day_mean"), cadence_min=15, max_age_min=120, deadline_min=20),
)
GROUP_OF = {f: g.name for g in GROUPS for f in g.features}
INITIAL = {
    "txn_count": ("count", 60), "amount_sum": ("sum", 60), "amount_max": ("max", 60),
    "day_count": ("count", 1440), "day_mean": ("mean", 1440),
}
DTYPE = {"txn_count": "int64", "amount_sum": "double", "amount_max": "double", "day_count": "int64", "day_mean": "double"}


@dataclass(slots=True)
class Row:
    """One feature row as a producer writes it: entity, event time, when it is available offline, the value, the
    definition that computed it, the kind of write, and whether its keys are readable (a key-mismatch file is not)."""

    entity: int
    event: int
    available: int
    value: float | None
    definition: int
    kind: str = "ingest"  # ingest | backfill | correction
    string_keys: bool = False


@dataclass(slots=True)
class Landing:
    """One file a producer writes: when it lands, which feature and definition, its rows. A key-mismatch file is
    replaced by a fixed one later: `replaces` is the landing number of the file it supersedes."""

    number: int
    time: int
    group: str
    feature: str
    definition: int
    kind: str
    rows: list[Row]
    replaces: int = -1


@dataclass(slots=True)
class Stream:
    """Per entity, its transactions sorted by event time: event times, arrival times, amounts."""

    events: dict[int, np.ndarray]
    arrivals: dict[int, np.ndarray]
    amounts: dict[int, np.ndarray]

    def aggregate(self, d: Definition, entity: int, at: int, known_by: int) -> float | None:
        """The definition's value for an entity at event time `at`, from the transactions arrived by `known_by`."""
        ev = self.events.get(entity)
        if ev is None:
            return None if d.function in ("max", "mean") else 0.0
        lo, hi = np.searchsorted(ev, at - d.window_min * MINUTE, "right"), np.searchsorted(ev, at, "right")
        keep = self.arrivals[entity][lo:hi] <= known_by
        amounts = self.amounts[entity][lo:hi][keep]
        if d.min_amount:
            amounts = amounts[amounts >= d.min_amount]
        if d.function == "count":
            return float(len(amounts))
        if d.function == "sum":
            return float(round(amounts.sum(), 2))
        if not len(amounts):
            return None
        return float(amounts.max()) if d.function == "max" else float(round(amounts.mean(), 4))


@dataclass
class Workload:
    seed: int
    entities: int
    minutes: int
    stream: Stream
    definitions: dict[str, list[Definition]]  # per feature, in the order they appear (number = index + 1)
    changes: list[tuple[int, Definition]]  # (time, new definition)
    processes: dict[str, list[tuple[int, str, dict[str, object]]]]  # kind -> [(time, group, details)]
    popularity: np.ndarray
    model_a_trained: int
    retrain_delay: int
    landings: list[Landing] = field(default_factory=list)  # in landing order
    _ledger: dict[tuple[str, int], list[Row]] = field(default_factory=dict)

    def at(self, minute: float) -> int:
        return SIM_START + int(minute * MINUTE)

    @property
    def end(self) -> int:
        return self.at(self.minutes)

    def definition(self, feature: str, number: int) -> Definition:
        return self.definitions[feature][number - 1]

    def live_definitions(self, feature: str, at: int) -> list[Definition]:
        """The definitions a versioned producer computes at this time: every one announced by then."""
        announced = {d.number for t, d in self.changes if t <= at and d.feature == feature}
        return [d for d in self.definitions[feature] if d.number == 1 or d.number in announced]

    def current_definition(self, feature: str, at: int) -> Definition:
        """The definition an unversioned producer uses at this time: the newest announced (in place)."""
        return self.live_definitions(feature, at)[-1]

    def expected_definition(self, consumer: str, feature: str, at: int) -> Definition:
        """What a consumer was trained on: model A on the first definitions, model B on the newest one it was
        retrained on (each announced definition, retrain_delay later)."""
        if consumer == "A":
            return self.definitions[feature][0]
        return self.live_definitions(feature, at - self.retrain_delay)[-1]

    def retrains(self) -> list[int]:
        return sorted({t + self.retrain_delay for t, _ in self.changes if t + self.retrain_delay < self.end})

    def ledger(self, feature: str, number: int) -> list[Row]:
        """Every valid row the definition produced (the ideal, versioned producer's dataset), in landing order."""
        return self._ledger.get((feature, number), [])

    def sample_entities(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """A request's entities, drawn by popularity (a few cards are far busier than most)."""
        k = min(k, self.entities)
        return np.sort(rng.choice(np.arange(1, self.entities + 1), size=k, replace=False, p=self.popularity))


def _stream(rng: np.random.Generator, entities: int, minutes: int, popularity: np.ndarray, late_share: float) -> Stream:
    count = int(0.3 * entities * minutes)
    who = rng.choice(np.arange(1, entities + 1), size=count, p=popularity)
    event = SIM_START + (rng.random(count) * minutes * MINUTE).astype(np.int64)
    late = rng.random(count) < late_share
    delay = np.where(late, rng.uniform(5, 60, count) * MINUTE, rng.uniform(0, 5, count) * SECOND).astype(np.int64)
    amount = np.round(rng.lognormal(3.0, 1.0, count), 2)
    order = np.lexsort((event, who))
    who, event, arrival, amount = who[order], event[order], event[order] + delay[order], amount[order]
    bounds = np.searchsorted(who, np.arange(1, entities + 2))
    s = Stream({}, {}, {})
    for e in range(1, entities + 1):
        a, b = bounds[e - 1], bounds[e]
        if b > a:
            s.events[e], s.arrivals[e], s.amounts[e] = event[a:b], arrival[a:b], amount[a:b]
    return s


def _times(rng: np.random.Generator, minutes: int, rate_per_hour: float, at_least: int, lo: float = 0.12, hi: float = 0.9) -> list[int]:
    """A Poisson process over the run (at least `at_least` occurrences), in whole seconds."""
    n = max(at_least, int(rng.poisson(rate_per_hour * minutes / 60)))
    return sorted(SIM_START + int(x) * SECOND for x in rng.uniform(lo * minutes * 60, hi * minutes * 60, n))


def _changed(rng: np.random.Generator, d: Definition, number: int) -> Definition:
    if d.window_min >= 720 or rng.random() < 0.4:  # a day window outlasts a run: change its filter instead
        return Definition(d.feature, number, d.function, d.window_min, 0.0 if d.min_amount else 20.0)
    factor = 0.5 if d.window_min >= 60 and rng.random() < 0.6 else 2.0
    return Definition(d.feature, number, d.function, max(15, min(2880, int(d.window_min * factor))), d.min_amount)


def build(seed: int, entities: int, hours: float, *, late_share: float = 0.03, shift_events: float = 0.0,
          data_seed: int | None = None, definition_changes: bool = True) -> Workload:
    """The workload of a seed. The stream comes from data_seed (default: the seed), the processes' times from the
    seed; shift_events moves every process's times by that share of the run. The tests vary one and keep the
    other, to show the metrics follow the data and not the schedule alone."""
    rng = np.random.default_rng(seed if data_seed is None else data_seed)
    minutes = int(hours * 60)
    ranks = np.arange(1, entities + 1, dtype=np.float64)
    popularity = rng.permutation(1.0 / ranks ** 1.1)
    popularity /= popularity.sum()
    stream = _stream(rng, entities, minutes, popularity, late_share)
    process_rng = np.random.default_rng(seed * 7919 + 1)
    shift = int(shift_events * minutes * MINUTE)

    def times(rate: float, at_least: int) -> list[int]:
        return [min(SIM_START + minutes * MINUTE - MINUTE, t + shift) for t in _times(process_rng, minutes, rate, at_least)]

    definitions = {f: [Definition(f, 1, fn, w)] for f, (fn, w) in INITIAL.items()}
    changes: list[tuple[int, Definition]] = []
    processes: dict[str, list[tuple[int, str, dict[str, object]]]] = {k: [] for k in ("backfill", "correction", "key_mismatch", "late_file")}
    for g in GROUPS:
        for t in times(1.0, 2) if definition_changes else []:
            feature = g.features[int(process_rng.integers(len(g.features)))]
            new = _changed(process_rng, definitions[feature][-1], len(definitions[feature]) + 1)
            definitions[feature].append(new)
            changes.append((t, new))
        for t in times(0.75, 1):
            processes["backfill"].append((t, g.name, {"minutes": int(process_rng.integers(30, 91))}))
        for t in times(1.5, 2):
            processes["correction"].append((t, g.name, {}))
        for t in times(0.5, 1):
            processes["key_mismatch"].append((t, g.name, {"fixed_after": int(process_rng.integers(5, 16)) * MINUTE}))
        for t in times(0.75, 1):
            processes["late_file"].append((t, g.name, {"late_by": int(process_rng.integers(5, 21)) * MINUTE}))
    processes["killed_run"] = [(t, "", {}) for t in times(0.5, 1)]  # a loader / copier killed mid-run
    processes["outage"] = [(t, "", {"restart": int(process_rng.uniform(60, 180)) * SECOND, "failover": int(process_rng.uniform(5, 15)) * SECOND})
                           for t in times(0.7, 1)]  # a single store restarting; a cluster master killed (failover)
    changes.sort(key=lambda c: c[0])
    w = Workload(seed, entities, minutes, stream, definitions, changes, processes, popularity,
                 model_a_trained=SIM_START + int(0.1 * minutes) * MINUTE, retrain_delay=10 * MINUTE)
    _produce(w, process_rng)
    return w


def _produce(w: Workload, rng: np.random.Generator) -> None:
    """Every row every definition produces, when it lands offline: the producer computes each group at its cadence
    for the entities with new transactions, corrects entities whose late transactions arrived, backfills windows."""
    s = w.stream
    touched_at: dict[int, list[int]] = {}  # entity -> sorted arrival times (to find who changed in a cadence step)
    for e, arr in s.arrivals.items():
        touched_at[e] = sorted(arr.tolist())
    produced_events: dict[tuple[str, int], list[int]] = {}  # (group, entity) -> event times produced
    for g in GROUPS:
        step = g.cadence_min
        procs = {k: [(t, d) for t, name, d in v if name == g.name] for k, v in w.processes.items()}
        for m in range(step, w.minutes + 1, step):
            now = w.at(m)
            prev = w.at(m - step)
            batch: list[tuple[int, int, str]] = []  # (entity, event, kind) to compute at `now`
            for e, arr in touched_at.items():
                i = bisect.bisect_right(arr, prev)
                if i < len(arr) and arr[i] <= now:
                    batch.append((e, now, "ingest"))
            for t, _ in procs["correction"]:
                if prev < t <= now:  # entities whose late transactions arrived in the last hour: their past rows again
                    for e in s.events:
                        late = (s.arrivals[e] > prev - 60 * MINUTE) & (s.arrivals[e] <= now) & (s.arrivals[e] - s.events[e] > 5 * MINUTE)
                        if late.any():
                            first = int(s.events[e][late].min())
                            batch += [(e, ev, "correction") for ev in produced_events.get((g.name, e), []) if first <= ev < now]
            for t, d in procs["backfill"]:
                if prev < t <= now:
                    since = now - int(d["minutes"]) * MINUTE  # type: ignore[call-overload]
                    for e in s.events:
                        batch += [(e, ev, "backfill") for ev in produced_events.get((g.name, e), []) if since <= ev < now]
            for e, ev, kind in batch:
                if kind == "ingest":
                    produced_events.setdefault((g.name, e), []).append(ev)
            lands, string_keys, fixed = now + int(rng.integers(5, 41)) * SECOND, False, 0
            for t, d in procs["late_file"]:
                if prev < t <= now:
                    lands += int(d["late_by"])  # type: ignore[call-overload]
            for t, d in procs["key_mismatch"]:
                if prev < t <= now:
                    string_keys, fixed = True, lands + int(d["fixed_after"])  # type: ignore[call-overload]
            for feature in g.features:
                for d in w.live_definitions(feature, now):
                    for kind in ("ingest", "correction", "backfill"):
                        rows = [Row(e, ev, lands, s.aggregate(d, e, ev, now), d.number, kind, string_keys)
                                for e, ev, k in batch if k == kind and (kind == "ingest" or ev >= _announced(w, d))]
                        if not rows:
                            continue
                        first = Landing(len(w.landings), lands, g.name, feature, d.number, kind, rows)
                        w.landings.append(first)
                        valid = rows
                        if string_keys:  # on-call replaces the file with a correct one; its rows count from then
                            valid = [Row(r.entity, r.event, fixed, r.value, r.definition, r.kind) for r in rows]
                            w.landings.append(Landing(len(w.landings), fixed, g.name, feature, d.number, kind, valid, first.number))
                        w._ledger.setdefault((feature, d.number), []).extend(valid)
    w.landings.sort(key=lambda x: (x.time, x.number))
    for rows in w._ledger.values():
        rows.sort(key=lambda r: r.available)


def _announced(w: Workload, d: Definition) -> int:
    return next((t for t, c in w.changes if c is d), 0)
