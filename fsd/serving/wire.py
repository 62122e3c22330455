"""Serialises GetFeaturesResponse straight from the numpy columns of a lookup.

The bytes are what protobuf's SerializeToString produces for the same message (tests prove it), but built
from whole arrays: fixed-width columns (sfixed64, double, float, bool, enum) are copied as raw little-endian
buffers instead of being appended value by value. Measured for 100 entities × 10 features: ≈150 µs with
message building vs a small fraction of that here.
"""
from __future__ import annotations

import numpy as np

from fsd.domain import DType
from fsd.lookup import FeatureResult, LookupResult
from fsd.v1 import serving_pb2

# (field number << 3) | wire type 2 (length-delimited)
_COLUMN_FIELD = {DType.INT64: 1, DType.DOUBLE: 2, DType.FLOAT: 3, DType.BOOL: 4, DType.STRING: 5, DType.BYTES: 6, DType.FLOAT_VECTOR: 7}
_TAG_VALUES, _TAG_IS_NULL, _TAG_STATUSES, _TAG_EVENT_TIMES = b"\x32", b"\x3a", b"\x42", b"\x4a"
_TAG_LIST_VALUES = b"\x0a"
_TAG_VECTOR_DIM, _TAG_VECTOR_VALUES = b"\x08", b"\x12"
_TAG_ENTITY_COUNT, _TAG_FEATURES, _TAG_SERVED_AT, _TAG_MANIFEST = b"\x08", b"\x12", b"\x18", b"\x22"


def varint(value: int) -> bytes:
    """Protobuf base-128 varint; negative numbers as their 64-bit two's complement (10 bytes), like int64."""
    value &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


def _typed_list(dtype: DType, values: object, vector_dim: int) -> bytes:
    if dtype == DType.INT64:
        return _delimited(_TAG_LIST_VALUES, np.ascontiguousarray(values, dtype="<i8").tobytes())
    if dtype == DType.DOUBLE:
        return _delimited(_TAG_LIST_VALUES, np.ascontiguousarray(values, dtype="<f8").tobytes())
    if dtype == DType.FLOAT:
        return _delimited(_TAG_LIST_VALUES, np.ascontiguousarray(values, dtype="<f4").tobytes())
    if dtype == DType.BOOL:
        return _delimited(_TAG_LIST_VALUES, np.ascontiguousarray(values, dtype=np.bool_).view(np.uint8).tobytes())
    if dtype == DType.STRING:
        return b"".join(_delimited(_TAG_LIST_VALUES, v.encode("utf-8")) for v in values)  # type: ignore[attr-defined]
    if dtype == DType.BYTES:
        return b"".join(_delimited(_TAG_LIST_VALUES, v) for v in values)  # type: ignore[attr-defined]
    flat = np.ascontiguousarray(values, dtype="<f4").tobytes()
    head = _TAG_VECTOR_DIM + varint(vector_dim) if vector_dim else b""
    return head + (_delimited(_TAG_VECTOR_VALUES, flat) if flat else b"")


class ResponseEncoder:
    """Caches the serialised head (ref, group, feature, version, dtype) of each column it has seen."""

    def __init__(self) -> None:
        self._heads: dict[tuple[str, int, int], bytes] = {}

    def _head(self, item: FeatureResult) -> bytes:
        f = item.feature
        key = (item.ref, f.slot, f.version)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) > 100_000:
                self._heads.clear()
            head = serving_pb2.FeatureColumn(
                ref=item.ref, group=f.group, feature=f.feature, version=f.version, dtype=int(f.dtype)
            ).SerializeToString()
            self._heads[key] = head
        return head

    def column(self, item: FeatureResult) -> bytes:
        f = item.feature
        typed = _typed_list(f.dtype, item.values, f.vector_dim)
        column = _delimited(bytes([(_COLUMN_FIELD[f.dtype] << 3) | 2]), typed)
        count = len(item.statuses)
        parts = [self._head(item), _delimited(_TAG_VALUES, column)]
        if count:
            parts.append(_TAG_IS_NULL + varint(count) + item.is_null.view(np.uint8).tobytes())
            parts.append(_TAG_STATUSES + varint(count) + item.statuses.astype(np.uint8, copy=False).tobytes())
            parts.append(_TAG_EVENT_TIMES + varint(8 * count) + np.ascontiguousarray(item.event_times, dtype="<i8").tobytes())
        return b"".join(parts)

    def response(self, result: LookupResult) -> bytes:
        parts = [_TAG_ENTITY_COUNT + varint(result.entity_count)] if result.entity_count else []
        parts.extend(_delimited(_TAG_FEATURES, self.column(item)) for item in result.features)
        if result.served_at_micros:
            parts.append(_TAG_SERVED_AT + varint(result.served_at_micros))
        if result.manifest:
            parts.append(_delimited(_TAG_MANIFEST, result.manifest.encode("utf-8")))
        return b"".join(parts)
