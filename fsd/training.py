"""Training-side workflows that join the registry (through the daemon) with the offline store:
offline ingest with recorded scope, point-in-time datasets, and dataset export with a serving manifest."""
from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fsd.client import Client
from fsd.domain import FeatureRef, GroupInfo, OfflineWrite, VersionInfo, resolve_version
from fsd.errors import FailedPrecondition, InvalidArgument
from fsd.offline.ingest import IngestReport, ingest
from fsd.offline.retrieval import FeatureVersion, get_historical_features
from fsd.offline.store import EVENT_TIMESTAMP, OfflineStore
from fsd.paths import confine


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
    client: Client, store: OfflineStore, entity_rows: pa.Table, refs: Sequence[str], *, as_of_micros: int | None = None, with_status: bool = False
) -> tuple[pa.Table, list[FeatureVersion]]:
    """Point-in-time features; unpinned refs use the version SERVING now, and the result says which."""
    resolved = [fv for fv, _ in resolve_features(client, refs)]
    return get_historical_features(store, entity_rows, resolved, as_of_micros=as_of_micros, with_status=with_status), resolved


def create_dataset(
    client: Client,
    store: OfflineStore,
    entity_rows: pa.Table,
    refs: Sequence[str],
    out: str | Path,
    *,
    name: str | None = None,
    as_of_micros: int | None = None,
    actor: str = "",
) -> dict[str, object]:
    """Write the point-in-time training set to the Parquet file `out` and its manifest beside it
    (`<out>.manifest.json`); with `name`, also register the serving manifest that pins the same versions.

    Refused before anything is written: a feature version with no offline data at all (the set would be silently
    all NOT_FOUND), or an existing `out`."""
    path = confine(out, "out")
    sidecar = path.with_name(path.name + ".manifest.json")
    if path.exists() or sidecar.exists():
        raise FailedPrecondition(f"{path} already exists; choose another --out", field="out")
    resolved = resolve_features(client, refs)
    empty = [f"{f.group}:{f.feature}@{f.version}" for f, _ in resolved if not store.snapshots(f.group, f.feature, f.version)]
    if empty:
        raise FailedPrecondition(
            f"no offline data for {', '.join(empty)} in the offline store {store.root}: the training set would be all NOT_FOUND; "
            "ingest it first (fsd offline ingest GROUP FILE)", field="features",
        )
    versions = [fv for fv, _ in resolved]
    table = get_historical_features(store, entity_rows, versions, as_of_micros=as_of_micros, with_status=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    manifest = None
    if name:
        manifest = client.create_manifest(name, [f"{f.group}:{f.feature}@{f.version}" for f in versions], created_by=actor,
                                          description=f"training dataset {path}")
    times = pc.min_max(pc.cast(entity_rows[EVENT_TIMESTAMP], pa.timestamp("us", tz="UTC")).cast(pa.int64()))
    statuses = {f.column: _status_counts(table[f"{f.column}:status"]) for f in versions}
    document = {
        "serving_manifest": manifest.ref if manifest else None,
        "features": [
            {"ref": f"{f.group}:{f.feature}@{f.version}", "column": f.column, "definition_hash": f.behaviour_hash,
             "offline_snapshots": store.snapshots(f.group, f.feature, f.version), "statuses": statuses[f.column]}
            for f in versions
        ],
        "rows": table.num_rows,
        "event_time_range_micros": [times["min"].as_py(), times["max"].as_py()],
        "as_of_micros": as_of_micros,
        "created_at_micros": time.time_ns() // 1000,
        "data": path.name,
        "offline_root": str(store.root),
    }
    tmp_manifest = sidecar.with_name(f".{sidecar.name}.tmp")
    tmp_manifest.write_text(json.dumps(document, indent=2))
    os.replace(tmp, path)
    os.replace(tmp_manifest, sidecar)
    return document


def _status_counts(column: pa.ChunkedArray) -> dict[str, int]:
    counts = {"PRESENT": 0, "STALE": 0, "NOT_FOUND": 0}
    for value, count in zip(*[c.to_pylist() for c in pc.value_counts(column).flatten()]):
        counts[value] = count
    return counts


def read_table(path: str | Path) -> pa.Table:
    """Parquet or CSV (CSV timestamps must carry an offset, e.g. 2026-01-01T00:00:00Z)."""
    p = confine(path, "file")
    if not p.is_file():
        raise InvalidArgument(f"{p}: no such file", field="file")
    if p.suffix.lower() == ".csv":
        from pyarrow import csv

        return csv.read_csv(p)
    return pq.read_table(p)
