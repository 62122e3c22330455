"""The evaluation's tables (mean and spread over seeds, pooled and per group) and its two figures."""
from __future__ import annotations

import statistics
from pathlib import Path

MODE_ORDER = ("single-node", "offline-only", "split", "distributed", "versioned", "versioned+distributed")
FIG1 = (("freshness", "freshness", "pct"), ("sync_success", "sync success", "pct"), ("job_success", "job says success", "pct"),
        ("value_consistency", "online = offline", "pct"), ("version_consistency", "expected version", "pct"))
FIG2 = (("drift_events", "drift events", "num"), ("drift_minutes", "drift feature-minutes", "num"), ("lag_mean_s", "lag mean s", "num"), ("lag_p95_s", "lag p95 s", "num"),
        ("propagation_mean_s", "run propagation mean s", "num3"), ("skew", "skew", "pct"))


def pct(value: object) -> str:
    return "not measured" if value is None else f"{100 * float(value):.1f} %"  # type: ignore[arg-type]


def _metric(r: dict[str, object], key: str, group: str) -> float | None:
    value = r["groups"][group].get(key)  # type: ignore[index]
    return None if value is None else float(value)


def aggregate(results: list[dict[str, object]], key: str, group: str = "pooled") -> tuple[float, float, float, float] | None:
    """(mean, standard deviation, min, max) over seeds; None where a metric was not measured."""
    values = [v for r in results if (v := _metric(r, key, group)) is not None]
    if not values:
        return None
    return statistics.fmean(values), statistics.pstdev(values), min(values), max(values)


def cell(agg: tuple[float, float, float, float] | None, kind: str) -> str:
    if agg is None:
        return "not measured"
    mean, sd, _, _ = agg
    scale, unit, digits = {"pct": (100, " %", 1), "num": (1, "", 1), "num3": (1, "", 3)}[kind]
    return f"{scale * mean:.{digits}f}{unit} ± {scale * sd:.{digits}f}"


def configurations(document: dict[str, object], interval: str | None = None) -> list[tuple[str, str, list[dict[str, object]]]]:
    out: dict[tuple[str, str], list[dict[str, object]]] = {}
    for r in document["results"]:  # type: ignore[union-attr]
        out.setdefault((str(r["mode"]), str(r["interval"])), []).append(r)
    keys = sorted(out, key=lambda k: (MODE_ORDER.index(k[0]) if k[0] in MODE_ORDER else 99, _minutes(k[1])))
    return [(m, i, out[(m, i)]) for m, i in keys if interval is None or i in (interval, "inline")]


def _minutes(interval: str) -> int:
    return int(interval[:-1]) if interval.endswith("m") else 0


def table(document: dict[str, object]) -> str:
    seeds = document["seeds"]
    head = f"{document['entities']} entities, {document['hours']} simulated hours, seeds {seeds}: mean ± standard deviation over seeds"
    lines = [head, "", f"### Figure 1 metrics, every mode at {document['fig1_interval']} (pooled over groups)", ""]
    lines += _rows(document, FIG1, document["fig1_interval"], "pooled")  # type: ignore[arg-type]
    for group in ("txn", "profile"):
        lines += ["", f"#### group {group}", ""] + _rows(document, FIG1, document["fig1_interval"], group)  # type: ignore[arg-type]
    lines += ["", "### Figure 2 metrics, every interval (pooled)", ""] + _rows(document, FIG2, None, "pooled", extra=True)
    lines += ["", "### Causes (sums over seeds, pooled)", "", "| mode | interval | drift onsets by cause | skewed values by cause | validations / forced resyncs | replica writes lost |",
              "|---|---|---|---|---|---|"]
    for mode, interval, rs in configurations(document):
        drift: dict[str, int] = {}
        skew: dict[str, int] = {}
        for r in rs:
            for k, v in r["groups"]["pooled"]["drift_by_cause"].items():  # type: ignore[index]
                drift[k] = drift.get(k, 0) + v
            for k, v in r["groups"]["pooled"]["skew_by_cause"].items():  # type: ignore[index]
                skew[k] = skew.get(k, 0) + v
        lines.append(f"| {mode} | {interval} | {_counts(drift)} | {_counts(skew)} | {sum(int(r['validations']) for r in rs)} / "  # type: ignore[arg-type]
                     f"{sum(int(r['forced_resyncs']) for r in rs)} | {sum(int(r['lost_replica_writes']) for r in rs)} |")  # type: ignore[arg-type]
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


def _rows(document: dict[str, object], metrics: tuple[tuple[str, str, str], ...], interval: str | None, group: str, extra: bool = False) -> list[str]:
    labels = [label for _, label, _ in metrics] + (["sync runs"] if extra else [])
    lines = ["| mode | interval | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    for mode, iv, rs in configurations(document, interval):
        cells = [cell(aggregate(rs, key, group), kind) for key, _, kind in metrics]
        if extra:
            cells.append(cell(aggregate(rs, "runs", group), "num"))
        lines.append(f"| {mode} | {iv} | " + " | ".join(cells) + " |")
    return lines


def plots(document: dict[str, object], out: Path) -> list[Path]:
    """Figure 1: the modes at one interval; Figure 2: drift, lag and skew against the interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig1 = configurations(document, document["fig1_interval"])  # type: ignore[arg-type]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / len(FIG1)
    for j, (key, label, _) in enumerate(FIG1):
        means = [100 * (aggregate(rs, key) or (0, 0, 0, 0))[0] for _, _, rs in fig1]
        sds = [100 * (aggregate(rs, key) or (0, 0, 0, 0))[1] for _, _, rs in fig1]
        ax.bar([i + j * width for i in range(len(fig1))], means, width, yerr=sds, label=label)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(fig1))], [m for m, _, _ in fig1], fontsize=8)
    ax.set_ylabel("%")
    ax.set_ylim(0, 105)
    ax.set_title(f"Figure 1: every mode at {document['fig1_interval']} (mean ± sd over seeds)")
    ax.legend(fontsize=7, ncol=5, loc="lower center")
    fig.tight_layout()
    paths.append(out / "figure1_modes.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    by_mode: dict[str, list[tuple[int, list[dict[str, object]]]]] = {}
    for mode, interval, rs in configurations(document):
        if interval != "inline":
            by_mode.setdefault(mode, []).append((_minutes(interval), rs))
    for ax, (key, label, scale) in zip(axes, (("drift_minutes", "drift (feature-minutes in an episode)", 1), ("lag_mean_s", "lag mean (s)", 1),
                                          ("skew", "skew (%)", 100))):
        for mode, points in by_mode.items():
            xs = [x for x, rs in points if aggregate(rs, key)]
            ys = [scale * aggregate(rs, key)[0] for _, rs in points if aggregate(rs, key)]  # type: ignore[index]
            es = [scale * aggregate(rs, key)[1] for _, rs in points if aggregate(rs, key)]  # type: ignore[index]
            ax.errorbar(xs, ys, yerr=es, marker="o", label=mode, capsize=2)
        ax.set_xlabel("sync interval (min)")
        ax.set_xscale("log")
        ax.set_title(label)
    axes[0].legend(fontsize=7)
    fig.suptitle("Figure 2: the intervals (mean ± sd over seeds)")
    fig.tight_layout()
    paths.append(out / "figure2_intervals.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths
