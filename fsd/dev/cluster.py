"""A local distributed deployment for trying fsd and for its tests: a Redis Cluster (masters with one replica
each, from the machine's redis-server), a PostgreSQL instance (initdb/pg_ctl; run as the `postgres` user when
fsd runs as root, since PostgreSQL refuses root) and N `fsd serve` replicas, all on loopback and free ports.
Everything started is recorded in DIR/cluster.json and stopped by PID. Production points the same settings
(store.engine, store.redis_nodes, registry.url) at its own Redis and PostgreSQL."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fsd.errors import FailedPrecondition, Unavailable

STATE_FILE = "cluster.json"
PG_BINDIR = Path("/usr/lib/postgresql/15/bin")
REDIS_CONF = """port {port}
bind 127.0.0.1
protected-mode no
cluster-enabled yes
cluster-config-file nodes-{port}.conf
cluster-node-timeout {node_timeout_ms}
cluster-require-full-coverage no
appendonly yes
appendfsync always
save ""
dir {dir}
logfile {dir}/redis.log
daemonize no
"""


@dataclass
class ClusterState:
    dir: str
    redis: list[dict[str, object]] = field(default_factory=list)  # {port, pid, role}
    postgres: dict[str, object] = field(default_factory=dict)  # {port, data, pid, user}
    replicas: list[dict[str, object]] = field(default_factory=list)  # {port, pid, data_dir, metrics_port}
    offline_root: str = ""

    @property
    def redis_nodes(self) -> str:
        return ",".join(f"127.0.0.1:{n['port']}" for n in self.redis)

    @property
    def registry_url(self) -> str:
        return f"postgresql://{self.postgres['user']}@127.0.0.1:{self.postgres['port']}/fsd"

    @property
    def targets(self) -> list[str]:
        return [f"127.0.0.1:{r['port']}" for r in self.replicas]

    def save(self) -> None:
        Path(self.dir, STATE_FILE).write_text(json.dumps(asdict(self), indent=2))

    @staticmethod
    def load(directory: str | Path) -> ClusterState:
        path = Path(directory, STATE_FILE)
        if not path.exists():
            raise FailedPrecondition(f"no local cluster recorded in {directory} (no {STATE_FILE}); start one with fsd cluster up --dir {directory}")
        return ClusterState(**json.loads(path.read_text()))


def free_port(below: int = 55_000) -> int:
    """A free loopback port below `below` (Redis's cluster bus uses port + 10000, which must exist too)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < below and _free(port + 10_000):
            return port
    raise Unavailable("no free loopback port pair found for a Redis node")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise Unavailable(f"{what} did not come up within {timeout:.0f} s")
        time.sleep(0.1)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- Redis Cluster ---------------------------------------------------------------------------------------------


def start_redis_node(directory: Path, port: int, node_timeout_ms: int = 2000) -> int:
    node_dir = directory / f"redis-{port}"
    node_dir.mkdir(parents=True, exist_ok=True)
    conf = node_dir / "redis.conf"
    conf.write_text(REDIS_CONF.format(port=port, dir=node_dir, node_timeout_ms=node_timeout_ms))
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise FailedPrecondition("redis-server is not installed (Debian: apt-get install redis-server)")
    proc = subprocess.Popen([redis_server, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    _wait(lambda: _port_open(port), 15, f"redis-server on port {port}")
    return proc.pid


def create_redis_cluster(directory: Path, masters: int = 3, replicas_per_master: int = 1, node_timeout_ms: int = 2000) -> list[dict[str, object]]:
    ports = []
    while len(ports) < masters * (1 + replicas_per_master):
        port = free_port()
        if port not in ports:
            ports.append(port)
    nodes = [{"port": p, "pid": start_redis_node(directory, p, node_timeout_ms)} for p in ports]
    cli = shutil.which("redis-cli")
    if cli is None:
        raise FailedPrecondition("redis-cli is not installed (Debian: apt-get install redis-tools)")
    create = subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports], "--cluster-replicas", str(replicas_per_master),
                             "--cluster-yes"], capture_output=True, text=True, timeout=120)
    if create.returncode != 0:
        raise Unavailable(f"redis-cli --cluster create failed: {create.stdout[-500:]} {create.stderr[-500:]}")
    _wait(lambda: _cluster_ok(ports[0]), 60, "the Redis Cluster (cluster_state:ok)")
    _wait(lambda: _replicas_attached(ports, replicas_per_master), 60, "every Redis master's replicas (connected and in sync)")
    return nodes


def _replicas_attached(ports: list[int], per_master: int) -> bool:
    """Every master has its replicas connected and online (WAIT would otherwise count none)."""
    for port in ports:
        info = subprocess.run(["redis-cli", "-p", str(port), "info", "replication"], capture_output=True, text=True, timeout=10).stdout
        if "role:master" in info and info.count("state=online") < per_master:
            return False
    return True


def _cluster_ok(port: int) -> bool:
    run = subprocess.run(["redis-cli", "-p", str(port), "cluster", "info"], capture_output=True, text=True, timeout=10)
    return "cluster_state:ok" in run.stdout


# --- PostgreSQL --------------------------------------------------------------------------------------------------


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def start_postgres(directory: Path, port: int | None = None) -> dict[str, object]:
    """initdb + pg_ctl start on loopback; as root, in a folder the postgres user owns (outside DIR when DIR's
    parents are not traversable by it)."""
    bindir = PG_BINDIR if PG_BINDIR.exists() else Path(shutil.which("initdb") or "initdb").parent
    port = port or free_port()
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "fsd")
    data = Path(tempfile.mkdtemp(prefix="fsd-pg-", dir="/tmp")) if os.geteuid() == 0 else directory / "postgres"
    data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        os.chmod(data, 0o700)
    init = subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data / "data"), "-U", user, "--auth=trust", "-E", "UTF8"]),
                          capture_output=True, text=True, timeout=120)
    if init.returncode != 0:
        raise Unavailable(f"initdb failed: {init.stderr[-500:]}")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data} -c fsync=on -c max_connections=200"
    start = subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data / "data"), "-l", str(data / "postgres.log"), "-o", options,
                                         "-w", "-t", "60", "start"]), capture_output=True, text=True, timeout=120)
    if start.returncode != 0:
        raise Unavailable(f"pg_ctl start failed: {start.stderr[-500:]} {start.stdout[-500:]}")
    created = subprocess.run(_as_postgres([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, "fsd"]),
                             capture_output=True, text=True, timeout=60)
    if created.returncode != 0 and "already exists" not in created.stderr:
        raise Unavailable(f"createdb failed: {created.stderr[-500:]}")
    pid = int((data / "data" / "postmaster.pid").read_text().split()[0])
    return {"port": port, "data": str(data), "pid": pid, "user": user, "bindir": str(bindir)}


def stop_postgres(pg: dict[str, object], mode: str = "fast") -> None:
    bindir = Path(str(pg.get("bindir") or PG_BINDIR))
    subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(Path(str(pg["data"])) / "data"), "-m", mode, "-w", "stop"]),
                   capture_output=True, text=True, timeout=60)


def restart_postgres(pg: dict[str, object]) -> None:
    bindir = Path(str(pg.get("bindir") or PG_BINDIR))
    data = Path(str(pg["data"]))
    options = f"-c listen_addresses=127.0.0.1 -p {pg['port']} -k {data} -c fsync=on -c max_connections=200"
    subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data / "data"), "-l", str(data / "postgres.log"), "-o", options,
                                 "-w", "-t", "60", "start"]), capture_output=True, text=True, timeout=120, check=True)


# --- fsd replicas ------------------------------------------------------------------------------------------------


def replica_env(state: ClusterState, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "FSD_STORE_ENGINE": "redis-cluster", "FSD_STORE_REDIS_NODES": state.redis_nodes,
            "FSD_REGISTRY_URL": state.registry_url, "FSD_STORE_OFFLINE_ROOT": state.offline_root, "FSD_SERVER_METRICS_PORT": "0",
            **(extra or {})}


def start_replica(state: ClusterState, index: int, extra_env: dict[str, str] | None = None, port: int = 0) -> dict[str, object]:
    data_dir = Path(state.dir) / f"replica-{index}"
    data_dir.mkdir(parents=True, exist_ok=True)
    port_file = data_dir / "port"
    port_file.unlink(missing_ok=True)
    log = open(data_dir / "fsd.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "fsd.cli", "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port),
                             "--port-file", str(port_file)], stdout=log, stderr=subprocess.STDOUT, env=replica_env(state, extra_env),
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not port_file.exists():
        if proc.poll() is not None:
            raise Unavailable(f"fsd replica {index} exited with {proc.returncode}: {(data_dir / 'fsd.log').read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise Unavailable(f"fsd replica {index} did not start: {(data_dir / 'fsd.log').read_text()[-2000:]}")
        time.sleep(0.05)
    bound = int(port_file.read_text())
    metrics = data_dir / "port.metrics"
    return {"index": index, "port": bound, "pid": proc.pid, "data_dir": str(data_dir),
            "metrics_port": int(metrics.read_text()) if metrics.exists() else 0}


def up(directory: str | Path, replicas: int = 2, redis_masters: int = 3, node_timeout_ms: int = 2000) -> ClusterState:
    root = Path(directory).resolve()
    root.mkdir(parents=True, exist_ok=True)
    if (root / STATE_FILE).exists():
        raise FailedPrecondition(f"{root} already has a cluster ({STATE_FILE}); fsd cluster down --dir {root} first")
    state = ClusterState(str(root), offline_root=str(root / "offline"))
    try:
        state.redis = create_redis_cluster(root, redis_masters, 1, node_timeout_ms)
        state.save()
        state.postgres = start_postgres(root)
        state.save()
        for i in range(replicas):
            state.replicas.append(start_replica(state, i))
            state.save()
    except BaseException:
        down(root, state)
        raise
    return state


def _kill(pid: int, sig: int = signal.SIGTERM) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def down(directory: str | Path, state: ClusterState | None = None) -> None:
    state = state or ClusterState.load(directory)
    for replica in state.replicas:
        _kill(int(replica["pid"]))  # type: ignore[arg-type]
    for replica in state.replicas:
        deadline = time.monotonic() + 15
        while _alive(int(replica["pid"])) and time.monotonic() < deadline:  # type: ignore[arg-type]
            time.sleep(0.05)
        _kill(int(replica["pid"]), signal.SIGKILL)  # type: ignore[arg-type]
    if state.postgres:
        stop_postgres(state.postgres)
        shutil.rmtree(str(state.postgres["data"]), ignore_errors=True)
    for node in state.redis:
        _kill(int(node["pid"]), signal.SIGKILL)  # type: ignore[arg-type]
    Path(state.dir, STATE_FILE).unlink(missing_ok=True)
