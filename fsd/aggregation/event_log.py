"""The offline event log of a group with an event source: every accepted PushEvents batch, one Parquet file each,
in arrival order. Training (point-in-time values), the validator and a restarted daemon all read the events
from here, so training and serving see the same events.

    <offline root>/<group>/_events/seq-<push sequence, 12 digits>.parquet

columns: the group's entity keys, event_timestamp, received_timestamp (UTC µs: when fsd accepted the batch),
_seq (the push sequence), _row (the row in the push), then the event columns. A file is written under a fresh
temporary name (O_EXCL), fsynced, renamed and its folder fsynced before the push is acknowledged: a crash
leaves either the whole batch or none of it (`_events` cannot clash with a feature folder: names start with a
letter).
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fsd.errors import StorageError
from fsd.paths import confine_below

EVENTS_DIR = "_events"
RECEIVED = "received_timestamp"
SEQ = "_seq"
ROW = "_row"
_FILE_RE = re.compile(r"^seq-(\d{12})\.parquet$")


class EventLog:
    def __init__(self, root: str | Path, group: str) -> None:
        self.root = Path(root)
        self.dir = confine_below(self.root, self.root / group / EVENTS_DIR)

    def append(self, seq: int, table: pa.Table) -> Path:
        """Write one accepted batch durably (before the push is acknowledged)."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            final = self.dir / f"seq-{seq:012d}.parquet"
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-", suffix=".parquet")
            try:
                with os.fdopen(fd, "wb") as fh:
                    pq.write_table(table, fh, compression="zstd")
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, final)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            dir_fd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            return final
        except OSError as exc:
            raise StorageError(f"event log append to {self.dir} failed: {exc}") from exc

    def sequences(self) -> list[int]:
        if not self.dir.is_dir():
            return []
        return sorted(int(m.group(1)) for name in os.listdir(self.dir) if (m := _FILE_RE.match(name)))

    def last_seq(self) -> int:
        found = self.sequences()
        return found[-1] if found else 0

    def batch(self, seq: int) -> pa.Table:
        return pq.read_table(self.dir / f"seq-{seq:012d}.parquet")

    def read(self, after_seq: int = 0) -> pa.Table | None:
        """Every event of batches after `after_seq`, in arrival order; None when there is none."""
        tables = [self.batch(seq) for seq in self.sequences() if seq > after_seq]
        if not tables:
            return None
        return pa.concat_tables(tables, promote_options="default")


__all__ = ["EVENTS_DIR", "EventLog", "RECEIVED", "ROW", "SEQ"]
