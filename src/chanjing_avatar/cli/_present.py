"""Turning models into output: dicts for --json, short text for people. Secrets never included."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._wire import CODE_MESSAGES, Code, TaskStatus
from ._output import redact_url

if TYPE_CHECKING:
    from .. import FileDetail, Task, Voice

STATUS_NAMES: dict[int, str] = {TaskStatus.QUEUED: "queued", TaskStatus.GENERATING: "generating",
                TaskStatus.SUCCEEDED: "succeeded", TaskStatus.FAILED: "failed"}


def status_name(status: int) -> str:
    return STATUS_NAMES.get(int(status), f"unknown({int(status)})")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def _url(value: str | None) -> str | None:
    return redact_url(value) if value else None


class ProgressTween:
    """A task's progress as a bar shows it between polls: the last reported value moved on along
    the line through the reports since it was first seen generating, never backwards and never
    past 99 (the finish is the server's to report). Pure: the caller gives the times."""

    CAP = 99.0

    def __init__(self) -> None:
        self._first: tuple[float, int] | None = None
        self._last: tuple[float, int] | None = None
        self._shown = 0.0

    def observe(self, now: float, progress: int) -> None:
        if self._last is not None and progress < self._last[1]:  # started over
            self._first, self._shown = None, 0.0
        if self._first is None:
            self._first = (now, progress)
        self._last = (now, progress)
        self._shown = max(self._shown, float(progress))

    def at(self, now: float) -> float:
        if self._first is None or self._last is None:
            return self._shown
        (t0, p0), (t1, p1) = self._first, self._last
        if p1 >= 100:
            return 100.0
        if t1 > t0 and p1 > p0:
            estimate = p1 + (p1 - p0) / (t1 - t0) * (now - t1)
            self._shown = max(self._shown, min(estimate, self.CAP))
        return self._shown


def task_notice(task: Task) -> str | None:
    """What a succeeded task says beyond "success" (a model 1 task rendered with model 0)."""
    if task.status != TaskStatus.SUCCEEDED or not task.msg:
        return None
    return None if task.msg == CODE_MESSAGES[Code.SUCCESS] else f"task {task.id}: {task.msg}"


def task_dict(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "status": int(task.status),
        "status_name": status_name(task.status),
        "progress": task.progress,
        "msg": task.msg,
        "video_url": _url(task.video_url),
        "preview_url": _url(task.preview_url),
        "duration_ms": task.duration_ms,
        "create_time": _iso(task.create_time),
    }


def task_text(task: Task) -> str:
    lines = [
        f"id:        {task.id}",
        f"status:    {status_name(task.status)} ({int(task.status)})",
        f"progress:  {task.progress}%",
    ]
    if task.msg:
        lines.append(f"message:   {task.msg}")
    if task.duration is not None:
        lines.append(f"duration:  {task.duration:.1f} s")
    if task.create_time is not None:
        lines.append(f"created:   {_iso(task.create_time)}")
    if task.video_url:
        lines.append(f"video:     {redact_url(task.video_url)}")
    return "\n".join(lines)


def task_row(task: Task) -> list[str]:
    return [
        task.id,
        status_name(task.status),
        f"{task.progress}%",
        f"{task.duration:.1f}s" if task.duration is not None else "",
        _iso(task.create_time) or "",
        task.msg if task.msg != "success" else "",
    ]


TASK_COLUMNS = ["id", "status", "progress", "duration", "created", "message"]


def file_dict(detail: FileDetail) -> dict[str, Any]:
    return {
        "id": detail.id,
        "status": int(detail.status),
        "service": detail.service,
        "bytes": detail.bytes,
        "msg": detail.msg,
        "create_time": _iso(detail.create_time),
    }


def voice_dict(voice: Voice) -> dict[str, Any]:
    return {
        "id": voice.id,
        "name": voice.name,
        "gender": voice.gender,
        "lang": voice.lang,
        "desc": voice.desc,
        "grade": voice.grade,
        "speed": voice.speed,
        "pitch": voice.pitch,
        "audition": _url(voice.audition),
    }


def voice_row(voice: Voice) -> list[str]:
    return [voice.id, voice.name, voice.gender, voice.lang, voice.desc]


VOICE_COLUMNS = ["id", "name", "gender", "lang", "description"]


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover
