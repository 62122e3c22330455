"""Reference (specification) of the fused serving step: entity rows -> serialised fsd.v1.FeatureColumn bytes.

For each requested feature version: find its value in each row, decode, compute the status (PRESENT, NOT_FOUND,
STALE, BLOCKED) and write the column in protobuf wire format (what SerializeToString produces for the same
message; tests/unit/test_wire.py proves that). The compiled twin does it in one pass without numpy objects.

spec = (head, slot, dtype, vector_dim, max_age_micros, mode): head is the serialised fields 1-5 of the column
(ref, group, feature, version, dtype); mode 0 = normal, 1 = blocked, 2 = group marked stale.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from fsd.codec import _rows_py, _values_py

MODE_NORMAL, MODE_BLOCKED, MODE_GROUP_STALE = 0, 1, 2
STATUS_BLOCKED = 4
_LIST_FIELD = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7}  # dtype -> Column oneof field number


def varint(value: int) -> bytes:
    """Protobuf base-128 varint; negative numbers as 64-bit two's complement (10 bytes), like int64."""
    value &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


def typed_list(dtype: int, values: object, vector_dim: int) -> bytes:
    """The XList message of a Column (Int64List, DoubleList, ...), fields in protobuf's order."""
    if dtype == 1:
        return delimited(b"\x0a", np.ascontiguousarray(values, dtype="<i8").tobytes())
    if dtype == 2:
        return delimited(b"\x0a", np.ascontiguousarray(values, dtype="<f8").tobytes())
    if dtype == 3:
        return delimited(b"\x0a", np.ascontiguousarray(values, dtype="<f4").tobytes())
    if dtype == 4:
        return delimited(b"\x0a", np.ascontiguousarray(values, dtype=np.bool_).view(np.uint8).tobytes())
    if dtype == 5:
        return b"".join(delimited(b"\x0a", v.encode("utf-8")) for v in values)  # type: ignore[attr-defined]
    if dtype == 6:
        return b"".join(delimited(b"\x0a", v) for v in values)  # type: ignore[attr-defined]
    flat = np.ascontiguousarray(values, dtype="<f4").tobytes()
    head = b"\x08" + varint(vector_dim) if vector_dim else b""
    return head + (delimited(b"\x12", flat) if flat else b"")


def column_bytes(head: bytes, dtype: int, vector_dim: int, values: object, is_null: np.ndarray, statuses: np.ndarray, event_times: np.ndarray) -> bytes:
    """A serialised FeatureColumn from dense arrays."""
    column = delimited(bytes([(_LIST_FIELD[dtype] << 3) | 2]), typed_list(dtype, values, vector_dim))
    count = len(statuses)
    parts = [head, delimited(b"\x32", column)]
    if count:
        parts.append(b"\x3a" + varint(count) + np.ascontiguousarray(is_null, dtype=np.bool_).view(np.uint8).tobytes())
        parts.append(b"\x42" + varint(count) + np.ascontiguousarray(statuses, dtype=np.uint8).tobytes())
        parts.append(b"\x4a" + varint(8 * count) + np.ascontiguousarray(event_times, dtype="<i8").tobytes())
    return b"".join(parts)


def decoded_column(
    rows: Sequence[bytes | None], spec: tuple, now_micros: int,  # type: ignore[type-arg]
    decode_feature: Callable = _rows_py.decode_feature, freshness_status: Callable = _values_py.freshness_status,  # type: ignore[type-arg]
) -> tuple[object, np.ndarray, np.ndarray, np.ndarray]:
    """(values, is_null, statuses, event_times) of one spec, as served (lookup passes the compiled functions)."""
    _, slot, dtype, dim, max_age, mode = spec
    count = len(rows)
    if mode == MODE_BLOCKED:  # never let a blocked version's values out, not even as placeholders
        values, is_null, _, event_times = decode_feature([None] * count, slot, dtype, dim)
        return values, is_null, np.full(count, STATUS_BLOCKED, dtype=np.uint8), event_times
    values, is_null, found, event_times = decode_feature(rows, slot, dtype, dim)
    statuses = freshness_status(found, event_times, now_micros, max_age)
    if mode == MODE_GROUP_STALE:
        statuses = np.where(found, np.uint8(_values_py.STATUS_STALE), statuses).astype(np.uint8)
    return values, is_null, statuses, event_times


def encode_feature_columns(rows: Sequence[bytes | None], specs: Sequence[tuple], now_micros: int) -> list[bytes]:  # type: ignore[type-arg]
    out = []
    for spec in specs:
        values, is_null, statuses, event_times = decoded_column(rows, spec, now_micros)
        out.append(column_bytes(spec[0], spec[2], spec[3], values, is_null, statuses, event_times))
    return out


def frame_response(entity_count: int, columns: Sequence[bytes], served_at: int, manifest: bytes, epoch: int = 0) -> bytes:
    """A serialised GetFeaturesResponse from serialised FeatureColumns (fields 1-5 in order, defaults omitted)."""
    parts = [b"\x08" + varint(entity_count)] if entity_count else []
    parts.extend(delimited(b"\x12", column) for column in columns)
    if served_at:
        parts.append(b"\x18" + varint(served_at))
    if manifest:
        parts.append(delimited(b"\x22", manifest))
    if epoch:
        parts.append(b"\x28" + varint(epoch))
    return b"".join(parts)
