"""Durable registry storage in SQLite (WAL, synchronous=FULL): groups, feature versions, history, counters."""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fsd.domain import VersionState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS groups (
    name TEXT PRIMARY KEY,
    group_id INTEGER NOT NULL UNIQUE,
    spec_json TEXT NOT NULL,
    created_micros INTEGER NOT NULL,
    updated_micros INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS feature_versions (
    slot INTEGER PRIMARY KEY,
    group_name TEXT NOT NULL,
    feature TEXT NOT NULL,
    version INTEGER NOT NULL,
    state INTEGER NOT NULL,
    spec_json TEXT NOT NULL,
    behaviour_hash TEXT NOT NULL,
    created_micros INTEGER NOT NULL,
    first_published_micros INTEGER,
    retired_micros INTEGER,
    purged_micros INTEGER,
    UNIQUE (group_name, feature, version)
);
CREATE TABLE IF NOT EXISTS manifests (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_micros INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    description TEXT NOT NULL,
    features_json TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    opened_micros INTEGER NOT NULL,
    group_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    publish_id TEXT NOT NULL,
    detail TEXT NOT NULL,
    resolved_micros INTEGER,
    resolved_by TEXT,
    resolution TEXT
);
CREATE TABLE IF NOT EXISTS sync_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_name TEXT NOT NULL,
    started_micros INTEGER NOT NULL,
    ended_micros INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    run_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS resync_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_name TEXT NOT NULL,
    reason TEXT NOT NULL,
    requested_micros INTEGER NOT NULL,
    done_micros INTEGER
);
CREATE TABLE IF NOT EXISTS validations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slot INTEGER NOT NULL,
    at_micros INTEGER NOT NULL,
    consistency REAL NOT NULL,
    sampled INTEGER NOT NULL,
    detail_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_micros INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    group_name TEXT NOT NULL,
    feature TEXT NOT NULL,
    version INTEGER NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class GroupRow:
    name: str
    group_id: int
    spec_json: str


@dataclass(frozen=True, slots=True)
class VersionRow:
    slot: int
    group_name: str
    feature: str
    version: int
    state: VersionState
    spec_json: str
    behaviour_hash: str
    created_micros: int
    first_published_micros: int | None
    retired_micros: int | None
    purged_micros: int | None


@dataclass(frozen=True, slots=True)
class ManifestRow:
    name: str
    version: int
    created_micros: int
    created_by: str
    description: str
    features_json: str


@dataclass(frozen=True, slots=True)
class HistoryRow:
    at_micros: int
    revision: int
    group_name: str
    feature: str
    version: int
    action: str
    detail: str
    actor: str
    reason: str


class RegistryStorage:
    """All writes go through `transaction()`, which is serialised and atomic."""

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def counter(self, key: str) -> int:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def next_counter(conn: sqlite3.Connection, key: str) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        value = (int(row[0]) if row else 0) + 1
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))
        return value

    def groups(self) -> list[GroupRow]:
        with self._lock:
            rows = self._conn.execute("SELECT name, group_id, spec_json FROM groups ORDER BY name").fetchall()
        return [GroupRow(*r) for r in rows]

    def versions(self) -> list[VersionRow]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT slot, group_name, feature, version, state, spec_json, behaviour_hash, created_micros, "
                "first_published_micros, retired_micros, purged_micros FROM feature_versions ORDER BY group_name, feature, version"
            ).fetchall()
        return [VersionRow(r[0], r[1], r[2], r[3], VersionState(r[4]), *r[5:]) for r in rows]

    def manifests(self) -> list[ManifestRow]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT name, version, created_micros, created_by, description, features_json FROM manifests ORDER BY name, version"
            ).fetchall()
        return [ManifestRow(*r) for r in rows]

    @staticmethod
    def add_history(conn: sqlite3.Connection, at: int, revision: int, group: str, feature: str, version: int, action: str,
                    detail: str, actor: str, reason: str) -> None:
        conn.execute(
            "INSERT INTO history (at_micros, revision, group_name, feature, version, action, detail, actor, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (at, revision, group, feature, version, action, detail, actor, reason),
        )

    def history(self, group: str, feature: str | None = None) -> list[HistoryRow]:
        query = "SELECT at_micros, revision, group_name, feature, version, action, detail, actor, reason FROM history WHERE group_name = ?"
        args: tuple[object, ...] = (group,)
        if feature is not None:
            query += " AND (feature = ? OR feature = '')"
            args = (group, feature)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY id", args).fetchall()
        return [HistoryRow(*r) for r in rows]

    def query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple]:  # type: ignore[type-arg]
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
