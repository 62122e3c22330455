"""Pure-Python reference of the GetFeatures request split (the specification the native splitter must equal).

A GetFeaturesRequest in its common shape — entity columns (each a name and either one packed run of int64
values or strings), feature refs, optionally a manifest — is split into (features_key, manifest, columns)
without building protobuf objects. features_key is the raw bytes of every `features` field in order (itself a
valid GetFeaturesRequest holding only the refs), int64 columns stay little-endian bytes. Anything else (unknown
fields, unpacked or split runs, a column without a name or values, invalid UTF-8, truncation) gives None: the
caller then parses with protobuf, which reports errors.
"""
from __future__ import annotations

from fsd.codec import wire_fields as f

_U64 = (1 << 64) - 1
_LEN = 2  # wire type of length-delimited fields

SplitRequest = tuple[bytes, str, list[tuple[str, "bytes | list[str]"]]]


def _varint(raw: bytes, pos: int, end: int) -> tuple[int, int]:
    """(value, position after it), or (0, -1) when truncated or longer than 10 bytes."""
    value = shift = 0
    while pos < end and shift < 70:
        byte = raw[pos]
        value = (value | (byte & 0x7F) << shift) & _U64
        if not byte & 0x80:
            return value, pos + 1
        pos += 1
        shift += 7
    return 0, -1


def _field(raw: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, payload size, payload position) of a length-delimited field at pos; position -1 if it is not one."""
    tag, pos = _varint(raw, pos, end)
    if pos < 0 or tag & 7 != _LEN:
        return 0, 0, -1
    size, pos = _varint(raw, pos, end)
    if pos < 0 or size > end - pos:
        return 0, 0, -1
    return tag, size, pos


def _column(raw: bytes, pos: int, end: int) -> tuple[str, bytes | list[str]] | None:
    name: str | None = None
    values: bytes | list[str] | None = None
    while pos < end:
        tag, size, pos = _field(raw, pos, end)
        if pos < 0:
            return None
        inner, inner_end = pos, pos + size
        if tag == f.tag(f.ENTITY_COLUMN_NAME) and name is None:
            name = raw[inner:inner_end].decode("utf-8")
        elif tag == f.tag(f.ENTITY_COLUMN_INT64_VALUES) and values is None:
            if inner < inner_end:  # Int64List: at most one packed `values` field
                inner_tag, inner = _varint(raw, inner, inner_end)
                if inner < 0 or inner_tag != f.tag(f.INT64_LIST_VALUES):
                    return None
                length, inner = _varint(raw, inner, inner_end)
                if inner < 0 or length != inner_end - inner or length % 8:
                    return None
            values = raw[inner:inner_end]
        elif tag == f.tag(f.ENTITY_COLUMN_STRING_VALUES) and values is None:
            strings = []
            while inner < inner_end:
                inner_tag, inner = _varint(raw, inner, inner_end)
                if inner < 0 or inner_tag != f.tag(f.STRING_LIST_VALUES):
                    return None
                length, inner = _varint(raw, inner, inner_end)
                if inner < 0 or length > inner_end - inner:
                    return None
                strings.append(raw[inner:inner + length].decode("utf-8"))
                inner += length
            values = strings
        else:
            return None
        pos = inner_end
    if name is None or values is None:
        return None
    return name, values


def split_get_request(raw: bytes) -> SplitRequest | None:
    try:
        return _split(raw)
    except UnicodeDecodeError:
        return None


def _split(raw: bytes) -> SplitRequest | None:
    end = len(raw)
    pos = 0
    manifest = ""
    columns: list[tuple[str, bytes | list[str]]] = []
    features = bytearray()
    while pos < end:
        start = pos
        tag, size, pos = _field(raw, pos, end)
        if pos < 0:
            return None
        if tag == f.tag(f.REQUEST_ENTITIES):
            column = _column(raw, pos, pos + size)
            if column is None:
                return None
            columns.append(column)
        elif tag == f.tag(f.REQUEST_FEATURES):
            features += raw[start:pos + size]
        elif tag == f.tag(f.REQUEST_MANIFEST):  # the last one wins, as in protobuf
            manifest = raw[pos:pos + size].decode("utf-8")
        else:
            return None
        pos += size
    if not columns:
        return None
    return bytes(features), manifest, columns
