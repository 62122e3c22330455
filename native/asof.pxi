# Point-in-time as-of kernel (twin of fsd/offline/pit.py: asof_match_reference).
# --- point-in-time join kernel (see fsd/offline/pit.py: asof_match_reference) --------------------------------------

from libc.stdlib cimport qsort
from libc.string cimport memset


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


cdef struct AsofLeft:
    int64_t id
    int64_t time
    int64_t index


cdef struct AsofRight:
    int64_t id
    AsofRow row


cdef void _sort_buckets(AsofRow* rows, const int64_t* starts, Py_ssize_t buckets) noexcept nogil:
    """Order each id's rows by (time, created, index): insertion sort for short runs, qsort for long ones."""
    cdef Py_ssize_t b, j, k, start, size
    cdef AsofRow key
    for b in range(buckets):
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


cdef inline int64_t _probe(const AsofRow* rows, int64_t lo, int64_t hi, int64_t t) noexcept nogil:
    """The index of the last row in [lo, hi) with time <= t, or -1."""
    cdef int64_t first = lo, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if rows[mid].time <= t:
            lo = mid + 1
        else:
            hi = mid
    return rows[lo - 1].index if lo > first else -1


cdef void _asof_range(const AsofLeft* left, Py_ssize_t n, const AsofRight* right, Py_ssize_t m, int64_t low, Py_ssize_t span,
                      int64_t* starts, AsofRow* rows, int64_t* out) noexcept nogil:
    """asof_match for rows whose ids lie in [low, low + span): a counting sort by id, then one probe per left row.
    starts holds span + 2 slots, rows m slots."""
    cdef Py_ssize_t j, b
    cdef int64_t k, id_
    memset(starts, 0, (span + 2) * sizeof(int64_t))
    for j in range(m):
        starts[right[j].id - low + 2] += 1
    for b in range(2, span + 2):
        starts[b] += starts[b - 1]
    # starts[b + 1] is now the first slot of id b; filling advances it to the id's end.
    for j in range(m):
        id_ = right[j].id - low
        k = starts[id_ + 1]
        rows[k] = right[j].row
        starts[id_ + 1] = k + 1
    _sort_buckets(rows, starts, span)  # id b spans [starts[b], starts[b + 1])
    for j in range(n):
        id_ = left[j].id - low
        out[left[j].index] = _probe(rows, starts[id_], starts[id_ + 1], left[j].time)


_scratch_pool = []  # at most two blocks (two joining threads); taken and given back under the GIL
_SCRATCH_KEEP_MAX = 1 << 30


def _take_scratch(Py_ssize_t size):
    for i, block in enumerate(_scratch_pool):
        if block.shape[0] >= size:
            return _scratch_pool.pop(i)
    return np.empty(size, dtype=np.uint8)


def _give_scratch(block):
    if block.shape[0] > _SCRATCH_KEEP_MAX:
        return
    _scratch_pool.append(block)
    if len(_scratch_pool) > 2:
        _scratch_pool.sort(key=lambda b: b.shape[0])
        del _scratch_pool[0]


def asof_match(left_ids, left_times, right_ids, right_times, right_created, Py_ssize_t id_count, int radix_bits=-1):
    """For each left row, the index of the right row with the same id and the greatest (time, created, index)
    whose time <= the left row's time; -1 where none. Ids outside [0, id_count) match nothing.

    Both sides are first split by the high bits of the id into 2^radix_bits ranges (sequential writes), so each
    range's counting sort and probes touch a few KiB of bucket starts instead of one array over every id: the
    random access that made large joins memory-bound stays in cache. radix_bits -1 picks ranges of ~2k ids.
    Linear in both sides, and all of it without the GIL.
    """
    cdef const int64_t[::1] lid = np.ascontiguousarray(left_ids, dtype=np.int64)
    cdef const int64_t[::1] lt = np.ascontiguousarray(left_times, dtype=np.int64)
    cdef const int64_t[::1] rid = np.ascontiguousarray(right_ids, dtype=np.int64)
    cdef const int64_t[::1] rt = np.ascontiguousarray(right_times, dtype=np.int64)
    cdef const int64_t[::1] rc = np.ascontiguousarray(right_created, dtype=np.int64)
    cdef Py_ssize_t n = lid.shape[0], m = rid.shape[0], i, j, r, ranges, span, id_bits = 0
    if lt.shape[0] != n or rt.shape[0] != m or rc.shape[0] != m:
        raise ValueError("asof_match: ids and times differ in length")
    if id_count < 0:
        raise ValueError("asof_match: id_count must be >= 0")
    while (<int64_t>1 << id_bits) < id_count:
        id_bits += 1
    if radix_bits < 0:
        radix_bits = id_bits - 11 if id_bits > 11 else 0
        if radix_bits > 10:
            radix_bits = 10
    if radix_bits > id_bits:
        radix_bits = id_bits
    cdef int shift = id_bits - radix_bits
    ranges = <Py_ssize_t>1 << radix_bits
    span = <Py_ssize_t>1 << shift
    out_arr = np.full(n, -1, dtype=np.int64)
    cdef int64_t[::1] out = out_arr
    counts_arr = np.zeros(2 * (ranges + 1), dtype=np.int64)
    cdef int64_t[::1] counts = counts_arr
    cdef int64_t* rcount = &counts[0]
    cdef int64_t* lcount = &counts[ranges + 1]
    cdef int64_t id_, k, widest = 1
    with nogil:
        # Split both sides by id range (ids outside [0, id_count) are dropped: they match nothing).
        for j in range(m):
            id_ = rid[j]
            if 0 <= id_ < id_count:
                rcount[(id_ >> shift) + 1] += 1
        for i in range(n):
            id_ = lid[i]
            if 0 <= id_ < id_count:
                lcount[(id_ >> shift) + 1] += 1
        for r in range(1, ranges + 1):
            if rcount[r] > widest:
                widest = rcount[r]
            rcount[r] += rcount[r - 1]
            lcount[r] += lcount[r - 1]
    # One scratch block, reused across calls (fresh pages cost a fault each, about a third of a 1M-row join);
    # the sorted rows of one range at a time need only the widest range's room.
    cdef Py_ssize_t lsize = (n if n > 0 else 1) * sizeof(AsofLeft), rsize = (m if m > 0 else 1) * sizeof(AsofRight)
    cdef Py_ssize_t wsize = widest * sizeof(AsofRow)
    block = _take_scratch(lsize + rsize + wsize + (span + 2) * sizeof(int64_t))
    cdef unsigned char[::1] scratch = block
    cdef unsigned char* base = &scratch[0]
    cdef AsofLeft* left = <AsofLeft*>base
    cdef AsofRight* right = <AsofRight*>(base + lsize)
    cdef AsofRow* rows = <AsofRow*>(base + lsize + rsize)
    cdef int64_t* starts = <int64_t*>(base + lsize + rsize + wsize)
    try:
        with nogil:
            for j in range(m):
                id_ = rid[j]
                if 0 <= id_ < id_count:
                    k = rcount[id_ >> shift]
                    rcount[id_ >> shift] = k + 1
                    right[k].id = id_
                    right[k].row.time = rt[j]
                    right[k].row.created = rc[j]
                    right[k].row.index = j
            for i in range(n):
                id_ = lid[i]
                if 0 <= id_ < id_count:
                    k = lcount[id_ >> shift]
                    lcount[id_ >> shift] = k + 1
                    left[k].id = id_
                    left[k].time = lt[i]
                    left[k].index = i
            # Each count now holds its range's end; the range starts where the previous one ends.
            for r in range(ranges):
                j = rcount[r - 1] if r > 0 else 0
                i = lcount[r - 1] if r > 0 else 0
                if lcount[r] > i:
                    _asof_range(left + i, lcount[r] - i, right + j, rcount[r] - j, <int64_t>r << shift, span, starts, rows, &out[0])
    finally:
        _give_scratch(block)
    return out_arr


def asof_statuses(match, left_times, right_times, int64_t max_age_micros):
    """The outcome of each as-of match (twin of fsd/offline/pit.py: asof_statuses_reference): (the matched right
    row where the value is usable, else -1; status 1 PRESENT / 2 NOT_FOUND / 3 STALE; the matched event time
    where usable, else 0). A match older than max_age_micros (> 0) before its left row's time is STALE.
    One pass without the GIL instead of a dozen numpy temporaries."""
    cdef const int64_t[::1] mt = np.ascontiguousarray(match, dtype=np.int64)
    cdef const int64_t[::1] lt = np.ascontiguousarray(left_times, dtype=np.int64)
    cdef const int64_t[::1] rt = np.ascontiguousarray(right_times, dtype=np.int64)
    cdef Py_ssize_t n = mt.shape[0], m = rt.shape[0], i
    if lt.shape[0] != n:
        raise ValueError("asof_statuses: match and left times differ in length")
    take_arr = np.empty(n, dtype=np.int64)
    status_arr = np.empty(n, dtype=np.uint8)
    times_arr = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] take = take_arr
    cdef uint8_t[::1] status = status_arr
    cdef int64_t[::1] times = times_arr
    cdef int64_t j, t
    cdef bint bad = False
    with nogil:
        for i in range(n):
            j = mt[i]
            if j < 0:
                take[i] = -1
                status[i] = 2
                times[i] = 0
                continue
            if j >= m:
                bad = True
                break
            t = rt[j]
            if max_age_micros > 0 and lt[i] - t > max_age_micros:
                take[i] = -1
                status[i] = 3
                times[i] = 0
            else:
                take[i] = j
                status[i] = 1
                times[i] = t
    if bad:
        raise ValueError("asof_statuses: a match points past the right rows")
    return take_arr, status_arr, times_arr
