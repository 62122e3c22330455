"""One suite, every OnlineStore engine: the narrow interface behaves the same whatever sits behind it."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsd.online.base import OnlineStore, prefix_end
from fsd.online.memory import MemoryOnlineStore
from fsd.online.rocksdb import RocksDbOnlineStore


@pytest.fixture(params=["memory", "rocksdb", "redis-cluster"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    if request.param == "redis-cluster":
        import redis

        from fsd.online.redis.adapter import RedisClusterOnlineStore, RedisSettings

        state = request.getfixturevalue("redis_cluster")
        for node in state.redis:  # each test starts from an empty cluster
            client = redis.Redis(port=int(node["port"]))
            if client.execute_command("ROLE")[0] == b"master":
                client.flushall()
            client.close()
        engine: OnlineStore = RedisClusterOnlineStore(RedisSettings((("127.0.0.1", int(state.redis[0]["port"])),), min_replicas_ack=1))
    else:
        engine = MemoryOnlineStore() if request.param == "memory" else RocksDbOnlineStore(str(tmp_path / "db"))
    yield engine
    engine.close()


def test_get_many_keeps_order_and_reports_absent(store: OnlineStore) -> None:
    store.write_batch([(b"a", b"1"), (b"c", b"3")])
    assert store.get_many([b"c", b"b", b"a", b"c"]) == [b"3", None, b"1", b"3"]
    assert store.get_many([]) == []


def test_write_batch_applies_deletes_and_puts(store: OnlineStore) -> None:
    store.write_batch([(b"k1", b"x"), (b"k2", b"y")])
    store.write_batch([(b"k2", b"z")], deletes=[b"k1"])
    assert store.get_many([b"k1", b"k2"]) == [None, b"z"]


def test_binary_keys_and_values_round_trip(store: OnlineStore) -> None:
    pairs = [(bytes([0, 255, i]), bytes(range(i))) for i in range(10)]
    store.write_batch(pairs)
    assert store.get_many([k for k, _ in pairs]) == [v for _, v in pairs]


def test_scan_is_ordered_and_bounded_by_prefix(store: OnlineStore) -> None:
    store.write_batch([(b"\x01\x02b", b"2"), (b"\x01\x02a", b"1"), (b"\x01\x03", b"x"), (b"\x01\x01\xff", b"y"), (b"\x01\x02\xff\xff", b"3")])
    assert [k for k, _ in store.scan(b"\x01\x02")] == [b"\x01\x02a", b"\x01\x02b", b"\x01\x02\xff\xff"]
    assert [v for _, v in store.scan(b"\x01\x02", limit=2)] == [b"1", b"2"]
    assert [v for _, v in store.scan(b"\x01\x02", start=b"\x01\x02a\x00")] == [b"2", b"3"]  # pages on from a key
    assert [v for _, v in store.scan(b"\x01\x02", start=b"\x00")] == [b"1", b"2", b"3"]  # never before the prefix


def test_delete_prefix_removes_only_that_range(store: OnlineStore) -> None:
    store.write_batch([(b"\x01\x02a", b"1"), (b"\x01\x02\xff", b"2"), (b"\x01\x03", b"3"), (b"\x01\x01", b"0")])
    store.delete_prefix(b"\x01\x02")
    assert store.get_many([b"\x01\x02a", b"\x01\x02\xff", b"\x01\x03", b"\x01\x01"]) == [None, None, b"3", b"0"]


@settings(max_examples=50)
@given(st.binary(max_size=6), st.lists(st.binary(max_size=8), max_size=30))
def test_prefix_end_bounds_exactly_the_prefixed_keys(prefix: bytes, keys: list[bytes]) -> None:
    end = prefix_end(prefix)
    for key in keys:
        inside = key.startswith(prefix)
        below_end = end is None or key < end
        assert inside == (key >= prefix and below_end)


def _value(event: int, created: int, payload: bytes) -> bytes:
    from fsd.codec._values_py import HEADER

    return HEADER.pack(1, 2, 0, event, created) + payload


def test_merge_rows_keeps_the_newest_value_per_slot_and_counts(store: OnlineStore) -> None:
    from fsd import codec

    keys = codec.entity_keys(7, codec.encode_entities([[1, 2, 3]], [False]))
    written, skipped = store.merge_rows(keys, [10, 11], [[_value(5, 1, b"a"), _value(5, 1, b"b"), None],
                                                        [_value(3, 1, b"c"), None, _value(9, 9, b"d")]], extra_puts=[(b"\x00m", b"1")])
    assert (written, skipped) == (4, 0)
    older, newer, tie_later = _value(4, 9, b"old"), _value(6, 0, b"new"), _value(5, 2, b"fix")
    written, skipped = store.merge_rows(keys, [10], [[older, newer, _value(1, 1, b"e")]])
    assert (written, skipped) == (2, 1)  # entity 1's value is older than the stored one; entity 3 had none in slot 10
    assert store.merge_rows(keys[:1], [10], [[tie_later]]) == (1, 0)  # same event time, later created: a correction wins
    rows = [codec.parse_row(r) for r in store.get_many(keys)]
    assert rows[0] == {10: tie_later, 11: _value(3, 1, b"c")}
    assert rows[1] == {10: newer}
    assert rows[2] == {10: _value(1, 1, b"e"), 11: _value(9, 9, b"d")}
    assert store.merge_rows(keys[:1], [10], [[older]], replace=True) == (1, 0)  # a forced resync replaces whatever is there
    assert codec.parse_row(store.get_many(keys[:1])[0])[10] == older
    assert store.get_many([b"\x00m"]) == [b"1"]  # the progress marker, written with the rows


def test_purge_slot_removes_one_version_and_deletes_emptied_rows(store: OnlineStore) -> None:
    from fsd import codec

    keys = codec.entity_keys(8, codec.encode_entities([[1, 2]], [False]))
    other = codec.entity_keys(9, codec.encode_entities([[1]], [False]))
    store.merge_rows(keys, [20, 21], [[_value(1, 1, b"a"), _value(1, 1, b"b")], [_value(1, 1, b"c"), None]])
    store.merge_rows(other, [20], [[_value(1, 1, b"z")]])
    rewritten = store.purge_slot(codec.group_prefix(8), 20, batch_rows=1)
    assert rewritten == 2
    first, second = store.get_many(keys)
    assert codec.parse_row(first) == {21: _value(1, 1, b"c")} and second is None  # a row left empty is deleted
    assert codec.parse_row(store.get_many(other)[0]) == {20: _value(1, 1, b"z")}  # another group's slot 20 is untouched
    assert store.purge_slot(codec.group_prefix(8), 20) == 0


def test_rocksdb_values_survive_reopen_with_tuned_options(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    db = RocksDbOnlineStore(path)
    db.write_batch([(b"k", b"v")])
    db.close()
    reopened = RocksDbOnlineStore(path)
    assert reopened.get_many([b"k"]) == [b"v"]
    reopened.close()
