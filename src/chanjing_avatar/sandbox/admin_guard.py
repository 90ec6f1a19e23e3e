"""Who may call the admin endpoints: a bearer token, on a Host this sandbox answers to.

The token is made up at each start (or given in the config) and printed only to whoever started
the sandbox. The Host check keeps a web page the user visits from reaching a loopback sandbox
through a name that resolves to 127.0.0.1 (DNS rebinding).
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

from starlette.types import Scope

from .config import SandboxConfig

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(config: SandboxConfig) -> frozenset[str]:
    """Names the Host header may carry on an admin request (any port)."""
    names = set(_LOOPBACK_NAMES)
    if config.host not in ("0.0.0.0", "::", ""):
        names.add(config.host.lower())
    if config.public_url:
        names.add((urlsplit(config.public_url).hostname or "").lower())
    return frozenset(n for n in names if n)


def host_name(header: str) -> str:
    """The name part of a Host header (``[::1]:80`` -> ``::1``)."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0].lower()
    return header.rsplit(":", 1)[0].lower() if header.count(":") == 1 else header.lower()


def admin_refusal(scope: Scope, config: SandboxConfig, token: str) -> tuple[int, str] | None:
    """(HTTP status, reason) when this admin request may not proceed; None when it may."""
    headers = {bytes(k).lower(): bytes(v).decode("latin-1") for k, v in scope["headers"]}
    host = host_name(headers.get(b"host", ""))
    # Bound to every interface, any name may reach it; the token still decides.
    if config.host not in ("0.0.0.0", "::", "") and host not in allowed_hosts(config):
        return 403, f"Host {host[:100]!r} is not an address of this sandbox"
    scheme, _, given = headers.get(b"authorization", "").partition(" ")
    if (
        not token
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(given.strip().encode(), token.encode())
    ):
        return 401, "send the admin token printed at start: Authorization: Bearer <token>"
    return None
