"""Growth curves: GetFeatures p99 over the batch size (each beside the bare gRPC echo of the same sizes), and
point-in-time time and peak RSS over the number of entity rows; drawn as PNGs under docs/performance/.

    python -m loadtests.bench --curves [--quick] [--pit-sizes 100000,1000000,10000000] [--data DIR] [--out docs/performance]
"""
from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path

import grpc

from loadtests import dataset

BATCHES = (1, 10, 100, 1000, 5000)


def getfeatures_curve(entities: int, calls: int, rounds: int) -> list[dict[str, float]]:
    """p50/p99 of fsd and of the echo per batch size, sequential calls, rounds alternating between the two."""
    from loadtests.bench import GET_METHOD, build_requests, run_case, start_daemon, start_echo
    from fsd.client import Client

    workdir = Path(tempfile.mkdtemp(prefix="fsd-curves-"))
    daemon, port, _ = start_daemon(workdir / "data", workdir / "daemon.log")
    echo, echo_port = start_echo(workdir)
    out = []
    try:
        target, echo_target = f"127.0.0.1:{port}", f"127.0.0.1:{echo_port}"
        with Client(target, timeout=300) as client:
            dataset.prepare(client, entities)
        for batch in BATCHES:
            count = max(60, calls // max(1, int(batch ** 0.5)))
            requests = build_requests(batch, entities, count + 200, seed=batch)
            with grpc.insecure_channel(target) as channel:
                reply_size = len(channel.unary_unary(GET_METHOD)(requests[0], timeout=30))
            echo_row, fsd_row = run_case(f"{batch}x10 sequential", target, echo_target, requests, reply_size, rounds, 1)
            out.append({"entities": batch, "calls": fsd_row.calls, "fsd_p50_us": fsd_row.p50_us, "fsd_p99_us": fsd_row.p99_us,
                        "echo_p50_us": echo_row.p50_us, "echo_p99_us": echo_row.p99_us, "reply_bytes": reply_size,
                        "ratio_p99": fsd_row.ratio_p99 or 0.0, "ratio_p99_rounds": fsd_row.ratio_p99_rounds or 0.0})
    finally:
        for proc in (daemon, echo):
            proc.terminate()
            proc.wait(30)
    return out


def pit_curve(sizes: list[int], data: Path | None) -> list[dict[str, object]]:
    """Local engine: in memory up to 1M entity rows, out of core beyond (10 feature rows per entity row)."""
    from loadtests.bench_offline import run

    out = []
    for rows in sizes:
        result = run(rows, rows * 10, rows, ["local"], data, out_of_core=rows > 1_000_000, repeats=3 if rows <= 1_000_000 else 1)[0]
        out.append(result)
    return out


def draw(report: dict[str, object], folder: Path) -> list[Path]:
    from loadtests.plotting import pyplot, save

    plt = pyplot()

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    curve = report["getfeatures"]
    if curve:
        x = [r["entities"] for r in curve]  # type: ignore[index]
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        ax.plot(x, [r["fsd_p99_us"] / 1000 for r in curve], "o-", label="fsd GetFeatures p99")  # type: ignore[index]
        ax.plot(x, [r["echo_p99_us"] / 1000 for r in curve], "s--", label="bare gRPC echo p99 (same sizes)")  # type: ignore[index]
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("entities per request (10 double features each)")
        ax.set_ylabel("p99 latency, ms")
        ax.set_title("GetFeatures p99 over batch size, sequential, loopback, 2 cores")
        for r in curve:
            ax.annotate(f"{r['ratio_p99_rounds']:.2f}×", (r["entities"], r["fsd_p99_us"] / 1000), textcoords="offset points", xytext=(4, 6), fontsize=8)  # type: ignore[index]
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        paths.append(save(fig, folder / "getfeatures_p99.png"))
    pit = report["point_in_time"]
    if pit:
        x = [r["entity_rows"] for r in pit]  # type: ignore[index]
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        ax.plot(x, [r["seconds"] for r in pit], "o-", color="tab:blue", label="time, s")  # type: ignore[index]
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("entity rows (x 10 features, over 10 feature rows per entity row)")
        ax.set_ylabel("seconds", color="tab:blue")
        twin = ax.twinx()
        twin.plot(x, [r["peak_rss_mib"] for r in pit], "s--", color="tab:red", label="peak RSS, MiB")  # type: ignore[index]
        twin.set_ylabel("peak RSS, MiB", color="tab:red")
        twin.set_ylim(bottom=0)
        ax.set_title("Point-in-time training set, local engine")
        ax.grid(True, which="both", alpha=0.3)
        paths.append(save(fig, folder / "point_in_time.png"))
    return paths


def table(report: dict[str, object]) -> str:
    lines = ["| entities per request | fsd p50 | fsd p99 | echo p99 | p99 / echo (median of rounds) |", "|---|---|---|---|---|"]
    for r in report["getfeatures"]:  # type: ignore[union-attr]
        lines.append(f"| {r['entities']:,} | {r['fsd_p50_us'] / 1000:.2f} ms | {r['fsd_p99_us'] / 1000:.2f} ms | "
                     f"{r['echo_p99_us'] / 1000:.2f} ms | {r['ratio_p99_rounds']:.2f} × |")
    lines += ["", "| entity rows | feature rows | mode | time | peak RSS |", "|---|---|---|---|---|"]
    for r in report["point_in_time"]:  # type: ignore[union-attr]
        mode = f"out of core, {r['partitions']} partitions" if r["out_of_core"] else "in memory"
        lines.append(f"| {r['entity_rows']:,} | {r['feature_rows']:,} | {mode} | {r['seconds']:.2f} s | {r['peak_rss_mib']:,.0f} MiB |")
    return "\n".join(lines)


def main(quick: bool, pit_sizes: list[int], data: Path | None, out: Path, entities: int, rounds: int) -> int:
    report: dict[str, object] = {
        "getfeatures": getfeatures_curve(20_000 if quick else entities, 300 if quick else 2000, 3 if quick else rounds),
        "point_in_time": pit_curve(pit_sizes, data),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "curves.json").write_text(json.dumps(report, indent=2))
    text = table(report)
    (out / "curves.md").write_text(text + "\n")
    for path in draw(report, out):
        print(f"wrote {path}")
    print(text)
    ratios = [r["ratio_p99_rounds"] for r in report["getfeatures"]]  # type: ignore[union-attr]
    print(f"median p99/echo over batch sizes: {statistics.median(ratios):.2f}")
    return 0
