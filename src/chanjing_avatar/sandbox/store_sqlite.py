"""``Store`` on SQLite in WAL mode: one connection per thread, short transactions."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from .store import CallbackRecord, FileRecord, TaskRecord

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

_FILE_COLUMNS = tuple(f.name for f in fields(FileRecord))
_TASK_COLUMNS = tuple(f.name for f in fields(TaskRecord))

R = TypeVar("R", FileRecord, TaskRecord)


class SqliteStore:
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

    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        with self._conn() as conn:
            return conn.execute(sql, args).rowcount

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return self._conn().execute(sql, args).fetchall()

    # Apps and tokens.
    def add_app(self, app_id: str, secret_key: str) -> None:
        self._write(
            "INSERT INTO apps VALUES (?, ?)"
            " ON CONFLICT(app_id) DO UPDATE SET secret_key=excluded.secret_key",
            (app_id, secret_key),
        )

    def app_secret(self, app_id: str) -> str | None:
        rows = self._rows("SELECT secret_key FROM apps WHERE app_id=?", (app_id,))
        return str(rows[0][0]) if rows else None

    def app_ids(self) -> list[str]:
        return [str(r[0]) for r in self._rows("SELECT app_id FROM apps ORDER BY app_id")]

    def set_token(self, app_id: str, token: str, expire_at: float) -> None:
        self._write("INSERT OR REPLACE INTO tokens VALUES (?, ?, ?)", (app_id, token, expire_at))

    def token_app(self, token: str, now: float) -> str | None:
        rows = self._rows("SELECT app_id, expire_at FROM tokens WHERE token=?", (token,))
        if not rows or float(rows[0]["expire_at"]) <= now:
            return None
        return str(rows[0]["app_id"])

    def invalidate_tokens(self, app_id: str | None = None) -> int:
        if app_id is None:
            return self._write("DELETE FROM tokens")
        return self._write("DELETE FROM tokens WHERE app_id=?", (app_id,))

    # Files.
    def add_file(self, record: FileRecord) -> None:
        self._insert("files", _FILE_COLUMNS, record)

    def get_file(self, file_id: str) -> FileRecord | None:
        rows = self._rows("SELECT * FROM files WHERE id=?", (file_id,))
        return _file(rows[0]) if rows else None

    def update_file(self, file_id: str, **changes: Any) -> None:
        self._update("files", _FILE_COLUMNS, file_id, changes)

    def files_awaiting_probe(self) -> list[FileRecord]:
        rows = self._rows(
            "SELECT * FROM files WHERE uploaded_at IS NOT NULL AND checked_status IS NULL"
        )
        return [_file(r) for r in rows]

    # Tasks.
    def add_task(self, record: TaskRecord) -> None:
        self._insert("tasks", _TASK_COLUMNS, record)

    def get_task(self, task_id: str) -> TaskRecord | None:
        rows = self._rows("SELECT * FROM tasks WHERE id=?", (task_id,))
        return _task(rows[0]) if rows else None

    def update_task(self, task_id: str, **changes: Any) -> None:
        self._update("tasks", _TASK_COLUMNS, task_id, changes)

    def list_tasks(
        self, app_id: str | None, offset: int, limit: int
    ) -> tuple[list[TaskRecord], int]:
        where, args = ("WHERE app_id=?", (app_id,)) if app_id is not None else ("", ())
        total = int(self._rows(f"SELECT COUNT(*) FROM tasks {where}", args)[0][0])
        rows = self._rows(
            f"SELECT * FROM tasks {where} ORDER BY seq DESC LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return [_task(r) for r in rows], total

    def unfinished_tasks(self) -> list[TaskRecord]:
        rows = self._rows("SELECT * FROM tasks WHERE status IN (0, 10) ORDER BY seq")
        return [_task(r) for r in rows]

    def claim_task(self, task_id: str) -> int | None:
        with self._conn() as conn:
            row = conn.execute(
                "UPDATE tasks SET status=10, progress=0, attempt=attempt+1"
                " WHERE id=? AND status IN (0, 10) RETURNING attempt",
                (task_id,),
            ).fetchone()
        return int(row[0]) if row else None

    def update_attempt(self, task_id: str, attempt: int, **changes: Any) -> bool:
        sets = ", ".join(f"{c}=?" for c in changes)
        values = tuple(_encode(v) for v in changes.values())
        return (
            self._write(
                f"UPDATE tasks SET {sets} WHERE id=? AND attempt=? AND status IN (0, 10)",
                (*values, task_id, attempt),
            )
            == 1
        )

    def release_task(self, task_id: str, attempt: int, msg: str) -> bool:
        return (
            self._write(
                "UPDATE tasks SET status=0, progress=0, msg=?, attempt=attempt-1"
                " WHERE id=? AND attempt=? AND status IN (0, 10)",
                (msg, task_id, attempt),
            )
            == 1
        )

    def claim_upload(self, file_id: str, size: int, now: float) -> bool:
        return (
            self._write(
                "UPDATE files SET bytes=?, uploaded_at=? WHERE id=? AND uploaded_at IS NULL",
                (size, now, file_id),
            )
            == 1
        )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        # Each write commits on its own; the in-process queue needs no shared transaction.
        yield

    def ping(self) -> None:
        self._rows("SELECT 1")

    # Callbacks waiting for delivery.
    def save_callback(self, record: CallbackRecord) -> None:
        self._write(
            "INSERT OR REPLACE INTO callbacks VALUES (?, ?, ?, ?, ?)",
            (
                record.task_id,
                record.url,
                _encode(record.payload),
                record.attempt,
                record.due_at,
            ),
        )

    def delete_callback(self, task_id: str) -> None:
        self._write("DELETE FROM callbacks WHERE task_id=?", (task_id,))

    def pending_callbacks(self) -> list[CallbackRecord]:
        rows = self._rows("SELECT * FROM callbacks ORDER BY due_at")
        return [
            CallbackRecord(
                task_id=str(r["task_id"]),
                url=str(r["url"]),
                payload=json.loads(r["payload"]),
                attempt=int(r["attempt"]),
                due_at=float(r["due_at"]),
            )
            for r in rows
        ]

    # Meta.
    def get_meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key=?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def set_meta_once(self, key: str, value: str) -> str:
        self._write("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, value))
        held = self.get_meta(key)
        return value if held is None else held

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    # Helpers.
    def _insert(
        self, table: str, columns: tuple[str, ...], record: FileRecord | TaskRecord
    ) -> None:
        values = [_encode(getattr(record, c)) for c in columns]
        marks = ", ".join("?" * len(columns))
        self._write(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", tuple(values))

    def _update(
        self, table: str, columns: tuple[str, ...], key: str, changes: dict[str, Any]
    ) -> None:
        unknown = set(changes) - set(columns) - {"id"}
        if unknown or "id" in changes:
            raise KeyError(f"cannot update {sorted(unknown | ({'id'} & set(changes)))}")
        if not changes:
            return
        sets = ", ".join(f"{c}=?" for c in changes)
        values = tuple(_encode(v) for v in changes.values())
        self._write(f"UPDATE {table} SET {sets} WHERE id=?", (*values, key))


def _encode(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value


def _file(row: sqlite3.Row) -> FileRecord:
    return FileRecord(**{c: row[c] for c in _FILE_COLUMNS})


def _task(row: sqlite3.Row) -> TaskRecord:
    values = {c: row[c] for c in _TASK_COLUMNS}
    values["params"] = json.loads(values["params"])
    return TaskRecord(**values)
