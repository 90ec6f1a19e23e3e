"""What the sync and async drivers share: settings, the flow context, limits, logging.

Only setup and bookkeeping live here; the logic is in ``_core`` and the I/O in the two drivers.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Literal

import httpx

from ._config import (
    DEFAULT_TIMEOUT,
    DEFAULT_UPLOAD_TIMEOUT,
    RateLimits,
    configure_logging_from_env,
    resolve_settings,
)
from ._core import Context, RateLimiter, Reply, RetryPolicy, Send, Sink
from ._core._calls import current_token
from ._core._download import open_sink
from ._core._ratelimit import CHECKS, Slot
from ._core._redact import redact_url
from ._credentials import CredentialsStore, read_credentials_file
from ._exceptions import ChanjingError
from ._ratelimit_file import FileRateLimiter, state_path
from ._wire import TOKEN_HEADER

log = logging.getLogger("chanjing_avatar")

CHUNK = 1024 * 1024
LOCK_TIMEOUT_S = 120.0

# Serialises the reset after a fork (a new lock in each child: the parent's may be held).
_fork_lock = threading.Lock()


def _new_fork_lock() -> None:
    global _fork_lock
    _fork_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_fork_lock)


def _timeout(value: float | httpx.Timeout | None, default: httpx.Timeout) -> httpx.Timeout:
    if value is None:
        return default
    return value if isinstance(value, httpx.Timeout) else httpx.Timeout(value)


class BaseClient:
    """Common construction of :class:`Client` and :class:`AsyncClient`."""

    def __init__(
        self,
        app_id: str | None,
        secret_key: str | None,
        *,
        base_url: str | None,
        credentials_dir: str | os.PathLike[str] | None,
        timeout: float | httpx.Timeout | None,
        upload_timeout: float | httpx.Timeout | None,
        max_retries: int,
        rate_limits: RateLimits | Literal[False] | None,
        allow_http: bool,
        clock: Callable[[], float] | None,
    ) -> None:
        configure_logging_from_env()
        settings = resolve_settings(
            app_id, secret_key, base_url=base_url, credentials_dir=credentials_dir,
            allow_http=allow_http,
        )
        self.base_url = settings.base_url
        self.app_id = settings.app_id
        self._store = CredentialsStore(settings.credentials_dir, settings.app_id,
                                       settings.secret_key)
        self._clock = clock or time.monotonic
        self._ctx = Context(
            base_url=settings.base_url,
            app_id=settings.app_id,
            secret_key=settings.secret_key,
            store=self._store,
            clock=self._clock,
            wall=time.time,
            rng=random.Random(),
            retry=RetryPolicy(max_retries=max_retries),
        )
        limits = RateLimits() if rate_limits is None else rate_limits
        self._limits = limits
        # Shared with this app's other processes through a file beside the credentials file,
        # made at the first limited request (the folder exists once a token was stored); a
        # replaced clock is this client's own, so its limiter is too.
        self._share_limits = clock is None
        self._limiter_path = state_path(settings.credentials_dir, settings.base_url,
                                        settings.app_id)
        self._limiter_lock = threading.Lock()
        self._limiter: RateLimiter | FileRateLimiter | None = None
        self._pid = os.getpid()
        api_timeout = _timeout(timeout, DEFAULT_TIMEOUT)
        self._timeouts = {
            "api": api_timeout,
            "upload": _timeout(upload_timeout, DEFAULT_UPLOAD_TIMEOUT),
            "download": api_timeout,
        }

    # -- processes: a forked child must share nothing tied to the parent's process ------------

    def _check_process(self) -> None:
        """Called before every use: in a child forked since the last call, reset first."""
        if self._pid == os.getpid():
            return
        with _fork_lock:
            if self._pid != os.getpid():
                self._after_fork()
                self._pid = os.getpid()

    def _after_fork(self) -> None:
        """The parent's connections (answers would cross between processes), its rate-limit
        slots (booked by threads that do not exist here) and its random state (every child
        would back off in step) stay with the parent. The token is shared through the file and
        kept; the credential locks are made anew per process by ``_credentials``."""
        self._limiter = None
        self._limiter_lock = threading.Lock()
        self._ctx.rng = random.Random()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} base_url={self.base_url!r} app_id={self.app_id!r}>"

    @property
    def credentials_file(self) -> Path:
        """The file holding this app's shared token (``credentials.json``, or
        ``credentials-<app_id>.json`` beside it when that one belongs to another app)."""
        return self._store.path

    def secrets(self) -> list[str]:
        """Every secret this client knows, for a caller that must scrub its own output: the
        secret key, the token in memory and the ones in its credentials file (read now, so a
        token refreshed meanwhile is included). Never logged or shown in a repr."""
        self._check_process()
        values = [self._ctx.secret_key, self._ctx.cache.token]
        stored = read_credentials_file(self._store.path)
        if stored is not None:
            values += [stored.get("secret_key"), stored.get("access_token")]
        return list(dict.fromkeys(v for v in values if isinstance(v, str) and v))

    # -- rate-limit slots and the send moment (the drivers call these around each request) ----

    def _rate_limiter(self) -> RateLimiter | FileRateLimiter | None:
        if self._limiter is None and self._limits:
            with self._limiter_lock:
                if self._limiter is None:
                    self._limiter = (
                        FileRateLimiter.create(self._limits.limits, self._limiter_path)
                        if self._share_limits else RateLimiter(self._limits.limits)
                    )
        return self._limiter

    def _book(self, send: Send) -> Slot | None:
        limiter = self._rate_limiter()
        if send.bucket is None or limiter is None:
            return None
        return limiter.book(send.bucket, self._clock())

    def _slot_delays(self, slot: Slot | None) -> Iterator[float]:
        """How long to sleep before sending; checked again after each sleep (bounded)."""
        if slot is None or self._limiter is None:
            return
        for _ in range(CHECKS):
            delay = self._limiter.wait(slot, self._clock())
            if delay <= 0:
                return
            yield delay

    def _headers(self, send: Send) -> dict[str, str]:
        """The headers to send now. A token chosen before a rate-limit wait may have been
        replaced meanwhile (by another process): the current one goes instead."""
        headers = dict(send.headers)
        if TOKEN_HEADER in headers:
            current = current_token(self._ctx)
            if current:
                headers[TOKEN_HEADER] = current
        return headers

    def _sending(self, send: Send, slot: Slot | None) -> float:
        """The bytes are about to leave: note it in the limiter, tell ``on_sent``; wall time."""
        if slot is not None and self._limiter is not None:
            self._limiter.sent(slot, self._clock())
        sent_at = time.time()
        if send.on_sent is not None:
            send.on_sent(sent_at)
        return sent_at

    def _settle(self, slot: Slot | None) -> None:
        """The answer is back (or the request failed or never left)."""
        if slot is not None and self._limiter is not None:
            self._limiter.settle(slot, self._clock())

    @staticmethod
    def _log_reply(send: Send, reply: Reply, started: float) -> None:
        if not log.isEnabledFor(logging.DEBUG):
            return
        ms = (time.monotonic() - started) * 1000
        target = redact_url(send.url)
        if reply.error is not None:
            log.debug("%s %s -> %s after %.0f ms", send.method, target,
                      type(reply.error).__name__, ms)
            return
        trace = ""
        if send.timeout == "api" and reply.content[:1] == b"{":
            # Cheap peek for trace_id and code; the envelope codec does the real decoding.
            import json

            try:
                body = json.loads(reply.content)
                trace = f" code={body.get('code')} trace_id={body.get('trace_id')}"
            except ValueError:
                pass
        log.debug("%s %s -> %s in %.0f ms%s", send.method, target, reply.status, ms, trace)


class Received:
    """What came back for one send, apart from the I/O the drivers do: where a download's bytes
    start in the file, its progress, and the :class:`Reply` handed to the flow."""

    def __init__(self, sink: Sink | None) -> None:
        self.sink = sink
        self.body = b""
        self.written = 0
        self._offset = 0
        self._total = 0

    def open_sink(self, response: httpx.Response) -> BinaryIO | None:
        """The file to stream ``response`` into, or None (no sink, or an error body)."""
        if self.sink is None:
            return None
        file = open_sink(self.sink, response.status_code, response.headers)
        if file is not None:
            self._offset = self.sink.offset if response.status_code == 206 else 0
            self._total = self._offset + int(response.headers.get("content-length", 0) or 0)
        return file

    def wrote(self, size: int) -> None:
        self.written += size
        if self.sink is not None and self.sink.on_progress is not None:
            self.sink.on_progress(self._offset + self.written, self._total)

    def reply(self, response: httpx.Response | None, sent_at: float,
              error: httpx.RequestError | None = None) -> Reply:
        if response is None:
            assert error is not None
            return Reply.failed(error, sent_at, self.written)
        body = b"" if error is not None else self.body  # cut mid-body: keep the status
        return Reply(response.status_code, response.headers, body, error, sent_at, self.written)


def lock_busy() -> ChanjingError:
    return ChanjingError(
        f"could not lock the credentials file within {LOCK_TIMEOUT_S:g} s; "
        "another process holds it"
    )
