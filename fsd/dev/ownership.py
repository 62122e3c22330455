"""What `fsd cluster` may act on: a folder that is its own (a real directory owned by this user, private), and
processes whose identity it recorded (PID, start time and executable) — so a cluster.json written by someone
else, or a PID reused after a crash, never makes it kill or delete anything that is not the cluster's."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from fsd.errors import FailedPrecondition


def private_folder(path: Path, create: bool) -> Path:
    """`path` as this user's private folder (0700): created if asked; refused if it is a symlink, not a directory,
    owned by someone else, or (when only read) writable by others."""
    if create and not os.path.lexists(path):
        path.mkdir(mode=0o700, parents=True)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise FailedPrecondition(f"{path} does not exist", field="dir") from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise FailedPrecondition(f"{path} is not a plain directory (a symlink?); fsd cluster uses only a folder of its own", field="dir")
    if info.st_uid != os.geteuid():
        raise FailedPrecondition(f"{path} is owned by uid {info.st_uid}, not by this user: fsd cluster acts only on its own folder", field="dir")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not create:
        raise FailedPrecondition(f"{path} is writable by other users: its cluster.json cannot be trusted", field="dir")
    if create:
        os.chmod(path, 0o700)
    return path


def identity(pid: int) -> dict[str, object] | None:
    """A process's identity: its start time (clock ticks after boot) and executable; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return {"pid": pid, "start": int(fields[19]), "exe": os.readlink(f"/proc/{pid}/exe")}
    except (OSError, IndexError, ValueError):
        return None


def same_process(recorded: dict[str, object]) -> bool:
    """Whether the recorded PID is still the process that was started (not a reused PID, not another program)."""
    if "start" not in recorded or "exe" not in recorded:
        return False  # recorded without an identity: never acted on
    now = identity(int(recorded["pid"]))  # type: ignore[arg-type]
    return now is not None and now["start"] == recorded["start"] and now["exe"] == recorded["exe"]


def inside(folder: Path, path: Path) -> bool:
    """Whether `path` (not following a final symlink) lies inside `folder`."""
    base = folder.resolve()
    target = path.parent.resolve() / path.name
    return base in target.parents
