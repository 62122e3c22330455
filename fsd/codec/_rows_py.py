"""Reference (specification) of an entity row: the latest value of each feature version of one entity.

Row = FORMAT (1) | entry count (u16 LE) | entries sorted by slot, each: slot (u32 LE) | length (u32 LE) | value
where value is the layout of _values_py (it carries its own event time). A slot is a never-reused id of
(group, feature, version), so versions live side by side and a pinned read finds exactly its own value.
"""
from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from fsd.codec._values_py import HEADER, HEADER_SIZE, VALUE_FORMAT, decode_value, empty_column

ROW_FORMAT = 0x01
_ROW_HEAD = struct.Struct("<BH")
_ENTRY_HEAD = struct.Struct("<II")
MAX_ENTRIES = 0xFFFF


def parse_row(row: bytes | None) -> dict[int, bytes]:
    """slot -> value; an absent, empty or foreign-format row has no entries."""
    if row is None or len(row) < _ROW_HEAD.size or row[0] != ROW_FORMAT:
        return {}
    _, count = _ROW_HEAD.unpack_from(row)
    pos = _ROW_HEAD.size
    entries: dict[int, bytes] = {}
    for _ in range(count):
        if pos + _ENTRY_HEAD.size > len(row):
            return {}  # truncated: serve nothing rather than garbage
        slot, length = _ENTRY_HEAD.unpack_from(row, pos)
        pos += _ENTRY_HEAD.size
        if pos + length > len(row):
            return {}
        entries[slot] = row[pos : pos + length]
        pos += length
    return entries


def build_row(entries: dict[int, bytes]) -> bytes:
    if len(entries) > MAX_ENTRIES:
        raise ValueError("too many feature versions in one row")
    parts = [_ROW_HEAD.pack(ROW_FORMAT, len(entries))]
    for slot in sorted(entries):
        value = entries[slot]
        parts.append(_ENTRY_HEAD.pack(slot, len(value)) + value)
    return b"".join(parts)


def stamp(value: bytes) -> tuple[int, int]:
    """(event time, created time) of a stored value; (-1, -1) for a malformed one, which anything replaces."""
    if len(value) >= HEADER_SIZE and value[0] == VALUE_FORMAT:
        _, _, _, event_time, created = HEADER.unpack_from(value)
        return int(event_time), int(created)
    return -1, -1


def merge_rows(
    existing: Sequence[bytes | None], slots: Sequence[int], columns: Sequence[Sequence[bytes | None]], replace: bool = False
) -> tuple[list[bytes | None], int, int]:
    """Fold new values (columns[s][e] for slots[s], entity e) into the entities' rows.

    A new value replaces the stored one unless the stored (event time, created time) is greater: a newer event
    wins, and for the same event time the later-computed value (a correction) wins; exact ties: the new one.
    With replace (a forced resync, authoritative), every offered value replaces the stored one.
    Returns (new row per entity, None where nothing changed; values written; values skipped as older).
    """
    out: list[bytes | None] = []
    written = skipped = 0
    for e, row in enumerate(existing):
        entries = parse_row(row)
        changed = False
        for s, slot in enumerate(slots):
            if columns[s][e] is None:  # nothing offered for this entity (e.g. a correction outside the window)
                continue
            old = entries.get(slot)
            if old is not None and not replace and stamp(old) > stamp(columns[s][e]):
                skipped += 1
                continue
            entries[slot] = columns[s][e]
            written += 1
            changed = True
        out.append(build_row(entries) if changed else None)
    return out, written, skipped


def remove_slot(row: bytes, slot: int) -> bytes | None:
    """The row without one feature version's value; None when nothing else is left (delete the key)."""
    entries = parse_row(row)
    entries.pop(slot, None)
    return build_row(entries) if entries else None


def decode_feature(
    rows: Sequence[bytes | None], slot: int, dtype: int, vector_dim: int = 0
) -> tuple[object, np.ndarray, np.ndarray, np.ndarray]:
    """One feature version across entity rows: (values, is_null, found, event_times), dense placeholders."""
    count = len(rows)
    values = empty_column(dtype, count, vector_dim)
    is_null = np.zeros(count, dtype=np.bool_)
    found = np.zeros(count, dtype=np.bool_)
    event_times = np.zeros(count, dtype=np.int64)
    for i, row in enumerate(rows):
        value = parse_row(row).get(slot)
        if value is None:
            continue
        decoded = decode_value(value, dtype, vector_dim)
        if decoded is None:
            continue
        item, null, event_time = decoded
        found[i] = True
        is_null[i] = null
        event_times[i] = event_time
        if not null:
            values[i] = item  # type: ignore[index]
    return values, is_null, found, event_times
