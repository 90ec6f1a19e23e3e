"""The synchronous client: runs the core's flows with ``httpx.Client`` and ``time.sleep``."""

from __future__ import annotations

import builtins
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeVar, Unpack

import httpx

from ._base import CHUNK, LOCK_TIMEOUT_S, BaseClient, Received, lock_busy
from ._config import RateLimits
from ._core import FileBody, Flow, Reply, Send, Sleep, WithStoreLock, _calls, _files, _tasks
from ._core._pages import PageCursor
from ._core._ratelimit import Slot
from ._models import Download, FileDetail, MakeEvent, MakeResult, Task, TaskPage, UploadUrl, Voice
from ._photo import photo_source, photo_upload
from ._request import CreateFields, LipSyncRequest, MakeFields, from_create_fields, from_make_fields

T = TypeVar("T")


def _file_chunks(body: FileBody) -> Iterator[bytes]:
    if isinstance(body.source, Path):
        with open(body.source, "rb") as f:
            yield from _read_chunks(f, body)
    else:
        yield from _read_chunks(body.source, body)


def _read_chunks(f: BinaryIO, body: FileBody) -> Iterator[bytes]:
    f.seek(body.start)  # every send starts over: a retry never resends a consumed stream
    sent = 0
    while sent < body.length:
        chunk = f.read(min(CHUNK, body.length - sent))
        if not chunk:
            raise OSError(f"file shrank during upload ({sent} of {body.length} bytes)")
        sent += len(chunk)
        yield chunk
        if body.on_progress is not None:
            body.on_progress(sent, body.length)


class Client(BaseClient):
    """Chanjing lip-sync Open API client (synchronous). Safe to share between threads.

    See ``docs/client-api.md``. ``clock`` and ``sleep`` replace ``time.monotonic`` and
    ``time.sleep`` (tests and benchmarks run in scaled time with them).
    """

    def __init__(
        self,
        app_id: str | None = None,
        secret_key: str | None = None,
        *,
        base_url: str | None = None,
        credentials_dir: str | os.PathLike[str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        upload_timeout: float | httpx.Timeout | None = None,
        max_retries: int = 4,
        rate_limits: RateLimits | Literal[False] | None = None,
        allow_http: bool = False,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(
            app_id, secret_key, base_url=base_url, credentials_dir=credentials_dir,
            timeout=timeout, upload_timeout=upload_timeout, max_retries=max_retries,
            rate_limits=rate_limits, allow_http=allow_http, clock=clock,
        )
        self._sleep = sleep or time.sleep
        self._transport = transport
        self._http = self._new_http()
        self.auth = Auth(self)
        self.files = Files(self)
        self.lipsync = LipSync(self)
        self.voices = Voices(self)

    def _new_http(self) -> httpx.Client:
        return httpx.Client(transport=self._transport, timeout=self._timeouts["api"],
                            trust_env=self._transport is None)

    def _after_fork(self) -> None:
        super()._after_fork()
        # Left unclosed: closing would act on sockets the parent still uses.
        self._http = self._new_http()

    def close(self) -> None:
        """Close the connection pool (the client is not used again)."""
        self._check_process()
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the driver -------------------------------------------------------------------------------

    def _run(self, flow: Flow[T]) -> T:
        self._check_process()
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = flow.throw(error) if error is not None else flow.send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            value, error = None, None
            if isinstance(effect, Send):
                value = self._send(effect)
            elif isinstance(effect, Sleep):
                if effect.seconds > 0:
                    self._sleep(effect.seconds)
            elif isinstance(effect, WithStoreLock):
                try:
                    held = self._store.acquire(blocking=True, timeout=LOCK_TIMEOUT_S)
                except Exception as e:  # an unusable lock file: the flow raises it
                    error = e
                    continue
                if held is None:
                    error = lock_busy()
                    continue
                try:
                    value = self._run(effect.flow)
                except Exception as e:  # hand it to the outer flow
                    error = e
                finally:
                    self._store.release(held)
            else:  # pragma: no cover
                raise TypeError(f"unknown effect {effect!r}")

    def _send(self, send: Send) -> Reply:
        slot = self._book(send)
        try:
            for delay in self._slot_delays(slot):
                self._sleep(delay)
            return self._exchange(send, slot)
        finally:
            self._settle(slot)

    def _exchange(self, send: Send, slot: Slot | None) -> Reply:
        headers = self._headers(send)
        content = _file_chunks(send.body) if send.body is not None else None
        request = self._http.build_request(
            send.method, send.url, params=send.params, headers=headers, json=send.json,
            content=content, timeout=self._timeouts[send.timeout],
        )
        sent_at, started = self._sending(send, slot), time.monotonic()
        received = Received(send.sink)
        response: httpx.Response | None = None
        try:
            response = self._http.send(request, stream=True, follow_redirects=send.sink is not None)
            try:
                sink_file = received.open_sink(response)
                if sink_file is not None:
                    with sink_file:
                        for chunk in response.iter_bytes():
                            sink_file.write(chunk)
                            received.wrote(len(chunk))
                else:
                    received.body = response.read()
            finally:
                response.close()
        except httpx.RequestError as e:
            reply = received.reply(response, sent_at, e)
        else:
            reply = received.reply(response, sent_at)
        self._log_reply(send, reply, started)
        return reply


class _Group:
    def __init__(self, client: Client) -> None:
        self._client = client

    def _run(self, flow: Flow[T]) -> T:
        return self._client._run(flow)


class Auth(_Group):
    def token(self) -> str:
        """A valid access token, shared with every process using the same credentials file."""
        return self._run(_calls.token(self._client._ctx))


class Files(_Group):
    def create_upload_url(self, service: str, name: str) -> UploadUrl:
        """A signed address to PUT one file to (valid 15 minutes) and the file id it will have.

        ``name`` is the original file name; its extension must suit ``service``."""
        return self._run(_files.create_upload_url(self._client._ctx, service, name))

    def upload(
        self,
        file: str | os.PathLike[str] | BinaryIO,
        service: str,
        *,
        name: str | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        wait: bool = True,
        timeout: float = 600,
    ) -> FileDetail:
        """Stream a local file (or seekable binary file object) and wait until it is ready.

        A photo (jpg, png, webp) for ``lip_sync_video`` is uploaded as a 10 s still video of it
        (tasks loop it for as long as their speech lasts)."""
        with photo_upload(file, service) as file:
            return self._run(_files.upload(
                self._client._ctx, file, service, name=name, on_progress=on_progress,
                wait=wait, timeout=timeout,
            ))

    def get(self, file_id: str) -> FileDetail:
        """The file's current detail (status 1 or 2: ready; 98: failed the content check)."""
        return self._run(_files.file_detail(self._client._ctx, file_id))

    def wait_ready(self, file_id: str, *, timeout: float = 600) -> FileDetail:
        """Poll until the file is ready; raises ContentRejectedError, FileUnavailableError or
        WaitTimeoutError (with ``.last``)."""
        return self._run(_files.wait_ready(self._client._ctx, file_id, timeout))


class LipSync(_Group):
    def create(
        self,
        request: LipSyncRequest | None = None,
        /,
        *,
        on_sent: Callable[[float], None] | None = None,
        on_event: Callable[[MakeEvent], None] | None = None,
        **fields: Unpack[CreateFields],
    ) -> str:
        """Create a task (paid) and return its id; a request's local files are uploaded first.

        Give a :class:`LipSyncRequest`, or its fields as keywords with the files by id
        (``video_file_id``, ``audio_file_id``; ``video_path``, the video's local copy, gives the
        default screen size). Everything is checked before the first request.
        ``on_sent(sent_at)`` is called with the wall-clock (unix) time just before the create's
        bytes go out, after the rate limiter's wait, once per attempt (a create refused as rate
        limited or never connected is sent again). If it raises, nothing is sent and the
        exception propagates. ``on_event`` hears the uploads and the create (as in :meth:`make`).
        """
        request = from_create_fields(request, fields)
        with photo_source(request) as request:
            _, task_id = self._run(_tasks.submit(self._client._ctx, request, on_sent=on_sent,
                                                    on_event=on_event))
        return task_id

    def get(self, task_id: str) -> Task:
        """The task's current state (status, progress, and once finished its video URL)."""
        return self._run(_tasks.get(self._client._ctx, task_id))

    def list(self, page: int = 1, page_size: int = 10) -> TaskPage:
        """One page of the account's tasks, newest first (see :meth:`iter_pages` for all)."""
        return self._run(_tasks.list_page(self._client._ctx, page, page_size))

    def iter_pages(self, page_size: int = 50) -> Iterator[TaskPage]:
        """Every page of tasks, newest first, until the last (one stop rule: ``PageCursor``)."""
        cursor: PageCursor | None = PageCursor(1, page_size)
        while cursor is not None:
            page = self.list(cursor.page, cursor.size)
            yield page
            cursor = cursor.after(len(page.items), page.page_info.total_page)

    def iter_all(self, page_size: int = 50) -> Iterator[Task]:
        """Every task, newest first, page by page."""
        for page in self.iter_pages(page_size):
            yield from page.items

    def wait(
        self,
        task_id: str,
        *,
        timeout: float = 1800,
        on_progress: Callable[[Task], None] | None = None,
    ) -> Task:
        """Poll until the task ends; returns it when it succeeded.

        Raises TaskFailedError (status 30) or WaitTimeoutError (with ``.last``). Polls slow down
        with the task's progress; ``on_progress(task)`` hears every look."""
        return self._run(_tasks.wait(self._client._ctx, task_id, timeout=timeout,
                                     on_progress=on_progress))

    def wait_many(
        self,
        task_ids: Iterable[str],
        *,
        timeout: float = 1800,
        on_progress: Callable[[Task], None] | None = None,
    ) -> dict[str, Task]:
        """Poll many tasks on their own schedules, one request at a time; every id's final task,
        failed ones included (check ``.failed``). On the deadline raises WaitTimeoutError with
        ``.done`` (finished so far) and ``.pending`` (last seen of the others)."""
        return self._run(_tasks.wait_many(self._client._ctx, task_ids, timeout=timeout,
                                          on_progress=on_progress))

    def download(
        self,
        task_or_id: Task | str,
        path: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        preview: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Download:
        """Save a finished task's video to ``path`` (a file, or a folder for ``<task id>.mp4``).

        Streams to a ``.<name>.part`` beside it, resumed by the next try, and renames it when
        complete; FileExistsError rather than overwrite unless ``overwrite``. ``preview`` also
        saves the cover image. A failed task raises TaskFailedError."""
        return self._run(_tasks.download_task(
            self._client._ctx, task_or_id, Path(path), overwrite=overwrite, preview=preview,
            on_progress=on_progress,
        ))

    def make(
        self,
        request: LipSyncRequest | None = None,
        /,
        *,
        output: str | os.PathLike[str],
        on_event: Callable[[MakeEvent], None] | None = None,
        on_sent: Callable[[float], None] | None = None,
        waiter: _tasks.Waiter | None = None,
        overwrite: bool = False,
        timeout: float = 1800,
        **fields: Unpack[MakeFields],
    ) -> MakeResult:
        """Upload what is local, create, wait, download to ``output`` (a file or a folder).

        Give a :class:`LipSyncRequest`, or its fields as keywords (``video`` and ``audio``: a
        local path or a file id). ``on_event(MakeEvent)`` hears each stage; ``on_sent`` is the
        create's (see :meth:`create`). ``waiter`` replaces the polling wait:
        ``waiter(task_id, timeout=..., on_progress=...)`` (awaited by the async client) returns
        the task's final state (e.g. a wait that ends at a confirmed callback; give the request
        a ``callback`` URL so the task sends one). Default: :meth:`wait`. Raises
        ``FileExistsError`` rather than overwrite, and TaskFailedError for a failed task.
        """
        request = from_make_fields(request, fields)
        ctx = self._client._ctx
        _tasks.check_output(output, overwrite)  # before a photo is encoded
        with photo_source(request) as request:
            started = self._run(_tasks.make_start(
                ctx, request, output=output, on_event=on_event, on_sent=on_sent,
                overwrite=overwrite, timeout=timeout,
            ))
        wait = self.wait if waiter is None else waiter
        task = wait(started.task_id, timeout=timeout, on_progress=started.on_wait)
        return self._run(_tasks.make_finish(ctx, started, task, overwrite=overwrite))


class Voices(_Group):
    def list(
        self, *, lang: str | None = None, gender: str | None = None, name: str | None = None
    ) -> builtins.list[Voice]:
        """Every public voice (all pages), filtered by language prefix, gender, name substring."""
        return self._run(_tasks.voices(self._client._ctx, lang=lang, gender=gender, name=name))
