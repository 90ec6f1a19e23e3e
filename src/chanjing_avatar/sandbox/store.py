"""The metadata store: the records the sandbox keeps, and the interface any backend implements.

``SqliteStore`` (store_sqlite.py) keeps an embedded sandbox's state; ``PostgresStore``
(store_postgres.py) is shared by any number of API replicas and workers. Both run the statements
of ``SqlStore`` (store_sql.py). Records are plain dataclasses; times are unix seconds.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._wire import TaskStatus


class BackendUnavailable(Exception):
    """The database or the object store did not answer: retry later; nothing was changed."""


@dataclass(frozen=True)
class FileRecord:
    id: str
    app_id: str
    service: str
    name: str
    mime_type: str
    blob_key: str
    create_time: int
    bytes: int = 0
    uploaded_at: float | None = None  # when the PUT completed
    checked_status: int | None = (
        None  # READY or CHECK_FAILED once probed (shown after the sync delay)
    )
    msg: str = ""
    forced_status: int | None = None  # an injected file_98 fault wins over the probe


@dataclass(frozen=True)
class FileState:
    """A file with what file_detail shows of it (processing until synced and probed)."""

    record: FileRecord
    status: int
    msg: str


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expire_in: int  # epoch seconds, rounded down


@dataclass(frozen=True)
class TaskRecord:
    id: str
    app_id: str
    create_time: int
    params: dict[str, Any] = field(default_factory=dict)  # the validated create body
    status: int = int(TaskStatus.QUEUED)
    progress: int = 0
    msg: str = ""
    duration_ms: int = 0
    callback: str = ""
    fail_msg: str = ""  # an injected task failure, applied when the task runs
    seed: int = 0
    finished_at: float | None = None
    attempt: int = 0  # renders started; a result or terminal state is published by one only


@dataclass(frozen=True)
class CallbackRecord:
    """A task callback not yet delivered (nor given up): what a restart must send again."""

    task_id: str
    url: str
    payload: dict[str, Any]
    attempt: int = 1  # the attempt to make next
    due_at: float = 0.0  # wall-clock unix time of that attempt


class CallbackLog(Protocol):
    """Where undelivered callbacks wait (a Store provides it)."""

    def save_callback(self, record: CallbackRecord) -> None:
        """Insert or replace the task's pending callback."""
        ...

    def delete_callback(self, task_id: str) -> None: ...
    def pending_callbacks(self) -> list[CallbackRecord]: ...


class Store(CallbackLog, Protocol):
    # Apps and tokens.
    def add_app(self, app_id: str, secret_key: str) -> None: ...
    def app_secret(self, app_id: str) -> str | None: ...
    def app_ids(self) -> list[str]: ...
    def set_token(self, app_id: str, token: str, expire_at: float) -> None:
        """Make ``token`` the app's only valid token (the previous one stops working)."""
        ...

    def token_app(self, token: str, now: float) -> str | None:
        """The app_id of a current, unexpired token; None otherwise."""
        ...

    def invalidate_tokens(self, app_id: str | None = None) -> int: ...

    # Files.
    def add_file(self, record: FileRecord) -> None: ...
    def get_file(self, file_id: str) -> FileRecord | None: ...
    def update_file(self, file_id: str, **changes: Any) -> None: ...
    def files_awaiting_probe(self) -> list[FileRecord]: ...

    # Tasks.
    def add_task(self, record: TaskRecord) -> None: ...
    def get_task(self, task_id: str) -> TaskRecord | None: ...
    def update_task(self, task_id: str, **changes: Any) -> None: ...
    def list_tasks(
        self, app_id: str | None, offset: int, limit: int
    ) -> tuple[list[TaskRecord], int]:
        """Newest first; ``app_id`` None lists every app's tasks. Returns (page, total)."""
        ...

    def unfinished_tasks(self) -> list[TaskRecord]: ...

    def claim_task(self, task_id: str) -> int | None:
        """Start a render: GENERATING, progress 0, ``attempt`` + 1 (returned); None when the task
        is gone or already finished."""
        ...

    def update_attempt(self, task_id: str, attempt: int, **changes: Any) -> bool:
        """Apply ``changes`` (progress, or a terminal state) only while ``attempt`` is the
        current, unfinished render: exactly one render publishes; a late one gets False and
        changes nothing."""
        ...

    def release_task(self, task_id: str, attempt: int, msg: str) -> bool:
        """Give an unfinished render back (QUEUED, the attempt not counted)."""
        ...

    def claim_upload(self, file_id: str, size: int, now: float) -> bool:
        """Record that a file's bytes arrived; True for the one caller that recorded it."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """Group the calls made inside into one transaction (with the jobs they submit, on
        backends that share it with the queue)."""
        ...

    def ping(self) -> None:
        """Raise BackendUnavailable when the store cannot be reached."""
        ...

    # Small server settings (e.g. the signing key).
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def set_meta_once(self, key: str, value: str) -> str:
        """Store ``value`` unless the key has one already; returns the value that holds (so
        replicas starting together agree)."""
        ...

    def close(self) -> None: ...
