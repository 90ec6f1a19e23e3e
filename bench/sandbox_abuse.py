"""How the sandbox holds up to abusive clients, with real sockets on loopback (bounded loops).

Prints: how many bytes of one huge request header the server read before answering or closing,
and how many of N slowloris connections (a partial head, then silence) are still open after a
wait. Run against another checkout's code with PYTHONPATH=<checkout>/src to compare.

    .venv/bin/python bench/sandbox_abuse.py [--header-mb 100] [--slow 350] [--wait 15]
"""

from __future__ import annotations

import argparse
import contextlib
import select
import socket
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from chanjing_avatar.sandbox import Sandbox, SandboxConfig


def _connect(base: str) -> socket.socket:
    parts = urlsplit(base)
    return socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=30)


def huge_header(base: str, megabytes: int) -> tuple[int, str]:
    sock = _connect(base)
    sent, total, chunk = 0, megabytes * 1024 * 1024, b"a" * 65536
    try:
        sock.sendall(b"GET /open/v1/list_common_audio HTTP/1.1\r\nHost: x\r\nX-Big: ")
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
        sock.sendall(b"\r\n\r\n")
        answer = sock.recv(64)
    except OSError:  # the server closed it mid-send: read what it answered, if anything
        answer = b""
        with contextlib.suppress(OSError):
            answer = sock.recv(64)
    finally:
        sock.close()
    return sent, answer.split(b"\r\n", 1)[0].decode(errors="replace") or "(closed)"


def slowloris(base: str, count: int, wait_s: float) -> int:
    socks = [_connect(base) for _ in range(count)]
    for sock in socks:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: ")
    time.sleep(wait_s)
    # Readable means closed by the server (with or without a 408 first); silent means open.
    open_ = sum(1 for sock in socks if not select.select([sock], [], [], 0)[0])
    for sock in socks:
        sock.close()
    return open_


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--header-mb", type=int, default=100)
    ap.add_argument("--slow", type=int, default=350)
    ap.add_argument("--wait", type=float, default=15.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = SandboxConfig(data_dir=Path(tmp), renderer="passthrough")
        with Sandbox(config) as sb:
            sent, status = huge_header(sb.base_url, args.header_mb)
            print(
                f"huge header: {sent / 1024 / 1024:.1f} MiB of {args.header_mb} MiB sent, "
                f"answer: {status}"
            )
            still = slowloris(sb.base_url, args.slow, args.wait)
            print(f"slowloris: {still} of {args.slow} connections open after {args.wait:g} s")


if __name__ == "__main__":
    main()
