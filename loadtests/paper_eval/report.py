"""The evaluation's Markdown table (mean and spread over seeds) and its two figures."""
from __future__ import annotations

import statistics
from pathlib import Path

METRICS = (("freshness", "freshness", "pct"), ("sync_success", "sync success", "pct"), ("consistency", "consistency", "pct"),
           ("drift_events", "drift events", "num"), ("lag_mean_s", "lag mean s", "num"), ("lag_p95_s", "lag p95 s", "num"),
           ("skew", "skew", "pct"), ("sync_runs", "sync runs", "num"))


def pct(value: object) -> str:
    return "not measured" if value is None else f"{100 * float(value):.1f} %"  # type: ignore[arg-type]


def num(value: object) -> str:
    return "not measured" if value is None else f"{float(value):.1f}"  # type: ignore[arg-type]


def aggregate(results: list[dict[str, object]], key: str) -> tuple[float, float, float] | None:
    """(mean, min, max) over seeds; None where a metric was not measured."""
    values = [float(r[key]) for r in results if r.get(key) is not None]  # type: ignore[arg-type]
    if not values:
        return None
    return statistics.fmean(values), min(values), max(values)


def _cell(agg: tuple[float, float, float] | None, kind: str) -> str:
    if agg is None:
        return "not measured"
    mean, low, high = agg
    scale, unit = (100, " %") if kind == "pct" else (1, "")
    text = f"{scale * mean:.1f}{unit}"
    return text if high == low else f"{text} ({scale * low:.1f}–{scale * high:.1f})"


_MODE_ORDER = ("single-node", "offline-only", "split", "distributed", "versioned")
_INTERVAL_ORDER = ("-", "1m", "5m", "15m", "30m", "60m", "adaptive")


def configurations(document: dict[str, object]) -> list[tuple[str, str, list[dict[str, object]]]]:
    """(mode, interval, the seeds' results), modes and intervals in a fixed order."""
    out: dict[tuple[str, str], list[dict[str, object]]] = {}
    for r in document["results"]:  # type: ignore[union-attr]
        out.setdefault((str(r["mode"]), str(r["interval"])), []).append(r)

    def order(key: tuple[str, str]) -> tuple[int, int]:
        mode, interval = key
        return (_MODE_ORDER.index(mode) if mode in _MODE_ORDER else 99, _INTERVAL_ORDER.index(interval) if interval in _INTERVAL_ORDER else 99)

    return [(mode, interval, out[(mode, interval)]) for mode, interval in sorted(out, key=order)]


def table(document: dict[str, object]) -> str:
    seeds = document["seeds"]
    lines = [f"{document['entities']} entities, {document['hours']} simulated hours, seeds {seeds} (mean, and min–max over seeds)", "",
             "| mode | interval | " + " | ".join(label for _, label, _ in METRICS) + " |",
             "|---|---|" + "---|" * len(METRICS)]
    for mode, interval, rs in configurations(document):
        lines.append(f"| {mode} | {interval} | " + " | ".join(_cell(aggregate(rs, key), kind) for key, _, kind in METRICS) + " |")
    adaptive = [rs for mode, interval, rs in configurations(document) if interval == "adaptive"]
    if adaptive:
        by_group: dict[str, list[int]] = {}
        for r in adaptive[0]:
            for group, count in r["runs_by_group"].items():  # type: ignore[union-attr]
                by_group.setdefault(group, []).append(count)
        lines += ["", "Adaptive runs per group (mean over seeds): " +
                  ", ".join(f"{g} {statistics.fmean(c):.0f}" for g, c in sorted(by_group.items()))]
    return "\n".join(lines)


def plots(document: dict[str, object], folder: Path) -> list[Path]:
    from loadtests.plotting import pyplot, save

    plt = pyplot()

    paths = []
    configs = configurations(document)
    at = "5m" if any(i == "5m" for _, i, _ in configs) else "15m"
    chosen = [(m, i, rs) for m, i, rs in configs if i in (at, "-")]
    if chosen:
        fig, ax = plt.subplots(figsize=(7.5, 4.2))
        keys = (("freshness", "freshness"), ("sync_success", "sync success"), ("consistency", "serving consistency"))
        width = 0.8 / len(chosen)
        for n, (mode, interval, rs) in enumerate(chosen):
            spans = [aggregate(rs, k) for k, _ in keys]
            heights = [100 * a[0] if a else float("nan") for a in spans]  # not measured: no bar, a label
            errors = [[100 * (a[0] - a[1]) if a else 0 for a in spans], [100 * (a[2] - a[0]) if a else 0 for a in spans]]
            xs = [x + n * width for x in range(len(keys))]
            ax.bar(xs, heights, width, yerr=errors, capsize=3, label=f"{mode}" + (f" ({interval})" if interval != "-" else ""))
            for x, a in zip(xs, spans):
                if a is None:
                    ax.text(x, 2, "not measured", rotation=90, ha="center", va="bottom", fontsize=7)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(keys))], [label for _, label in keys])
        ax.set_ylabel("%")
        ax.set_ylim(0, 105)
        ax.set_title(f"Deployment modes at a {at} sync interval (bars: mean; whiskers: seed range)")
        ax.legend(fontsize=8, loc="lower right")
        paths.append(save(fig, folder / "figure1_modes.png"))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    for mode in ("split", "versioned"):
        series = [(i, rs) for m, i, rs in configs if m == mode and i.endswith("m")]
        series.sort(key=lambda x: int(x[0][:-1]))
        if not series:
            continue
        x = [int(i[:-1]) for i, _ in series]
        for ax, key, label in zip(axes, ("drift_events", "lag_mean_s", "skew"), ("version-drift events", "mean online lag, s", "training-inference skew, %")):
            scale = 100 if key == "skew" else 1
            ys = [scale * (aggregate(rs, key) or (0, 0, 0))[0] for _, rs in series]
            ax.plot(x, ys, "o-", label=mode)
            ax.set_xlabel("sync interval, simulated minutes")
            ax.set_title(label)
            ax.set_xscale("log")
            ax.grid(True, alpha=0.3)
    axes[0].legend()
    paths.append(save(fig, folder / "figure2_intervals.png"))
    return paths
