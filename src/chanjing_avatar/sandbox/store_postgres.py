"""``Store`` on PostgreSQL, shared by every API replica and worker (psycopg 3, a connection pool).

The schema is versioned (``migrations/NNNN_*.sql`` then the job queue's own tables) and applied
once, under an advisory lock, by ``migrate``. Rate limits are counted here too, so they hold per
app_id across all replicas together. A ``transaction()`` block runs every call made inside it, and
the jobs the queue defers meanwhile, on one connection: they commit or vanish together.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from importlib import resources
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from .._wire import RateLimit
from .store import BackendUnavailable, CallbackRecord, FileRecord, TaskRecord

log = logging.getLogger("chanjing_avatar.sandbox")

_FILE_COLUMNS = tuple(f.name for f in fields(FileRecord))
_TASK_COLUMNS = tuple(f.name for f in fields(TaskRecord))
_MIGRATION_LOCK = 0x63686A  # any constant shared by every process that migrates
_CONNECT_TIMEOUT_S = 5

T = TypeVar("T")
Row = dict[str, Any]


def _migrations() -> list[tuple[str, str]]:
    """(version, SQL) in order: our files, then the job queue's schema."""
    folder = resources.files("chanjing_avatar.sandbox") / "migrations"
    ours = sorted(
        (p.name.removesuffix(".sql"), p.read_text(encoding="utf-8"))
        for p in folder.iterdir()
        if p.name.endswith(".sql")
    )
    from procrastinate.schema import SchemaManager

    return [*ours, ("0100_procrastinate_3", SchemaManager.get_schema())]


def migrate(url: str) -> list[str]:
    """Apply the migrations this database lacks; returns the versions applied."""
    applied: list[str] = []
    try:
        with psycopg.connect(url, connect_timeout=_CONNECT_TIMEOUT_S, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS sandbox_migrations"
                    " (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                done = {r[0] for r in conn.execute("SELECT version FROM sandbox_migrations")}
                for version, sql in _migrations():
                    if version in done:
                        continue
                    with conn.transaction():
                        conn.execute(sql.encode())
                        conn.execute(
                            "INSERT INTO sandbox_migrations (version) VALUES (%s)", (version,)
                        )
                    log.info("database migration %s applied", version)
                    applied.append(version)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    except psycopg.OperationalError as err:
        raise BackendUnavailable(f"PostgreSQL: {_reason(err)}") from None
    return applied


def _reason(err: BaseException) -> str:
    """A one-line reason without the connection string (it may hold a password)."""
    text = str(err).strip().splitlines()
    return text[-1] if text else type(err).__name__


class PostgresStore:
    """``wait_s``: how long a call waits for the database to answer before BackendUnavailable
    (short for API replicas, which answer 50000 at once; long for workers, which hold work)."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 10,
        apply_migrations: bool = True,
        wait_s: float = _CONNECT_TIMEOUT_S,
    ):
        if apply_migrations:
            migrate(url)
        self._wait_s = wait_s
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=max(2, max_connections),
            kwargs={"connect_timeout": _CONNECT_TIMEOUT_S, "autocommit": True},
            check=psycopg_pool.ConnectionPool.check_connection,
            timeout=_CONNECT_TIMEOUT_S,
            # Reconnection attempts back off (1, 2, 4 s...); giving up early lets the next
            # request start a fresh attempt, so a replica resumes soon after the database does.
            reconnect_timeout=8.0,
            open=False,
            name="sandbox",
        )
        self._pool.open(wait=False)
        self._local = threading.local()

    # The connection of the current transaction() block, if any (the queue defers on it).
    def active_connection(self) -> psycopg.Connection[Any] | None:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.active_connection() is not None:  # nested: part of the outer one
            yield
            return
        try:
            with self._pool.connection(timeout=self._wait_s) as conn, conn.transaction():
                self._local.conn = conn
                try:
                    yield
                finally:
                    self._local.conn = None
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as err:
            raise BackendUnavailable(f"PostgreSQL: {_reason(err)}") from None

    def _run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        conn = self.active_connection()
        deadline = time.monotonic() + self._wait_s
        while True:
            try:
                if conn is not None:
                    return work(conn)
                with self._pool.connection(timeout=self._wait_s) as fresh:
                    return work(fresh)
            except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as err:
                # A patient store (a worker's) tries again on a fresh connection while the
                # database restarts; a call inside a transaction cannot be replayed.
                patient = self._wait_s > _CONNECT_TIMEOUT_S and conn is None
                if not patient or time.monotonic() > deadline:
                    raise BackendUnavailable(f"PostgreSQL: {_reason(err)}") from None
                time.sleep(0.5)

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[Row]:
        def work(conn: psycopg.Connection[Any]) -> list[Row]:
            with conn.cursor(row_factory=dict_row) as cur:
                cur.execute(sql.encode(), args)
                return cur.fetchall() if cur.description else []

        return self._run(work)

    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        def work(conn: psycopg.Connection[Any]) -> int:
            return conn.execute(sql.encode(), args).rowcount

        return self._run(work)

    def ping(self) -> None:
        # Readiness answers quickly, however long calls may wait for the database.
        try:
            with self._pool.connection(timeout=min(self._wait_s, 3.0)) as conn:
                conn.execute(b"SELECT 1")
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as err:
            raise BackendUnavailable(f"PostgreSQL: {_reason(err)}") from None

    def close(self) -> None:
        self._pool.close(timeout=5)

    # Apps and tokens.
    def add_app(self, app_id: str, secret_key: str) -> None:
        self._write(
            "INSERT INTO apps VALUES (%s, %s)"
            " ON CONFLICT (app_id) DO UPDATE SET secret_key=excluded.secret_key",
            (app_id, secret_key),
        )

    def app_secret(self, app_id: str) -> str | None:
        rows = self._rows("SELECT secret_key FROM apps WHERE app_id=%s", (app_id,))
        return str(rows[0]["secret_key"]) if rows else None

    def app_ids(self) -> list[str]:
        return [str(r["app_id"]) for r in self._rows("SELECT app_id FROM apps ORDER BY app_id")]

    def set_token(self, app_id: str, token: str, expire_at: float) -> None:
        # One row per app: the new token replaces the previous one for every replica at once.
        self._write(
            "INSERT INTO tokens VALUES (%s, %s, %s) ON CONFLICT (app_id)"
            " DO UPDATE SET token=excluded.token, expire_at=excluded.expire_at",
            (app_id, token, expire_at),
        )

    def token_app(self, token: str, now: float) -> str | None:
        rows = self._rows(
            "SELECT app_id FROM tokens WHERE token=%s AND expire_at > %s", (token, now)
        )
        return str(rows[0]["app_id"]) if rows else None

    def invalidate_tokens(self, app_id: str | None = None) -> int:
        if app_id is None:
            return self._write("DELETE FROM tokens")
        return self._write("DELETE FROM tokens WHERE app_id=%s", (app_id,))

    # Rate limits, counted across every replica.
    def rate_hit(self, app_id: str, limit: RateLimit, window_s: float) -> bool:
        """Count one request of ``app_id`` in ``limit``'s bucket; False when over the limit."""

        def work(conn: psycopg.Connection[Any]) -> bool:
            with conn.transaction():
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    (f"{app_id}\n{limit.bucket}",),
                )
                conn.execute(
                    "DELETE FROM rate_hits WHERE app_id=%s AND bucket=%s"
                    " AND at <= clock_timestamp() - make_interval(secs => %s)",
                    (app_id, limit.bucket, window_s),
                )
                row = conn.execute(
                    "SELECT count(*) FROM rate_hits WHERE app_id=%s AND bucket=%s",
                    (app_id, limit.bucket),
                ).fetchone()
                if row is not None and int(row[0]) >= limit.count:
                    return False
                conn.execute(
                    "INSERT INTO rate_hits VALUES (%s, %s, clock_timestamp())",
                    (app_id, limit.bucket),
                )
                return True

        return self._run(work)

    # Files.
    def add_file(self, record: FileRecord) -> None:
        self._insert("files", _FILE_COLUMNS, record)

    def get_file(self, file_id: str) -> FileRecord | None:
        rows = self._rows("SELECT * FROM files WHERE id=%s", (file_id,))
        return FileRecord(**{c: rows[0][c] for c in _FILE_COLUMNS}) if rows else None

    def update_file(self, file_id: str, **changes: Any) -> None:
        self._update("files", _FILE_COLUMNS, file_id, changes)

    def files_awaiting_probe(self) -> list[FileRecord]:
        rows = self._rows(
            "SELECT * FROM files WHERE uploaded_at IS NOT NULL AND checked_status IS NULL"
        )
        return [FileRecord(**{c: r[c] for c in _FILE_COLUMNS}) for r in rows]

    def claim_upload(self, file_id: str, size: int, now: float) -> bool:
        return (
            self._write(
                "UPDATE files SET bytes=%s, uploaded_at=%s WHERE id=%s AND uploaded_at IS NULL",
                (size, now, file_id),
            )
            == 1
        )

    # Tasks.
    def add_task(self, record: TaskRecord) -> None:
        self._insert("tasks", _TASK_COLUMNS, record)

    def get_task(self, task_id: str) -> TaskRecord | None:
        rows = self._rows("SELECT * FROM tasks WHERE id=%s", (task_id,))
        return _task(rows[0]) if rows else None

    def update_task(self, task_id: str, **changes: Any) -> None:
        self._update("tasks", _TASK_COLUMNS, task_id, changes)

    def list_tasks(
        self, app_id: str | None, offset: int, limit: int
    ) -> tuple[list[TaskRecord], int]:
        where, args = ("WHERE app_id=%s", (app_id,)) if app_id is not None else ("", ())

        def work(conn: psycopg.Connection[Any]) -> tuple[list[TaskRecord], int]:
            # One snapshot for the count and the page, so they agree under concurrent creates.
            with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                cur.execute(b"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cur.execute(f"SELECT count(*) AS n FROM tasks {where}".encode(), args)
                counted = cur.fetchone()
                total = int(counted["n"]) if counted else 0
                cur.execute(
                    f"SELECT * FROM tasks {where} ORDER BY seq DESC LIMIT %s OFFSET %s".encode(),
                    (*args, limit, offset),
                )
                return [_task(r) for r in cur.fetchall()], total

        if self.active_connection() is None:
            return self._run(work)
        # Inside a caller's transaction the isolation level is already fixed.
        total = int(self._rows(f"SELECT count(*) AS n FROM tasks {where}", args)[0]["n"])
        rows = self._rows(
            f"SELECT * FROM tasks {where} ORDER BY seq DESC LIMIT %s OFFSET %s",
            (*args, limit, offset),
        )
        return [_task(r) for r in rows], total

    def unfinished_tasks(self) -> list[TaskRecord]:
        rows = self._rows("SELECT * FROM tasks WHERE status IN (0, 10) ORDER BY seq")
        return [_task(r) for r in rows]

    def claim_task(self, task_id: str) -> int | None:
        rows = self._rows(
            "UPDATE tasks SET status=10, progress=0, attempt=attempt+1"
            " WHERE id=%s AND status IN (0, 10) RETURNING attempt",
            (task_id,),
        )
        return int(rows[0]["attempt"]) if rows else None

    def update_attempt(self, task_id: str, attempt: int, **changes: Any) -> bool:
        _check_columns(_TASK_COLUMNS, changes)
        sets = ", ".join(f"{c}=%s" for c in changes)
        values = tuple(_encode(v) for v in changes.values())
        return (
            self._write(
                f"UPDATE tasks SET {sets} WHERE id=%s AND attempt=%s AND status IN (0, 10)",
                (*values, task_id, attempt),
            )
            == 1
        )

    def release_task(self, task_id: str, attempt: int, msg: str) -> bool:
        return (
            self._write(
                "UPDATE tasks SET status=0, progress=0, msg=%s, attempt=attempt-1"
                " WHERE id=%s AND attempt=%s AND status IN (0, 10)",
                (msg, task_id, attempt),
            )
            == 1
        )

    # Callbacks waiting for delivery (the embedded sender's journal; workers use the queue).
    def save_callback(self, record: CallbackRecord) -> None:
        self._write(
            "INSERT INTO callbacks VALUES (%s, %s, %s, %s, %s) ON CONFLICT (task_id) DO UPDATE"
            " SET url=excluded.url, payload=excluded.payload, attempt=excluded.attempt,"
            " due_at=excluded.due_at",
            (record.task_id, record.url, Jsonb(record.payload), record.attempt, record.due_at),
        )

    def delete_callback(self, task_id: str) -> None:
        self._write("DELETE FROM callbacks WHERE task_id=%s", (task_id,))

    def pending_callbacks(self) -> list[CallbackRecord]:
        rows = self._rows("SELECT * FROM callbacks ORDER BY due_at")
        return [
            CallbackRecord(
                task_id=str(r["task_id"]),
                url=str(r["url"]),
                payload=dict(r["payload"]),
                attempt=int(r["attempt"]),
                due_at=float(r["due_at"]),
            )
            for r in rows
        ]

    # Meta.
    def get_meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key=%s", (key,))
        return str(rows[0]["value"]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._write(
            "INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def set_meta_once(self, key: str, value: str) -> str:
        """Store ``value`` unless the key has one already; returns the value that holds."""
        self._write("INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO NOTHING", (key, value))
        held = self.get_meta(key)
        return value if held is None else held

    # Helpers.
    def _insert(
        self, table: str, columns: tuple[str, ...], record: FileRecord | TaskRecord
    ) -> None:
        values = tuple(_encode(getattr(record, c)) for c in columns)
        marks = ", ".join(["%s"] * len(columns))
        self._write(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values)

    def _update(
        self, table: str, columns: tuple[str, ...], key: str, changes: dict[str, Any]
    ) -> None:
        _check_columns(columns, changes)
        if not changes:
            return
        sets = ", ".join(f"{c}=%s" for c in changes)
        values = tuple(_encode(v) for v in changes.values())
        self._write(f"UPDATE {table} SET {sets} WHERE id=%s", (*values, key))


def _check_columns(columns: tuple[str, ...], changes: dict[str, Any]) -> None:
    unknown = set(changes) - set(columns) - {"id"}
    if unknown or "id" in changes:
        raise KeyError(f"cannot update {sorted(unknown | ({'id'} & set(changes)))}")


def _encode(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, dict) else value


def _task(row: Row) -> TaskRecord:
    values = {c: row[c] for c in _TASK_COLUMNS}
    if isinstance(values["params"], str):
        values["params"] = json.loads(values["params"])
    return TaskRecord(**values)
