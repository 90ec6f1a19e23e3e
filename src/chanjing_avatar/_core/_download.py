"""Download flow: temp file in the target folder, resume with Range, length check, rename."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
from pathlib import Path
from typing import BinaryIO

import httpx

from .._exceptions import DownloadError
from .._models import Download
from .._wire import Code
from ._context import Context
from ._decisions import backoff, is_retryable
from ._effects import Flow, ProgressFn, Send, Sink, Sleep
from ._envelope import error_for_code

log = logging.getLogger("chanjing_avatar")

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def download_part_path(path: Path) -> Path:
    """Where a download to ``path`` keeps its bytes until complete (resumed by the next try)."""
    return path.with_name(f".{path.name}.part")


def content_range(headers: httpx.Headers) -> tuple[int, int | None] | None:
    """(first byte, total) of a 206's Content-Range."""
    match = _CONTENT_RANGE.fullmatch(headers.get("content-range", "").strip())
    if not match:
        return None
    total = match.group(3)
    return int(match.group(1)), None if total == "*" else int(total)


def is_error_type(headers: httpx.Headers) -> bool:
    """A Content-Type no video or image has: an API envelope, a web page, an XML error."""
    ctype = str(headers.get("content-type", "")).split(";", 1)[0].strip().lower()
    return ctype.endswith(("/json", "+json", "/html", "/xml", "+xml"))


_ENVELOPE_CODE = re.compile(rb'"code"\s*:\s*(-?\d+)')
_PAGE_STARTS = (b"<!doctype", b"<html", b"<?xml", b"<error", b"<head", b"<body")


def error_answer(
    status: int | None, content: bytes, what: str = "download"
) -> tuple[str, bool, int | None] | None:
    """(message, retryable, envelope code) when ``content`` is an error answer, not media.

    A successful envelope (code 0) is not an error.
    An API envelope is retryable when its code is (40001, 50000, 51000...); a web page or an XML
    error when the status is 5xx/429 or a 2xx (a gateway or proxy answered in place of the
    object store); an object store's refusal (AccessDenied, NoSuchKey...) is not.
    """
    text = content.lstrip()[:4096]
    if text[:1] == b"{":
        try:
            body = json.loads(content)
        except ValueError:
            match = _ENVELOPE_CODE.search(text)
            body = {"code": int(match.group(1))} if match else None
        if isinstance(body, dict) and isinstance(body.get("code"), int):
            if body["code"] == 0:
                return None
            msg = body.get("msg")
            error = error_for_code(body["code"], msg if isinstance(msg, str) else "", None, what)
            return (f"the {what} answered an API error: {error}",
                    is_retryable(error), body["code"])
        return None
    if text[:15].lower().startswith(_PAGE_STARTS):
        parts = [m.group(1).decode("utf-8", "replace") for m in
                 re.finditer(rb"<(?:Code|Message)>([^<]{1,200})</", text)]
        if parts:
            transient = parts[0] in ("InternalError", "ServiceUnavailable", "SlowDown",
                                     "RequestTimeout")
            retryable = transient or (status is not None and (status >= 500 or status == 429))
            return (f"the {what} answered an error (HTTP {status}: {': '.join(parts)})",
                    retryable, None)
        return (f"the {what} answered a web page (HTTP {status})",
                status is None or status < 300 or status >= 500 or status == 429, None)
    return None


def _head(path: Path, start: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(start)
            return f.read(4096)
    except OSError:
        return b""


def open_sink(sink: Sink, status: int, headers: httpx.Headers) -> BinaryIO | None:
    """The file to stream a response into, positioned right; None to leave the file alone.

    Drivers call this; it is the only place that decides where the bytes go. An answer typed as
    JSON, HTML or XML is an error, never the file: it stays in ``Reply.content``.
    """
    if status in (200, 206) and is_error_type(headers):
        return None
    if status == 200:
        fresh: BinaryIO = open(sink.path, "wb")  # noqa: SIM115
        _note_validator(sink.path, headers)
        return fresh
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


class _OutputExists(FileExistsError):
    """An output that exists and may not be replaced; ``filename`` names it (as ``open`` does)."""

    def __str__(self) -> str:
        return f"{self.filename} exists; pass overwrite=True to replace it"


def output_exists(path: Path) -> FileExistsError:
    return _OutputExists(errno.EEXIST, "exists", str(path))


def _finish(part: Path, path: Path, overwrite: bool) -> None:
    with open(part, "rb+") as f:
        os.fsync(f.fileno())
    if overwrite:
        os.replace(part, path)
        return
    try:
        os.link(part, path)  # fails if path appeared meanwhile: never clobber
    except FileExistsError:
        raise output_exists(path) from None
    except OSError:
        if path.exists():
            raise output_exists(path) from None
        os.replace(part, path)
        return
    part.unlink()


def _meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _source(url: str) -> str:
    return url.split("?", 1)[0]  # signed URLs change their query; the object is the path


def _validator(headers: httpx.Headers) -> str | None:
    value: str | None = headers.get("etag") or headers.get("last-modified")
    return value


def _load_meta(part: Path, url: str) -> str | None:
    """The validator of a part file left for this same URL; discards a foreign part."""
    meta = _meta_path(part)
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or data.get("source") != _source(url):
        part.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
        return None
    validator = data.get("validator")
    return validator if isinstance(validator, str) else None


def _save_meta(part: Path, url: str, validator: str | None) -> None:
    with contextlib.suppress(OSError):
        _meta_path(part).write_text(json.dumps({"source": _source(url), "validator": validator}))


def _forget_if_empty(part: Path) -> None:
    """A download that ends with no byte kept leaves nothing behind (no part, no metadata)."""
    if _size(part) == 0:
        part.unlink(missing_ok=True)
        _meta_path(part).unlink(missing_ok=True)


def _note_validator(part: Path, headers: httpx.Headers) -> None:
    """A fresh body starts: its validator goes beside the part before any byte is written, so a
    download killed mid-stream (Ctrl-C, SIGTERM, a crash) is resumed, not restarted."""
    meta = _meta_path(part)
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return
    if isinstance(data, dict):
        data["validator"] = _validator(headers)
        with contextlib.suppress(OSError):
            meta.write_text(json.dumps(data))


def download(
    ctx: Context,
    url: str,
    path: Path,
    *,
    overwrite: bool,
    on_progress: ProgressFn | None = None,
) -> Flow[Download]:
    """Fetch ``url`` into ``path``. A ``.<name>.part`` left beside it for the same URL is resumed
    (with ``If-Range``, so a changed object is fetched whole)."""
    if path.exists() and not overwrite:
        raise output_exists(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = download_part_path(path)
    validator = _load_meta(part, url) if part.exists() else None
    if not part.exists() or not _meta_path(part).exists():
        # Written before the first byte, so that a part left by any interruption is known.
        _save_meta(part, url, None)
    offset = resumed_from = _size(part)
    retries = 0
    while True:
        headers = {}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if validator:
                headers["If-Range"] = validator
        reply = yield Send("GET", url, "download", headers=headers,
                           sink=Sink(part, offset, on_progress), timeout="download")
        status = reply.status
        if status in (200, 206):
            # An error answer in place of the object: never kept as the file.
            start = offset if status == 206 else 0
            wrong: tuple[str, bool, int | None] | None
            if is_error_type(reply.headers):
                wrong = error_answer(status, reply.content) or (
                    f"the download answered {reply.headers.get('content-type')} instead of the "
                    f"file (HTTP {status})", True, None)
            else:
                wrong = error_answer(status, _head(part, start)) if reply.written else None
            if wrong is not None:
                message, retryable, code = wrong
                if reply.written:  # drop what this answer wrote
                    if start == 0:
                        part.unlink(missing_ok=True)
                        _meta_path(part).unlink(missing_ok=True)
                    else:
                        with open(part, "r+b") as f:
                            f.truncate(start)
                if not retryable or retries >= ctx.retry.max_retries:
                    _forget_if_empty(part)
                    raise DownloadError(message, http_status=status, code=code,
                                        endpoint="download")
                offset = _size(part)
                if offset == 0:
                    resumed_from = 0
                delay = backoff(ctx.retry, retries, ctx.rng,
                                rate_limited=code == Code.RATE_LIMITED)
                retries += 1
                log.info("%s; retry %d/%d in %.1f s", message, retries, ctx.retry.max_retries,
                         delay)
                yield Sleep(delay)
                continue
        if status == 416 and offset:
            # Nothing past our end: complete already, or the part is bogus.
            if content_range_total(reply.headers) == offset:
                break
            status = None  # start over below
        elif status == 206 and (content_range(reply.headers) or (-1, None))[0] != offset:
            status = None  # a range we did not ask for: start over
        if status is None and reply.error is None:
            part.unlink(missing_ok=True)
            offset = resumed_from = 0
            continue
        problem: str
        if status in (200, 206):
            if status == 200:
                resumed_from = 0
            if _validator(reply.headers) != validator or not _meta_path(part).exists():
                validator = _validator(reply.headers)
                _save_meta(part, url, validator)
            total = _expected_total(status, reply.headers)
            size = _size(part)
            if total is not None and size > total:
                part.unlink(missing_ok=True)
                raise DownloadError(f"received {size} bytes, more than the announced {total}",
                                    http_status=status, endpoint="download")
            if reply.error is None and (total is None or size == total):
                break
            shown_total = total if total is not None else "?"
            problem = f"interrupted at {size} of {shown_total} bytes"
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
    _meta_path(part).unlink(missing_ok=True)
    return Download(path=path, bytes=size, resumed_from=resumed_from)


def content_range_total(headers: httpx.Headers) -> int | None:
    match = re.fullmatch(r"bytes \*/(\d+)", headers.get("content-range", "").strip())
    return int(match.group(1)) if match else None

