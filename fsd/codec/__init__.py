"""Picks the compiled codec (fsd._native) or the pure-Python reference; FSD_NO_EXTENSIONS=1 forces the reference."""
from __future__ import annotations

import os

from fsd.codec import _columns_py, _keys_py, _request_py, _rows_py, _values_py
from fsd.codec._keys_py import KEY_FORMAT, MAX_KEY_STRING_BYTES, SHARD_TAG_CHARS, group_prefix, shard_tag
from fsd.codec._rows_py import build_row, parse_row, remove_slot
from fsd.codec._values_py import HEADER_SIZE, STATUS_NOT_FOUND, STATUS_PRESENT, STATUS_STALE, VALUE_FORMAT, decode_value

_native = None
REFERENCE_REQUESTED: bool = os.environ.get("FSD_NO_EXTENSIONS", "") in ("1", "true", "yes")
if not REFERENCE_REQUESTED:
    try:
        from fsd import _native  # type: ignore[no-redef]
    except ImportError:  # not built (e.g. running from a source tree without pip install)
        _native = None

NATIVE: bool = _native is not None

encode_entities = _native.encode_entities if _native else _keys_py.encode_entities
entity_keys = _native.entity_keys if _native else _keys_py.entity_keys
encode_values = _native.encode_values if _native else _values_py.encode_values
merge_rows = _native.merge_rows if _native else _rows_py.merge_rows
decode_feature = _native.decode_feature if _native else _rows_py.decode_feature
freshness_status = _native.freshness_status if _native else _values_py.freshness_status
encode_feature_columns = _native.encode_feature_columns if _native else _columns_py.encode_feature_columns
frame_response = _native.frame_response if _native else _columns_py.frame_response
int64_row_keys = _native.int64_row_keys if _native else _keys_py.int64_row_keys


split_get_request = _native.split_get_request if _native else _request_py.split_get_request

__all__ = [
    "NATIVE",
    "REFERENCE_REQUESTED",
    "KEY_FORMAT",
    "MAX_KEY_STRING_BYTES",
    "HEADER_SIZE",
    "VALUE_FORMAT",
    "STATUS_PRESENT",
    "STATUS_NOT_FOUND",
    "STATUS_STALE",
    "encode_entities",
    "entity_keys",
    "encode_values",
    "merge_rows",
    "decode_feature",
    "decode_value",
    "freshness_status",
    "encode_feature_columns",
    "frame_response",
    "int64_row_keys",
    "split_get_request",
    "group_prefix",
    "shard_tag",
    "SHARD_TAG_CHARS",
    "parse_row",
    "build_row",
    "remove_slot",
]
