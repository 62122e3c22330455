"""The paper's evaluation on the real system: deployment modes × sync intervals on a fraud-style workload.

    python -m loadtests.paper_eval [--quick] [--seed N ...] [--out DIR]

Each (mode, interval, seed) runs fsd's real components — registry, publisher and its rules, RocksDB, lookup, the
loader and its scheduler, the validator — in one process on a simulated clock, minute by minute. Writes
results.json, table.md and PNG plots to --out (default docs/evaluation). --quick is CI-sized.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from loadtests.paper_eval import report
from loadtests.paper_eval.metrics import Tracker
from loadtests.paper_eval.modes import REFS, Harness
from loadtests.paper_eval.workload import build

INTERVALS = ("1m", "5m", "15m", "30m", "60m")
GROUP_REF = {"velocity": ("velocity:txn_count",), "profile": ("profile:account_age_days",), "all": REFS}


def run_one(mode: str, interval: str, seed: int, entities: int, hours: float, sample: int, cluster: object = None) -> dict[str, object]:
    """One mode at one interval over one seed's workload; its metrics and sync runs."""
    workload = build(seed, entities, hours)
    harness = Harness(mode, interval, workload, cluster=cluster)
    tracker = Tracker(workload)
    rng = np.random.default_rng(seed * 1000 + 17)
    ids = workload.ids
    began = time.perf_counter()
    try:
        for minute in range(workload.minutes):
            harness.produce(minute)
            tracker.land(minute)
            runs = harness.sync(minute)
            pinned = minute > workload.events["model_trained"]  # the model's manifest exists from then on
            if mode == "offline-only":  # served live from offline: what a check would find, every minute
                tracker.check_run(minute, REFS, harness.serve(ids, minute), ids, counts_as_run=False)
            elif runs:
                full = harness.serve(ids, minute, pinned=pinned)
                for r in runs:  # runs before the model exists train the checks, they are not scored
                    tracker.check_run(minute, GROUP_REF[r.group], full, ids, counts_as_run=minute >= workload.events["model_trained"])
            if minute == workload.events["model_trained"]:
                harness.create_model_manifest()
            if minute >= workload.events["model_trained"]:
                chosen = np.sort(rng.choice(ids, size=min(sample, len(ids)), replace=False))
                tracker.sample(minute, chosen, harness.serve(chosen, minute))
        result = tracker.summary()
        result.update(mode=mode, interval=interval or "-", seed=seed, wall_seconds=time.perf_counter() - began,
                      runs_by_group={g: sum(1 for r in harness.runs if r.group == g) for g in {r.group for r in harness.runs}},
                      failed_runs=sum(1 for r in harness.runs if r.outcome != "success"),
                      run_wall_p50_ms=1000 * statistics.median([r.wall_seconds for r in harness.runs]) if harness.runs else None,
                      events=workload.events)
        return result
    finally:
        harness.close()
        shutil.rmtree(harness.root, ignore_errors=True)


def grid(quick: bool) -> list[tuple[str, str]]:
    intervals = ("1m", "15m", "60m") if quick else INTERVALS
    configs = [("single-node", ""), ("offline-only", "")]
    configs += [("split", i) for i in intervals]
    configs += [("distributed", i) for i in intervals]
    configs += [("versioned", i) for i in intervals]
    configs.append(("versioned", "adaptive"))
    return configs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized: 150 entities, 2 simulated hours, intervals 1/15/60 m, one seed")
    parser.add_argument("--seed", type=int, nargs="+", default=None, help="seeds (default: 1 2 3; --quick: 1)")
    parser.add_argument("--entities", type=int, default=None)
    parser.add_argument("--hours", type=float, default=None)
    parser.add_argument("--out", type=Path, default=Path("docs/evaluation"))
    parser.add_argument("--configs", nargs="+", default=None, metavar="MODE:INTERVAL",
                        help="only these (e.g. versioned:adaptive); with --merge, replace them in OUT/results.json")
    parser.add_argument("--merge", action="store_true", help="keep OUT/results.json's other configurations")
    args = parser.parse_args(argv)
    from fsd import codec

    if not codec.NATIVE:
        sys.exit("the compiled codec is not loaded: run from an installed package (pip install .)")
    seeds = args.seed or ([1] if args.quick else [1, 2, 3])
    entities = args.entities or (150 if args.quick else 1000)
    hours = args.hours or (2.0 if args.quick else 4.0)
    sample = 50 if args.quick else 100
    configs = grid(args.quick)
    if args.configs:
        wanted = {tuple(c.split(":", 1)) for c in args.configs}
        configs = [(m, i) for m, i in configs if (m, i or "-") in wanted or (m, i) in wanted]
    results = []
    shared = None
    if any(m == "distributed" for m, _ in configs):
        from loadtests.paper_eval.shared_cluster import SharedCluster

        shared = SharedCluster()
    try:
        for mode, interval in configs:
            for seed in seeds:
                r = run_one(mode, interval, seed, entities, hours, sample, cluster=shared)
                results.append(r)
                print(f"{mode:12s} {interval or '-':>8s} seed {seed}: freshness {report.pct(r['freshness'])}, sync success "
                      f"{report.pct(r['sync_success'])}, consistency {report.pct(r['consistency'])}, drift {r['drift_events']}, "
                      f"lag {report.num(r['lag_mean_s'])} s, skew {report.pct(r['skew'])}, runs {r['sync_runs']} ({r['wall_seconds']:.1f} s)",
                      flush=True)
    finally:
        if shared is not None:
            shared.close()
    document = {"entities": entities, "hours": hours, "seeds": seeds, "sample_per_minute": sample, "results": results}
    previous = args.out / "results.json"
    if args.merge and previous.exists():
        kept = json.loads(previous.read_text())
        replaced = {(r["mode"], r["interval"]) for r in results}
        document["results"] = [r for r in kept["results"] if (r["mode"], r["interval"]) not in replaced] + results
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(document, indent=2, default=str))
    table = report.table(document)
    (args.out / "table.md").write_text(table + "\n")
    for path in report.plots(document, args.out):
        print(f"wrote {path}")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
