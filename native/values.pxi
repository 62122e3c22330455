# Value encoding (twin of fsd/codec/_values_py.py).
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
