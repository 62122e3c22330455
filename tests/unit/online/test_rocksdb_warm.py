"""Block-cache warm-up of the RocksDB engine: bounded by the cache size, stoppable, never changes data."""
from __future__ import annotations

import os
import threading
from pathlib import Path

from fsd.online.rocksdb import RocksDbOnlineStore, RocksDbSettings


def _filled(path: Path, rows: int, settings: RocksDbSettings) -> list[tuple[bytes, bytes]]:
    store = RocksDbOnlineStore(str(path), settings)
    items = [(b"\x01" + i.to_bytes(8, "big"), os.urandom(200)) for i in range(rows)]
    for start in range(0, rows, 5000):
        store.write_batch(items[start : start + 5000])
    store._db.flush()  # warm-up reads table files, as after a restart
    store.close()
    return items


def test_warm_up_reads_every_row_when_they_fit(tmp_path: Path) -> None:
    settings = RocksDbSettings(block_cache_mb=64, sync_writes=False)
    items = _filled(tmp_path / "db", 20_000, settings)
    store = RocksDbOnlineStore(str(tmp_path / "db"), settings)
    rows, used = store.warm_cache()
    assert rows == 20_000
    assert used > 20_000 * 200 * 0.5  # the cache now holds the rows' blocks
    assert store.get_many([k for k, _ in items[::997]]) == [v for _, v in items[::997]]
    store.close()


def test_warm_up_stops_at_the_cache_budget_and_on_request(tmp_path: Path) -> None:
    settings = RocksDbSettings(block_cache_mb=1, sync_writes=False)  # ~4 MB of rows against a 1 MB cache
    _filled(tmp_path / "db", 20_000, settings)
    store = RocksDbOnlineStore(str(tmp_path / "db"), settings)
    rows, used = store.warm_cache()
    assert 0 < rows < 20_000 / 2
    assert used >= 0.9 * 2**20  # it stopped because the cache was 90% full
    store.close()
    store = RocksDbOnlineStore(str(tmp_path / "db"), settings)  # an empty cache again
    stop = threading.Event()
    stop.set()
    rows, _ = store.warm_cache(stop, chunk=100)
    assert rows == 100  # one chunk, then it notices the stop
    store.close()
