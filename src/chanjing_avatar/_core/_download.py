"""Download flow: temp file in the target folder, resume with Range, length check, rename."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path
from typing import BinaryIO

import httpx

from .._exceptions import DownloadError
from .._models import Download
from ._context import Context
from ._decisions import backoff
from ._effects import Flow, ProgressFn, Send, Sink, Sleep

log = logging.getLogger("chanjing_avatar")

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def part_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


def content_range(headers: httpx.Headers) -> tuple[int, int | None] | None:
    """(first byte, total) of a 206's Content-Range."""
    match = _CONTENT_RANGE.fullmatch(headers.get("content-range", "").strip())
    if not match:
        return None
    total = match.group(3)
    return int(match.group(1)), None if total == "*" else int(total)


def open_sink(sink: Sink, status: int, headers: httpx.Headers) -> BinaryIO | None:
    """The file to stream a response into, positioned right; None to leave the file alone.

    Drivers call this; it is the only place that decides where the bytes go.
    """
    if status == 200:
        return open(sink.path, "wb")
    if status == 206:
        rng = content_range(headers)
        if rng is None or rng[0] != sink.offset:
            return None
        f = open(sink.path, "r+b" if sink.path.exists() else "wb")  # noqa: SIM115
        f.seek(sink.offset)
        f.truncate()
        return f
    return None


def _expected_total(status: int, headers: httpx.Headers) -> int | None:
    if status == 206:
        rng = content_range(headers)
        return rng[1] if rng else None
    length = headers.get("content-length")
    return int(length) if length and length.isdigit() else None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _finish(part: Path, path: Path, overwrite: bool) -> None:
    with open(part, "rb+") as f:
        os.fsync(f.fileno())
    if overwrite:
        os.replace(part, path)
        return
    try:
        os.link(part, path)  # fails if path appeared meanwhile: never clobber
    except FileExistsError:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it") from None
    except OSError:
        if path.exists():
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it") from None
        os.replace(part, path)
        return
    part.unlink()


def download(
    ctx: Context,
    url: str,
    path: Path,
    *,
    overwrite: bool,
    on_progress: ProgressFn | None = None,
) -> Flow[Download]:
    """Fetch ``url`` into ``path``. An existing ``.<name>.part`` beside it is resumed."""
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(path)
    offset = _size(part)
    resumed_from = offset
    retries = 0
    while True:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        reply = yield Send(
            "GET", url, "download", headers=headers,
            sink=Sink(part, offset, on_progress), timeout="download",
        )
        status = reply.status
        problem: str
        if status == 416 and offset:
            # Nothing past our end: complete already, or the part is bogus.
            total = content_range_total(reply.headers)
            if total == offset:
                break
            part.unlink(missing_ok=True)
            offset = resumed_from = 0
            continue
        if status in (200, 206):
            total = _expected_total(status, reply.headers)
            if status == 206 and content_range(reply.headers) is None:
                part.unlink(missing_ok=True)
                offset = resumed_from = 0
                continue
            if status == 206 and (content_range(reply.headers) or (0, None))[0] != offset:
                part.unlink(missing_ok=True)
                offset = resumed_from = 0
                continue
            if status == 200:
                resumed_from = 0
            size = _size(part)
            if total is not None and size > total:
                part.unlink(missing_ok=True)
                offset = resumed_from = 0
                raise DownloadError(
                    f"received {size} bytes, more than the announced {total}",
                    http_status=status, endpoint="download",
                )
            if reply.error is None and (total is None or size == total):
                break
            problem = (
                f"interrupted at {size} of {total if total is not None else '?'} bytes"
                if reply.error is not None
                else f"body ended at {size} of {total} bytes"
            )
            if reply.written > 0:
                retries = 0  # progress was made: a fresh budget for the next stall
            offset = size
        elif reply.error is not None:
            problem = f"network error ({type(reply.error).__name__})"
        elif status is not None and (status >= 500 or status == 429):
            problem = f"HTTP {status}"
        else:
            raise DownloadError(f"download refused: HTTP {status}", http_status=status,
                                endpoint="download")
        if retries >= ctx.retry.max_retries:
            raise DownloadError(f"download failed: {problem}", http_status=status,
                                endpoint="download")
        delay = backoff(ctx.retry, retries, ctx.rng, rate_limited=False)
        retries += 1
        log.info("download %s; resuming from byte %d in %.1f s", problem, offset, delay)
        yield Sleep(delay)
    size = _size(part)
    _finish(part, path, overwrite)
    return Download(path=path, bytes=size, resumed_from=resumed_from)


def content_range_total(headers: httpx.Headers) -> int | None:
    match = re.fullmatch(r"bytes \*/(\d+)", headers.get("content-range", "").strip())
    return int(match.group(1)) if match else None


def discard_part(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        part_path(path).unlink()
