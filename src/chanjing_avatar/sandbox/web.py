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
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise format_error("body must be a UTF-8 JSON object") from None
    return parse_json(text)


def parse_json(text: str) -> Any:
    """Decode untrusted JSON, or raise a 40000 ApiError saying what is wrong with it."""
    problem = json_shape_problem(text)
    if problem:
        raise format_error(problem)
    try:
        value = json.loads(
            text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant
        )
    except _Unwanted as err:
        raise format_error(str(err)) from None
    except ValueError:
        raise format_error("body must be a UTF-8 JSON object") from None
    if _has_lone_surrogate(value):
        raise format_error("body has a lone UTF-16 surrogate (\\ud800-\\udfff) in a string")
    return value


MAX_JSON_DEPTH = 32
_MAX_INT = 2**63


class _Unwanted(ValueError):
    """A JSON number this API never takes."""


def json_shape_problem(text: str) -> str:
    """Why a JSON text nests too deeply for a request body (checked before decoding, so the
    decoder never recurses deep), or ''."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return ""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return f"body nests deeper than {MAX_JSON_DEPTH} levels"
        elif ch in "]}":
            depth -= 1
    return ""


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 19 or abs(int(text)) >= _MAX_INT:
        raise _Unwanted("body has an integer beyond 64 bits")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Unwanted("body has a number too large for a 64-bit float")
    return value


def _no_constant(text: str) -> float:
    raise _Unwanted(f"body has {text}, which is not JSON")


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
