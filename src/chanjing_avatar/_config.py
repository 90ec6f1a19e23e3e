"""Settings resolution: explicit arguments > environment > credentials file > defaults."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from ._credentials import read_credentials_file
from ._exceptions import ConfigurationError
from ._wire import DEFAULT_BASE_URL, RATE_LIMITS, RateLimit

__all__ = ["RateLimit", "RateLimits", "Settings", "resolve_settings"]

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
    for name in (names,) if isinstance(names, str) else names:
        value = environ.get(name, "").strip()
        if value:
            return value
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
        raise ConfigurationError(
            f"refusing plain http:// base_url {parts.hostname!r}: tokens would travel in clear; "
            "use https://, a loopback address, or pass allow_http=True"
        )
    return url.rstrip("/")


def resolve_settings(
    app_id: str | None,
    secret_key: str | None,
    *,
    base_url: str | None,
    credentials_dir: str | os.PathLike[str] | None,
    allow_http: bool,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    env = os.environ if environ is None else environ
    cdir = Path(
        credentials_dir
        if credentials_dir is not None
        else _env(ENV_CREDENTIALS_DIR, env) or Path.home() / ".chanjing"
    ).expanduser()
    app_id = app_id or _env(ENV_APP_ID, env)
    secret_key = secret_key or _env(ENV_SECRET_KEY, env)
    if not (app_id and secret_key):
        stored = read_credentials_file(cdir / "credentials.json")
        if stored is not None:
            file_app = stored.get("app_id")
            file_secret = stored.get("secret_key")
            # Take the secret from the file only for the file's own app.
            if not app_id and isinstance(file_app, str):
                app_id = file_app
            if not secret_key and app_id == file_app and isinstance(file_secret, str):
                secret_key = file_secret
    if not (app_id and secret_key):
        raise ConfigurationError(
            "no app_id/secret_key: pass them, set CHANJING_APP_ID and CHANJING_SECRET_KEY, "
            f"or put them in {cdir / 'credentials.json'}"
        )
    url = check_base_url(base_url or _env(ENV_BASE_URL, env) or DEFAULT_BASE_URL,
                         allow_http=allow_http)
    return Settings(app_id=app_id, secret_key=secret_key, base_url=url, credentials_dir=cdir)


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
