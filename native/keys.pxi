# Entity and row keys (twin of fsd/codec/_keys_py.py).
def encode_entities(list columns, list is_string):
    """Encode each row of the key columns into its entity bytes (see _keys_py.encode_entities)."""
    cdef Py_ssize_t ncols = len(columns)
    if ncols == 0:
        return []
    cdef Py_ssize_t count = len(columns[0])
    cdef Py_ssize_t row, c, size, pos, n
    cdef list encoded_cols = []
    cdef list col_bytes
    cdef cnp.int64_t[::1] ints
    cdef object value
    cdef bytes raw
    cdef char* out
    cdef uint64_t u
    cdef list result = [None] * count
    cdef Py_ssize_t[::1] sizes = np.zeros(count, dtype=np.intp)

    for c in range(ncols):
        column = columns[c]
        if len(column) != count:
            raise ValueError("entity key columns differ in length")
        if is_string[c]:
            col_bytes = [None] * count
            for row in range(count):
                value = column[row]
                if not isinstance(value, str):
                    raise TypeError(f"row {row}: string key expected, got {type(value).__name__}")
                raw = (<str>value).encode("utf-8")
                if len(raw) > MAX_KEY_STRING_BYTES:
                    raise ValueError(f"row {row}: string key longer than {MAX_KEY_STRING_BYTES} bytes")
                col_bytes[row] = raw
                sizes[row] += 3 + len(raw)
            encoded_cols.append(col_bytes)
        else:
            arr = np.asarray(column)
            if arr.dtype != np.int64:
                for row in range(count):
                    n_obj = int(column[row])
                    if not (-(1 << 63) <= n_obj < (1 << 63)):
                        raise ValueError(f"row {row}: int64 key out of range")
                arr = np.ascontiguousarray(np.asarray([int(v) for v in column], dtype=np.int64))
            else:
                arr = np.ascontiguousarray(arr)
            encoded_cols.append(arr)
            for row in range(count):
                sizes[row] += 9

    for row in range(count):
        size = sizes[row]
        buf = PyBytes_FromStringAndSize(NULL, size)
        out = PyBytes_AS_STRING(buf)
        pos = 0
        for c in range(ncols):
            if is_string[c]:
                raw = encoded_cols[c][row]
                n = PyBytes_GET_SIZE(raw)
                out[pos] = 0x02
                out[pos + 1] = <char>((n >> 8) & 0xFF)
                out[pos + 2] = <char>(n & 0xFF)
                memcpy(out + pos + 3, PyBytes_AS_STRING(raw), n)
                pos += 3 + n
            else:
                ints = encoded_cols[c]
                u = (<uint64_t>ints[row]) ^ (<uint64_t>1 << 63)
                out[pos] = 0x01
                _put_u64_be(out + pos + 1, u)
                pos += 9
        result[row] = buf
    return result


def entity_keys(uint32_t group_id, list entities):
    """The row key of each entity in a group (see _keys_py.entity_keys)."""
    cdef Py_ssize_t ne = len(entities), e, n
    cdef list out = [None] * ne
    cdef bytes ent
    cdef char* p
    for e in range(ne):
        ent = entities[e]
        n = PyBytes_GET_SIZE(ent)
        buf = PyBytes_FromStringAndSize(NULL, 5 + n)
        p = PyBytes_AS_STRING(buf)
        p[0] = KEY_FORMAT
        _put_u32_be(p + 1, group_id)
        memcpy(p + 5, PyBytes_AS_STRING(ent), n)
        out[e] = buf
    return out


def int64_row_keys(uint32_t group_id, bytes ids):
    """Row keys of a group keyed by one int64 column, from packed little-endian ids (see _keys_py)."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(ids) // 8, i
    cdef const char* src = PyBytes_AS_STRING(ids)
    cdef list out = [None] * n
    cdef char* q
    for i in range(n):
        buf = PyBytes_FromStringAndSize(NULL, 14)
        q = PyBytes_AS_STRING(buf)
        q[0] = KEY_FORMAT
        _put_u32_be(q + 1, group_id)
        q[5] = 0x01
        _put_u64_be(q + 6, (<uint64_t>_get_i64_le(src + 8 * i)) ^ (<uint64_t>1 << 63))
        out[i] = buf
    return out
