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


_STORE_HELP = (
    "Shared state: postgresql://USER@HOST[:PORT]/DB (or env CHANJING_SANDBOX_STORE; keep the "
    "password in PGPASSWORD or ~/.pgpass). Default: SQLite in the data dir."
)
_BLOBS_HELP = (
    "Shared media: s3://BUCKET[/PREFIX] on any S3-compatible store (or env "
    "CHANJING_SANDBOX_BLOBS; credentials from the AWS_* variables). Default: the data dir."
)
StoreOption = Annotated[
    str | None, typer.Option("--store", help=_STORE_HELP, envvar="CHANJING_SANDBOX_STORE")
]
BlobsOption = Annotated[
    str | None, typer.Option("--blobs", help=_BLOBS_HELP, envvar="CHANJING_SANDBOX_BLOBS")
]
S3EndpointOption = Annotated[
    str | None,
    typer.Option(help="S3 endpoint URL (else AWS_ENDPOINT_URL).", envvar="AWS_ENDPOINT_URL_S3"),
]
S3PublicOption = Annotated[
    str | None,
    typer.Option(help="S3 endpoint put in presigned URLs, when clients reach it elsewhere."),
]

MaxUploadOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Largest upload in bytes (default 8 GiB): serve refuses a larger PUT; with --blobs "
        "the object store takes it, then a worker marks the file failed (98) and deletes it.",
    ),
]


def _check_backends(store: str | None, blobs: str | None) -> None:
    from ..sandbox.backends import check_urls
    from ..sandbox.config import SandboxConfig

    problem = check_urls(SandboxConfig(data_dir=Path("."), store_url=store, blobs_url=blobs))
    if problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2)


def _open_failed(err: Exception) -> typer.Exit:
    """A backend that cannot be reached at start: one line, exit 1."""
    typer.echo(f"error: {err}", err=True)
    return typer.Exit(1)


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
    admin_token: Annotated[
        str | None,
        typer.Option(
            help="The admin endpoints' token (or env CHANJING_SANDBOX_ADMIN_TOKEN; default: "
            "made up at each start). Give every replica of a deployment the same one.",
            envvar="CHANJING_SANDBOX_ADMIN_TOKEN",
        ),
    ] = None,
    token_ttl: Annotated[
        float | None, typer.Option(help="Seconds an access_token lasts (default: a day).")
    ] = None,
    upload_url_ttl: Annotated[
        float | None, typer.Option(help="Seconds an upload URL lasts (default: as the API).")
    ] = None,
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
    max_upload_bytes: MaxUploadOption = None,
    store: StoreOption = None,
    blobs: BlobsOption = None,
    s3_endpoint: S3EndpointOption = None,
    s3_public_endpoint: S3PublicOption = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the address and credentials as one JSON line.")
    ] = False,
) -> None:
    """Start the sandbox server in the foreground; prints its base URL and credentials."""
    import logging

    from .._wire import UPLOAD_URL_TTL_S
    from ..sandbox import FaultRule, Sandbox, SandboxConfig
    from ..sandbox.admin_guard import is_loopback_host
    from ..sandbox.config import TOKEN_TTL_S

    _check_port_free(host, port)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request URL at INFO, callback URLs with their query strings included.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    rules = [FaultRule.parse(_parse_fault(text)) for text in fault or []]
    _check_backends(store, blobs)
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
        admin_token=admin_token,
        admin_remote=admin_remote,
        token_ttl_s=TOKEN_TTL_S if token_ttl is None else token_ttl,
        upload_url_ttl_s=UPLOAD_URL_TTL_S if upload_url_ttl is None else upload_url_ttl,
        callback_allow_private=allow_private_callbacks,
        faults_enabled=bool(rules),
        faults=rules,
        fault_seed=fault_seed,
        public_url=public_url,
        access_log=access_log,
        max_upload_bytes=max_upload_bytes or SandboxConfig.max_upload_bytes,
        store_url=store,
        blobs_url=blobs,
        s3_endpoint_url=s3_endpoint,
        s3_public_endpoint_url=s3_public_endpoint,
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
    from ..sandbox.store import BackendUnavailable

    try:
        sandbox = Sandbox(config)
    except BackendUnavailable as err:
        raise _open_failed(err) from None
    except ValueError as e:  # an unknown renderer name
        raise CliError(f"--renderer: {e}") from None
    try:
        sandbox.serve(on_ready=ready)
    except SystemExit:  # the server could not start (it logged why)
        raise CliError(f"the sandbox could not listen on {host}:{port}; see the line above",
                       ExitCode.USAGE) from None


@sandbox_app.command()
def worker(
    store: StoreOption = None,
    blobs: BlobsOption = None,
    s3_endpoint: S3EndpointOption = None,
    s3_public_endpoint: S3PublicOption = None,
    concurrency: Annotated[int, typer.Option(help="Jobs run at once.", min=1)] = 2,
    data_dir: Annotated[
        Path | None, typer.Option(help="Scratch folder for renders (default: a temp folder).")
    ] = None,
    renderer: Annotated[str, typer.Option(help="Renderer name, or auto.")] = "auto",
    time_scale: Annotated[float, typer.Option(help="Run sandbox waits this much faster.")] = 1.0,
    task_min_duration: Annotated[
        float, typer.Option(help="Make every task take at least this long (sandbox seconds).")
    ] = 0.0,
    public_url: Annotated[
        str | None, typer.Option(help="Base URL of the API (for callbacks without S3).")
    ] = None,
    lost_after: Annotated[
        float, typer.Option(help="Seconds without a worker's heartbeat before its jobs move.")
    ] = 30.0,
    render_attempts: Annotated[
        int, typer.Option(help="Starts of a task before it fails (lost workers).", min=1)
    ] = 3,
    grace: Annotated[
        float, typer.Option(help="On SIGTERM, seconds running jobs get before handing back.")
    ] = 20.0,
    health_host: Annotated[str, typer.Option(help="Interface of /healthz and /readyz.")] = (
        "127.0.0.1"
    ),
    health_port: Annotated[int, typer.Option(help="Port of /healthz and /readyz (0: any).")] = 0,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the health address as one JSON line.")
    ] = False,
    allow_private_callbacks: Annotated[
        bool,
        typer.Option(
            help="POST task callbacks to loopback, private and link-local addresses too "
            "(refused by default, as by serve)."
        ),
    ] = False,
    max_upload_bytes: MaxUploadOption = None,
) -> None:
    """Run probe, render and callback jobs of a shared sandbox (needs --store)."""
    import logging
    import tempfile

    from ..sandbox import SandboxConfig
    from ..sandbox.store import BackendUnavailable
    from ..sandbox.worker import SandboxWorker

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # callback URLs may carry secrets
    if not store:
        typer.echo("error: --store postgresql://... is required (the shared state)", err=True)
        raise typer.Exit(2)
    _check_backends(store, blobs)
    scratch = data_dir or Path(tempfile.mkdtemp(prefix="chanjing-worker-"))
    config = SandboxConfig(
        data_dir=scratch,
        renderer=renderer,
        time_scale=time_scale,
        task_min_duration_s=task_min_duration,
        public_url=public_url,
        store_url=store,
        blobs_url=blobs,
        s3_endpoint_url=s3_endpoint,
        s3_public_endpoint_url=s3_public_endpoint,
        lost_after_s=lost_after,
        render_attempts=render_attempts,
        shutdown_grace_s=grace,
        callback_allow_private=allow_private_callbacks,
        max_upload_bytes=max_upload_bytes or SandboxConfig.max_upload_bytes,
    )
    try:
        runner = SandboxWorker(config, concurrency)
    except BackendUnavailable as err:
        raise _open_failed(err) from None

    def ready(w: SandboxWorker) -> None:
        host, port = w.health_address or (health_host, health_port)
        if json_out:
            typer.echo(json.dumps({"health_url": f"http://{host}:{port}"}))
        else:
            typer.echo(f"worker running {concurrency} jobs at once; health: http://{host}:{port}")
        sys.stdout.flush()

    runner.run(health=(health_host, health_port), on_ready=ready)


@sandbox_app.command()
def migrate(store: StoreOption = None) -> None:
    """Apply the shared store's schema migrations (serve and worker also do it on start)."""
    from ..sandbox.store import BackendUnavailable
    from ..sandbox.store_postgres import migrate as apply

    if not store:
        typer.echo("error: --store postgresql://... is required", err=True)
        raise typer.Exit(2)
    _check_backends(store, None)
    try:
        applied = apply(store)
    except BackendUnavailable as err:
        raise _open_failed(err) from None
    typer.echo(f"applied: {', '.join(applied)}" if applied else "the schema is up to date")


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
