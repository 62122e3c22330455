"""The one place a deployment's storage is chosen and opened: the online engine the settings name (each engine
with its own settings class), the registry its URL names, and the offline store recorded in that registry.
Nothing else reads `store.engine` or a registry URL; the daemon gets the opened parts and asks them for optional
capabilities (fsd.online.base.Backupable, Warmable) instead of testing for a class."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fsd import __version__, codec
from fsd.config import Settings, StoreSettings
from fsd.domain import Clock, Deployment
from fsd.errors import FailedPrecondition
from fsd.offline.store import OfflineStore
from fsd.online.base import OnlineStore
from fsd.paths import confine
from fsd.registry.registry import Registry


def _rocksdb(st: StoreSettings, data_dir: Path, secondary: str = "") -> OnlineStore:
    from fsd.online.rocksdb import RocksDbOnlineStore, RocksDbSettings

    return RocksDbOnlineStore(str(data_dir / "online"), RocksDbSettings(
        block_cache_mb=st.block_cache_mb, bloom_bits_per_key=st.bloom_bits_per_key, sync_writes=st.sync_writes, wal_dir=st.wal_dir,
        row_cache_mb=st.row_cache_mb,
    ), secondary=secondary)


def _redis_cluster(st: StoreSettings, data_dir: Path, secondary: str = "") -> OnlineStore:
    from fsd.online.redis.adapter import RedisClusterOnlineStore, RedisSettings, parse_nodes

    return RedisClusterOnlineStore(RedisSettings(parse_nodes(st.redis_nodes), st.redis_password, st.redis_tls, st.redis_min_replicas_ack,
                                                 st.redis_timeout_seconds, st.redis_wait_timeout_ms))


# engine name (store.engine) -> how to open it from the store settings; config.ENGINES lists the same names
ONLINE_ENGINES: dict[str, Callable[[StoreSettings, Path, str], OnlineStore]] = {"rocksdb": _rocksdb, "redis-cluster": _redis_cluster}


def open_online_store(settings: Settings, data_dir: Path, reader_dir: str = "") -> OnlineStore:
    """The online engine the settings name: embedded RocksDB in the data dir, or a shared Redis Cluster. reader_dir:
    a serving worker's own folder; an embedded engine is then opened beside its writer as a read-only secondary."""
    return ONLINE_ENGINES[settings.store.engine](settings.store, data_dir, reader_dir)


def open_registry(settings: Settings, data_dir: Path, clock: Clock) -> Registry:
    """The registry its URL names (default: SQLite in the data dir)."""
    return Registry(settings.registry.url or str(data_dir / "registry.sqlite"), clock)


def claim_offline_root(settings: Settings, data_dir: Path, registry: Registry) -> Deployment:
    """The deployment's offline store: resolved once to an absolute path and recorded in the registry, so every
    process that asks the daemon uses the same one wherever it was started. A configured root that differs from
    the recorded one is refused, naming both."""
    configured = settings.store.offline_root
    wanted = confine(configured or data_dir / "offline", "store.offline_root")
    recorded = registry.store.claim_deployment("offline_root", str(wanted))
    if configured and recorded != str(wanted):
        raise FailedPrecondition(
            f"store.offline_root {configured!r} resolves to {wanted}, but this deployment's offline store is {recorded} "
            "(recorded in its registry); leave store.offline_root unset to use it", field="store.offline_root",
        )
    return Deployment(recorded, settings.store.engine, registry.store.kind, __version__, codec.NATIVE, "fsd.v1", str(data_dir))


@dataclass
class OpenedStorage:
    """A deployment's storage, open: what the daemon serves from."""

    data_dir: Path
    online: OnlineStore
    registry: Registry
    offline: OfflineStore
    info: Deployment

    def close(self) -> None:
        self.online.close()
        self.registry.close()


def open_storage(settings: Settings, clock: Clock) -> OpenedStorage:
    """Confine and create the data dir, then open the online engine, the registry and the recorded offline store."""
    data_dir = confine(settings.store.data_dir, "store.data_dir")
    for name in ("offline_root", "backup_root", "wal_dir"):
        if getattr(settings.store, name):
            confine(getattr(settings.store, name), f"store.{name}")
    data_dir.mkdir(parents=True, exist_ok=True)
    online = open_online_store(settings, data_dir)
    try:
        registry = open_registry(settings, data_dir, clock)
        info = claim_offline_root(settings, data_dir, registry)
    except BaseException:
        online.close()
        raise
    return OpenedStorage(data_dir, online, registry, OfflineStore(info.offline_root), info)
