"""What a serving supervisor tells its workers without a message: a small memory-mapped file of counters the
supervisor bumps before it acknowledges a write (the online store's durable writes, the registry epoch), which a
worker compares with what it has seen before it serves. An 8-byte aligned store is one instruction on the
machines fsd runs on; a counter read while it is being written is either value, and both are safe: a read that
races a write may see the state before it, a read that starts after the acknowledgement sees the new value."""
from __future__ import annotations

import mmap
import os
import struct
import threading
from pathlib import Path

_FIELDS = {"writes": 0, "registry_epoch": 8, "supervisor_pid": 16}
_SIZE = 4096
_U64 = struct.Struct("<Q")


class SharedState:
    def __init__(self, path: Path, create: bool) -> None:
        self.path = path
        if create:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            os.ftruncate(fd, _SIZE)
        else:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            self._map = mmap.mmap(fd, _SIZE, prot=mmap.PROT_READ | (mmap.PROT_WRITE if create else 0))
        finally:
            os.close(fd)
        self._lock = threading.Lock()  # two writers' bumps must not collapse into one
        if create:
            _U64.pack_into(self._map, _FIELDS["supervisor_pid"], os.getpid())

    def _get(self, name: str) -> int:
        return int(_U64.unpack_from(self._map, _FIELDS[name])[0])

    @property
    def writes(self) -> int:
        """Durable online-store writes so far."""
        return self._get("writes")

    @property
    def registry_epoch(self) -> int:
        """The newest registry epoch the supervisor has loaded (every registry write it makes bumps it)."""
        return self._get("registry_epoch")

    @property
    def supervisor_pid(self) -> int:
        return self._get("supervisor_pid")

    def bump_writes(self) -> None:
        """The supervisor, after each durable write and before acknowledging it."""
        with self._lock:
            _U64.pack_into(self._map, _FIELDS["writes"], self.writes + 1)

    def set_registry_epoch(self, epoch: int) -> None:
        with self._lock:
            if epoch > self.registry_epoch:
                _U64.pack_into(self._map, _FIELDS["registry_epoch"], epoch)

    def close(self) -> None:
        self._map.close()
