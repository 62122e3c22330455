"""A stable 64-bit hash of entity-key tuples, vectorised, to split entity rows and feature rows into the same
partitions: equal key tuples (an int64 key as int64, a string key by its UTF-8 bytes) hash alike on both sides."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_BYTE_BASE = np.uint64(0x100000001B3)  # FNV's 64-bit prime: the polynomial's base for string bytes


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit, so low bits make good partition numbers."""
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _string_hash(column: pa.Array) -> np.ndarray:
    """sum(byte_i * BASE^i) over each string's bytes (mod 2^64), with its length mixed in."""
    column = pc.cast(column, pa.large_string())
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int64, count=len(column) + 1, offset=column.offset * 8)
    lengths = np.diff(offsets)
    first = int(offsets[0])
    data = np.frombuffer(column.buffers()[2], dtype=np.uint8, count=int(offsets[-1]) - first, offset=first) if len(column) else np.zeros(0, np.uint8)
    out = lengths.astype(np.uint64)
    if len(data):
        starts = offsets[:-1] - first
        position = np.arange(len(data), dtype=np.int64) - np.repeat(starts, lengths)
        powers = np.ones(int(lengths.max()), dtype=np.uint64)  # BASE^0, BASE^1, ...
        powers[1:] = np.cumprod(np.full(len(powers) - 1, _BYTE_BASE, dtype=np.uint64))
        terms = data.astype(np.uint64) * powers[position]
        nonempty = lengths > 0
        sums = np.add.reduceat(terms, starts[nonempty]) if nonempty.any() else np.zeros(0, np.uint64)
        out[nonempty] += sums
    return out


def _column_hash(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_integer(column.type):
        values = pc.fill_null(pc.cast(column, pa.int64()), 0).to_numpy(zero_copy_only=False)
        return values.view(np.uint64) if values.dtype == np.int64 else values.astype(np.int64).view(np.uint64)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return _string_hash(pc.fill_null(column, ""))
    raise TypeError(f"entity keys are int64 or string, not {column.type}")


def key_hash(keys: Sequence[pa.Array | pa.ChunkedArray]) -> np.ndarray:
    """One uint64 per row of the key columns; equal key tuples hash alike whatever their chunking or string width."""
    with np.errstate(over="ignore"):
        h = np.zeros(len(keys[0]), dtype=np.uint64)
        for column in keys:
            h = _mix(h * np.uint64(31) + _column_hash(column))
        return h


def partition_of(keys: Sequence[pa.Array | pa.ChunkedArray], partitions: int) -> np.ndarray:
    """The partition (0..partitions-1) of each row, as uint16 (numpy's stable sort of it is a radix sort)."""
    if not 1 <= partitions <= 1 << 16:
        raise ValueError("partitions must be in 1..65536")
    return (key_hash(keys) % np.uint64(partitions)).astype(np.uint16)
