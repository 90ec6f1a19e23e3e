"""Lip-sync task flows: create, get, list, wait (one and many), download, make; voices."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .._exceptions import (
    InvalidRequestError,
    TaskFailedError,
    TransportError,
    WaitTimeoutError,
)
from .._models import Download, MakeEvent, MakeResult, MakeStage, Task, TaskPage, Voice
from .._request import LipSyncRequest
from .._wire import (
    PATH_LIPSYNC_CREATE,
    PATH_LIPSYNC_DETAIL,
    PATH_LIPSYNC_LIST,
    PATH_LIST_COMMON_AUDIO,
    SERVICE_LIP_SYNC_AUDIO,
    SERVICE_LIP_SYNC_VIDEO,
    VOICE_PAGE_MAX,
    TaskStatus,
)
from ._calls import ApiCall, call
from ._context import Context
from ._decisions import ProgressEstimator, poll_delay
from ._download import download, output_exists
from ._effects import Flow, Sleep
from ._files import upload
from ._pages import PageCursor

log = logging.getLogger("chanjing_avatar")

TaskCallback = Callable[[Task], None]


def create(
    ctx: Context, body: dict[str, Any], on_sent: Callable[[float], None] | None = None
) -> Flow[str]:
    """Create a task; ``on_sent(unix time)`` hears each attempt just before its bytes leave."""
    data = yield from call(ctx, ApiCall("POST", PATH_LIPSYNC_CREATE, json=body, idempotent=False,
                                        on_sent=on_sent))
    if not isinstance(data, str) or not data:
        raise TransportError("create answered without a task id", endpoint=PATH_LIPSYNC_CREATE)
    return data


def get(ctx: Context, task_id: str) -> Flow[Task]:
    data = yield from call(ctx, ApiCall("GET", PATH_LIPSYNC_DETAIL, params={"id": task_id}))
    return Task.model_validate(data)


def list_page(ctx: Context, page: int, page_size: int) -> Flow[TaskPage]:
    data = yield from call(
        ctx, ApiCall("POST", PATH_LIPSYNC_LIST, json={"page": page, "page_size": page_size})
    )
    return TaskPage.model_validate(data or {})


def voices(
    ctx: Context, *, lang: str | None, gender: str | None, name: str | None
) -> Flow[list[Voice]]:
    """Every page of public voices, filtered locally (language prefix, gender, name substring)."""
    out: list[Voice] = []
    cursor: PageCursor | None = PageCursor(1, VOICE_PAGE_MAX)
    while cursor is not None:
        data = yield from call(
            ctx,
            ApiCall("GET", PATH_LIST_COMMON_AUDIO,
                    params={"page": str(cursor.page), "size": str(cursor.size)}),
        )
        items = (data or {}).get("list") or []
        out.extend(Voice.model_validate(v) for v in items)
        total_page = ((data or {}).get("page_info") or {}).get("total_page")
        cursor = cursor.after(len(items), total_page if isinstance(total_page, int) else None)
    return [v for v in out if _voice_matches(v, lang, gender, name)]


def _voice_matches(v: Voice, lang: str | None, gender: str | None, name: str | None) -> bool:
    if lang and not v.lang.lower().startswith(lang.lower()):
        return False
    if gender and v.gender.lower() != gender.lower():
        return False
    return not name or name.lower() in v.name.lower()


def _failed(task: Task) -> TaskFailedError:
    return TaskFailedError(task, endpoint=PATH_LIPSYNC_DETAIL)


def wait(
    ctx: Context, task_id: str, *, timeout: float, on_progress: TaskCallback | None
) -> Flow[Task]:
    """Poll until the task ends. Returns it on success; raises TaskFailedError/WaitTimeoutError."""
    start = ctx.clock()
    deadline = start + timeout
    estimator = ProgressEstimator()
    polls = 0
    while True:
        task = yield from get(ctx, task_id)
        polls += 1
        now = ctx.clock()
        if on_progress is not None:
            on_progress(task)
        if task.status == TaskStatus.SUCCEEDED:
            return task
        if task.status == TaskStatus.FAILED:
            raise _failed(task)
        if task.status == TaskStatus.GENERATING:
            estimator.observe(now, task.progress)
        if now >= deadline:
            raise WaitTimeoutError(
                f"task {task_id} not finished after {timeout:g} s "
                f"(status {int(task.status)}, {task.progress} %)",
                last=task, endpoint=PATH_LIPSYNC_DETAIL,
            )
        delay = poll_delay(ctx.poll, polls, ctx.rng, eta_s=estimator.eta(now))
        yield Sleep(min(delay, deadline - now))


def wait_many(
    ctx: Context, task_ids: Iterable[str], *, timeout: float, on_progress: TaskCallback | None
) -> Flow[dict[str, Task]]:
    """Poll many tasks on their own schedules, one request at a time (one limiter).

    Returns every task's final state, failed ones included (check ``.failed``); raises
    WaitTimeoutError (with ``.done``) when the deadline passes first.
    """
    ids = list(dict.fromkeys(task_ids))
    start = ctx.clock()
    deadline = start + timeout
    due = {tid: start for tid in ids}
    polls = dict.fromkeys(ids, 0)
    estimators = {tid: ProgressEstimator() for tid in ids}
    last: dict[str, Task] = {}
    done: dict[str, Task] = {}
    while due:
        tid = min(due, key=due.__getitem__)
        now = ctx.clock()
        if due[tid] > now:
            yield Sleep(min(due[tid], deadline) - now)
        task = yield from get(ctx, tid)
        polls[tid] += 1
        now = ctx.clock()
        last[tid] = task
        if on_progress is not None:
            on_progress(task)
        if task.is_terminal:
            done[tid] = task
            del due[tid]
            continue
        if task.status == TaskStatus.GENERATING:
            estimators[tid].observe(now, task.progress)
        if now >= deadline:
            raise WaitTimeoutError(
                f"{len(due)} of {len(ids)} tasks not finished after {timeout:g} s",
                last=task, done=done, pending={t: last[t] for t in due if t in last},
                endpoint=PATH_LIPSYNC_DETAIL,
            )
        delay = poll_delay(ctx.poll, polls[tid], ctx.rng, eta_s=estimators[tid].eta(now))
        due[tid] = min(deadline, now + delay)
    return {tid: done[tid] for tid in ids}


def target_path(path: Path, task: Task) -> Path:
    return path / f"{task.id}.mp4" if path.is_dir() else path


def download_task(
    ctx: Context,
    task_or_id: Task | str,
    path: Path,
    *,
    overwrite: bool,
    preview: bool,
    on_progress: Callable[[int, int], None] | None,
) -> Flow[Download]:
    task = task_or_id if isinstance(task_or_id, Task) else (yield from get(ctx, task_or_id))
    if task.status == TaskStatus.FAILED:
        raise _failed(task)
    if not task.video_url:
        # An old Task object may predate the URL: look again once.
        task = yield from get(ctx, task.id)
        if task.status == TaskStatus.FAILED:
            raise _failed(task)
        if not task.video_url:
            raise InvalidRequestError(
                f"task {task.id} has no video yet (status {int(task.status)})", field="task"
            )
    target = target_path(path, task)
    result = yield from download(ctx, task.video_url, target, overwrite=overwrite,
                                 on_progress=on_progress)
    if preview and task.preview_url:
        suffix = _suffix(task.preview_url, ".jpg")
        pv = yield from download(ctx, task.preview_url, target.with_suffix(suffix),
                                 overwrite=overwrite)
        result = result.model_copy(update={"preview_path": pv.path})
    return result


def _suffix(url: str, default: str) -> str:
    match = re.search(r"(\.[A-Za-z0-9]{2,5})(?:\?|$)", url)
    return match.group(1).lower() if match else default


class Waiter(Protocol):
    """``make``'s wait, replaceable: ``waiter(task_id, timeout=..., on_progress=...)`` returns
    the task's final state; a failed task may be returned or raised as TaskFailedError.
    ``client.lipsync.wait`` is one."""

    def __call__(self, task_id: str, *, timeout: float,
                 on_progress: Callable[[Task], None] | None) -> Task: ...


class AsyncWaiter(Protocol):
    """The async client's :class:`Waiter`: ``await waiter(task_id, timeout=..., on_progress=...)``
    (e.g. one that ends at a confirmed callback)."""

    def __call__(self, task_id: str, *, timeout: float,
                 on_progress: Callable[[Task], None] | None) -> Awaitable[Task]: ...


@dataclass
class MakeStarted:
    """``make`` between create and wait: what was uploaded and the task that was created."""

    task_id: str
    video_file_id: str
    audio_file_id: str | None
    output: Path
    emit: Callable[[MakeEvent], None]

    def on_wait(self, task: Task) -> None:
        """The wait's ``on_progress``: a ``wait`` event per look at the task."""
        self.emit(MakeEvent(stage="wait", task=task))


def submit(
    ctx: Context,
    request: LipSyncRequest,
    *,
    on_sent: Callable[[float], None] | None,
    on_event: Callable[[MakeEvent], None] | None,
    timeout: float = 600,
) -> Flow[tuple[LipSyncRequest, str]]:
    """Upload the request's local files, then create the task (paid); everything is checked
    before the first upload. Returns the request as sent (file ids only) and the task id.
    ``on_sent`` is the create's (see ``create``)."""
    request.check_before_upload()
    emit = on_event or _ignore
    ids: dict[str, str] = {}
    uploads: list[tuple[str, Path | None, str, MakeStage]] = [
        ("video_file_id", request.video_path, SERVICE_LIP_SYNC_VIDEO, "upload_video"),
        ("audio_file_id", request.audio_path, SERVICE_LIP_SYNC_AUDIO, "upload_audio"),
    ]
    for key, path, service, stage in uploads:
        if path is None:
            continue
        detail = yield from upload(ctx, path, service, name=None,
                                   on_progress=_progress(emit, stage), wait=True,
                                   timeout=min(timeout, 600))
        ids[key] = detail.id
        emit(MakeEvent(stage=stage, file_id=detail.id))
    sent = request.with_file_ids(**ids)
    task_id = yield from create(ctx, sent.wire_body(), on_sent)
    emit(MakeEvent(stage="create", task=Task(id=task_id)))
    return sent, task_id


def _ignore(_event: MakeEvent) -> None:
    pass


def _progress(emit: Callable[[MakeEvent], None], stage: MakeStage) -> Callable[[int, int], None]:
    return lambda sent, total: emit(MakeEvent(stage=stage, sent=sent, total=total))


def check_output(output: str | os.PathLike[str], overwrite: bool) -> Path:
    """``make``'s output, refused when it is an existing file and ``overwrite`` is off."""
    out = Path(output)
    if not out.is_dir() and out.exists() and not overwrite:
        raise output_exists(out)
    return out


def make_start(
    ctx: Context,
    request: LipSyncRequest,
    *,
    output: str | os.PathLike[str],
    on_event: Callable[[MakeEvent], None] | None,
    on_sent: Callable[[float], None] | None = None,
    overwrite: bool,
    timeout: float,
) -> Flow[MakeStarted]:
    """``make`` up to the create: upload what is local, create (see :func:`submit`)."""
    emit = on_event or _ignore
    out = check_output(output, overwrite)
    sent, task_id = yield from submit(ctx, request, on_sent=on_sent, on_event=emit,
                                      timeout=timeout)
    assert sent.video_file_id is not None
    return MakeStarted(task_id=task_id, video_file_id=sent.video_file_id,
                       audio_file_id=sent.audio_file_id, output=out, emit=emit)


def make_finish(
    ctx: Context, started: MakeStarted, task: Task, *, overwrite: bool
) -> Flow[MakeResult]:
    """``make`` after the wait: download the finished task (a failed one raises
    TaskFailedError)."""
    result = yield from download_task(
        ctx, task, started.output, overwrite=overwrite, preview=False,
        on_progress=lambda sent, total: started.emit(
            MakeEvent(stage="download", sent=sent, total=total)),
    )
    started.emit(MakeEvent(stage="done", task=task, path=result.path))
    return MakeResult(task=task, video_file_id=started.video_file_id,
                      audio_file_id=started.audio_file_id, download=result)


