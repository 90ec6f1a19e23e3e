"""What a flow asks its driver to do, and what the driver hands back.

A flow is a generator: ``reply = yield Send(...)``, ``yield Sleep(s)``,
``value = yield WithStoreLock(subflow)``. It does no I/O on the network and never sleeps by
itself; the sync and async drivers carry the effects out, so the logic exists once.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeVar, Union

import httpx

from ._redact import redact_url

T = TypeVar("T")

ProgressFn = Callable[[int, int], None]  # (bytes done, bytes in all)


@dataclass(frozen=True)
class FileBody:
    """A request body streamed from a file: ``length`` bytes starting at ``start``.

    The driver opens (or seeks) the source afresh for every send, so a retry never resends a
    consumed stream.
    """

    source: Path | BinaryIO
    start: int
    length: int
    on_progress: ProgressFn | None = None


@dataclass(frozen=True)
class Sink:
    """Stream a 200/206 response body into ``path``: from ``offset`` on a 206, from 0 on a 200.

    Other statuses are read into ``Reply.content`` and the file is left alone.
    """

    path: Path
    offset: int
    on_progress: ProgressFn | None = None


TimeoutKind = Literal["api", "upload", "download"]


@dataclass(frozen=True, repr=False)
class Send:
    """Send one HTTP request (after taking a slot from rate bucket ``bucket``, if any)."""

    method: str
    url: str
    endpoint: str  # for logs and errors: an API path, or "upload" / "download"
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    body: FileBody | None = None
    sink: Sink | None = None
    bucket: str | None = None
    timeout: TimeoutKind = "api"
    # Called with the wall-clock time just before the request's bytes go out (after any
    # rate-limit wait), once per attempt. If it raises, the request is not sent.
    on_sent: Callable[[float], None] | None = None

    def __repr__(self) -> str:  # headers and bodies may hold the token or the secret key
        return f"Send({self.method} {redact_url(self.url)})"


@dataclass(frozen=True, repr=False)
class Reply:
    """The outcome of a :class:`Send`: a response, or the transport error that stopped it."""

    status: int | None
    headers: httpx.Headers
    content: bytes
    error: httpx.RequestError | None
    sent_at: float  # wall clock when sending started
    written: int = 0  # bytes the sink wrote in this attempt

    def __repr__(self) -> str:  # the body may hold a token
        outcome = type(self.error).__name__ if self.error is not None else self.status
        return f"Reply({outcome}, {len(self.content)} bytes)"

    @classmethod
    def failed(cls, error: httpx.RequestError, sent_at: float, written: int = 0) -> Reply:
        return cls(None, httpx.Headers(), b"", error, sent_at, written)

    @property
    def never_sent(self) -> bool:
        """True only when the request provably did not leave this machine."""
        return isinstance(self.error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class WithStoreLock:
    """Run ``flow`` while holding the shared credentials lock; hand back its result."""

    flow: Flow[Any]


Effect = Union[Send, Sleep, WithStoreLock]  # noqa: UP007
Flow = Generator[Effect, Any, T]
