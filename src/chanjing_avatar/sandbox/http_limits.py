"""Bounds uvicorn's httptools protocol leaves open: the size and header count of a request head,
and how long a client may take to send it.

uvicorn buffers a request head (URL and headers) whole, however large, and starts no timer
until a first answer was sent, so a client sending a slow or endless head holds a connection
(and memory) for as long as it likes. This subclass counts the bytes and headers of each head,
answers 431 past the limits, and closes a connection whose head is not complete in time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(frozen=True)
class HeadLimits:
    max_bytes: int = 64 * 1024  # request line and headers, counted as received
    max_headers: int = 100
    timeout_s: float = 10.0  # from the first byte of a request (or the connection) to its end


class _TooManyHeaders(Exception):
    pass


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    limits = HeadLimits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _start_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.limits.timeout_s, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(408, "Request Timeout", "the request head took too long")

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)  # httptools reports _TooManyHeaders as a parser error
        if self._in_head and self._head_bytes > self.limits.max_bytes:
            self._refuse(
                431,
                "Request Header Fields Too Large",
                f"the request head is larger than {self.limits.max_bytes} bytes",
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:
            self._start_head()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refuse(
                431,
                "Request Header Fields Too Large",
                f"more than {self.limits.max_headers} headers",
            )
            raise _TooManyHeaders
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if not self.transport.is_closing():  # not after a refusal of ours
            super().send_400_response(msg)

    def _refuse(self, status: int, reason: str, message: str) -> None:
        if self.transport.is_closing():
            return
        body = message.encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status, reason.encode(), len(body), body)
        )
        self.transport.close()


def bounded_protocol(limits: HeadLimits) -> Any:
    """The protocol class for ``uvicorn.Config(http=...)`` with these limits."""
    return type("SandboxHttpProtocol", (BoundedHttpToolsProtocol,), {"limits": limits})
