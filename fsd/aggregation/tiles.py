"""Online partial aggregates: per entity, per computed feature version, one partial state per tile, combined at
read time into the value the reference (fsd.aggregation.reference) defines. Stored as one blob per entity and
group in the online store (key: fsd.aggregation.keys), written only by the daemon's push path.

Each tile keeps what its function needs (count; sum accumulated in arrival order; min/max; the last event;
HyperLogLog registers) and the newest event time of every event in it (filtered or null ones too: they make the
value fresh). Tiles that can no longer be counted or corrected (older than window + allowed lateness) are dropped,
their newest event time kept, so a blob stays bounded by 60 tiles plus the lateness.
"""
from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fsd.aggregation import hll
from fsd.aggregation.reference import NOT_FOUND, PRESENT, STALE, passes_value
from fsd.domain.aggregation import TILES_PER_WINDOW, Aggregation, parse_filter

BLOB_FORMAT = 1
FUNCTION_CODES = {"count": 1, "sum": 2, "mean": 3, "min": 4, "max": 5, "last": 6, "count_distinct": 7}
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_HEAD = struct.Struct("<BqH")  # format, the last push sequence folded into this blob, slot count
_SLOT = struct.Struct("<IBqH")
_TILE = struct.Struct("<qqq")  # tile index, newest event time, counted events
_LAST = struct.Struct("<qqqq")  # event time, received, push sequence, row
_REG = struct.Struct("<HB")


@dataclass(slots=True)
class Tile:
    newest: int = 0  # newest event time of any event in the tile
    n: int = 0  # counted events
    s: float = 0.0  # sum (in arrival order)
    extreme: float = 0.0  # min or max (valid when n)
    last: tuple[int, int, int, int] | None = None  # (event time, received, sequence, row) of the last value
    last_value: object = None
    registers: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class SlotTiles:
    function: str
    newest_dropped: int = 0
    tiles: dict[int, Tile] = field(default_factory=dict)


class FeatureTiles:
    """What one computed feature version does with an entity's tiles."""

    def __init__(self, slot: int, agg: Aggregation, lateness_micros: int) -> None:
        self.slot = slot
        self.agg = agg
        self.tile = agg.tile_micros
        self.filter = parse_filter(agg.filter)
        self.keep_tiles = TILES_PER_WINDOW + -(-lateness_micros // self.tile) + 1  # window + lateness, rounded up

    def add(self, state: SlotTiles, event_micros: int, arrival: tuple[int, int, int], values: Mapping[str, object]) -> None:
        """One event, in arrival order (received, sequence, row)."""
        self.add_rows([state], [event_micros], [arrival], {name: [value] for name, value in values.items()})

    def add_rows(self, states: Sequence[SlotTiles], times: Sequence[int], arrivals: Sequence[tuple[int, int, int]],
                 values: Mapping[str, Sequence[object]]) -> None:
        """add() of row i into states[i] for every row (in arrival order): the same result, one tight loop per
        feature instead of a call per event (what a push batch takes)."""
        tile, agg, condition = self.tile, self.agg, self.filter
        column = values.get(agg.column) if agg.column else None
        tested = values.get(condition.column) if condition is not None else None
        f = agg.function
        for i, state in enumerate(states):
            e = times[i]
            k = e // tile
            found = state.tiles.get(k)
            if found is None:
                found = state.tiles[k] = Tile()
            if e > found.newest:
                found.newest = e
            if condition is not None and not passes_value(condition, tested[i] if tested is not None else None):
                continue
            value = column[i] if column is not None else True
            if value is None:
                continue
            if f in ("sum", "mean"):
                found.s += float(value)  # type: ignore[arg-type]
            elif f == "min":
                found.extreme = float(value) if found.n == 0 else min(found.extreme, float(value))  # type: ignore[arg-type]
            elif f == "max":
                found.extreme = float(value) if found.n == 0 else max(found.extreme, float(value))  # type: ignore[arg-type]
            elif f == "last":
                stamp = (e, *arrivals[i])
                if found.last is None or stamp > found.last:
                    found.last, found.last_value = stamp, value  # type: ignore[assignment]
            elif f == "count_distinct":
                hll.add(found.registers, value)
            found.n += 1

    def drop_expired(self, state: SlotTiles, now_micros: int) -> None:
        oldest = now_micros // self.tile - self.keep_tiles
        for k in [k for k in state.tiles if k <= oldest]:
            state.newest_dropped = max(state.newest_dropped, state.tiles.pop(k).newest)

    def value_at(self, state: SlotTiles, t: int, max_age_micros: int) -> tuple[int, object, int]:
        """(status, value, event time) at t, as the reference defines it (the entity has events: not NOT_FOUND)."""
        now_tile = t // self.tile
        chosen = [(k, state.tiles[k]) for k in sorted(state.tiles) if now_tile - TILES_PER_WINDOW < k <= now_tile]
        reach = [tile.newest for k, tile in state.tiles.items() if k <= now_tile]
        newest = max([state.newest_dropped, *reach])
        n = sum(tile.n for _, tile in chosen)
        f = self.agg.function
        value: object
        if f == "count":
            value = n
        elif f in ("sum", "mean"):
            total = 0.0
            for _, tile in chosen:
                if tile.n:
                    total += tile.s
            value = total if f == "sum" else (total / n if n else None)
        elif f in ("min", "max"):
            extremes = [tile.extreme for _, tile in chosen if tile.n]
            value = (min(extremes) if f == "min" else max(extremes)) if extremes else None
        elif f == "last":
            lasts = [(tile.last, tile.last_value) for _, tile in chosen if tile.last is not None]
            value = max(lasts, key=lambda item: item[0])[1] if lasts else None
        else:
            registers: dict[int, int] = {}
            for _, tile in chosen:
                hll.merge(registers, tile.registers)
            value = hll.estimate(registers)
        status = STALE if max_age_micros and newest and t - newest > max_age_micros else PRESENT
        return status, value, newest


def applied_seq(blob: bytes) -> int:
    """The last push sequence folded into this entity's tiles: a replay skips what the entity already holds, so
    a batch written to an engine without atomic multi-key writes (Redis Cluster) never counts twice."""
    return _HEAD.unpack_from(blob, 0)[1]


def encode(states: Mapping[int, SlotTiles], seq: int = 0) -> bytes:
    """An entity's tiles of every computed feature version of its group, as the stored blob."""
    out = bytearray(_HEAD.pack(BLOB_FORMAT, seq, len(states)))
    for slot, state in sorted(states.items()):
        out += _SLOT.pack(slot, FUNCTION_CODES[state.function], state.newest_dropped, len(state.tiles))
        for k, tile in sorted(state.tiles.items()):
            out += _TILE.pack(k, tile.newest, tile.n)
            f = state.function
            if f in ("sum", "mean"):
                out += _F64.pack(tile.s)
            elif f in ("min", "max"):
                out += _F64.pack(tile.extreme)
            elif f == "last":
                out += _LAST.pack(*(tile.last or (0, 0, 0, 0)))
                out += _encode_scalar(tile.last_value)
            elif f == "count_distinct":
                out += struct.pack("<H", len(tile.registers))
                for index, rank in sorted(tile.registers.items()):
                    out += _REG.pack(index, rank)
    return bytes(out)


def decode(blob: bytes) -> dict[int, SlotTiles]:
    fmt, _, count = _HEAD.unpack_from(blob, 0)
    if fmt != BLOB_FORMAT:
        raise ValueError(f"tile blob format {fmt} is not {BLOB_FORMAT}")
    pos = _HEAD.size
    names = {code: name for name, code in FUNCTION_CODES.items()}
    states: dict[int, SlotTiles] = {}
    for _ in range(count):
        slot, code, dropped, tiles = _SLOT.unpack_from(blob, pos)
        pos += _SLOT.size
        state = SlotTiles(names[code], dropped)
        for _ in range(tiles):
            k, newest, n = _TILE.unpack_from(blob, pos)
            pos += _TILE.size
            tile = Tile(newest, n)
            f = state.function
            if f in ("sum", "mean"):
                (tile.s,) = _F64.unpack_from(blob, pos)
                pos += 8
            elif f in ("min", "max"):
                (tile.extreme,) = _F64.unpack_from(blob, pos)
                pos += 8
            elif f == "last":
                stamp = _LAST.unpack_from(blob, pos)
                pos += _LAST.size
                tile.last_value, pos = _decode_scalar(blob, pos)
                tile.last = stamp if tile.n else None
            elif f == "count_distinct":
                (regs,) = struct.unpack_from("<H", blob, pos)
                pos += 2
                for _ in range(regs):
                    index, rank = _REG.unpack_from(blob, pos)
                    pos += _REG.size
                    tile.registers[index] = rank
            state.tiles[k] = tile
        states[slot] = state
    return states


def _encode_scalar(value: object) -> bytes:
    if value is None:
        return b"\x00"
    if isinstance(value, bool):
        return b"\x04" + bytes([value])
    if isinstance(value, int):
        return b"\x01" + _I64.pack(value)
    if isinstance(value, float):
        return b"\x02" + _F64.pack(value)
    raw = str(value).encode("utf-8")
    return b"\x03" + struct.pack("<I", len(raw)) + raw


def _decode_scalar(blob: bytes, pos: int) -> tuple[object, int]:
    tag = blob[pos]
    pos += 1
    if tag == 0:
        return None, pos
    if tag == 4:
        return bool(blob[pos]), pos + 1
    if tag == 1:
        return _I64.unpack_from(blob, pos)[0], pos + 8
    if tag == 2:
        return _F64.unpack_from(blob, pos)[0], pos + 8
    (length,) = struct.unpack_from("<I", blob, pos)
    return blob[pos + 4: pos + 4 + length].decode("utf-8"), pos + 4 + length


__all__ = ["FeatureTiles", "NOT_FOUND", "SlotTiles", "Tile", "decode", "encode"]
