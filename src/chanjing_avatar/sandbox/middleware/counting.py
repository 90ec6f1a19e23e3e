"""Counts each API request and its outcome (envelope code, HTTP status, dropped or
disconnected), for the admin API's stats."""

from __future__ import annotations

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..stats import Stats
from .exchange import exchange_of


class Counting:
    def __init__(self, app: ASGIApp, stats: Stats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = exchange_of(scope)
        if exchange is None:
            await self.app(scope, receive, send)
            return
        self.stats.request(exchange.endpoint)

        async def noting(message: Message) -> None:
            exchange.note(message)
            await send(message)

        try:
            await self.app(scope, receive, noting)
        except ClientDisconnect:
            # The client left before its answer (e.g. it timed out during a delay fault): there
            # is nobody to answer, and nothing worth a traceback in the server's log.
            exchange.disconnected = True
        except Exception:
            self.stats.response(exchange.endpoint, "http_500")
            raise
        finally:
            if exchange.fault is not None:
                self.stats.fault(exchange.endpoint, exchange.fault.kind)
        self.stats.response(exchange.endpoint, exchange.outcome())
