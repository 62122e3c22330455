"""The distributed mode's infrastructure: one Redis Cluster (3 masters + 3 replicas) and one PostgreSQL for the
whole evaluation, emptied between runs (a fresh registry database each run, FLUSHALL on every master)."""
from __future__ import annotations

import itertools
import shutil
import subprocess
import tempfile
from pathlib import Path

from fsd.dev import cluster


class SharedCluster:
    def __init__(self) -> None:
        if not shutil.which("redis-server") or not cluster.PG_BINDIR.exists():
            raise RuntimeError("the distributed mode needs redis-server and PostgreSQL 15 (.ci/run installs both)")
        self.root = Path(tempfile.mkdtemp(prefix="fsd-paper-eval-cluster-"))
        self.state = cluster.ClusterState(str(self.root), offline_root=str(self.root / "offline"))
        self.state.redis = cluster.create_redis_cluster(self.root, 3, 1, node_timeout_ms=2000)
        self.state.postgres = cluster.start_postgres(self.root)
        self._runs = itertools.count(1)
        self._pauses = itertools.count()

    @property
    def redis_nodes(self) -> str:
        return self.state.redis_nodes

    def fresh_registry(self) -> str:
        """An empty registry database for the next run, with every Redis key gone."""
        for node in self.state.redis:
            subprocess.run(["redis-cli", "-p", str(node["port"]), "FLUSHALL"], capture_output=True, timeout=30, check=False)
        name = f"run{next(self._runs)}"
        pg = self.state.postgres
        subprocess.run(cluster._as_postgres([str(Path(str(pg["bindir"])) / "createdb"), "-h", "127.0.0.1", "-p", str(pg["port"]),
                                             "-U", str(pg["user"]), name]), capture_output=True, text=True, timeout=60, check=True)
        return f"postgresql://{pg['user']}@127.0.0.1:{pg['port']}/{name}"

    def pause_a_master(self, millis: int) -> None:
        """One master stops taking commands for `millis` (CLIENT PAUSE ALL): calls that meet it wait, as for a failover."""
        from loadtests.paper_eval.fsd_modes import pause_master

        masters = [n for n in self.state.redis if n.get("role", "master") == "master"] or self.state.redis
        pause_master(int(masters[next(self._pauses) % len(masters)]["port"]), millis)

    def close(self) -> None:
        cluster.down(self.root, self.state)
        shutil.rmtree(str(self.state.postgres.get("data", "")) or self.root, ignore_errors=True)  # made by start_postgres for this run
        shutil.rmtree(self.root, ignore_errors=True)
