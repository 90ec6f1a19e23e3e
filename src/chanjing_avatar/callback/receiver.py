"""The callback receiver: a small ASGI app for the vendor's task-finished POSTs.

The callback carries no signature, so the body is only a hint: the receiver takes the task id from
it (enveloped ``{"code", "data": {...}}`` or bare ``{"id", ...}``), answers at once, and then
confirms by fetching the task's detail itself. Only that fetched detail is acted on. Ids it was not
told to watch are acknowledged and ignored, so a stranger cannot make it spend requests; with
``watch_all`` confirmations are rate-limited instead. A task confirmed finished is remembered:
replays of its notice are acknowledged without another fetch, and ``on_task`` sees each state of
a task once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .. import Task

__all__ = ["CallbackReceiver", "ReceiverStats", "extract_task_id"]

log = logging.getLogger("chanjing_avatar.callback")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Confirm = Callable[[str], Awaitable["Task | None"]]
OnTask = Callable[["Task"], Awaitable[None] | None]

DEFAULT_MAX_BODY = 64 * 1024
_OK = json.dumps({"code": 0, "msg": "success"}).encode()
_REMEMBERED = 4096  # finished tasks (and last states shown) kept to recognise replays


@dataclass
class ReceiverStats:
    received: int = 0  # well-formed notifications
    rejected: int = 0  # too large, not JSON, no id, wrong method
    ignored: int = 0  # ids not watched
    replayed: int = 0  # notices for tasks already confirmed finished
    throttled: int = 0  # refused (429) by the confirmation rate limit
    confirmed: int = 0  # details fetched after a notification
    confirm_errors: int = 0


def extract_task_id(body: Any) -> str | None:
    """The task id of an enveloped or bare callback body, or None."""
    if not isinstance(body, dict):
        return None
    data = body.get("data")
    if isinstance(data, dict) and ("code" in body or "trace_id" in body or "msg" in body):
        body = data
    task_id = body.get("id")
    if isinstance(task_id, str) and 0 < len(task_id) <= 128 and task_id.isprintable():
        return task_id
    return None


class CallbackReceiver:
    """ASGI app. ``confirm(task_id)`` fetches the real detail (e.g. ``client.lipsync.get``);
    ``on_task`` receives that fetched task (each state of a task once). Watch ids with
    :meth:`watch`; ``watch_all=True`` confirms any id (the fetch then shows whether the task is
    the account's own), at most ``confirm_rate`` per second after a burst of ``confirm_burst``
    (notices past that get 429, which a sender retries), so forged notices cannot spend the
    account's detail quota.
    """

    def __init__(
        self,
        confirm: Confirm,
        *,
        on_task: OnTask | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        path: str | None = None,
        watch_all: bool = False,
        max_pending: int = 256,
        confirm_rate: float = 2.0,
        confirm_burst: int = 20,
    ) -> None:
        self._confirm = confirm
        self._on_task = on_task
        self.max_body = max_body
        self.path = path
        self.watch_all = watch_all
        self._max_pending = max_pending
        self._watched: set[str] = set()
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._events: dict[str, asyncio.Event] = {}
        self._shown: OrderedDict[str, int] = OrderedDict()  # task id -> last status acted on
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._bucket = _TokenBucket(confirm_rate, confirm_burst)
        self.stats = ReceiverStats()

    # -- the ids to act on ---------------------------------------------------------------------

    def watch(self, task_ids: str | Iterable[str]) -> None:
        self._watched.update([task_ids] if isinstance(task_ids, str) else task_ids)

    def unwatch(self, task_id: str) -> None:
        self._watched.discard(task_id)

    def is_watched(self, task_id: str) -> bool:
        return self.watch_all or task_id in self._watched

    def notified(self, task_id: str) -> asyncio.Event:
        """An event set each time a notification for ``task_id`` is confirmed (then cleared by
        the waiter)."""
        return self._events.setdefault(task_id, asyncio.Event())

    # -- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if self.path is not None and scope.get("path") != self.path:
            await _answer(send, 404, b'{"code":404,"msg":"not found"}')
            return
        if scope.get("method") != "POST":
            self.stats.rejected += 1
            await _answer(send, 405, b'{"code":405,"msg":"POST only"}', [(b"allow", b"POST")])
            return
        length = _content_length(scope)
        if length is not None and length > self.max_body:
            self.stats.rejected += 1
            await _answer(send, 413, b'{"code":413,"msg":"body too large"}')
            return
        body = await self._read(receive)
        if body is None:
            self.stats.rejected += 1
            await _answer(send, 413, b'{"code":413,"msg":"body too large"}')
            return
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # huge numbers, deep nesting
            self.stats.rejected += 1
            await _answer(send, 400, b'{"code":400,"msg":"not JSON (or nested too deeply)"}')
            return
        task_id = extract_task_id(parsed)
        if task_id is None:
            self.stats.rejected += 1
            await _answer(send, 400, b'{"code":400,"msg":"no task id"}')
            return
        self.stats.received += 1
        if not self.is_watched(task_id):
            self.stats.ignored += 1
        elif task_id in self._finished:
            self.stats.replayed += 1
        elif (
            task_id not in self._watched
            and task_id not in self._inflight
            and not self._bucket.take(time.monotonic())
        ):
            self.stats.throttled += 1
            await _answer(
                send, 429, b'{"code":429,"msg":"too many callbacks"}', [(b"retry-after", b"1")]
            )
            return
        else:
            self._schedule(task_id)
        # The same answer either way: a sender learns nothing about which ids we watch.
        await _answer(send, 200, _OK)

    async def _read(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b""
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- confirmation --------------------------------------------------------------------------

    def _schedule(self, task_id: str) -> None:
        if task_id in self._inflight:
            self._again.add(task_id)  # a second notice while fetching: fetch once more after
            return
        if len(self._inflight) >= self._max_pending:
            log.warning("too many callbacks being confirmed; dropping one for %s", task_id)
            return
        self._inflight[task_id] = asyncio.get_running_loop().create_task(self._run(task_id))

    async def _run(self, task_id: str) -> None:
        try:
            while True:
                self._again.discard(task_id)
                try:
                    task = await self._confirm(task_id)
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # the safety-net poll will catch up
                    self.stats.confirm_errors += 1
                    log.warning("could not confirm the callback for %s: %s", task_id, e)
                    return
                self.stats.confirmed += 1
                if task is not None and self._first_sight(task):
                    if task.is_terminal:
                        _remember(self._finished, task_id, None)
                    if self._on_task is not None:
                        result = self._on_task(task)
                        if result is not None:
                            await result
                self.notified(task_id).set()
                if task_id not in self._again:
                    return
        finally:
            self._inflight.pop(task_id, None)

    def _first_sight(self, task: Task) -> bool:
        """Whether this state of the task was not acted on yet (and note it)."""
        status = int(task.status)
        if self._shown.get(task.id) == status:
            return False
        _remember(self._shown, task.id, status)
        return True

    async def drain(self) -> None:
        """Wait until every pending confirmation has finished."""
        while self._inflight:
            await asyncio.gather(*list(self._inflight.values()), return_exceptions=True)

    async def aclose(self) -> None:
        for t in list(self._inflight.values()):
            t.cancel()
        await asyncio.gather(*list(self._inflight.values()), return_exceptions=True)
        self._inflight.clear()


def _remember(memory: OrderedDict[str, Any], key: str, value: Any) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > _REMEMBERED:
        memory.popitem(last=False)


class _TokenBucket:
    """``rate`` takes per second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(max(1, burst))
        self._tokens = self._burst
        self._at: float | None = None

    def take(self, now: float) -> bool:
        if self._at is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
