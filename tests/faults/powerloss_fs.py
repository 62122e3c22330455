"""A FUSE filesystem that behaves like a page cache across a power cut: file data written but not fsynced
lives only in this process, so killing the process loses it exactly as power loss would. Metadata (create,
rename, unlink, truncate) goes to the backing folder at once, which is kinder than real hardware: the test
measures the one thing fsd controls, whether acknowledged data was synced.

    python -m tests.faults.powerloss_fs BACKING MOUNTPOINT
"""
from __future__ import annotations

import errno
import os
import sys
import threading

from fuse import FUSE, FuseOSError, Operations


class PageCacheFS(Operations):
    def __init__(self, root: str) -> None:
        self.root = root
        self.pending: dict[str, list[tuple[int, bytes]]] = {}  # path -> unsynced writes, in order
        self.lock = threading.Lock()

    def _full(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def _size(self, path: str) -> int:
        size = os.lstat(self._full(path)).st_size
        for offset, data in self.pending.get(path, ()):
            size = max(size, offset + len(data))
        return size

    # --- metadata: applied to the backing folder at once ---
    def getattr(self, path, fh=None):  # type: ignore[no-untyped-def]
        with self.lock:
            try:
                st = os.lstat(self._full(path))
            except OSError as exc:
                raise FuseOSError(exc.errno) from None
            attrs = {k: getattr(st, k) for k in ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size", "st_uid")}
            if path in self.pending:
                attrs["st_size"] = self._size(path)
            return attrs

    def readdir(self, path, fh):  # type: ignore[no-untyped-def]
        return [".", "..", *os.listdir(self._full(path))]

    def access(self, path, mode):  # type: ignore[no-untyped-def]
        if not os.access(self._full(path), mode):
            raise FuseOSError(errno.EACCES)

    def mkdir(self, path, mode):  # type: ignore[no-untyped-def]
        os.mkdir(self._full(path), mode)

    def rmdir(self, path):  # type: ignore[no-untyped-def]
        os.rmdir(self._full(path))

    def unlink(self, path):  # type: ignore[no-untyped-def]
        with self.lock:
            self.pending.pop(path, None)
            os.unlink(self._full(path))

    def rename(self, old, new):  # type: ignore[no-untyped-def]
        with self.lock:
            os.rename(self._full(old), self._full(new))
            if old in self.pending:
                self.pending[new] = self.pending.pop(old)
            else:
                self.pending.pop(new, None)

    def link(self, target, source):  # type: ignore[no-untyped-def]
        os.link(self._full(source), self._full(target))

    def chmod(self, path, mode):  # type: ignore[no-untyped-def]
        os.chmod(self._full(path), mode)

    def utimens(self, path, times=None):  # type: ignore[no-untyped-def]
        os.utime(self._full(path), times)

    def statfs(self, path):  # type: ignore[no-untyped-def]
        st = os.statvfs(self._full(path))
        return {k: getattr(st, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    def truncate(self, path, length, fh=None):  # type: ignore[no-untyped-def]
        with self.lock:
            self._apply(path)
            os.truncate(self._full(path), length)

    # --- data: kept here until fsync ---
    def create(self, path, mode, fi=None):  # type: ignore[no-untyped-def]
        fd = os.open(self._full(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        os.close(fd)
        with self.lock:
            self.pending.pop(path, None)
        return 0

    def open(self, path, flags):  # type: ignore[no-untyped-def]
        if flags & os.O_TRUNC:
            self.truncate(path, 0)
        return 0

    def read(self, path, size, offset, fh):  # type: ignore[no-untyped-def]
        with self.lock:
            with open(self._full(path), "rb") as f:
                f.seek(offset)
                data = bytearray(f.read(size))
            end = offset + size
            total = self._size(path)
            if len(data) < min(size, max(0, total - offset)):
                data.extend(b"\0" * (min(size, total - offset) - len(data)))
            for w_offset, w_data in self.pending.get(path, ()):
                lo, hi = max(offset, w_offset), min(end, w_offset + len(w_data))
                if lo < hi:
                    data[lo - offset:hi - offset] = w_data[lo - w_offset:hi - w_offset]
            return bytes(data)

    def write(self, path, data, offset, fh):  # type: ignore[no-untyped-def]
        with self.lock:
            self.pending.setdefault(path, []).append((offset, bytes(data)))
            return len(data)

    def _apply(self, path: str) -> None:
        writes = self.pending.pop(path, None)
        if not writes:
            return
        fd = os.open(self._full(path), os.O_WRONLY)
        try:
            for offset, data in writes:
                os.pwrite(fd, data, offset)
            os.fsync(fd)
        finally:
            os.close(fd)

    def fsync(self, path, datasync, fh):  # type: ignore[no-untyped-def]
        with self.lock:
            self._apply(path)
        return 0

    def flush(self, path, fh):  # type: ignore[no-untyped-def]
        return 0  # close() is not durability

    def release(self, path, fh):  # type: ignore[no-untyped-def]
        return 0

    def fsyncdir(self, path, datasync, fh):  # type: ignore[no-untyped-def]
        return 0

    def lock(self, path, fh, cmd, lock):  # type: ignore[no-untyped-def]
        return 0  # one daemon per data dir in these tests: grant RocksDB's LOCK file


if __name__ == "__main__":
    FUSE(PageCacheFS(sys.argv[1]), sys.argv[2], foreground=True, nothreads=True, allow_other=False)
