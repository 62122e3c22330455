"""Shared fixtures: real daemons on free loopback ports, temp data dirs, the example repo."""
from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from fsd.client import Client
from fsd.examples import FRAUD_REPO
from fsd.registry.definitions import load_repo
from tests.daemon_process import DaemonProcess

# Shared, noisy 2-core machines: no per-example deadlines (speed is measured in loadtests/, not here).
settings.register_profile("fsd", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("fsd")

TYPES_REPO = """
feature_groups:
  - name: all_types
    entity_keys: [{name: entity_id, type: int64}]
    max_age: 1h
    features:
      - {name: f_int, dtype: int64}
      - {name: f_double, dtype: double}
      - {name: f_float, dtype: float}
      - {name: f_bool, dtype: bool}
      - {name: f_string, dtype: string}
      - {name: f_bytes, dtype: bytes}
      - {name: f_vec, dtype: float_vector, vector_dim: 3}
      - {name: f_required, dtype: int64, nullable: false}
  - name: pairs
    entity_keys: [{name: user, type: string}, {name: item_id, type: int64}]
    features:
      - {name: score, dtype: double, nullable: false}
"""


@pytest.fixture
def daemon_workers() -> int:
    """Serving processes of the test daemons (a module runs its tests against `fsd serve --workers 2` too by
    overriding this fixture with params)."""
    return 1


@pytest.fixture
def daemon_factory(tmp_path: Path, daemon_workers: int) -> Iterator:  # type: ignore[type-arg]
    started: list[DaemonProcess] = []

    def make(name: str = "data", **kwargs: object) -> DaemonProcess:
        kwargs.setdefault("workers", daemon_workers)
        daemon = DaemonProcess(tmp_path / name, **kwargs)  # type: ignore[arg-type]
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        daemon.stop()


@pytest.fixture
def daemon(daemon_factory) -> DaemonProcess:  # type: ignore[no-untyped-def]
    return daemon_factory().start()


@pytest.fixture
def client(daemon: DaemonProcess) -> Iterator[Client]:
    with Client(daemon.target, timeout=30) as c:
        yield c


@pytest.fixture
def typed_client(client: Client, tmp_path: Path) -> Client:
    repo = tmp_path / "types.yaml"
    repo.write_text(TYPES_REPO)
    client.apply(load_repo(repo))
    return client


@pytest.fixture
def fraud_client(client: Client) -> Client:
    client.apply(load_repo(FRAUD_REPO))
    return client


# --- distributed mode: one Redis Cluster and one PostgreSQL per test session ------------------------------------


@pytest.fixture(params=[1, 2], ids=["one-process", "two-workers"])
def both_serving_modes(request: pytest.FixtureRequest) -> int:
    """For modules whose suites must hold whatever the serving processes: `daemon_workers = both_serving_modes`."""
    return int(request.param)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """One PostgreSQL 15 server on a free loopback port for the whole test session (stopped by its own pg_ctl)."""
    from fsd.dev import cluster

    if not cluster.PG_BINDIR.exists():
        pytest.skip("needs PostgreSQL 15 (.ci/run installs it)")
    server = cluster.start_postgres(tmp_path_factory.mktemp("postgres"))
    try:
        yield server
    finally:
        cluster.stop_postgres(server)
        shutil.rmtree(str(server["data"]), ignore_errors=True)  # the folder start_postgres made for this session


def new_database(server: dict[str, object]) -> str:
    """A fresh, empty database on the session's PostgreSQL; its URL."""
    import psycopg

    name = f"fsd_{next(_DATABASES)}"
    with psycopg.connect(f"postgresql://{server['user']}@127.0.0.1:{server['port']}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql://{server['user']}@127.0.0.1:{server['port']}/{name}"


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory, postgres: dict[str, object]) -> Iterator[object]:
    """3 masters + 3 replicas (cluster-node-timeout 2 s) on free loopback ports, with the session's PostgreSQL beside them."""
    import dataclasses
    import shutil as _shutil

    from fsd.dev import cluster

    if not _shutil.which("redis-server"):
        pytest.skip("needs redis-server (apt-get install redis-server; .ci/run installs it)")
    root = tmp_path_factory.mktemp("cluster")
    state = cluster.ClusterState(str(root), offline_root=str(root / "offline"))
    try:
        state.redis = cluster.create_redis_cluster(root, 3, 1, node_timeout_ms=2000)
        state.postgres = postgres
        state.save()
        yield state
    finally:
        cluster.down(root, dataclasses.replace(state, postgres={}))  # the postgres fixture stops its server


@pytest.fixture
def deployment(redis_cluster, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh deployment on the session's servers: an empty Redis Cluster, a new registry database, an offline
    store of its own; `start(n)` starts replicas (stopped by PID after the test)."""
    import dataclasses

    import redis

    from fsd.dev import cluster

    for node in redis_cluster.redis:
        client = redis.Redis(port=int(node["port"]))
        try:
            if client.execute_command("ROLE")[0] == b"master":
                client.flushall()
        except redis.RedisError:
            pass
        client.close()
    url = new_database(redis_cluster.postgres)
    state = dataclasses.replace(redis_cluster, dir=str(tmp_path), replicas=[], offline_root=str(tmp_path / "offline"))

    class Deployment:
        def __init__(self) -> None:
            self.state = state
            self.cluster = redis_cluster
            self.url = url
            self.started: list[dict[str, object]] = []
            self._index = itertools.count()

        def start(self, count: int = 1, env: dict[str, str] | None = None) -> list[str]:
            targets = []
            for _ in range(count):
                extra = {"FSD_REGISTRY_URL": url, "FSD_MONITOR_MIN_PROMOTION_CONSISTENCY": "0", "FSD_MONITOR_FRESHNESS_INTERVAL_SECONDS": "0.5",
                         **(env or {})}
                replica = cluster.start_replica(state, next(self._index), extra)
                self.started.append(replica)
                targets.append(f"127.0.0.1:{replica['port']}")
            return targets

        def kill(self, target: str, sig: int = 9) -> None:
            import os

            replica = next(r for r in self.started if f"127.0.0.1:{r['port']}" == target)
            os.kill(int(replica["pid"]), sig)

        def stop_all(self) -> None:
            import os
            import signal
            import time

            for r in self.started:
                try:
                    os.kill(int(r["pid"]), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)

    made = Deployment()
    yield made
    made.stop_all()


_DATABASES = itertools.count(1)  # one registry database per distributed-mode test


@pytest.fixture(scope="session")
def spark():  # type: ignore[no-untyped-def]
    """One local Spark session (local[2]) for the whole test session: starting one takes seconds."""
    from fsd.offline.spark_engine import spark_session

    session = spark_session()
    yield session
    session.stop()
