"""Confines file-path inputs to allowed base folders (FSD_ALLOWED_ROOTS, ':'-separated), after resolving
symlinks and '..', so neither a crafted path nor a planted symlink can reach outside them. Unset: no limit."""
from __future__ import annotations

import os
from pathlib import Path

from fsd.errors import InvalidArgument


def allowed_roots(env: dict[str, str] | None = None) -> list[Path]:
    raw = (os.environ if env is None else env).get("FSD_ALLOWED_ROOTS", "")
    return [Path(p).resolve() for p in raw.split(":") if p]


def confine(path: str | Path, what: str, roots: list[Path] | None = None) -> Path:
    """The resolved path, or InvalidArgument naming `what` when it lies outside every allowed root."""
    bases = allowed_roots() if roots is None else roots
    resolved = Path(path).resolve()
    if bases and not any(resolved == base or base in resolved.parents for base in bases):
        raise InvalidArgument(f"{what} {str(path)!r} resolves to {resolved}, outside the allowed roots ({', '.join(map(str, bases))})", field=what)
    return resolved


def confine_below(root: Path, path: Path) -> Path:
    """`path` resolved at the moment it is written, refused unless it stays under `root` (itself resolved) and
    inside the allowed roots: a symlink planted inside a store cannot send a write elsewhere."""
    resolved = confine(path, "path")
    base = root.resolve()
    if resolved != base and base not in resolved.parents:
        raise InvalidArgument(f"{path} resolves to {resolved}, outside {base} (a symlink?); nothing was written", field="path")
    return resolved


def write_new(root: Path, path: Path, data: bytes, mode: int = 0o644) -> None:
    """Create `path` (under `root`, confined as confine_below checks) with `data`: refused if anything exists at
    that name — a file, or a symlink planted there, which is never followed (O_EXCL | O_NOFOLLOW)."""
    target = confine_below(root, path.parent) / path.name
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except FileExistsError:
        raise InvalidArgument(f"{target} already exists (a planted file or symlink?); nothing was written there", field="path") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def replace_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `path` whole, replacing what is there: a new temporary file beside it (a random name, O_EXCL, so no
    planted link is followed), then rename, which replaces a link at `path` instead of writing through it."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
