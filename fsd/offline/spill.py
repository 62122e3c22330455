"""Rows split by partition into Arrow IPC files on disk, to be read back one partition at a time: the bounded-
memory step of the out-of-core point-in-time join and of the loader's large syncs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa


class PartitionSpill:
    """One IPC file per partition, written as batches arrive and read back whole, one partition at a time."""

    def __init__(self, folder: Path, partitions: int) -> None:
        folder.mkdir(parents=True)
        self._paths = [folder / f"p{i:04d}.arrow" for i in range(partitions)]
        self._writers: list[pa.ipc.RecordBatchFileWriter | None] = [None] * partitions
        self.schema: pa.Schema | None = None

    def add(self, table: pa.Table, parts: np.ndarray) -> None:
        """Rows of `table` to their partitions, keeping their order within each partition."""
        if table.num_rows == 0:
            return
        if self.schema is None:
            self.schema = table.schema
        order = np.argsort(parts, kind="stable")
        ordered = table.take(pa.array(order))
        bounds = np.searchsorted(parts[order], np.arange(len(self._paths) + 1))
        for p, (low, high) in enumerate(zip(bounds[:-1], bounds[1:])):
            if high > low:
                writer = self._writers[p]
                if writer is None:
                    writer = self._writers[p] = pa.ipc.new_file(str(self._paths[p]), ordered.schema)
                writer.write_table(ordered.slice(int(low), int(high - low)))

    def close(self) -> None:
        for writer in self._writers:
            if writer is not None:
                writer.close()

    def read(self, p: int) -> pa.Table | None:
        if self._writers[p] is None:
            return None
        with pa.OSFile(str(self._paths[p])) as source:
            return pa.ipc.open_file(source).read_all()
