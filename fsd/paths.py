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
