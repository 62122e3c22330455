# Point-in-time as-of kernel (twin of fsd/offline/pit.py: asof_match_reference).
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
