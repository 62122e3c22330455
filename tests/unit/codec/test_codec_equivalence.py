"""The compiled codec must produce exactly what the pure-Python reference (the specification) produces."""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsd import codec
from fsd.codec import _keys_py, _rows_py, _values_py

from fsd import _native  # must exist: `pip install` builds it, and these tests prove it equals the reference

int64s = st.integers(min_value=-(2**63), max_value=2**63 - 1)
key_strings = st.text(max_size=40)
DTYPES = [1, 2, 3, 4, 5, 6, 7]


def test_compiled_codec_is_the_one_in_use() -> None:
    assert os.environ.get("FSD_NO_EXTENSIONS") or codec.NATIVE
    assert codec.encode_entities is _native.encode_entities


@st.composite
def key_columns(draw):  # type: ignore[no-untyped-def]
    rows = draw(st.integers(min_value=0, max_value=20))
    kinds = draw(st.lists(st.booleans(), min_size=1, max_size=3))
    columns = [
        draw(st.lists(key_strings, min_size=rows, max_size=rows)) if is_string else np.array(draw(st.lists(int64s, min_size=rows, max_size=rows)), dtype=np.int64)
        for is_string in kinds
    ]
    return columns, kinds


@given(key_columns(), st.integers(min_value=0, max_value=2**32 - 1))
def test_key_encoding_matches_reference(cols, group_id: int) -> None:  # type: ignore[no-untyped-def]
    columns, kinds = cols
    ref_entities = _keys_py.encode_entities(columns, kinds)
    assert _native.encode_entities(columns, kinds) == ref_entities
    keys = _native.entity_keys(group_id, ref_entities)
    assert keys == _keys_py.entity_keys(group_id, ref_entities)
    assert all(k.startswith(_keys_py.group_prefix(group_id)) for k in keys)


@given(st.lists(int64s, min_size=2, max_size=30, unique=True))
def test_int_key_bytes_sort_like_the_numbers(values: list[int]) -> None:
    encoded = _native.encode_entities([np.array(values, dtype=np.int64)], [False])
    assert [v for _, v in sorted(zip(encoded, values))] == sorted(values)


@given(st.lists(st.tuples(int64s, key_strings), min_size=2, max_size=20, unique=True))
def test_distinct_composite_keys_never_collide(rows: list[tuple[int, str]]) -> None:
    ints = np.array([r[0] for r in rows], dtype=np.int64)
    strs = [r[1] for r in rows]
    encoded = _native.encode_entities([ints, strs], [False, True])
    assert len(set(encoded)) == len(rows)


def test_overlong_string_key_fails_the_same_way() -> None:
    long_key = ["x" * (_keys_py.MAX_KEY_STRING_BYTES + 1)]
    for impl in (_keys_py.encode_entities, _native.encode_entities):
        with pytest.raises(ValueError, match="longer than"):
            impl([long_key], [True])
        with pytest.raises(TypeError, match="string key expected"):
            impl([[1]], [True])


def _values_for(dtype: int, rows: int, draw, dim: int):  # type: ignore[no-untyped-def]
    if dtype == 1:
        return np.array(draw(st.lists(int64s, min_size=rows, max_size=rows)), dtype=np.int64)
    if dtype == 2:
        return np.array(draw(st.lists(st.floats(allow_nan=True), min_size=rows, max_size=rows)), dtype=np.float64)
    if dtype == 3:
        return np.array(draw(st.lists(st.floats(width=32), min_size=rows, max_size=rows)), dtype=np.float32)
    if dtype == 4:
        return np.array(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)), dtype=np.bool_)
    if dtype == 5:
        return draw(st.lists(st.text(max_size=20), min_size=rows, max_size=rows))
    if dtype == 6:
        return draw(st.lists(st.binary(max_size=20), min_size=rows, max_size=rows))
    flat = draw(st.lists(st.floats(width=32), min_size=rows * dim, max_size=rows * dim))
    return np.array(flat, dtype=np.float32).reshape(rows, dim)


@st.composite
def value_columns(draw):  # type: ignore[no-untyped-def]
    dtype = draw(st.sampled_from(DTYPES))
    rows = draw(st.integers(min_value=0, max_value=15))
    dim = draw(st.integers(min_value=0, max_value=4)) if dtype == 7 else 0
    values = _values_for(dtype, rows, draw, dim)
    nulls = np.array(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)), dtype=np.bool_)
    times = np.array(draw(st.lists(int64s, min_size=rows, max_size=rows)), dtype=np.int64)
    return dtype, values, nulls, times, draw(int64s), dim


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()  # type: ignore[union-attr]
    return a == b


@settings(max_examples=300)
@given(value_columns(), st.data())
def test_value_encoding_and_row_decoding_match_reference(column, data) -> None:  # type: ignore[no-untyped-def]
    dtype, values, nulls, times, write_time, dim = column
    encoded = _values_py.encode_values(dtype, values, nulls, times, write_time, dim)
    assert _native.encode_values(dtype, values, nulls, times, write_time, dim) == encoded
    slot = data.draw(st.integers(min_value=0, max_value=2**32 - 1))
    foreign = _values_py.encode_values(1 if dtype != 1 else 2, np.zeros(1, dtype=np.int64), np.zeros(1, dtype=bool), np.zeros(1, dtype=np.int64), 0)[0]
    rows: list[bytes | None] = []
    for blob in encoded:
        # Rows as the store holds them: the value beside other slots, plus absent, foreign-dtype and garbage rows.
        others = {s: foreign for s in data.draw(st.lists(st.integers(0, 2**32 - 1).filter(lambda s: s != slot), max_size=3))}
        rows.append(_rows_py.build_row({**others, slot: blob}))
        rows.append(data.draw(st.sampled_from([None, _rows_py.build_row({slot: foreign}), b"\x01\x05", b"\x09garbage"])))
    ref = _rows_py.decode_feature(rows, slot, dtype, dim)
    nat = _native.decode_feature(rows, slot, dtype, dim)
    assert all(_same(a, b) for a, b in zip(ref, nat))
    values_out, is_null, found, times_out = nat
    assert (found[0::2]).all() and not found[1::2].any()
    assert (is_null[0::2] == nulls).all() and (times_out[0::2] == times).all()


def _blob(event_time: int, payload: int, created: int = 0) -> bytes:
    return _values_py.encode_values(1, np.array([payload]), np.zeros(1, dtype=bool), np.array([event_time]), created)[0]


@st.composite
def merge_cases(draw):  # type: ignore[no-untyped-def]
    entities = draw(st.integers(min_value=0, max_value=8))
    slot_pool = st.integers(min_value=0, max_value=12)
    slots = draw(st.lists(slot_pool, max_size=4, unique=True))
    existing: list[bytes | None] = []
    for _ in range(entities):
        kind = draw(st.sampled_from(["none", "row", "row", "garbage", "truncated"]))
        if kind == "none":
            existing.append(None)
        elif kind == "garbage":
            existing.append(draw(st.binary(max_size=12)))
        else:
            entries = {s: _blob(draw(st.integers(-5, 20)), draw(int64s), draw(st.integers(0, 3))) for s in draw(st.lists(slot_pool, max_size=5, unique=True))}
            row = _rows_py.build_row(entries)
            existing.append(row[: max(3, len(row) - 3)] if kind == "truncated" and entries else row)
    times = np.array(draw(st.lists(st.integers(-5, 20), min_size=entities, max_size=entities)), dtype=np.int64)
    columns = [[None if draw(st.integers(0, 5)) == 0 else _blob(int(times[e]), draw(int64s), draw(st.integers(0, 3))) for e in range(entities)] for _ in slots]
    return existing, slots, columns


@settings(max_examples=300)
@given(merge_cases())
def test_row_merge_matches_reference(case) -> None:  # type: ignore[no-untyped-def]
    existing, slots, columns = case
    expected = _rows_py.merge_rows(existing, slots, columns)
    assert _native.merge_rows(existing, slots, columns) == expected
    assert _native.merge_rows(existing, slots, columns, True) == _rows_py.merge_rows(existing, slots, columns, True)  # a forced resync
    rows, written, skipped = expected
    assert written + skipped == sum(v is not None for column in columns for v in column)
    for e, row in enumerate(rows):
        merged = _rows_py.parse_row(row if row is not None else existing[e])
        for s, slot in enumerate(slots):
            if columns[s][e] is None:
                continue
            assert _rows_py.stamp(merged[slot]) >= _rows_py.stamp(columns[s][e])  # never older than what was offered


def test_remove_slot_keeps_other_versions() -> None:
    row = _rows_py.build_row({1: _blob(1, 10), 2: _blob(2, 20)})
    left = _rows_py.remove_slot(row, 1)
    assert left is not None and set(_rows_py.parse_row(left)) == {2}
    assert _rows_py.remove_slot(left, 2) is None


@given(
    st.lists(st.tuples(st.booleans(), int64s), max_size=30),
    st.integers(min_value=-(2**62), max_value=2**62),
    st.integers(min_value=0, max_value=2**40),
)
def test_freshness_matches_reference(rows, now: int, max_age: int) -> None:  # type: ignore[no-untyped-def]
    found = np.array([r[0] for r in rows], dtype=np.bool_)
    times = np.array([r[1] for r in rows], dtype=np.int64)
    times = np.clip(times, now - 2**61, now + 2**61)  # keep now - t inside int64 as real clocks do
    expected = _values_py.freshness_status(found, times, now, max_age)
    assert _native.freshness_status(found, times, now, max_age).tolist() == expected.tolist()


def test_freshness_boundary_exactly_at_max_age_is_present() -> None:
    found = np.array([True, True, True, False])
    times = np.array([1000, 999, 1001, 0], dtype=np.int64)
    statuses = _native.freshness_status(found, times, 1100, 100).tolist()
    assert statuses == [codec.STATUS_PRESENT, codec.STATUS_STALE, codec.STATUS_PRESENT, codec.STATUS_NOT_FOUND]
    assert _native.freshness_status(found, times, 10**12, 0).tolist()[:3] == [codec.STATUS_PRESENT] * 3  # 0 = never stale


@st.composite
def serving_cases(draw):  # type: ignore[no-untyped-def]
    from fsd.codec import _columns_py

    rows: list[bytes | None] = []
    count = draw(st.integers(min_value=1, max_value=8))
    specs = []
    slot_values: dict[int, tuple[int, int]] = {}
    for n in range(draw(st.integers(min_value=1, max_value=4))):
        dtype = draw(st.sampled_from(DTYPES))
        dim = draw(st.integers(1, 3)) if dtype == 7 else 0
        slot_values[n + 1] = (dtype, dim)
        head = draw(st.binary(max_size=12))
        specs.append((head, n + 1, dtype, dim, draw(st.sampled_from([0, 5, 1000])), draw(st.sampled_from([0, 0, 1, 2]))))
    for _ in range(count):
        kind = draw(st.sampled_from(["row", "row", "row", "none", "garbage"]))
        if kind == "none":
            rows.append(None)
            continue
        if kind == "garbage":
            rows.append(draw(st.binary(max_size=10)))
            continue
        entries = {}
        for slot, (dtype, dim) in slot_values.items():
            if draw(st.booleans()):
                values = _values_for(dtype, 1, draw, dim)
                wrong = draw(st.integers(0, 9)) == 0  # a value of another dtype under this slot
                entries[slot] = _values_py.encode_values(
                    (dtype % 7) + 1 if wrong else dtype, values if not wrong else _values_for((dtype % 7) + 1, 1, draw, dim or 1),
                    np.array([draw(st.booleans())]), np.array([draw(st.integers(0, 2000))]), 0, dim or (1 if wrong else 0))[0]
        rows.append(_rows_py.build_row(entries))
    return rows, specs, draw(st.integers(0, 3000)), _columns_py


@settings(max_examples=400)
@given(serving_cases())
def test_fused_serving_columns_match_reference(case) -> None:  # type: ignore[no-untyped-def]
    rows, specs, now, reference = case
    assert _native.encode_feature_columns(rows, specs, now) == reference.encode_feature_columns(rows, specs, now)


@given(st.lists(int64s, max_size=20), st.integers(min_value=0, max_value=2**32 - 1))
def test_int64_row_keys_match_reference(ids: list[int], group_id: int) -> None:
    packed = np.array(ids, dtype="<i8").tobytes()
    assert _native.int64_row_keys(group_id, packed) == _keys_py.int64_row_keys(group_id, packed)
    assert _keys_py.int64_row_keys(group_id, packed) == _keys_py.entity_keys(group_id, _keys_py.encode_entities([ids], [False]))


@given(st.integers(0, 2**64 - 1), st.lists(st.binary(max_size=300), max_size=5), int64s, st.binary(max_size=200))
def test_response_framing_matches_reference(count: int, columns: list[bytes], served_at: int, manifest: bytes) -> None:
    from fsd.codec import _columns_py

    assert _native.frame_response(count, columns, served_at, manifest) == _columns_py.frame_response(count, columns, served_at, manifest)
