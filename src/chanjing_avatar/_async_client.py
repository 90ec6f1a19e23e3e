"""The asynchronous client: runs the core's flows with ``httpx.AsyncClient`` and anyio."""

from __future__ import annotations

import builtins
import os
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeVar, Unpack

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx

from ._base import CHUNK, LOCK_TIMEOUT_S, BaseClient, Received, lock_busy
from ._config import RateLimits
from ._core import FileBody, Flow, Reply, Send, Sleep, WithStoreLock, _calls, _files, _tasks
from ._core._pages import PageCursor
from ._core._ratelimit import Slot
from ._credentials import LockPair
from ._models import Download, FileDetail, MakeEvent, MakeResult, Task, TaskPage, UploadUrl, Voice
from ._photo import async_photo_source, async_photo_upload
from ._request import CreateFields, LipSyncRequest, MakeFields, from_create_fields, from_make_fields

T = TypeVar("T")


async def _file_chunks(body: FileBody) -> AsyncIterator[bytes]:
    if isinstance(body.source, Path):
        f: BinaryIO = await anyio.to_thread.run_sync(open, body.source, "rb")
        try:
            async for chunk in _read_chunks(f, body):
                yield chunk
        finally:
            f.close()
    else:
        async for chunk in _read_chunks(body.source, body):
            yield chunk


async def _read_chunks(f: BinaryIO, body: FileBody) -> AsyncIterator[bytes]:
    f.seek(body.start)  # every send starts over: a retry never resends a consumed stream
    sent = 0
    while sent < body.length:
        chunk = await anyio.to_thread.run_sync(f.read, min(CHUNK, body.length - sent))
        if not chunk:
            raise OSError(f"file shrank during upload ({sent} of {body.length} bytes)")
        sent += len(chunk)
        yield chunk
        if body.on_progress is not None:
            body.on_progress(sent, body.length)


class AsyncClient(BaseClient):
    """Chanjing lip-sync Open API client (asyncio/trio via anyio). Safe to share between tasks.

    Same groups and methods as :class:`Client`; methods are coroutines. ``clock`` and ``sleep``
    replace ``time.monotonic`` and ``anyio.sleep``.
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
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(
            app_id, secret_key, base_url=base_url, credentials_dir=credentials_dir,
            timeout=timeout, upload_timeout=upload_timeout, max_retries=max_retries,
            rate_limits=rate_limits, allow_http=allow_http, clock=clock,
        )
        self._sleep = sleep or anyio.sleep
        self._transport = transport
        # One connection pool per event loop: a pool's connections and locks belong to the loop
        # that made them (a second ``asyncio.run`` would find them dead or deadlock on them).
        self._pools: weakref.WeakKeyDictionary[object, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._other_pools: dict[int, tuple[object, httpx.AsyncClient]] = {}
        self.auth = AsyncAuth(self)
        self.files = AsyncFiles(self)
        self.lipsync = AsyncLipSync(self)
        self.voices = AsyncVoices(self)

    @property
    def _http(self) -> httpx.AsyncClient:
        """The connection pool of the running event loop (made on first use in it)."""
        self._check_process()
        loop = anyio.lowlevel.current_token().native_token
        try:
            pool = self._pools.get(loop)
        except TypeError:  # a loop object without weak references: keep it alive with its pool
            pool = self._other_pools.get(id(loop), (None, None))[1]
        if pool is None:
            pool = httpx.AsyncClient(transport=self._transport, timeout=self._timeouts["api"],
                                     trust_env=self._transport is None)
            try:
                self._pools[loop] = pool
            except TypeError:
                self._other_pools[id(loop)] = (loop, pool)
        return pool

    def _after_fork(self) -> None:
        super()._after_fork()
        # The parent's pools stay with it (left unclosed: their sockets are the parent's).
        self._pools = weakref.WeakKeyDictionary()
        self._other_pools = {}

    async def aclose(self) -> None:
        """Close the pool of the running loop; pools of loops already gone are dropped."""
        pool = self._http
        self._pools = weakref.WeakKeyDictionary()
        self._other_pools = {}
        await pool.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the driver -------------------------------------------------------------------------------

    async def _run(self, flow: Flow[T]) -> T:
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
                value = await self._send(effect)
            elif isinstance(effect, Sleep):
                if effect.seconds > 0:
                    await self._sleep(effect.seconds)
            elif isinstance(effect, WithStoreLock):
                try:
                    held = await self._acquire()
                except Exception as e:  # an unusable lock file: the flow raises it
                    error = e
                    continue
                if held is None:
                    error = lock_busy()
                    continue
                try:
                    value = await self._run(effect.flow)
                except Exception as e:  # hand it to the outer flow
                    error = e
                finally:
                    self._store.release(held)
            else:  # pragma: no cover
                raise TypeError(f"unknown effect {effect!r}")

    async def _acquire(self) -> LockPair | None:
        # Poll without blocking the event loop; lock and release stay on this thread.
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        delay = 0.005
        while (held := self._store.acquire(blocking=False)) is None:
            if time.monotonic() > deadline:
                return None
            await anyio.sleep(delay)
            delay = min(0.1, delay * 2)
        return held

    async def _send(self, send: Send) -> Reply:
        slot = self._book(send)
        try:
            for delay in self._slot_delays(slot):
                await self._sleep(delay)
            return await self._exchange(send, slot)
        finally:
            self._settle(slot)

    async def _exchange(self, send: Send, slot: Slot | None) -> Reply:
        content = _file_chunks(send.body) if send.body is not None else None
        http = self._http
        request = http.build_request(
            send.method, send.url, params=send.params, headers=self._headers(send),
            json=send.json, content=content, timeout=self._timeouts[send.timeout],
        )
        sent_at, started = self._sending(send, slot), time.monotonic()
        received = Received(send.sink)
        response: httpx.Response | None = None
        try:
            response = await http.send(request, stream=True,
                                       follow_redirects=send.sink is not None)
            try:
                sink_file = received.open_sink(response)
                if sink_file is not None:
                    with sink_file:
                        async for chunk in response.aiter_bytes():
                            await anyio.to_thread.run_sync(sink_file.write, chunk)
                            received.wrote(len(chunk))
                else:
                    received.body = await response.aread()
            finally:
                await response.aclose()
        except httpx.RequestError as e:
            reply = received.reply(response, sent_at, e)
        else:
            reply = received.reply(response, sent_at)
        self._log_reply(send, reply, started)
        return reply


class _AsyncGroup:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _run(self, flow: Flow[T]) -> T:
        return await self._client._run(flow)


class AsyncAuth(_AsyncGroup):
    async def token(self) -> str:
        """A valid access token, shared with every process using the same credentials file."""
        return await self._run(_calls.token(self._client._ctx))


class AsyncFiles(_AsyncGroup):
    async def create_upload_url(self, service: str, name: str) -> UploadUrl:
        """A signed address to PUT one file to (valid 15 minutes) and the file id it will have.

        ``name`` is the original file name; its extension must suit ``service``."""
        return await self._run(_files.create_upload_url(self._client._ctx, service, name))

    async def upload(
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
        async with async_photo_upload(file, service) as file:
            return await self._run(_files.upload(
                self._client._ctx, file, service, name=name, on_progress=on_progress,
                wait=wait, timeout=timeout,
            ))

    async def get(self, file_id: str) -> FileDetail:
        """The file's current detail (status 1 or 2: ready; 98: failed the content check)."""
        return await self._run(_files.file_detail(self._client._ctx, file_id))

    async def wait_ready(self, file_id: str, *, timeout: float = 600) -> FileDetail:
        """Poll until the file is ready; raises ContentRejectedError, FileUnavailableError or
        WaitTimeoutError (with ``.last``)."""
        return await self._run(_files.wait_ready(self._client._ctx, file_id, timeout))


class AsyncLipSync(_AsyncGroup):
    async def create(
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
        async with async_photo_source(request) as request:
            _, task_id = await self._run(_tasks.submit(self._client._ctx, request,
                                                       on_sent=on_sent, on_event=on_event))
        return task_id

    async def get(self, task_id: str) -> Task:
        """The task's current state (status, progress, and once finished its video URL)."""
        return await self._run(_tasks.get(self._client._ctx, task_id))

    async def list(self, page: int = 1, page_size: int = 10) -> TaskPage:
        """One page of the account's tasks, newest first (see :meth:`iter_pages` for all)."""
        return await self._run(_tasks.list_page(self._client._ctx, page, page_size))

    async def iter_pages(self, page_size: int = 50) -> AsyncIterator[TaskPage]:
        """Every page of tasks, newest first, until the last (one stop rule: ``PageCursor``)."""
        cursor: PageCursor | None = PageCursor(1, page_size)
        while cursor is not None:
            page = await self.list(cursor.page, cursor.size)
            yield page
            cursor = cursor.after(len(page.items), page.page_info.total_page)

    async def iter_all(self, page_size: int = 50) -> AsyncIterator[Task]:
        """Every task, newest first, page by page."""
        async for page in self.iter_pages(page_size):
            for task in page.items:
                yield task

    async def wait(
        self,
        task_id: str,
        *,
        timeout: float = 1800,
        on_progress: Callable[[Task], None] | None = None,
    ) -> Task:
        """Poll until the task ends; returns it when it succeeded.

        Raises TaskFailedError (status 30) or WaitTimeoutError (with ``.last``). Polls slow down
        with the task's progress; ``on_progress(task)`` hears every look."""
        return await self._run(_tasks.wait(self._client._ctx, task_id, timeout=timeout,
                                           on_progress=on_progress))

    async def wait_many(
        self,
        task_ids: Iterable[str],
        *,
        timeout: float = 1800,
        on_progress: Callable[[Task], None] | None = None,
    ) -> dict[str, Task]:
        """Poll many tasks on their own schedules, one request at a time; every id's final task,
        failed ones included (check ``.failed``). On the deadline raises WaitTimeoutError with
        ``.done`` (finished so far) and ``.pending`` (last seen of the others)."""
        return await self._run(_tasks.wait_many(self._client._ctx, task_ids, timeout=timeout,
                                                on_progress=on_progress))

    async def download(
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
        return await self._run(_tasks.download_task(
            self._client._ctx, task_or_id, Path(path), overwrite=overwrite, preview=preview,
            on_progress=on_progress,
        ))

    async def make(
        self,
        request: LipSyncRequest | None = None,
        /,
        *,
        output: str | os.PathLike[str],
        on_event: Callable[[MakeEvent], None] | None = None,
        on_sent: Callable[[float], None] | None = None,
        waiter: _tasks.AsyncWaiter | None = None,
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
        async with async_photo_source(request) as request:
            started = await self._run(_tasks.make_start(
                ctx, request, output=output, on_event=on_event, on_sent=on_sent,
                overwrite=overwrite, timeout=timeout,
            ))
        wait = self.wait if waiter is None else waiter
        task = await wait(started.task_id, timeout=timeout, on_progress=started.on_wait)
        return await self._run(_tasks.make_finish(ctx, started, task, overwrite=overwrite))


class AsyncVoices(_AsyncGroup):
    async def list(
        self, *, lang: str | None = None, gender: str | None = None, name: str | None = None
    ) -> builtins.list[Voice]:
        """Every public voice (all pages), filtered by language prefix, gender, name substring."""
        return await self._run(_tasks.voices(self._client._ctx, lang=lang, gender=gender,
                                             name=name))
