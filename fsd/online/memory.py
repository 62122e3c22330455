"""A real in-memory OnlineStore (sorted, atomic batches) for tests and for the contract suite."""
from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence

from fsd.online.base import LocalMerge, prefix_end


class MemoryOnlineStore(LocalMerge):
    """Holds everything in a dict plus a sorted key list; not durable, by design."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._sorted: list[bytes] = []
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        data = self._data
        return [data.get(k) for k in keys]

    def write_batch(self, puts: Sequence[tuple[bytes, bytes]], deletes: Sequence[bytes] = ()) -> None:
        with self._lock:
            for key in deletes:
                if self._data.pop(key, None) is not None:
                    del self._sorted[bisect.bisect_left(self._sorted, key)]
            for key, value in puts:
                if key not in self._data:
                    bisect.insort(self._sorted, key)
                self._data[key] = value

    def scan(self, prefix: bytes, limit: int | None = None, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        with self._lock:
            start = bisect.bisect_left(self._sorted, max(prefix, start) if start is not None else prefix)
            end_key = prefix_end(prefix)
            stop = len(self._sorted) if end_key is None else bisect.bisect_left(self._sorted, end_key)
            if limit is not None:
                stop = min(stop, start + limit)
            items = [(k, self._data[k]) for k in self._sorted[start:stop]]
        yield from items

    def delete_prefix(self, prefix: bytes) -> None:
        self.write_batch((), [k for k, _ in self.scan(prefix)])

    def close(self) -> None:
        pass
