"""``Store`` on PostgreSQL, shared by every API replica and worker (psycopg 3, a connection pool).

The schema is versioned (``migrations/NNNN_*.sql`` then the job queue's own tables) and applied
once, under an advisory lock, by ``migrate``. Rate limits are counted here too, so they hold per
app_id across all replicas together. A ``transaction()`` block runs every call made inside it, and
the jobs the queue defers meanwhile, on one connection: they commit or vanish together. The
statements and records are ``SqlStore``'s (store_sql.py), as on SQLite.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from .._wire import RateLimit
from .store import BackendUnavailable
from .store_sql import Reader, SqlStore

log = logging.getLogger("chanjing_avatar.sandbox")

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


class PostgresStore(SqlStore):
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
            # No check on checkout (a round trip per query: 1.37x the detail throughput without
            # it): a connection broken by an outage fails its own query (50000) and the pool
            # drops it when it comes back.
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
                cur.execute(_native(sql), args)
                return cur.fetchall() if cur.description else []

        return self._run(work)

    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        def work(conn: psycopg.Connection[Any]) -> int:
            return conn.execute(_native(sql), args).rowcount

        return self._run(work)

    def _write_returning(self, sql: str, args: tuple[Any, ...]) -> list[Row]:
        return self._rows(sql, args)  # autocommit, or the caller's transaction

    def _snapshot(self, read: Callable[[Reader], T]) -> T:
        if self.active_connection() is not None:
            # Inside a caller's transaction the isolation level is already fixed.
            return read(self._rows)

        def work(conn: psycopg.Connection[Any]) -> T:
            # One snapshot for every read (a count and its page agree under concurrent creates).
            with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                cur.execute(b"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")

                def rows(sql: str, args: tuple[Any, ...]) -> list[Row]:
                    cur.execute(_native(sql), args)
                    return cur.fetchall()

                return read(rows)

        return self._run(work)

    def _encode_json(self, value: dict[str, Any]) -> Jsonb:
        return Jsonb(value)

    def ping(self) -> None:
        # Readiness answers quickly, however long calls may wait for the database.
        try:
            with self._pool.connection(timeout=min(self._wait_s, 3.0)) as conn:
                conn.execute(b"SELECT 1")
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as err:
            raise BackendUnavailable(f"PostgreSQL: {_reason(err)}") from None

    def close(self) -> None:
        self._pool.close(timeout=5)

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


def _native(sql: str) -> bytes:
    """A shared statement (``?`` placeholders) in psycopg's style."""
    return sql.replace("?", "%s").encode()
