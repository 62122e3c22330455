# Rows: merge, decode, freshness (twin of fsd/codec/_rows_py.py and _values_py.freshness_status).
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


def merge_rows(list existing, slots, list columns, bint replace=False):
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
                    if not replace and _older_than(entries[lo].ptr, entries[lo].length, PyBytes_AS_STRING(value), <uint32_t>PyBytes_GET_SIZE(value)):
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
