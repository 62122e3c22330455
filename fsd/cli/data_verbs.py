"""Verbs that move feature values: publish, get, offline ingest, dataset create, sync, sync-status."""
from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from fsd.cli import exits
from fsd.cli.exits import UsageError
from fsd.cli.options import actor, client_from, emit

if TYPE_CHECKING:
    from fsd.offline.store import OfflineStore


def parse_feature_versions(items: list[str] | None) -> dict[str, int]:
    """--feature-version FEATURE=N options -> {feature: N}."""
    versions = {}
    for item in items or []:
        name, _, number = item.partition("=")
        if not name or not number.isdigit() or int(number) < 1:
            raise UsageError(f"--feature-version {item[:80]!r}: expected FEATURE=N with N >= 1")
        versions[name] = int(number)
    return versions


def offline_store(args: argparse.Namespace, client: object) -> OfflineStore:
    """The deployment's offline store, as the daemon reports it; an explicit --offline-root (or $FSD_OFFLINE_ROOT)
    that points elsewhere is refused, naming both, instead of silently reading another store."""
    from pathlib import Path

    from fsd.offline.store import OfflineStore

    recorded = client.get_deployment().offline_root  # type: ignore[attr-defined]
    explicit = args.offline_root or os.environ.get("FSD_OFFLINE_ROOT")
    if explicit and Path(explicit).resolve() != Path(recorded):
        source = "--offline-root" if args.offline_root else "$FSD_OFFLINE_ROOT"
        raise UsageError(f"{source} {explicit} is not this deployment's offline store {recorded} (reported by the daemon); "
                         "drop the option to use the deployment's")
    return OfflineStore(recorded)


def cmd_publish(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from fsd.client.training import read_table

    table = read_table(args.file)
    versions = parse_feature_versions(args.feature_version)
    if args.resume and not args.publish_id:
        raise UsageError("--resume needs the --publish-id of the interrupted publish")
    if args.ignore_extra_columns:
        with client_from(args) as client:
            spec = client.get_group(args.group).spec
        known = {k.name for k in spec.entity_keys} | {f.name for f in spec.features} | {"event_timestamp", "created_timestamp", spec.timestamp_field}
        extra = [c for c in table.column_names if c not in known]
        if extra:
            print(f"ignoring {len(extra)} column(s) that are not features of {args.group}: {', '.join(extra[:10])}", file=sys.stderr)
            table = table.drop_columns(extra)
    publish_id = args.publish_id or uuid.uuid4().hex
    resume_hint = f"fsd publish {args.group} {args.file} --publish-id {publish_id} --resume"
    if not args.quiet:
        print(f"publish {publish_id} started (if interrupted, resume with: {resume_hint})", file=sys.stderr)
    try:
        with client_from(args) as client, tqdm(total=table.num_rows, unit="rows", disable=args.quiet or None, file=sys.stderr) as bar:
            result = client.publish(args.group, table, publish_id=publish_id, chunk_rows=args.chunk_rows, on_chunk=bar.update,
                                    feature_versions=versions, resume=args.resume)
    except KeyboardInterrupt:
        print(f"\ninterrupted: chunks already acknowledged are durable; resume with: {resume_hint}", file=sys.stderr)
        return exits.INTERRUPTED

    emit(args, result, lambda: result_text(f"publish {result.publish_id}: {result.rows_accepted} rows accepted, {result.rows_rejected} rejected, "
                                           f"{result.values_written} values written, {result.values_skipped_older} skipped (newer online)", result))
    return exits.OK if result.rows_rejected == 0 else exits.ROWS_REJECTED


def result_text(headline: str, result: object) -> str:
    """A publish's or push's outcome: the headline, then each rejected row range with its rule."""
    lines = [headline]
    lines += [f"  rows {r.row_start}-{r.row_end - 1}: [{r.rule}] {r.reason}" for r in result.rejections]  # type: ignore[attr-defined]
    if result.rejections_truncated:  # type: ignore[attr-defined]
        lines.append("  (more rejections not shown)")
    return "\n".join(lines)


def cmd_push(args: argparse.Namespace) -> int:
    from fsd.client.training import read_table

    table = read_table(args.file)
    push_id = args.push_id or uuid.uuid4().hex
    with client_from(args) as client:
        result = client.push_events(args.group, table, push_id=push_id, chunk_rows=args.chunk_rows)

    emit(args, result, lambda: result_text(f"push {result.publish_id}: {result.rows_accepted} events accepted, {result.rows_rejected} rejected "
                                           "(durable in the event log and the computed features' tiles)", result))
    return exits.OK if result.rows_rejected == 0 else exits.ROWS_REJECTED


def parse_entities(specs: Sequence[str], key_types: dict[str, object]) -> dict[str, list[object]]:
    """--entity KEY=V1,V2 (or KEY=["a,b", "c"] as JSON) -> columns typed by the group's key types."""
    import json

    from fsd.domain import KeyType

    columns: dict[str, list[object]] = {}
    for spec in specs:
        name, sep, raw = spec.partition("=")
        if not sep or not name:
            raise UsageError(f"--entity {spec[:80]!r}: expected KEY=VALUE[,VALUE...] or KEY=[JSON list]")
        if raw.startswith("["):
            try:
                items = json.loads(raw)
            except json.JSONDecodeError:
                raise UsageError(f"--entity {spec[:80]!r}: not a JSON list") from None
            if not isinstance(items, list):
                raise UsageError(f"--entity {spec[:80]!r}: not a JSON list")
        else:
            items = raw.split(",")
        kind = key_types.get(name)
        for item in items:
            if kind == KeyType.INT64:
                try:
                    value = int(item)
                except (TypeError, ValueError):
                    raise UsageError(f"--entity {spec[:80]!r}: {name} is an int64 key, {str(item)[:40]!r} is not an integer") from None
                if not -(2**63) <= value < 2**63:
                    raise UsageError(f"--entity {spec[:80]!r}: {value} does not fit an int64 key")
                columns.setdefault(name, []).append(value)
            else:
                columns.setdefault(name, []).append(str(item))
    return columns


def cmd_get(args: argparse.Namespace) -> int:
    from fsd.domain import FeatureRef
    from fsd.client.views import features_table

    if not args.features and not args.manifest:
        raise UsageError("name features (group:feature[@N]) or --manifest")
    with client_from(args) as client:
        key_types: dict[str, object] = {}
        groups = {FeatureRef.parse(ref).group for ref in args.features}
        if args.manifest and not args.features:
            groups |= {p.group for p in client.get_manifest(args.manifest).features}
        for name in sorted(groups):
            key_types.update({k.name: k.type for k in client.get_group(name).spec.entity_keys})
        entities = parse_entities(args.entity, key_types)
        result = client.get_features(args.features, entities, manifest=args.manifest or "")

    def document() -> object:
        rows = []
        for i in range(result.entity_count):
            row: dict[str, object] = {k: v[i] for k, v in entities.items()}
            for ref, f in result.features.items():
                served = bool(f.has_value()[i])
                value = f.values[i] if served else None  # type: ignore[index]
                row[ref] = value.tolist() if hasattr(value, "tolist") else (value.hex() if isinstance(value, bytes) else value)
                row[f"{ref}:status"] = f.status_names()[i]
                row[f"{ref}:version"] = f.version
                row[f"{ref}:event_time_micros"] = int(f.event_time_micros[i])
            rows.append(row)
        return {"manifest": result.manifest or None, "served_at_micros": result.served_at_micros, "rows": rows}

    if args.output == "json":
        emit(args, document(), str)
    else:
        print((f"served under manifest {result.manifest}\n" if result.manifest else "") + features_table(entities, result))
    return 0


def cmd_offline(args: argparse.Namespace) -> int:
    from fsd.client.training import ingest_offline, read_table

    versions = parse_feature_versions(args.feature_version)
    table = read_table(args.file)
    with client_from(args) as client:
        store = offline_store(args, client)
        report = ingest_offline(client, store, args.group, table, versions=versions, kind=args.kind,
                                skip_bad_rows=args.skip_bad_rows, actor=actor(args))
    print(f"{report.rows_written} of {report.rows} rows written to {store.root} ({report.rows_rejected} rejected)")
    for feature, (version, result) in report.writes.items():
        print(f"  {args.group}:{feature}@{version}: snapshot {result.snapshot_id}, {len(result.files)} file(s)")
    for r in report.rejections[:20]:
        print(f"  rows {r.row_start}-{r.row_end - 1}: [{r.rule}] {r.reason}")
    return exits.OK if not report.rows_rejected else exits.ROWS_REJECTED


def parse_as_of(text: str | None) -> int | None:
    """--as-of must say its UTC offset: a naive time would be read in this machine's zone and let later values in."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--as-of {text[:60]!r}: not an ISO 8601 time (e.g. 2026-11-25T10:00:00Z)") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise UsageError(f"--as-of {text[:60]!r} has no UTC offset; add one (e.g. Z or +01:00): a naive time is ambiguous")
    return int(moment.timestamp() * 1_000_000)


def cmd_dataset(args: argparse.Namespace) -> int:
    from fsd.client.tables import render
    from fsd.client.training import create_dataset, entity_source

    as_of = parse_as_of(args.as_of)
    if args.memory_mib < 64:
        raise UsageError(f"--memory-mib {args.memory_mib}: give at least 64")
    entity_rows = entity_source(args.entities)
    with client_from(args) as client:
        doc = create_dataset(client, offline_store(args, client), entity_rows, args.features, args.out, name=args.name,
                             as_of_micros=as_of, actor=actor(args), engine=args.engine, memory_budget=args.memory_mib << 20)
    manifest = f"; serving manifest {doc['serving_manifest']}" if doc["serving_manifest"] else ""
    print(f"wrote {doc['rows']} rows to {args.out} (manifest {args.out}.manifest.json){manifest}")
    rows = [(f["ref"], f["definition_hash"][:12], f["statuses"]["PRESENT"], f["statuses"]["STALE"], f["statuses"]["NOT_FOUND"])
            for f in doc["features"]]  # type: ignore[union-attr]
    print(render(["feature version", "definition hash", "PRESENT", "STALE", "NOT_FOUND"], rows))
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from fsd.sync.loader import sync_group
    from fsd.sync.scheduler import SyncScheduler
    from fsd.client.views import runs_table

    with client_from(args) as client:
        store = offline_store(args, client)
        if args.memory_mib < 16:
            raise UsageError(f"--memory-mib {args.memory_mib}: give at least 16")
        if not args.all:
            if not args.group:
                raise UsageError("name a GROUP or use --all")
            from tqdm import tqdm

            with tqdm(unit="values", unit_scale=True, desc=f"sync {args.group}", disable=not sys.stderr.isatty()) as bar:
                run = sync_group(client, store, args.group, full=args.full, forced=args.full, on_rows=bar.update,
                                 memory_budget=args.memory_mib << 20)
            emit(args, run, lambda: runs_table([run]))
            return exits.OK if run.outcome == "success" else exits.ERROR
        scheduler = SyncScheduler(client, store)
        cycles = 0
        while True:
            runs = scheduler.run_due()
            if runs:
                emit(args, runs, lambda: runs_table(runs))
            cycles += 1
            if not args.watch or (args.max_cycles and cycles >= args.max_cycles):
                return exits.OK
            time.sleep(min(5.0, max(0.2, scheduler.seconds_until_next())))


def cmd_sync_status(args: argparse.Namespace) -> int:
    from fsd.client.views import runs_table

    with client_from(args) as client:
        runs = client.sync_runs(args.group or "", args.limit)
    ok = sum(r.outcome == "success" for r in runs)

    def table() -> str:
        rate = f"success rate: {ok}/{len(runs)} = {ok / len(runs):.0%}" if runs else "success rate: not measured (no sync runs)"
        return runs_table(runs) + "\n" + rate

    emit(args, {"runs": runs, "succeeded": ok, "total": len(runs), "success_rate": ok / len(runs) if runs else None}, table)
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, connection: argparse.ArgumentParser,  # type: ignore[type-arg]
             output: argparse.ArgumentParser) -> None:
    parents = [common, connection, output]
    publish = sub.add_parser("publish", parents=parents, help="publish a Parquet or CSV file to a feature group's online store")
    publish.add_argument("group", help="the feature group")
    publish.add_argument("file", help="Parquet or CSV: entity keys, event_timestamp (with a UTC offset), feature columns")
    publish.add_argument("--publish-id", default=None, help="reuse to resume/retry a publish idempotently")
    publish.add_argument("--chunk-rows", type=int, default=20_000, help="rows per streamed chunk (default 20000)")
    publish.add_argument("--quiet", action="store_true", help="no progress bar")
    publish.add_argument("--ignore-extra-columns", action="store_true", help="skip columns that are not features of the group (else refused)")
    publish.add_argument("--resume", action="store_true", help="with --publish-id: send only the chunks the daemon does not have yet")
    publish.add_argument("--feature-version", dest="feature_version", action="append",
                         help="FEATURE=N: write version N of that column (e.g. a PENDING one); repeatable")
    publish.set_defaults(func=cmd_publish)

    push = sub.add_parser("push", parents=parents, help="push raw events (Parquet or CSV) to a group with an event source")
    push.add_argument("group", help="a feature group with an event_source")
    push.add_argument("file", help="Parquet or CSV: entity keys, event_timestamp (with a UTC offset), the event columns")
    push.add_argument("--push-id", default=None, help="reuse to retry a push idempotently (chunks already durable are skipped)")
    push.add_argument("--chunk-rows", type=int, default=50_000, help="rows per streamed chunk (default 50000)")
    push.set_defaults(func=cmd_push)

    get = sub.add_parser("get", parents=parents, help="read features for entities")
    get.add_argument("features", nargs="*", help="group:feature or group:feature@N (optional with --manifest)")
    get.add_argument("--entity", action="append", required=True,
                     help='KEY=VALUE[,VALUE...] or KEY=["a,b","c"] (JSON list); repeat for composite keys')
    get.add_argument("--manifest", default=None, help="serve exactly the versions this manifest pins (name or name@N)")
    get.set_defaults(func=cmd_get)

    offline = sub.add_parser("offline", parents=[common, connection], help="offline store: ingest Parquet/CSV, validated against the registry")
    offline.add_argument("action", choices=["ingest"], help="ingest: validate and write to the offline store")
    offline.add_argument("group", help="the feature group")
    offline.add_argument("file", help="Parquet or CSV with entity keys, event_timestamp and feature columns")
    offline.add_argument("--kind", choices=["ingest", "backfill", "correction"], default="ingest", help="recorded in history")
    offline.add_argument("--feature-version", dest="feature_version", action="append",
                         help="FEATURE=N: write that version (default: SERVING); repeatable")
    offline.add_argument("--skip-bad-rows", action="store_true", help="write the valid rows even if some are rejected")
    offline.add_argument("--offline-root", default=None, help="must be the deployment's offline store if given (the daemon reports it; also $FSD_OFFLINE_ROOT)")
    offline.add_argument("--by", default=None, help="who (recorded in history; default $USER)")
    offline.set_defaults(func=cmd_offline)

    dataset = sub.add_parser("dataset", parents=[common, connection], help="training datasets: point-in-time join + manifest")
    dataset.add_argument("action", choices=["create"], help="create: join and write a training set")
    dataset.add_argument("--entities", required=True, help="Parquet/CSV with entity keys and event_timestamp (UTC-aware)")
    dataset.add_argument("--features", nargs="+", required=True, help="group:feature or group:feature@N")
    dataset.add_argument("--out", required=True, help="the Parquet file to write (its manifest goes to OUT.manifest.json)")
    dataset.add_argument("--name", default=None, help="also register a serving manifest of this name pinning the same versions")
    dataset.add_argument("--as-of", default=None, help="ISO time with a UTC offset (e.g. 2026-11-25T10:00:00Z): only values created by then")
    dataset.add_argument("--offline-root", default=None, help="must be the deployment's offline store if given (the daemon reports it; also $FSD_OFFLINE_ROOT)")
    dataset.add_argument("--by", default=None, help="who (recorded in history; default $USER)")
    dataset.add_argument("--engine", choices=["local", "duckdb", "spark"], default="local",
                         help="local: in memory, or out of core past --memory-mib (default); duckdb: DuckDB ASOF JOIN "
                              "(fsd[duckdb]); spark: Apache Spark (fsd[spark], JDK 17+; FSD_SPARK_MASTER, default local[2])")
    dataset.add_argument("--memory-mib", type=int, default=1024,
                         help="the local engine's working-memory budget; larger sets are joined out of core (default 1024)")
    dataset.set_defaults(func=cmd_dataset)

    sync = sub.add_parser("sync", parents=parents, help="offline -> online: latest values per entity since the last successful sync")
    sync.add_argument("group", nargs="?", default="", help="the feature group (or --all)")
    sync.add_argument("--all", action="store_true", help="every group, each at its sync interval")
    sync.add_argument("--watch", action="store_true", help="keep running the scheduler (with --all)")
    sync.add_argument("--max-cycles", type=int, default=0, help="stop the watch after N scheduler cycles")
    sync.add_argument("--full", action="store_true", help="forced resync: ignore the watermark")
    sync.add_argument("--memory-mib", type=int, default=512,
                      help="a run whose offline rows need more goes one entity partition at a time, spilled to disk (default 512)")
    sync.add_argument("--offline-root", default=None, help="must be the deployment's offline store if given (the daemon reports it; also $FSD_OFFLINE_ROOT)")
    sync.set_defaults(func=cmd_sync)

    status = sub.add_parser("sync-status", parents=parents, help="sync runs per group, with the success rate")
    status.add_argument("group", nargs="?", default="", help="only this group")
    status.add_argument("--limit", type=int, default=20, help="how many recent runs (default 20)")
    status.set_defaults(func=cmd_sync_status)
