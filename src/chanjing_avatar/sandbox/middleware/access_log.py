"""One log line per API request: method, path, status, outcome, time, injected fault. Never
headers or bodies, which carry tokens."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from .exchange import exchange_of

access_log = logging.getLogger("chanjing_avatar.sandbox.access")


class AccessLog:
    def __init__(self, app: ASGIApp, enabled: bool) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = exchange_of(scope) if self.enabled else None
        if exchange is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        await self.app(scope, receive, send)
        access_log.info(
            "%s %s %s %s %.1fms%s",
            scope["method"],
            scope["path"],
            exchange.status,
            exchange.outcome(),
            (time.perf_counter() - started) * 1000,
            f" fault={exchange.fault.kind}" if exchange.fault else "",
        )
