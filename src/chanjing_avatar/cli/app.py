"""The ``chanjing-avatar`` command tree. Subcommands import their heavy parts lazily."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from . import (
    auth_cmd,
    batch_cmd,
    callback_cmd,
    files_cmd,
    make_cmd,
    mcp_cmd,
    tasks_cmd,
    voices_cmd,
)
from ._common import GLOBAL
from ._errors import ExitCode, describe
from ._output import Output
from .sandbox_cmd import sandbox_app

EPILOG = (
    "Exit codes: 0 ok; 1 API error or task failed; 2 bad usage or input; 3 authentication; "
    "4 timeout; 5 outcome unknown. Docs: docs/cli.md"
)

app = typer.Typer(
    name="chanjing-avatar",
    help="Lip-synced avatar videos with Chanjing's Open API (or the local sandbox).",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich help formatting alone costs ~100 ms of start-up.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from .._version import __version__

        typer.echo(f"chanjing-avatar {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    json_: Annotated[
        bool, typer.Option("--json", help="Print results as JSON on stdout (for scripts).")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="More detail in errors (never secrets).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Lip-synced avatar videos with Chanjing's Open API (or the local sandbox)."""
    GLOBAL.json = json_
    GLOBAL.verbose = verbose


app.add_typer(auth_cmd.auth_app, name="auth")
app.command("voices")(voices_cmd.voices)
app.command("upload")(files_cmd.upload)
app.command("create")(tasks_cmd.create)
app.command("status")(tasks_cmd.status)
app.command("list")(tasks_cmd.list_tasks)
app.command("wait")(tasks_cmd.wait)
app.command("download")(tasks_cmd.download)
app.command("make")(make_cmd.make)
app.add_typer(sandbox_app, name="sandbox")
app.command("batch")(batch_cmd.batch)
app.add_typer(callback_cmd.callback_app, name="callback")
app.command("mcp")(mcp_cmd.mcp)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command; every exception becomes one line on stderr and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    # Known before parsing, so that even a usage error can honour it.
    verbose = "--verbose" in args or "-v" in args
    out = Output(verbose=verbose)
    try:
        rv = app(args=args, prog_name="chanjing-avatar", standalone_mode=False)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return int(ExitCode.FAILED)
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            return int(exc.code) if isinstance(exc.code, int) else int(ExitCode.FAILED)
        if type(exc).__name__ == "NoArgsIsHelpError":
            # A bare group (`chanjing-avatar`, `chanjing-avatar auth`) asks for its help.
            ctx = getattr(exc, "ctx", None)
            if ctx is not None:
                typer.echo(ctx.get_help())
            return int(ExitCode.OK)
        failure = describe(exc)
        out.error(failure.message)
        if verbose:
            if failure.detail:
                out.error_detail(failure.detail)
            cause = exc.__cause__ or exc.__context__
            if cause is not None and not isinstance(cause, KeyboardInterrupt):
                out.error_detail(f"caused by {type(cause).__name__}: {cause}")
        return int(failure.code)
    return int(rv) if isinstance(rv, int) else 0
