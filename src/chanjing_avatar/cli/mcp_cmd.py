"""``chanjing-avatar mcp``: the MCP server, over stdio (default) or streamable HTTP."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ._common import Session, pass_session
from ._errors import CliError, ExitCode

ENV_STATE_DIR = "CHANJING_MCP_STATE_DIR"


def state_dir_default() -> Path:
    """Where the idempotency journal lives: $CHANJING_MCP_STATE_DIR, else the XDG state folder."""
    explicit = os.environ.get(ENV_STATE_DIR, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME", "").strip() or str(Path.home() / ".local" / "state")
    return Path(base) / "chanjing-avatar" / "mcp"


@pass_session(exclude=("json_",))
def mcp(
    s: Session,
    http: Annotated[bool, typer.Option(
        "--http", help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio.")] = False,
    host: Annotated[str, typer.Option(
        "--host", help="Address for --http (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port for --http.")] = 8765,
    state_dir: Annotated[Path | None, typer.Option(
        "--state-dir", file_okay=False, show_default=False,
        help=f"Folder of the idempotency journal (env {ENV_STATE_DIR}; default "
             "~/.local/state/chanjing-avatar/mcp).")] = None,
    download_dir: Annotated[Path | None, typer.Option(
        "--download-dir", file_okay=False, show_default=False,
        help="Where videos go when a call names no output (default: the current folder).")]
    = None,
    settle: Annotated[float, typer.Option(
        "--settle", min=0.0,
        help="Seconds after sending during which a create whose answer was lost may still "
             "land; after it the task list settles the outcome.")] = 60.0,
) -> None:
    """Serve the lip-sync tools to MCP clients (agents) until the client leaves or Ctrl-C."""
    if http:
        _check_listen(host, port)  # before the seconds of importing the SDK
    try:
        import anyio

        from ..mcp import ServerOptions, build_server, close_server
    except ImportError as e:
        raise CliError(
            f"the MCP server needs the mcp extra ({e.name or e}): "
            "pip install 'chanjing-avatar[mcp]' (or run scripts/setup)",
            ExitCode.USAGE,
        ) from None
    from ._errors import describe
    from ._local import local_data_dir

    if s.local:
        s.sandbox()  # started now, not inside the first call
    options = ServerOptions(
        client_factory=s.async_client,
        state_dir=state_dir or state_dir_default(),
        download_dir=(download_dir or Path.cwd()).resolve(),
        describe=lambda exc: describe(exc).message,
        settle=settle,
        # The embedded sandbox shares this machine's clock.
        clock_offset=(-2.0, 2.0) if s.local else (-10.0, 10.0),
        account=f"local:{local_data_dir()}" if s.local else None,
    )
    app = build_server(options)
    if http:
        where = f"http://{host}:{port}/mcp"
        if host not in ("127.0.0.1", "localhost", "::1"):
            s.out.warn(f"{where} is reachable from other machines and has no "
                       "authentication: anyone who reaches it can spend this account")
        s.out.note(f"serving MCP on {where}")

    async def serve() -> None:
        try:
            if http:
                await app.run_streamable_http_async(host=host, port=port)
            else:
                await app.run_stdio_async()
        finally:
            await close_server(app)

    anyio.run(serve)


def _check_listen(host: str, port: int) -> None:
    """An address that cannot be bound is bad usage (exit 2), said before the server starts."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, addr = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
    except OSError as e:
        raise CliError(
            f"cannot listen on {host}:{port}: {e.strerror or e}; choose another --host/--port",
            ExitCode.USAGE,
        ) from None
