# Compiled twin of fsd/aggregation/offline.compute for count/sum/mean/min/max (the specification, itself
# property-tested against the brute-force reference): per entity, its events in arrival order are folded into
# tiles and each of its labels, in time order, reads them as of its instant having folded exactly the events
# received by then. tests/unit/aggregation proves the two give the same values, statuses and event times.


cdef struct OTile:
    int64_t k
    int64_t newest
    int64_t n
    double x


cdef inline Py_ssize_t _tile_slot(OTile* tiles, Py_ssize_t n_tiles, int64_t k) noexcept nogil:
    """Index of the first tile with index >= k (tiles sorted by index)."""
    cdef Py_ssize_t lo = 0, hi = n_tiles, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if tiles[mid].k < k:
            lo = mid + 1
        else:
            hi = mid
    return lo


def computed_values_offline(const int64_t[::1] event_entity, const int64_t[::1] event_time, const int64_t[::1] received,
                            const int64_t[::1] label_entity, const int64_t[::1] label_time, const int64_t[::1] label_order,
                            int code, int64_t tile_us, int64_t max_age, const double[::1] values, const uint8_t[::1] counted,
                            int64_t as_of, bint has_as_of):
    """One numeric feature's value for every label. Events sorted by (entity, arrival); labels visited in
    label_order, which sorts them by (entity, time). Returns (values float64, valid uint8, status uint8, event
    time int64), in the labels' own order."""
    cdef Py_ssize_t n_events = event_entity.shape[0], n_labels = label_entity.shape[0]
    if event_time.shape[0] != n_events or received.shape[0] != n_events or values.shape[0] != n_events or counted.shape[0] != n_events:
        raise ValueError("computed_values_offline: event columns differ in length")
    if label_time.shape[0] != n_labels or label_order.shape[0] != n_labels or tile_us <= 0 or code < FN_COUNT or code > FN_MAX:
        raise ValueError("computed_values_offline: bad arguments")
    out_values = np.zeros(n_labels, dtype=np.float64)
    out_valid = np.zeros(n_labels, dtype=np.uint8)
    out_status = np.full(n_labels, 2, dtype=np.uint8)
    out_event = np.zeros(n_labels, dtype=np.int64)
    cdef double[::1] ov = out_values
    cdef uint8_t[::1] ok = out_valid
    cdef uint8_t[::1] ost = out_status
    cdef int64_t[::1] oe = out_event
    cdef OTile* tiles = NULL
    cdef Py_ssize_t cap = 0, n_tiles = 0, e_pos = 0, e_start = 0, li, lab, i, j, lo
    cdef int64_t entity = 0, current = -1, t, seen, k, now_tile, newest, n, e
    cdef double total, extreme, v
    cdef bint any_counted
    with nogil:
        for li in range(n_labels):
            lab = label_order[li]
            if lab < 0 or lab >= n_labels:
                with gil:
                    raise ValueError("computed_values_offline: label_order out of range")
            entity = label_entity[lab]
            t = label_time[lab]
            if li == 0 or entity != current:  # a new entity: its events start where they start
                current = entity
                n_tiles = 0
                while e_pos < n_events and event_entity[e_pos] < entity:
                    e_pos += 1
                e_start = e_pos
            seen = t if not has_as_of or t < as_of else as_of
            while e_pos < n_events and event_entity[e_pos] == entity and received[e_pos] <= seen:
                e = event_time[e_pos]
                k = _floordiv(e, tile_us)
                i = _tile_slot(tiles, n_tiles, k)
                if i == n_tiles or tiles[i].k != k:
                    if n_tiles == cap:
                        cap = cap * 2 + 16
                        tiles = <OTile*>realloc(tiles, cap * sizeof(OTile))
                        if tiles == NULL:
                            with gil:
                                raise MemoryError()
                    for j in range(n_tiles, i, -1):
                        tiles[j] = tiles[j - 1]
                    tiles[i].k = k
                    tiles[i].newest = 0
                    tiles[i].n = 0
                    tiles[i].x = 0.0
                    n_tiles += 1
                if e > tiles[i].newest:
                    tiles[i].newest = e
                if counted[e_pos]:
                    v = values[e_pos]
                    if code == FN_SUM or code == FN_MEAN:
                        tiles[i].x += v
                    elif code == FN_MIN:
                        if tiles[i].n == 0 or v < tiles[i].x:
                            tiles[i].x = v
                    elif code == FN_MAX:
                        if tiles[i].n == 0 or v > tiles[i].x:
                            tiles[i].x = v
                    tiles[i].n += 1
                e_pos += 1
            if e_pos == e_start:
                continue  # nothing of this entity received by t: NOT_FOUND
            now_tile = _floordiv(t, tile_us)
            newest = 0
            for j in range(n_tiles):
                if tiles[j].k > now_tile:
                    break
                if tiles[j].newest > newest:
                    newest = tiles[j].newest
            lo = _tile_slot(tiles, n_tiles, now_tile - 59)  # the window: 60 tiles ending with t's
            n = 0
            total = 0.0
            extreme = 0.0
            any_counted = False
            for j in range(lo, n_tiles):
                if tiles[j].k > now_tile:
                    break
                n += tiles[j].n
                if tiles[j].n:
                    if code == FN_SUM or code == FN_MEAN:
                        total += tiles[j].x
                    elif not any_counted or (code == FN_MIN and tiles[j].x < extreme) or (code == FN_MAX and tiles[j].x > extreme):
                        extreme = tiles[j].x
                    any_counted = True
            if code == FN_COUNT:
                ov[lab] = <double>n
                ok[lab] = 1
            elif code == FN_SUM:
                ov[lab] = total
                ok[lab] = 1
            elif code == FN_MEAN:
                if n:
                    ov[lab] = total / n
                    ok[lab] = 1
            elif any_counted:
                ov[lab] = extreme
                ok[lab] = 1
            ost[lab] = 3 if max_age and newest and t - newest > max_age else 1
            oe[lab] = newest
    free(tiles)
    return out_values, out_valid, out_status, out_event
