"""``chanjing-avatar auth set | status | token``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import Session, pass_session
from ._errors import CliError, ExitCode
from ._output import register_secret

auth_app = typer.Typer(
    help="Credentials: store them, show where they come from, print a token.",
    no_args_is_help=True,
)


def _read_secret_from_stdin() -> str:
    value = sys.stdin.readline().strip()
    if not value:
        raise CliError("no secret key on standard input")
    return value


def _write_credentials(directory: Path, app_id: str, secret_key: str,
                       token: tuple[str, float] | None, *, force: bool) -> tuple[Path, Path | None]:
    """Replace credentials.json atomically (0600), under the lock the client uses for it;
    (path, backup of another app's file replaced with --force)."""
    from .. import CredentialsConflictError, write_credentials

    try:
        saved = write_credentials(
            directory, app_id, secret_key,
            access_token=None if token is None else token[0],
            expire_in=None if token is None else token[1],
            force=force,
        )
    except CredentialsConflictError as e:
        raise CliError(
            f"{e.path} holds the keys of another app ({e.other_app_id}), whose programs would "
            "then act as this one: replace it with --force (a backup is kept) or store these "
            "keys elsewhere with --credentials-dir DIR"
        ) from None
    return saved.path, saved.backup


@auth_app.command("set")
@pass_session(exclude=("local",))
def auth_set(
    s: Session,
    app_id: Annotated[
        str | None,
        typer.Option("--app-id", help="The app id (AK); asked for when omitted."),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option("--verify/--no-verify", help="Check the pair by getting a token first."),
    ] = True,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace a credentials file of another app (kept as .bak)."),
    ] = False,
) -> None:
    """Store the app id and secret key in credentials.json (0600).

    The secret key is read from a hidden prompt, or from standard input when it is not a
    terminal (`printf %s "$SK" | chanjing-avatar auth set --app-id AK`); never from arguments.
    """
    interactive = sys.stdin.isatty()
    if not app_id:
        if not interactive:
            raise CliError("give --app-id (standard input carries the secret key)")
        app_id = typer.prompt("App id (AK)").strip()
    if not app_id:
        raise CliError("the app id must not be empty")
    if interactive:
        secret = typer.prompt("Secret key (SK)", hide_input=True).strip()
    else:
        secret = _read_secret_from_stdin()
    if not secret:
        raise CliError("the secret key must not be empty")
    register_secret(secret)
    directory = s.credentials_path().parent
    token: tuple[str, float] | None = None
    if verify:
        token = _fetch_token(app_id, secret, s.base_url)
    path, backup = _write_credentials(directory, app_id, secret, token, force=force)
    s.out.result(
        {"credentials_file": str(path), "app_id": app_id, "verified": verify,
         "backup": None if backup is None else str(backup)},
        f"saved {path}" + (" (verified)" if verify else "")
        + ("" if backup is None else f"; the other app's file is kept as {backup}"),
    )


def _fetch_token(app_id: str, secret: str, base_url: str | None) -> tuple[str, float]:
    """Get a token in a scratch folder, so nothing is written unless the pair works."""
    import tempfile

    from .. import Client, resolve_config

    with tempfile.TemporaryDirectory(prefix="chanjing-auth-") as tmp:
        with Client(app_id, secret, base_url=base_url, credentials_dir=tmp) as c:
            token = c.auth.token()
            register_secret(token)
        stored = resolve_config(app_id, secret, credentials_dir=tmp)
        expire = (stored.token_expire_in or 0.0) if stored.token.value == token else 0.0
    return token, expire


@auth_app.command("status")
@pass_session()
def auth_status(
    s: Session,
    check: Annotated[
        bool, typer.Option("--check", help="Also get a token to prove the credentials work.")
    ] = False,
) -> None:
    """Show where the app id, secret key, base URL and token come from (secrets masked)."""
    from datetime import UTC, datetime

    from ._output import mask

    info: dict[str, Any] = {}
    if s.local:
        sb = s.sandbox()
        info = {
            "app_id": {"value": sb.app_id, "source": "local sandbox"},
            "secret_key": {"value": mask(sb.secret_key), "source": "local sandbox"},
            "base_url": {"value": sb.base_url, "source": "local sandbox"},
        }
    else:
        from .. import Setting, resolve_config

        # The client's own resolution, with the source of each setting.
        config = resolve_config(base_url=s.base_url, credentials_dir=s.credentials_dir)
        path = config.credentials_file
        register_secret(config.secret_key.value)
        register_secret(config.token.value)

        def source(setting: Setting) -> str:
            if setting.source in ("env", "legacy env"):
                return f"env {setting.origin}"
            if setting.source == "file":
                return f"file {setting.origin}"
            names = {"argument": "--base-url", "unset": "not set"}
            return names.get(setting.source, str(setting.source))

        app_id, secret = config.app_id.value, config.secret_key.value
        info = {
            "credentials_file": {"value": str(path), "exists": path.exists()},
            "app_id": {"value": app_id, "source": source(config.app_id)},
            "secret_key": {"value": mask(secret) if secret else None,
                           "source": source(config.secret_key)},
            "base_url": {"value": config.base_url.value, "source": source(config.base_url)},
        }
        token_info: dict[str, Any] = {"value": None, "expires": None, "source": "none"}
        if config.token.value and config.token_expire_in is not None:
            expires = datetime.fromtimestamp(config.token_expire_in, tz=UTC)
            token_info = {
                "value": mask(config.token.value),
                "expires": expires.isoformat(timespec="seconds"),
                "expired": expires <= datetime.now(tz=UTC),
                "source": source(config.token),
            }
        info["token"] = token_info
        if not (app_id and secret):
            _print_status(s, info)
            raise CliError(
                "no app id / secret key: run `chanjing-avatar auth set` "
                "(or set CHANJING_APP_ID and CHANJING_SECRET_KEY)",
                ExitCode.AUTH,
            )
    if check:
        c = s.client()
        c.auth.token()
        info["check"] = {"value": "ok", "source": "token obtained"}
    _print_status(s, info)


def _print_status(s: Any, info: dict[str, Any]) -> None:
    def human() -> None:
        for key, entry in info.items():
            value = entry.get("value")
            shown = "-" if value in (None, "") else str(value)
            extra = ""
            if key == "token" and entry.get("expires"):
                extra = f", expires {entry['expires']}" + (" (expired)" if entry.get("expired")
                                                            else "")
            if key == "credentials_file":
                extra = "" if entry.get("exists") else " (missing)"
                s.out.line(f"{key + ':':<18}{shown}{extra}")
                continue
            s.out.line(f"{key + ':':<18}{shown}{extra}  [{entry.get('source')}]")

    s.out.result(info, human)


@auth_app.command("token")
@pass_session()
def auth_token(s: Session) -> None:
    """Print a valid access token (shared with every other client on this machine)."""
    import sys as _sys

    token = s.client().auth.token()
    # The one place a token is meant to be printed: not scrubbed.
    if s.out.json_mode:
        _sys.stdout.write(json.dumps({"access_token": token}) + "\n")
    else:
        _sys.stdout.write(token + "\n")
