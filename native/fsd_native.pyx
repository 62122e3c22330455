# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of fsd/codec/_keys_py.py, _values_py.py and _rows_py.py: batch key encoding, value and row
(de)coding and freshness checks on the lookup path. The pure-Python modules are the specification; property
tests prove the two produce identical results."""

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint64_t, uint32_t, uint8_t
from libc.string cimport memcpy
from libc.stdlib cimport malloc, free

import numpy as np
cimport numpy as cnp

cnp.import_array()

DEF KEY_FORMAT = 0x01
DEF VALUE_FORMAT = 0x01
DEF HEADER_SIZE = 19
DEF FLAG_NULL = 0x01
DEF MAX_KEY_STRING_BYTES = 1024
DEF INT64 = 1
DEF DOUBLE = 2
DEF FLOAT = 3
DEF BOOL = 4
DEF STRING = 5
DEF BYTES = 6
DEF FLOAT_VECTOR = 7
DEF STATUS_PRESENT = 1
DEF STATUS_NOT_FOUND = 2
DEF STATUS_STALE = 3
DEF ROW_FORMAT = 0x01
DEF ROW_HEAD = 3
DEF ENTRY_HEAD = 8
DEF MAX_ENTRIES = 0xFFFF


cdef inline void _put_u32_be(char* p, uint32_t v) noexcept nogil:
    p[0] = <char>((v >> 24) & 0xFF)
    p[1] = <char>((v >> 16) & 0xFF)
    p[2] = <char>((v >> 8) & 0xFF)
    p[3] = <char>(v & 0xFF)


cdef inline void _put_u64_be(char* p, uint64_t v) noexcept nogil:
    cdef int i
    for i in range(8):
        p[i] = <char>((v >> (56 - 8 * i)) & 0xFF)


cdef inline void _put_i64_le(char* p, int64_t v) noexcept nogil:
    memcpy(p, &v, 8)  # x86-64 and aarch64 are little-endian; setup.py refuses big-endian builds


cdef inline int64_t _get_i64_le(const char* p) noexcept nogil:
    cdef int64_t v
    memcpy(&v, p, 8)
    return v


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


cdef inline bytes _header(int dtype, bint is_null, int64_t event_time, int64_t created_time, Py_ssize_t payload):
    buf = PyBytes_FromStringAndSize(NULL, HEADER_SIZE + payload)
    cdef char* p = PyBytes_AS_STRING(buf)
    p[0] = VALUE_FORMAT
    p[1] = <char>dtype
    p[2] = FLAG_NULL if is_null else 0
    _put_i64_le(p + 3, event_time)
    _put_i64_le(p + 11, created_time)
    return buf


def encode_values(int dtype, values, nulls, event_times, created_times, int vector_dim=0):
    """Encode one feature column of a publish chunk (see _values_py.encode_values)."""
    cdef cnp.uint8_t[::1] null_arr = np.ascontiguousarray(np.asarray(nulls, dtype=np.bool_)).view(np.uint8)
    cdef cnp.int64_t[::1] times = np.ascontiguousarray(np.asarray(event_times, dtype=np.int64))
    cdef Py_ssize_t count = null_arr.shape[0], row, n
    cdef cnp.int64_t[::1] created = np.array(np.broadcast_to(np.asarray(created_times, dtype=np.int64), (count,)), dtype=np.int64)
    cdef list out = [None] * count
    cdef bytes blob, raw
    cdef char* p
    cdef cnp.int64_t[::1] i64
    cdef cnp.float64_t[::1] f64
    cdef cnp.float32_t[::1] f32
    cdef cnp.uint8_t[::1] b8
    cdef cnp.float32_t[:, ::1] vec
    cdef int64_t iv
    cdef double dv
    cdef float fv
    if dtype == INT64:
        i64 = np.ascontiguousarray(np.asarray(values, dtype=np.int64))
    elif dtype == DOUBLE:
        f64 = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    elif dtype == FLOAT:
        f32 = np.ascontiguousarray(np.asarray(values, dtype=np.float32))
    elif dtype == BOOL:
        b8 = np.ascontiguousarray(np.asarray(values, dtype=np.bool_)).view(np.uint8)
    elif dtype == FLOAT_VECTOR:
        vec = np.ascontiguousarray(np.asarray(values, dtype=np.float32).reshape(count, vector_dim))
    elif dtype != STRING and dtype != BYTES:
        raise ValueError(f"unknown dtype code {dtype}")
    for row in range(count):
        if null_arr[row]:
            out[row] = _header(dtype, True, times[row], created[row], 0)
            continue
        if dtype == INT64:
            blob = _header(dtype, False, times[row], created[row], 8)
            iv = i64[row]
            memcpy(PyBytes_AS_STRING(blob) + HEADER_SIZE, &iv, 8)
        elif dtype == DOUBLE:
            blob = _header(dtype, False, times[row], created[row], 8)
            dv = f64[row]
            memcpy(PyBytes_AS_STRING(blob) + HEADER_SIZE, &dv, 8)
        elif dtype == FLOAT:
            blob = _header(dtype, False, times[row], created[row], 4)
            fv = f32[row]
            memcpy(PyBytes_AS_STRING(blob) + HEADER_SIZE, &fv, 4)
        elif dtype == BOOL:
            blob = _header(dtype, False, times[row], created[row], 1)
            PyBytes_AS_STRING(blob)[HEADER_SIZE] = 1 if b8[row] else 0
        elif dtype == FLOAT_VECTOR:
            blob = _header(dtype, False, times[row], created[row], 4 * vector_dim)
            if vector_dim:
                memcpy(PyBytes_AS_STRING(blob) + HEADER_SIZE, &vec[row, 0], 4 * vector_dim)
        else:
            item = values[row]
            raw = (<str>item).encode("utf-8") if dtype == STRING else bytes(item)
            n = PyBytes_GET_SIZE(raw)
            blob = _header(dtype, False, times[row], created[row], n)
            memcpy(PyBytes_AS_STRING(blob) + HEADER_SIZE, PyBytes_AS_STRING(raw), n)
        out[row] = blob
    return out


cdef inline uint32_t _get_u32_le(const char* p) noexcept nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v


cdef inline void _put_u32_le(char* p, uint32_t v) noexcept nogil:
    memcpy(p, &v, 4)


cdef struct Entry:
    uint32_t slot
    const char* ptr
    uint32_t length


cdef Py_ssize_t _parse_row(object row, Entry* entries, Py_ssize_t capacity) except -2:
    """Fill entries from a row; returns the count (0 for an absent, foreign or truncated row), -1 if over capacity."""
    if row is None:
        return 0
    cdef Py_ssize_t n = PyBytes_GET_SIZE(row), pos = ROW_HEAD, i, count
    cdef const char* p = PyBytes_AS_STRING(row)
    cdef uint32_t length
    if n < ROW_HEAD or <uint8_t>p[0] != ROW_FORMAT:
        return 0
    count = <uint8_t>p[1] | (<Py_ssize_t><uint8_t>p[2] << 8)
    if count > capacity:
        return -1
    for i in range(count):
        if pos + ENTRY_HEAD > n:
            return 0
        entries[i].slot = _get_u32_le(p + pos)
        length = _get_u32_le(p + pos + 4)
        pos += ENTRY_HEAD
        if pos + length > n:
            return 0
        entries[i].ptr = p + pos
        entries[i].length = length
        pos += length
    return count


cdef inline Py_ssize_t _row_count(object row) noexcept:
    if row is None or PyBytes_GET_SIZE(row) < ROW_HEAD:
        return 0
    cdef const char* p = PyBytes_AS_STRING(row)
    return <uint8_t>p[1] | (<Py_ssize_t><uint8_t>p[2] << 8)


cdef Py_ssize_t _normalise(Entry* entries, Py_ssize_t count) noexcept:
    """Sort by slot (stable) and keep the last of duplicate slots, as the reference's dict does."""
    cdef Py_ssize_t i, j, out
    cdef Entry tmp
    for i in range(1, count):
        tmp = entries[i]
        j = i - 1
        while j >= 0 and entries[j].slot > tmp.slot:
            entries[j + 1] = entries[j]
            j -= 1
        entries[j + 1] = tmp
    out = 0
    for i in range(count):
        if out > 0 and entries[out - 1].slot == entries[i].slot:
            entries[out - 1] = entries[i]
        else:
            entries[out] = entries[i]
            out += 1
    return out


cdef inline bint _older_than(const char* old, uint32_t old_len, const char* new, uint32_t new_len) noexcept nogil:
    """True when the new value's (event, created) stamp is below the stored one's (see _rows_py.stamp)."""
    cdef int64_t oe = -1, oc = -1, ne = -1, nc = -1
    if old_len >= HEADER_SIZE and <uint8_t>old[0] == VALUE_FORMAT:
        oe = _get_i64_le(old + 3)
        oc = _get_i64_le(old + 11)
    if new_len >= HEADER_SIZE and <uint8_t>new[0] == VALUE_FORMAT:
        ne = _get_i64_le(new + 3)
        nc = _get_i64_le(new + 11)
    return oe > ne or (oe == ne and oc > nc)


def merge_rows(list existing, slots, list columns):
    """Fold new values into entity rows (see _rows_py.merge_rows): returns (rows or None, written, skipped)."""
    cdef uint32_t[::1] slot_arr = np.ascontiguousarray(np.asarray(slots, dtype=np.uint32))
    cdef Py_ssize_t ne = len(existing), ns = slot_arr.shape[0], e, s, i, count, capacity, lo, hi, mid, total, pos
    cdef list out = [None] * ne
    cdef Py_ssize_t written = 0, skipped = 0
    cdef Entry* entries = NULL
    cdef bytes value, result
    cdef char* p
    cdef bint changed, found
    cdef uint32_t slot
    for e in range(ne):
        row = existing[e]
        capacity = _row_count(row) + ns
        entries = <Entry*>malloc(sizeof(Entry) * (capacity if capacity > 0 else 1))
        if entries == NULL:
            raise MemoryError()
        try:
            count = _parse_row(row, entries, capacity)
            count = _normalise(entries, count)
            changed = False
            for s in range(ns):
                slot = slot_arr[s]
                lo, hi, found = 0, count, False
                while lo < hi:
                    mid = (lo + hi) // 2
                    if entries[mid].slot < slot:
                        lo = mid + 1
                    else:
                        hi = mid
                item = columns[s][e]
                if item is None:  # nothing offered for this entity
                    continue
                value = item
                if lo < count and entries[lo].slot == slot:
                    found = True
                    if _older_than(entries[lo].ptr, entries[lo].length, PyBytes_AS_STRING(value), <uint32_t>PyBytes_GET_SIZE(value)):
                        skipped += 1
                        continue
                if not found:
                    for i in range(count, lo, -1):
                        entries[i] = entries[i - 1]
                    count += 1
                entries[lo].slot = slot
                entries[lo].ptr = PyBytes_AS_STRING(value)
                entries[lo].length = <uint32_t>PyBytes_GET_SIZE(value)
                written += 1
                changed = True
            if changed:
                if count > MAX_ENTRIES:
                    raise ValueError("too many feature versions in one row")
                total = ROW_HEAD
                for i in range(count):
                    total += ENTRY_HEAD + entries[i].length
                result = PyBytes_FromStringAndSize(NULL, total)
                p = PyBytes_AS_STRING(result)
                p[0] = ROW_FORMAT
                p[1] = <char>(count & 0xFF)
                p[2] = <char>((count >> 8) & 0xFF)
                pos = ROW_HEAD
                for i in range(count):
                    _put_u32_le(p + pos, entries[i].slot)
                    _put_u32_le(p + pos + 4, entries[i].length)
                    memcpy(p + pos + ENTRY_HEAD, entries[i].ptr, entries[i].length)
                    pos += ENTRY_HEAD + entries[i].length
                out[e] = result
        finally:
            free(entries)
    return out, written, skipped


cdef inline const char* _find_slot(object row, uint32_t slot, uint32_t* length) noexcept:
    """Pointer to the value of slot inside a row, or NULL (absent, foreign or truncated row)."""
    if row is None:
        return NULL
    cdef Py_ssize_t n = PyBytes_GET_SIZE(row), pos = ROW_HEAD, i, count
    cdef const char* p = PyBytes_AS_STRING(row)
    cdef const char* hit = NULL
    cdef uint32_t entry_slot, entry_len
    if n < ROW_HEAD or <uint8_t>p[0] != ROW_FORMAT:
        return NULL
    count = <uint8_t>p[1] | (<Py_ssize_t><uint8_t>p[2] << 8)
    for i in range(count):
        if pos + ENTRY_HEAD > n:
            return NULL
        entry_slot = _get_u32_le(p + pos)
        entry_len = _get_u32_le(p + pos + 4)
        pos += ENTRY_HEAD
        if pos + entry_len > n:
            return NULL  # truncated row: nothing in it is trusted
        if entry_slot == slot:
            hit = p + pos  # keep going: the last duplicate wins, and truncation later voids the row
            length[0] = entry_len
        pos += entry_len
    return hit


def decode_feature(list rows, uint32_t slot, int dtype, int vector_dim=0):
    """One feature version across entity rows (see _rows_py.decode_feature)."""
    cdef Py_ssize_t count = len(rows), i, payload
    is_null_arr = np.zeros(count, dtype=np.bool_)
    found_arr = np.zeros(count, dtype=np.bool_)
    times_arr = np.zeros(count, dtype=np.int64)
    cdef cnp.uint8_t[::1] is_null = is_null_arr.view(np.uint8)
    cdef cnp.uint8_t[::1] found = found_arr.view(np.uint8)
    cdef cnp.int64_t[::1] times = times_arr
    cdef cnp.int64_t[::1] i64
    cdef cnp.float64_t[::1] f64
    cdef cnp.float32_t[::1] f32
    cdef cnp.uint8_t[::1] b8
    cdef cnp.float32_t[:, ::1] vec
    cdef list objs
    cdef const char* p
    cdef uint32_t n = 0
    if dtype == INT64:
        values = np.zeros(count, dtype=np.int64); i64 = values
    elif dtype == DOUBLE:
        values = np.zeros(count, dtype=np.float64); f64 = values
    elif dtype == FLOAT:
        values = np.zeros(count, dtype=np.float32); f32 = values
    elif dtype == BOOL:
        values = np.zeros(count, dtype=np.bool_); b8 = values.view(np.uint8)
    elif dtype == FLOAT_VECTOR:
        values = np.zeros((count, vector_dim), dtype=np.float32); vec = values
    elif dtype == STRING:
        objs = [""] * count; values = objs
    elif dtype == BYTES:
        objs = [b""] * count; values = objs
    else:
        raise ValueError(f"unknown dtype code {dtype}")
    for i in range(count):
        p = _find_slot(rows[i], slot, &n)
        if p == NULL or n < HEADER_SIZE:
            continue
        if <uint8_t>p[0] != VALUE_FORMAT or <uint8_t>p[1] != dtype:
            continue
        payload = n - HEADER_SIZE
        if <uint8_t>p[2] & FLAG_NULL:
            found[i] = 1
            is_null[i] = 1
            times[i] = _get_i64_le(p + 3)
            continue
        if dtype == INT64:
            if payload != 8: continue
            memcpy(&i64[i], p + HEADER_SIZE, 8)
        elif dtype == DOUBLE:
            if payload != 8: continue
            memcpy(&f64[i], p + HEADER_SIZE, 8)
        elif dtype == FLOAT:
            if payload != 4: continue
            memcpy(&f32[i], p + HEADER_SIZE, 4)
        elif dtype == BOOL:
            if payload != 1: continue
            b8[i] = 1 if p[HEADER_SIZE] else 0
        elif dtype == FLOAT_VECTOR:
            if payload != 4 * vector_dim: continue
            if vector_dim:
                memcpy(&vec[i, 0], p + HEADER_SIZE, 4 * vector_dim)
        elif dtype == STRING:
            objs[i] = (p + HEADER_SIZE)[:payload].decode("utf-8")
        else:
            objs[i] = (p + HEADER_SIZE)[:payload]
        found[i] = 1
        times[i] = _get_i64_le(p + 3)
    return values, is_null_arr, found_arr, times_arr


def freshness_status(found, event_times, int64_t now_micros, int64_t max_age_micros):
    """PRESENT, NOT_FOUND or STALE per value (see _values_py.freshness_status)."""
    cdef cnp.uint8_t[::1] f = np.ascontiguousarray(np.asarray(found, dtype=np.bool_)).view(np.uint8)
    cdef cnp.int64_t[::1] t = np.ascontiguousarray(np.asarray(event_times, dtype=np.int64))
    cdef Py_ssize_t n = f.shape[0], i
    out_arr = np.empty(n, dtype=np.uint8)
    cdef cnp.uint8_t[::1] out = out_arr
    with nogil:
        for i in range(n):
            if not f[i]:
                out[i] = STATUS_NOT_FOUND
            elif max_age_micros > 0 and now_micros - t[i] > max_age_micros:
                out[i] = STATUS_STALE
            else:
                out[i] = STATUS_PRESENT
    return out_arr


# --- fused serving step: rows -> serialised FeatureColumn (see fsd/codec/_columns_py.py) -----------------------

cdef inline Py_ssize_t _varint_len(uint64_t v) noexcept nogil:
    cdef Py_ssize_t n = 1
    while v > 0x7F:
        v >>= 7
        n += 1
    return n


cdef inline Py_ssize_t _put_varint(char* p, uint64_t v) noexcept nogil:
    cdef Py_ssize_t n = 0
    while v > 0x7F:
        p[n] = <char>((v & 0x7F) | 0x80)
        v >>= 7
        n += 1
    p[n] = <char>v
    return n + 1


cdef struct Cell:
    const char* payload   # value payload (after the header) or NULL
    uint32_t length       # payload length
    int64_t event_time
    uint8_t status
    uint8_t is_null


def encode_feature_columns(list rows, list specs, int64_t now_micros):
    """Serialised FeatureColumn per spec (head, slot, dtype, dim, max_age, mode), identical to the reference."""
    cdef Py_ssize_t n = len(rows), i, k, pos, list_len, column_len, total, fixed, dim_bytes, flat
    cdef Cell* cells = <Cell*>malloc(sizeof(Cell) * (n if n > 0 else 1))
    if cells == NULL:
        raise MemoryError()
    cdef list out = []
    cdef bytes head, result
    cdef uint32_t slot, vlen = 0
    cdef int dtype, dim, mode
    cdef int64_t max_age, et
    cdef const char* p
    cdef char* w
    cdef uint8_t zero8[8]
    memset_zero(zero8, 8)
    try:
        for spec in specs:
            head = spec[0]
            slot = spec[1]
            dtype = spec[2]
            dim = spec[3]
            max_age = spec[4]
            mode = spec[5]
            if dtype < 1 or dtype > 7:
                raise ValueError(f"unknown dtype code {dtype}")
            # 1. find, check and classify each row's value
            for i in range(n):
                cells[i].payload = NULL
                cells[i].length = 0
                cells[i].event_time = 0
                cells[i].is_null = 0
                if mode == 1:
                    cells[i].status = 4
                    continue
                cells[i].status = 2
                p = _find_slot(rows[i], slot, &vlen)
                if p == NULL or vlen < HEADER_SIZE or <uint8_t>p[0] != VALUE_FORMAT or <uint8_t>p[1] != dtype:
                    continue
                if not (<uint8_t>p[2] & FLAG_NULL):
                    fixed = vlen - HEADER_SIZE
                    if (dtype == INT64 or dtype == DOUBLE) and fixed != 8: continue
                    if dtype == FLOAT and fixed != 4: continue
                    if dtype == BOOL and fixed != 1: continue
                    if dtype == FLOAT_VECTOR and fixed != 4 * dim: continue
                    if dtype == STRING:
                        try:
                            (p + HEADER_SIZE)[:fixed].decode("utf-8")  # the reference decodes; a bad value fails alike
                        except UnicodeDecodeError:
                            raise
                    cells[i].payload = p + HEADER_SIZE
                    cells[i].length = <uint32_t>fixed
                else:
                    cells[i].is_null = 1
                et = _get_i64_le(p + 3)
                cells[i].event_time = et
                if mode == 2:
                    cells[i].status = 3
                elif max_age > 0 and now_micros - et > max_age:
                    cells[i].status = 3
                else:
                    cells[i].status = 1
            # 2. sizes
            if dtype == INT64 or dtype == DOUBLE:
                list_len = 1 + _varint_len(8 * n) + 8 * n
            elif dtype == FLOAT:
                list_len = 1 + _varint_len(4 * n) + 4 * n
            elif dtype == BOOL:
                list_len = 1 + _varint_len(n) + n
            elif dtype == STRING or dtype == BYTES:
                list_len = 0
                for i in range(n):
                    list_len += 1 + _varint_len(cells[i].length) + cells[i].length
            else:
                flat = 4 * n * dim
                list_len = (1 + _varint_len(dim) if dim else 0) + (1 + _varint_len(flat) + flat if flat else 0)
            column_len = 1 + _varint_len(list_len) + list_len
            total = PyBytes_GET_SIZE(head) + 1 + _varint_len(column_len) + column_len
            if n:
                total += 2 * (1 + _varint_len(n) + n) + 1 + _varint_len(8 * n) + 8 * n
            result = PyBytes_FromStringAndSize(NULL, total)
            w = PyBytes_AS_STRING(result)
            # 3. write
            memcpy(w, PyBytes_AS_STRING(head), PyBytes_GET_SIZE(head))
            pos = PyBytes_GET_SIZE(head)
            w[pos] = 0x32
            pos += 1
            pos += _put_varint(w + pos, column_len)
            w[pos] = <char>((dtype << 3) | 2)
            pos += 1
            pos += _put_varint(w + pos, list_len)
            if dtype == INT64 or dtype == DOUBLE or dtype == FLOAT or dtype == BOOL:
                fixed = 8 if (dtype == INT64 or dtype == DOUBLE) else (4 if dtype == FLOAT else 1)
                w[pos] = 0x0A
                pos += 1
                pos += _put_varint(w + pos, fixed * n)
                for i in range(n):
                    if cells[i].payload != NULL:
                        if dtype == BOOL:
                            w[pos] = 1 if cells[i].payload[0] else 0
                        else:
                            memcpy(w + pos, cells[i].payload, fixed)
                    else:
                        memcpy(w + pos, zero8, fixed)
                    pos += fixed
            elif dtype == STRING or dtype == BYTES:
                for i in range(n):
                    w[pos] = 0x0A
                    pos += 1
                    pos += _put_varint(w + pos, cells[i].length)
                    if cells[i].length:
                        memcpy(w + pos, cells[i].payload, cells[i].length)
                        pos += cells[i].length
            else:
                flat = 4 * n * dim
                if dim:
                    w[pos] = 0x08
                    pos += 1
                    pos += _put_varint(w + pos, dim)
                if flat:
                    w[pos] = 0x12
                    pos += 1
                    pos += _put_varint(w + pos, flat)
                    for i in range(n):
                        if cells[i].payload != NULL:
                            memcpy(w + pos, cells[i].payload, 4 * dim)
                        else:
                            for k in range(4 * dim):
                                w[pos + k] = 0
                        pos += 4 * dim
            if n:
                w[pos] = 0x3A
                pos += 1
                pos += _put_varint(w + pos, n)
                for i in range(n):
                    w[pos + i] = cells[i].is_null
                pos += n
                w[pos] = 0x42
                pos += 1
                pos += _put_varint(w + pos, n)
                for i in range(n):
                    w[pos + i] = cells[i].status
                pos += n
                w[pos] = 0x4A
                pos += 1
                pos += _put_varint(w + pos, 8 * n)
                for i in range(n):
                    et = cells[i].event_time
                    memcpy(w + pos, &et, 8)
                    pos += 8
            if pos != total:
                raise AssertionError(f"column size mismatch {pos} != {total}")
            out.append(result)
    finally:
        free(cells)
    return out


cdef inline void memset_zero(uint8_t* p, int n) noexcept nogil:
    cdef int i
    for i in range(n):
        p[i] = 0


# --- point-in-time join kernel (see fsd/offline/pit.py: asof_match_reference) --------------------------------------

from libc.stdlib cimport qsort, calloc


cdef struct AsofRow:
    int64_t time
    int64_t created
    int64_t index


cdef int _asof_cmp(const void* a, const void* b) noexcept nogil:
    cdef const AsofRow* x = <const AsofRow*>a
    cdef const AsofRow* y = <const AsofRow*>b
    if x.time != y.time:
        return -1 if x.time < y.time else 1
    if x.created != y.created:
        return -1 if x.created < y.created else 1
    return -1 if x.index < y.index else (1 if x.index > y.index else 0)


cdef inline bint _asof_less(const AsofRow* x, const AsofRow* y) noexcept nogil:
    return _asof_cmp(x, y) < 0


def asof_match(left_ids, left_times, right_ids, right_times, right_created, Py_ssize_t id_count):
    """For each left row, the index of the right row with the same id and the greatest (time, created, index)
    whose time <= the left row's time; -1 where none. Ids outside [0, id_count) match nothing.

    Right rows are bucketed by id (a counting sort), each bucket ordered by (time, created, index), and each
    left row binary-searches its own bucket: linear in both sides, and all of it without the GIL.
    """
    cdef const int64_t[::1] lid = np.ascontiguousarray(left_ids, dtype=np.int64)
    cdef const int64_t[::1] lt = np.ascontiguousarray(left_times, dtype=np.int64)
    cdef const int64_t[::1] rid = np.ascontiguousarray(right_ids, dtype=np.int64)
    cdef const int64_t[::1] rt = np.ascontiguousarray(right_times, dtype=np.int64)
    cdef const int64_t[::1] rc = np.ascontiguousarray(right_created, dtype=np.int64)
    cdef Py_ssize_t n = lid.shape[0], m = rid.shape[0], i, j, k, b, lo, hi, mid, start, size
    if lt.shape[0] != n or rt.shape[0] != m or rc.shape[0] != m:
        raise ValueError("asof_match: ids and times differ in length")
    if id_count < 0:
        raise ValueError("asof_match: id_count must be >= 0")
    out_arr = np.full(n, -1, dtype=np.int64)
    cdef int64_t[::1] out = out_arr
    cdef int64_t* starts = <int64_t*>calloc(id_count + 2, sizeof(int64_t))
    cdef AsofRow* rows = <AsofRow*>malloc((m if m > 0 else 1) * sizeof(AsofRow))
    cdef AsofRow key
    cdef int64_t t, id_
    if starts == NULL or rows == NULL:
        free(starts)
        free(rows)
        raise MemoryError()
    try:
        with nogil:
            for j in range(m):
                id_ = rid[j]
                if 0 <= id_ < id_count:
                    starts[id_ + 2] += 1
            for b in range(2, id_count + 2):
                starts[b] += starts[b - 1]
            # starts[b + 1] is now the first slot of bucket b; filling advances it to the bucket's end.
            for j in range(m):
                id_ = rid[j]
                if 0 <= id_ < id_count:
                    k = starts[id_ + 1]
                    rows[k].time = rt[j]
                    rows[k].created = rc[j]
                    rows[k].index = j
                    starts[id_ + 1] = k + 1
            # Bucket b spans [starts[b], starts[b + 1]).
            for b in range(id_count):
                start = starts[b]
                size = starts[b + 1] - start
                if size > 16:
                    qsort(rows + start, size, sizeof(AsofRow), _asof_cmp)
                elif size > 1:
                    for j in range(start + 1, start + size):
                        key = rows[j]
                        k = j - 1
                        while k >= start and _asof_less(&key, &rows[k]):
                            rows[k + 1] = rows[k]
                            k -= 1
                        rows[k + 1] = key
            for i in range(n):
                id_ = lid[i]
                if id_ < 0 or id_ >= id_count:
                    continue
                lo = starts[id_]
                hi = starts[id_ + 1]  # first row with time > t lies in [lo, hi]
                t = lt[i]
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if rows[mid].time <= t:
                        lo = mid + 1
                    else:
                        hi = mid
                if lo > starts[id_]:
                    out[i] = rows[lo - 1].index
    finally:
        free(starts)
        free(rows)
    return out_arr


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
        if sub < 0 or (sub_tag & 7) != 2:
            return None
        sub = _get_varint(p, sub, sub_end, &size)
        if sub < 0 or size > <uint64_t>(sub_end - sub):
            return None
        field_length = <Py_ssize_t>size
        inner, inner_end = sub, sub + field_length
        if sub_tag == (1 << 3 | 2) and name is None:
            name = PyUnicode_DecodeUTF8(<const char*>p + sub, field_length, NULL)
        elif sub_tag == (2 << 3 | 2) and values is None:  # Int64List: at most one packed `values` field
            if inner < inner_end:
                inner = _get_varint(p, inner, inner_end, &inner_tag)
                if inner < 0 or inner_tag != (1 << 3 | 2):
                    return None
                inner = _get_varint(p, inner, inner_end, &size)
                if inner < 0 or size != <uint64_t>(inner_end - inner) or size % 8:
                    return None
            values = PyBytes_FromStringAndSize(<const char*>p + inner, inner_end - inner)
        elif sub_tag == (3 << 3 | 2) and values is None:  # StringList: `values` strings
            strings = []
            while inner < inner_end:
                inner = _get_varint(p, inner, inner_end, &inner_tag)
                if inner < 0 or inner_tag != (1 << 3 | 2):
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
        if pos < 0 or (tag & 7) != 2:
            return None
        pos = _get_varint(p, pos, end, &size)
        if pos < 0 or size > <uint64_t>(end - pos):
            return None
        length = <Py_ssize_t>size
        if tag == (1 << 3 | 2):  # EntityColumn
            column = _split_column(p, pos, pos + length)
            if column is None:
                return None
            columns.append(column)
        elif tag == (2 << 3 | 2):  # a feature ref
            features += raw[start:pos + length]
        elif tag == (3 << 3 | 2):  # manifest (the last one wins, as in protobuf)
            manifest = PyUnicode_DecodeUTF8(<const char*>p + pos, length, NULL)
        else:
            return None
        pos += length
    if not columns:
        return None
    return bytes(features), manifest, columns


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


def frame_response(uint64_t entity_count, list columns, int64_t served_at, bytes manifest):
    """A serialised GetFeaturesResponse from serialised FeatureColumns (see fsd/serving/wire.py)."""
    cdef Py_ssize_t total = 0, i, n = len(columns), pos = 0, length
    cdef bytes column
    if entity_count:
        total += 1 + _varint_len(entity_count)
    for i in range(n):
        length = PyBytes_GET_SIZE(columns[i])
        total += 1 + _varint_len(<uint64_t>length) + length
    if served_at:
        total += 1 + _varint_len(<uint64_t>served_at)
    if PyBytes_GET_SIZE(manifest):
        total += 1 + _varint_len(<uint64_t>PyBytes_GET_SIZE(manifest)) + PyBytes_GET_SIZE(manifest)
    out = PyBytes_FromStringAndSize(NULL, total)
    cdef char* q = PyBytes_AS_STRING(out)
    if entity_count:
        q[pos] = 0x08
        pos += 1 + _put_varint(q + pos + 1, entity_count)
    for i in range(n):
        column = columns[i]
        length = PyBytes_GET_SIZE(column)
        q[pos] = 0x12
        pos += 1 + _put_varint(q + pos + 1, <uint64_t>length)
        memcpy(q + pos, PyBytes_AS_STRING(column), length)
        pos += length
    if served_at:
        q[pos] = 0x18
        pos += 1 + _put_varint(q + pos + 1, <uint64_t>served_at)
    length = PyBytes_GET_SIZE(manifest)
    if length:
        q[pos] = 0x22
        pos += 1 + _put_varint(q + pos + 1, <uint64_t>length)
        memcpy(q + pos, PyBytes_AS_STRING(manifest), length)
    return out
