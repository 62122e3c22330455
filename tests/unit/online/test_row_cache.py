"""The row cache in front of the embedded store: the store answers with it exactly as without it, whatever the
interleaving of writes, range deletes and reads; a read that overlapped a write never caches its old value."""
from __future__ import annotations

import threading
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from fsd.online.rocksdb import RocksDbOnlineStore, RocksDbSettings
from fsd.online.row_cache import MISS, RowCache

keys = st.sampled_from([bytes([1, g]) + bytes([k]) for g in (1, 2) for k in range(6)])
operations = st.lists(st.one_of(
    st.tuples(st.just("put"), st.lists(st.tuples(keys, st.binary(max_size=8)), max_size=4)),
    st.tuples(st.just("delete"), st.lists(keys, max_size=3)),
    st.tuples(st.just("delete_prefix"), st.sampled_from([b"\x01\x01", b"\x01\x02"])),
    st.tuples(st.just("read"), st.lists(keys, min_size=1, max_size=8)),
), max_size=30)


@settings(max_examples=80)
@given(ops=operations, budget=st.sampled_from([0, 1, 400, 1 << 20]))
def test_the_store_with_a_row_cache_answers_as_without(tmp_path_factory, ops, budget) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("rc")
    cached = RocksDbOnlineStore(str(root / "a"), RocksDbSettings(sync_writes=False, row_cache_mb=1))
    cached.row_cache._budget = budget  # type: ignore[union-attr]  # tiny budgets exercise eviction
    plain = RocksDbOnlineStore(str(root / "b"), RocksDbSettings(sync_writes=False, row_cache_mb=0))
    try:
        for op, arg in ops:
            for store in (cached, plain):
                if op == "put":
                    store.write_batch(arg)
                elif op == "delete":
                    store.write_batch((), arg)
                elif op == "delete_prefix":
                    store.delete_prefix(arg)
            if op == "read":
                assert cached.get_many(arg) == plain.get_many(arg)
            assert cached.row_cache.used_bytes <= budget  # type: ignore[union-attr]
        every = [bytes([1, g]) + bytes([k]) for g in (1, 2) for k in range(6)]
        assert cached.get_many(every) == plain.get_many(every)
    finally:
        cached.close()
        plain.close()


def test_a_fill_from_a_read_that_overlapped_a_write_is_dropped() -> None:
    cache = RowCache(1 << 20)
    before = cache.token()
    cache.begin_write()
    during = cache.token()
    cache.end_write([b"k"])
    cache.fill(before, [b"k"], [b"old"])  # read before the write, filled after it: could be stale
    cache.fill(during, [b"k"], [b"old"])  # read while it was in flight
    assert cache.lookup([b"k"])[0] == [MISS]
    cache.fill(cache.token(), [b"k"], [b"new"])
    assert cache.lookup([b"k"])[0] == [b"new"]


def test_concurrent_writers_and_readers_never_leave_a_stale_row(tmp_path: Path) -> None:
    store = RocksDbOnlineStore(str(tmp_path / "db"), RocksDbSettings(sync_writes=False, row_cache_mb=8))
    hot = [b"\x01\x01" + i.to_bytes(2, "big") for i in range(50)]
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            store.get_many(hot)

    def writer(offset: int) -> None:
        for version in range(300):
            store.write_batch([(k, f"{offset}:{version}".encode()) for k in hot[offset::2]])

    readers = [threading.Thread(target=reader) for _ in range(3)]
    writers = [threading.Thread(target=writer, args=(o,)) for o in (0, 1)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    expected = [f"{i % 2}:299".encode() for i in range(50)]
    assert store.get_many(hot) == expected  # from the cache where held
    assert store._read(hot) == expected  # and what RocksDB holds
    store.close()
