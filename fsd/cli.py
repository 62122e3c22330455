"""The `fsd` command: serve, apply, publish, get, groups, demo."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
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
    if args.port_file:
        tmp = f"{args.port_file}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(str(port))
        os.replace(tmp, args.port_file)
    print(f"fsd serving on {settings.server.host}:{port}", flush=True)

    def _stop(signum: int, _frame: object) -> None:
        logger.info("signal %d: draining", signum)
        daemon.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    daemon.wait()
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from fsd.client import Client
    from fsd.registry.definitions import load_repo

    groups = load_repo(args.path)
    with Client(_target(args)) as client:
        response = client.apply(groups, applied_by=args.by or os.environ.get("USER", ""), reason=args.reason or "")
    from fsd.tables import render

    rows = [(c.group, c.feature or "(group)", c.action, c.version or "", c.detail) for c in response.changes]
    print(render(["group", "feature", "action", "version", "detail"], rows))
    print(f"registry revision {response.revision}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq
    from tqdm import tqdm

    from fsd.client import Client

    table = pq.read_table(args.file)
    with Client(_target(args)) as client, tqdm(total=table.num_rows, unit="rows", disable=args.quiet or None) as bar:
        response = client.publish(args.group, table, publish_id=args.publish_id, chunk_rows=args.chunk_rows, on_chunk=bar.update)
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
    from fsd.tables import render

    with Client(_target(args)) as client:
        key_types: dict[str, int] = {}
        for ref in args.features:
            group = client.get_group(FeatureRef.parse(ref).group)
            key_types.update({k.name: k.type for k in group.definition.entity_keys})
        entities = _parse_entities(args.entity, key_types)
        result = client.get_features(args.features, entities)
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
        ("apply", cmd_apply, "apply a feature repo (folder or YAML file) to the daemon"),
        ("publish", cmd_publish, "publish a Parquet file to a feature group"),
        ("get", cmd_get, "read features for entities"),
        ("groups", cmd_groups, "list feature groups and features"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--target", default=None, help="daemon address (default $FSD_TARGET or 127.0.0.1:50051)")
        p.set_defaults(func=func)
        if name == "apply":
            p.add_argument("path")
            p.add_argument("--by", default=None, help="who applies (recorded in history)")
            p.add_argument("--reason", default=None, help="why (recorded in history)")
        elif name == "publish":
            p.add_argument("group")
            p.add_argument("file")
            p.add_argument("--publish-id", default=None, help="reuse to resume/retry a publish idempotently")
            p.add_argument("--chunk-rows", type=int, default=20_000)
            p.add_argument("--quiet", action="store_true", help="no progress bar")
        elif name == "get":
            p.add_argument("features", nargs="+", help="group:feature or group:feature@N")
            p.add_argument("--entity", action="append", required=True, help="KEY=VALUE[,VALUE...]; repeat for composite keys")

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
