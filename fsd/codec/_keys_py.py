"""Reference (specification) of the online key layout; the Cython twin in native/ must produce identical bytes.

Key = FORMAT (1 byte) | group id (u32 BE) | entity

entity is the group's key columns in declared order, each self-delimiting:
  int64  -> 0x01 | (value XOR 2**63) as u64 BE     (byte order == numeric order)
  string -> 0x02 | utf-8 length as u16 BE | utf-8 bytes

One key holds one entity's row of the group: every feature version's latest value (see _rows_py). Measured
here with 100k entities: 100 random entities × 10 features cost ≈ 850 µs as 1,000 adjacent keys but ≈ 85 µs
as 100 row keys, because RocksDB's cost is per key, not per byte.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

KEY_FORMAT = 0x01
MAX_KEY_STRING_BYTES = 1024
_SIGN = 1 << 63
_INT_TAG = b"\x01"
_STR_TAG = b"\x02"


def encode_entities(columns: Sequence[Sequence[object]], is_string: Sequence[bool]) -> list[bytes]:
    """Encode each row of the key columns (all the same length) into its entity bytes."""
    if not columns:
        return []
    count = len(columns[0])
    out: list[bytearray] = [bytearray() for _ in range(count)]
    for column, string in zip(columns, is_string):
        if len(column) != count:
            raise ValueError("entity key columns differ in length")
        for row, value in enumerate(column):
            if string:
                if not isinstance(value, str):
                    raise TypeError(f"row {row}: string key expected, got {type(value).__name__}")
                raw = value.encode("utf-8")
                if len(raw) > MAX_KEY_STRING_BYTES:
                    raise ValueError(f"row {row}: string key longer than {MAX_KEY_STRING_BYTES} bytes")
                out[row] += _STR_TAG + len(raw).to_bytes(2, "big") + raw
            else:
                number = int(value)  # type: ignore[call-overload]
                if not -_SIGN <= number < _SIGN:
                    raise ValueError(f"row {row}: int64 key out of range")
                out[row] += _INT_TAG + ((number + _SIGN) & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")
    return [bytes(b) for b in out]


def entity_keys(group_id: int, entities: Sequence[bytes]) -> list[bytes]:
    """The row key of each entity in a group."""
    prefix = group_prefix(group_id)
    return [prefix + entity for entity in entities]


def group_prefix(group_id: int) -> bytes:
    """The key range holding every row of one group."""
    return bytes([KEY_FORMAT]) + int(group_id).to_bytes(4, "big")


def int64_row_keys(group_id: int, ids: bytes) -> list[bytes]:
    """Row keys of a group keyed by one int64 column, from packed little-endian ids (a GetFeatures fast path)."""
    count = len(ids) // 8
    values = [int.from_bytes(ids[8 * i : 8 * i + 8], "little", signed=True) for i in range(count)]
    return entity_keys(group_id, encode_entities([values], [False]))


SHARD_TAG_CHARS = 16


def shard_tag(key: bytes) -> bytes:
    """The opaque tag a sharded engine places a key by: keys with the same tag must live together. A row key's tag
    is its entity's (so one entity's rows of every group share a shard, and a group spreads over all of them); any
    other key's is its own. 16 lowercase hex characters of a BLAKE2b hash: uniform over shards whatever the key
    bytes, and never a byte that means something to an engine (Redis reads `{` and `}` as a hash tag's edges)."""
    placed = key[5:] if len(key) >= 5 and key[0] == KEY_FORMAT else key
    return hashlib.blake2b(placed, digest_size=SHARD_TAG_CHARS // 2).hexdigest().encode("ascii")
