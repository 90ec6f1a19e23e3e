"""The ``chanjing-avatar`` command tree. Subcommands import their heavy parts lazily."""

from __future__ import annotations

import typer

from .sandbox_cmd import sandbox_app

app = typer.Typer(
    name="chanjing-avatar",
    help="Lip-synced avatar videos with Chanjing's Open API (or the local sandbox).",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(sandbox_app, name="sandbox")


def run() -> None:
    app()
