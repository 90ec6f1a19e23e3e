"""The tools' typed outputs (their JSON schemas are the tools' output schemas)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from chanjing_avatar._wire import TaskStatus

if TYPE_CHECKING:
    from chanjing_avatar import Task, Voice

TaskState = Literal["queued", "generating", "succeeded", "failed", "unknown"]
_STATES: dict[int, TaskState] = {
    TaskStatus.QUEUED: "queued",
    TaskStatus.GENERATING: "generating",
    TaskStatus.SUCCEEDED: "succeeded",
    TaskStatus.FAILED: "failed",
}


class VoiceOut(BaseModel):
    id: str = Field(description="Pass as voice_id to create_lipsync / make_video.")
    name: str
    gender: str
    lang: str
    desc: str

    @classmethod
    def of(cls, voice: Voice) -> VoiceOut:
        return cls(id=voice.id, name=voice.name, gender=voice.gender, lang=voice.lang,
                   desc=voice.desc)


class VoicesOut(BaseModel):
    voices: list[VoiceOut]
    page: int
    page_size: int
    total: int = Field(description="Voices matching the filters, on all pages.")
    has_more: bool = Field(description="True: call again with page + 1.")


class UploadOut(BaseModel):
    file_id: str = Field(description="Ready to use in create_lipsync.")
    service: str
    bytes: int | None


class TaskOut(BaseModel):
    task_id: str
    state: TaskState
    status: int = Field(description="API status: 0 queued, 10 generating, 20 done, 30 failed.")
    progress: int = Field(description="Percent, while generating.")
    message: str = Field(description="The server's message; the reason when failed.")
    duration_s: float | None = Field(description="Length of the finished video in seconds.")
    create_time: str | None = Field(description="When the task was created (ISO 8601, UTC).")
    has_video: bool = Field(description="True: download_result can fetch the video now.")

    @classmethod
    def of(cls, task: Task) -> TaskOut:
        return cls(
            task_id=task.id,
            state=_STATES.get(int(task.status), "unknown"),
            status=int(task.status),
            progress=task.progress,
            message=task.msg,
            duration_s=task.duration,
            create_time=task.create_time.isoformat() if task.create_time else None,
            has_video=bool(task.video_url) and int(task.status) == TaskStatus.SUCCEEDED,
        )


class TaskListOut(BaseModel):
    tasks: list[TaskOut]
    page: int
    page_size: int
    total: int
    total_pages: int


class CreateOut(BaseModel):
    task_id: str
    idempotency_key: str = Field(description="Send it again on a retry: no second task is made.")
    replayed: bool = Field(description="True: an earlier call with this key made the task.")


class WaitOut(BaseModel):
    task: TaskOut
    finished: bool = Field(description="False: still running; call wait_lipsync again.")
    waited_s: float


class DownloadOut(BaseModel):
    task_id: str
    path: str = Field(description="The video on this machine.")
    bytes: int
    preview_path: str | None


class MakeOut(BaseModel):
    task_id: str
    idempotency_key: str
    replayed: bool
    finished: bool = Field(description="False: the task still runs; use wait_lipsync, then "
                           "download_result.")
    task: TaskOut
    path: str | None = Field(description="The downloaded video, when finished.")
    bytes: int | None
