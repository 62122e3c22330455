"""One evaluation run: a mode at an interval over one seed's workload, as a discrete-event simulation whose clock
advances by the real durations of the work the systems do (a sync run ends its real duration after it starts)."""
from __future__ import annotations

import logging
import shutil
import time

import numpy as np

from loadtests.paper_eval.baselines import BASELINES, Baseline
from loadtests.paper_eval.fsd_modes import Versioned
from loadtests.paper_eval.metrics import Observer
from loadtests.paper_eval.workload import SECOND, build

MODES = (*BASELINES, "versioned", "versioned+distributed")
REQUEST_EVERY_S = 20  # each model asks for a popularity-drawn sample of entities this often


def make(mode: str, interval_min: int, workload, faults: frozenset[str], cluster: object = None):  # type: ignore[no-untyped-def]
    if mode in BASELINES:
        return Baseline(mode, interval_min, workload, faults)
    return Versioned(mode, interval_min, workload, faults, cluster=cluster)


def run_one(mode: str, interval_min: int, seed: int, entities: int, hours: float, per_request: int, *,
            faults: frozenset[str] = frozenset(), cluster: object = None, shift_events: float = 0.0,
            data_seed: int | None = None) -> dict[str, object]:
    began = time.perf_counter()
    w = build(seed, entities, hours, shift_events=shift_events, data_seed=data_seed, definition_changes="no_changes" not in faults)
    system = make(mode, interval_min, w, faults, cluster)
    observer = Observer(w, system.versions_served)
    rng = np.random.default_rng(seed * 1000 + 17)
    events: list[tuple[int, int, str, object]] = [(l.time, 1, "land", l) for l in w.landings if l.time < w.end]
    events += [(t, 0, "change", d) for t, d in w.changes]
    events += [(t, 2, "retrain", None) for t in w.retrains()]
    events += [(w.at(m), 3, "tick", None) for m in range(1, w.minutes + 1)]
    for consumer in ("A", "B"):
        t = w.model_a_trained + int(rng.uniform(0, REQUEST_EVERY_S)) * SECOND
        while t < w.end:
            events.append((t, 4, "serve", consumer))
            t += int(rng.uniform(0.5, 1.5) * REQUEST_EVERY_S * SECOND)
    events.sort(key=lambda e: (e[0], e[1]))
    everyone = np.arange(1, w.entities + 1, dtype=np.int64)
    try:
        for t, _, kind, payload in events:
            if kind == "land":
                dataset = system.dataset(payload)
                runs = system.land(payload, t)
                observer.land(payload, dataset)
                for r in runs:
                    observer.run_finished(r, system.online)
            elif kind == "change":
                if hasattr(system, "announce"):
                    system.announce(payload, t)
            elif kind == "retrain":
                if hasattr(system, "retrain"):
                    system.retrain(t)
            elif kind == "tick":
                observer.check_visible(t, system.online)  # what earlier work made visible (replicas, in-line writes)
                for r in system.tick(t):
                    observer.run_finished(r, system.online)  # what this run made visible, at its end
                if t >= w.model_a_trained:
                    for consumer in ("A", "B"):
                        observer.probe(consumer, everyone, t, system.serve(consumer, everyone, t))
            else:
                chosen = w.sample_entities(rng, per_request)
                expected = {f: _expected_version(system, w, payload, f, t) for f in w.definitions}
                observer.served(payload, chosen, t, system.serve(payload, chosen, t), expected)
        result = observer.summary()
        result.update(mode=mode, interval=f"{interval_min}m" if mode != "single-node" else "inline", seed=seed, faults=sorted(faults),
                      validations=getattr(system, "validations", 0), forced_resyncs=getattr(system, "forced_resyncs", 0),
                      lost_replica_writes=getattr(system, "lost_writes", 0),
                      definition_changes=len(w.changes), wall_seconds=round(time.perf_counter() - began, 2))
        return result
    finally:
        system.close()
        shutil.rmtree(getattr(system, "root", None) or system.table.root, ignore_errors=True)


def run_in_worker(args: tuple[str, int, int, int, float, int]) -> dict[str, object]:
    """run_one in a spawned worker process (gRPC and RocksDB do not survive fork), fsd's own logging quiet."""
    logging.getLogger("fsd").setLevel(logging.CRITICAL)
    mode, interval, seed, entities, hours, per_request = args
    return run_one(mode, interval, seed, entities, hours, per_request)


def _expected_version(system, w, consumer: str, feature: str, t: int) -> int:  # type: ignore[no-untyped-def]
    """The dataset a consumer's request should be answered from (scored for freshness when nothing is served)."""
    if isinstance(system, Baseline) or feature in getattr(system, "in_place", ()):
        return 1
    return w.expected_definition(consumer, feature, t).number



