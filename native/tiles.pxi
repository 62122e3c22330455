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


cdef struct CTile:
    int64_t k
    int64_t newest
    int64_t n
    double x  # the sum (sum, mean) or the extreme (min, max)


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


def fold_numeric_tiles(list blobs, const int64_t[::1] order, const int64_t[::1] starts, const int64_t[::1] times,
                       list specs, int64_t now, int64_t seq):
    """Fold a batch into its entities' tile blobs. blobs[u]: entity u's stored blob (None: none); its rows are
    order[starts[u]:starts[u+1]], in arrival order. specs: (slot, function code, tile µs, tiles kept, values
    float64, counted uint8) per folded feature, sorted by slot; counted[r] says row r passes the filter and has a
    value. Returns the new blobs."""
    cdef Py_ssize_t n_entities = len(blobs)
    cdef Py_ssize_t n_specs = len(specs)
    if n_specs == 0 or n_specs > MAX_SLOTS or starts.shape[0] != n_entities + 1:
        raise ValueError("fold_numeric_tiles: bad arguments")
    cdef uint32_t* spec_slot = <uint32_t*>malloc(n_specs * sizeof(uint32_t))
    cdef int* spec_code = <int*>malloc(n_specs * sizeof(int))
    cdef int64_t* spec_tile = <int64_t*>malloc(n_specs * sizeof(int64_t))
    cdef int64_t* spec_keep = <int64_t*>malloc(n_specs * sizeof(int64_t))
    cdef const double** spec_values = <const double**>malloc(n_specs * sizeof(double*))
    cdef const uint8_t** spec_counted = <const uint8_t**>malloc(n_specs * sizeof(uint8_t*))
    cdef uint32_t* blob_slot = <uint32_t*>malloc(MAX_SLOTS * sizeof(uint32_t))
    cdef int* blob_code = <int*>malloc(MAX_SLOTS * sizeof(int))
    cdef Py_ssize_t* blob_start = <Py_ssize_t*>malloc(MAX_SLOTS * sizeof(Py_ssize_t))
    cdef Py_ssize_t* blob_end = <Py_ssize_t*>malloc(MAX_SLOTS * sizeof(Py_ssize_t))
    cdef CTile* tiles = NULL
    cdef Py_ssize_t tiles_cap = 0
    cdef unsigned char* out = NULL
    cdef Py_ssize_t out_cap = 0
    keep_alive = []
    result = []
    cdef const double[::1] values_view
    cdef const uint8_t[::1] counted_view
    cdef Py_ssize_t s, u, b, i, j, r, pos, end, n_blob, slot_count, n_tiles, found, cache, need, w, first, last_row
    cdef const unsigned char* raw
    cdef object blob
    cdef int code
    cdef uint32_t slot
    cdef uint16_t count16
    cdef int64_t e, k, dropped, oldest, tile_us
    cdef double v
    cdef CTile t
    try:
        if not spec_slot or not spec_code or not spec_tile or not spec_keep or not spec_values or not spec_counted \
                or not blob_slot or not blob_code or not blob_start or not blob_end:
            raise MemoryError()
        for s in range(n_specs):
            item = specs[s]
            spec_slot[s] = <uint32_t>item[0]
            spec_code[s] = <int>item[1]
            spec_tile[s] = <int64_t>item[2]
            spec_keep[s] = <int64_t>item[3]
            if spec_tile[s] <= 0 or spec_code[s] < FN_COUNT or spec_code[s] > FN_MAX:
                raise ValueError("fold_numeric_tiles: a spec is not a numeric tile function")
            if s and spec_slot[s] <= spec_slot[s - 1]:
                raise ValueError("fold_numeric_tiles: specs must be sorted by slot")
            values_view = item[4]
            counted_view = item[5]
            if values_view.shape[0] != times.shape[0] or counted_view.shape[0] != times.shape[0]:
                raise ValueError("fold_numeric_tiles: a spec's columns are not the batch's length")
            keep_alive.append(item[4])
            keep_alive.append(item[5])
            spec_values[s] = &values_view[0] if values_view.shape[0] else NULL
            spec_counted[s] = &counted_view[0] if counted_view.shape[0] else NULL
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
            need = BLOB_HEAD + end + n_specs * SLOT_HEAD + n_specs * (last_row - first + 1) * (TILE_HEAD + 8)
            for b in range(n_blob):
                need += (blob_end[b] - blob_start[b]) // TILE_HEAD * 8 + 8
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
                if b < n_blob and blob_slot[b] == spec_slot[s]:  # decode the stored tiles of this slot
                    if blob_code[b] != code:
                        raise ValueError("tile blob slot holds another function")
                    pos = blob_start[b]
                    dropped = _get_i64(raw + pos + 5)
                    memcpy(&count16, raw + pos + 13, 2)
                    need = count16 + (last_row - first) + 1
                    if need > tiles_cap:
                        free(tiles)
                        tiles = <CTile*>malloc(need * sizeof(CTile))
                        tiles_cap = need
                        if not tiles:
                            tiles_cap = 0
                            raise MemoryError()
                    pos += SLOT_HEAD
                    for i in range(count16):
                        tiles[i].k = _get_i64(raw + pos)
                        tiles[i].newest = _get_i64(raw + pos + 8)
                        tiles[i].n = _get_i64(raw + pos + 16)
                        tiles[i].x = 0.0
                        if code != FN_COUNT:
                            memcpy(&tiles[i].x, raw + pos + TILE_HEAD, 8)
                            pos += 8
                        pos += TILE_HEAD
                    n_tiles = count16
                    b += 1
                else:
                    need = (last_row - first) + 1
                    if need > tiles_cap:
                        free(tiles)
                        tiles = <CTile*>malloc(need * sizeof(CTile))
                        tiles_cap = need
                        if not tiles:
                            tiles_cap = 0
                            raise MemoryError()
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
                            tiles[found].k = k
                            tiles[found].newest = 0
                            tiles[found].n = 0
                            tiles[found].x = 0.0
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
                    tiles[found].n += 1
                oldest = _floordiv(now, tile_us) - spec_keep[s]
                i = 0
                for j in range(n_tiles):  # drop what can no longer be counted or corrected
                    if tiles[j].k <= oldest:
                        if tiles[j].newest > dropped:
                            dropped = tiles[j].newest
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
                    if code != FN_COUNT:
                        memcpy(out + w, &tiles[i].x, 8)
                        w += 8
                s += 1
                slot_count += 1
            out[0] = BLOB_FORMAT
            _set_i64(out + 1, seq)
            count16 = <uint16_t>slot_count
            memcpy(out + 9, &count16, 2)
            result.append(PyBytes_FromStringAndSize(<char*>out, w))
        return result
    finally:
        free(spec_slot)
        free(spec_code)
        free(spec_tile)
        free(spec_keep)
        free(spec_values)
        free(spec_counted)
        free(blob_slot)
        free(blob_code)
        free(blob_start)
        free(blob_end)
        free(tiles)
        free(out)
