"""Run a :class:`CallbackReceiver` with uvicorn inside the current event loop."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

from .receiver import CallbackReceiver

__all__ = ["ListenError", "ReceiverServer", "is_loopback"]

log = logging.getLogger("chanjing_avatar.callback")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ListenError(OSError):
    """The receiver cannot listen on its address (port in use, address not on this machine)."""

    def __init__(self, host: str, port: int, logged: str = "") -> None:
        why = _bind_error(host, port) or logged
        super().__init__(f"cannot listen on {_hostport(host, port)}{f' ({why})' if why else ''}: "
                         "pick another port or address")
        self.host = host
        self.port = port


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bind_error(host: str, port: int) -> str:
    """Why binding fails, found by trying once more (uvicorn only logs the reason)."""
    import os
    import socket

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family)
    except OSError as e:
        return os.strerror(e.errno) if e.errno else str(e)
    sock.close()
    return ""


class ReceiverServer:
    """``async with ReceiverServer(receiver) as srv: srv.url`` serves until the block ends.

    Binds 127.0.0.1 unless told otherwise; port 0 picks a free one.
    """

    def __init__(
        self, receiver: CallbackReceiver, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.receiver = receiver
        self.host = host
        self.port = port
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.receiver.path or '/'}"

    async def start(self) -> None:
        try:
            import uvicorn
        except ImportError:
            raise RuntimeError(
                "the callback receiver needs uvicorn: pip install 'chanjing-avatar[sandbox]'"
            ) from None

        config = uvicorn.Config(
            self.receiver,
            host=self.host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            # Callbacks are small; keep slow senders from holding connections.
            timeout_keep_alive=5,
            limit_concurrency=256,
        )
        server = uvicorn.Server(config)
        self._server = server
        host, port = self.host, self.port
        # uvicorn logs why it cannot start, then exits: keep that for the one-line error.
        logged: list[str] = []

        def startup_errors(record: logging.LogRecord) -> bool:
            if not server.started and record.levelno >= logging.ERROR:
                logged.append(record.getMessage())
                return False
            return True

        async def serve() -> None:
            # _serve, not serve: the embedding program keeps its own signal handlers (Ctrl-C).
            try:
                await server._serve()
            except SystemExit:
                # uvicorn ends the program when it cannot bind; asyncio would let that
                # SystemExit out of the event loop. Make it an error the caller can handle.
                raise ListenError(host, port, logged[-1] if logged else "") from None

        uv_log = logging.getLogger("uvicorn.error")
        uv_log.addFilter(startup_errors)
        try:
            self._task = asyncio.get_running_loop().create_task(serve())
            while not server.started:
                if self._task.done():
                    task, self._task, self._server = self._task, None, None
                    task.result()  # raises ListenError
                    raise RuntimeError("callback receiver did not start")
                await asyncio.sleep(0.01)
        finally:
            uv_log.removeFilter(startup_errors)
        sock = server.servers[0].sockets[0]
        self.port = int(sock.getsockname()[1])
        log.info("callback receiver listening on %s", self.url)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.gather(self._task, return_exceptions=True)
        await self.receiver.aclose()

    async def __aenter__(self) -> ReceiverServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
