"""Pydantic models that describe the wire format in the published OpenAPI document.

Handlers validate bodies with ``_wire`` (so that errors carry the API's own codes and messages);
these models only document what is accepted and answered.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from .._wire import TEXT_MAX_CHARS, Code, FileStatus, TaskStatus


def _values(enum: type[IntEnum]) -> str:
    """``0 queued, 10 generating, ... (TaskStatus)``: the numbers and names of one enum."""
    members = ", ".join(f"{m.value} {m.name.lower().replace('_', ' ')}" for m in enum)
    return f"{members} ({enum.__name__})"


class TokenRequest(BaseModel):
    app_id: str
    secret_key: str


class TtsConfig(BaseModel):
    text: (
        Annotated[str, Field(min_length=1, max_length=3999)]
        | Annotated[list[str], Field(min_length=1)]
    ) = Field(description=f"string or array of strings; < {TEXT_MAX_CHARS} characters in all")
    audio_man_id: str = Field(min_length=1, description="a voice id from list_common_audio")
    speed: float = Field(1, ge=0.5, le=2)
    pitch: float = Field(1, ge=0.5, le=2)


class CreateRequest(BaseModel):
    video_file_id: str = Field(min_length=1, max_length=128)
    screen_width: int = Field(1080, ge=64, le=4096)
    screen_height: int = Field(1920, ge=64, le=4096)
    backway: Literal[1, 2] = 1
    drive_mode: Literal["", "random"] = ""
    callback: str | None = Field(None, pattern="^https?://", max_length=2048)
    model: Literal[0, 1] = 0
    audio_type: Literal["tts", "audio"] = "tts"
    tts_config: TtsConfig | None = None
    audio_file_id: str | None = Field(None, min_length=1, max_length=128)
    volume: int = Field(100, ge=1, le=100)


class ListRequest(BaseModel):
    page: int = Field(1, ge=1)
    page_size: int = Field(10, ge=1, le=100)


class Envelope(BaseModel):
    trace_id: str = Field(pattern="^[0-9a-f]{32}$")
    code: int = Field(description=_values(Code))
    msg: str
    data: Any = None


class TokenData(BaseModel):
    access_token: str
    expire_in: int = Field(description="absolute unix time (seconds)")


class UploadUrlData(BaseModel):
    sign_url: str
    full_path: str
    key: str
    mime_type: str
    file_id: str


class FileDetailData(BaseModel):
    id: str
    service: str
    name: str
    bytes: int
    create_time: int
    file_path: str
    status: int = Field(description=_values(FileStatus))
    msg: str


class TaskDetail(BaseModel):
    id: str
    status: int = Field(description=_values(TaskStatus))
    progress: int
    msg: str
    video_url: str
    preview_url: str
    duration: int = Field(description="milliseconds")
    create_time: int


class PageInfo(BaseModel):
    page: int
    size: int
    total_count: int
    total_page: int


class TaskList(BaseModel):
    list: list[TaskDetail]
    page_info: PageInfo


class Voice(BaseModel):
    id: str
    grade: int
    name: str
    gender: str
    lang: str
    desc: str
    speed: float
    pitch: float
    audition: str


class VoiceList(BaseModel):
    list: list[Voice]
    page_info: PageInfo


class TokenAnswer(Envelope):
    data: TokenData | None = None


class UploadUrlAnswer(Envelope):
    data: UploadUrlData | None = None


class FileDetailAnswer(Envelope):
    data: FileDetailData | None = None


class CreateAnswer(Envelope):
    data: str | None = Field(None, description="the task id")


class TaskDetailAnswer(Envelope):
    data: TaskDetail | None = None


class TaskListAnswer(Envelope):
    data: TaskList | None = None


class VoiceListAnswer(Envelope):
    data: VoiceList | None = None
