# Response framing: rows -> serialised FeatureColumn and GetFeaturesResponse (twin of fsd/codec/_columns_py.py).
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
            w[pos] = FEATURE_COLUMN_VALUES_TAG
            pos += 1
            pos += _put_varint(w + pos, column_len)
            w[pos] = <char>((dtype << 3) | LENGTH_DELIMITED)  # Column's typed list: field number = dtype
            pos += 1
            pos += _put_varint(w + pos, list_len)
            if dtype == INT64 or dtype == DOUBLE or dtype == FLOAT or dtype == BOOL:
                fixed = 8 if (dtype == INT64 or dtype == DOUBLE) else (4 if dtype == FLOAT else 1)
                w[pos] = LIST_VALUES_TAG
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
                    w[pos] = LIST_VALUES_TAG
                    pos += 1
                    pos += _put_varint(w + pos, cells[i].length)
                    if cells[i].length:
                        memcpy(w + pos, cells[i].payload, cells[i].length)
                        pos += cells[i].length
            else:
                flat = 4 * n * dim
                if dim:
                    w[pos] = VECTOR_DIM_TAG
                    pos += 1
                    pos += _put_varint(w + pos, dim)
                if flat:
                    w[pos] = VECTOR_VALUES_TAG
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
                w[pos] = FEATURE_COLUMN_IS_NULL_TAG
                pos += 1
                pos += _put_varint(w + pos, n)
                for i in range(n):
                    w[pos + i] = cells[i].is_null
                pos += n
                w[pos] = FEATURE_COLUMN_STATUSES_TAG
                pos += 1
                pos += _put_varint(w + pos, n)
                for i in range(n):
                    w[pos + i] = cells[i].status
                pos += n
                w[pos] = FEATURE_COLUMN_EVENT_TIMES_TAG
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


def frame_response(uint64_t entity_count, list columns, int64_t served_at, bytes manifest, uint64_t epoch=0):
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
    if epoch:
        total += 1 + _varint_len(epoch)
    out = PyBytes_FromStringAndSize(NULL, total)
    cdef char* q = PyBytes_AS_STRING(out)
    if entity_count:
        q[pos] = RESPONSE_ENTITY_COUNT_TAG
        pos += 1 + _put_varint(q + pos + 1, entity_count)
    for i in range(n):
        column = columns[i]
        length = PyBytes_GET_SIZE(column)
        q[pos] = RESPONSE_FEATURES_TAG
        pos += 1 + _put_varint(q + pos + 1, <uint64_t>length)
        memcpy(q + pos, PyBytes_AS_STRING(column), length)
        pos += length
    if served_at:
        q[pos] = RESPONSE_SERVED_AT_TAG
        pos += 1 + _put_varint(q + pos + 1, <uint64_t>served_at)
    length = PyBytes_GET_SIZE(manifest)
    if length:
        q[pos] = RESPONSE_MANIFEST_TAG
        pos += 1 + _put_varint(q + pos + 1, <uint64_t>length)
        memcpy(q + pos, PyBytes_AS_STRING(manifest), length)
        pos += length
    if epoch:
        q[pos] = RESPONSE_REGISTRY_EPOCH_TAG
        pos += 1 + _put_varint(q + pos + 1, epoch)
    return out
