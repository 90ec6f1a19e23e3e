"""The token flow and the one-API-call flow (token, rate bucket, retries, envelope)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._exceptions import (
    AuthenticationError,
    ChanjingError,
    ContentRejectedError,
    InvalidRequestError,
    OutcomeUnknownError,
    QuotaExhaustedError,
    RateLimitError,
    TransportError,
)
from .._wire import PATH_ACCESS_TOKEN, PATH_RATE_BUCKET, RATE_LIMITS, TOKEN_HEADER, Code
from ._context import Context
from ._decisions import (
    backoff,
    is_retryable,
    may_retry,
    retry_refused_token,
    token_is_fresh,
)
from ._effects import Flow, Reply, Send, Sleep, WithStoreLock
from ._envelope import decode

log = logging.getLogger("chanjing_avatar")

_AUTH_CODES = (Code.TOKEN_INVALID, Code.AUTH_FAILED)
# Answers that prove a create was not processed, or that retrying cannot change.
_DEFINITE = (InvalidRequestError, QuotaExhaustedError, ContentRejectedError, AuthenticationError)


def token(ctx: Context, *, stale: str | None = None) -> Flow[str]:
    """A usable token. ``stale`` is one the server just refused: never hand it back.

    Fast path: the in-memory copy, re-read when the shared file changed. Slow path: under the
    shared lock, re-read the file (someone may have refreshed already), refresh only if still
    needed.
    """
    current = current_token(ctx)
    if current and current != stale:
        return current
    result: str = yield WithStoreLock(_refresh_under_lock(ctx, stale))
    return result


def current_token(ctx: Context) -> str | None:
    """The fresh token known without a request: the in-memory copy, re-read when the shared file
    changed (another process refreshed). None when a refresh is needed."""
    cache = ctx.cache
    signature = ctx.store.signature()
    if signature != cache.signature:
        stored = ctx.store.read()
        cache.signature = signature
        if stored is not None:
            cache.token, cache.expire_in = stored.token, stored.expire_in
    if cache.token and token_is_fresh(cache.expire_in, ctx.wall()):
        return cache.token
    return None


def _refresh_under_lock(ctx: Context, stale: str | None) -> Flow[str]:
    cache = ctx.cache
    stored = ctx.store.read()
    if (
        stored is not None
        and stored.token != stale
        and token_is_fresh(stored.expire_in, ctx.wall())
    ):
        cache.token, cache.expire_in = stored.token, stored.expire_in
        cache.signature = ctx.store.signature()
        return stored.token
    log.debug("requesting a new access token")
    retries = 0
    while True:
        reply = yield Send(
            "POST",
            ctx.url(PATH_ACCESS_TOKEN),
            PATH_ACCESS_TOKEN,
            json={"app_id": ctx.app_id, "secret_key": ctx.secret_key},
        )
        try:
            data = decode(reply, PATH_ACCESS_TOKEN)
            break
        except ChanjingError as e:
            if not is_retryable(e) or retries >= ctx.retry.max_retries:
                raise
            limited = isinstance(e, RateLimitError)
            yield Sleep(backoff(ctx.retry, retries, ctx.rng, rate_limited=limited))
            retries += 1
    if not (
        isinstance(data, dict)
        and isinstance(data.get("access_token"), str)
        and isinstance(data.get("expire_in"), int | float)
    ):
        raise TransportError("access_token answer without a token", endpoint=PATH_ACCESS_TOKEN)
    new_token: str = data["access_token"]
    expire_in = float(data["expire_in"])
    try:
        ctx.store.write(new_token, expire_in)
    except OSError as e:  # a read-only home still gets a working client
        log.warning("could not save the token to the credentials file: %s", e.strerror)
    cache.token, cache.expire_in = new_token, expire_in
    cache.signature = ctx.store.signature()
    return new_token


@dataclass(frozen=True)
class ApiCall:
    method: str
    path: str
    params: dict[str, str] | None = None
    json: Any = None
    # False for the paid create: retried only when provably not processed.
    idempotent: bool = True
    # Told the wall-clock time just before each attempt's bytes go out.
    on_sent: Callable[[float], None] | None = None


def rate_patience(path: str) -> float:
    """How long 40001s on ``path`` are retried (with max_retries > 0): until the documented
    window has surely rolled over, however many other programs of the app fill it."""
    limit = RATE_LIMITS.get(PATH_RATE_BUCKET.get(path, ""))
    return 2 * limit.period_s if limit is not None else 0.0


def call(ctx: Context, spec: ApiCall) -> Flow[Any]:
    """Send one API call and return the envelope's ``data``, retrying what is safe to retry."""
    access_token = yield from token(ctx)
    refused: list[str] = []
    retries = 0
    limited_s = 0.0  # slept after 40001s
    while True:
        reply: Reply = yield Send(
            spec.method,
            ctx.url(spec.path),
            spec.path,
            params=spec.params,
            headers={TOKEN_HEADER: access_token},
            json=spec.json,
            bucket=PATH_RATE_BUCKET.get(spec.path),
            on_sent=spec.on_sent,
        )
        try:
            return decode(reply, spec.path)
        except AuthenticationError as e:
            # Refused before processing: re-read the shared token or refresh, then retry (again
            # only while someone else keeps replacing the token; bounded).
            if e.code not in _AUTH_CODES or not retry_refused_token(refused, access_token):
                raise
            refused.append(access_token)
            log.debug("token refused on %s; re-reading the shared token", spec.path)
            access_token = yield from token(ctx, stale=access_token)
            continue
        except ChanjingError as e:
            rate_limited = isinstance(e, RateLimitError)
            if not spec.idempotent and not (rate_limited or reply.never_sent):
                if isinstance(e, _DEFINITE):
                    raise
                raise OutcomeUnknownError(
                    f"create sent but its outcome is unknown ({e.msg}); check the task list "
                    "before creating again",
                    request=spec.json if isinstance(spec.json, dict) else {},
                    sent_at=datetime.fromtimestamp(reply.sent_at, tz=UTC),
                    http_status=getattr(e, "http_status", None),
                    code=e.code,
                    trace_id=e.trace_id,
                    endpoint=spec.path,
                ) from e
            if not is_retryable(e) or not may_retry(
                ctx.retry, retries, rate_limited=rate_limited, limited_s=limited_s,
                patience_s=rate_patience(spec.path),
            ):
                raise
            delay = backoff(ctx.retry, retries, ctx.rng, rate_limited=rate_limited)
            retries += 1
            limited_s += delay if rate_limited else 0.0
            log.info(
                "%s failed (%s); retry %d in %.1f s", spec.path, e.msg, retries, delay,
            )
            yield Sleep(delay)
