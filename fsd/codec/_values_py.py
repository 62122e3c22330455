"""Reference (specification) of the stored value layout and of the batch freshness check.

Value = FORMAT (1) | dtype (1) | flags (1, bit 0 = null) | event time (i64 LE, µs) | created time (i64 LE, µs) | payload

payload by dtype: int64 i64 LE; double f64 LE; float f32 LE; bool 1 byte; string utf-8; bytes raw;
float_vector dim × f32 LE. A null stores no payload. The dtype byte lets a reader refuse a value written
under another definition instead of misreading it.
"""
from __future__ import annotations

import struct

import numpy as np

VALUE_FORMAT = 0x01
HEADER = struct.Struct("<BBBqq")
HEADER_SIZE = HEADER.size  # 19
FLAG_NULL = 0x01

# dtype codes (equal fsd.domain.DType)
INT64, DOUBLE, FLOAT, BOOL, STRING, BYTES, FLOAT_VECTOR = 1, 2, 3, 4, 5, 6, 7
_FIXED = {INT64: ("<q", np.int64), DOUBLE: ("<d", np.float64), FLOAT: ("<f", np.float32), BOOL: ("<?", np.bool_)}

STATUS_PRESENT, STATUS_NOT_FOUND, STATUS_STALE = 1, 2, 3


def encode_values(
    dtype: int,
    values: object,
    nulls: np.ndarray,
    event_times: np.ndarray,
    created_times: np.ndarray | int,
    vector_dim: int = 0,
) -> list[bytes]:
    """Encode one feature column of a publish chunk. values: ndarray for fixed types and vectors, list otherwise.

    created_times: when each value was computed (one per row, or one for all); it orders values of equal event time.
    """
    created = np.broadcast_to(np.asarray(created_times, dtype=np.int64), (len(nulls),))
    if dtype in _FIXED:
        values = np.asarray(values, dtype=_FIXED[dtype][1])
    out: list[bytes] = []
    for row in range(len(nulls)):
        is_null = bool(nulls[row])
        head = HEADER.pack(VALUE_FORMAT, dtype, FLAG_NULL if is_null else 0, int(event_times[row]), int(created[row]))
        if is_null:
            out.append(head)
        elif dtype in _FIXED:
            out.append(head + struct.pack(_FIXED[dtype][0], values[row]))  # type: ignore[index]
        elif dtype == STRING:
            out.append(head + values[row].encode("utf-8"))  # type: ignore[index]
        elif dtype == BYTES:
            out.append(head + bytes(values[row]))  # type: ignore[index]
        elif dtype == FLOAT_VECTOR:
            out.append(head + np.asarray(values[row], dtype="<f4").tobytes())  # type: ignore[index]
        else:
            raise ValueError(f"unknown dtype code {dtype}")
    return out


def empty_column(dtype: int, count: int, vector_dim: int = 0) -> object:
    """Dense placeholders: zeros for fixed types and vectors, "" / b"" for text and bytes."""
    if dtype in _FIXED:
        return np.zeros(count, dtype=_FIXED[dtype][1])
    if dtype == FLOAT_VECTOR:
        return np.zeros((count, vector_dim), dtype=np.float32)
    if dtype == STRING:
        return [""] * count
    if dtype == BYTES:
        return [b""] * count
    raise ValueError(f"unknown dtype code {dtype}")


def decode_value(blob: bytes, dtype: int, vector_dim: int = 0) -> tuple[object, bool, int] | None:
    """(value, is_null, event_time), or None for a value that is malformed or of another dtype.

    Never serve bytes under the wrong type: a value whose dtype byte disagrees with `dtype` is treated as absent.
    """
    if len(blob) < HEADER_SIZE:
        return None
    fmt, stored_dtype, flags, event_time, _ = HEADER.unpack_from(blob)
    if fmt != VALUE_FORMAT or stored_dtype != dtype:
        return None
    if flags & FLAG_NULL:
        return None, True, event_time
    payload = blob[HEADER_SIZE:]
    if dtype in _FIXED:
        fmt_char = _FIXED[dtype][0]
        if len(payload) != struct.calcsize(fmt_char):
            return None
        return struct.unpack(fmt_char, payload)[0], False, event_time
    if dtype == STRING:
        return payload.decode("utf-8"), False, event_time
    if dtype == BYTES:
        return bytes(payload), False, event_time
    if len(payload) != 4 * vector_dim:
        return None
    return np.frombuffer(payload, dtype="<f4"), False, event_time


def freshness_status(found: np.ndarray, event_times: np.ndarray, now_micros: int, max_age_micros: int) -> np.ndarray:
    """PRESENT, NOT_FOUND, or STALE when now - event_time > max_age (max_age 0 = never stale)."""
    status = np.empty(len(found), dtype=np.uint8)
    for i in range(len(found)):
        if not found[i]:
            status[i] = STATUS_NOT_FOUND
        elif max_age_micros > 0 and now_micros - int(event_times[i]) > max_age_micros:
            status[i] = STATUS_STALE
        else:
            status[i] = STATUS_PRESENT
    return status
