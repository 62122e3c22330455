# Compiled twin of the numeric part of fsd/aggregation/tiles.py (the specification: decode, FeatureTiles.add_rows,
# drop_expired, encode). One call folds a whole push batch: per entity its stored blob is read, its rows (in
# arrival order) folded into the tiles of every count/sum/mean/min/max feature of the batch, expired tiles dropped,
# and the blob written again — slots of other features copied byte for byte. tests/unit/aggregation proves the
# result identical, byte for byte, to the Python path.

DEF BLOB_FORMAT = 1
DEF BLOB_HEAD = 11   # <BqH: format, last push sequence, slot count
DEF SLOT_HEAD = 15   # <IBqH: slot, function code, newest dropped event, tile count
DEF TILE_HEAD = 24   # <qqq: tile index, newest event, counted events
DEF FN_COUNT = 1
DEF FN_SUM = 2
DEF FN_MEAN = 3
DEF FN_MIN = 4
DEF FN_MAX = 5
DEF FN_LAST = 6
DEF FN_DISTINCT = 7
DEF MAX_SLOTS = 4096

from libc.stdint cimport uint16_t, int32_t
from libc.stdlib cimport calloc, realloc


cdef struct CTile:
    int64_t k
    int64_t newest
    int64_t n
    double x  # the sum (sum, mean) or the extreme (min, max)
    int64_t stamp[4]  # last: (event, received, sequence, row) of the value kept
    int has_last  # last: 0 none, 1 the stored value, 2 a row of this batch
    int64_t last_row
    const unsigned char* stored_value  # last: the stored scalar's bytes (tag first), re-emitted as stored
    Py_ssize_t stored_value_len
    uint16_t* reg_index  # count_distinct: sparse HyperLogLog registers, sorted by index
    uint8_t* reg_rank
    Py_ssize_t n_regs
    Py_ssize_t cap_regs


cdef void _free_registers(CTile* tiles, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        free(tiles[i].reg_index)
        free(tiles[i].reg_rank)
        tiles[i].reg_index = NULL
        tiles[i].reg_rank = NULL
        tiles[i].n_regs = 0
        tiles[i].cap_regs = 0


cdef int _set_register(CTile* t, uint16_t index, uint8_t rank) except -1:
    """registers[index] = rank where it is higher (absent counts as 0), kept sorted by index."""
    cdef Py_ssize_t lo = 0, hi = t.n_regs, mid, j
    while lo < hi:
        mid = (lo + hi) >> 1
        if t.reg_index[mid] < index:
            lo = mid + 1
        else:
            hi = mid
    if lo < t.n_regs and t.reg_index[lo] == index:
        if t.reg_rank[lo] < rank:
            t.reg_rank[lo] = rank
        return 0
    if t.n_regs == t.cap_regs:
        t.cap_regs = t.cap_regs * 2 + 8
        t.reg_index = <uint16_t*>realloc(t.reg_index, t.cap_regs * sizeof(uint16_t))
        t.reg_rank = <uint8_t*>realloc(t.reg_rank, t.cap_regs * sizeof(uint8_t))
        if t.reg_index == NULL or t.reg_rank == NULL:
            raise MemoryError()
    for j in range(t.n_regs, lo, -1):
        t.reg_index[j] = t.reg_index[j - 1]
        t.reg_rank[j] = t.reg_rank[j - 1]
    t.reg_index[lo] = index
    t.reg_rank[lo] = rank
    t.n_regs += 1
    return 0


cdef inline void _new_tile(CTile* t, int64_t k) noexcept nogil:
    t.k = k
    t.newest = 0
    t.n = 0
    t.x = 0.0
    t.stamp[0] = 0
    t.stamp[1] = 0
    t.stamp[2] = 0
    t.stamp[3] = 0
    t.has_last = 0
    t.last_row = -1
    t.stored_value = NULL
    t.stored_value_len = 0
    t.reg_index = NULL
    t.reg_rank = NULL
    t.n_regs = 0
    t.cap_regs = 0


cdef inline int64_t _floordiv(int64_t a, int64_t b) noexcept nogil:
    cdef int64_t q = a // b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


cdef inline int64_t _get_i64(const unsigned char* p) noexcept nogil:
    cdef int64_t v
    memcpy(&v, p, 8)
    return v


cdef inline void _set_i64(unsigned char* p, int64_t v) noexcept nogil:
    memcpy(p, &v, 8)


cdef Py_ssize_t _tile_size(const unsigned char* blob, Py_ssize_t pos, Py_ssize_t end, int code) except -1:
    """Bytes of one stored tile of a function (the head included), checked against the blob's end."""
    cdef Py_ssize_t size = TILE_HEAD
    cdef uint16_t regs
    cdef uint32_t length
    cdef unsigned char tag
    if code == FN_SUM or code == FN_MEAN or code == FN_MIN or code == FN_MAX:
        size += 8
    elif code == FN_LAST:
        size += 32
        if pos + size >= end:
            raise ValueError("tile blob truncated")
        tag = blob[pos + size]
        size += 1
        if tag == 4:
            size += 1
        elif tag == 1 or tag == 2:
            size += 8
        elif tag == 3:
            if pos + size + 4 > end:
                raise ValueError("tile blob truncated")
            memcpy(&length, blob + pos + size, 4)
            size += 4 + length
        elif tag != 0:
            raise ValueError(f"tile blob scalar tag {tag} unknown")
    elif code == FN_DISTINCT:
        if pos + size + 2 > end:
            raise ValueError("tile blob truncated")
        memcpy(&regs, blob + pos + size, 2)
        size += 2 + 3 * <Py_ssize_t>regs
    elif code != FN_COUNT:
        raise ValueError(f"tile blob function code {code} unknown")
    if pos + size > end:
        raise ValueError("tile blob truncated")
    return size


cdef inline bint _stamp_after(const int64_t* a, const int64_t* b) noexcept nogil:
    """a > b, as Python compares (event, received, sequence, row) tuples."""
    cdef int i
    for i in range(4):
        if a[i] != b[i]:
            return a[i] > b[i]
    return False


def fold_tiles(list blobs, const int64_t[::1] order, const int64_t[::1] starts, const int64_t[::1] times,
               list specs, int64_t now, int64_t seq):
    """Fold a batch into its entities' tile blobs. blobs[u]: entity u's stored blob (None: none); its rows are
    order[starts[u]:starts[u+1]], in arrival order. specs, sorted by slot: (slot, function code, tile µs, tiles
    kept, values float64, counted uint8, extra) per folded feature; counted[r]: row r passes the filter and has a
    value. extra: None for count/sum/mean/min/max; for last (received, sequence, row int64 arrays, the value kind
    1 int / 2 float / 3 string / 4 bool, ints int64, floats float64, string offsets int64, string bytes, the
    longest encoded value); for count_distinct (register index, rank) int64 arrays. Returns the new blobs."""
    cdef Py_ssize_t n_entities = len(blobs)
    cdef Py_ssize_t n_specs = len(specs)
    cdef Py_ssize_t n_rows = times.shape[0]
    if n_specs == 0 or n_specs > MAX_SLOTS or starts.shape[0] != n_entities + 1:
        raise ValueError("fold_tiles: bad arguments")
    cdef uint32_t* spec_slot = <uint32_t*>calloc(n_specs, sizeof(uint32_t))
    cdef int* spec_code = <int*>calloc(n_specs, sizeof(int))
    cdef int64_t* spec_tile = <int64_t*>calloc(n_specs, sizeof(int64_t))
    cdef int64_t* spec_keep = <int64_t*>calloc(n_specs, sizeof(int64_t))
    cdef const double** spec_values = <const double**>calloc(n_specs, sizeof(double*))
    cdef const uint8_t** spec_counted = <const uint8_t**>calloc(n_specs, sizeof(uint8_t*))
    cdef const int64_t** spec_a = <const int64_t**>calloc(n_specs, sizeof(int64_t*))  # last: received; distinct: register index
    cdef const int64_t** spec_b = <const int64_t**>calloc(n_specs, sizeof(int64_t*))  # last: sequence; distinct: rank
    cdef const int64_t** spec_c = <const int64_t**>calloc(n_specs, sizeof(int64_t*))  # last: row
    cdef int* spec_kind = <int*>calloc(n_specs, sizeof(int))
    cdef const int64_t** spec_ints = <const int64_t**>calloc(n_specs, sizeof(int64_t*))
    cdef const double** spec_floats = <const double**>calloc(n_specs, sizeof(double*))
    cdef const int64_t** spec_offsets = <const int64_t**>calloc(n_specs, sizeof(int64_t*))
    cdef const unsigned char** spec_data = <const unsigned char**>calloc(n_specs, sizeof(unsigned char*))
    cdef Py_ssize_t* spec_maxval = <Py_ssize_t*>calloc(n_specs, sizeof(Py_ssize_t))
    cdef uint32_t* blob_slot = <uint32_t*>malloc(MAX_SLOTS * sizeof(uint32_t))
    cdef int* blob_code = <int*>malloc(MAX_SLOTS * sizeof(int))
    cdef Py_ssize_t* blob_start = <Py_ssize_t*>malloc(MAX_SLOTS * sizeof(Py_ssize_t))
    cdef Py_ssize_t* blob_end = <Py_ssize_t*>malloc(MAX_SLOTS * sizeof(Py_ssize_t))
    cdef CTile* tiles = NULL
    cdef Py_ssize_t tiles_cap = 0
    cdef Py_ssize_t n_tiles = 0
    cdef unsigned char* out = NULL
    cdef Py_ssize_t out_cap = 0
    keep_alive = []
    result = []
    cdef const double[::1] f64_view
    cdef const uint8_t[::1] u8_view
    cdef const int64_t[::1] i64_view
    cdef const unsigned char[::1] bytes_view
    cdef Py_ssize_t s, u, b, i, j, r, pos, end, n_blob, slot_count, found, cache, need, w, first, last_row, size, length
    cdef const unsigned char* raw
    cdef object blob
    cdef int code, kind
    cdef uint32_t slot, length32
    cdef uint16_t count16, regs16
    cdef int64_t e, k, dropped, oldest, tile_us
    cdef int64_t stamp[4]
    cdef double v
    cdef CTile t
    try:
        if not spec_slot or not spec_code or not spec_tile or not spec_keep or not spec_values or not spec_counted or not spec_a \
                or not spec_b or not spec_c or not spec_kind or not spec_ints or not spec_floats or not spec_offsets or not spec_data \
                or not spec_maxval or not blob_slot or not blob_code or not blob_start or not blob_end:
            raise MemoryError()
        for s in range(n_specs):
            item = specs[s]
            spec_slot[s] = <uint32_t>item[0]
            spec_code[s] = <int>item[1]
            spec_tile[s] = <int64_t>item[2]
            spec_keep[s] = <int64_t>item[3]
            if spec_tile[s] <= 0 or spec_code[s] < FN_COUNT or spec_code[s] > FN_DISTINCT:
                raise ValueError("fold_tiles: a spec names no tile function")
            if s and spec_slot[s] <= spec_slot[s - 1]:
                raise ValueError("fold_tiles: specs must be sorted by slot")
            f64_view = item[4]
            u8_view = item[5]
            if f64_view.shape[0] != n_rows or u8_view.shape[0] != n_rows:
                raise ValueError("fold_tiles: a spec's columns are not the batch's length")
            keep_alive.append(item)
            spec_values[s] = &f64_view[0] if n_rows else NULL
            spec_counted[s] = &u8_view[0] if n_rows else NULL
            extra = item[6]
            if spec_code[s] == FN_LAST or spec_code[s] == FN_DISTINCT:
                if extra is None:
                    raise ValueError("fold_tiles: last and count_distinct need their extra columns")
                for j in range(3 if spec_code[s] == FN_LAST else 2):
                    i64_view = extra[j]
                    if i64_view.shape[0] != n_rows:
                        raise ValueError("fold_tiles: an extra column is not the batch's length")
                    if n_rows:
                        if j == 0:
                            spec_a[s] = &i64_view[0]
                        elif j == 1:
                            spec_b[s] = &i64_view[0]
                        else:
                            spec_c[s] = &i64_view[0]
            if spec_code[s] == FN_LAST:
                kind = <int>extra[3]
                spec_kind[s] = kind
                spec_maxval[s] = <Py_ssize_t>extra[8]
                if kind == 1 or kind == 4:
                    i64_view = extra[4]
                    if i64_view.shape[0] != n_rows:
                        raise ValueError("fold_tiles: last's values are not the batch's length")
                    spec_ints[s] = &i64_view[0] if n_rows else NULL
                elif kind == 2:
                    f64_view = extra[5]
                    if f64_view.shape[0] != n_rows:
                        raise ValueError("fold_tiles: last's values are not the batch's length")
                    spec_floats[s] = &f64_view[0] if n_rows else NULL
                elif kind == 3:
                    i64_view = extra[6]
                    bytes_view = extra[7]
                    if i64_view.shape[0] != n_rows + 1:
                        raise ValueError("fold_tiles: last's string offsets are not the batch's length + 1")
                    spec_offsets[s] = &i64_view[0]
                    spec_data[s] = &bytes_view[0] if bytes_view.shape[0] else NULL
                    if i64_view[n_rows] > bytes_view.shape[0]:
                        raise ValueError("fold_tiles: last's string offsets run past the data")
                else:
                    raise ValueError("fold_tiles: last's value kind is unknown")
        for u in range(n_entities):
            first, last_row = starts[u], starts[u + 1]
            blob = blobs[u]
            n_blob = 0
            raw = NULL
            end = 0
            if blob is not None:
                raw = <const unsigned char*>PyBytes_AS_STRING(blob)
                end = PyBytes_GET_SIZE(blob)
                if end < BLOB_HEAD or raw[0] != BLOB_FORMAT:
                    raise ValueError("tile blob format unknown")
                memcpy(&count16, raw + 9, 2)
                slot_count = count16
                if slot_count > MAX_SLOTS:
                    raise ValueError("tile blob has too many slots")
                pos = BLOB_HEAD
                for b in range(slot_count):
                    if pos + SLOT_HEAD > end:
                        raise ValueError("tile blob truncated")
                    memcpy(&blob_slot[b], raw + pos, 4)
                    blob_code[b] = raw[pos + 4]
                    memcpy(&count16, raw + pos + 13, 2)
                    blob_start[b] = pos
                    pos += SLOT_HEAD
                    for i in range(count16):
                        pos += _tile_size(raw, pos, end, blob_code[b])
                    blob_end[b] = pos
                n_blob = slot_count
            need = BLOB_HEAD + end
            for s in range(n_specs):  # new tiles, changed last values, added registers: a bound
                need += SLOT_HEAD + (last_row - first + 1) * (TILE_HEAD + 8 + 32 + 1 + 2 + 3)
                need += (end // TILE_HEAD + last_row - first + 1) * (spec_maxval[s] + 8)
            if need > out_cap:
                free(out)
                out = <unsigned char*>malloc(need)
                out_cap = need
                if not out:
                    out_cap = 0
                    raise MemoryError()
            w = BLOB_HEAD
            slot_count = 0
            b = 0
            s = 0
            while b < n_blob or s < n_specs:
                if s >= n_specs or (b < n_blob and blob_slot[b] < spec_slot[s]):
                    memcpy(out + w, raw + blob_start[b], blob_end[b] - blob_start[b])  # not folded: kept as stored
                    w += blob_end[b] - blob_start[b]
                    b += 1
                    slot_count += 1
                    continue
                code = spec_code[s]
                tile_us = spec_tile[s]
                dropped = 0
                n_tiles = 0
                count16 = 0
                if b < n_blob and blob_slot[b] == spec_slot[s]:
                    if blob_code[b] != code:
                        raise ValueError("tile blob slot holds another function")
                    memcpy(&count16, raw + blob_start[b] + 13, 2)
                need = count16 + (last_row - first) + 1
                if need > tiles_cap:
                    tiles = <CTile*>realloc(tiles, need * sizeof(CTile))
                    if not tiles:
                        tiles_cap = 0
                        raise MemoryError()
                    tiles_cap = need
                if b < n_blob and blob_slot[b] == spec_slot[s]:  # decode the stored tiles of this slot
                    pos = blob_start[b]
                    dropped = _get_i64(raw + pos + 5)
                    pos += SLOT_HEAD
                    for i in range(count16):
                        _new_tile(&tiles[i], _get_i64(raw + pos))
                        n_tiles = i + 1
                        tiles[i].newest = _get_i64(raw + pos + 8)
                        tiles[i].n = _get_i64(raw + pos + 16)
                        size = _tile_size(raw, pos, end, code)
                        if code == FN_SUM or code == FN_MEAN or code == FN_MIN or code == FN_MAX:
                            memcpy(&tiles[i].x, raw + pos + TILE_HEAD, 8)
                        elif code == FN_LAST:
                            for j in range(4):
                                tiles[i].stamp[j] = _get_i64(raw + pos + TILE_HEAD + 8 * j)
                            tiles[i].stored_value = raw + pos + TILE_HEAD + 32
                            tiles[i].stored_value_len = size - TILE_HEAD - 32
                            tiles[i].has_last = 1 if tiles[i].n else 0  # decoded as None when nothing was counted
                        elif code == FN_DISTINCT:
                            memcpy(&regs16, raw + pos + TILE_HEAD, 2)
                            for j in range(regs16):
                                _set_register(&tiles[i], (<uint16_t>raw[pos + TILE_HEAD + 2 + 3 * j]) | (<uint16_t>raw[pos + TILE_HEAD + 3 + 3 * j] << 8),
                                              raw[pos + TILE_HEAD + 4 + 3 * j])
                        pos += size
                    b += 1
                cache = -1
                for j in range(first, last_row):  # the rows, in arrival order
                    r = order[j]
                    e = times[r]
                    k = _floordiv(e, tile_us)
                    if cache >= 0 and tiles[cache].k == k:
                        found = cache
                    else:
                        found = -1
                        for i in range(n_tiles):
                            if tiles[i].k == k:
                                found = i
                                break
                        if found < 0:
                            found = n_tiles
                            _new_tile(&tiles[found], k)
                            n_tiles += 1
                        cache = found
                    if e > tiles[found].newest:
                        tiles[found].newest = e
                    if not spec_counted[s][r]:
                        continue
                    v = spec_values[s][r]
                    if code == FN_SUM or code == FN_MEAN:
                        tiles[found].x += v
                    elif code == FN_MIN:
                        if tiles[found].n == 0 or v < tiles[found].x:
                            tiles[found].x = v
                    elif code == FN_MAX:
                        if tiles[found].n == 0 or v > tiles[found].x:
                            tiles[found].x = v
                    elif code == FN_LAST:
                        stamp[0] = e
                        stamp[1] = spec_a[s][r]
                        stamp[2] = spec_b[s][r]
                        stamp[3] = spec_c[s][r]
                        if tiles[found].has_last == 0 or _stamp_after(stamp, tiles[found].stamp):
                            memcpy(tiles[found].stamp, stamp, 32)
                            tiles[found].has_last = 2
                            tiles[found].last_row = r
                    elif code == FN_DISTINCT:
                        _set_register(&tiles[found], <uint16_t>spec_a[s][r], <uint8_t>spec_b[s][r])
                    tiles[found].n += 1
                oldest = _floordiv(now, tile_us) - spec_keep[s]
                i = 0
                for j in range(n_tiles):  # drop what can no longer be counted or corrected
                    if tiles[j].k <= oldest:
                        if tiles[j].newest > dropped:
                            dropped = tiles[j].newest
                        _free_registers(&tiles[j], 1)
                    else:
                        tiles[i] = tiles[j]
                        i += 1
                n_tiles = i
                for i in range(1, n_tiles):  # by tile index, as stored
                    t = tiles[i]
                    j = i - 1
                    while j >= 0 and tiles[j].k > t.k:
                        tiles[j + 1] = tiles[j]
                        j -= 1
                    tiles[j + 1] = t
                if n_tiles > 0xFFFF:
                    raise ValueError("too many tiles for one feature")
                slot = spec_slot[s]
                memcpy(out + w, &slot, 4)
                out[w + 4] = <unsigned char>code
                _set_i64(out + w + 5, dropped)
                count16 = <uint16_t>n_tiles
                memcpy(out + w + 13, &count16, 2)
                w += SLOT_HEAD
                for i in range(n_tiles):
                    _set_i64(out + w, tiles[i].k)
                    _set_i64(out + w + 8, tiles[i].newest)
                    _set_i64(out + w + 16, tiles[i].n)
                    w += TILE_HEAD
                    if code == FN_SUM or code == FN_MEAN or code == FN_MIN or code == FN_MAX:
                        memcpy(out + w, &tiles[i].x, 8)
                        w += 8
                    elif code == FN_LAST:
                        for j in range(4):
                            _set_i64(out + w + 8 * j, tiles[i].stamp[j] if tiles[i].has_last else 0)
                        w += 32
                        if tiles[i].has_last == 2:  # a value of this batch, encoded as tiles._encode_scalar does
                            r = tiles[i].last_row
                            kind = spec_kind[s]
                            if kind == 1:
                                out[w] = 1
                                _set_i64(out + w + 1, spec_ints[s][r])
                                w += 9
                            elif kind == 4:
                                out[w] = 4
                                out[w + 1] = 1 if spec_ints[s][r] else 0
                                w += 2
                            elif kind == 2:
                                out[w] = 2
                                memcpy(out + w + 1, &spec_floats[s][r], 8)
                                w += 9
                            else:
                                length = spec_offsets[s][r + 1] - spec_offsets[s][r]
                                length32 = <uint32_t>length
                                out[w] = 3
                                memcpy(out + w + 1, &length32, 4)
                                if length:
                                    memcpy(out + w + 5, spec_data[s] + spec_offsets[s][r], length)
                                w += 5 + length
                        elif tiles[i].stored_value_len:
                            memcpy(out + w, tiles[i].stored_value, tiles[i].stored_value_len)
                            w += tiles[i].stored_value_len
                        else:
                            out[w] = 0
                            w += 1
                    elif code == FN_DISTINCT:
                        count16 = <uint16_t>tiles[i].n_regs
                        memcpy(out + w, &count16, 2)
                        w += 2
                        for j in range(tiles[i].n_regs):
                            memcpy(out + w, &tiles[i].reg_index[j], 2)
                            out[w + 2] = tiles[i].reg_rank[j]
                            w += 3
                _free_registers(tiles, n_tiles)
                n_tiles = 0
                s += 1
                slot_count += 1
            out[0] = BLOB_FORMAT
            _set_i64(out + 1, seq)
            count16 = <uint16_t>slot_count
            memcpy(out + 9, &count16, 2)
            result.append(PyBytes_FromStringAndSize(<char*>out, w))
        return result
    finally:
        if tiles != NULL:
            _free_registers(tiles, n_tiles)
        free(spec_slot)
        free(spec_code)
        free(spec_tile)
        free(spec_keep)
        free(spec_values)
        free(spec_counted)
        free(spec_a)
        free(spec_b)
        free(spec_c)
        free(spec_kind)
        free(spec_ints)
        free(spec_floats)
        free(spec_offsets)
        free(spec_data)
        free(spec_maxval)
        free(blob_slot)
        free(blob_code)
        free(blob_start)
        free(blob_end)
        free(tiles)
        free(out)


cdef object _scalar_at(const unsigned char* p, Py_ssize_t available):
    """A stored scalar (tiles._decode_scalar): None, bool, int, float or str."""
    cdef unsigned char tag = p[0]
    cdef int64_t iv
    cdef double dv
    cdef uint32_t length
    if tag == 0:
        return None
    if tag == 4:
        return bool(p[1])
    if tag == 1:
        memcpy(&iv, p + 1, 8)
        return iv
    if tag == 2:
        memcpy(&dv, p + 1, 8)
        return dv
    memcpy(&length, p + 1, 4)
    if 5 + <Py_ssize_t>length > available:
        raise ValueError("tile blob truncated")
    return (<bytes>p[5:5 + length]).decode("utf-8")


def tile_values(bytes blob, list reads, int64_t now):
    """FeatureTiles.value_at for each read (slot, function code, tile µs) straight from an entity's blob: a list
    of (value, newest event time) — None for a slot the blob lacks. count_distinct's value is its merged register
    dict (index -> rank), which hll.estimate turns into the count, as the Python path does."""
    cdef const unsigned char* raw = <const unsigned char*>PyBytes_AS_STRING(blob)
    cdef Py_ssize_t end = PyBytes_GET_SIZE(blob)
    cdef Py_ssize_t pos, b, i, j, slot_count, start, size, tiles_at, best_at
    cdef uint16_t count16, regs16
    cdef uint32_t slot, wanted
    cdef int code, want_code
    cdef int64_t tile_us, now_tile, k, newest, n, tn, dropped
    cdef int64_t best[4]
    cdef int64_t stamp[4]
    cdef double total, extreme, x
    cdef bint any_counted, have_best
    if end < BLOB_HEAD or raw[0] != BLOB_FORMAT:
        raise ValueError("tile blob format unknown")
    memcpy(&count16, raw + 9, 2)
    slot_count = count16
    found = {}
    pos = BLOB_HEAD
    for b in range(slot_count):
        if pos + SLOT_HEAD > end:
            raise ValueError("tile blob truncated")
        memcpy(&slot, raw + pos, 4)
        start = pos
        code = raw[pos + 4]
        memcpy(&count16, raw + pos + 13, 2)
        pos += SLOT_HEAD
        for i in range(count16):
            pos += _tile_size(raw, pos, end, code)
        found[slot] = start
    out = []
    for read in reads:
        wanted = <uint32_t>read[0]
        want_code = <int>read[1]
        tile_us = <int64_t>read[2]
        if wanted not in found:
            out.append(None)
            continue
        pos = found[wanted]
        code = raw[pos + 4]
        if code != want_code or tile_us <= 0:
            raise ValueError("tile blob slot holds another function")
        dropped = _get_i64(raw + pos + 5)
        memcpy(&count16, raw + pos + 13, 2)
        pos += SLOT_HEAD
        now_tile = _floordiv(now, tile_us)
        newest = dropped
        n = 0
        total = 0.0
        extreme = 0.0
        any_counted = False
        have_best = False
        best_at = -1
        registers = {} if code == FN_DISTINCT else None
        for i in range(count16):
            size = _tile_size(raw, pos, end, code)
            k = _get_i64(raw + pos)
            if k <= now_tile:
                tn = _get_i64(raw + pos + 8)
                if tn > newest:
                    newest = tn
                if k > now_tile - 60:  # the window: 60 tiles ending with now's
                    tn = _get_i64(raw + pos + 16)
                    n += tn
                    if tn:
                        if code == FN_SUM or code == FN_MEAN:
                            memcpy(&x, raw + pos + TILE_HEAD, 8)
                            total += x
                        elif code == FN_MIN or code == FN_MAX:
                            memcpy(&x, raw + pos + TILE_HEAD, 8)
                            if not any_counted or (code == FN_MIN and x < extreme) or (code == FN_MAX and x > extreme):
                                extreme = x
                            any_counted = True
                        elif code == FN_LAST:
                            for j in range(4):
                                stamp[j] = _get_i64(raw + pos + TILE_HEAD + 8 * j)
                            if not have_best or _stamp_after(stamp, best):
                                memcpy(best, stamp, 32)
                                best_at = pos + TILE_HEAD + 32
                                have_best = True
                    if code == FN_DISTINCT:
                        memcpy(&regs16, raw + pos + TILE_HEAD, 2)
                        for j in range(regs16):
                            index = (<int>raw[pos + TILE_HEAD + 2 + 3 * j]) | (<int>raw[pos + TILE_HEAD + 3 + 3 * j] << 8)
                            rank = <int>raw[pos + TILE_HEAD + 4 + 3 * j]
                            if registers.get(index, 0) < rank:
                                registers[index] = rank
            pos += size
        if code == FN_COUNT:
            value = n
        elif code == FN_SUM:
            value = total
        elif code == FN_MEAN:
            value = total / n if n else None
        elif code == FN_MIN or code == FN_MAX:
            value = extreme if any_counted else None
        elif code == FN_LAST:
            value = _scalar_at(raw + best_at, end - best_at) if have_best else None
        else:
            value = registers
        out.append((value, newest))
    return out
