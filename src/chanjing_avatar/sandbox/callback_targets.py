"""Which callback URLs the sandbox POSTs to: a pure decision, made when a task is created and
again (after resolving the host name) before every attempt.

A callback URL is chosen by whoever creates the task, so on a shared sandbox it must not reach
the sandbox's own admin paths nor, unless allowed, addresses inside the host's networks
(loopback, private, link-local...): otherwise any tenant could make the server request them.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from urllib.parse import unquote, urlsplit

from .endpoints import ADMIN_PREFIX

_SLASHES = re.compile("/{2,}")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")

Resolver = Callable[[str, int], Iterable[str]]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def url_problem(url: str, *, allow_private: bool) -> str:
    """Why ``url`` may not be a callback target, judged from its text alone; '' if it may."""
    try:
        parts = urlsplit(url)
        if parts.port == 0:
            return "port 0 takes no connections"
    except ValueError:  # a port that is not a number or out of range
        return "not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    path = _SLASHES.sub("/", unquote(parts.path))
    if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
        return f"must not point at the sandbox's admin paths ({ADMIN_PREFIX})"
    if allow_private:
        return ""
    host = parts.hostname.rstrip(".").lower()
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return _private_reason()
    address = _address(host)
    if address is not None and not _public(address):
        return _private_reason()
    return ""


def resolved_problem(url: str, *, allow_private: bool, resolve: Resolver | None = None) -> str:
    """``url_problem``, then (unless private targets are allowed) every address its host
    resolves to must be public. Unresolvable hosts are not refused here: the attempt fails."""
    problem = url_problem(url, allow_private=allow_private)
    if problem or allow_private:
        return problem
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = list((resolve or _resolve)(host, port))
    except OSError:
        return ""
    for text in addresses:
        address = _address(text)
        if address is None or not _public(address):
            return _private_reason()
    return ""


def _private_reason() -> str:
    return (
        "loopback, private and link-local addresses are refused "
        "(a sandbox started with callback_allow_private / --allow-private-callbacks takes them)"
    )


def _address(text: str) -> IpAddress | None:
    try:
        address = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _public(address: IpAddress) -> bool:
    return address.is_global and not address.is_multicast


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]
