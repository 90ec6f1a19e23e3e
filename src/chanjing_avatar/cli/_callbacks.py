"""``--callback-listen``: run the callback receiver while a command waits for its tasks.

A confirmed callback ends a wait at once; polling slows to a safety net (``--safety-poll``), so a
lost callback costs that long, not the task. asyncio and the server stack load inside the
functions, never at import (``--help`` stays fast).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Annotated

import typer

from ._errors import CliError, ExitCode

if TYPE_CHECKING:
    from .. import AsyncClient, Task
    from ..callback import CallbackReceiver, ReceiverServer
    from ._common import Session
    from ._output import Output

DEFAULT_SAFETY_POLL = 60.0
_WILDCARD = ("0.0.0.0", "::")

CallbackListenOpt = Annotated[
    str | None,
    typer.Option(
        "--callback-listen", metavar="[HOST:]PORT",
        help="Run the callback receiver here while waiting (host 127.0.0.1 unless given): a "
        "callback ends the wait at once; polling slows to --safety-poll.",
        show_default=False,
    ),
]
SafetyPollOpt = Annotated[
    float | None,
    typer.Option(
        "--safety-poll", min=0.1,
        help=f"With --callback-listen: seconds between polls while no callback comes "
        f"(default {DEFAULT_SAFETY_POLL:g}).",
        show_default=False,
    ),
]


class Listen:
    """A checked ``--callback-listen`` value plus the safety-net poll interval."""

    def __init__(self, value: str, safety_poll: float | None) -> None:
        self.host, self.port = parse_listen(value)
        self.safety_poll = DEFAULT_SAFETY_POLL if safety_poll is None else safety_poll

    @property
    def is_wildcard(self) -> bool:
        return self.host in _WILDCARD

    @classmethod
    def from_options(cls, value: str | None, safety_poll: float | None,
                     callback_url: str | None = None) -> Listen | None:
        """The checked options; exit 2 for a wildcard address without ``--callback-url``
        (the URL cannot be derived from it)."""
        if value is None:
            if safety_poll is not None:
                raise CliError("--safety-poll goes with --callback-listen [HOST:]PORT")
            return None
        listen = cls(value, safety_poll)
        if listen.is_wildcard and callback_url is None:
            raise CliError(f"--callback-listen {listen.host}: give --callback-url, the address "
                           "at which the API reaches this receiver")
        return listen

    def callback_url(self, out: Output, server_url: str, given: str | None,
                     base_url: str) -> str:
        """The URL sent with each create: ``--callback-url``, else the receiver's own address
        (with a warning when that is loopback and the API is not)."""
        url = given or server_url
        warn_unreachable(out, url, base_url, self.safety_poll)
        return url


def parse_listen(value: str) -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT``; the host is 127.0.0.1 unless given."""
    host, _, port = value.strip().rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise CliError(f"--callback-listen: expected [HOST:]PORT, got {value!r}") from None
    if not 0 <= number <= 65535:
        raise CliError(f"--callback-listen: port {number} is not in 0-65535")
    return (host.strip("[]") or "127.0.0.1"), number


async def start_server(server: ReceiverServer, option: str = "--callback-listen") -> None:
    """Start the receiver; a missing uvicorn or an address it cannot listen on is exit 2."""
    from ..callback import ListenError

    try:
        await server.start()
    except (ListenError, RuntimeError) as e:  # busy port / uvicorn is missing
        await server.stop()
        raise CliError(f"{option}: {e}", ExitCode.USAGE) from None


def _host_of(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or ""


def warn_unreachable(out: Output, callback_url: str, base_url: str, safety_poll: float) -> None:
    """A loopback callback URL only works with an API on this machine (the sandbox)."""
    from ..callback import is_loopback

    if is_loopback(_host_of(callback_url)) and not is_loopback(_host_of(base_url)):
        out.warn(f"the API at {base_url} cannot reach {callback_url}: give --callback-url with "
                 f"the public address of this receiver; polling every {safety_poll:g} s meanwhile")


@contextlib.asynccontextmanager
async def running_receiver(client: AsyncClient, listen: Listen,
                           out: Output) -> AsyncIterator[ReceiverServer]:
    """The receiver, serving on the listen address until the block ends. It confirms every
    callback by fetching the task's detail and acts only on the ids it is told to watch."""
    from ..callback import CallbackReceiver, ReceiverServer, is_loopback

    if not is_loopback(listen.host):
        out.warn(f"the callback receiver listens on {listen.host}: reachable from other machines")
    receiver: CallbackReceiver = CallbackReceiver(client.lipsync.get)
    server = ReceiverServer(receiver, host=listen.host, port=listen.port)
    await start_server(server)
    out.note(f"callback receiver on {server.url}")
    try:
        yield server
    finally:
        await server.stop()


async def wait_for_task(
    client: AsyncClient,
    receiver: CallbackReceiver,
    task_id: str,
    *,
    timeout: float,
    safety_poll: float,
    on_progress: Callable[[Task], None] | None = None,
) -> Task:
    """The task's final state (failed ones included); exit 4 when ``timeout`` passes first."""
    from ..callback import wait_with_callbacks

    try:
        done = await wait_with_callbacks(client, receiver, [task_id], safety_poll=safety_poll,
                                         timeout=timeout, on_progress=on_progress)
    except TimeoutError as e:
        raise CliError(f"{e}; the task may still finish: check it later",
                       ExitCode.TIMEOUT) from None
    return done[task_id]


def wait_with_receiver(s: Session, task_id: str, listen: Listen, *, timeout: float,
                       on_progress: Callable[[Task], None] | None = None) -> Task:
    """``wait`` with the receiver: the task must have been created with a callback URL that
    reaches the listen address."""
    import asyncio

    async def main() -> Task:
        client = s.async_client()
        try:
            async with running_receiver(client, listen, s.out) as server:
                return await wait_for_task(client, server.receiver, task_id, timeout=timeout,
                                           safety_poll=listen.safety_poll,
                                           on_progress=on_progress)
        finally:
            await client.aclose()

    return asyncio.run(main())
