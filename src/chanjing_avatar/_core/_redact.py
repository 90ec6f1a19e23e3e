"""Keep secrets out of logs, errors and reprs."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

# Query parameters safe to show; every other value is masked (signatures, tokens, policies).
_SHOWN_PARAMS = frozenset({"id", "service", "name", "page", "page_size", "size"})


def redact_url(url: str) -> str:
    """``url`` with every query value except harmless ones replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    netloc = parts.netloc
    if "@" in netloc:  # user:password@host
        netloc = "***@" + netloc.rpartition("@")[2]
    if not parts.query:
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    shown = []
    for pair in parts.query.split("&"):
        key, eq, _ = pair.partition("=")
        shown.append(pair if key in _SHOWN_PARAMS else f"{key}{eq}***" if eq else key)
    return urlunsplit((parts.scheme, netloc, parts.path, "&".join(shown), ""))

