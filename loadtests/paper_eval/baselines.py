"""The systems the paper compares fsd with, each as the system it names, over the same workload.

single-node   offline and online in one store: each file is written online as it lands (in line, a plain upsert);
              the store restarts now and then (requests fail meanwhile, writes landing then are lost), and a
              backfill holds the store while it writes (in-line writes queue behind it).
offline-only  serving from a periodic batch export: every interval the whole dataset is read, the latest row per
              entity (by event time) exported to the serving table.
split         offline + online with a naive copier: every interval, files not copied before are read and upserted
              in arrival order (the last row read wins, whatever its event time); files whose keys it cannot read
              are skipped without a word; a killed copier has marked files done it never copied.
distributed   the split copier writing to a primary whose replicas serve the reads: each write reaches the
              replica after an injected replication lag (with spikes); a master killed mid-run loses what it had
              not replicated (asynchronous replication) and refuses writes until failover.

None has versions: the producer changes a definition in place, in the one dataset the models were trained on. Their
copying lives here, never in fsd's product code.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loadtests.paper_eval.common import FEATURES, OnlineTable, RunRecord, Served, in_place_dataset, rows_table, timed, unavailable
from loadtests.paper_eval.workload import GROUP_OF, GROUPS, MINUTE, SECOND, Landing, Workload

BASELINES = ("single-node", "offline-only", "split", "distributed")


@dataclass
class Baseline:
    mode: str
    interval_min: int
    workload: Workload
    faults: frozenset[str] = frozenset()
    table: OnlineTable = field(init=False)
    files: dict[str, list[str]] = field(default_factory=dict)  # feature -> files in landing order
    copied: set[str] = field(default_factory=set)
    written: dict[int, int | None] = field(default_factory=dict)  # landing number -> dataset (None: not written)
    busy_until: int = 0
    journal: list[tuple[int, int, int, str, pa.Table]] = field(default_factory=list)  # distributed: (apply at, seq, commit, feature, rows)
    lost_writes: int = 0
    rng: np.random.Generator = field(init=False)
    fault_rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.table = OnlineTable(self.workload)
        self.rng = np.random.default_rng(self.workload.seed * 31 + 5)  # replication lags
        self.fault_rng = np.random.default_rng(self.workload.seed * 37 + 11)  # injected faults: never shifts the lags
        w = self.workload
        kind = {"single-node": "restart", "distributed": "failover"}.get(self.mode)
        self.outages = [(t, int(d[kind])) for t, _, d in w.processes["outage"]] if kind else []  # type: ignore[call-overload]
        self.killed_runs = {t for t, _, _ in w.processes["killed_run"]} if self.mode in ("split", "distributed") else set()
        self._seq = 0

    def close(self) -> None:
        self.table.close()

    def dataset(self, landing: Landing) -> int | None:
        """Which offline dataset the producer writes the landing's rows into: the one, if its definition is current."""
        if landing.replaces >= 0:
            return self.written.get(landing.replaces)
        return in_place_dataset(self.workload, self.workload.definition(landing.feature, landing.definition), landing.time)

    def versions_served(self, feature: str) -> tuple[int, ...]:
        return (1,)

    # --- offline writes ----------------------------------------------------------------------------------------

    def land(self, landing: Landing, now: int) -> list[RunRecord]:
        dataset = self.written[landing.number] = self.dataset(landing)
        if dataset is None:
            return []
        self.table.clock.micros = now
        if landing.replaces >= 0:  # on-call replaces the unreadable file
            for path in self.files.pop(f"bad:{landing.replaces}", []):
                self.files[landing.feature].remove(path)
        string_keys = bool(landing.rows) and landing.rows[0].string_keys
        result = self.table.offline.write(GROUP_OF[landing.feature], landing.feature, 1, rows_table(landing.rows, landing.feature, string_keys),
                                          kind=landing.kind)
        paths = [str(p) for p in result.files]
        self.files.setdefault(landing.feature, []).extend(paths)
        if string_keys:
            self.files[f"bad:{landing.number}"] = paths
        if self.mode != "single-node":
            return []
        start = max(now, self.busy_until)  # behind a backfill still writing
        if self._down(start):
            return [RunRecord(GROUP_OF[landing.feature], start, start, "failed", "inline")]
        if string_keys:
            return [RunRecord(GROUP_OF[landing.feature], start, start, "failed", "inline")]  # the write errors; nothing online
        _, took = timed(self.table.upsert, landing.feature, self._faulty(_readable(paths)))
        if landing.kind == "backfill":
            self.busy_until = start + took
        return [RunRecord(GROUP_OF[landing.feature], start, start + took, "success", "inline")]

    def _faulty(self, rows: pa.Table) -> pa.Table:
        """The test faults, as in fsd's loader: a fifth of the rows lost, a tenth of the values altered."""
        if "drop_rows" in self.faults and rows.num_rows:
            rows = rows.filter(pa.array(self.fault_rng.random(rows.num_rows) >= 0.2))
        if "corrupt" in self.faults and rows.num_rows:
            values = rows["value"].to_numpy(zero_copy_only=False)
            rows = rows.set_column(3, "value", pa.array(np.where(self.fault_rng.random(rows.num_rows) < 0.1, values + 1, values)))
        return rows

    def _down(self, t: int) -> bool:
        return any(s <= t < s + d for s, d in self.outages)

    # --- scheduled work ----------------------------------------------------------------------------------------

    def tick(self, now: int) -> list[RunRecord]:
        self._replicate(now)
        if self.mode == "single-node" or (now - self.workload.at(0)) % (self.interval_min * MINUTE):
            return []
        self.table.clock.micros = now
        if self.mode == "offline-only":
            return self._export(now)
        return self._copy(now)

    def _copy(self, now: int) -> list[RunRecord]:
        """The naive copier: new files, marked done first, upserted in arrival order; killed: half of them."""
        killed = any(now - self.interval_min * MINUTE < k <= now for k in self.killed_runs)
        failing_over = self.mode == "distributed" and self._down(now)
        runs = []
        for g in GROUPS:
            start = now
            outcome = "success"
            for feature in g.features:
                fresh = [p for p in self.files.get(feature, []) if p not in self.copied]
                self.copied.update(fresh)  # marked done before copying
                if killed:
                    fresh, outcome = fresh[: len(fresh) // 2], "failed"
                if failing_over:
                    fresh, outcome = [], "failed"  # the master refuses writes until failover
                rows = self._faulty(_readable(fresh))
                _, took = timed(self._write, feature, rows, start)
                start += took
            runs.append(RunRecord(g.name, now, start, outcome))
        return runs

    def _write(self, feature: str, rows: pa.Table, now: int) -> None:
        if self.mode != "distributed":
            self.table.upsert(feature, rows)
            return
        for i in range(0, rows.num_rows, 50):  # the replica receives the stream in batches, each after its lag
            lag = int(self.rng.lognormal(np.log(0.5), 0.6) * SECOND)
            if self.rng.random() < 0.05:
                lag += int(self.rng.uniform(30, 120) * SECOND)  # a lag spike (a busy replica, a slow link)
            self._seq += 1
            heapq.heappush(self.journal, (now + lag, self._seq, now, feature, rows.slice(i, 50)))

    def _replicate(self, now: int) -> None:
        """Apply the writes the replica has received by now. A master killed after a write was acknowledged but
        before it reached the replica loses it: the promoted replica never had it (asynchronous replication)."""
        while self.journal and self.journal[0][0] <= now:
            apply_at, _, committed, feature, rows = heapq.heappop(self.journal)
            if any(committed <= s < apply_at for s, _ in self.outages):
                self.lost_writes += rows.num_rows
                continue
            self.table.upsert(feature, rows)

    def _export(self, now: int) -> list[RunRecord]:
        """The batch export: every file read again, the latest row per entity by event time (then created)."""
        runs = []
        for g in GROUPS:
            start = now
            for feature in g.features:
                _, took = timed(self._export_feature, feature, now)
                start += took
            runs.append(RunRecord(g.name, now, start, "success", "export"))
        return runs

    def _export_feature(self, feature: str, now: int) -> None:
        rows = _readable(self.files.get(feature, []))
        if rows.num_rows == 0:
            return
        events = rows["event_timestamp"].cast(pa.int64()).to_numpy()
        rows = rows.filter(pa.array(events <= now))
        order = np.lexsort((rows["created_timestamp"].cast(pa.int64()).to_numpy(), rows["event_timestamp"].cast(pa.int64()).to_numpy()))
        self.table.upsert(feature, self._faulty(rows.take(pa.array(order))))

    # --- serving -----------------------------------------------------------------------------------------------

    def serve(self, consumer: str, entities: np.ndarray, now: int) -> Served:
        del consumer  # nothing to pin: every model reads the one table
        self._replicate(now)
        if self.mode == "single-node" and self._down(now):
            return {f: unavailable(len(entities)) for f in FEATURES}
        return self.table.read(entities, now)

    def online(self, feature: str, version: int, entities: np.ndarray, now: int) -> Served:
        self._replicate(now)
        return self.table.read(entities, now, (feature,))


def _readable(paths: list[str]) -> pa.Table:
    """The files a naive reader can use, concatenated in arrival order: int keys or skipped without a word."""
    tables = []
    for path in paths:
        table = pq.read_table(path, columns=["customer_id", "event_timestamp", "created_timestamp", "value"])
        if table.schema.field("customer_id").type == pa.int64():
            tables.append(table.set_column(3, "value", table["value"].cast(pa.float64())))
    if not tables:
        return pa.table({"customer_id": pa.array([], pa.int64()), "event_timestamp": pa.array([], pa.timestamp("us", tz="UTC")),
                         "created_timestamp": pa.array([], pa.timestamp("us", tz="UTC")), "value": pa.array([], pa.float64())})
    return pa.concat_tables(tables)
