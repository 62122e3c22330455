"""Point-in-time (as-of) join as small vectorised steps: dense entity ids, one sort, one binary search.

For each left row (entity, t) the match is the right row of the same entity with the greatest event time
<= t; among equal event times, the greatest created time (a later correction wins). Never a later value.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


_PACK_LIMIT = 1 << 62


def _column_codes(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Non-negative int codes of one key column (equal values, equal codes); small ranges skip the sort."""
    if pa.types.is_integer(column.type):
        values = pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False)
        if len(values):
            low, high = int(values.min()), int(values.max())
            if high - low < 1 << 40:
                return values - low
        return np.unique(values, return_inverse=True)[1].astype(np.int64)
    encoded = pc.dictionary_encode(column)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.unify_dictionaries().combine_chunks() if encoded.num_chunks else pa.array([], pa.dictionary(pa.int32(), pa.string()))
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def dense_entity_ids(left: Sequence[pa.ChunkedArray], right: Sequence[pa.ChunkedArray]) -> tuple[np.ndarray, np.ndarray]:
    """Codes shared by both sides for composite keys: equal key tuples get equal ids."""
    n_left = len(left[0])
    ids: np.ndarray | None = None
    for lcol, rcol in zip(left, right):
        lchunks = pa.chunked_array(lcol)
        rchunks = pa.chunked_array(pc.cast(rcol, lchunks.type))
        codes = _column_codes(pa.chunked_array([*lchunks.chunks, *rchunks.chunks], type=lchunks.type))
        if ids is None:
            ids = codes
        else:
            ids = np.unique(ids * (int(codes.max()) + 1 if len(codes) else 1) + codes, return_inverse=True)[1].astype(np.int64)
    assert ids is not None
    return ids[:n_left], ids[n_left:]


def asof_indices(
    left_ids: np.ndarray, left_times: np.ndarray, right_ids: np.ndarray, right_times: np.ndarray, right_created: np.ndarray
) -> np.ndarray:
    """Index into the right side of each left row's as-of match, -1 where the entity has no value by then."""
    if len(right_ids) == 0 or len(left_ids) == 0:
        return np.full(len(left_ids), -1, dtype=np.int64)
    # Pack (entity, time) into one int64: offset times when the product fits, else rank them over both sides.
    t_low = min(int(left_times.min()), int(right_times.min()))
    span = max(int(left_times.max()), int(right_times.max())) - t_low + 1
    id_count = max(int(left_ids.max()), int(right_ids.max())) + 1
    if span * id_count < _PACK_LIMIT:
        l_rel, r_rel = left_times - t_low, right_times - t_low
    else:
        ranks = np.unique(np.concatenate([left_times, right_times]), return_inverse=True)[1].astype(np.int64)
        span = int(ranks.max()) + 1
        if span * id_count >= _PACK_LIMIT:
            raise ValueError("too many distinct entities and times to pack; split the request")
        l_rel, r_rel = ranks[: len(left_times)], ranks[len(left_times):]
    r_packed = right_ids * span + r_rel
    # One int64 argsort (~3x a 3-key lexsort); equal (entity, time) pairs need the created-time order (and, among
    # exact ties, the row written last), so only then fall back to the stable lexsort.
    order = np.argsort(r_packed)
    r_key = r_packed[order]
    if len(r_key) > 1 and bool((r_key[1:] == r_key[:-1]).any()):
        order = np.lexsort((right_created, r_packed))
        r_key = r_packed[order]
    r_ids = right_ids[order]
    l_key = left_ids * span + l_rel
    pos = np.searchsorted(r_key, l_key, side="right") - 1
    hit = pos >= 0
    safe = np.where(hit, pos, 0)
    hit &= r_ids[safe] == left_ids
    return np.where(hit, order[safe], -1)
