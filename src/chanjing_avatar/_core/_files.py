"""File management flows: upload address, streamed PUT, readiness polling."""

from __future__ import annotations

import io
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .._exceptions import (
    ContentRejectedError,
    FileUnavailableError,
    InvalidRequestError,
    TransportError,
    WaitTimeoutError,
)
from .._models import FileDetail, UploadUrl
from .._wire import (
    PATH_CREATE_UPLOAD_URL,
    PATH_FILE_DETAIL,
    UPLOAD_URL_TTL_S,
    Code,
    FileStatus,
    check_upload_name,
)
from ._calls import ApiCall, call, rate_patience
from ._context import Context
from ._decisions import backoff, may_retry, poll_delay
from ._download import error_answer
from ._effects import FileBody, Flow, ProgressFn, Send, Sleep
from ._envelope import GATEWAY_STATUSES

log = logging.getLogger("chanjing_avatar")

# Ask for a new address this long before the old one expires (a big PUT takes a while).
URL_REFRESH_BEFORE_S = 60.0


def create_upload_url(ctx: Context, service: str, name: str) -> Flow[UploadUrl]:
    why = check_upload_name(service, name)
    if why is not None:
        field, _, reason = why.partition(": ")
        raise InvalidRequestError(reason, field=field, endpoint=PATH_CREATE_UPLOAD_URL)
    data = yield from call(
        ctx, ApiCall("GET", PATH_CREATE_UPLOAD_URL, params={"service": service, "name": name})
    )
    return UploadUrl.model_validate(data)


def file_detail(ctx: Context, file_id: str) -> Flow[FileDetail]:
    data = yield from call(ctx, ApiCall("GET", PATH_FILE_DETAIL, params={"id": file_id}))
    return FileDetail.model_validate(data)


def check_file(detail: FileDetail) -> None:
    """Raise when a file can never become ready."""
    reason = detail.msg or f"status {int(detail.status)}"
    if detail.status == FileStatus.CHECK_FAILED:
        raise ContentRejectedError(
            f"file {detail.id} failed the content check: {reason}", endpoint=PATH_FILE_DETAIL
        )
    if detail.status in (FileStatus.DELETED, FileStatus.PURGED):
        state = "deleted" if detail.status == FileStatus.DELETED else "purged"
        raise FileUnavailableError(f"file {detail.id} was {state}: {reason}",
                                   endpoint=PATH_FILE_DETAIL)


def wait_ready(ctx: Context, file_id: str, timeout: float) -> Flow[FileDetail]:
    deadline = ctx.clock() + timeout
    polls = 0
    while True:
        detail = yield from file_detail(ctx, file_id)
        polls += 1
        if detail.is_ready:
            return detail
        check_file(detail)
        now = ctx.clock()
        if now >= deadline:
            raise WaitTimeoutError(
                f"file {file_id} not ready after {timeout:g} s (status {int(detail.status)})",
                last=detail,
                endpoint=PATH_FILE_DETAIL,
            )
        yield Sleep(min(poll_delay(ctx.file_poll, polls, ctx.rng), deadline - now))


@dataclass(frozen=True)
class UploadSource:
    """A validated local file or binary stream, with its name and length."""

    source: Path | BinaryIO
    name: str
    start: int
    length: int


def upload_source(source: str | os.PathLike[str] | BinaryIO, name: str | None) -> UploadSource:
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise InvalidRequestError(f"no such file: {path}", field="path")
        length = path.stat().st_size
        if length == 0:
            raise InvalidRequestError(f"file is empty: {path}", field="path")
        return UploadSource(path, name or path.name, 0, length)
    if not (hasattr(source, "read") and hasattr(source, "seek")) or not source.seekable():
        raise InvalidRequestError(
            "give a path or a seekable binary file (a retry must rewind it)", field="path"
        )
    if isinstance(source, io.TextIOBase):
        raise InvalidRequestError("open the file in binary mode ('rb')", field="path")
    start = source.tell()
    length = source.seek(0, io.SEEK_END) - start
    source.seek(start)
    if name is None:
        raw = getattr(source, "name", None)
        name = os.path.basename(raw) if isinstance(raw, str) else None
    if not name:
        raise InvalidRequestError("name is required for a file object", field="name")
    if length <= 0:
        raise InvalidRequestError("file is empty", field="path")
    return UploadSource(source, name, start, length)


def _put_error(status: int | None, content: bytes) -> str:
    # Object stores answer XML: <Code>AccessDenied</Code><Message>Request has expired</Message>
    text = content[:2000].decode("utf-8", "replace")
    parts = [m.group(1) for m in re.finditer(r"<(?:Code|Message)>([^<]{1,200})</", text)]
    return f"upload refused: HTTP {status}" + (f" ({': '.join(parts)})" if parts else "")


def put(
    ctx: Context,
    src: UploadSource,
    service: str,
    on_progress: ProgressFn | None,
) -> Flow[str]:
    """PUT the bytes to a signed address; return the file id of the address that took them.

    A 403 (expired or refused signature) or an address close to its 15-minute expiry gets a new
    address; network errors and gateway answers are retried. Every send streams the source afresh.
    """
    address = yield from create_upload_url(ctx, service, src.name)
    got_at = ctx.clock()
    retries = 0
    limited_s = 0.0  # slept after rate limiting
    fresh_after_403 = False
    while True:
        if ctx.clock() - got_at > UPLOAD_URL_TTL_S - URL_REFRESH_BEFORE_S:
            log.debug("upload address about to expire; asking for a new one")
            address = yield from create_upload_url(ctx, service, src.name)
            got_at = ctx.clock()
        reply = yield Send(
            "PUT",
            address.sign_url,
            "upload",
            headers={"Content-Type": address.mime_type, "Content-Length": str(src.length)},
            body=FileBody(src.source, src.start, src.length, on_progress),
            timeout="upload",
        )
        # A 2xx whose body is an error (an API envelope with a non-zero code, an XML error, a
        # web page) did not store the bytes: retried when transient, else a fresh address.
        wrong = None
        if reply.error is None and reply.status is not None and 200 <= reply.status < 300:
            wrong = error_answer(reply.status, reply.content, "upload")
            if wrong is None:
                return address.file_id
        if reply.status == 403 or (wrong is not None and not wrong[1]):
            message = _put_error(reply.status, reply.content) if wrong is None else wrong[0]
            if fresh_after_403:
                raise TransportError(message, http_status=reply.status, endpoint="upload",
                                     code=None if wrong is None else wrong[2])
            fresh_after_403 = True
            log.info("%s; asking for a new upload address", message)
            address = yield from create_upload_url(ctx, service, src.name)
            got_at = ctx.clock()
            continue
        retryable = reply.error is not None or reply.status in GATEWAY_STATUSES or (
            reply.status is not None and reply.status >= 500
        ) or wrong is not None
        message = (
            f"upload failed: network error ({type(reply.error).__name__})"
            if reply.error is not None
            else wrong[0] if wrong is not None
            else _put_error(reply.status, reply.content)
        )
        # Rate limited (40001, an object store's 429 or SlowDown): wait for the window to roll.
        rate_limited = (
            reply.status == 429
            or (wrong is not None and wrong[2] == Code.RATE_LIMITED)
            or (reply.status == 503 and b"<Code>SlowDown</Code>" in reply.content[:2000])
        )
        if not retryable or not may_retry(ctx.retry, retries, rate_limited=rate_limited,
                                          limited_s=limited_s,
                                          patience_s=rate_patience(PATH_CREATE_UPLOAD_URL)):
            raise TransportError(message, http_status=reply.status, endpoint="upload",
                                 code=None if wrong is None else wrong[2])
        delay = backoff(ctx.retry, retries, ctx.rng, rate_limited=rate_limited)
        limited_s += delay if rate_limited else 0.0
        retries += 1
        log.info("%s; retry %d/%d in %.1f s", message, retries, ctx.retry.max_retries, delay)
        yield Sleep(delay)


def upload(
    ctx: Context,
    source: str | os.PathLike[str] | BinaryIO,
    service: str,
    *,
    name: str | None,
    on_progress: ProgressFn | None,
    wait: bool,
    timeout: float,
) -> Flow[FileDetail]:
    src = upload_source(source, name)
    why = check_upload_name(service, src.name)
    if why is not None:  # before spending a request
        field, _, reason = why.partition(": ")
        raise InvalidRequestError(reason, field=field, endpoint=PATH_CREATE_UPLOAD_URL)
    file_id = yield from put(ctx, src, service, on_progress)
    if not wait:
        return FileDetail(id=file_id, service=service, bytes=src.length)
    return (yield from wait_ready(ctx, file_id, timeout))
