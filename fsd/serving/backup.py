"""Backups and restores of a daemon's data: a RocksDB checkpoint (consistent, taken under load) plus an online
SQLite backup of the registry, written into a confined folder and renamed into place only when complete."""
from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from fsd.errors import AlreadyExists, FailedPrecondition, InvalidArgument, StorageError, echo
from fsd.online.base import Backupable
from fsd.paths import confine, confine_below
from fsd.registry.store import RegistryStore

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    created_micros: int


def confined(base: Path, name: str) -> Path:
    """base/name, refusing anything that could leave base (separators, '..', symlinks)."""
    if not _NAME.fullmatch(name) or ".." in name:
        raise InvalidArgument(f"backup name {echo(name)} must be a plain name (letters, digits, '.', '-', '_')", field="name")
    target = confine_below(base, base / name)
    if target.parent != base.resolve():
        raise InvalidArgument(f"backup name {echo(name)} resolves outside {base.resolve()}", field="name")
    return target


def create_backup(store: Backupable, registry: RegistryStore, base: Path, name: str) -> BackupResult:
    """Default root included, the folder is resolved and confined (FSD_ALLOWED_ROOTS) when the backup is written,
    so a symlink planted in its place cannot send the checkpoint elsewhere."""
    base = confine(base, "store.backup_root")
    base.mkdir(parents=True, exist_ok=True)
    base = confine(base, "store.backup_root")
    target = confined(base, name)
    if target.exists():
        raise AlreadyExists(f"backup {name!r} already exists in {base}", field="name")
    staging = target.parent / f".staging-{name}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        store.checkpoint(str(staging / "online"))
        registry.backup_to(staging / "registry.sqlite")
        staging.rename(target)
    except (OSError, StorageError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise StorageError(f"backup {name!r} failed: {exc}") from exc
    return BackupResult(target, time.time_ns() // 1000)


def restore_backup(backup: Path, data_dir: Path) -> None:
    """Copy a backup into an empty data dir (the daemon must not be running on it)."""
    backup = backup.resolve()
    if not (backup / "online").is_dir() or not (backup / "registry.sqlite").is_file():
        raise InvalidArgument(f"{backup} is not an fsd backup (needs online/ and registry.sqlite)", field="backup")
    if data_dir.exists() and any(data_dir.iterdir()):
        raise FailedPrecondition(f"{data_dir} is not empty; restore into a new data dir", field="data_dir")
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(backup / "online", data_dir / "online")
    shutil.copy2(backup / "registry.sqlite", data_dir / "registry.sqlite")
