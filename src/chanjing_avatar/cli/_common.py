"""What every command shares: the common options, the session (output + client) and --local.

Nothing heavy is imported at module level: the client (pydantic, httpx) and the sandbox (fastapi,
uvicorn, av, numpy) load inside the command that needs them, so ``--help`` stays fast.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable, Collection
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Concatenate, ParamSpec, TypeVar

import typer

from ._errors import CONTEXT, CliError, ExitCode
from ._output import Output, register_secret, register_secret_source

if TYPE_CHECKING:
    from .. import AsyncClient, Client
    from ._local import LocalServer

# -- options shared by the commands ----------------------------------------------------------------
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON on stdout (for scripts).")
]
VerboseOpt = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="More detail in errors and logs (never secrets)."),
]
LocalOpt = Annotated[
    bool,
    typer.Option(
        "--local",
        help="Use the local sandbox (no account, no network): started in the background by "
        "the first --local command, shared by the next ones; `chanjing-avatar local stop` "
        "stops it.",
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="API base URL (env CHANJING_OPENAPI_BASE_URL; default https://open-api.chanjing.cc).",
        show_default=False,
    ),
]
CredentialsDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--credentials-dir",
        help=(
            "Folder of credentials.json "
            "(env CHANJING_OPENAPI_CREDENTIALS_DIR; default ~/.chanjing)."
        ),
        show_default=False,
        file_okay=False,
    ),
]


@dataclass(frozen=True)
class SessionOptions:
    """The five options every command takes, before or after its name
    (``chanjing-avatar --json status ID`` and ``chanjing-avatar status ID --json``)."""

    json: bool = False
    verbose: bool = False
    local: bool = False
    base_url: str | None = None
    credentials_dir: Path | None = None

    def merged(self, after: SessionOptions) -> SessionOptions:
        """These (given before the command) with those given after it; a value given after wins."""
        return SessionOptions(
            json=self.json or after.json,
            verbose=self.verbose or after.verbose,
            local=self.local or after.local,
            base_url=after.base_url if after.base_url is not None else self.base_url,
            credentials_dir=(after.credentials_dir if after.credentials_dir is not None
                             else self.credentials_dir),
        )


# Parameter name -> (its option, its default): declared once, added to the root and the commands.
_SHARED: dict[str, tuple[Any, Any]] = {
    "json_": (JsonOpt, False),
    "verbose": (VerboseOpt, False),
    "local": (LocalOpt, False),
    "base_url": (BaseUrlOpt, None),
    "credentials_dir": (CredentialsDirOpt, None),
}
_FIELDS = {"json_": "json", "verbose": "verbose", "local": "local", "base_url": "base_url",
           "credentials_dir": "credentials_dir"}
_FLAGS = {"json_": "--json", "verbose": "--verbose", "local": "--local",
          "base_url": "--base-url", "credentials_dir": "--credentials-dir"}

R = TypeVar("R")
P = ParamSpec("P")


def with_shared_options(
    f: Callable[..., R], *, exclude: Collection[str] = ()
) -> Callable[..., R]:
    """``f(ctx, options, ...)`` as a typer command taking the shared options itself: they are
    collected into one :class:`SessionOptions` (``options``); ``ctx`` is the click context."""
    sig = inspect.signature(f, eval_str=True)
    own = list(sig.parameters.values())[2:]
    names = [n for n in _SHARED if n not in exclude]
    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)]
    params += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
    params += [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=_SHARED[n][0],
                                 default=_SHARED[n][1]) for n in names]

    @functools.wraps(f)
    def command(ctx: typer.Context, **kwargs: Any) -> R:
        given = SessionOptions(**{_FIELDS[n]: kwargs.pop(n) for n in names})
        return f(ctx, given, **kwargs)

    command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def root_options(ctx: typer.Context | None = None) -> SessionOptions:
    """The shared options given before the subcommand (defaults outside a command)."""
    if ctx is None:
        import importlib

        # Recent typer vendors click as typer._click; older typer uses click itself.
        try:
            globals_ = importlib.import_module("typer._click.globals")
        except ImportError:  # pragma: no cover
            globals_ = importlib.import_module("click.globals")
        ctx = globals_.get_current_context(silent=True)
    found = ctx.find_object(SessionOptions) if ctx is not None else None
    return found if isinstance(found, SessionOptions) else SessionOptions()


def pass_session(
    *, exclude: Collection[str] = ()
) -> Callable[[Callable[Concatenate[Session, P], R]], Callable[..., R]]:
    """The command receives the :class:`Session` built from the shared options (given before or
    after its name) as its first argument; the session closes when the command ends.

    ``exclude`` names options the command does not take; given before it, they are refused.
    """

    def decorate(f: Callable[Concatenate[Session, P], R]) -> Callable[..., R]:
        def command(ctx: typer.Context, given: SessionOptions, /, *args: P.args,
                    **kwargs: P.kwargs) -> R:
            before = root_options(ctx)
            for name in set(exclude) - {"json_", "verbose"}:  # output styles do no harm
                if getattr(before, _FIELDS[name]) != getattr(SessionOptions(), _FIELDS[name]):
                    raise CliError(f"{_FLAGS[name]} does not apply to `{ctx.command_path}`")
            s = ctx.with_resource(Session(before.merged(given)))
            route_library_logs(s.out)
            return f(s, *args, **kwargs)

        functools.update_wrapper(command, f)
        del command.__wrapped__  # type: ignore[attr-defined]
        # The signature typer reads: the command's own parameters after a context and options.
        sig = inspect.signature(f, eval_str=True)
        command.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[
                inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_ONLY),
                inspect.Parameter("given", inspect.Parameter.POSITIONAL_ONLY),
                *list(sig.parameters.values())[1:],
            ])
        return with_shared_options(command, exclude=exclude)

    return decorate


def route_library_logs(out: Output) -> None:
    """The library's log records become notes on a terminal's stderr (nowhere otherwise)."""
    import logging

    class StderrTtyHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                text = record.getMessage()
            except Exception:  # a malformed record must not break the command
                return
            if record.levelno >= logging.WARNING:
                out.warn(text)
            else:
                out.debug(text)

    log = logging.getLogger("chanjing_avatar")
    for h in list(log.handlers):
        if getattr(h, "_chanjing_cli", False):
            log.removeHandler(h)
    handler = StderrTtyHandler()
    handler._chanjing_cli = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if out.verbose else logging.WARNING)
    log.propagate = False  # no lastResort handler printing to a pipe


class Session:
    """One command's output settings and, on demand, its client (remote or embedded sandbox)."""

    def __init__(self, options: SessionOptions) -> None:
        self.options = options
        self.out = Output(json_mode=options.json, verbose=options.verbose)
        self.local = options.local
        self.base_url = options.base_url
        self.credentials_dir = options.credentials_dir
        self._stack = ExitStack()
        self._sandbox: LocalServer | None = None

    # -- the local sandbox ----------------------------------------------------------------------
    def sandbox(self) -> LocalServer:
        """The background local sandbox (found, or started once) that --local uses."""
        if self._sandbox is None:
            import importlib.util

            from ._local import ensure, local_data_dir

            # The server runs in its own process: here, only whether it could (cheaply).
            missing = [m for m in ("fastapi", "uvicorn", "av", "numpy")
                       if importlib.util.find_spec(m) is None]
            if missing:
                raise CliError(
                    f"--local needs the sandbox extra ({', '.join(missing)}): "
                    "pip install 'chanjing-avatar[sandbox]' (or run scripts/setup)",
                    ExitCode.USAGE,
                )
            data_dir = local_data_dir()
            self._sandbox = ensure(data_dir, on_start=lambda: self.out.note(
                f"starting the local sandbox in the background ({data_dir})"))
            register_secret(self._sandbox.secret_key)
        return self._sandbox

    # -- the client ------------------------------------------------------------------------------
    def client(self) -> Client:
        """A client for this command: the embedded sandbox with --local, else the configured API."""
        from .. import Client

        if self.local:
            sb = self.sandbox()
            client = Client(sb.app_id, sb.secret_key, base_url=sb.base_url,
                            credentials_dir=sb.data_dir / "client")
        else:
            self.check_credentials_file()
            client = Client(base_url=self.base_url, credentials_dir=self.credentials_dir)
        self._stack.enter_context(client)
        self._registered(client)
        return client

    def async_client(self) -> AsyncClient:
        """The same as :meth:`client`, async; the caller closes it (``await c.aclose()``) in its
        event loop."""
        from .. import AsyncClient

        if self.local:
            sb = self.sandbox()
            client = AsyncClient(sb.app_id, sb.secret_key, base_url=sb.base_url,
                                 credentials_dir=sb.data_dir / "client")
        else:
            self.check_credentials_file()
            client = AsyncClient(base_url=self.base_url, credentials_dir=self.credentials_dir)
        self._registered(client)
        return client

    def _registered(self, client: Client | AsyncClient) -> None:
        CONTEXT["base_url"] = client.base_url
        for value in client.secrets():
            register_secret(value)
        self._register_env_secrets()
        # Tokens fetched during the command land in the store file: mask those too.
        register_secret_source(client.secrets)

    def credentials_path(self) -> Path:
        """credentials.json in the folder the client resolves (the client's own code path)."""
        from .. import resolve_credentials_dir

        folder = resolve_credentials_dir(self.credentials_dir).value
        return Path(folder or ".") / "credentials.json"

    def _register_env_secrets(self) -> None:
        register_secret(os.environ.get("CHANJING_SECRET_KEY"))
        for value in _stored_secrets(self.credentials_path()):
            register_secret(value)

    def check_credentials_file(self) -> None:
        """A corrupted credentials file is an error to fix, not 'no credentials': the client's
        resolution raises CredentialsFileError (naming the file) when it needs the file."""
        from .. import resolve_config

        config = resolve_config(base_url=self.base_url, credentials_dir=self.credentials_dir)
        register_secret(config.secret_key.value)
        register_secret(config.token.value)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stored_secrets(path: Path) -> list[str]:
    import json

    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict):
        return []
    return [v for k in ("secret_key", "access_token") if isinstance(v := data.get(k), str)]


def read_text_arg(text: str | None, text_file: Path | None) -> str | None:
    """``--text`` or ``--text-file`` (``-`` reads stdin), untouched apart from the file's BOM."""
    if text is not None and text_file is not None:
        raise CliError("give --text or --text-file, not both")
    if text_file is None:
        return text
    if str(text_file) == "-":
        return sys.stdin.read()
    try:
        return text_file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CliError(f"text file not found: {text_file}") from None
    except UnicodeDecodeError:
        raise CliError(f"text file is not UTF-8: {text_file}") from None


def require_file(path: Path, what: str, extensions: tuple[str, ...]) -> Path:
    """A readable local file with an accepted extension, checked before any request."""
    from .._wire import file_extension

    if not path.exists():
        raise CliError(f"{what} not found: {path}")
    if not path.is_file():
        raise CliError(f"{what} is not a file: {path}")
    ext = file_extension(path.name)
    if ext not in extensions:
        shown = ("." + ext) if ext else "(none)"
        raise CliError(
            f"{what} {path}: extension {shown} is not accepted; "
            f"use {', '.join('.' + e for e in extensions)}"
        )
    if path.stat().st_size == 0:
        raise CliError(f"{what} is empty: {path}")
    return path
