"""Settings resolution: explicit arguments > environment > credentials file > defaults."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx

from ._credentials import CREDENTIALS_FILE, read_credentials_file, write_credentials
from ._exceptions import ConfigurationError, InsecureBaseUrlError, MissingCredentialsError
from ._wire import DEFAULT_BASE_URL, RATE_LIMITS, RateLimit

__all__ = [
    "RateLimit",
    "RateLimits",
    "ResolvedConfig",
    "Setting",
    "Settings",
    "resolve_config",
    "resolve_credentials_dir",
    "resolve_settings",
    "save_credentials",
]

log = logging.getLogger("chanjing_avatar")

ENV_APP_ID = "CHANJING_APP_ID"
ENV_SECRET_KEY = "CHANJING_SECRET_KEY"
ENV_BASE_URL = ("CHANJING_OPENAPI_BASE_URL", "CHANJING_API_BASE")
ENV_CREDENTIALS_DIR = ("CHANJING_OPENAPI_CREDENTIALS_DIR", "CHANJING_CONFIG_DIR")
ENV_LOG = "CHANJING_LOG"

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# The PUT of a large file: no overall limit, but a stalled socket still fails.
DEFAULT_UPLOAD_TIMEOUT = httpx.Timeout(120.0, connect=10.0)


@dataclass(frozen=True)
class RateLimits:
    """Client-side limits per bucket; the defaults are the documented ones.

    ``RateLimits.scaled(f)`` divides every period by ``f`` (for a sandbox running scaled time).
    """

    limits: Mapping[str, RateLimit] = field(default_factory=lambda: dict(RATE_LIMITS))

    @classmethod
    def scaled(cls, factor: float) -> RateLimits:
        return cls(
            {k: RateLimit(v.bucket, v.count, v.period_s / factor) for k, v in RATE_LIMITS.items()}
        )


@dataclass(frozen=True)
class Settings:
    app_id: str
    secret_key: str
    base_url: str
    credentials_dir: Path

    def __repr__(self) -> str:  # never the secret
        return (
            f"Settings(app_id={self.app_id!r}, base_url={self.base_url!r}, "
            f"credentials_dir={str(self.credentials_dir)!r})"
        )


def _env(names: tuple[str, ...] | str, environ: Mapping[str, str]) -> str | None:
    found = _env_named(names, environ)
    return found[1] if found else None


def _env_named(names: tuple[str, ...] | str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(variable name, value) of the first non-empty variable of ``names``."""
    for name in (names,) if isinstance(names, str) else names:
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return None


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, *, allow_http: bool) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"base_url must be an http(s) URL, got {url!r}")
    if parts.scheme == "http" and not allow_http and not _is_loopback(parts.hostname):
        raise InsecureBaseUrlError(parts.hostname)
    return url.rstrip("/")


SettingSource = Literal["argument", "env", "legacy env", "file", "default", "unset"]


@dataclass(frozen=True, repr=False)
class Setting:
    """One resolved setting and where it came from.

    ``source`` is ``"argument"``, ``"env"``, ``"legacy env"`` (``CHANJING_API_BASE``,
    ``CHANJING_CONFIG_DIR``), ``"file"``, ``"default"`` or ``"unset"``; ``origin`` names the
    environment variable or the file. ``secret`` settings never show their value in a repr.
    """

    value: str | None
    source: SettingSource
    origin: str | None = None
    secret: bool = False

    def __repr__(self) -> str:
        shown = "<hidden>" if self.secret and self.value else repr(self.value)
        return f"Setting({shown}, source={self.source!r}, origin={self.origin!r})"


@dataclass(frozen=True, repr=False)
class ResolvedConfig:
    """What :func:`resolve_config` found: each setting with its source.

    ``token`` / ``token_expire_in`` are the shared token stored for this app in the credentials
    file (None when there is none). ``settings()`` is what a client is built from.
    """

    app_id: Setting
    secret_key: Setting
    base_url: Setting
    credentials_dir: Setting
    credentials_file: Path
    token: Setting
    token_expire_in: float | None = None

    def __repr__(self) -> str:
        return (
            f"ResolvedConfig(app_id={self.app_id!r}, secret_key={self.secret_key!r}, "
            f"base_url={self.base_url!r}, credentials_file={str(self.credentials_file)!r})"
        )

    @property
    def has_credentials(self) -> bool:
        return bool(self.app_id.value and self.secret_key.value)

    def settings(self, *, allow_http: bool = False) -> Settings:
        """The settings a client uses; raises :class:`MissingCredentialsError` without keys and
        :class:`InsecureBaseUrlError` for a refused base URL."""
        if not (self.app_id.value and self.secret_key.value):
            raise MissingCredentialsError(
                "no app_id/secret_key: pass them, set CHANJING_APP_ID and CHANJING_SECRET_KEY, "
                f"or put them in {self.credentials_file}"
            )
        assert self.base_url.value is not None and self.credentials_dir.value is not None
        url = check_base_url(self.base_url.value, allow_http=allow_http)
        return Settings(app_id=self.app_id.value, secret_key=self.secret_key.value,
                        base_url=url, credentials_dir=Path(self.credentials_dir.value))


def _from_env(names: tuple[str, ...], env: Mapping[str, str]) -> Setting | None:
    found = _env_named(names, env)
    if found is None:
        return None
    return Setting(found[1], "env" if found[0] == names[0] else "legacy env", found[0])


def resolve_credentials_dir(
    credentials_dir: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Setting:
    """The credentials folder: argument > CHANJING_OPENAPI_CREDENTIALS_DIR > CHANJING_CONFIG_DIR
    > ``~/.chanjing``. The value is the expanded path."""
    env = os.environ if environ is None else environ
    if credentials_dir is not None:
        return Setting(str(Path(credentials_dir).expanduser()), "argument")
    found = _from_env(ENV_CREDENTIALS_DIR, env)
    if found is not None:
        return Setting(str(Path(found.value or "").expanduser()), found.source, found.origin)
    return Setting(str(Path.home() / ".chanjing"), "default")


def resolve_config(
    app_id: str | None = None,
    secret_key: str | None = None,
    *,
    base_url: str | None = None,
    credentials_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ResolvedConfig:
    """Resolve every setting with its source, exactly as :class:`Client` does.

    Order: arguments > environment (``CHANJING_APP_ID``, ``CHANJING_SECRET_KEY``,
    ``CHANJING_OPENAPI_BASE_URL`` or legacy ``CHANJING_API_BASE``) > ``credentials.json`` (the
    secret only for the file's own app) > defaults. Missing keys are reported as ``"unset"``, not
    raised (see :meth:`ResolvedConfig.settings`). Raises :class:`CredentialsFileError` when the
    credentials file is needed for the keys and is unreadable or corrupt.
    """
    env = os.environ if environ is None else environ
    cdir = resolve_credentials_dir(credentials_dir, environ=env)
    path = Path(cdir.value or "") / CREDENTIALS_FILE
    app = Setting(app_id, "argument") if app_id else _from_env((ENV_APP_ID,), env)
    secret = (Setting(secret_key, "argument", secret=True) if secret_key else None)
    if secret is None:
        found = _from_env((ENV_SECRET_KEY,), env)
        secret = None if found is None else Setting(found.value, "env", found.origin, True)
    need_file = app is None or secret is None
    stored = read_credentials_file(path, strict=need_file)
    stored = stored or {}
    file_app, file_secret = stored.get("app_id"), stored.get("secret_key")
    if app is None:
        app = (Setting(file_app, "file", str(path)) if isinstance(file_app, str) and file_app
               else Setting(None, "unset"))
    if secret is None:
        # Take the secret from the file only for the file's own app.
        secret = (Setting(file_secret, "file", str(path), True)
                  if isinstance(file_secret, str) and file_secret and app.value == file_app
                  else Setting(None, "unset", secret=True))
    if base_url:
        url = Setting(base_url, "argument")
    else:
        url = _from_env(ENV_BASE_URL, env) or Setting(DEFAULT_BASE_URL, "default")
    token, expire = stored.get("access_token"), stored.get("expire_in")
    has_token = (isinstance(token, str) and bool(token) and file_app in (None, "", app.value)
                 and isinstance(expire, int | float) and not isinstance(expire, bool))
    return ResolvedConfig(
        app_id=app, secret_key=secret, base_url=url, credentials_dir=cdir,
        credentials_file=path,
        token=(Setting(token, "file", str(path), True) if has_token
               else Setting(None, "unset", secret=True)),
        token_expire_in=float(expire) if has_token and isinstance(expire, int | float) else None,
    )


def resolve_settings(
    app_id: str | None,
    secret_key: str | None,
    *,
    base_url: str | None,
    credentials_dir: str | os.PathLike[str] | None,
    allow_http: bool,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    return resolve_config(
        app_id, secret_key, base_url=base_url, credentials_dir=credentials_dir, environ=environ
    ).settings(allow_http=allow_http)


def save_credentials(
    app_id: str,
    secret_key: str,
    *,
    credentials_dir: str | os.PathLike[str] | None = None,
    access_token: str | None = None,
    expire_in: float | None = None,
    environ: Mapping[str, str] | None = None,
    force: bool = False,
) -> Path:
    """Store ``app_id`` and ``secret_key`` (and a token, when given) as ``credentials.json`` in
    the folder a client would use (argument > environment > ``~/.chanjing``); returns its path.

    The file is replaced whole, atomically (temp file, fsync, rename), 0600 in a 0700 folder,
    under the lock every client takes for it. A file holding another app's keys raises
    :class:`CredentialsConflictError` unless ``force`` (then it is first copied to
    ``credentials.json.<time>.bak``).
    """
    if not app_id or not secret_key:
        raise MissingCredentialsError("app_id and secret_key must not be empty")
    cdir = Path(resolve_credentials_dir(credentials_dir, environ=environ).value or "")
    return write_credentials(cdir, app_id, secret_key, access_token=access_token,
                             expire_in=expire_in, force=force).path


_log_configured = False


def configure_logging_from_env(environ: Mapping[str, str] | None = None) -> None:
    """``CHANJING_LOG=debug`` (or info) sends this library's logs to stderr."""
    global _log_configured
    level_name = _env(ENV_LOG, os.environ if environ is None else environ)
    if _log_configured or not level_name:
        return
    level = logging.getLevelName(level_name.upper())
    if not isinstance(level, int):
        return
    _log_configured = True
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(level)
