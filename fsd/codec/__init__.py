"""Picks the compiled codec (fsd._native) or the pure-Python reference; FSD_NO_EXTENSIONS=1 forces the reference."""
from __future__ import annotations

import os

from fsd.codec import _keys_py, _values_py
from fsd.codec._keys_py import KEY_FORMAT, MAX_KEY_STRING_BYTES, group_prefix, slot_of_key
from fsd.codec._values_py import HEADER_SIZE, STATUS_NOT_FOUND, STATUS_PRESENT, STATUS_STALE, VALUE_FORMAT

_native = None
if os.environ.get("FSD_NO_EXTENSIONS", "") not in ("1", "true", "yes"):
    try:
        from fsd import _native  # type: ignore[no-redef]
    except ImportError:  # not built (e.g. running from a source tree without pip install)
        _native = None

NATIVE: bool = _native is not None

encode_entities = _native.encode_entities if _native else _keys_py.encode_entities
build_keys = _native.build_keys if _native else _keys_py.build_keys
encode_values = _native.encode_values if _native else _values_py.encode_values
decode_column = _native.decode_column if _native else _values_py.decode_column
event_times_of = _native.event_times_of if _native else _values_py.event_times_of
freshness_status = _native.freshness_status if _native else _values_py.freshness_status

__all__ = [
    "NATIVE",
    "KEY_FORMAT",
    "MAX_KEY_STRING_BYTES",
    "HEADER_SIZE",
    "VALUE_FORMAT",
    "STATUS_PRESENT",
    "STATUS_NOT_FOUND",
    "STATUS_STALE",
    "encode_entities",
    "build_keys",
    "encode_values",
    "decode_column",
    "event_times_of",
    "freshness_status",
    "group_prefix",
    "slot_of_key",
]
