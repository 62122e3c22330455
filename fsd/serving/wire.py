"""Serialises GetFeaturesResponse without building a protobuf message per value.

Columns come from the fused native pass (lookup_encoded and the fast path: rows straight to FeatureColumn
bytes), whose readable specification is the array writer of fsd.codec._columns_py; the bytes are what
SerializeToString produces (tests/unit/test_wire.py).
"""
from __future__ import annotations

from fsd import codec
from fsd.codec._columns_py import varint
from fsd.domain import ResolvedFeature
from fsd.v1 import serving_pb2

__all__ = ["ResponseEncoder", "varint"]


class ResponseEncoder:
    """Caches the serialised head (ref, group, feature, version, dtype) of each column it has seen."""

    def __init__(self) -> None:
        self._heads: dict[tuple[str, int, int], bytes] = {}

    def head(self, ref: str, feature: ResolvedFeature) -> bytes:
        key = (ref, feature.slot, feature.version)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) > 100_000:
                self._heads.clear()
            head = serving_pb2.FeatureColumn(
                ref=ref, group=feature.group, feature=feature.feature, version=feature.version, dtype=int(feature.dtype)
            ).SerializeToString()
            self._heads[key] = head
        return head

    def encoded_response(self, entity_count: int, columns: list[bytes], served_at: int, manifest: str) -> bytes:
        return codec.frame_response(entity_count, columns, served_at, manifest.encode("utf-8"))
