"""Identifiers: task ids, file ids, trace ids and tokens."""

from __future__ import annotations

import re
import secrets

_HEX32 = re.compile(r"[0-9a-f]{32}")


def new_id() -> str:
    """A 32-hex id, the shape of the real service's task, file and trace ids."""
    return secrets.token_hex(16)


def is_id(value: str) -> bool:
    return _HEX32.fullmatch(value) is not None


def new_token() -> str:
    """An opaque 64-character access token."""
    return secrets.token_urlsafe(48)[:64]


def new_secret() -> str:
    return secrets.token_hex(16)
