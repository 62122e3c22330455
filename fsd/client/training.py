"""Training-side workflows that join the registry (through the daemon) with the offline store:
offline ingest with recorded scope, point-in-time datasets, and dataset export with a serving manifest."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from fsd.aggregation.event_log import EventLog
from fsd.client.computed import historical_with_computed, is_computed, summary_of
from fsd.client.inputs import data_table
from fsd.domain import FeatureRef, GroupInfo, OfflineWrite, VersionInfo, resolve_version
from fsd.errors import FailedPrecondition, InvalidArgument
from fsd.offline.ingest import IngestReport, ingest
from fsd.offline.engines import check_engine, historical_table, write_training_set
from fsd.offline.partitioned import DEFAULT_MEMORY_BUDGET
from fsd.offline.retrieval import FeatureVersion, feature_columns
from fsd.offline.store import OfflineStore
from fsd.paths import confine

if TYPE_CHECKING:  # the client calls into this module; this one only receives one
    from fsd.client.api import Client


def ingest_offline(
    client: Client,
    store: OfflineStore,
    group: str,
    table: pa.Table,
    *,
    versions: Mapping[str, int] | None = None,
    kind: str = "ingest",
    skip_bad_rows: bool = False,
    actor: str = "",
) -> IngestReport:
    """Validate against the registry, write per feature version, and record each write's scope in history."""
    table = data_table(table)
    info = client.get_group(group)
    field = info.spec.timestamp_field
    if "event_timestamp" not in table.column_names and field in table.column_names:
        table = table.rename_columns(["event_timestamp" if c == field else c for c in table.column_names])
    declared = dict(versions or {})
    targets = {}
    for name in table.column_names:
        if name in info.versions:
            chosen = resolve_version(info, name, declared.get(name))
            targets[name] = (chosen.version, chosen.spec)
    report = ingest(store, table, info.spec, targets, now_micros=time.time_ns() // 1000, skip_bad_rows=skip_bad_rows, kind=kind)
    for feature, (version, result) in report.writes.items():
        if result.rows:
            client.record_offline_write(OfflineWrite(group, feature, version, kind, result.min_event_micros, result.max_event_micros,
                                                     result.rows, result.snapshot_id, actor))
    return report


def resolve_features(client: Client, refs: Sequence[str]) -> list[tuple[FeatureVersion, VersionInfo]]:
    """What each ref means now (unpinned: the SERVING version), through the same resolution serving uses."""
    groups: dict[str, GroupInfo] = {}
    out = []
    for text in refs:
        ref = FeatureRef.parse(text)
        info = groups.get(ref.group) or groups.setdefault(ref.group, client.get_group(ref.group))
        chosen = resolve_version(info, ref.feature, ref.version)
        max_age = chosen.spec.max_age_seconds or info.spec.max_age_seconds
        keys = tuple(k.name for k in info.spec.entity_keys)
        types = tuple(k.type for k in info.spec.entity_keys)
        out.append((FeatureVersion(ref.group, ref.feature, chosen.version, keys, max_age * 1_000_000, chosen.behaviour_hash, types), chosen))
    return out


def historical_features(
    client: Client, store: OfflineStore, entity_rows: pa.Table, refs: Sequence[str], *, as_of_micros: int | None = None, with_status: bool = False,
    engine: str = "local",
) -> tuple[pa.Table, list[FeatureVersion]]:
    """Point-in-time features; unpinned refs use the version SERVING now, and the result says which."""
    check_engine(engine)
    pairs = resolve_features(client, refs)
    resolved = [fv for fv, _ in pairs]
    if not any(is_computed(v) for _, v in pairs):
        return historical_table(engine, store, entity_rows, resolved, as_of_micros=as_of_micros, with_status=with_status), resolved
    plain = [fv for fv, v in pairs if not is_computed(v)]
    precomputed = historical_table(engine, store, entity_rows, plain, as_of_micros=as_of_micros, with_status=with_status) if plain else None
    groups = {fv.group: client.get_group(fv.group) for fv, v in pairs if is_computed(v)}
    return historical_with_computed(store, entity_rows, pairs, groups, precomputed, as_of_micros=as_of_micros, with_status=with_status,
                                    engine=engine), resolved


def create_dataset(
    client: Client,
    store: OfflineStore,
    entity_rows: pa.Table | str | Path,
    refs: Sequence[str],
    out: str | Path,
    *,
    name: str | None = None,
    as_of_micros: int | None = None,
    actor: str = "",
    engine: str = "local",
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> dict[str, object]:
    """Write the point-in-time training set to the Parquet file `out` and its manifest beside it
    (`<out>.manifest.json`); with `name`, also register the serving manifest that pins the same versions.

    entity_rows: a table, or a Parquet file the local engine streams (bounded memory whatever its size).
    Refused before anything is written: a feature version with no offline data at all (the set would be silently
    all NOT_FOUND), or an existing `out`."""
    check_engine(engine)
    path = confine(out, "out")
    sidecar = path.with_name(path.name + ".manifest.json")
    if path.exists() or sidecar.exists():
        raise FailedPrecondition(f"{path} already exists; choose another --out", field="out")
    resolved = resolve_features(client, refs)
    computed = any(is_computed(v) for _, v in resolved)
    empty = [f"{f.group}:{f.feature}@{f.version}" for f, v in resolved
             if not (store.snapshots(f.group, f.feature, f.version) if not is_computed(v) else EventLog(store.root, f.group).sequences())]
    if empty:
        raise FailedPrecondition(
            f"no offline data for {', '.join(empty)} in the offline store {store.root}: the training set would be all NOT_FOUND; "
            "ingest it first (fsd offline ingest GROUP FILE; computed features: fsd push GROUP FILE)", field="features",
        )
    versions = [fv for fv, _ in resolved]
    rows = entity_rows if isinstance(entity_rows, pa.Table) else confine(entity_rows, "entities")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Staged in a fresh private folder (mkdtemp: a new name, 0700), so nothing planted beside --out — a symlink at a
    # predictable temporary name — can redirect a write; the renames then replace whatever sits at the final names
    # (a planted link included) instead of following it.
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        if computed:  # in memory, precomputed columns from the engine and computed ones folded from the event log
            table = rows if isinstance(rows, pa.Table) else pq.read_table(rows)
            rows = historical_with_computed(store, table, resolved, {f.group: client.get_group(f.group) for f, v in resolved if is_computed(v)},
                                            historical_table(engine, store, table, [f for f, v in resolved if not is_computed(v)],
                                                             as_of_micros=as_of_micros, with_status=True)
                                            if any(not is_computed(v) for _, v in resolved) else None,
                                            as_of_micros=as_of_micros, with_status=True, engine=engine)
        return _stage_and_publish(client, store, rows, versions, path, sidecar, staging, name, actor, as_of_micros, engine, memory_budget,
                                  computed=computed)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _stage_and_publish(client: Client, store: OfflineStore, rows: pa.Table | Path, versions: list[FeatureVersion], path: Path, sidecar: Path,
                       staging: Path, name: str | None, actor: str, as_of_micros: int | None, engine: str, memory_budget: int,
                       computed: bool = False) -> dict[str, object]:
    tmp = staging / "data.parquet"
    if computed:  # `rows` is the finished table
        summary = summary_of(rows, len(rows.column_names) - 2 * len(versions))  # type: ignore[arg-type]
        pq.write_table(rows, tmp, compression="zstd")  # type: ignore[arg-type]
        rows = rows.select(rows.column_names[: len(rows.column_names) - 2 * len(versions)])  # type: ignore[union-attr]
    else:
        summary = write_training_set(engine, store, rows, versions, tmp, as_of_micros=as_of_micros, memory_budget=memory_budget)
    manifest = None
    if name:
        manifest = client.create_manifest(name, [f"{f.group}:{f.feature}@{f.version}" for f in versions], created_by=actor,
                                          description=f"training dataset {path}")
    columns = feature_columns(rows.column_names if isinstance(rows, pa.Table) else pq.read_schema(rows).names, versions)
    document = {
        "serving_manifest": manifest.ref if manifest else None,
        "features": [
            {"ref": f"{f.group}:{f.feature}@{f.version}", "column": column, "definition_hash": f.behaviour_hash,
             "offline_snapshots": store.snapshots(f.group, f.feature, f.version) or [f"events:{seq}" for seq in EventLog(store.root, f.group).sequences()[-1:]],
             "statuses": summary.statuses(column)}
            for f, column in zip(versions, columns)
        ],
        "rows": summary.rows,
        "event_time_range_micros": [summary.min_time_micros, summary.max_time_micros],
        "as_of_micros": as_of_micros,
        "created_at_micros": time.time_ns() // 1000,
        "data": path.name,
        "offline_root": str(store.root),
        "engine": engine,
    }
    tmp_manifest = staging / "manifest.json"
    tmp_manifest.write_text(json.dumps(document, indent=2))
    os.replace(tmp, path)
    os.replace(tmp_manifest, sidecar)
    return document


def entity_source(path: str | Path) -> pa.Table | Path:
    """A Parquet file as itself (the local engine streams it), anything else read as read_table reads it."""
    p = confine(path, "entities")
    if p.suffix.lower() == ".parquet" and p.is_file():
        return p
    return read_table(p)


def read_table(path: str | Path) -> pa.Table:
    """Parquet or CSV (CSV timestamps must carry an offset, e.g. 2026-01-01T00:00:00Z)."""
    p = confine(path, "file")
    if not p.is_file():
        raise InvalidArgument(f"{p}: no such file", field="file")
    if p.suffix.lower() == ".csv":
        from pyarrow import csv

        return csv.read_csv(p)
    return pq.read_table(p)
