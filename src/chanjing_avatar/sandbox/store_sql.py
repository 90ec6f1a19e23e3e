"""The statements, row mapping and state rules of the SQL stores, written once.

``SqlStore`` implements ``Store`` on top of four primitives a backend supplies (how a statement
runs on its connections) and one dialect point (how a JSON value is written). Statements here
use ``?`` placeholders and only SQL that SQLite and PostgreSQL both speak (``ON CONFLICT``
upserts, ``RETURNING``); a backend turns ``?`` into its own placeholder (none of these statements
holds a literal ``?``).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any, Protocol, TypeVar

from .._wire import TaskStatus
from .store import CallbackRecord, FileRecord, TaskRecord

# Task statuses as SQL literals; an unfinished task: ``WHERE status IN {UNFINISHED_SQL}``.
QUEUED, GENERATING = int(TaskStatus.QUEUED), int(TaskStatus.GENERATING)
UNFINISHED_SQL = f"({QUEUED}, {GENERATING})"

FILE_COLUMNS = tuple(f.name for f in fields(FileRecord))
TASK_COLUMNS = tuple(f.name for f in fields(TaskRecord))

T = TypeVar("T")


class Row(Protocol):
    """A result row read by column name (``sqlite3.Row``, psycopg's ``dict_row``)."""

    def __getitem__(self, key: str, /) -> Any: ...


Reader = Callable[[str, tuple[Any, ...]], Sequence[Row]]


class SqlStore(ABC):
    # What a backend supplies.
    @abstractmethod
    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> Sequence[Row]:
        """Run a read."""

    @abstractmethod
    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        """Run a write (committed unless inside ``transaction()``); the rows it changed."""

    @abstractmethod
    def _write_returning(self, sql: str, args: tuple[Any, ...]) -> Sequence[Row]:
        """Run a write with ``RETURNING``; the rows it returns."""

    @abstractmethod
    def _encode_json(self, value: dict[str, Any]) -> Any:
        """A dict as the driver writes it into a JSON column."""

    def _snapshot(self, read: Callable[[Reader], T]) -> T:
        """Run several reads (``read`` gets the reader to use); a backend that can gives them
        one snapshot."""
        return read(self._rows)

    # Apps and tokens.
    def add_app(self, app_id: str, secret_key: str) -> None:
        self._write(
            "INSERT INTO apps VALUES (?, ?)"
            " ON CONFLICT (app_id) DO UPDATE SET secret_key=excluded.secret_key",
            (app_id, secret_key),
        )

    def app_secret(self, app_id: str) -> str | None:
        rows = self._rows("SELECT secret_key FROM apps WHERE app_id=?", (app_id,))
        return str(rows[0]["secret_key"]) if rows else None

    def app_ids(self) -> list[str]:
        return [str(r["app_id"]) for r in self._rows("SELECT app_id FROM apps ORDER BY app_id")]

    def set_token(self, app_id: str, token: str, expire_at: float) -> None:
        # One row per app: the new token replaces the previous one for every reader at once.
        self._write(
            "INSERT INTO tokens VALUES (?, ?, ?) ON CONFLICT (app_id)"
            " DO UPDATE SET token=excluded.token, expire_at=excluded.expire_at",
            (app_id, token, expire_at),
        )

    def token_app(self, token: str, now: float) -> str | None:
        rows = self._rows("SELECT app_id FROM tokens WHERE token=? AND expire_at > ?", (token, now))
        return str(rows[0]["app_id"]) if rows else None

    def invalidate_tokens(self, app_id: str | None = None) -> int:
        if app_id is None:
            return self._write("DELETE FROM tokens")
        return self._write("DELETE FROM tokens WHERE app_id=?", (app_id,))

    # Files.
    def add_file(self, record: FileRecord) -> None:
        self._insert("files", FILE_COLUMNS, record)

    def get_file(self, file_id: str) -> FileRecord | None:
        rows = self._rows("SELECT * FROM files WHERE id=?", (file_id,))
        return _file(rows[0]) if rows else None

    def update_file(self, file_id: str, **changes: Any) -> None:
        self._update("files", FILE_COLUMNS, file_id, changes)

    def files_awaiting_probe(self) -> list[FileRecord]:
        rows = self._rows(
            "SELECT * FROM files WHERE uploaded_at IS NOT NULL AND checked_status IS NULL"
        )
        return [_file(r) for r in rows]

    def claim_upload(self, file_id: str, size: int, now: float) -> bool:
        return self._write_one(
            "UPDATE files SET bytes=?, uploaded_at=? WHERE id=? AND uploaded_at IS NULL",
            (size, now, file_id),
        )

    # Tasks.
    def add_task(self, record: TaskRecord) -> None:
        self._insert("tasks", TASK_COLUMNS, record)

    def get_task(self, task_id: str) -> TaskRecord | None:
        rows = self._rows("SELECT * FROM tasks WHERE id=?", (task_id,))
        return _task(rows[0]) if rows else None

    def update_task(self, task_id: str, **changes: Any) -> None:
        self._update("tasks", TASK_COLUMNS, task_id, changes)

    def list_tasks(
        self, app_id: str | None, offset: int, limit: int
    ) -> tuple[list[TaskRecord], int]:
        where, args = ("WHERE app_id=?", (app_id,)) if app_id is not None else ("", ())

        def read(rows: Reader) -> tuple[list[TaskRecord], int]:
            total = int(rows(f"SELECT count(*) AS n FROM tasks {where}", args)[0]["n"])
            page = rows(
                f"SELECT * FROM tasks {where} ORDER BY seq DESC LIMIT ? OFFSET ?",
                (*args, limit, offset),
            )
            return [_task(r) for r in page], total

        return self._snapshot(read)

    def unfinished_tasks(self) -> list[TaskRecord]:
        rows = self._rows(f"SELECT * FROM tasks WHERE status IN {UNFINISHED_SQL} ORDER BY seq")
        return [_task(r) for r in rows]

    def claim_task(self, task_id: str) -> int | None:
        rows = self._write_returning(
            f"UPDATE tasks SET status={GENERATING}, progress=0, attempt=attempt+1"
            f" WHERE id=? AND status IN {UNFINISHED_SQL} RETURNING attempt",
            (task_id,),
        )
        return int(rows[0]["attempt"]) if rows else None

    def update_attempt(self, task_id: str, attempt: int, **changes: Any) -> bool:
        sets, values = self._sets(TASK_COLUMNS, changes)
        return self._write_one(
            f"UPDATE tasks SET {sets} WHERE id=? AND attempt=? AND status IN {UNFINISHED_SQL}",
            (*values, task_id, attempt),
        )

    def release_task(self, task_id: str, attempt: int, msg: str) -> bool:
        return self._write_one(
            f"UPDATE tasks SET status={QUEUED}, progress=0, msg=?, attempt=attempt-1"
            f" WHERE id=? AND attempt=? AND status IN {UNFINISHED_SQL}",
            (msg, task_id, attempt),
        )

    # Callbacks waiting for delivery.
    def save_callback(self, record: CallbackRecord) -> None:
        self._write(
            "INSERT INTO callbacks VALUES (?, ?, ?, ?, ?) ON CONFLICT (task_id) DO UPDATE"
            " SET url=excluded.url, payload=excluded.payload, attempt=excluded.attempt,"
            " due_at=excluded.due_at",
            (
                record.task_id,
                record.url,
                self._encode_json(record.payload),
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
                payload=_json(r["payload"]),
                attempt=int(r["attempt"]),
                due_at=float(r["due_at"]),
            )
            for r in rows
        ]

    # Meta.
    def get_meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key=?", (key,))
        return str(rows[0]["value"]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._write(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def set_meta_once(self, key: str, value: str) -> str:
        self._write("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, value))
        held = self.get_meta(key)
        return value if held is None else held

    # Helpers.
    def _write_one(self, sql: str, args: tuple[Any, ...]) -> bool:
        """A conditional write: True for the one caller whose write changed the row."""
        return self._write(sql, args) == 1

    def _insert(
        self, table: str, columns: tuple[str, ...], record: FileRecord | TaskRecord
    ) -> None:
        values = tuple(self._encode(getattr(record, c)) for c in columns)
        marks = ", ".join("?" * len(columns))
        self._write(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values)

    def _update(
        self, table: str, columns: tuple[str, ...], key: str, changes: dict[str, Any]
    ) -> None:
        if not changes:
            return
        sets, values = self._sets(columns, changes)
        self._write(f"UPDATE {table} SET {sets} WHERE id=?", (*values, key))

    def _sets(
        self, columns: tuple[str, ...], changes: dict[str, Any]
    ) -> tuple[str, tuple[Any, ...]]:
        """``changes`` as a SET clause and its values; a record's id never changes."""
        unknown = set(changes) - set(columns) - {"id"}
        if unknown or "id" in changes:
            raise KeyError(f"cannot update {sorted(unknown | ({'id'} & set(changes)))}")
        sets = ", ".join(f"{c}=?" for c in changes)
        return sets, tuple(self._encode(v) for v in changes.values())

    def _encode(self, value: Any) -> Any:
        return self._encode_json(value) if isinstance(value, dict) else value


def _json(value: Any) -> dict[str, Any]:
    """A JSON column's value: text on SQLite, already decoded on PostgreSQL."""
    return dict(json.loads(value) if isinstance(value, str) else value)


def _file(row: Row) -> FileRecord:
    return FileRecord(**{c: row[c] for c in FILE_COLUMNS})


def _task(row: Row) -> TaskRecord:
    values = {c: row[c] for c in TASK_COLUMNS}
    values["params"] = _json(values["params"])
    return TaskRecord(**values)
