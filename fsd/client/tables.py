"""Plain-text tables for the CLI (no colour codes unless asked, so output stays greppable)."""
from __future__ import annotations

from collections.abc import Sequence


def render(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, bytes):
        return value.hex()[:16] + ("…" if len(value) > 8 else "")
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_cell(v) for v in value[:3])
        return f"[{inner}{', …' if len(value) > 3 else ''}]"
    return str(value)
