"""Reference (specification) of the stored value layout and of the batch freshness check.

Value = FORMAT (1) | dtype (1) | flags (1, bit 0 = null) | event time (i64 LE, µs) | write time (i64 LE, µs) | payload

payload by dtype: int64 i64 LE; double f64 LE; float f32 LE; bool 1 byte; string utf-8; bytes raw;
float_vector dim × f32 LE. A null stores no payload. The dtype byte lets a reader refuse a value written
under another definition instead of misreading it.
"""
from __future__ import annotations

import struct
from collections.abc import Sequence

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
    write_time: int,
    vector_dim: int = 0,
) -> list[bytes]:
    """Encode one feature column of a publish chunk. values: ndarray for fixed types and vectors, list otherwise."""
    if dtype in _FIXED:
        values = np.asarray(values, dtype=_FIXED[dtype][1])
    out: list[bytes] = []
    for row in range(len(nulls)):
        is_null = bool(nulls[row])
        head = HEADER.pack(VALUE_FORMAT, dtype, FLAG_NULL if is_null else 0, int(event_times[row]), write_time)
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


def decode_column(
    raw: Sequence[bytes | None], start: int, stride: int, count: int, dtype: int, vector_dim: int = 0
) -> tuple[object, np.ndarray, np.ndarray, np.ndarray]:
    """Decode raw[start + i*stride] for i < count into (values, is_null, found, event_times).

    Missing and null entries get zero/empty placeholders so the result stays a dense typed column. A value
    whose dtype byte disagrees with `dtype` is treated as missing: never serve bytes under the wrong type.
    """
    is_null = np.zeros(count, dtype=np.bool_)
    found = np.zeros(count, dtype=np.bool_)
    event_times = np.zeros(count, dtype=np.int64)
    if dtype in _FIXED:
        values: object = np.zeros(count, dtype=_FIXED[dtype][1])
    elif dtype == FLOAT_VECTOR:
        values = np.zeros((count, vector_dim), dtype=np.float32)
    elif dtype == STRING:
        values = [""] * count
    elif dtype == BYTES:
        values = [b""] * count
    else:
        raise ValueError(f"unknown dtype code {dtype}")
    for i in range(count):
        blob = raw[start + i * stride]
        if blob is None or len(blob) < HEADER_SIZE:
            continue
        fmt, stored_dtype, flags, event_time, _ = HEADER.unpack_from(blob)
        if fmt != VALUE_FORMAT or stored_dtype != dtype:
            continue
        payload = blob[HEADER_SIZE:]
        if flags & FLAG_NULL:
            found[i] = True
            is_null[i] = True
            event_times[i] = event_time
            continue
        if dtype in _FIXED:
            fmt_char = _FIXED[dtype][0]
            if len(payload) != struct.calcsize(fmt_char):
                continue
            values[i] = struct.unpack(fmt_char, payload)[0]  # type: ignore[index]
        elif dtype == STRING:
            values[i] = payload.decode("utf-8")  # type: ignore[index]
        elif dtype == BYTES:
            values[i] = bytes(payload)  # type: ignore[index]
        else:
            if len(payload) != 4 * vector_dim:
                continue
            values[i] = np.frombuffer(payload, dtype="<f4")  # type: ignore[index]
        found[i] = True
        event_times[i] = event_time
    return values, is_null, found, event_times


def event_times_of(raw: Sequence[bytes | None]) -> np.ndarray:
    """Event time of each stored value, -1 where there is none (used to never overwrite newer with older)."""
    out = np.full(len(raw), -1, dtype=np.int64)
    for i, blob in enumerate(raw):
        if blob is not None and len(blob) >= HEADER_SIZE and blob[0] == VALUE_FORMAT:
            out[i] = HEADER.unpack_from(blob)[3]
    return out


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
