"""What every command shares: the common options, the session (output + client) and --local.

Nothing heavy is imported at module level: the client (pydantic, httpx) and the sandbox (fastapi,
uvicorn, av, numpy) load inside the command that needs them, so ``--help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._errors import CONTEXT, CliError, ExitCode
from ._output import Output, register_secret, register_secret_source

if TYPE_CHECKING:
    from .. import AsyncClient, Client

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
        help="Run an embedded sandbox in this process and use it: no account, no network.",
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


@dataclass
class GlobalFlags:
    """Flags given before the subcommand (``chanjing-avatar --json status ID``)."""

    json: bool = False
    verbose: bool = False


GLOBAL = GlobalFlags()

ENV_LOCAL_DIR = "CHANJING_LOCAL_DIR"
ENV_LOCAL_RENDERER = "CHANJING_LOCAL_RENDERER"


def local_data_dir() -> Path:
    """Where ``--local`` keeps the embedded sandbox's state, so ids outlive one command."""
    explicit = os.environ.get(ENV_LOCAL_DIR, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME", "").strip() or str(Path.home() / ".local" / "share")
    return Path(base) / "chanjing-avatar" / "local"


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


_stderr_quieted = False


def _quiet_native_stderr() -> None:
    """Keep the in-process renderer's native logs (TF Lite, absl) and warnings off our stderr.

    File descriptor 2 goes to /dev/null; Python's ``sys.stderr`` keeps writing to the original
    stream, so progress bars and the error line are unaffected.
    """
    global _stderr_quieted
    if _stderr_quieted:
        return
    _stderr_quieted = True
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    # The server's own loggers (uvicorn) and any without a handler stay silent too.
    logging.getLogger().addHandler(logging.NullHandler())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addHandler(logging.NullHandler())
        logging.getLogger(name).propagate = False
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "3")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        return
    sys.stderr = open(saved, "w", encoding="utf-8", errors="backslashreplace",  # noqa: SIM115
                      buffering=1, closefd=True)


class Session:
    """One command's output settings and, on demand, its client (remote or embedded sandbox)."""

    def __init__(
        self,
        *,
        json_: bool = False,
        verbose: bool = False,
        local: bool = False,
        base_url: str | None = None,
        credentials_dir: Path | None = None,
    ) -> None:
        self.out = Output(json_mode=json_ or GLOBAL.json, verbose=verbose or GLOBAL.verbose)
        self.local = local
        self.base_url = base_url
        self.credentials_dir = credentials_dir
        self._stack = ExitStack()
        self._sandbox: Any = None
        route_library_logs(self.out)

    # -- the embedded sandbox --------------------------------------------------------------------
    def sandbox(self) -> Any:
        """Start (once) the embedded sandbox; stopped when the session closes."""
        if self._sandbox is None:
            try:
                from ..sandbox import Sandbox, SandboxConfig
            except ImportError as e:
                raise CliError(
                    f"--local needs the sandbox extra ({e.name or e}): "
                    "pip install 'chanjing-avatar[sandbox]' (or run scripts/setup)",
                    ExitCode.USAGE,
                ) from None
            data_dir = local_data_dir()
            data_dir.mkdir(parents=True, exist_ok=True)
            if not self.out.verbose:
                _quiet_native_stderr()
            self.out.note(f"starting the local sandbox ({data_dir})")
            # The renderer is the sandbox's choice unless the environment names one.
            renderer = os.environ.get(ENV_LOCAL_RENDERER, "").strip()
            # Single-user and on loopback: callbacks go to the user's own receiver here.
            config = SandboxConfig(data_dir=data_dir, callback_allow_private=True)
            if renderer:
                config = replace(config, renderer=renderer)
            from ..render.base import RenderError

            try:
                sb = self._stack.enter_context(Sandbox(config))
            except RenderError as e:  # no renderer can run here (a missing package or model)
                raise CliError(f"--local: {e}", ExitCode.FAILED) from None
            except ValueError as e:  # an unknown renderer name
                raise CliError(f"{ENV_LOCAL_RENDERER}: {e}", ExitCode.USAGE) from None
            register_secret(sb.secret_key)
            self._sandbox = sb
        return self._sandbox

    # -- the client ------------------------------------------------------------------------------
    def client(self) -> Client:
        """A client for this command: the embedded sandbox with --local, else the configured API."""
        from .. import Client

        if self.local:
            sb = self.sandbox()
            cdir = local_data_dir() / "client"
            client = Client(
                sb.app_id, sb.secret_key, base_url=sb.base_url, credentials_dir=cdir
            )
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
                                 credentials_dir=local_data_dir() / "client")
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


@contextmanager
def session(**kwargs: Any) -> Iterator[Session]:
    s = Session(**kwargs)
    try:
        yield s
    finally:
        s.close()


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
