"""Small server-rendered SVG charts for the status page: lines over time and sync outcomes as dots. Inline SVG,
no script, no external asset; every label escaped. A series with no point is said in words, never drawn as 0."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from fsd.domain import SyncRun

WIDTH, HEIGHT = 380, 130
LEFT, RIGHT, TOP, BOTTOM = 46, 8, 18, 20
PALETTE = ("#0969da", "#8250df", "#bf3989", "#1a7f37", "#9a6700", "#cf222e", "#57606a")


def _fmt(value: float, unit: str) -> str:
    if unit == "s" and value < 1:
        return f"{value * 1000:.3g}ms"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k{unit}"
    return f"{value:.3g}{unit}"


def _frame(title: str, body: str, top_label: str, bottom_label: str, span_minutes: float) -> str:
    h = HEIGHT - TOP - BOTTOM
    return (f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
            f'<text x="{LEFT}" y="12" font-size="11" fill="#1b1f23">{escape(title)}</text>'
            f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + h}" stroke="#d0d7de"/>'
            f'<line x1="{LEFT}" y1="{TOP + h}" x2="{WIDTH - RIGHT}" y2="{TOP + h}" stroke="#d0d7de"/>'
            f'<text x="{LEFT - 4}" y="{TOP + 8}" font-size="9" text-anchor="end" fill="#57606a">{escape(top_label)}</text>'
            f'<text x="{LEFT - 4}" y="{TOP + h}" font-size="9" text-anchor="end" fill="#57606a">{escape(bottom_label)}</text>'
            f'<text x="{LEFT}" y="{HEIGHT - 4}" font-size="9" fill="#57606a">-{escape(_span(span_minutes))}</text>'
            f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 4}" font-size="9" text-anchor="end" fill="#57606a">now</text>{body}</svg>')


def _span(minutes: float) -> str:
    if minutes >= 90:
        return f"{minutes / 60:.1f}h"
    return f"{minutes:.0f}m" if minutes >= 1 else f"{max(minutes, 0) * 60:.0f}s"


def _x(at: int, start: int, end: int) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * ((at - start) / (end - start) if end > start else 1.0)


def _y(value: float, y_max: float) -> float:
    h = HEIGHT - TOP - BOTTOM
    return TOP + h - h * (value / y_max if y_max > 0 else 0.0)


def line_chart(title: str, series: Mapping[str, Sequence[tuple[int, float]]], unit: str, start: int, end: int) -> str:
    """One line per named series of (time µs, value) points between start and end; a legend under the chart."""
    drawn = {name: points for name, points in series.items() if points}
    if not drawn:
        return f'<div class="chartbox"><p class="muted">{escape(title)}: not measured yet</p></div>'
    y_max = max(v for points in drawn.values() for _, v in points) or 1.0
    lines, legend = [], []
    for i, (name, points) in enumerate(sorted(drawn.items())):
        color = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{_x(t, start, end):.1f},{_y(v, y_max):.1f}" for t, v in points)
        lines.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{coords}"/>' if len(points) > 1 else
                     f'<circle cx="{coords.split(",")[0]}" cy="{coords.split(",")[1]}" r="2.5" fill="{color}"/>')
        legend.append(f'<span class="key" style="border-color:{color}">{escape(name)}</span>')
    return f'<div class="chartbox">{_frame(title, "".join(lines), _fmt(y_max, unit), "0", (end - start) / 6e7)}<div class="legend">{"".join(legend)}</div></div>'


def sync_chart(runs: Sequence[SyncRun], start: int, end: int) -> str:
    """Each sync run of the window as a dot on its group's row: green success, red failure."""
    shown = [r for r in runs if start <= r.started_micros <= end]
    if not shown:
        return '<div class="chartbox"><p class="muted">sync outcomes: no sync run in this window</p></div>'
    groups = sorted({r.group for r in shown})
    h = HEIGHT - TOP - BOTTOM
    row = h / max(len(groups), 1)
    marks = []
    for i, group in enumerate(groups):
        y = TOP + row * (i + 0.5)
        marks.append(f'<text x="{LEFT - 4}" y="{y + 3:.1f}" font-size="9" text-anchor="end" fill="#57606a">{escape(group[:10])}</text>')
        for r in shown:
            if r.group == group:
                color = "#1a7f37" if r.outcome == "success" else "#cf222e"
                marks.append(f'<circle cx="{_x(r.started_micros, start, end):.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>'
                             f'{escape(f"run {r.id} {r.group}: {r.outcome}")}</title></circle>')
    frame = _frame("sync outcomes (green ok, red failed)", "".join(marks), "", "", (end - start) / 6e7)
    return f'<div class="chartbox">{frame}</div>'


__all__ = ["line_chart", "sync_chart"]
