"""Exit codes and the mapping from every exception to one line of text: the only place for both.

Documented codes (docs/cli.md): 0 success; 1 API error or task failed; 2 bad usage or bad input;
3 authentication; 4 timeout; 5 outcome unknown; 130 interrupted.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    AUTH = 3
    TIMEOUT = 4
    UNKNOWN = 5
    INTERRUPTED = 130


# What the error line may mention about the command's target (set once the client exists).
CONTEXT: dict[str, str] = {}


class CliError(Exception):
    """An error of the CLI's own (bad input found before any request), reported as one line."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Failure:
    code: ExitCode
    message: str  # one line: what went wrong and what to do
    detail: str | None = None  # for --verbose; never a secret


def _click_exceptions() -> tuple[type[Exception], type[Exception]]:
    # Recent typer vendors click as typer._click; older typer uses click itself.
    import importlib

    try:
        ce = importlib.import_module("typer._click.exceptions")
    except ImportError:  # pragma: no cover
        ce = importlib.import_module("click.exceptions")
    return ce.ClickException, ce.UsageError


def _click_message(exc: Exception) -> str:
    fmt = getattr(exc, "format_message", None)
    return str(fmt()) if callable(fmt) else str(exc)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def shown_path(filename: object) -> str:
    """The path a user knows: a download's hidden ``.NAME.part`` is shown as ``NAME``."""
    import os

    name = os.fsdecode(filename) if isinstance(filename, (str, bytes)) else str(filename)
    head, tail = os.path.split(name)
    for suffix in (".part.json", ".part"):
        if tail.startswith(".") and tail.endswith(suffix) and len(tail) > len(suffix) + 1:
            return os.path.join(head, tail[1:-len(suffix)])
    return name


def with_path(exc: OSError, path: object) -> OSError:
    """``exc`` naming ``path`` when it names no file (a write to an open file names none)."""
    if exc.filename is None:
        exc.filename = str(path)
    return exc


def describe(exc: BaseException) -> Failure:
    """How the CLI reports ``exc``: exit code, one line, optional detail."""
    ClickException, UsageError = _click_exceptions()

    if isinstance(exc, CliError):
        return Failure(exc.code, exc.message)
    if isinstance(exc, KeyboardInterrupt):
        return Failure(ExitCode.INTERRUPTED, "interrupted")
    if isinstance(exc, UsageError):
        hint = ""
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            hint = f" (see: {ctx.command_path} --help)"
        return Failure(ExitCode.USAGE, _one_line(_click_message(exc)) + hint)
    if isinstance(exc, ClickException):
        return Failure(ExitCode.USAGE, _one_line(_click_message(exc)))
    failure = _describe_client_error(exc)
    if failure is not None:
        return failure
    if isinstance(exc, FileExistsError) and exc.filename:
        return Failure(ExitCode.USAGE, f"{exc.filename} exists; use --overwrite to replace it")
    if isinstance(exc, FileNotFoundError):
        return Failure(ExitCode.USAGE, f"no such file: {exc.filename}")
    if isinstance(exc, IsADirectoryError):
        return Failure(ExitCode.USAGE, f"is a directory, not a file: {exc.filename}")
    if isinstance(exc, PermissionError):
        return Failure(ExitCode.USAGE, f"permission denied: {shown_path(exc.filename)}")
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f" at {shown_path(exc.filename)}" if exc.filename else ""
        return Failure(ExitCode.FAILED, f"disk full{where}")
    if isinstance(exc, OSError):
        where = f": {shown_path(exc.filename)}" if exc.filename else ""
        return Failure(ExitCode.USAGE, f"{exc.strerror or exc}{where}")
    return Failure(
        ExitCode.FAILED,
        f"unexpected error ({type(exc).__name__}): {_one_line(str(exc)) or 'no message'}; "
        "run again with --verbose and report it",
    )


def _describe_client_error(exc: BaseException) -> Failure | None:
    import chanjing_avatar as E

    if not isinstance(exc, E.ChanjingError):
        return None
    msg = _one_line(exc.msg)
    detail_parts = [f"{type(exc).__name__}"]
    if exc.code is not None:
        detail_parts.append(f"code={exc.code}")
    if exc.endpoint:
        detail_parts.append(f"endpoint={exc.endpoint}")
    if exc.trace_id:
        detail_parts.append(f"trace_id={exc.trace_id}")
    detail = " ".join(detail_parts)

    if isinstance(exc, E.MissingCredentialsError):
        return Failure(ExitCode.AUTH, f"{msg} (set them with: chanjing-avatar auth set)", detail)
    if isinstance(exc, E.CredentialsFileError):
        return Failure(
            ExitCode.AUTH, f"{msg} (or write it again with: chanjing-avatar auth set)", detail
        )
    if isinstance(exc, E.InsecureBaseUrlError):
        return Failure(ExitCode.USAGE, f"refusing plain http:// base URL {exc.host!r}: tokens "
                       "would travel in clear; use https:// or a loopback address", detail)
    if isinstance(exc, E.ConfigurationError):  # a malformed base URL
        return Failure(ExitCode.USAGE, msg, detail)
    if isinstance(exc, E.InvalidRequestError):
        return Failure(ExitCode.USAGE, msg, detail)
    if isinstance(exc, E.AuthenticationError):
        return Failure(
            ExitCode.AUTH,
            f"authentication failed: {msg}; check the app id and secret key "
            "(chanjing-avatar auth status / auth set)",
            detail,
        )
    if isinstance(exc, E.WaitTimeoutError):
        return Failure(
            ExitCode.TIMEOUT, f"{msg}; the task may still finish: check it later", detail
        )
    if isinstance(exc, E.OutcomeUnknownError):
        sent = exc.sent_at.isoformat(timespec="seconds")
        return Failure(
            ExitCode.UNKNOWN,
            f"{msg}; the task may or may not exist: look for one created around {sent} with "
            "`chanjing-avatar list` before creating it again",
            detail,
        )
    if isinstance(exc, E.TaskFailedError):
        extra = " (billing: top up the account)" if exc.is_billing else ""
        return Failure(ExitCode.FAILED, f"{msg}{extra}", detail)
    if isinstance(exc, E.QuotaExhaustedError):
        return Failure(ExitCode.FAILED, f"{msg}; the production quota is used up", detail)
    if isinstance(exc, E.RateLimitError):
        return Failure(ExitCode.FAILED, f"{msg}; rate limit: wait a minute and try again", detail)
    if isinstance(exc, E.TransportError) and not isinstance(exc, E.DownloadError):
        status = f" http_status={exc.http_status}" if exc.http_status else ""
        where = CONTEXT.get("base_url") or "the base URL"
        return Failure(
            ExitCode.FAILED,
            f"{msg}; check the network and {where} (--base-url, CHANJING_OPENAPI_BASE_URL)",
            detail + status,
        )
    return Failure(ExitCode.FAILED, msg, detail)
