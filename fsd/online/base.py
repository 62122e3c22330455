"""The OnlineStore protocol: bytes in, bytes out. Serving and sync know nothing else about the engine."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol


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

    def close(self) -> None: ...


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with prefix (None: no upper bound)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])
