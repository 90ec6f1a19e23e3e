"""Small request helpers shared by the route modules."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from .core import SandboxCore
from .errors import format_error


def core_of(request: Request) -> SandboxCore:
    core: SandboxCore = request.app.state.core
    return core


def base_url(request: Request) -> str:
    """Where this client reached us: the base of the URLs we hand out."""
    core = core_of(request)
    if core.config.public_url:
        return core.config.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


async def read_json(request: Request, if_empty: Any = ...) -> Any:
    """The JSON body, refusing oversized or malformed ones with code 400.

    ``if_empty``: what a request without a body means (by default it is malformed).
    """
    limit = core_of(request).config.max_json_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise format_error(f"body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise format_error(f"body larger than {limit} bytes")
    if not body.strip() and if_empty is not ...:
        return if_empty
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise format_error("body must be a UTF-8 JSON object") from None
