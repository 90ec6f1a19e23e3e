"""``chanjing-avatar sandbox ...`` (owned by the sandbox)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._errors import CliError, ExitCode

if TYPE_CHECKING:
    from ..sandbox import Sandbox

sandbox_app = typer.Typer(help="Run the local sandbox server.", no_args_is_help=True)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME", "").strip() or str(Path.home() / ".local" / "share")
    return Path(base) / "chanjing-avatar" / "sandbox"


def _parse_fault(text: str) -> dict[str, object]:
    """``ENDPOINT=FAULT[@PROBABILITY]``, e.g. ``lipsync_detail=50000@0.1``."""
    endpoint, eq, rest = text.partition("=")
    if not eq or not endpoint or not rest:
        raise typer.BadParameter(f"{text!r}: use ENDPOINT=FAULT[@PROBABILITY]")
    fault, _, probability = rest.partition("@")
    try:
        rule: dict[str, object] = {
            "endpoint": endpoint,
            "fault": fault,
            "probability": float(probability or 1.0),
        }
    except ValueError:
        raise typer.BadParameter(f"{text!r}: the probability must be a number") from None
    from ..sandbox.faults import FaultRule

    try:
        FaultRule.parse(rule)  # an unknown fault or a probability outside 0..1: a usage error
    except ValueError as e:
        raise typer.BadParameter(f"{text!r}: {e}") from None
    return rule


@sandbox_app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free port).")] = 8848,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="State folder (default: ~/.local/share/chanjing-avatar/sandbox)."),
    ] = None,
    app_id: Annotated[
        str | None, typer.Option(help="Fixed app_id (else kept in the data dir).")
    ] = None,
    secret_key: Annotated[
        str | None,
        typer.Option(
            help="Fixed secret_key (or env CHANJING_SANDBOX_SECRET_KEY).",
            envvar="CHANJING_SANDBOX_SECRET_KEY",
        ),
    ] = None,
    renderer: Annotated[str, typer.Option(help="Renderer name, or auto.")] = "auto",
    sync_delay: Annotated[float, typer.Option(help="Seconds before an upload is ready.")] = 1.0,
    render_concurrency: Annotated[int, typer.Option(help="Tasks rendered at once.")] = 2,
    task_min_duration: Annotated[
        float, typer.Option(help="Make every task take at least this long (sandbox seconds).")
    ] = 0.0,
    time_scale: Annotated[
        float, typer.Option(help="Run sandbox waits this many times faster.")
    ] = 1.0,
    rate_limits: Annotated[bool, typer.Option(help="Enforce the documented rate limits.")] = True,
    rate_limit_scale: Annotated[
        float, typer.Option(help="Multiply the allowed requests per window.")
    ] = 1.0,
    admin: Annotated[
        bool,
        typer.Option(
            help="Serve the admin endpoints under /_sandbox (faults, apps...); they take the "
            "token printed at start (Authorization: Bearer ...)."
        ),
    ] = False,
    admin_remote: Annotated[
        bool,
        typer.Option(
            help="Allow --admin on a --host other than loopback (anyone who can reach the port "
            "and has the token can then change the sandbox)."
        ),
    ] = False,
    allow_private_callbacks: Annotated[
        bool,
        typer.Option(
            help="POST task callbacks to loopback, private and link-local addresses too "
            "(refused by default, so that tenants cannot reach this host's networks)."
        ),
    ] = False,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="Inject a fault: ENDPOINT=FAULT[@PROBABILITY], e.g. "
            "lipsync_detail=50000@0.1 or lipsync_create=drop_after@0.05 (repeatable; "
            "faults in docs/sandbox.md)."
        ),
    ] = None,
    fault_seed: Annotated[int | None, typer.Option(help="Seed of the fault dice.")] = None,
    public_url: Annotated[
        str | None, typer.Option(help="Base of the URLs handed out, when behind a proxy.")
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request (no secrets).")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the address and credentials as one JSON line.")
    ] = False,
) -> None:
    """Start the sandbox server in the foreground; prints its base URL and credentials."""
    import logging

    from ..sandbox import FaultRule, Sandbox, SandboxConfig
    from ..sandbox.admin_guard import is_loopback_host

    _check_port_free(host, port)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request URL at INFO, callback URLs with their query strings included.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    rules = [FaultRule.parse(_parse_fault(text)) for text in fault or []]
    config = SandboxConfig(
        data_dir=data_dir or default_data_dir(),
        host=host,
        port=port,
        app_id=app_id,
        secret_key=secret_key,
        renderer=renderer,
        file_sync_delay_s=sync_delay,
        render_concurrency=render_concurrency,
        task_min_duration_s=task_min_duration,
        time_scale=time_scale,
        rate_limits_enabled=rate_limits,
        rate_limit_scale=rate_limit_scale,
        admin=admin,
        admin_remote=admin_remote,
        callback_allow_private=allow_private_callbacks,
        faults_enabled=bool(rules),
        faults=rules,
        fault_seed=fault_seed,
        public_url=public_url,
        access_log=access_log,
    )
    from ._common import root_options

    as_json = json_out or root_options().json

    def ready(sb: Sandbox) -> None:
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "base_url": sb.base_url,
                        "app_id": sb.app_id,
                        "secret_key": sb.secret_key,
                        "data_dir": str(config.data_dir),
                        **({"admin_token": sb.admin_token} if admin else {}),
                    }
                ),
                nl=True,
            )
        else:
            typer.echo(f"sandbox listening on {sb.base_url}  (data: {config.data_dir})")
            typer.echo(f"  app_id:     {sb.app_id}")
            typer.echo(f"  secret_key: {sb.secret_key}")
            typer.echo(f"  export CHANJING_OPENAPI_BASE_URL={sb.base_url}")
            if admin:
                typer.echo(f"  admin:      {sb.base_url}/_sandbox/  (faults, apps, stats)")
                typer.echo(f"  admin token: {sb.admin_token}  (Authorization: Bearer ...)")
            typer.echo("Ctrl-C stops it.")
        sys.stdout.flush()

    if admin and not is_loopback_host(host):
        if not admin_remote:
            typer.echo(
                f"error: --admin on --host {host} would let other machines change the sandbox; "
                "bind 127.0.0.1, or add --admin-remote to allow it",
                err=True,
            )
            raise typer.Exit(2)
        typer.echo(
            f"warning: admin endpoints reachable from other machines on {host} "
            "(they still need the admin token)",
            err=True,
        )
    try:
        sandbox = Sandbox(config)
    except ValueError as e:  # an unknown renderer name
        raise CliError(f"--renderer: {e}") from None
    try:
        sandbox.serve(on_ready=ready)
    except SystemExit:  # the server could not start (it logged why)
        raise CliError(f"the sandbox could not listen on {host}:{port}; see the line above",
                       ExitCode.USAGE) from None


def _check_port_free(host: str, port: int) -> None:
    """A busy port is one line and exit 2 before the server starts (it would log and exit)."""
    import socket

    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise CliError(f"--host {host}: {e.strerror or e}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as e:
            raise CliError(f"--port {port}: cannot listen on {host}:{port} "
                           f"({e.strerror or e}); choose another port, or --port 0 for any "
                           "free one") from None
