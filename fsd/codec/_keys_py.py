"""Reference (specification) of the online key layout; the Cython twin in native/ must produce identical bytes.

Key = FORMAT (1 byte) | group id (u32 BE) | entity | slot (u32 BE)

entity is the group's key columns in declared order, each self-delimiting:
  int64  -> 0x01 | (value XOR 2**63) as u64 BE     (byte order == numeric order)
  string -> 0x02 | utf-8 length as u16 BE | utf-8 bytes

Entity before slot keeps one entity's features adjacent on disk, which made batched reads about twice
as fast here; the fixed-width slot suffix (a never-reused id of group, feature and version) lets a version
be found by scanning its group's range.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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


def build_keys(group_id: int, entities: Sequence[bytes], slots: Sequence[int]) -> list[bytes]:
    """All (entity, slot) keys, entity-major: keys[e * len(slots) + s]."""
    prefix = bytes([KEY_FORMAT]) + int(group_id).to_bytes(4, "big")
    suffixes = [int(s).to_bytes(4, "big") for s in slots]
    return [prefix + entity + suffix for entity in entities for suffix in suffixes]


def group_prefix(group_id: int) -> bytes:
    """The key range holding every value of one group."""
    return bytes([KEY_FORMAT]) + int(group_id).to_bytes(4, "big")


def slot_of_key(key: bytes) -> int:
    return int.from_bytes(key[-4:], "big")


def int_keys_array(values: Sequence[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)
