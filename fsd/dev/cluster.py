"""A local distributed deployment for trying fsd and for its tests: a Redis Cluster (masters with one replica
each, from the machine's redis-server), a PostgreSQL instance (initdb/pg_ctl; run as the `postgres` user when
fsd runs as root, since PostgreSQL refuses root) and N `fsd serve` replicas, all on loopback and free ports.
Everything started is recorded in DIR/cluster.json and stopped by PID. Production points the same settings
(store.engine, store.redis_nodes, registry.url) at its own Redis and PostgreSQL."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fsd.dev.ownership import identity, inside, private_folder, same_process

__all__ = ["ClusterState", "down", "identity", "private_folder", "same_process", "start_postgres", "stop_postgres", "up"]
from fsd.errors import FailedPrecondition, Unavailable

STATE_FILE = "cluster.json"
PG_BINDIR = Path("/usr/lib/postgresql/15/bin")
REDIS_CONF = """port {port}
bind 127.0.0.1
{auth}
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
    redis_password: str = ""  # fsd cluster up generates both; the tests' session servers run without
    postgres_password: str = ""

    @property
    def redis_nodes(self) -> str:
        return ",".join(f"127.0.0.1:{n['port']}" for n in self.redis)

    @property
    def registry_url(self) -> str:
        secret = f":{self.postgres_password}" if self.postgres_password else ""
        return f"postgresql://{self.postgres['user']}{secret}@127.0.0.1:{self.postgres['port']}/fsd"

    @property
    def targets(self) -> list[str]:
        return [f"127.0.0.1:{r['port']}" for r in self.replicas]

    def save(self) -> None:
        """Written 0600 (it holds the generated passwords), through a new temporary file renamed into place."""
        path = Path(self.dir, STATE_FILE)
        tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(self), indent=2))
        os.replace(tmp, path)

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


def _redis_auth(password: str) -> str:
    if not password:
        return "protected-mode no"  # the tests' throwaway servers
    return f"protected-mode yes\nrequirepass {password}\nmasterauth {password}"


def _redis_cli_env(password: str) -> dict[str, str]:
    return {**os.environ, "REDISCLI_AUTH": password} if password else dict(os.environ)


def start_redis_node(directory: Path, port: int, node_timeout_ms: int = 2000, password: str = "") -> int:
    node_dir = directory / f"redis-{port}"
    node_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    conf = node_dir / "redis.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(REDIS_CONF.format(port=port, dir=node_dir, node_timeout_ms=node_timeout_ms, auth=_redis_auth(password)))
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise FailedPrecondition("redis-server is not installed (Debian: apt-get install redis-server)")
    proc = subprocess.Popen([redis_server, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    _wait(lambda: _port_open(port), 15, f"redis-server on port {port}")
    return proc.pid


def create_redis_cluster(directory: Path, masters: int = 3, replicas_per_master: int = 1, node_timeout_ms: int = 2000,
                         password: str = "") -> list[dict[str, object]]:
    ports = []
    while len(ports) < masters * (1 + replicas_per_master):
        port = free_port()
        if port not in ports:
            ports.append(port)
    nodes = []
    for p in ports:
        pid = start_redis_node(directory, p, node_timeout_ms, password)
        nodes.append({"port": p, **(identity(pid) or {"pid": pid})})
    cli = shutil.which("redis-cli")
    if cli is None:
        raise FailedPrecondition("redis-cli is not installed (Debian: apt-get install redis-tools)")
    create = subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports], "--cluster-replicas", str(replicas_per_master),
                             "--cluster-yes"], capture_output=True, text=True, timeout=120, env=_redis_cli_env(password))
    if create.returncode != 0:
        raise Unavailable(f"redis-cli --cluster create failed: {create.stdout[-500:]} {create.stderr[-500:]}")
    _wait(lambda: _cluster_ok(ports[0], password), 60, "the Redis Cluster (cluster_state:ok)")
    _wait(lambda: _replicas_attached(ports, replicas_per_master, password), 60, "every Redis master's replicas (connected and in sync)")
    return nodes


def _replicas_attached(ports: list[int], per_master: int, password: str = "") -> bool:
    """Every master has its replicas connected and online (WAIT would otherwise count none)."""
    for port in ports:
        info = subprocess.run(["redis-cli", "-p", str(port), "info", "replication"], capture_output=True, text=True, timeout=10,
                              env=_redis_cli_env(password)).stdout
        if "role:master" in info and info.count("state=online") < per_master:
            return False
    return True


def _cluster_ok(port: int, password: str = "") -> bool:
    run = subprocess.run(["redis-cli", "-p", str(port), "cluster", "info"], capture_output=True, text=True, timeout=10, env=_redis_cli_env(password))
    return "cluster_state:ok" in run.stdout


# --- PostgreSQL --------------------------------------------------------------------------------------------------


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def start_postgres(directory: Path, port: int | None = None, password: str = "", inside_dir: bool = False) -> dict[str, object]:
    """initdb + pg_ctl start on loopback; as root, in a folder the postgres user owns: DIR/postgres when
    inside_dir (fsd cluster up makes DIR traversable by the postgres group for it), else a new folder under /tmp.
    With a password, every connection authenticates (scram-sha-256); without, trust (the tests' servers)."""
    bindir = PG_BINDIR if PG_BINDIR.exists() else Path(shutil.which("initdb") or "initdb").parent
    port = port or free_port()
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "fsd")
    data = directory / "postgres" if inside_dir or os.geteuid() != 0 else Path(tempfile.mkdtemp(prefix="fsd-pg-", dir="/tmp"))
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        os.chmod(data, 0o700)
    auth = ["--auth=trust"]
    pwfile = data / ".pwfile"
    if password:
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(password + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        auth = ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
    try:
        init = subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data / "data"), "-U", user, *auth, "-E", "UTF8"]),
                              capture_output=True, text=True, timeout=120)
    finally:
        pwfile.unlink(missing_ok=True)
    if init.returncode != 0:
        raise Unavailable(f"initdb failed: {init.stderr[-500:]}")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data} -c fsync=on -c max_connections=200"
    start = subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data / "data"), "-l", str(data / "postgres.log"), "-o", options,
                                         "-w", "-t", "60", "start"]), capture_output=True, text=True, timeout=120)
    if start.returncode != 0:
        raise Unavailable(f"pg_ctl start failed: {start.stderr[-500:]} {start.stdout[-500:]}")
    env = {**os.environ, "PGPASSWORD": password} if password else None
    created = subprocess.run(_as_postgres([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, "fsd"]),
                             capture_output=True, text=True, timeout=60, env=env)
    if created.returncode != 0 and "already exists" not in created.stderr:
        raise Unavailable(f"createdb failed: {created.stderr[-500:]}")
    pid = int((data / "data" / "postmaster.pid").read_text().split()[0])
    return {"port": port, "data": str(data), **(identity(pid) or {"pid": pid}), "user": user, "bindir": str(bindir)}


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
            **({"FSD_STORE_REDIS_PASSWORD": state.redis_password} if state.redis_password else {}), **(extra or {})}


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
    return {"index": index, "port": bound, **(identity(proc.pid) or {"pid": proc.pid}), "data_dir": str(data_dir),
            "metrics_port": int(metrics.read_text()) if metrics.exists() else 0}


def up(directory: str | Path, replicas: int = 2, redis_masters: int = 3, node_timeout_ms: int = 2000) -> ClusterState:
    """A local cluster in DIR: DIR is made private to this user (refused if it is someone else's or a symlink),
    PostgreSQL and Redis get generated passwords (scram-sha-256; requirepass with protected mode on), recorded in
    DIR/cluster.json (0600) and handed to the replicas."""
    root = Path(directory).absolute()
    if root.exists() and (root / STATE_FILE).exists():
        raise FailedPrecondition(f"{root} already has a cluster ({STATE_FILE}); fsd cluster down --dir {root} first")
    private_folder(root, create=True)
    state = ClusterState(str(root), offline_root=str(root / "offline"), redis_password=secrets.token_urlsafe(24),
                         postgres_password=secrets.token_urlsafe(24))
    try:
        state.redis = create_redis_cluster(root, redis_masters, 1, node_timeout_ms, password=state.redis_password)
        state.save()
        # PostgreSQL lives in DIR/postgres, except as root: PostgreSQL refuses root and runs as `postgres`, which a
        # private DIR keeps out, so its folder is a new /tmp one marked with a token recorded here — what down checks
        # before it deletes anything outside DIR.
        state.postgres = start_postgres(root, password=state.postgres_password, inside_dir=os.geteuid() != 0)
        state.postgres["owner_token"] = _mark(Path(str(state.postgres["data"])))
        state.save()
        for i in range(replicas):
            state.replicas.append(start_replica(state, i))
            state.save()
    except BaseException:
        down(root, state)
        raise
    return state


def _mark(folder: Path) -> str:
    token = secrets.token_hex(16)
    fd = os.open(folder / "fsd-owner", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token)
    return token


def _marked(folder: Path, token: object) -> bool:
    marker = folder / "fsd-owner"
    try:
        return bool(token) and not marker.is_symlink() and not folder.is_symlink() and marker.read_text() == token
    except OSError:
        return False


def _kill(recorded: dict[str, object], sig: int = signal.SIGTERM) -> bool:
    """Signal a recorded process only if it still is that process; whether it was signalled."""
    if not same_process(recorded):
        return False
    try:
        os.kill(int(recorded["pid"]), sig)  # type: ignore[arg-type]
        return True
    except ProcessLookupError:
        return False


def down(directory: str | Path, state: ClusterState | None = None) -> None:
    """Stop what `up` started — only processes whose PID, start time and executable are the recorded ones — and
    delete only folders inside DIR, which must be this user's own private folder."""
    root = Path(directory).absolute()
    if state is None:
        private_folder(root, create=False)
        state_file = root / STATE_FILE
        if state_file.is_symlink():
            raise FailedPrecondition(f"{state_file} is a symlink; fsd cluster trusts only its own file", field="dir")
        state = ClusterState.load(root)
    for replica in state.replicas:
        _kill(replica)
    for replica in state.replicas:
        deadline = time.monotonic() + 15
        while same_process(replica) and time.monotonic() < deadline:
            time.sleep(0.05)
        _kill(replica, signal.SIGKILL)
    if state.postgres:
        if same_process(state.postgres):
            stop_postgres(state.postgres)
        data = Path(str(state.postgres["data"]))
        if inside(root, data) or _marked(data, state.postgres.get("owner_token")):
            shutil.rmtree(data, ignore_errors=True)
    killed = [node for node in state.redis if _kill(node, signal.SIGKILL)]
    deadline = time.monotonic() + 10
    while any(same_process(node) for node in killed) and time.monotonic() < deadline:
        time.sleep(0.02)  # a signal is delivered asynchronously: down returns once they are gone
    for node in state.redis:
        node_dir = root / f"redis-{node['port']}"
        if inside(root, node_dir) and not node_dir.is_symlink():
            shutil.rmtree(node_dir, ignore_errors=True)
    (root / STATE_FILE).unlink(missing_ok=True)
