"""Verbs that run or look after a daemon: serve, demo, backup, restore, redis-migrate, the local cluster."""
from __future__ import annotations

import argparse
import logging
import os
import signal
from pathlib import Path

from fsd.cli.options import client_from

logger = logging.getLogger("fsd")


def cmd_serve(args: argparse.Namespace) -> int:
    from fsd.config import http_port, load_settings, worker_count

    settings = load_settings(
        args.config or os.environ.get("FSD_CONFIG"),
        overrides={"server": {"host": args.host, "port": args.port, "metrics_port": args.metrics_port, "workers": args.workers,
                              "http_port": None if args.http_port is None else str(args.http_port)},
                   "store": {"data_dir": args.data_dir}},
    )
    if worker_count(settings.server) > 1:
        from fsd.serving.supervisor import Supervisor

        daemon = Supervisor(settings)
    else:
        from fsd.serving.server import Daemon

        daemon = Daemon(settings)  # type: ignore[assignment]
    wanted_http = http_port(settings.server)
    if wanted_http is not None and (settings.server.tls_cert or settings.server.tls_key):
        from fsd.errors import InvalidArgument

        raise InvalidArgument("server.http_port: the HTTP endpoint has no TLS; with TLS on, serve gRPC only (or put HTTP behind a TLS proxy)",
                              field="server.http_port")
    port = daemon.start()
    gateway = None
    if wanted_http is not None:
        from fsd.serving.http_api import HttpGateway

        local = "127.0.0.1" if settings.server.host in ("0.0.0.0", "", "::") else settings.server.host
        gateway = HttpGateway(f"{local}:{port}", settings.server.host, wanted_http, settings.server.max_message_bytes)
        try:
            gateway.start()
        except OSError as exc:
            daemon.stop()
            raise SystemExit(f"fsd: the HTTP port {wanted_http} is not usable ({exc}); choose --http-port (0 picks a free one)") from None
        if args.port_file:
            _write_atomically(f"{args.port_file}.http", str(gateway.port))
    if args.port_file and daemon.metrics_port:
        _write_atomically(f"{args.port_file}.metrics", str(daemon.metrics_port))
    if args.port_file:
        _write_atomically(args.port_file, str(port))
    if daemon.metrics_port:
        metrics = f", metrics on :{daemon.metrics_port}/metrics, status page on http://{settings.server.metrics_host}:{daemon.metrics_port}/"
    elif settings.server.metrics:
        metrics = f"; METRICS AND STATUS PAGE DISABLED: port {settings.server.metrics_port} is taken (--metrics-port 0 picks a free one)"
    else:
        metrics = ""
    workers = f" with {worker_count(settings.server)} serving workers" if worker_count(settings.server) > 1 else ""
    http = f", Feast-compatible HTTP on http://{settings.server.host}:{gateway.port}/get-online-features" if gateway is not None else ""
    print(f"fsd serving on {settings.server.host}:{port}{workers}{metrics}{http}", flush=True)

    def _stop(signum: int, _frame: object) -> None:
        logger.info("signal %d: draining", signum)
        if gateway is not None:
            gateway.stop()
        daemon.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    daemon.wait()
    print("fsd stopped" if daemon.stopped_cleanly else "fsd stopped without waiting for busy handlers", flush=True)
    if not daemon.stopped_cleanly:  # a handler outlived the grace period: do not wait for it at interpreter exit
        logging.shutdown()
        os._exit(0)
    return 0


def _write_atomically(path: str, text: str) -> None:
    from fsd.paths import replace_file

    replace_file(Path(path), text.encode())


def cmd_backup(args: argparse.Namespace) -> int:
    with client_from(args) as client:
        info = client.backup(args.name)
    print(f"backup written to {info.path} (registry revision {info.registry_revision})")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from fsd.serving.backup import restore_backup
    from fsd.paths import confine

    restore_backup(confine(args.backup, "backup"), confine(args.data_dir, "data_dir"))
    print(f"restored {args.backup} into {args.data_dir}; start it with: fsd serve --data-dir {args.data_dir}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from fsd.dev.scaffold import init_repo

    root = init_repo(args.dir, customers=args.customers)
    print(f"wrote a feature repo to {root}: features/ (definitions), data/ (sample Parquet), README.md (the next five commands)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from fsd.dev.demo import run_demo

    targets = list(args.target or [])
    if args.cluster:
        from fsd.dev.cluster import ClusterState

        targets = ClusterState.load(args.cluster).targets
    return run_demo(keep_dir=args.data_dir, customers=args.customers, targets=targets or None)


def cmd_cluster(args: argparse.Namespace) -> int:
    from fsd.dev import cluster

    if args.action == "up":
        state = cluster.up(args.dir, replicas=args.replicas, redis_masters=args.redis_masters, node_timeout_ms=args.node_timeout_ms)
        print(f"local cluster in {state.dir}: Redis Cluster {state.redis_nodes} ({args.redis_masters} masters, 1 replica each), "
              f"PostgreSQL registry {state.registry_url}, offline store {state.offline_root}")
        for r in state.replicas:
            print(f"  fsd replica {r['index'] + 1}: 127.0.0.1:{r['port']} (pid {r['pid']}, metrics :{r['metrics_port']})")
        print(f"targets: {' '.join(state.targets)}\nnext: fsd demo --cluster {state.dir}; fsd replicas --target {state.targets[0]}; "
              f"fsd cluster down --dir {state.dir}")
    elif args.action == "down":
        cluster.down(args.dir)
        print(f"local cluster in {args.dir} stopped")
    else:
        state = cluster.ClusterState.load(args.dir)
        print(f"Redis Cluster {state.redis_nodes}\nPostgreSQL {state.registry_url}\ntargets {' '.join(state.targets)}")
    return 0


def cmd_redis_migrate(args: argparse.Namespace) -> int:
    """Rewrite a Redis Cluster's fsd keys from the layout before shard tags into the current one (replicas stopped)."""
    from fsd.online.redis.adapter import RedisClusterOnlineStore, RedisSettings, parse_nodes

    store = RedisClusterOnlineStore(RedisSettings(parse_nodes(args.redis_nodes), args.redis_password or os.environ.get("FSD_STORE_REDIS_PASSWORD", "")),
                                    check_layout=False)
    try:
        moved = store.migrate_layout()
    finally:
        store.close()
    print(f"{moved} keys rewritten into the current layout; the cluster is marked, replicas may start")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, connection: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    serve = sub.add_parser("serve", parents=[common], help="run the daemon", description="Run the fsd daemon in the foreground.")
    serve.add_argument("--data-dir", default=None, help="data directory (default ./fsd-data)")
    serve.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="gRPC port (default 50051; 0 picks a free port)")
    serve.add_argument("--config", default=None, help="TOML settings file (also $FSD_CONFIG)")
    serve.add_argument("--port-file", default=None, help="write the bound port here once serving")
    serve.add_argument("--workers", default=None, help="serving processes sharing the port: a number, or auto (the usable cores); default 1 "
                       "(also server.workers, $FSD_SERVER_WORKERS)")
    serve.add_argument("--metrics-port", type=int, default=None, help="HTTP port of /metrics and the status page / (default 9464; 0 picks a free port, printed)")
    serve.add_argument("--http-port", type=int, default=None, help="also serve Feast's HTTP/JSON API (POST /get-online-features, /push) on this "
                       "port; 0 picks a free one (also server.http_port; default off)")
    serve.set_defaults(func=cmd_serve)  # WARNING like every verb (--log-level INFO for the start-up details)

    backup = sub.add_parser("backup", parents=[common, connection], help="consistent backup (RocksDB checkpoint + registry)")
    backup.add_argument("name", help="a plain name; written to store.backup_root/NAME")
    backup.set_defaults(func=cmd_backup)

    restore = sub.add_parser("restore", parents=[common], help="copy a backup into a new, empty data dir (daemon stopped)")
    restore.add_argument("backup", help="path of the backup folder")
    restore.add_argument("--data-dir", required=True, help="the empty data dir to restore into")
    restore.set_defaults(func=cmd_restore)

    init = sub.add_parser("init", parents=[common], help="write a feature repo with sample data to start from")
    init.add_argument("dir", nargs="?", default="fsd-repo", help="the new folder (default ./fsd-repo)")
    init.add_argument("--customers", type=int, default=1000, help="customers in the sample data (default 1000)")
    init.set_defaults(func=cmd_init)

    demo = sub.add_parser("demo", parents=[common], help="start a daemon on a temp dir, apply the fraud example, publish, query, stop")
    demo.add_argument("--data-dir", default=None, help="keep the demo data here instead of a temp dir")
    demo.add_argument("--customers", type=int, default=1000, help="how many customers to generate (default 1000)")
    demo.add_argument("--cluster", default=None, help="run against the replicas of a local cluster (fsd cluster up --dir DIR)")
    demo.add_argument("--target", action="append", default=None, help="run against this running daemon (repeat: write via the first, read via each)")
    demo.set_defaults(func=cmd_demo)

    migrate = sub.add_parser("redis-migrate", parents=[common], help="rewrite a Redis Cluster's keys from an older fsd layout (replicas stopped)")
    migrate.add_argument("--redis-nodes", required=True, help="seed nodes host:port,host:port,...")
    migrate.add_argument("--redis-password", default="", help="the cluster's password (also $FSD_STORE_REDIS_PASSWORD)")
    migrate.set_defaults(func=cmd_redis_migrate)

    cluster = sub.add_parser("cluster", parents=[common], help="a local distributed deployment: Redis Cluster + PostgreSQL + fsd replicas")
    cluster.add_argument("action", choices=["up", "down", "status"], help="up: start everything; down: stop it by PID; status: show it")
    cluster.add_argument("--dir", required=True, help="folder holding the cluster's data and cluster.json")
    cluster.add_argument("--replicas", type=int, default=2, help="fsd replicas to start (default 2)")
    cluster.add_argument("--redis-masters", type=int, default=3, help="Redis masters, each with one replica (default 3)")
    cluster.add_argument("--node-timeout-ms", type=int, default=2000, help="Redis cluster-node-timeout (failover speed; default 2000)")
    cluster.set_defaults(func=cmd_cluster)
