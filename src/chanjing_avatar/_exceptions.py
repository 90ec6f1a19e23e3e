"""Errors raised by the client. Every one is a :class:`ChanjingError`.

::

    ChanjingError                 code, msg, trace_id, endpoint
    ├── ConfigurationError        the client cannot be set up (also a ValueError)
    │   ├── MissingCredentialsError   no app_id/secret_key anywhere
    │   ├── CredentialsFileError      credentials.json unreadable, corrupt or unsafe; .path
    │   │   └── CredentialsConflictError  it holds another app's keys; .other_app_id
    │   └── InsecureBaseUrlError      a plain http:// base URL that is not loopback
    ├── InvalidRequestError       400 / 40000, or a local check failed; .field names the culprit
    ├── AuthenticationError       10400 / 10401, or the app_id/secret_key pair was refused
    ├── RateLimitError            40001 after the retries ran out
    ├── QuotaExhaustedError       40002: production quota reached; stop
    ├── ContentRejectedError      50011, or an uploaded file failed the content check (status 98)
    ├── FileUnavailableError      an uploaded file was deleted or purged (status 99 / 100)
    ├── ServerError               50000 / 51000 (or an unknown code) after the retries ran out
    ├── TaskFailedError           a task ended with status 30; .task, .reason, .is_billing
    ├── WaitTimeoutError          a wait ran past its deadline; .last (the last task or file seen)
    ├── TransportError            network failure, non-JSON or HTML gateway answer; .http_status
    │   └── DownloadError         a download ended short or with an unexpected answer
    └── OutcomeUnknownError       a paid create may or may not have been processed;
                                  .request and .sent_at, to reconcile against the task list

Messages never contain the secret key, tokens or URL signatures.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import FileDetail, Task

__all__ = [
    "AuthenticationError",
    "ChanjingError",
    "ConfigurationError",
    "ContentRejectedError",
    "CredentialsConflictError",
    "CredentialsFileError",
    "DownloadError",
    "FileUnavailableError",
    "InsecureBaseUrlError",
    "InvalidRequestError",
    "MissingCredentialsError",
    "OutcomeUnknownError",
    "QuotaExhaustedError",
    "RateLimitError",
    "ServerError",
    "TaskFailedError",
    "TransportError",
    "WaitTimeoutError",
]


class ChanjingError(Exception):
    """Base of every error raised by the client.

    ``code`` is the envelope code when the server gave one (None otherwise), ``msg`` the server's or
    our own message, ``trace_id`` the server's trace id (quote it to the vendor's support), and
    ``endpoint`` the API path involved.
    """

    def __init__(
        self,
        msg: str,
        *,
        code: int | None = None,
        trace_id: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(msg)
        self.msg = msg
        self.code = code
        self.trace_id = trace_id
        self.endpoint = endpoint

    def __str__(self) -> str:
        parts = []
        if self.code is not None:
            parts.append(f"[{self.code}]")
        parts.append(self.msg)
        extra = []
        if self.endpoint:
            extra.append(f"endpoint={self.endpoint}")
        if self.trace_id:
            extra.append(f"trace_id={self.trace_id}")
        if extra:
            parts.append(f"({', '.join(extra)})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(msg={self.msg!r}, code={self.code!r}, "
            f"trace_id={self.trace_id!r}, endpoint={self.endpoint!r})"
        )


class ConfigurationError(ChanjingError, ValueError):
    """The client cannot be set up: missing app_id/secret_key, or a refused base URL."""


class MissingCredentialsError(ConfigurationError):
    """No app_id/secret_key in the arguments, the environment or the credentials file."""


class CredentialsFileError(ConfigurationError):
    """The credentials file exists but cannot be read or is not a JSON object. ``path`` names it;
    fix it or delete it (and store the keys again)."""

    def __init__(self, msg: str, *, path: Path, **kw: Any) -> None:
        super().__init__(msg, **kw)
        self.path = path


class CredentialsConflictError(CredentialsFileError):
    """Storing keys would replace the credentials file of another app (``other_app_id``), whose
    clients would then act as this one. Replace it on purpose (``force``; a backup is kept) or
    use another folder."""

    def __init__(self, msg: str, *, path: Path, other_app_id: str, **kw: Any) -> None:
        super().__init__(msg, path=path, **kw)
        self.other_app_id = other_app_id


class InsecureBaseUrlError(ConfigurationError):
    """A plain ``http://`` base URL that is not a loopback address, without ``allow_http``.
    ``host`` names it."""

    def __init__(self, host: str, **kw: Any) -> None:
        super().__init__(
            f"refusing plain http:// base_url {host!r}: tokens would travel in clear; "
            "use https://, a loopback address, or pass allow_http=True", **kw
        )
        self.host = host


class InvalidRequestError(ChanjingError, ValueError):
    """The request is wrong (400 / 40000, or a local check). Never retried.

    ``field`` names the offending field when the server or the local check says which.
    """

    def __init__(self, msg: str, *, field: str | None = None, **kw: Any) -> None:
        super().__init__(msg, **kw)
        self.field = field


class AuthenticationError(ChanjingError):
    """The token was refused after one refresh, or the app_id/secret_key pair is wrong."""


class RateLimitError(ChanjingError):
    """The server kept answering 40001 after every retry."""


class QuotaExhaustedError(ChanjingError):
    """40002: the account's production quota is used up. Retrying does not help."""


class ContentRejectedError(ChanjingError):
    """50011 (non-compliant text), or an uploaded file failed the content check (status 98)."""


class FileUnavailableError(ChanjingError):
    """An uploaded file was deleted (99) or purged (100)."""


class ServerError(ChanjingError):
    """50000 / 51000 or an unknown code, still failing after every retry."""


class TaskFailedError(ChanjingError):
    """A lip-sync task ended with status 30. ``reason`` is the server's message.

    ``is_billing`` is true when the reason is a billing failure (balance, beans, charge).
    """

    def __init__(self, task: Task, **kw: Any) -> None:
        from ._wire import is_billing_failure

        reason = task.msg or "task failed"
        kw.setdefault("endpoint", None)
        super().__init__(f"task {task.id} failed: {reason}", **kw)
        self.task = task
        self.reason = reason
        self.is_billing = is_billing_failure(reason)


class WaitTimeoutError(ChanjingError):
    """A wait passed its deadline. ``last`` is the last task or file detail seen (or None).

    From ``wait_many``: ``done`` holds the tasks that finished, ``pending`` the last state seen of
    the others.
    """

    def __init__(
        self,
        msg: str,
        *,
        last: Task | FileDetail | None = None,
        done: dict[str, Task] | None = None,
        pending: dict[str, Task] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(msg, **kw)
        self.last = last
        self.done = done or {}
        self.pending = pending or {}


class TransportError(ChanjingError):
    """No usable answer: a network failure, or a non-JSON / HTML answer (e.g. a 502 gateway page).

    ``http_status`` is the HTTP status when there was a response.
    """

    def __init__(self, msg: str, *, http_status: int | None = None, **kw: Any) -> None:
        super().__init__(msg, **kw)
        self.http_status = http_status


class DownloadError(TransportError):
    """A download could not be completed (short body, unexpected status, length mismatch)."""


class OutcomeUnknownError(ChanjingError):
    """A paid ``create`` was sent but its outcome is unknown (e.g. a read timeout after sending).

    It was NOT retried, to avoid paying twice. ``request`` is the body that was sent (a dict) and
    ``sent_at`` the time it was sent: look for a task created around then (``lipsync.list``)
    before creating again. ``http_status`` is set when a gateway answered.
    """

    def __init__(
        self,
        msg: str,
        *,
        request: dict[str, Any],
        sent_at: datetime,
        http_status: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(msg, **kw)
        self.request = request
        self.sent_at = sent_at
        self.http_status = http_status
