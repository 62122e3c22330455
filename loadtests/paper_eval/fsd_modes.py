"""fsd as designed, on its real components: the registry (a new version per definition change), the version-aware
producer, the loader (every publish rule) run by the real SyncScheduler at the interval, the validator with forced
resyncs every three intervals, and each model served through its pinned manifest.

versioned               one daemon on RocksDB.
versioned+distributed   two stateless replicas over one Redis Cluster (3 masters + 3 replicas) with the registry in
                        PostgreSQL; the loader writes through one, requests alternate between them, and a Redis
                        master stops taking commands for a second at each of the run's outages (CLIENT PAUSE), so
                        the writes and reads that meet it really wait.

Faults a test can inject (`faults`): in_place (the producer changes the first changed feature's definition in
place and never registers it: fsd cannot know; the metrics must still see it), drop_rows and corrupt (the loader's
publishes lose a fifth of their rows, or alter a tenth of their values).
"""
from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from fsd.client import Client
from fsd.config import load_settings
from fsd.domain import FixedClock
from fsd.errors import FsdError
from fsd.offline.store import OfflineStore
from fsd.registry.definitions import load_text
from fsd.serving.server import Daemon
from fsd.sync.scheduler import SyncScheduler
from loadtests.paper_eval.common import (FEATURES, RunRecord, Served, daemon_overrides, in_place_dataset, repo, rows_table, served_from,
                                         timed, unavailable)
from loadtests.paper_eval.workload import GROUP_OF, GROUPS, MINUTE, Definition, Landing, Workload

VERSIONED = ("versioned", "versioned+distributed")


class _LoaderClient:
    """The loader's client with the run's injected faults: a killed run's publish dies; test faults alter rows."""

    def __init__(self, client: Client, faults: frozenset[str], rng: np.random.Generator) -> None:
        self._client = client
        self._faults = faults
        self._rng = rng
        self.armed = False

    def publish(self, group: str, table: pa.Table, **kwargs):  # type: ignore[no-untyped-def]
        if self.armed:
            self.armed = False
            raise ConnectionResetError("loader killed mid-run (injected)")
        if "drop_rows" in self._faults and table.num_rows:
            table = table.filter(pa.array(self._rng.random(table.num_rows) >= 0.2))
        if "corrupt" in self._faults and table.num_rows:
            hit = self._rng.random(table.num_rows) < 0.1
            for i, name in enumerate(table.column_names):
                if name in FEATURES and pa.types.is_floating(table.schema.field(name).type) or name in ("txn_count", "day_count"):
                    column = table[name].to_numpy(zero_copy_only=False).astype(np.float64)
                    table = table.set_column(i, name, pa.array(np.where(hit, column + 1, column)).cast(table.schema.field(name).type))
        return self._client.publish(group, table, **kwargs)

    def __getattr__(self, name: str) -> Callable[..., object]:
        return getattr(self._client, name)  # type: ignore[no-any-return]


@dataclass
class Versioned:
    mode: str
    interval_min: int
    workload: Workload
    faults: frozenset[str] = frozenset()
    cluster: object = None  # versioned+distributed: the SharedCluster (Redis Cluster + PostgreSQL)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fsd-paper-eval-")))
    validations: int = 0
    forced_resyncs: int = 0

    def __post_init__(self) -> None:
        w = self.workload
        self.clock = FixedClock(w.at(0))
        overrides = daemon_overrides(self.root)
        if self.mode == "versioned+distributed":
            overrides["store"].update(engine="redis-cluster", redis_nodes=self.cluster.redis_nodes)  # type: ignore[attr-defined]
            overrides["registry"] = {"url": self.cluster.fresh_registry()}  # type: ignore[attr-defined]
        self.daemons = [Daemon(load_settings(env={}, overrides=overrides), self.clock)]
        if self.mode == "versioned+distributed":  # a second stateless replica over the same cluster and registry
            overrides["store"] = {**overrides["store"], "data_dir": str(self.root / "data-b")}
            self.daemons.append(Daemon(load_settings(env={}, overrides=overrides), self.clock))
        for d in self.daemons:
            d.start()
        self.clients = [Client(f"127.0.0.1:{d.port}", timeout=120) for d in self.daemons]
        self.client = self.clients[0]
        self._calls = 0
        self.offline = OfflineStore(self.root / "offline", self.clock)
        self.in_place = {w.changes[0][1].feature} if "in_place" in self.faults and w.changes else set()
        self.registered = {f: [w.definitions[f][0]] for f in FEATURES}
        self.client.apply(load_text(self._repo()), applied_by="paper_eval")
        self._settle()
        self.loader = _LoaderClient(self.client, self.faults, np.random.default_rng(w.seed * 13 + 3))
        seconds = lambda: self.clock.micros / 1e6  # noqa: E731 - the scheduler's clock is the simulated one
        self.schedulers = {g.name: SyncScheduler(self.loader, self.offline, groups=[g.name], clock=seconds,  # type: ignore[arg-type]
                                                 min_backoff=60.0, run_clock=self.clock) for g in GROUPS}
        self.killed = {t for t, _, _ in w.processes["killed_run"]}
        self.outages = [(t, int(d["failover"])) for t, _, d in w.processes["outage"]]  # type: ignore[call-overload]
        self.written: dict[int, tuple[int | None, list[str]]] = {}
        self.manifest_b = "model_a"
        self._retrains = 0
        self.client.create_manifest("model_a", [f"{GROUP_OF[f]}:{f}@1" for f in FEATURES], created_by="paper_eval")
        self._last_validation = w.at(0)

    def _repo(self) -> str:
        return repo(f"{self.interval_min}m", {f: ds[-1].transformation for f, ds in self.registered.items()})

    def close(self) -> None:
        for c in self.clients:
            c.close()
        for d in self.daemons:
            d.stop(grace=1)

    def _settle(self, timeout: float = 30.0) -> None:
        """The second replica picks a registry change up by its watch: the simulated clock waits for it."""
        if len(self.daemons) < 2:
            return
        wanted = self.daemons[0].registry.snapshot().epoch
        deadline = time.monotonic() + timeout
        while self.daemons[1].registry.snapshot().epoch < wanted:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the second replica did not see registry epoch {wanted} within {timeout:.0f} s")
            time.sleep(0.005)

    def dataset(self, landing: Landing) -> int | None:
        if landing.replaces >= 0:
            return self.written.get(landing.replaces, (None, []))[0]
        if landing.feature in self.in_place:
            return in_place_dataset(self.workload, self.workload.definition(landing.feature, landing.definition), landing.time)
        return landing.definition

    def versions_served(self, feature: str) -> tuple[int, ...]:
        return (1,) if feature in self.in_place else tuple(d.number for d in self.registered[feature])

    # --- producers and the registry ----------------------------------------------------------------------------

    def land(self, landing: Landing, now: int) -> list[RunRecord]:
        dataset = self.dataset(landing)
        self.clock.micros = now
        if landing.replaces >= 0:  # on-call replaces the file whose keys were strings
            for path in self.written.get(landing.replaces, (None, []))[1]:
                Path(path).unlink(missing_ok=True)
        if dataset is None:
            self.written[landing.number] = (None, [])
            return []
        string_keys = bool(landing.rows) and landing.rows[0].string_keys
        result = self.offline.write(GROUP_OF[landing.feature], landing.feature, dataset, rows_table(landing.rows, landing.feature, string_keys),
                                    kind=landing.kind)
        self.written[landing.number] = (dataset, [str(p) for p in result.files])
        return []

    def announce(self, definition: Definition, now: int) -> None:
        """A definition change goes through the registry: a new version (unless the producer changed it in place)."""
        if definition.feature in self.in_place:
            return
        self.clock.micros = now
        self.registered[definition.feature].append(definition)
        self.client.apply(load_text(self._repo()), applied_by="paper_eval", reason="definition change")
        self._settle()

    def retrain(self, now: int) -> None:
        """Model B is retrained on the newest versions: its own manifest pins them."""
        self.clock.micros = now
        self._retrains += 1
        name = f"model_b_{self._retrains}"
        pins = [f"{GROUP_OF[f]}:{f}@{1 if f in self.in_place else self.workload.expected_definition('B', f, now).number}" for f in FEATURES]
        self.client.create_manifest(name, pins, created_by="paper_eval")
        self._settle()
        self.manifest_b = name

    # --- synchronisation ---------------------------------------------------------------------------------------

    def tick(self, now: int) -> list[RunRecord]:
        self.clock.micros = now
        if any(now - MINUTE < k <= now for k in self.killed):
            self.loader.armed = True
        if self.mode == "versioned+distributed" and any(now - MINUTE < s <= now for s, _ in self.outages):
            self.cluster.pause_a_master(1000)  # type: ignore[attr-defined]
        made: list[RunRecord] = []
        start = now
        for name, scheduler in self.schedulers.items():
            runs, took = timed(scheduler.run_due)
            for r in runs:  # type: ignore[attr-defined]
                made.append(RunRecord(name, start, start + took, r.outcome, "resync" if r.forced else "sync"))
                self.forced_resyncs += r.forced
            if runs:
                start += took
        cadence = 3 * self.interval_min * MINUTE  # the validator's cadence, tied to the interval
        if now - self._last_validation >= cadence:
            self._last_validation = now
            for g in GROUPS:
                try:
                    self.client.validate(g.name, sample=100, action="resync")
                    self.validations += 1
                except FsdError:
                    pass  # nothing comparable yet: the validator reports "not measured"
        return made

    # --- serving -----------------------------------------------------------------------------------------------

    def _reader(self) -> Client:
        client = self.clients[self._calls % len(self.clients)]  # requests alternate between the replicas
        self._calls += 1
        return client

    def serve(self, consumer: str, entities: np.ndarray, now: int) -> Served:
        self.clock.micros = now
        manifest = "model_a" if consumer == "A" else self.manifest_b
        try:
            got = self._reader().get_features(None, {"customer_id": [int(e) for e in entities]}, manifest=manifest)
        except FsdError:
            return {f: unavailable(len(entities)) for f in FEATURES}
        return served_from(got, FEATURES)

    def online(self, feature: str, version: int, entities: np.ndarray, now: int) -> Served:
        self.clock.micros = now
        got = self._reader().get_features([f"{GROUP_OF[feature]}:{feature}@{version}"], {"customer_id": [int(e) for e in entities]})
        return served_from(got, (feature,))


def pause_master(port: int, millis: int) -> None:
    """CLIENT PAUSE on one Redis master: its commands wait, as they would for a failover."""
    subprocess.run(["redis-cli", "-p", str(port), "CLIENT", "PAUSE", str(millis), "ALL"], capture_output=True, timeout=10, check=False)

