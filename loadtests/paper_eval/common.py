"""What every mode shares: the feature repo, a real fsd daemon to hold an online table, offline files, and the
records a mode hands the metrics (what it served, what its sync runs did)."""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from fsd import codec
from fsd.client import Client
from fsd.config import load_settings
from fsd.domain import DType, FixedClock
from fsd.offline.store import OfflineStore
from fsd.registry.definitions import load_text
from fsd.serving.server import Daemon
from loadtests.paper_eval.workload import DTYPE, GROUP_OF, GROUPS, Definition, Row, Workload

TS = pa.timestamp("us", tz="UTC")
FEATURES = tuple(f for g in GROUPS for f in g.features)


def repo(interval: str, transformations: dict[str, str]) -> str:
    """The feature repo; interval "adaptive" uses bounds of 1 minute to 1 hour."""
    schedule = "sync_interval: adaptive\n    sync_bounds: {min: 1m, max: 1h}" if interval == "adaptive" else f"sync_interval: {interval}"
    groups = []
    for g in GROUPS:
        features = "\n".join(f'      - {{name: {f}, dtype: {DTYPE[f]}, transformation: "{transformations[f]}"}}' for f in g.features)
        groups.append(f"""  - name: {g.name}
    entity_keys: [{{name: customer_id, type: int64}}]
    max_age: {g.max_age_min}m
    {schedule}
    features:
{features}""")
    return "feature_groups:\n" + "\n".join(groups) + "\n"


def daemon_overrides(root: Path) -> dict[str, dict[str, object]]:
    """An in-process daemon's settings under a run's root: any free port, no metrics, RocksDB and offline files there."""
    return {"server": {"port": 0, "metrics": False},
            "store": {"data_dir": str(root / "data"), "warm_cache_on_start": False, "sync_writes": False, "offline_root": str(root / "offline")}}


def initial_transformations(w: Workload) -> dict[str, str]:
    return {f: w.definitions[f][0].transformation for f in FEATURES}


def rows_table(rows: list[Row], feature: str, string_keys: bool = False) -> pa.Table:
    keys = [r.entity for r in rows] if not string_keys else [f"C{r.entity}" for r in rows]
    value_type = pa.int64() if DTYPE[feature] == "int64" else pa.float64()
    return pa.table({
        "customer_id": pa.array(keys, pa.string() if string_keys else pa.int64()),
        "event_timestamp": pa.array([r.event for r in rows], TS),
        "created_timestamp": pa.array([r.available for r in rows], TS),
        "value": pa.array([r.value for r in rows], pa.float64()).cast(value_type, safe=False),
    })


@dataclass
class FeatureServed:
    values: list[float | None]
    statuses: list[str]
    events: list[int]
    version: int  # the dataset (version) the answer names; 1 for the unversioned modes


Served = dict[str, FeatureServed]


def unavailable(n: int) -> FeatureServed:
    return FeatureServed([None] * n, ["UNAVAILABLE"] * n, [0] * n, 0)


@dataclass
class RunRecord:
    """One sync (or copy, or export) job of one group: its own outcome, and when it started and ended on the
    simulated clock (end = start + the job's real duration)."""

    group: str
    start: int
    end: int
    outcome: str  # success | failed
    kind: str = "sync"  # sync | resync (validator-driven) | inline | export


@dataclass
class OnlineTable:
    """A real fsd daemon (RocksDB) used as a plain online table by the baselines: their copying writes its rows
    through the storage engine directly (no rules), and reads go through GetFeatures."""

    workload: Workload
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fsd-paper-eval-")))

    def __post_init__(self) -> None:
        self.clock = FixedClock(self.workload.at(0))
        self.daemon = Daemon(load_settings(env={}, overrides=daemon_overrides(self.root)), self.clock)
        self.daemon.start()
        self.client = Client(f"127.0.0.1:{self.daemon.port}", timeout=120)
        self.client.apply(load_text(repo("5m", initial_transformations(self.workload))), applied_by="paper_eval")
        self.offline = OfflineStore(self.root / "offline", self.clock)

    def close(self) -> None:
        self.client.close()
        self.daemon.stop(grace=1)

    def upsert(self, feature: str, rows: pa.Table) -> None:
        """Rows in the order given; the last one read for an entity wins, whatever its event time (plain upsert)."""
        if rows.num_rows == 0:
            return
        resolved = self.daemon.registry.snapshot().resolve(f"{GROUP_OF[feature]}:{feature}")
        ids = rows["customer_id"].to_numpy()
        last = {int(e): i for i, e in enumerate(ids)}
        chosen = np.array(sorted(last.values()), dtype=np.int64)
        entity_ids = ids[chosen].astype(np.int64)
        values = rows["value"].cast(pa.float64()).to_numpy(zero_copy_only=False)[chosen]
        nulls = np.isnan(values)
        if resolved.dtype == DType.INT64:
            values = np.nan_to_num(values).astype(np.int64)
        events = rows["event_timestamp"].cast(pa.int64()).to_numpy()[chosen]
        created = rows["created_timestamp"].cast(pa.int64()).to_numpy()[chosen]
        keys = codec.entity_keys(resolved.group_id, codec.encode_entities([entity_ids], [False]))
        column = codec.encode_values(int(resolved.dtype), values, nulls, events, created, 0)
        self.daemon.store.merge_rows(keys, [resolved.slot], [column], replace=True)

    def read(self, entities: np.ndarray, now: int, features: tuple[str, ...] = FEATURES) -> Served:
        self.clock.micros = now
        got = self.client.get_features([f"{GROUP_OF[f]}:{f}" for f in features], {"customer_id": [int(e) for e in entities]})
        return served_from(got, features)


def served_from(got: object, features: tuple[str, ...]) -> Served:
    out: Served = {}
    for f in features:
        ref = f"{GROUP_OF[f]}:{f}"
        column = got.features.get(ref) or next(v for k, v in got.features.items() if k.split("@")[0] == ref)  # type: ignore[attr-defined]
        has = column.has_value()
        values = np.asarray(column.values, dtype=np.float64)
        out[f] = FeatureServed([float(v) if h else None for v, h in zip(values, has)], column.status_names(),
                               column.event_time_micros.tolist(), int(column.version))
    return out


def timed(fn, *args, **kwargs) -> tuple[object, int]:  # type: ignore[no-untyped-def]
    """Run fn; its result and its real duration in µs (what the simulated clock advances by)."""
    began = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, max(1, int((time.perf_counter() - began) * 1e6))


def in_place_dataset(w: Workload, definition: Definition, landed: int) -> int | None:
    """An unversioned producer writes only the current definition's rows, all into the one dataset (version 1)."""
    return 1 if w.current_definition(definition.feature, landed).number == definition.number else None
