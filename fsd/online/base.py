"""The OnlineStore protocol: bytes in, bytes out. Serving and sync know nothing else about the engine."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol, runtime_checkable

from fsd import codec


class OnlineStore(Protocol):
    """What serving needs from a key-value engine. A distributed engine can be added behind this alone.

    Keys and values are opaque bytes built by fsd.codec; engines never interpret them.
    """

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Values for keys, in order; None where absent. One batched read."""
        ...

    def write_batch(self, puts: Sequence[tuple[bytes, bytes]], deletes: Sequence[bytes] = ()) -> None:
        """Apply all puts and deletes atomically; return only once durable (survives a process kill and power loss)."""
        ...

    def scan(self, prefix: bytes, limit: int | None = None, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Key-ordered (key, value) pairs under prefix, from `start` (inclusive) when given: pages through a range."""
        ...

    def delete_prefix(self, prefix: bytes) -> None:
        """Durably remove every key under prefix (a range delete, cheap whatever the count)."""
        ...

    def merge_rows(self, keys: Sequence[bytes], slots: Sequence[int], columns: Sequence[Sequence[bytes | None]], replace: bool = False,
                   extra_puts: Sequence[tuple[bytes, bytes]] = ()) -> tuple[int, int]:
        """Fold offered values (columns[s][e] for slots[s], the row at keys[e]; None: nothing offered) into the rows,
        each kept only where its (event, created) is not older than the stored one (every one with replace), then
        write extra_puts (a publish's progress marker); durable on return. A compare-and-set per row: concurrent
        writers never let an older value win. Returns (values written, values skipped as older)."""
        ...

    def purge_slot(self, prefix: bytes, slot: int, batch_rows: int = 5_000) -> int:
        """Remove one feature version's values from every row under prefix, in bounded batches; rows rewritten."""
        ...

    def close(self) -> None: ...


_DEADLINE: ContextVar[float | None] = ContextVar("fsd_call_deadline", default=None)


@contextmanager
def call_deadline(seconds_remaining: float | None) -> Iterator[None]:
    """The caller's deadline for the storage calls made inside (a gRPC call's time_remaining()): an engine that
    waits on the network bounds its waits by it, so an unreachable shard answers before the caller gives up."""
    token = _DEADLINE.set(None if seconds_remaining is None else time.monotonic() + seconds_remaining)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def seconds_left() -> float | None:
    """What is left of the current call's deadline (None: no deadline)."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()


@runtime_checkable
class Backupable(Protocol):
    """An engine whose data a consistent copy can be taken of while it serves (`fsd backup`)."""

    def checkpoint(self, target_dir: str) -> None: ...


@runtime_checkable
class Warmable(Protocol):
    """An engine with a local cache worth filling after start-up; returns (rows read, cache bytes filled)."""

    def warm_cache(self, stop: threading.Event | None = None, chunk: int = 2000) -> tuple[int, int]: ...


class LocalMerge:
    """merge_rows and purge_slot for engines one process owns (RocksDB, memory): read, merge with the codec, write,
    under a lock of this store, so no other writer of it interleaves (two stores never wait for each other)."""

    @property
    def _merge_lock(self) -> threading.Lock:
        # made on first use, once per instance (dict.setdefault is atomic under the GIL)
        return self.__dict__.setdefault("_local_merge_lock", threading.Lock())  # type: ignore[no-any-return]

    def merge_rows(self, keys: Sequence[bytes], slots: Sequence[int], columns: Sequence[Sequence[bytes | None]], replace: bool = False,
                   extra_puts: Sequence[tuple[bytes, bytes]] = ()) -> tuple[int, int]:
        with self._merge_lock:
            existing = self.get_many(keys)  # type: ignore[attr-defined]
            rows, written, skipped = codec.merge_rows(existing, slots, columns, replace)
            puts = [(key, row) for key, row in zip(keys, rows) if row is not None]
            self.write_batch([*puts, *extra_puts])  # type: ignore[attr-defined]
        return written, skipped

    def purge_slot(self, prefix: bytes, slot: int, batch_rows: int = 5_000) -> int:
        rewritten = 0
        cursor: bytes | None = None
        while True:
            with self._merge_lock:  # batch by batch, so publishes interleave instead of waiting for the whole scan
                batch = list(self.scan(prefix, limit=batch_rows, start=cursor))  # type: ignore[attr-defined]
                if not batch:
                    return rewritten
                puts, deletes = [], []
                for key, row in batch:
                    if slot not in codec.parse_row(row):
                        continue
                    remaining = codec.remove_slot(row, slot)
                    if remaining is None:
                        deletes.append(key)
                    else:
                        puts.append((key, remaining))
                if puts or deletes:
                    self.write_batch(puts, deletes)  # type: ignore[attr-defined]
                rewritten += len(puts) + len(deletes)
            cursor = batch[-1][0] + b"\x00"


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with prefix (None: no upper bound)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])
