"""Turning models into output: dicts for --json, short text for people. Secrets never included."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._output import redact_url

if TYPE_CHECKING:
    from .. import FileDetail, Task, Voice

STATUS_NAMES = {0: "queued", 10: "generating", 20: "succeeded", 30: "failed"}


def status_name(status: int) -> str:
    return STATUS_NAMES.get(int(status), f"unknown({int(status)})")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def _url(value: str | None) -> str | None:
    return redact_url(value) if value else None


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
