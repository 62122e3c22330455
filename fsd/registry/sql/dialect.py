"""What differs between the registry's databases, and nothing else: connecting, transactions, placeholders, the
type words of the schema, error translation, and coordination between processes. SQLite lives here; PostgreSQL
in `postgres.py` (imported only when a postgresql:// registry is opened)."""
from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from fsd.errors import FailedPrecondition, FsdError, StorageError

Row = tuple  # type: ignore[type-arg]


class Tx:
    """One transaction's statements, written with `?` placeholders whatever the driver wants."""

    def __init__(self, cursor: object, placeholder: str) -> None:
        self._cursor = cursor
        self._placeholder = placeholder

    def _sql(self, sql: str) -> str:
        return sql if self._placeholder == "?" else _translated(sql)

    def execute(self, sql: str, args: Sequence[object] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        self._cursor.execute(self._sql(sql), tuple(args))  # type: ignore[attr-defined]
        return int(self._cursor.rowcount)  # type: ignore[attr-defined]

    def one(self, sql: str, args: Sequence[object] = ()) -> Row | None:
        self._cursor.execute(self._sql(sql), tuple(args))  # type: ignore[attr-defined]
        return self._cursor.fetchone()  # type: ignore[attr-defined,no-any-return]

    def all(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        self._cursor.execute(self._sql(sql), tuple(args))  # type: ignore[attr-defined]
        return list(self._cursor.fetchall())  # type: ignore[attr-defined]

    def many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), [tuple(r) for r in rows])  # type: ignore[attr-defined]


_TRANSLATED: dict[str, str] = {}


def _translated(sql: str) -> str:
    """`?` placeholders as psycopg's `%s` (a literal % doubled); cached, the statements are constants."""
    done = _TRANSLATED.get(sql)
    if done is None:
        done = _TRANSLATED[sql] = sql.replace("%", "%%").replace("?", "%s")
    return done


class Dialect(Protocol):
    """A database the SQL registry store runs on."""

    kind: str  # "sqlite" | "postgresql": what `fsd info` reports
    shared: bool  # other processes (replicas) write the same registry, so this one must watch it
    types: dict[str, str]  # the schema's type words
    for_update: str  # row-lock suffix of a SELECT that guards a counter ("" where the transaction already serialises)

    def transaction(self, write: bool) -> AbstractContextManager[Tx]:
        """One transaction (serialised against other writers when `write`); driver errors leave it as fsd errors."""
        ...

    def epoch_bumped(self, tx: Tx, epoch: int) -> None:
        """Tell other processes, at commit, that the registry changed."""
        ...

    def lock(self, tx: Tx, key: str) -> None:
        """Serialise transactions on `key` until this one ends."""
        ...

    def try_lead(self) -> bool:
        """Whether this process holds (or just took) the background-work lease."""
        ...

    def hold(self, name: str) -> AbstractContextManager[None]:
        """Exclusive among the processes of this database, per name, while the context lasts."""
        ...

    def wait_for_change(self, timeout: float) -> None:
        """Return when another process may have changed the registry, or after `timeout` seconds."""
        ...

    def backup_to(self, path: Path) -> None: ...

    def close(self) -> None: ...


class SqliteDialect:
    """One SQLite file (WAL, synchronous=FULL) on one connection; writers serialise with BEGIN IMMEDIATE. Several
    processes on one machine may open the same file: the lead is an exclusive lock on `<file>.lead`, and a change
    by another process shows as a new `PRAGMA data_version`."""

    kind = "sqlite"
    shared = False
    types = {"BIGINT": "INTEGER", "SERIAL": "INTEGER PRIMARY KEY AUTOINCREMENT", "DOUBLE": "REAL"}
    for_update = ""

    def __init__(self, path: str) -> None:
        self._path = path
        try:
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA busy_timeout=5000")
        except sqlite3.Error as exc:
            raise StorageError(f"registry {path}: {exc}") from None
        self._lock = threading.RLock()
        self._lead_fd: int | None = None
        self._holds: dict[str, threading.Lock] = {}

    @contextmanager
    def transaction(self, write: bool) -> Iterator[Tx]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise StorageError(f"registry: {exc}") from None
            try:
                yield Tx(self._conn.cursor(), "?")
            except BaseException as exc:
                self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.IntegrityError):
                    raise FailedPrecondition(f"another writer changed the registry at the same moment ({exc}); retry") from None
                if isinstance(exc, sqlite3.Error) and not isinstance(exc, FsdError):
                    raise StorageError(f"registry: {exc}") from None
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._conn.execute("ROLLBACK")
                raise StorageError(f"registry: {exc}") from None

    def epoch_bumped(self, tx: Tx, epoch: int) -> None:
        """Other processes see the commit through data_version; nothing to send."""

    def lock(self, tx: Tx, key: str) -> None:
        """BEGIN IMMEDIATE already serialises every writer of the file."""

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        """Exclusive among the processes using this file: an flock on a file beside it, per name."""
        if self._path == ":memory:":
            with self._holds.setdefault(name, threading.Lock()):
                yield
            return
        digest = hashlib.blake2b(name.encode(), digest_size=8).hexdigest()
        fd = os.open(f"{self._path}.hold-{digest}", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def try_lead(self) -> bool:
        if self._path == ":memory:":
            return True
        with self._lock:
            if self._lead_fd is None:
                fd = os.open(self._path + ".lead", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    return False
                self._lead_fd = fd
            return True

    def _data_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def wait_for_change(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        seen = self._data_version()
        while time.monotonic() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            if self._data_version() != seen:
                return

    def backup_to(self, path: Path) -> None:
        try:
            dest = sqlite3.connect(str(path))
            try:
                with self._lock:
                    self._conn.backup(dest)
            finally:
                dest.close()
        except sqlite3.Error as exc:
            raise StorageError(f"registry backup: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            if self._lead_fd is not None:
                os.close(self._lead_fd)
                self._lead_fd = None
