"""Online keys written by an older fsd (entity hash tags) are refused at start with what to do, and
`fsd redis-migrate` rewrites them into the shard-tag layout without losing a value."""
from __future__ import annotations

import subprocess
import sys

import pytest

from fsd import codec
from fsd.errors import FailedPrecondition
from fsd.online.redis.adapter import LAYOUT_KEY, RedisClusterOnlineStore, RedisSettings


def _empty(state) -> None:  # type: ignore[no-untyped-def]
    import redis

    for node in state.redis:
        client = redis.Redis(port=int(node["port"]))
        try:
            if client.execute_command("ROLE")[0] == b"master":
                client.flushall()
        finally:
            client.close()


def test_an_old_layout_is_refused_then_migrated_without_loss(redis_cluster) -> None:  # type: ignore[no-untyped-def]
    from redis.cluster import ClusterNode, RedisCluster

    _empty(redis_cluster)
    seed = int(redis_cluster.redis[0]["port"])
    keys = codec.entity_keys(3, codec.encode_entities([[f"user-{i}" + "}" * (i % 3) for i in range(200)]], [True]))
    old = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", seed)])
    try:
        for i, key in enumerate(keys):  # the layout before shard tags
            old.set(b"\x01{" + key[5:] + b"}" + key[1:5], f"row-{i}".encode())
        old.set(b"\x00marker", b"m")
        with pytest.raises(FailedPrecondition) as refused:
            RedisClusterOnlineStore(RedisSettings((("127.0.0.1", seed),)))
        assert "fsd redis-migrate" in refused.value.message
        nodes = ",".join(f"127.0.0.1:{n['port']}" for n in redis_cluster.redis)
        done = subprocess.run([sys.executable, "-m", "fsd.cli", "redis-migrate", "--redis-nodes", nodes], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        assert "201 keys rewritten" in done.stdout
        again = subprocess.run([sys.executable, "-m", "fsd.cli", "redis-migrate", "--redis-nodes", nodes], capture_output=True, text=True,
                               timeout=120)
        assert again.returncode == 0 and "0 keys rewritten" in again.stdout  # idempotent
        store = RedisClusterOnlineStore(RedisSettings((("127.0.0.1", seed),)))
        try:
            assert store.get_many(keys) == [f"row-{i}".encode() for i in range(len(keys))]
            assert store.get_many([b"marker"]) == [b"m"]
        finally:
            store.close()
        assert old.get(LAYOUT_KEY) == b"2"
    finally:
        old.close()
        _empty(redis_cluster)


def test_an_empty_cluster_is_marked_with_the_current_layout(redis_cluster) -> None:  # type: ignore[no-untyped-def]
    _empty(redis_cluster)
    store = RedisClusterOnlineStore(RedisSettings((("127.0.0.1", int(redis_cluster.redis[0]["port"])),)))
    try:
        store.write_batch([(b"k", b"v")])
        reopened = RedisClusterOnlineStore(RedisSettings((("127.0.0.1", int(redis_cluster.redis[0]["port"])),)))
        assert reopened.get_many([b"k"]) == [b"v"]  # a marked cluster with data starts
        reopened.close()
    finally:
        store.close()


def test_another_applications_keys_do_not_block_a_new_deployment(redis_cluster) -> None:  # type: ignore[no-untyped-def]
    from redis.cluster import ClusterNode, RedisCluster

    _empty(redis_cluster)
    seed = int(redis_cluster.redis[0]["port"])
    other = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", seed)])
    try:
        other.set(b"session:42", b"someone else's")
        store = RedisClusterOnlineStore(RedisSettings((("127.0.0.1", seed),)))
        store.close()
        assert other.get(LAYOUT_KEY) == b"2" and other.get(b"session:42") == b"someone else's"
    finally:
        other.close()
        _empty(redis_cluster)
