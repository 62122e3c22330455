"""Human durations ("15m", "1h30m", "2d", 90) to seconds and back, for definitions and CLI output."""
from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)([smhdw])")


def parse_duration(value: object) -> int:
    """Seconds from an int or a string like '1h30m'; raises ValueError naming the bad text."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"duration must not be negative: {value}")
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 15m, 1h, 1d)")
    text = value.strip().lower().replace(" ", "")
    if text.isdigit():
        return int(text)
    pos, total = 0, 0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 15m, 1h, 1d)")
    return total


def format_duration(seconds: int) -> str:
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)
