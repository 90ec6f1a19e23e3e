"""``Store`` on SQLite in WAL mode: one connection per thread, short transactions."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .store_sql import SqlStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS apps (app_id TEXT PRIMARY KEY, secret_key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    app_id TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE, expire_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, service TEXT NOT NULL, name TEXT NOT NULL,
    mime_type TEXT NOT NULL, blob_key TEXT NOT NULL, create_time INTEGER NOT NULL,
    bytes INTEGER NOT NULL DEFAULT 0, uploaded_at REAL, checked_status INTEGER,
    msg TEXT NOT NULL DEFAULT '', forced_status INTEGER);
CREATE TABLE IF NOT EXISTS tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, app_id TEXT NOT NULL,
    create_time INTEGER NOT NULL, params TEXT NOT NULL, status INTEGER NOT NULL,
    progress INTEGER NOT NULL, msg TEXT NOT NULL, duration_ms INTEGER NOT NULL,
    callback TEXT NOT NULL, fail_msg TEXT NOT NULL, seed INTEGER NOT NULL, finished_at REAL,
    attempt INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS tasks_by_app ON tasks (app_id, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS callbacks (
    task_id TEXT PRIMARY KEY, url TEXT NOT NULL, payload TEXT NOT NULL,
    attempt INTEGER NOT NULL, due_at REAL NOT NULL);
"""


class SqliteStore(SqlStore):
    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        with self._conn() as conn:
            conn.executescript(_SCHEMA)
            columns = {r["name"] for r in conn.execute("PRAGMA table_info(tasks)")}
            if "attempt" not in columns:  # a data dir made by an earlier version
                conn.execute("ALTER TABLE tasks ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=30.0, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return self._conn().execute(sql, args).fetchall()

    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        with self._conn() as conn:
            return conn.execute(sql, args).rowcount

    def _write_returning(self, sql: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
        with self._conn() as conn:
            return conn.execute(sql, args).fetchall()

    def _encode_json(self, value: dict[str, Any]) -> str:
        return json.dumps(value, ensure_ascii=False)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        # Each write commits on its own; the in-process queue needs no shared transaction.
        yield

    def ping(self) -> None:
        self._rows("SELECT 1")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
