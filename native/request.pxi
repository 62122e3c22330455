# GetFeatures request split (twin of fsd/codec/_request_py.py).
# --- GetFeatures fast path: request split, int64 row keys, response framing (see fsd/serving/fast_path.py) ---------

from cpython.unicode cimport PyUnicode_DecodeUTF8


cdef inline Py_ssize_t _get_varint(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end, uint64_t* out) noexcept nogil:
    """Position after a varint at pos, or -1 when it is truncated or longer than 10 bytes."""
    cdef uint64_t value = 0
    cdef int shift = 0
    while pos < end and shift < 70:
        value |= (<uint64_t>(p[pos] & 0x7F)) << shift
        if not (p[pos] & 0x80):
            out[0] = value
            return pos + 1
        pos += 1
        shift += 7
    return -1


def split_get_request(bytes raw):
    """(features_key, manifest, columns) when the request has the common shape: entity columns, each a name and
    either one packed run of int64 values (kept as little-endian bytes) or strings (a list of str), refs, and
    optionally a manifest. features_key is the raw bytes of every `features` field in order (itself a valid
    GetFeaturesRequest holding only the refs). None for anything else or anything unexpected (unknown fields,
    unpacked or split runs, a column without name or values, invalid UTF-8): the caller then parses with
    protobuf, which reports errors."""
    try:
        return _split_get_request(raw)
    except UnicodeDecodeError:
        return None


cdef object _split_column(const unsigned char* p, Py_ssize_t sub, Py_ssize_t sub_end):
    """(name, values) of one EntityColumn, or None."""
    cdef Py_ssize_t inner, inner_end, field_length
    cdef uint64_t sub_tag, inner_tag, size
    cdef object name = None, values = None
    cdef list strings
    while sub < sub_end:
        sub = _get_varint(p, sub, sub_end, &sub_tag)
        if sub < 0 or (sub_tag & 7) != LENGTH_DELIMITED:
            return None
        sub = _get_varint(p, sub, sub_end, &size)
        if sub < 0 or size > <uint64_t>(sub_end - sub):
            return None
        field_length = <Py_ssize_t>size
        inner, inner_end = sub, sub + field_length
        if sub_tag == ENTITY_COLUMN_NAME_TAG and name is None:
            name = PyUnicode_DecodeUTF8(<const char*>p + sub, field_length, NULL)
        elif sub_tag == ENTITY_COLUMN_INT64_VALUES_TAG and values is None:  # Int64List: at most one packed `values` field
            if inner < inner_end:
                inner = _get_varint(p, inner, inner_end, &inner_tag)
                if inner < 0 or inner_tag != LIST_VALUES_TAG:
                    return None
                inner = _get_varint(p, inner, inner_end, &size)
                if inner < 0 or size != <uint64_t>(inner_end - inner) or size % 8:
                    return None
            values = PyBytes_FromStringAndSize(<const char*>p + inner, inner_end - inner)
        elif sub_tag == ENTITY_COLUMN_STRING_VALUES_TAG and values is None:  # StringList: `values` strings
            strings = []
            while inner < inner_end:
                inner = _get_varint(p, inner, inner_end, &inner_tag)
                if inner < 0 or inner_tag != LIST_VALUES_TAG:
                    return None
                inner = _get_varint(p, inner, inner_end, &size)
                if inner < 0 or size > <uint64_t>(inner_end - inner):
                    return None
                strings.append(PyUnicode_DecodeUTF8(<const char*>p + inner, <Py_ssize_t>size, NULL))
                inner += <Py_ssize_t>size
            values = strings
        else:
            return None
        sub += field_length
    if name is None or values is None:
        return None
    return name, values


cdef object _split_get_request(bytes raw):
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(raw)
    cdef Py_ssize_t end = PyBytes_GET_SIZE(raw), pos = 0, start, length
    cdef uint64_t tag, size
    cdef object manifest = "", column
    cdef list columns = []
    cdef bytearray features = bytearray()
    while pos < end:
        start = pos
        pos = _get_varint(p, pos, end, &tag)
        if pos < 0 or (tag & 7) != LENGTH_DELIMITED:
            return None
        pos = _get_varint(p, pos, end, &size)
        if pos < 0 or size > <uint64_t>(end - pos):
            return None
        length = <Py_ssize_t>size
        if tag == REQUEST_ENTITIES_TAG:  # EntityColumn
            column = _split_column(p, pos, pos + length)
            if column is None:
                return None
            columns.append(column)
        elif tag == REQUEST_FEATURES_TAG:  # a feature ref
            features += raw[start:pos + length]
        elif tag == REQUEST_MANIFEST_TAG:  # manifest (the last one wins, as in protobuf)
            manifest = PyUnicode_DecodeUTF8(<const char*>p + pos, length, NULL)
        else:
            return None
        pos += length
    if not columns:
        return None
    return bytes(features), manifest, columns
