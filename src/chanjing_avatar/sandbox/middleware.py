"""The outermost ASGI layer: counts requests and answers, injects faults, logs without secrets."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .core import SandboxCore
from .endpoints import FAULTABLE, endpoint_key
from .envelope import fail, gateway_page
from .faults import Fault, FaultInjector
from .stats import Stats

access_log = logging.getLogger("chanjing_avatar.sandbox.access")

FAULT_STATE_KEY = "sandbox_fault"
_CODE_SNIFF_BYTES = 64 * 1024
_SLASHES = re.compile("/{2,}")


def request_fault(scope: Scope) -> Fault | None:
    """The fault the middleware chose for this request (handlers act on file_98/task_failure)."""
    fault: Fault | None = scope.get("state", {}).get(FAULT_STATE_KEY)
    return fault


class SandboxMiddleware:
    def __init__(
        self, app: ASGIApp, core: SandboxCore, faults: FaultInjector, stats: Stats
    ) -> None:
        self.app = app
        self.core = core
        self.faults = faults
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            # As the nginx in front of the real API does (merge_slashes): vendor scripts that
            # append "/open/v1/..." to a base URL ending in "/" still reach the endpoint.
            scope = {**scope, "path": _SLASHES.sub("/", scope["path"])}
            scope.pop("raw_path", None)
        endpoint = endpoint_key(scope["path"]) if scope["type"] == "http" else "other"
        if scope["type"] != "http" or endpoint == "admin":
            # The admin API is not counted: its callers read the counts through it.
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        self.stats.request(endpoint)
        fault = self.faults.pick(endpoint) if endpoint in FAULTABLE else None
        scope.setdefault("state", {})[FAULT_STATE_KEY] = fault
        recorder = _Recorder(send, drop=fault is not None and fault.kind == "drop")

        if fault is not None and fault.kind == "delay":
            await anyio.sleep(fault.delay_s)
        if fault is not None and fault.kind == "invalidate_token":
            token = _header(scope, b"access_token")
            await anyio.to_thread.run_sync(self.core.invalidate_token_of, token)
        try:
            if fault is not None and fault.kind == "code":
                await fail(fault.code, _fault_msg(fault.code))(scope, receive, recorder.send)
            elif fault is not None and fault.kind == "http":
                await gateway_page(fault.status)(scope, receive, recorder.send)
            else:
                await self.app(scope, receive, recorder.send)
        except Exception:
            self.stats.response(endpoint, "http_500")
            raise

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


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class _Recorder:
    """Wraps ``send``: notes status and envelope code; for a drop fault, cuts the body short."""

    def __init__(self, send: Send, *, drop: bool) -> None:
        self._send = send
        self._drop = drop
        self._json = False
        self._body = bytearray()
        self._cut = False
        self.status = 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            headers: list[tuple[bytes, bytes]] = message.get("headers", [])
            self._json = any(
                k.lower() == b"content-type" and v.startswith(b"application/json")
                for k, v in headers
            )
        elif message["type"] == "http.response.body":
            body: bytes = message.get("body", b"")
            if self._json and len(self._body) < _CODE_SNIFF_BYTES:
                self._body += body[: _CODE_SNIFF_BYTES - len(self._body)]
            if self._drop:
                if self._cut:
                    return
                # Half of the body, then nothing: the server closes the connection mid-response.
                self._cut = True
                message = {
                    "type": "http.response.body",
                    "body": body[: len(body) // 2],
                    "more_body": True,
                }
        await self._send(message)

    def outcome(self) -> str:
        if self._cut:
            return "dropped"
        if self._json and self.status == 200:
            try:
                data: Any = json.loads(self._body)
                return str(int(data["code"]))
            except (ValueError, KeyError, TypeError):
                pass
        return f"http_{self.status}"
