"""The registry's PostgreSQL dialect (psycopg 3), shared by every replica: one connection for statements (reopened
after a loss: the call that found it lost answers UNAVAILABLE), one that LISTENs for the NOTIFY each epoch bump
sends at commit, and one that holds the advisory lock electing the replica that runs background work. Every
connection has TCP keepalives and a statement timeout, so a silent network or a stuck server becomes UNAVAILABLE
within seconds instead of hanging a call."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import errors as pg_errors

from fsd.errors import FailedPrecondition, FsdError, StorageError, Unavailable
from fsd.registry.sql.dialect import Tx

CHANNEL = "fsd_registry"
LEADER_LOCK = 0x66736401  # pg advisory lock key of the background-work leader ("fsd" 1)
STATEMENT_TIMEOUT_MS = 5000


def _unavailable(exc: Exception) -> Unavailable:
    text = str(exc).strip()
    return Unavailable(f"registry database unavailable: {text.splitlines()[0][:200] if text else type(exc).__name__}")


class PostgresDialect:
    kind = "postgresql"
    shared = True
    types = {"BIGINT": "BIGINT", "SERIAL": "BIGSERIAL PRIMARY KEY", "DOUBLE": "DOUBLE PRECISION"}
    for_update = " FOR UPDATE"

    def __init__(self, url: str, connect_timeout: float = 3.0) -> None:
        self._url = url
        self._timeout = connect_timeout
        self._lock = threading.RLock()
        self._conn: psycopg.Connection | None = None
        self._listen: psycopg.Connection | None = None
        self._leader: psycopg.Connection | None = None
        self._leading = False

    def _connect(self, autocommit: bool = False) -> psycopg.Connection:
        try:
            return psycopg.connect(
                self._url, autocommit=autocommit, connect_timeout=max(1, int(self._timeout)),
                keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3,
                options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
            )
        except psycopg.Error as exc:
            raise _unavailable(exc) from None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self._connect()
        return self._conn

    @contextmanager
    def transaction(self, write: bool) -> Iterator[Tx]:
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    if not write:
                        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")  # one consistent view
                    yield Tx(cur, "%s")
            except FsdError:
                raise
            except pg_errors.UniqueViolation as exc:
                raise FailedPrecondition(f"another replica changed the registry at the same moment ({exc.diag.constraint_name}); retry") from None
            except pg_errors.QueryCanceled:
                raise Unavailable(f"registry database did not answer within {STATEMENT_TIMEOUT_MS} ms") from None
            except psycopg.OperationalError as exc:
                self._conn = None
                raise _unavailable(exc) from None
            except psycopg.Error as exc:
                if conn.broken:
                    self._conn = None
                    raise _unavailable(exc) from None
                raise StorageError(f"registry: {str(exc)[:300]}") from None

    def epoch_bumped(self, tx: Tx, epoch: int) -> None:
        tx.execute("SELECT pg_notify(?, ?)", (CHANNEL, str(epoch)))  # delivered at commit, never on rollback

    def lock(self, tx: Tx, key: str) -> None:
        tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        """Exclusive among every replica of this database: a session advisory lock on a connection of its own, so
        it is released when this process dies or loses the database."""
        conn = self._connect(autocommit=True)
        try:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"fsd-hold:{name}",))
            yield
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"fsd-hold:{name}",))
        except psycopg.Error as exc:
            raise _unavailable(exc) from None
        finally:
            conn.close()

    def try_lead(self) -> bool:
        """Hold the advisory lock on a connection of its own: when this process dies or loses the database, the
        session ends, the lock is released, and another replica takes over on its next try."""
        with self._lock:
            try:
                if self._leader is None or self._leader.closed or self._leader.broken:
                    self._leader, self._leading = self._connect(autocommit=True), False
                if self._leading:
                    self._leader.execute("SELECT 1")  # the session, and the lock with it, is still alive
                else:
                    self._leading = bool(self._leader.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()[0])
                return self._leading
            except (psycopg.Error, Unavailable):
                self._leader, self._leading = None, False
                return False

    def wait_for_change(self, timeout: float) -> None:
        """Block until a NOTIFY on the registry channel or `timeout`; Unavailable when the database is gone."""
        try:
            if self._listen is None or self._listen.closed or self._listen.broken:
                self._listen = self._connect(autocommit=True)
                self._listen.execute(f"LISTEN {CHANNEL}")
            for _ in self._listen.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error as exc:
            self._listen = None
            raise _unavailable(exc) from None

    def backup_to(self, path: Path) -> None:
        raise FailedPrecondition("the PostgreSQL registry is backed up by PostgreSQL itself (pg_dump, base backups), not by fsd backup",
                                 field="name")

    def close(self) -> None:
        with self._lock:
            for conn in (self._conn, self._listen, self._leader):
                if conn is not None and not conn.closed:
                    conn.close()
