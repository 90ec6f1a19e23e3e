"""The output files: checks on what was downloaded, and one-line file system errors."""

from __future__ import annotations

import contextlib
import errno
import hashlib
from pathlib import Path

__all__ = ["discard_part", "not_a_video", "os_reason", "sha256_of"]


def os_reason(e: OSError, path: Path) -> str:
    """One line for a file system error on ``path``."""
    if e.errno == errno.ENOSPC:
        return f"disk full at {path}"
    return f"{e.strerror or type(e).__name__} at {e.filename or path}"


def discard_part(target: Path) -> None:
    """Drop a download's partial file and its resume record."""
    part = target.with_name(f".{target.name}.part")
    for p in (part, part.with_name(part.name + ".json")):
        with contextlib.suppress(OSError):
            p.unlink()


def not_a_video(path: Path) -> str | None:
    """Why the downloaded file is an error answer rather than a video (None if it is not)."""
    with path.open("rb") as f:
        head = f.read(4096)
    if head[:1] in (b"{", b"<"):
        text = head.decode("utf-8", "replace").lstrip()
        if text.startswith("{") and '"code"' in text:
            return f"the download answered an API error instead of a video: {text[:120]}"
        if text[:15].lower().startswith(("<!doctype", "<html", "<?xml", "<error")):
            return "the download answered a web page instead of a video"
    return None


def sha256_of(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of the file as it is on the disk."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()
