"""Point-in-time (as-of) join as small vectorised steps: dense entity ids, then one bucketed match.

For each entity row (entity, t) the match is the feature row of the same entity with the greatest event time
<= t; among equal event times, the greatest created time (a later correction wins). Never a later value.
The entity rows are indexed once (EntityRows) and shared by every feature version keyed the same way; the
match itself is fsd._native.asof_match (GIL-free, so feature versions join in parallel threads), whose
specification is asof_match_reference below.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


_PACK_LIMIT = 1 << 62


def _lookup(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in sorted_values, -1 where absent."""
    if len(sorted_values) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    return np.where(sorted_values[pos] == values, pos, -1).astype(np.int64)


def asof_match_reference(
    left_ids: np.ndarray, left_times: np.ndarray, right_ids: np.ndarray, right_times: np.ndarray, right_created: np.ndarray,
    id_count: int,
) -> np.ndarray:
    """The specification of fsd._native.asof_match: for each left row, the index of the right row with the same id
    and the greatest (time, created, index) whose time <= the left row's time; -1 where none. Ids outside
    [0, id_count) match nothing."""
    left_ids, right_ids = np.asarray(left_ids, dtype=np.int64), np.asarray(right_ids, dtype=np.int64)
    out = np.full(len(left_ids), -1, dtype=np.int64)
    rows = np.flatnonzero((right_ids >= 0) & (right_ids < id_count))
    wanted = np.flatnonzero((left_ids >= 0) & (left_ids < id_count))
    if len(rows) == 0 or len(wanted) == 0:
        return out
    l_ids, l_times = left_ids[wanted], np.asarray(left_times, dtype=np.int64)[wanted]
    r_ids, r_times = right_ids[rows], np.asarray(right_times, dtype=np.int64)[rows]
    r_created = np.asarray(right_created, dtype=np.int64)[rows]
    # Pack (id, time) into one int64: offset times when the product fits, else rank them over both sides.
    t_low = min(int(l_times.min()), int(r_times.min()))
    span = max(int(l_times.max()), int(r_times.max())) - t_low + 1
    if span * id_count < _PACK_LIMIT:
        l_rel, r_rel = l_times - t_low, r_times - t_low
    else:
        ranks = np.unique(np.concatenate([l_times, r_times]), return_inverse=True)[1].astype(np.int64).reshape(-1)
        span = int(ranks.max()) + 1
        if span * id_count >= _PACK_LIMIT:
            raise ValueError("too many distinct entities and times to pack; split the request")
        l_rel, r_rel = ranks[: len(l_times)], ranks[len(l_times):]
    r_packed = r_ids * span + r_rel
    order = np.lexsort((r_created, r_packed))  # stable: among exact ties the later row sorts last and wins
    pos = np.searchsorted(r_packed[order], l_ids * span + l_rel, side="right") - 1
    safe = np.maximum(pos, 0)
    hit = (pos >= 0) & (r_ids[order[safe]] == l_ids)
    out[wanted] = np.where(hit, rows[order[safe]], -1)
    return out


def asof_statuses_reference(
    match: np.ndarray, left_times: np.ndarray, right_times: np.ndarray, max_age_micros: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The specification of fsd._native.asof_statuses: (the matched right row where its value is usable, else -1;
    status 1 PRESENT / 2 NOT_FOUND / 3 STALE; the matched event time where usable, else 0). A match more than
    max_age_micros (> 0) older than its left row is STALE: seen, but too old to use."""
    match = np.asarray(match, dtype=np.int64)
    left_times, right_times = np.asarray(left_times, dtype=np.int64), np.asarray(right_times, dtype=np.int64)
    if len(match) and int(match.max(initial=-1)) >= len(right_times):
        raise ValueError("asof_statuses: a match points past the right rows")
    found = match >= 0
    matched = np.where(found, right_times[np.where(found, match, 0)] if len(right_times) else 0, 0)
    stale = found & (max_age_micros > 0) & (left_times - matched > max_age_micros)
    usable = found & ~stale
    status = np.where(usable, 1, np.where(stale, 3, 2)).astype(np.uint8)
    return np.where(usable, match, -1), status, np.where(usable, matched, 0)


def _select(name: str, reference):  # type: ignore[no-untyped-def]
    from fsd import codec

    return getattr(codec._native, name, None) or reference


asof_match = _select("asof_match", asof_match_reference)
asof_statuses = _select("asof_statuses", asof_statuses_reference)


class _KeyCodes:
    """Codes 0..count-1 for the values of one entity-row key column, and the same codes for feature rows (-1 for a
    value no entity row has). Int keys in a range not much wider than their count are their own offset from the smallest (no sort)."""

    def __init__(self, column: pa.ChunkedArray) -> None:
        self.type = column.type
        self._integer = pa.types.is_integer(column.type)
        self._table: np.ndarray | None = None
        if self._integer:
            values = pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False)
            self._low = int(values.min()) if len(values) else 0
            high = int(values.max()) if len(values) else 0
            # Offsets from the smallest key need no sort; the as-of kernel's radix split keeps a wide id range cheap,
            # which matters for out-of-core partitions (a hash partition's keys are spread over the whole range).
            if high - self._low < max(16 * len(values), 1 << 22):
                self.left = values - self._low
                self.count = high - self._low + 1
                self._offsets = True
            else:
                self._offsets = False
                self._uniques, inverse = np.unique(values, return_inverse=True)
                self.left = inverse.astype(np.int64).reshape(-1)
                self.count = len(self._uniques)
        else:
            encoded = pc.dictionary_encode(column).unify_dictionaries().combine_chunks()
            self._dictionary = encoded.dictionary
            self.left = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
            self.count = len(self._dictionary)

    def right(self, column: pa.ChunkedArray) -> np.ndarray:
        if not self._integer:
            found = pc.index_in(pc.cast(column, self.type), value_set=self._dictionary)
            return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        column = pc.fill_null(pc.cast(column, pa.int64()), self._low - 1)  # a null key matches no entity row
        values = column.to_numpy(zero_copy_only=False)
        if not self._offsets:
            return _lookup(self._uniques, values)
        offsets = values - self._low
        return np.where((offsets >= 0) & (offsets < self.count), offsets, -1)


def _fold(keys: Sequence[pa.ChunkedArray]) -> tuple[list[_KeyCodes], list[tuple[int, np.ndarray]], np.ndarray, int]:
    """Per-column codes, the fold steps, and one dense id per row (equal key tuples, equal ids) with their count.
    Composite keys fold column by column, re-densifying after each, so the packed int never overflows."""
    columns = [_KeyCodes(pa.chunked_array(column)) for column in keys]
    ids, id_count = columns[0].left, columns[0].count
    steps: list[tuple[int, np.ndarray]] = []
    for column in columns[1:]:
        uniques, inverse = np.unique(ids * column.count + column.left, return_inverse=True)
        steps.append((column.count, uniques))
        ids, id_count = inverse.astype(np.int64).reshape(-1), len(uniques)
    return columns, steps, ids, id_count


def entity_ids(keys: Sequence[pa.ChunkedArray]) -> np.ndarray:
    """A dense id per row of one table's key columns: equal key tuples get equal ids."""
    return _fold(keys)[2]


def entity_ids_and_count(keys: Sequence[pa.ChunkedArray]) -> tuple[np.ndarray, int]:
    """entity_ids and how many ids there are (ids lie in [0, count); with int offsets some may be unused)."""
    _, _, ids, count = _fold(keys)
    return ids, count


class EntityRows:
    """The entity-row side of as-of joins for one key set, indexed once (dense entity ids) and shared by every
    feature version keyed the same way."""

    def __init__(self, keys: Sequence[pa.ChunkedArray], times: np.ndarray) -> None:
        for column in keys:
            if column.null_count:
                raise ValueError("entity key columns must not hold nulls")
        self._columns, self._steps, self._ids, self._id_count = _fold(keys)
        self.count = len(times)
        self._times = times

    def feature_ids(self, keys: Sequence[pa.ChunkedArray]) -> np.ndarray:
        """The entity id of each feature row under these entity rows' ids; -1 where no entity row has its key."""
        ids = self._columns[0].right(keys[0])
        for column, right, (count, uniques) in zip(self._columns[1:], keys[1:], self._steps):
            codes = column.right(right)
            known = (ids >= 0) & (codes >= 0)
            ids = np.where(known, _lookup(uniques, np.where(known, ids * count + codes, -1)), -1)
        return ids

    def asof(self, keys: Sequence[pa.ChunkedArray], event_times: np.ndarray, created_times: np.ndarray) -> np.ndarray:
        """Index into the feature rows of each entity row's as-of match (in entity-row order), -1 where none."""
        return asof_match(self._ids, self._times, self.feature_ids(keys), event_times, created_times, self._id_count)
