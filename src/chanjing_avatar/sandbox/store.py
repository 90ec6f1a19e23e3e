"""The metadata store: the records the sandbox keeps, and the interface any backend implements.

``SqliteStore`` (store_sqlite.py) is the one implementation; a PostgreSQL one would implement the
same protocol. Records are plain dataclasses; times are unix seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


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
    checked_status: int | None = None  # 1 or 98 once probed (shown after the sync delay)
    msg: str = ""
    forced_status: int | None = None  # an injected file_98 fault wins over the probe


@dataclass(frozen=True)
class TaskRecord:
    id: str
    app_id: str
    create_time: int
    params: dict[str, Any] = field(default_factory=dict)  # the validated create body
    status: int = 0
    progress: int = 0
    msg: str = ""
    duration_ms: int = 0
    callback: str = ""
    fail_msg: str = ""  # an injected task failure, applied when the task runs
    seed: int = 0
    finished_at: float | None = None


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

    # Small server settings (e.g. the signing key).
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...

    def close(self) -> None: ...
