"""``chanjing-avatar sandbox ...`` (owned by the sandbox)."""

from __future__ import annotations

import typer

sandbox_app = typer.Typer(help="Run the local sandbox server.", no_args_is_help=True)


@sandbox_app.command()
def serve() -> None:
    """Start the sandbox server (not implemented yet)."""
    raise typer.Exit(2)
