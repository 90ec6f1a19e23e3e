"""``chanjing-avatar local status | stop``: the background local sandbox of ``--local``."""

from __future__ import annotations

import typer

from ._common import Session, pass_session

local_app = typer.Typer(
    help="The local sandbox that --local commands start and share (status, stop).",
    no_args_is_help=True,
)

_LOCAL_ONLY = ("local", "base_url", "credentials_dir")


@local_app.command("status")
@pass_session(exclude=_LOCAL_ONLY)
def local_status(s: Session) -> None:
    """Show whether the local sandbox runs, where, and its idle time before it stops."""
    from ._local import idle_timeout, local_data_dir, running

    data_dir = local_data_dir()
    server = running(data_dir)
    if server is None:
        s.out.result({"running": False, "data_dir": str(data_dir),
                      "idle_timeout": idle_timeout()},
                     f"not running (data: {data_dir}); the next --local command starts it")
        return
    s.out.result(server.as_dict(),
                 f"running: {server.base_url} (pid {server.pid}, data: {data_dir}); "
                 f"stops after {server.idle_timeout:g} s unused")


@local_app.command("stop")
@pass_session(exclude=_LOCAL_ONLY)
def local_stop(s: Session) -> None:
    """Stop the local sandbox now (tasks not finished go on when it starts again)."""
    from ._local import local_data_dir, stop

    data_dir = local_data_dir()
    server = stop(data_dir)
    if server is None:
        s.out.result({"stopped": False, "data_dir": str(data_dir)}, "not running")
    else:
        s.out.result({"stopped": True, "pid": server.pid, "data_dir": str(data_dir)},
                     f"stopped (pid {server.pid})")
