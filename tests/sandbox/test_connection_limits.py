"""Request heads are bounded in size, header count and time; connections at once are bounded.

Measured with real sockets on loopback: a client may not make the server buffer a huge head,
nor hold connections open by sending a head slowly.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from chanjing_avatar.sandbox import Sandbox

from .conftest import Factory


def _connect(sb: Sandbox) -> socket.socket:
    parts = urlsplit(sb.base_url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    return sock


def _send_until_closed(sock: socket.socket, head_start: bytes, filler: bytes, total: int) -> int:
    """Send ``head_start`` then ``filler`` up to ``total`` bytes; how many went out before the
    server closed the connection."""
    sent = 0
    try:
        sock.sendall(head_start)
        sent += len(head_start)
        while sent < total:
            sock.sendall(filler)
            sent += len(filler)
    except OSError:  # reset or broken pipe: the server closed it
        pass
    return sent


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a timeout is raised, not swallowed)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        raise
    except OSError:  # reset after the answer
        pass
    return data


def test_a_huge_header_is_refused_without_buffering_it(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(max_head_bytes=64 * 1024)
    sock = _connect(sb)
    try:
        total = 64 * 1024 * 1024
        sent = _send_until_closed(
            sock,
            b"GET /open/v1/list_common_audio HTTP/1.1\r\nHost: x\r\nX-Big: ",
            b"a" * 65536,
            total,
        )
        answer = _answer(sock)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    # The server stopped reading long before the client was done (socket buffers aside).
    assert sent < total // 2, sent


def test_too_many_headers_are_refused(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(max_headers=50)
    sock = _connect(sb)
    try:
        headers = b"".join(b"X-H%d: v\r\n" % n for n in range(200))
        sock.sendall(b"GET /open/v1/list_common_audio HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        answer = _answer(sock)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b"more than 50 headers" in answer


def test_slow_heads_are_closed(sandbox_factory: Factory) -> None:
    """Slowloris: connections sending a head a byte at a time (or nothing) are closed."""
    sb = sandbox_factory(head_timeout_s=1.0)
    idle = [_connect(sb) for _ in range(20)]
    slow = [_connect(sb) for _ in range(20)]
    try:
        for sock in slow:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: ")
        deadline = time.monotonic() + 8
        for sock in idle + slow:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                rest = _answer(sock)
            except TimeoutError:
                rest = None
            assert rest is not None
            assert rest == b"" or rest.startswith(b"HTTP/1.1 408"), rest[:100]
        assert time.monotonic() < deadline, "slow connections were kept open"
    finally:
        for sock in idle + slow:
            sock.close()


def test_connections_at_once_are_bounded(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(max_connections=5, head_timeout_s=30)
    held = [_connect(sb) for _ in range(5)]
    try:
        time.sleep(0.2)
        extra = _connect(sb)
        extra.sendall(b"GET /open/v1/list_common_audio HTTP/1.1\r\nHost: x\r\n\r\n")
        extra.settimeout(10)
        first = extra.recv(100)
        extra.close()
        assert first.startswith(b"HTTP/1.1 503"), first
    finally:
        for sock in held:
            sock.close()
