"""Decode the ``{trace_id, code, msg, data}`` envelope and map failures to exceptions."""

from __future__ import annotations

import json
import re
from typing import Any

from .._exceptions import (
    AuthenticationError,
    ChanjingError,
    ContentRejectedError,
    InvalidRequestError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
    TransportError,
)
from .._wire import PATH_ACCESS_TOKEN, Code
from ._effects import Reply

GATEWAY_STATUSES = frozenset({502, 503, 504, 524})

# "tts_config.speed: must be ..." or "参数错误: screen_width ..." -> the field name
_FIELD_RE = re.compile(r"\b((?:tts_config\.)?[a-z][a-z0-9_]*)\s*:")


def field_from_msg(msg: str) -> str | None:
    match = _FIELD_RE.search(msg)
    return match.group(1) if match else None


def transport_error(reply: Reply, endpoint: str) -> TransportError:
    """The error for a reply that carries no usable envelope."""
    if reply.error is not None:
        kind = type(reply.error).__name__
        # httpx messages may quote the URL: keep only the kind and a redacted endpoint.
        return TransportError(f"network error ({kind})", endpoint=endpoint)
    ctype = reply.headers.get("content-type", "")
    what = "an HTML page" if "html" in ctype or reply.content.lstrip()[:1] == b"<" else "no JSON"
    return TransportError(
        f"HTTP {reply.status} with {what} instead of the API envelope",
        http_status=reply.status,
        endpoint=endpoint,
    )


def error_for_code(
    code: int, msg: str, trace_id: str | None, endpoint: str, *, data: Any = None
) -> ChanjingError:
    kw: dict[str, Any] = {"code": code, "trace_id": trace_id, "endpoint": endpoint}
    text = msg or f"code {code}"
    if endpoint == PATH_ACCESS_TOKEN and code in (
        Code.BAD_FORMAT, Code.PARAM_ERROR, Code.TOKEN_INVALID, Code.AUTH_FAILED
    ):
        return AuthenticationError(f"app_id/secret_key refused: {text}", **kw)
    if code in (Code.TOKEN_INVALID, Code.AUTH_FAILED):
        return AuthenticationError(text, **kw)
    if code in (Code.BAD_FORMAT, Code.PARAM_ERROR):
        field = data.get("field") if isinstance(data, dict) else None
        return InvalidRequestError(
            text, field=field if isinstance(field, str) else field_from_msg(text), **kw
        )
    if code == Code.RATE_LIMITED:
        return RateLimitError(text, **kw)
    if code == Code.QUOTA_EXHAUSTED:
        return QuotaExhaustedError(text, **kw)
    if code == Code.CONTENT_REJECTED:
        return ContentRejectedError(text, **kw)
    return ServerError(text, **kw)


def decode(reply: Reply, endpoint: str) -> Any:
    """``data`` of a successful envelope; raises the mapped :class:`ChanjingError` otherwise."""
    if reply.error is not None or reply.status is None:
        raise transport_error(reply, endpoint)
    try:
        body = json.loads(reply.content)
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("code"), int):
        raise transport_error(reply, endpoint)
    code: int = body["code"]
    trace_id = body.get("trace_id") if isinstance(body.get("trace_id"), str) else None
    if code == Code.SUCCESS:
        return body.get("data")
    msg = body.get("msg")
    raise error_for_code(
        code, msg if isinstance(msg, str) else "", trace_id, endpoint, data=body.get("data")
    )

