"""The deployment modes as real configurations of fsd's components, all in one process on a simulated clock.

versioned    fsd as designed: version-aware producers, the loader (every publish rule) run by the real
             SyncScheduler at the groups' interval (or adaptive), validation every 15 minutes with forced
             resyncs, the model served through its pinned manifest.
split        offline + online with plain copying on a fixed schedule, no guards: new offline files are read and
             upserted in arrival order into the serving version's slot, through the storage engine directly.
single-node  one store written in line: every producer write is copied online as it lands (the same naive
             upsert, no schedule, no monitor).
offline-only definitions and offline data only: each request reads the latest offline value at request time.
distributed  two fsd replicas over one Redis Cluster (3 masters + 3 replicas) with the registry in PostgreSQL,
             and the split mode's plain copying written through the Redis Cluster engine; requests alternate
             between the replicas.

Baselines have no versions: their producer changes transformations and types in place (in the one dataset the
model was trained on), because nothing would stop it. Their copying lives here, never in fsd's product code.
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fsd import codec
from fsd.client import Client
from fsd.config import load_settings
from fsd.domain import DType, FixedClock
from fsd.errors import FsdError
from fsd.offline.store import OfflineStore
from fsd.registry.definitions import load_text
from fsd.serving.server import Daemon
from fsd.sync.scheduler import SyncScheduler
from loadtests.paper_eval.workload import MINUTE, Row, Workload

TS = pa.timestamp("us", tz="UTC")
MODEL = "fraud_model"
REFS = ("velocity:txn_count", "profile:account_age_days")
MAX_AGE = {"velocity:txn_count": 10 * MINUTE, "profile:account_age_days": 2 * 24 * 60 * MINUTE}
MODES = ("single-node", "offline-only", "split", "distributed", "versioned")


def repo(interval: str, transformation: str = "count(*) over 1h", expansion: bool = False, breaking: bool = False) -> str:
    """The feature repo; interval "adaptive" uses bounds of 1 minute to 1 hour."""
    schedule = "sync_interval: adaptive\n    sync_bounds: {min: 1m, max: 1h}" if interval == "adaptive" else f"sync_interval: {interval}"
    count_type = "double" if breaking else "int64"
    extra = "\n      - {name: txn_amount, dtype: double}" if expansion else ""
    return f"""
feature_groups:
  - name: velocity
    entity_keys: [{{name: customer_id, type: int64}}]
    max_age: 10m
    {schedule}
    features:
      - {{name: txn_count, dtype: {count_type}, transformation: "{transformation}"}}{extra}
  - name: profile
    entity_keys: [{{name: customer_id, type: int64}}]
    max_age: 2d
    {schedule}
    features:
      - {{name: account_age_days, dtype: int64}}
"""


def rows_table(rows: list[Row], value_type: pa.DataType, key_type: pa.DataType = pa.int64()) -> pa.Table:
    keys = [r.entity for r in rows] if key_type == pa.int64() else [f"C{r.entity}" for r in rows]
    return pa.table({
        "customer_id": pa.array(keys, key_type),
        "event_timestamp": pa.array([r.event for r in rows], TS),
        "created_timestamp": pa.array([r.created for r in rows], TS),
        "value": pa.array([r.value for r in rows], pa.float64()).cast(value_type, safe=False),
    })


@dataclass
class Served:
    """What one GetFeatures (or offline read) answered per feature and entity: value, status, event time, and the
    transformation that computed the value."""

    values: dict[str, list[float | None]]
    statuses: dict[str, list[str]]
    events: dict[str, list[int]]
    transformations: dict[str, list[str]]


@dataclass
class RunLog:
    minute: int
    group: str
    outcome: str
    wall_seconds: float


class _Interruptible:
    """The loader's client; armed, its next publish dies as a loader killed mid-run would (then it disarms)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.armed = False

    def publish(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.armed:
            self.armed = False
            raise ConnectionResetError("loader killed mid-run (injected)")
        return self._client.publish(*args, **kwargs)

    def __getattr__(self, name: str) -> Callable[..., object]:
        return getattr(self._client, name)  # type: ignore[no-any-return]


def _read_file(path: str, transformation: str) -> pa.Table | None:
    """One offline file as a naive reader sees it: int keys or it is skipped, values as doubles, a provenance tag."""
    table = pq.read_table(path, columns=["customer_id", "event_timestamp", "created_timestamp", "value"])
    if table.schema.field("customer_id").type != pa.int64():
        return None  # keys it cannot read: skipped without a word
    table = table.set_column(3, "value", table["value"].cast(pa.float64()))
    return table.append_column("transformation", pa.array([transformation] * table.num_rows))


def minutes_of(interval: str) -> int:
    return int(interval[:-1]) * (60 if interval.endswith("h") else 1)


@dataclass
class Harness:
    """One mode over one workload: a real daemon (RocksDB, registry, publisher, lookup) on the simulated clock."""

    mode: str
    interval: str  # "1m", "5m", ..., "adaptive", or "" where the mode has none
    workload: Workload
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fsd-paper-eval-")))
    runs: list[RunLog] = field(default_factory=list)
    provenance: dict[tuple[str, int], str] = field(default_factory=dict)  # baselines: which transformation sits online
    cluster: object = None  # distributed: the SharedCluster (Redis Cluster + PostgreSQL) this run uses

    def __post_init__(self) -> None:
        self.clock = FixedClock(self.workload.at(0))
        overrides: dict[str, dict[str, object]] = {
            "server": {"port": 0, "metrics": False},
            "store": {"data_dir": str(self.root / "data"), "warm_cache_on_start": False, "sync_writes": False,
                      "offline_root": str(self.root / "offline")},
        }
        if self.mode == "distributed":
            overrides["store"].update(engine="redis-cluster", redis_nodes=self.cluster.redis_nodes)  # type: ignore[attr-defined]
            overrides["registry"] = {"url": self.cluster.fresh_registry()}  # type: ignore[attr-defined]
        self.daemon = Daemon(load_settings(env={}, overrides=overrides), self.clock)
        self.daemon.start()
        self.client = Client(f"127.0.0.1:{self.daemon.port}", timeout=120)
        self._serving = [self.client]
        self._second = None
        if self.mode == "distributed":  # a second stateless replica over the same cluster and registry
            overrides["store"] = {**overrides["store"], "data_dir": str(self.root / "data-b")}
            self._second = Daemon(load_settings(env={}, overrides=overrides), self.clock)
            self._second.start()
            self._serving.append(Client(f"127.0.0.1:{self._second.port}", timeout=120))
        self._calls = 0
        self.store = OfflineStore(self.root / "offline", self.clock)
        self.client.apply(load_text(repo(self.interval if self.interval else "5m")), applied_by="paper_eval")
        self._settle()
        self._loader_client = _Interruptible(self.client)
        self.scheduler = None
        if self.mode == "versioned":
            self.scheduler = SyncScheduler(self._loader_client, self.store, clock=lambda: self.clock.micros / 1e6,  # type: ignore[arg-type]
                                           min_backoff=60.0, run_clock=self.clock)
        self._copied: set[str] = set()
        self._bad: tuple[list[str], list[Row]] | None = None
        self._files: dict[str, pa.Table | None] = {}  # offline-only re-reads every file per request: files never change

    def close(self) -> None:
        for client in self._serving:
            client.close()
        for daemon in (self.daemon, self._second):
            if daemon is not None:
                daemon.stop(grace=1)

    # --- producers -------------------------------------------------------------------------------------------

    def produce(self, minute: int) -> None:
        """This minute's offline writes: version-aware in the versioned mode, in place in the baselines."""
        w, e = self.workload, self.workload.events
        self.clock.micros = w.at(minute)
        versioned = self.mode == "versioned"
        velocity = w.velocity.get(minute, []) if versioned else w.in_place(minute)
        if minute == e["entity_key_change"]:  # one source's file arrives with the key as a string ("C123")
            bad = [r for r in velocity if r.kind == "ingest"]
            result = self.store.write("velocity", "txn_count", 1, rows_table(bad, self._velocity_type(bad), pa.string()))
            self._bad = (list(result.files), bad)
            velocity = [r for r in velocity if r.kind != "ingest"]
        if minute == e["entity_key_fixed"] and self._bad is not None:  # on-call replaces the bad file with a correct one
            files, bad = self._bad
            for path in files:
                Path(path).unlink(missing_ok=True)
                self._copied.add(path)
            velocity = velocity + [Row(r.entity, r.event, w.at(minute), r.value, r.transformation) for r in bad]
        groups: dict[tuple[str, str], list[Row]] = {}
        for r in velocity:
            groups.setdefault((r.kind, r.transformation), []).append(r)
        for (kind, _), rows in groups.items():
            self.store.write("velocity", "txn_count", 1, rows_table(rows, self._velocity_type(rows)), kind=kind)
        if versioned:
            if w.velocity_t2.get(minute):
                self.store.write("velocity", "txn_count", 2, rows_table(w.velocity_t2[minute], pa.int64()))
            if w.velocity_t3.get(minute):
                self.store.write("velocity", "txn_count", 3, rows_table(w.velocity_t3[minute], pa.float64()))
            self._registry_events(minute)
        if w.profile.get(minute):
            self.store.write("profile", "account_age_days", 1, rows_table(w.profile[minute], pa.int64()))
        if self.mode == "single-node":
            self._naive_copy(minute)

    @staticmethod
    def _velocity_type(rows: list[Row]) -> pa.DataType:
        return pa.float64() if any(r.transformation == "t3" for r in rows) else pa.int64()

    def _registry_events(self, minute: int) -> None:
        """Definition changes go through the registry: each one that can alter the model is a new version."""
        e = self.workload.events
        changes: dict[int, dict[str, bool]] = {e["transformation_change"]: {}, e["schema_expansion"]: {"expansion": True},
                                               e["breaking_type_change"]: {"expansion": True, "breaking": True}}
        if minute in changes:
            text = repo(self.interval, "count(*) over 30m", **changes[minute])
            self.client.apply(load_text(text), applied_by="paper_eval", reason="paper_eval event")
            self._settle()

    # --- synchronisation -------------------------------------------------------------------------------------

    def sync(self, minute: int) -> list[RunLog]:
        """Whatever this mode does at this minute to move values online; returns the sync runs made."""
        self.clock.micros = self.workload.at(minute)
        made: list[RunLog] = []
        if self.mode == "versioned":
            if minute == self.workload.events["failed_sync"]:
                self._loader_client.armed = True
            began = time.perf_counter()
            runs = self.scheduler.run_due()  # type: ignore[union-attr]
            took = (time.perf_counter() - began) / max(1, len(runs))
            made = [RunLog(minute, r.group, r.outcome, took) for r in runs]
            if minute % 15 == 0 and minute:
                self._validate()
        elif self.mode in ("split", "distributed") and minute % minutes_of(self.interval) == 0:
            made = [self._naive_copy(minute)]
        elif self.mode == "single-node":
            made = [RunLog(minute, "all", "success", 0.0)]  # copied in line by produce()
        self.runs.extend(made)
        return made

    def _validate(self) -> None:
        """The monitor's sampled offline-vs-online comparison; a drifted version gets a forced resync request."""
        for group in ("velocity", "profile"):
            try:
                self.client.validate(group, sample=200, action="resync")
            except FsdError:
                pass  # nothing comparable yet: the validator reports "not measured"

    def _naive_copy(self, minute: int) -> RunLog:
        """Plain copying: every offline file not copied before, read, upserted in arrival order into the serving
        version's slot of its feature (no event-time order, no version, no key or type check)."""
        began = time.perf_counter()
        snapshot = self.daemon.registry.snapshot()
        failing = minute == self.workload.events["failed_sync"]
        outcome = "success"
        for group, feature in (("velocity", "txn_count"), ("profile", "account_age_days")):
            files = [str(p) for p in self.store.data_files(group, feature, 1) if str(p) not in self._copied]
            if failing and group == "velocity":  # the copier dies half way, having marked every file done
                self._copied.update(files)
                files = files[: len(files) // 2]
                outcome = "failed"
            tables = []
            for path in files:
                self._copied.add(path)
                table = _read_file(path, self._file_transformation(path) if group == "velocity" else "t1")
                if table is not None:
                    tables.append(table)
            if tables:
                self._upsert(snapshot, group, feature, pa.concat_tables(tables))
        return RunLog(minute, "all", outcome, time.perf_counter() - began)

    def _upsert(self, snapshot, group: str, feature: str, rows: pa.Table) -> None:  # type: ignore[no-untyped-def]
        resolved = snapshot.resolve(f"{group}:{feature}")
        order = np.lexsort((rows["event_timestamp"].cast(pa.int64()).to_numpy(), rows["created_timestamp"].cast(pa.int64()).to_numpy()))
        rows = rows.take(pa.array(order))  # arrival order: the last row read for an entity wins, whatever its event time
        ids = rows["customer_id"].to_numpy()
        last = {int(e): i for i, e in enumerate(ids)}
        chosen = np.array(sorted(last.values()), dtype=np.int64)
        entity_ids = ids[chosen].astype(np.int64)
        values = rows["value"].to_numpy()[chosen]
        if resolved.dtype == DType.INT64:
            values = values.astype(np.int64)  # a double written into an int column: truncated, no error
        events = rows["event_timestamp"].cast(pa.int64()).to_numpy()[chosen]
        created = rows["created_timestamp"].cast(pa.int64()).to_numpy()[chosen]
        keys = codec.entity_keys(resolved.group_id, codec.encode_entities([entity_ids], [False]))
        column = codec.encode_values(int(resolved.dtype), values, np.zeros(len(chosen), dtype=np.bool_), events, created, 0)
        self.daemon.store.merge_rows(keys, [resolved.slot], [column], replace=True)
        tags = rows["transformation"].to_pylist()
        for e, i in zip(entity_ids.tolist(), chosen.tolist()):
            self.provenance[(feature, e)] = tags[i]

    def _cached(self, path: str, group: str) -> pa.Table | None:
        if path not in self._files:
            self._files[path] = _read_file(path, self._file_transformation(path) if group == "velocity" else "t1")
        return self._files[path]

    def _file_transformation(self, path: str) -> str:
        """Which transformation computed a baseline's in-place file: t1's backfills and corrections are t1;
        ingest files follow the producer's transformation when they were written."""
        if "-backfill" in path or "-correction" in path:
            return "t1"
        created = pq.read_table(path, columns=["created_timestamp"])["created_timestamp"].cast(pa.int64())
        minute = int((created[0].as_py() - self.workload.at(0)) // MINUTE)
        e = self.workload.events
        return "t3" if minute >= e["breaking_type_change"] else "t2" if minute >= e["transformation_change"] else "t1"

    # --- serving ---------------------------------------------------------------------------------------------

    def create_model_manifest(self) -> None:
        """The model is trained now on the versions serving now; fsd pins them in a manifest."""
        if self.mode == "versioned":
            self.client.create_manifest(MODEL, [f"{r}@1" for r in REFS], created_by="paper_eval")
            self._settle()

    def _settle(self, timeout: float = 30.0) -> None:
        """The distributed mode's second replica picks a registry change up within its watch interval (NOTIFY, else a
        0.25 s poll): the simulated minute waits for it, so a definition is never read before either replica has it."""
        if self._second is None:
            return
        wanted = self.daemon.registry.snapshot().epoch
        deadline = time.monotonic() + timeout
        while self._second.registry.snapshot().epoch < wanted:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the second replica did not see registry epoch {wanted} within {timeout:.0f} s")
            time.sleep(0.01)

    def serve(self, entities: np.ndarray, minute: int, pinned: bool = True) -> Served:
        """What the model is served; pinned=False reads the SERVING versions (before the model's manifest exists)."""
        self.clock.micros = self.workload.at(minute)
        ids = [int(e) for e in entities]
        if self.mode == "offline-only":
            return self._serve_offline(ids, minute)
        client = self._serving[self._calls % len(self._serving)]  # the distributed mode alternates replicas
        self._calls += 1
        if self.mode == "versioned" and pinned:
            got = client.get_features(None, {"customer_id": ids}, manifest=MODEL)
        else:
            got = client.get_features(list(REFS), {"customer_id": ids})
        out = Served({}, {}, {}, {})
        for ref in REFS:
            column = got.features.get(ref) or next(v for k, v in got.features.items() if k.split("@")[0] == ref)
            feature = ref.split(":")[1]
            has = column.has_value()
            values = np.asarray(column.values, dtype=np.float64)
            out.values[ref] = [float(v) if h else None for v, h in zip(values, has)]
            out.statuses[ref] = column.status_names()
            out.events[ref] = column.event_time_micros.tolist()
            if self.mode == "versioned":  # what fsd says it served: the version, hence its transformation
                out.transformations[ref] = [{1: "t1", 2: "t2", 3: "t3"}.get(column.version, f"v{column.version}")] * len(ids)
            else:
                out.transformations[ref] = [self.provenance.get((feature, e), "t1") for e in ids]
        return out

    def _serve_offline(self, ids: list[int], minute: int) -> Served:
        """Offline-only: the latest offline row per entity, read at request time from the one dataset."""
        now = self.workload.at(minute)
        out = Served({}, {}, {}, {})
        for ref in REFS:
            group, feature = ref.split(":")
            tables = [t for t in (self._cached(str(p), group) for p in self.store.data_files(group, feature, 1)) if t is not None]
            latest: dict[int, tuple[int, int, float, str]] = {}
            if tables:
                rows = pa.concat_tables(tables)
                for e, ev, cr, v, tag in zip(rows["customer_id"].to_pylist(), rows["event_timestamp"].cast(pa.int64()).to_pylist(),
                                             rows["created_timestamp"].cast(pa.int64()).to_pylist(), rows["value"].to_pylist(),
                                             rows["transformation"].to_pylist()):
                    if ev <= now and (e not in latest or (ev, cr) >= latest[e][:2]):
                        latest[e] = (ev, cr, v, tag)
            values: list[float | None] = []
            statuses: list[str] = []
            events: list[int] = []
            tags: list[str] = []
            for e in ids:
                hit = latest.get(e)
                values.append(hit[2] if hit else None)
                statuses.append("NOT_FOUND" if hit is None else "STALE" if now - hit[0] > MAX_AGE[ref] else "PRESENT")
                events.append(hit[0] if hit else 0)
                tags.append(hit[3] if hit else "t1")
            out.values[ref], out.statuses[ref], out.events[ref], out.transformations[ref] = values, statuses, events, tags
        return out
