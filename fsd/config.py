"""One strict settings object: defaults < TOML file < FSD_* environment < command-line flags; unknown keys are errors."""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from fsd.errors import InvalidArgument
from fsd.registry.sql.store import registry_kind


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 50051
    max_workers: int = 2  # GetFeatures threads; other calls have their own pool (fsd/serving/grpc_server.py says why)
    max_concurrent_rpcs: int = 64
    max_message_bytes: int = 64 * 1024 * 1024
    grace_seconds: float = 10.0
    reflection: bool = True
    tokens_file: str = ""  # JSON bearer tokens with scopes; empty: no authentication (loopback default)
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""  # set: mutual TLS, clients must present a certificate signed by this CA
    metrics: bool = True  # Prometheus /metrics over HTTP on metrics_host
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464  # 0: any free port (printed at start)
    workers: str = "1"  # serving processes sharing the port: a number, or "auto" (the usable cores); 1: this process alone
    http_port: str = ""  # the Feast-compatible HTTP/JSON endpoint on `host`: a port, "0" any free one (printed); empty: off


@dataclass(frozen=True, slots=True)
class StoreSettings:
    data_dir: str = "./fsd-data"
    block_cache_mb: int = 256
    bloom_bits_per_key: int = 10
    row_cache_mb: int = 128  # rows kept in the daemon's memory in front of RocksDB (large GetFeatures batches); 0: none
    warm_cache_on_start: bool = True  # after health turns SERVING, read rows into the block cache (up to its size)
    sync_writes: bool = True
    wal_dir: str = ""  # RocksDB write-ahead log folder (e.g. a faster device); empty: inside data_dir/online
    retire_retention_seconds: int = 3600  # how long a retired version's values stay on disk before they are purged
    offline_root: str = ""  # the deployment's offline store; empty: the one recorded in the registry, else <data_dir>/offline
    backup_root: str = ""  # where `fsd backup NAME` writes; empty: <data_dir>/backups
    engine: str = "rocksdb"  # rocksdb (embedded, the default) | redis-cluster (shared by stateless replicas)
    redis_nodes: str = ""  # redis-cluster: seed nodes "host:port,host:port,..."
    redis_password: str = ""
    redis_tls: bool = False
    redis_min_replicas_ack: int = 1  # a write is acknowledged once this many replicas have it (WAIT); 0: masters only
    redis_timeout_seconds: float = 2.0  # per request to a node (reads and writes)
    redis_wait_timeout_ms: int = 1000  # how long WAIT may take before the chunk fails (not acknowledged)


ENGINES = ("rocksdb", "redis-cluster")


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    url: str = ""  # sqlite:///path (default: <data_dir>/registry.sqlite) or postgresql://user@host:port/db (shared)
    lease_seconds: float = 2.0  # a replica that has not confirmed the registry for this long serves only pinned reads
    replica_id: str = ""  # how this replica names itself in `fsd replicas` (default: host:port)


@dataclass(frozen=True, slots=True)
class LimitSettings:
    max_entities: int = 10_000
    max_features: int = 1_000
    max_values: int = 1_000_000
    max_future_skew_seconds: int = 300
    max_chunk_rows: int = 1_000_000
    max_concurrent_publishes: int = 2  # each stream holds a control-pool thread while it lasts (reads have their own pool)


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    freshness_interval_seconds: float = 10.0
    sample_rows: int = 2000  # rows sampled per group per freshness check (never a full scan)
    validate_interval_seconds: float = 3600.0  # periodic validation of every group (0: off)
    validate_sample: int = 500
    min_promotion_consistency: float = 0.995  # promotion gate (0: off)
    served_sample_rate: float = 0.01  # share of GetFeatures responses sampled for skew
    history_interval_seconds: float = 60.0  # the status page's charts: the daemon samples its own metrics this often (6 h kept)


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)


# FSD_* variables that belong to the command-line client or the codec switch, not to daemon settings.
CLIENT_ENVIRONMENT = frozenset({
    "FSD_NO_EXTENSIONS", "FSD_CONFIG", "FSD_TARGET", "FSD_TOKEN", "FSD_TLS_CA", "FSD_TLS_CERT", "FSD_TLS_KEY",
    "FSD_OFFLINE_ROOT", "FSD_LOG_LEVEL", "FSD_ALLOWED_ROOTS",
})

_SECTIONS = {"server": ServerSettings, "store": StoreSettings, "limits": LimitSettings, "monitor": MonitorSettings,
             "registry": RegistrySettings}


def _coerce(section: str, key: str, raw: object, target: type) -> object:
    where = f"{section}.{key}"
    if target is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return raw.lower() in ("1", "true", "yes", "on")
        raise InvalidArgument(f"setting {where}: expected true/false, got {raw!r}", field=where)
    try:
        value = target(raw)  # type: ignore[operator]
    except (TypeError, ValueError):
        raise InvalidArgument(f"setting {where}: expected {target.__name__}, got {raw!r}", field=where) from None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        raise InvalidArgument(f"setting {where}: must not be negative", field=where)
    return value


def http_port(server: ServerSettings) -> int | None:
    """server.http_port as a number (0: any free port), or None when the HTTP endpoint is off."""
    raw = str(server.http_port).strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) > 65535:
        raise InvalidArgument(f"setting server.http_port: a port from 0 to 65535, got {raw[:20]!r}", field="server.http_port")
    return int(raw)


def worker_count(server: ServerSettings) -> int:
    """server.workers as a number: "auto" is the cores this process may run on."""
    raw = server.workers.strip().lower()
    if raw == "auto":
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if not raw.isdigit() or not 1 <= int(raw) <= 256:
        raise InvalidArgument(f"setting server.workers: {server.workers[:20]!r} must be a number from 1 to 256, or auto", field="server.workers")
    return int(raw)


def load_settings(
    file: str | None = None, env: dict[str, str] | None = None, overrides: dict[str, dict[str, object]] | None = None
) -> Settings:
    """Validate everything at start-up, so a typo fails loudly instead of silently using a default."""
    merged: dict[str, dict[str, object]] = {name: {} for name in _SECTIONS}
    if file:
        try:
            data = tomllib.loads(Path(file).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidArgument(f"config file {file}: {exc}") from None
        for section, values in data.items():
            if section not in _SECTIONS or not isinstance(values, dict):
                raise InvalidArgument(f"config file {file}: unknown section [{section}] (known: {', '.join(_SECTIONS)})")
            merged[section].update(values)
    environ = os.environ if env is None else env
    for name, raw in environ.items():
        if not name.startswith("FSD_") or name in CLIENT_ENVIRONMENT:
            continue
        section, _, key = name[4:].lower().partition("_")
        if section not in _SECTIONS:
            raise InvalidArgument(f"environment {name}: unknown section {section!r} (FSD_<SECTION>_<KEY>)")
        merged[section][key] = raw
    for section, values in (overrides or {}).items():
        merged[section].update({k: v for k, v in values.items() if v is not None})
    built = {}
    for section, cls in _SECTIONS.items():
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, raw in merged[section].items():
            if key not in fields:
                raise InvalidArgument(f"unknown setting {section}.{key} (known: {', '.join(fields)})", field=f"{section}.{key}")
            kwargs[key] = _coerce(section, key, raw, type(getattr(cls(), key)))
        built[section] = cls(**kwargs)
    settings = Settings(**built)
    worker_count(settings.server)  # refuses a bad value at start-up
    if settings.store.engine not in ENGINES:
        raise InvalidArgument(f"setting store.engine: {settings.store.engine!r} is not one of {', '.join(ENGINES)}", field="store.engine")
    if settings.store.engine == "redis-cluster" and not settings.store.redis_nodes:
        raise InvalidArgument("setting store.redis_nodes: the redis-cluster engine needs seed nodes (host:port,...)", field="store.redis_nodes")
    url = settings.registry.url
    if url and not url.startswith("sqlite:///") and registry_kind(url) != "postgresql":
        raise InvalidArgument(f"setting registry.url: {url[:80]!r} must be sqlite:///PATH or postgresql://...", field="registry.url")
    if settings.store.engine == "redis-cluster" and registry_kind(url) != "postgresql":
        raise InvalidArgument("setting registry.url: stateless replicas over Redis Cluster share a PostgreSQL registry "
                              "(postgresql://user@host:port/db)", field="registry.url")
    return settings
