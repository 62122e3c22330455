"""The compiled as-of kernel equals its numpy specification, and joins with several key sets share one index."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from fsd import _native
from fsd.offline import pit
from fsd.offline.retrieval import FeatureVersion, get_historical_features
from fsd.offline.store import OfflineStore

TS = pa.timestamp("us", tz="UTC")
BASE = 1_700_000_000_000_000


def test_the_compiled_kernel_is_the_one_in_use() -> None:
    assert os.environ.get("FSD_NO_EXTENSIONS") or pit.asof_match is _native.asof_match


ids = st.integers(-2, 6)
times = st.integers(-3, 12)


@settings(max_examples=300)
@given(
    left=st.lists(st.tuples(ids, times), max_size=30),
    right=st.lists(st.tuples(ids, times, st.integers(0, 3)), max_size=60),
    id_count=st.integers(0, 6),
    big_bucket=st.booleans(),
    radix_bits=st.sampled_from([-1, 0, 1, 2, 3, 5]),
)
def test_native_asof_matches_reference(left, right, id_count, big_bucket, radix_bits) -> None:  # type: ignore[no-untyped-def]
    """radix_bits splits the ids into 2^bits ranges joined one at a time (the cache-friendly path of large joins)."""
    if big_bucket:  # more than 16 rows of one id take the qsort branch rather than the insertion sort
        right = right + [(1, t % 13, t % 3) for t in range(40)]
    l_ids = np.array([r[0] for r in left], dtype=np.int64)
    l_times = np.array([r[1] for r in left], dtype=np.int64)
    r_ids = np.array([r[0] for r in right], dtype=np.int64)
    r_times = np.array([r[1] for r in right], dtype=np.int64)
    r_created = np.array([r[2] for r in right], dtype=np.int64)
    expected = pit.asof_match_reference(l_ids, l_times, r_ids, r_times, r_created, id_count)
    got = _native.asof_match(l_ids, l_times, r_ids, r_times, r_created, id_count, radix_bits)
    assert got.tolist() == expected.tolist()
    for i, match in enumerate(expected.tolist()):  # and the reference means what it says
        candidates = [j for j, r in enumerate(right) if r[0] == left[i][0] and 0 <= r[0] < id_count and r[1] <= left[i][1]]
        best = max(candidates, key=lambda j: (right[j][1], right[j][2], j), default=-1)
        assert match == best


def _write(store: OfflineStore, group: str, keys: dict[str, list[object]], seconds: list[int], values: list[float]) -> None:
    stamps = pa.array([BASE + s * 1_000_000 for s in seconds], TS)
    store.write(group, "f", 1, pa.table({**keys, "event_timestamp": stamps, "created_timestamp": stamps, "value": values}))


@settings(max_examples=60, deadline=None)
@given(
    users=st.lists(st.tuples(st.integers(-(2**62), 2**62), st.integers(0, 50), st.floats(-1e3, 1e3, allow_nan=False)), max_size=20),
    shops=st.lists(st.tuples(st.sampled_from(["a", "b", "é"]), st.integers(0, 50), st.floats(-1e3, 1e3, allow_nan=False)), max_size=20),
    queries=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["a", "b", "c"]), st.integers(0, 60)), min_size=1, max_size=20),
)
def test_features_of_different_key_sets_join_in_one_retrieval(tmp_path_factory, users, shops, queries) -> None:  # type: ignore[no-untyped-def]
    """A wide int key range (no offset table) and a string key, each against the same entity rows."""
    store = OfflineStore(tmp_path_factory.mktemp("off"))
    user_ids = [-(2**62), 0, 7, 2**62]
    users = [(user_ids[u % 4], s, v) for u, s, v in users]
    if users:
        _write(store, "users", {"user_id": pa.array([u[0] for u in users], pa.int64())}, [u[1] for u in users], [u[2] for u in users])
    if shops:
        _write(store, "shops", {"shop": [s[0] for s in shops]}, [s[1] for s in shops], [s[2] for s in shops])
    rows = pa.table({
        "user_id": pa.array([user_ids[q[0]] for q in queries], pa.int64()),
        "shop": [q[1] for q in queries],
        "event_timestamp": pa.array([BASE + q[2] * 1_000_000 for q in queries], TS),
    })
    features = [FeatureVersion("users", "f", 1, ("user_id",), 0), FeatureVersion("shops", "f", 1, ("shop",), 0)]
    out = get_historical_features(store, rows, features)
    for i, (u, shop, t) in enumerate(queries):
        for column, history, key in (("users:f", users, user_ids[u]), ("shops:f", shops, shop)):
            candidates = [(s, j) for j, (k, s, _) in enumerate(history) if k == key and s <= t]
            expected = history[max(candidates)[1]][2] if candidates else None
            assert out[column][i].as_py() == expected, (column, i)


def test_entity_rows_with_null_keys_are_refused(tmp_path: Path) -> None:
    from fsd.errors import InvalidArgument

    store = OfflineStore(tmp_path)
    rows = pa.table({"user_id": pa.array([1, None], pa.int64()), "event_timestamp": pa.array([BASE, BASE], TS)})
    try:
        get_historical_features(store, rows, [FeatureVersion("users", "f", 1, ("user_id",), 0)])
    except InvalidArgument as exc:
        assert "user_id" in str(exc) and "null" in str(exc)
    else:
        raise AssertionError("null entity keys were accepted")


@settings(max_examples=300)
@given(
    matches=st.lists(st.tuples(st.integers(-1, 7), st.integers(-5, 40)), max_size=30),
    right_times=st.lists(st.integers(-5, 40), min_size=8, max_size=8),
    max_age=st.sampled_from([0, 1, 5, 30]),
)
def test_native_statuses_match_reference(matches, right_times, max_age) -> None:  # type: ignore[no-untyped-def]
    match = np.array([m[0] for m in matches], dtype=np.int64)
    left_times = np.array([m[1] for m in matches], dtype=np.int64)
    r_times = np.array(right_times, dtype=np.int64)
    expected = pit.asof_statuses_reference(match, left_times, r_times, max_age)
    got = _native.asof_statuses(match, left_times, r_times, max_age)
    for e, g in zip(expected, got):
        assert g.tolist() == e.tolist()
    for i, (j, t) in enumerate(matches):  # and the reference means what it says
        status = 2 if j < 0 else (3 if max_age and t - right_times[j] > max_age else 1)
        assert expected[1][i] == status and expected[0][i] == (j if status == 1 else -1)


def test_statuses_refuse_a_match_past_the_right_rows() -> None:
    import pytest

    for kernel in (pit.asof_statuses_reference, _native.asof_statuses):
        with pytest.raises(ValueError, match="past the right rows"):
            kernel(np.array([3]), np.array([0]), np.array([1, 2]), 0)


def test_large_id_counts_take_the_radix_path_and_agree() -> None:
    rng = np.random.default_rng(4)
    id_count = 300_000  # the default then splits ids into 2^8 ranges
    l_ids, l_times = rng.integers(-5, id_count + 5, 50_000), rng.integers(0, 100, 50_000)
    r_ids, r_times, r_created = rng.integers(-5, id_count + 5, 80_000), rng.integers(0, 100, 80_000), rng.integers(0, 3, 80_000)
    expected = pit.asof_match_reference(l_ids, l_times, r_ids, r_times, r_created, id_count)
    for bits in (-1, 0, 4, 10):
        assert _native.asof_match(l_ids, l_times, r_ids, r_times, r_created, id_count, bits).tolist() == expected.tolist()
