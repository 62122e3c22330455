"""The `fsd` command: serve, apply, publish, get, groups, demo."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone

import grpc

from fsd.errors import FsdError

logger = logging.getLogger("fsd")


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _target(args: argparse.Namespace) -> str:
    return args.target or os.environ.get("FSD_TARGET", "127.0.0.1:50051")


def cmd_serve(args: argparse.Namespace) -> int:
    from fsd.config import load_settings
    from fsd.serving.server import Daemon

    settings = load_settings(
        args.config or os.environ.get("FSD_CONFIG"),
        overrides={"server": {"host": args.host, "port": args.port}, "store": {"data_dir": args.data_dir}},
    )
    daemon = Daemon(settings)
    port = daemon.start()
    if args.port_file and daemon.metrics_port:
        with open(f"{args.port_file}.metrics.tmp", "w", encoding="utf-8") as fh:
            fh.write(str(daemon.metrics_port))
        os.replace(f"{args.port_file}.metrics.tmp", f"{args.port_file}.metrics")
    if args.port_file:
        tmp = f"{args.port_file}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(str(port))
        os.replace(tmp, args.port_file)
    print(f"fsd serving on {settings.server.host}:{port}" + (f", metrics on :{daemon.metrics_port}/metrics" if daemon.metrics_port else ""), flush=True)

    def _stop(signum: int, _frame: object) -> None:
        logger.info("signal %d: draining", signum)
        daemon.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    daemon.wait()
    return 0


_ACTION_MARK = {
    "create": "+", "compatible_expansion": "+", "new_version": "~>", "metadata_update": "~", "unchanged": " ",
}


def _print_changes(response) -> None:  # type: ignore[no-untyped-def]
    from fsd.tables import render

    rows = [
        (_ACTION_MARK.get(c.action, "?"), c.group, c.feature or "(group)", c.action, f"v{c.version}" if c.version else "", c.detail)
        for c in response.changes
    ]
    print(render(["", "group", "feature", "action", "version", "detail"], rows))


def cmd_plan(args: argparse.Namespace) -> int:
    from fsd.client import Client
    from fsd.registry.definitions import load_repo

    with Client(_target(args)) as client:
        response = client.plan(load_repo(args.path))
    _print_changes(response)
    changed = sum(c.action != "unchanged" for c in response.changes)
    print(f"plan against registry revision {response.revision}: {changed} change(s); nothing applied")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from fsd.client import Client
    from fsd.registry.definitions import load_repo

    groups = load_repo(args.path)
    with Client(_target(args)) as client:
        plan = client.plan(groups)
        # Applying against the planned revision: a concurrent apply in between is refused, not merged blindly.
        response = client.apply(
            groups, applied_by=args.by or os.environ.get("USER", ""), reason=args.reason or "", expected_revision=plan.revision
        )
    _print_changes(response)
    print(f"registry revision {response.revision}")
    return 0


def _parse_version_ref(text: str) -> tuple[str, str, int]:
    from fsd.domain import FeatureRef

    ref = FeatureRef.parse(text)
    if ref.version is None:
        raise FsdError(f"{text!r}: name a version, e.g. {ref.group}:{ref.feature}@2")
    return ref.group, ref.feature, ref.version


def cmd_promote(args: argparse.Namespace) -> int:
    from fsd.client import Client

    group, feature, version = _parse_version_ref(args.ref)
    with Client(_target(args)) as client:
        info = client.promote(group, feature, version, actor=args.by or os.environ.get("USER", ""), reason=args.reason or "", force=args.force)
    print(f"{group}:{feature}@{info.version} is now SERVING")
    return 0


def cmd_retire(args: argparse.Namespace) -> int:
    from fsd.client import Client

    group, feature, version = _parse_version_ref(args.ref)
    with Client(_target(args)) as client:
        client.retire(group, feature, version, actor=args.by or os.environ.get("USER", ""), reason=args.reason or "", force=args.force)
    print(f"{group}:{feature}@{version} is RETIRED; its online values are purged after the retention period")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from fsd.client import Client
    from fsd.domain import DType, FeatureRef, VersionState
    from fsd.registry.durations import format_duration
    from fsd.tables import render

    if ":" in args.ref:
        ref = FeatureRef.parse(args.ref)
        group, feature = ref.group, ref.feature
    else:
        group, feature = args.ref, ""
    with Client(_target(args)) as client:
        response = client.history(group, feature)
        info = client.get_group(group)
    source = info.definition.source or "(no source)"
    print(f"versions of {group}{':' + feature if feature else ''}:")
    rows = []
    for v in response.versions:
        d = v.definition
        lineage = (f"{source} -> {d.transformation or '(identity)'} -> v{v.version} -> offline {group}/{v.feature}/v{v.version}/ "
                   f"-> online rows of group {group}, slot {v.slot}")
        rows.append((
            f"{v.feature}@{v.version}", VersionState(v.state).name, DType(d.dtype).name.lower(),
            format_duration(d.window_seconds) if d.window_seconds else "-", v.behaviour_hash[:12],
            _fmt_time(v.first_published_micros), ",".join(v.pinned_by) or "-", lineage,
        ))
    print(render(["version", "state", "dtype", "window", "definition hash", "first published", "pinned by", "lineage"], rows))
    print("\nhistory:")
    print(render(
        ["when (UTC)", "rev", "feature", "version", "action", "detail", "who", "why"],
        [(_fmt_time(e.at_micros), e.revision, e.feature or "(group)", f"v{e.version}" if e.version else "", e.action, e.detail, e.actor, e.reason)
         for e in response.entries],
    ))
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    from fsd.client import Client
    from fsd.tables import render

    with Client(_target(args)) as client:
        if args.manifest_command == "create":
            manifests = [client.create_manifest(args.name, args.features, created_by=args.by or os.environ.get("USER", ""), description=args.description or "")]
        elif args.manifest_command == "show":
            manifests = [client.get_manifest(args.name)]
        else:
            manifests = list(client.list_manifests().manifests)
    for m in manifests:
        print(f"manifest {m.name}@{m.version} (created {_fmt_time(m.created_micros)} by {m.created_by or '-'})")
        print(render(["feature", "version", "definition hash"], [(f"{p.group}:{p.feature}", f"v{p.version}", p.behaviour_hash[:16]) for p in m.features]))
    return 0


def _parse_versions(items: list[str] | None) -> dict[str, int]:
    """--version FEATURE=N options -> {feature: N}."""
    versions = {}
    for item in items or []:
        name, _, number = item.partition("=")
        if not name or not number.isdigit():
            raise FsdError(f"--version {item!r}: expected FEATURE=N")
        versions[name] = int(number)
    return versions


def cmd_publish(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq
    from tqdm import tqdm

    from fsd.client import Client

    from fsd.paths import confine

    table = pq.read_table(confine(args.file, "file"))
    with Client(_target(args)) as client, tqdm(total=table.num_rows, unit="rows", disable=args.quiet or None) as bar:
        versions = _parse_versions(args.version)
        response = client.publish(
            args.group, table, publish_id=args.publish_id, chunk_rows=args.chunk_rows, on_chunk=bar.update, feature_versions=versions
        )
    print(
        f"publish {response.publish_id}: {response.rows_accepted} rows accepted, {response.rows_rejected} rejected, "
        f"{response.values_written} values written, {response.values_skipped_older} skipped (newer online)"
    )
    for r in response.rejections:
        print(f"  rows {r.row_start}-{r.row_end - 1}: [{r.rule}] {r.reason}")
    if response.rejections_truncated:
        print("  (more rejections not shown)")
    return 0 if response.rows_rejected == 0 else 3


def _parse_entities(specs: Sequence[str], key_types: dict[str, int]) -> dict[str, list[object]]:
    from fsd.domain import KeyType

    columns: dict[str, list[object]] = {}
    for spec in specs:
        name, sep, raw = spec.partition("=")
        if not sep or not name:
            raise FsdError(f"--entity {spec!r}: expected KEY=VALUE[,VALUE...]")
        kind = key_types.get(name)
        for text in raw.split(","):
            if kind == KeyType.INT64:
                try:
                    columns.setdefault(name, []).append(int(text))
                except ValueError:
                    raise FsdError(f"--entity {spec!r}: {name} is an int64 key, {text!r} is not an integer") from None
            else:
                columns.setdefault(name, []).append(text)
    return columns


def cmd_get(args: argparse.Namespace) -> int:
    from fsd.client import Client
    from fsd.domain import FeatureRef

    with Client(_target(args)) as client:
        key_types: dict[str, int] = {}
        for ref in args.features:
            group = client.get_group(FeatureRef.parse(ref).group)
            key_types.update({k.name: k.type for k in group.definition.entity_keys})
        if args.manifest and not args.features:
            manifest = client.get_manifest(args.manifest)
            for p in manifest.features:
                group = client.get_group(p.group)
                key_types.update({k.name: k.type for k in group.definition.entity_keys})
        entities = _parse_entities(args.entity, key_types)
        result = client.get_features(args.features, entities, manifest=args.manifest or "")
    if result.manifest:
        print(f"served under manifest {result.manifest}")
    print(_render_result(entities, result))
    return 0


def _render_result(entities: dict[str, list[object]], result) -> str:  # type: ignore[no-untyped-def]
    from fsd.tables import render

    rows = []
    for i in range(result.entity_count):
        key = ", ".join(f"{k}={v[i]}" for k, v in entities.items())
        for ref, f in result.features.items():
            status = f.status_names()[i]
            value = None if f.is_null[i] or status in ("NOT_FOUND", "BLOCKED") else _item(f.values, i)
            when = _fmt_time(int(f.event_time_micros[i]))
            rows.append((key, ref, f"v{f.version}", value, status, when))
    return render(["entity", "feature", "version", "value", "status", "event time (UTC)"], rows)


def _item(values: object, i: int) -> object:
    item = values[i]  # type: ignore[index]
    return item.tolist() if hasattr(item, "tolist") else item


def _fmt_time(micros: int) -> str:
    if micros <= 0:
        return "-"
    return datetime.fromtimestamp(micros / 1e6, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def cmd_groups(args: argparse.Namespace) -> int:
    from fsd.client import Client
    from fsd.domain import DType
    from fsd.registry.durations import format_duration
    from fsd.tables import render

    with Client(_target(args)) as client:
        response = client.list_groups()
    rows = []
    for g in response.groups:
        keys = ",".join(k.name for k in g.definition.entity_keys)
        for f in g.features:
            rows.append((g.definition.name, keys, f.definition.name, DType(f.definition.dtype).name.lower(), f"v{f.serving_version}",
                         format_duration(f.definition.max_age_seconds or g.definition.max_age_seconds)))
    print(render(["group", "entity keys", "feature", "dtype", "serving", "max age"], rows))
    return 0


def _offline_root(args: argparse.Namespace) -> str:
    return args.offline_root or os.environ.get("FSD_OFFLINE_ROOT", "./fsd-offline")


def cmd_offline(args: argparse.Namespace) -> int:
    from fsd.client import Client
    from fsd.offline.store import OfflineStore
    from fsd.training import ingest_offline, read_table

    versions = _parse_versions(args.version)
    table = read_table(args.file)
    with Client(_target(args)) as client:
        report = ingest_offline(client, OfflineStore(_offline_root(args)), args.group, table, versions=versions, kind=args.kind,
                                skip_bad_rows=args.skip_bad_rows, actor=args.by or os.environ.get("USER", ""))
    print(f"{report.rows_written} of {report.rows} rows written to {_offline_root(args)} ({report.rows_rejected} rejected)")
    for feature, (version, result) in report.writes.items():
        print(f"  {args.group}:{feature}@{version}: snapshot {result.snapshot_id}, {len(result.files)} file(s)")
    for r in report.rejections[:20]:
        print(f"  rows {r.row_start}-{r.row_end - 1}: [{r.rule}] {r.reason}")
    return 0


def cmd_dataset(args: argparse.Namespace) -> int:
    from fsd.client import Client
    from fsd.offline.store import OfflineStore
    from fsd.training import create_dataset, read_table

    entity_rows = read_table(args.entities)
    as_of = int(datetime.fromisoformat(args.as_of).timestamp() * 1_000_000) if args.as_of else None
    with Client(_target(args)) as client:
        doc = create_dataset(client, OfflineStore(_offline_root(args)), entity_rows, args.features, args.out, name=args.name,
                             as_of_micros=as_of, actor=args.by or os.environ.get("USER", ""))
    print(f"wrote {doc['rows']} rows to {args.out}/data.parquet; serving manifest {doc['serving_manifest']}")
    for f in doc["features"]:  # type: ignore[union-attr]
        print(f"  {f['ref']}  hash {f['definition_hash'][:12]}  {f['statuses']}")
    return 0


def _print_runs(runs) -> None:  # type: ignore[no-untyped-def]
    from fsd.tables import render

    rows = []
    for r in runs:
        took = (r.ended_micros - r.started_micros) / 1e6
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(r.reason_counts.items())) or "-"
        rows.append((r.id, r.group, _fmt_time(r.started_micros), f"{took:.2f}s", r.outcome + (" (forced)" if r.forced else ""),
                     r.rows_read, r.values_written, r.rows_rejected, f"{r.sync_delay_micros / 1e6:.1f}s", reasons, r.error[:60]))
    print(render(["run", "group", "started (UTC)", "took", "outcome", "rows read", "values written", "rejected", "sync delay",
                  "reasons", "error"], rows))


def cmd_sync(args: argparse.Namespace) -> int:
    from fsd.client import Client
    from fsd.offline.store import OfflineStore
    from fsd.sync.loader import SyncScheduler, sync_group

    store = OfflineStore(_offline_root(args))
    with Client(_target(args)) as client:
        if not args.all:
            if not args.group:
                raise FsdError("name a GROUP or use --all")
            from tqdm import tqdm

            with tqdm(unit="rows", desc=f"sync {args.group}", disable=not sys.stderr.isatty()) as bar:
                run = sync_group(client, store, args.group, full=args.full, forced=args.full, on_rows=bar.update)
            _print_runs([run])
            return 0 if run.outcome == "success" else 1
        scheduler = SyncScheduler(client, store)
        cycles = 0
        while True:
            runs = scheduler.run_due()
            if runs:
                _print_runs(runs)
            cycles += 1
            if not args.watch or (args.max_cycles and cycles >= args.max_cycles):
                return 0
            time.sleep(min(5.0, max(0.2, scheduler.seconds_until_next())))


def cmd_sync_status(args: argparse.Namespace) -> int:
    from fsd.client import Client

    with Client(_target(args)) as client:
        runs = list(client.sync_runs(args.group or "", args.limit).runs)
    _print_runs(runs)
    if runs:
        ok = sum(r.outcome == "success" for r in runs)
        print(f"success rate: {ok}/{len(runs)} = {ok / len(runs):.0%}")
    return 0


def cmd_incidents(args: argparse.Namespace) -> int:
    from fsd.client import Client
    from fsd.tables import render

    with Client(_target(args)) as client:
        if args.action == "resolve":
            if not args.id:
                raise FsdError("incidents resolve needs an incident ID")
            client.resolve_incident(int(args.id), resolved_by=args.by or os.environ.get("USER", ""), resolution=args.note or "")
            print(f"incident {args.id} resolved")
            return 0
        incidents = client.incidents(include_resolved=args.all).incidents
    print(render(["id", "opened (UTC)", "group", "kind", "publish", "detail", "resolved"],
                 [(i.id, _fmt_time(i.opened_micros), i.group, i.kind, i.publish_id, i.detail,
                   f"{_fmt_time(i.resolved_micros)} by {i.resolved_by}: {i.resolution}" if i.resolved_micros else "OPEN") for i in incidents]))
    return 0


def _age(seconds: float) -> str:
    if seconds < 0:
        return "never"
    from fsd.registry.durations import format_duration

    return format_duration(int(seconds)) if seconds >= 1 else f"{seconds:.1f}s"


def cmd_status(args: argparse.Namespace) -> int:
    from fsd.client import Client
    from fsd.tables import render

    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    flag = (lambda text: f"\033[31m{text}\033[0m") if color else (lambda text: text)
    with Client(_target(args)) as client:
        response = client.status(args.group or "")
    rows = []
    for g in response.groups:
        state = flag("STALE (" + "; ".join(g.breaches) + ")") if g.stale else "ok"
        rows.append((g.group, _age(g.freshness_lag_seconds), _age(g.seconds_since_sync), g.missed_refreshes,
                     f"{g.sync_delay_seconds * 1000:.0f}ms" if g.sync_delay_seconds < 1 else f"{g.sync_delay_seconds:.1f}s", _age(g.max_age_seconds), _age(g.sync_interval_seconds), state))
    print(render(["group", "freshness lag", "since sync", "missed refreshes", "sync delay", "max age", "sync every", "state"], rows))
    feature_rows = []
    for g in response.groups:
        for f in g.features:
            feature_rows.append((f"{g.group}:{f.feature}@{f.version}", f.state,
                                 f"{f.stale_entity_ratio:.1%} of {f.sampled_values}" if f.stale_entity_ratio >= 0 else "-",
                                 flag("BLOCKED") if f.blocked else "-",
                                 f"{f.last_consistency:.2%}" if f.last_consistency >= 0 else "-", f"{f.psi:.3f}" if f.psi >= 0 else "-"))
    print()
    print(render(["feature version", "state", "stale entities (sampled)", "blocked", "last consistency", "psi"], feature_rows))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from fsd.client import Client
    from fsd.tables import render

    with Client(_target(args)) as client:
        response = client.validate(args.group, sample=args.sample, skew=args.skew, action=args.action or "", feature=args.feature or "",
                                   versions=[args.version] if args.version else [])
    rows = []
    for f in response.features:
        m = f.mismatches
        rows.append((f"{response.group}:{f.feature}@{f.version}", f.sampled, f"{f.consistency:.2%}", m.value_differs, m.version_differs,
                     m.missing_online, m.stale, m.entity_key_drift, (f"{f.psi:.3f}" + (" SKEWED" if f.skewed else "")) if f.psi >= 0 else "-"))
    print(render(["feature version", "sampled", "consistency", "value differs", "version differs", "missing online", "stale",
                  "entity-key drift", "psi (>0.2 = skew)"], rows))
    for action in response.actions_taken:
        print(f"action: {action}")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from fsd.client import Client

    with Client(_target(args)) as client:
        info = client.backup(args.name)
    print(f"backup written to {info.path} (registry revision {info.registry_revision})")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from fsd.backup import restore_backup

    from fsd.paths import confine

    restore_backup(confine(args.backup, "backup"), confine(args.data_dir, "data_dir"))
    print(f"restored {args.backup} into {args.data_dir}; start it with: fsd serve --data-dir {args.data_dir}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from fsd.demo import run_demo

    return run_demo(keep_dir=args.data_dir, customers=args.customers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fsd", description="fsd: a versioned feature store")
    parser.add_argument("--log-level", default=os.environ.get("FSD_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the daemon")
    serve.add_argument("--data-dir", default=None, help="default ./fsd-data")
    serve.add_argument("--host", default=None, help="default 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default 50051; 0 picks a free port")
    serve.add_argument("--config", default=None, help="TOML settings file (also FSD_CONFIG)")
    serve.add_argument("--port-file", default=None, help="write the bound port here once serving")
    serve.set_defaults(func=cmd_serve)

    for name, func, helptext in (
        ("plan", cmd_plan, "show what apply would change, per feature, without changing anything"),
        ("apply", cmd_apply, "apply a feature repo (folder or YAML file) to the daemon"),
        ("publish", cmd_publish, "publish a Parquet file to a feature group"),
        ("get", cmd_get, "read features for entities"),
        ("groups", cmd_groups, "list feature groups and features"),
        ("history", cmd_history, "versions, definition hashes, lineage and change history of a group or feature"),
        ("promote", cmd_promote, "make group:feature@N the SERVING version"),
        ("retire", cmd_retire, "retire group:feature@N (refused while a manifest pins it, unless --force)"),
        ("manifest", cmd_manifest, "model manifests: pinned feature versions"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--target", default=None, help="daemon address (default $FSD_TARGET or 127.0.0.1:50051)")
        p.set_defaults(func=func)
        if name in ("apply", "plan"):
            p.add_argument("path")
        if name in ("apply", "promote", "retire", "manifest"):
            p.add_argument("--by", default=None, help="who (recorded in history; default $USER)")
        if name in ("apply", "promote", "retire"):
            p.add_argument("--reason", default=None, help="why (recorded in history)")
        if name in ("promote", "retire"):
            p.add_argument("ref", help="group:feature@N")
            p.add_argument("--force", action="store_true", help="override a promotion gate / break pinning manifests (recorded)")
        if name == "history":
            p.add_argument("ref", help="group or group:feature")
        if name == "manifest":
            p.add_argument("manifest_command", choices=["create", "show", "list"])
            p.add_argument("name", nargs="?", default="")
            p.add_argument("--features", nargs="+", default=[], help="group:feature (pins the SERVING version) or group:feature@N")
            p.add_argument("--description", default=None)
        elif name == "publish":
            p.add_argument("group")
            p.add_argument("file")
            p.add_argument("--publish-id", default=None, help="reuse to resume/retry a publish idempotently")
            p.add_argument("--chunk-rows", type=int, default=20_000)
            p.add_argument("--quiet", action="store_true", help="no progress bar")
            p.add_argument("--version", action="append", help="FEATURE=N: write version N of that column (e.g. a PENDING one)")
        elif name == "get":
            p.add_argument("features", nargs="*", help="group:feature or group:feature@N (optional with --manifest)")
            p.add_argument("--entity", action="append", required=True, help="KEY=VALUE[,VALUE...]; repeat for composite keys")
            p.add_argument("--manifest", default=None, help="serve exactly the versions this manifest pins (name or name@N)")

    offline = sub.add_parser("offline", help="offline store: ingest Parquet/CSV, validated against the registry")
    offline.add_argument("action", choices=["ingest"])
    offline.add_argument("group")
    offline.add_argument("file")
    offline.add_argument("--kind", choices=["ingest", "backfill", "correction"], default="ingest", help="recorded in history")
    offline.add_argument("--version", action="append", help="FEATURE=N: write that version (default: SERVING)")
    offline.add_argument("--skip-bad-rows", action="store_true", help="write the valid rows even if some are rejected")
    offline.add_argument("--offline-root", default=None, help="default $FSD_OFFLINE_ROOT or ./fsd-offline")
    offline.add_argument("--target", default=None)
    offline.add_argument("--by", default=None)
    offline.set_defaults(func=cmd_offline)

    dataset = sub.add_parser("dataset", help="training datasets: point-in-time join + manifest")
    dataset.add_argument("action", choices=["create"])
    dataset.add_argument("--entities", required=True, help="Parquet/CSV with entity keys and event_timestamp (UTC-aware)")
    dataset.add_argument("--features", nargs="+", required=True)
    dataset.add_argument("--out", required=True)
    dataset.add_argument("--name", required=True, help="name of the serving manifest to register")
    dataset.add_argument("--as-of", default=None, help="ISO time with offset: only values created by then")
    dataset.add_argument("--offline-root", default=None)
    dataset.add_argument("--target", default=None)
    dataset.add_argument("--by", default=None)
    dataset.set_defaults(func=cmd_dataset)

    sync = sub.add_parser("sync", help="offline -> online: latest values per entity since the last successful sync")
    sync.add_argument("group", nargs="?", default="")
    sync.add_argument("--all", action="store_true", help="every group, each at its sync interval")
    sync.add_argument("--watch", action="store_true", help="keep running the scheduler (with --all)")
    sync.add_argument("--max-cycles", type=int, default=0, help="stop the watch after N scheduler cycles")
    sync.add_argument("--full", action="store_true", help="forced resync: ignore the watermark")
    sync.add_argument("--offline-root", default=None)
    sync.add_argument("--target", default=None)
    sync.set_defaults(func=cmd_sync)

    status = sub.add_parser("sync-status", help="sync runs per group, with success rate")
    status.add_argument("group", nargs="?", default="")
    status.add_argument("--limit", type=int, default=20)
    status.add_argument("--target", default=None)
    status.set_defaults(func=cmd_sync_status)

    incidents = sub.add_parser("incidents", help="review incidents (e.g. blocked entity-key mismatches)")
    incidents.add_argument("action", nargs="?", choices=["list", "resolve"], default="list")
    incidents.add_argument("id", nargs="?", default=None)
    incidents.add_argument("--all", action="store_true", help="include resolved incidents")
    incidents.add_argument("--note", default=None, help="resolution note")
    incidents.add_argument("--by", default=None)
    incidents.add_argument("--target", default=None)
    incidents.set_defaults(func=cmd_incidents)

    status_parser = sub.add_parser("status", help="freshness, sync and consistency per group (breaches flagged)")
    status_parser.add_argument("group", nargs="?", default="")
    status_parser.add_argument("--target", default=None)
    status_parser.set_defaults(func=cmd_status)

    validate = sub.add_parser("validate", help="compare sampled online values with the offline expectation")
    validate.add_argument("group")
    validate.add_argument("--sample", type=int, default=1000)
    validate.add_argument("--skew", action="store_true", help="also compute PSI of served vs offline values")
    validate.add_argument("--action", choices=["report", "mark_stale", "block", "resync"], default=None,
                          help="override the group's freshness_policy.on_inconsistency")
    validate.add_argument("--feature", default=None)
    validate.add_argument("--version", type=int, default=None)
    validate.add_argument("--target", default=None)
    validate.set_defaults(func=cmd_validate)

    backup = sub.add_parser("backup", help="consistent backup (RocksDB checkpoint + registry) under the daemon's backup root")
    backup.add_argument("name", help="a plain name; written to store.backup_root/NAME")
    backup.add_argument("--target", default=None)
    backup.set_defaults(func=cmd_backup)

    restore = sub.add_parser("restore", help="copy a backup into a new, empty data dir (daemon stopped)")
    restore.add_argument("backup", help="path of the backup folder")
    restore.add_argument("--data-dir", required=True)
    restore.set_defaults(func=cmd_restore)

    demo = sub.add_parser("demo", help="start a daemon on a temp dir, apply the fraud example, publish, query, stop")
    demo.add_argument("--data-dir", default=None, help="keep the demo data here instead of a temp dir")
    demo.add_argument("--customers", type=int, default=1000)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.log_level if args.command == "serve" else os.environ.get("FSD_LOG_LEVEL", "WARNING"))
    try:
        return int(args.func(args) or 0)
    except FsdError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)  # type: ignore[attr-defined]
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
