"""The outermost ASGI layer: counts requests and answers, injects faults, logs without secrets."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any

import anyio
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .admin_guard import admin_refusal
from .core import SandboxCore
from .endpoints import FAULTABLE, endpoint_key
from .envelope import fail, gateway_page, xml_error
from .faults import Fault, FaultInjector, object_store_error
from .stats import Stats

access_log = logging.getLogger("chanjing_avatar.sandbox.access")

FAULT_STATE_KEY = "sandbox_fault"
_CODE_SNIFF_BYTES = 64 * 1024
_SLASHES = re.compile("/{2,}")
# Endpoints served object-store style: a "code" fault answers there as an object store would.
_OBJECT_STORE_ENDPOINTS = frozenset({"upload", "download", "audition"})
# Faults acted on after the request was handled, on its answer.
_CONNECTION_FAULTS = frozenset({"drop", "drop_after", "delay_after"})


def request_fault(scope: Scope) -> Fault | None:
    """The fault the middleware chose for this request (handlers act on file_98/task_failure)."""
    fault: Fault | None = scope.get("state", {}).get(FAULT_STATE_KEY)
    return fault


class SandboxMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        core: SandboxCore,
        faults: FaultInjector,
        stats: Stats,
        admin_token: str = "",
    ) -> None:
        self.app = app
        self.core = core
        self.faults = faults
        self.stats = stats
        self.admin_token = admin_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            # As the nginx in front of the real API does (merge_slashes): vendor scripts that
            # append "/open/v1/..." to a base URL ending in "/" still reach the endpoint.
            scope = {**scope, "path": _SLASHES.sub("/", scope["path"])}
            scope.pop("raw_path", None)
        endpoint = endpoint_key(scope["path"]) if scope["type"] == "http" else "other"
        if scope["type"] != "http" or endpoint == "admin":
            # The admin API is not counted: its callers read the counts through it.
            refusal = admin_refusal(scope, self.core.config, self.admin_token)
            if refusal is not None and self.core.config.admin:
                status, message = refusal
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                refused = JSONResponse({"error": message}, status_code=status, headers=headers)
                await refused(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        self.stats.request(endpoint)
        fault = self.faults.pick(endpoint) if endpoint in FAULTABLE else None
        scope.setdefault("state", {})[FAULT_STATE_KEY] = fault
        if fault is not None:
            self.stats.fault(endpoint, fault.kind)
        connection = (
            _server_connection() if fault is not None and fault.kind in _CONNECTION_FAULTS else None
        )
        recorder = _Recorder(send, fault, connection)

        if fault is not None and fault.kind == "delay":
            await anyio.sleep(fault.delay_s)
        if fault is not None and fault.kind == "invalidate_token":
            token = _header(scope, b"access_token")
            await anyio.to_thread.run_sync(self.core.invalidate_token_of, token)
        try:
            if fault is not None and fault.kind == "code":
                answer = _code_answer(fault.code, endpoint, scope["path"])
                await answer(scope, receive, recorder.send)
            elif fault is not None and fault.kind == "http":
                await gateway_page(fault.status)(scope, receive, recorder.send)
            else:
                await self.app(scope, receive, recorder.send)
        except ClientDisconnect:
            # The client left before its answer (e.g. it timed out during a delay fault): there
            # is nobody to answer, and nothing worth a traceback in the server's log.
            recorder.disconnected = True
        except Exception:
            self.stats.response(endpoint, "http_500")
            raise
        await recorder.finish()

        outcome = recorder.outcome()
        self.stats.response(endpoint, outcome)
        if self.core.config.access_log:
            access_log.info(
                "%s %s %s %s %.1fms%s",
                scope["method"],
                scope["path"],
                recorder.status,
                outcome,
                (time.perf_counter() - started) * 1000,
                f" fault={fault.kind}" if fault else "",
            )


def _fault_msg(code: int) -> str:
    from .._wire import CODE_MESSAGES

    return CODE_MESSAGES.get(code, "error")


def _code_answer(code: int, endpoint: str, path: str) -> Response:
    """A ``code`` fault's answer: the envelope on the API, what an object store would answer (an
    HTTP error with an XML body, never a 200) on the upload and download endpoints."""
    if endpoint in _OBJECT_STORE_ENDPOINTS:
        status, xml_code, message = object_store_error(code)
        return xml_error(status, xml_code, message, path)
    return fail(code, _fault_msg(code))


def _server_connection() -> Any:
    """The server's state of the connection this request came on, to close it without an answer.

    uvicorn offers no ASGI way to close a connection without a complete answer (it logs an error
    and, before any answer, sends a 500), so this takes its per-request cycle (``transport``,
    ``disconnected``) from the task that runs the request. None under another server; the drop
    faults then fall back to cutting the answer short.
    """
    try:
        task = asyncio.current_task()
    except RuntimeError:  # not on an asyncio loop
        return None
    frame = getattr(task.get_coro(), "cr_frame", None) if task is not None else None
    cycle = frame.f_locals.get("self") if frame is not None else None
    transport = getattr(cycle, "transport", None)
    if callable(getattr(transport, "close", None)) and hasattr(cycle, "disconnected"):
        return cycle
    return None


async def _close_connection(cycle: Any) -> None:
    """Close the client's connection and wait until the server has noticed (so that it does not
    complain about an incomplete answer); a second at most."""
    cycle.transport.close()
    for attempt in range(100):
        if cycle.disconnected:
            return
        await anyio.sleep(0 if attempt < 5 else 0.01)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class _Recorder:
    """Wraps ``send``: notes status and envelope code, and applies the faults that act on the
    answer of a request already handled: ``drop`` sends the head and half the body, then closes
    the connection; ``drop_after`` closes it without sending anything; ``delay_after`` holds the
    answer for a while. ``connection`` is the server's (see ``_server_connection``) or None."""

    def __init__(self, send: Send, fault: Fault | None, connection: Any) -> None:
        self._send = send
        self._kind = fault.kind if fault is not None else None
        if self._kind == "drop_after" and connection is None:
            self._kind = "drop"  # the nearest this server allows
        self._delay_s = fault.delay_s if fault is not None else 0.0
        self._connection = connection
        self._held: Message | None = None
        self._json = False
        self._body = bytearray()
        self._cut = False
        self.disconnected = False
        self.status = 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            headers: list[tuple[bytes, bytes]] = message.get("headers", [])
            self._json = any(
                k.lower() == b"content-type" and v.startswith(b"application/json")
                for k, v in headers
            )
            if self._kind == "drop_after":
                self._cut = True  # the request was handled; its answer is never sent
                return
            if self._kind == "drop" and self._connection is not None:
                self._held = message  # sent with the first bytes of the body
                return
            if self._kind == "delay_after":
                await anyio.sleep(self._delay_s)
        elif message["type"] == "http.response.body":
            body: bytes = message.get("body", b"")
            if self._json and len(self._body) < _CODE_SNIFF_BYTES:
                self._body += body[: _CODE_SNIFF_BYTES - len(self._body)]
            if self._cut:
                return
            if self._kind == "drop":
                if self._held is not None:
                    if not body and message.get("more_body", False):
                        return  # wait for bytes to cut
                    if body:
                        await self._send(self._held)
                    # else an answer without a body: sending its head would be a whole answer
                    self._held = None
                # Half of the body, then nothing: the server closes the connection mid-response.
                self._cut = True
                message = {
                    "type": "http.response.body",
                    "body": body[: len(body) // 2],
                    "more_body": True,
                }
                if not body:
                    return
        await self._send(message)

    async def finish(self) -> None:
        """After the app: close a connection cut by a fault without the server complaining."""
        if self._cut and self._connection is not None:
            await _close_connection(self._connection)
        elif self._kind == "delay_after" and self._connection is not None:
            # uvicorn marks the connection so only when it was lost before a complete answer.
            self.disconnected = self.disconnected or bool(self._connection.disconnected)

    def outcome(self) -> str:
        if self._cut:
            return "dropped"
        if self.disconnected:
            return "disconnected"
        if self._json and self.status == 200:
            try:
                data: Any = json.loads(self._body)
                return str(int(data["code"]))
            except (ValueError, KeyError, TypeError):
                pass
        return f"http_{self.status}"
