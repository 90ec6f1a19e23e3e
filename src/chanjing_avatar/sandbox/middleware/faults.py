"""Injects the configured faults into API requests: answers in place of the handler (``code``,
``http``), waits (``delay``), invalidates the caller's token, or spoils the answer of a request
already handled (``drop``, ``drop_after``, ``delay_after``). ``file_98`` and ``task_failure``
reach the handlers as a ``FaultPolicy`` (``request_faults``)."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..._wire import CODE_MESSAGES
from ..core import SandboxCore
from ..endpoints import FAULTABLE
from ..envelope import fail, gateway_page, xml_error
from ..faults import NO_FAULTS, Fault, FaultInjector, FaultPolicy, object_store_error
from ..store import BackendUnavailable
from .exchange import exchange_of

# Endpoints served object-store style: a "code" fault answers there as an object store would.
_OBJECT_STORE_ENDPOINTS = frozenset({"upload", "download", "audition"})
# Faults acted on after the request was handled, on its answer.
_CONNECTION_FAULTS = frozenset({"drop", "drop_after", "delay_after"})


def request_faults(scope: Scope) -> FaultPolicy:
    """What the fault chosen for this request asks of the core."""
    exchange = exchange_of(scope)
    return FaultPolicy.of(exchange.fault) if exchange is not None else NO_FAULTS


class Faults:
    def __init__(self, app: ASGIApp, core: SandboxCore, faults: FaultInjector) -> None:
        self.app = app
        self.core = core
        self.faults = faults

    async def _pick(self, endpoint: str) -> Fault | None:
        if not self.faults.blocking:
            return self.faults.pick(endpoint)
        try:
            return await anyio.to_thread.run_sync(self.faults.pick, endpoint)
        except BackendUnavailable:
            return None  # rules out of reach: no fault (the request meets the outage itself)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = exchange_of(scope)
        if exchange is None or exchange.endpoint not in FAULTABLE:
            await self.app(scope, receive, send)
            return
        fault = exchange.fault = await self._pick(exchange.endpoint)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.kind == "delay":
            await anyio.sleep(fault.delay_s)
        elif fault.kind == "invalidate_token":
            token = _header(scope, b"access_token")
            await anyio.to_thread.run_sync(self.core.invalidate_token_of, token)
        connection = _server_connection() if fault.kind in _CONNECTION_FAULTS else None
        spoiler = _Spoiler(send, fault, connection)
        try:
            if fault.kind == "code":
                answer = _code_answer(fault.code, exchange.endpoint, scope["path"])
                await answer(scope, receive, spoiler.send)
            elif fault.kind == "http":
                await gateway_page(fault.status)(scope, receive, spoiler.send)
            else:
                await self.app(scope, receive, spoiler.send)
        except ClientDisconnect:
            await spoiler.finish()
            raise
        finally:
            exchange.cut = spoiler.cut
            if spoiler.withheld_status:
                exchange.status = spoiler.withheld_status
        if await spoiler.finish():
            exchange.disconnected = True


def _code_answer(code: int, endpoint: str, path: str) -> Response:
    """A ``code`` fault's answer: the envelope on the API, what an object store would answer (an
    HTTP error with an XML body, never a 200) on the upload and download endpoints."""
    if endpoint in _OBJECT_STORE_ENDPOINTS:
        status, xml_code, message = object_store_error(code)
        return xml_error(status, xml_code, message, path)
    return fail(code, CODE_MESSAGES.get(code, "error"))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


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


class _Spoiler:
    """Wraps ``send`` for the faults that act on the answer of a request already handled:
    ``drop`` sends the head and half the body, then closes the connection; ``drop_after`` closes
    it without sending anything; ``delay_after`` holds the answer for a while. ``connection`` is
    the server's (see ``_server_connection``) or None."""

    def __init__(self, send: Send, fault: Fault, connection: Any) -> None:
        self._send = send
        self._kind = fault.kind
        if self._kind == "drop_after" and connection is None:
            self._kind = "drop"  # the nearest this server allows
        self._delay_s = fault.delay_s
        self._connection = connection
        self._held: Message | None = None
        self.cut = False
        self.withheld_status = 0  # the status of an answer never sent

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if self._kind == "drop_after":
                self.cut = True  # the request was handled; its answer is never sent
                self.withheld_status = int(message["status"])
                return
            if self._kind == "drop" and self._connection is not None:
                self._held = message  # sent with the first bytes of the body
                return
            if self._kind == "delay_after":
                await anyio.sleep(self._delay_s)
        elif message["type"] == "http.response.body":
            if self.cut:
                return
            body: bytes = message.get("body", b"")
            if self._kind == "drop":
                if self._held is not None:
                    if not body and message.get("more_body", False):
                        return  # wait for bytes to cut
                    if body:
                        await self._send(self._held)
                    # else an answer without a body: sending its head would be a whole answer
                    self._held = None
                # Half of the body, then nothing: the server closes the connection mid-response.
                self.cut = True
                if not body:
                    return
                message = {
                    "type": "http.response.body",
                    "body": body[: len(body) // 2],
                    "more_body": True,
                }
        await self._send(message)

    async def finish(self) -> bool:
        """After the app: close a connection cut by a fault without the server complaining.
        True when the client turned out to have left (a ``delay_after`` it did not wait for)."""
        if self.cut and self._connection is not None:
            await _close_connection(self._connection)
        elif self._kind == "delay_after" and self._connection is not None:
            # uvicorn marks the connection so only when it was lost before a complete answer.
            return bool(self._connection.disconnected)
        return False
