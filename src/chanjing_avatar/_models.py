"""Typed requests and responses of the lip-sync Open API (pydantic v2).

Unknown fields are tolerated and kept. An unknown task or file status is kept as a plain int,
logged once, and treated as "not finished".
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from ._core._pages import PageCursor
from ._core._redact import redact_url
from ._wire import FILE_FAILED_STATUSES, FILE_READY_STATUSES, FileStatus, TaskStatus

__all__ = [
    "CreateLipSync",
    "Download",
    "FileDetail",
    "FileStatus",
    "MakeEvent",
    "MakeResult",
    "PageInfo",
    "Task",
    "TaskPage",
    "TaskStatus",
    "TtsConfig",
    "UploadUrl",
    "Voice",
]

log = logging.getLogger("chanjing_avatar")
_warned_statuses: set[tuple[str, int]] = set()


def _status(kind: str, enum: type[TaskStatus] | type[FileStatus], value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        return value  # let pydantic complain
    try:
        return enum(value)
    except ValueError:
        if (kind, value) not in _warned_statuses:
            _warned_statuses.add((kind, value))
            log.warning("unknown %s status %d; treating it as not finished", kind, value)
        return value


def _time(value: Any) -> Any:
    # Unix seconds (int, float or digit string) -> aware datetime; 0 / "" -> None.
    if value in (None, "", 0):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str) and value.isdigit():
        return datetime.fromtimestamp(int(value), tz=UTC)
    return value


# Fields read the same way wherever they appear: unix times, and statuses that may be unknown.
_Time = Annotated[datetime | None, BeforeValidator(_time)]
_TaskStatusField = Annotated[TaskStatus | int,
                             BeforeValidator(lambda v: _status("task", TaskStatus, v))]
_FileStatusField = Annotated[FileStatus | int,
                             BeforeValidator(lambda v: _status("file", FileStatus, v))]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)
    # Fields holding signed URLs: shown without their query in reprs.
    _url_fields: ClassVar[tuple[str, ...]] = ()

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name in self._url_fields and isinstance(value, str):
                yield name, redact_url(value)
            else:
                yield name, value


class TtsConfig(_Model):
    """``tts_config`` of a create body. ``text`` is sent as an array."""

    text: list[str]
    audio_man_id: str
    speed: float
    pitch: float


class CreateLipSync(_Model):
    """The body of ``video_lip_sync/create`` as sent: ``LipSyncRequest.wire_body()`` builds it,
    with the defaults the request and the wire's rules (``_wire.validate_create``) fill in."""

    video_file_id: str
    screen_width: int
    screen_height: int
    backway: Literal[1, 2]
    drive_mode: Literal["", "random"]
    model: int
    volume: int
    callback: str | None = None
    audio_type: Literal["tts", "audio"]
    tts_config: TtsConfig | None = None
    audio_file_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class UploadUrl(_Model):
    """Answer of ``create_upload_url``. ``sign_url`` is valid for 15 minutes."""

    _url_fields = ("sign_url",)
    sign_url: str
    mime_type: str
    file_id: str
    full_path: str = ""
    key: str = ""


class FileDetail(_Model):
    """Answer of ``file_detail``. Ready at status 1 (or the legacy 2)."""

    _url_fields = ("file_path",)
    id: str
    status: _FileStatusField = FileStatus.PROCESSING
    service: str = ""
    bytes: int | None = None
    msg: str = ""
    file_path: str | None = None
    create_time: _Time = None

    @property
    def is_ready(self) -> bool:
        return self.status in FILE_READY_STATUSES

    @property
    def is_failed(self) -> bool:
        return self.status in FILE_FAILED_STATUSES


class Task(_Model):
    """A lip-sync task. ``duration_ms`` is the wire's ``duration``; ``duration`` is seconds."""

    _url_fields = ("video_url", "preview_url")
    id: str
    status: _TaskStatusField = TaskStatus.QUEUED
    progress: int = 0
    msg: str = ""
    video_url: str | None = None
    preview_url: str | None = None
    duration_ms: int | None = Field(default=None, alias="duration")
    create_time: _Time = None

    @field_validator("video_url", "preview_url", mode="before")
    @classmethod
    def _empty_url(cls, v: Any) -> Any:
        return v or None

    @property
    def duration(self) -> float | None:
        """Length of the video in seconds."""
        return None if self.duration_ms is None else self.duration_ms / 1000

    @property
    def is_terminal(self) -> bool:
        return self.status in (TaskStatus.SUCCEEDED, TaskStatus.FAILED)

    @property
    def succeeded(self) -> bool:
        return self.status == TaskStatus.SUCCEEDED

    @property
    def failed(self) -> bool:
        return self.status == TaskStatus.FAILED


class PageInfo(_Model):
    """Where a page sits: its number, its size, and the totals over every page."""

    page: int = 1
    size: int = 0
    total_count: int = 0
    total_page: int = 0


class TaskPage(_Model):
    """One page of ``video_lip_sync/list``. ``items`` is the wire's ``list``."""

    items: list[Task] = Field(default_factory=list, alias="list")
    page_info: PageInfo = Field(default_factory=PageInfo)

    @property
    def total_count(self) -> int:
        """Tasks over every page (``page_info.total_count``)."""
        return self.page_info.total_count

    @property
    def total_page(self) -> int:
        """Pages at this page size (``page_info.total_page``)."""
        return self.page_info.total_page

    def next_page_info(self) -> PageCursor | None:
        """The page after this one (by its ``page_info``), or None when this is the last."""
        info = self.page_info
        cursor = PageCursor(info.page, info.size or len(self.items))
        return cursor.after(len(self.items), info.total_page)

    def has_next_page(self) -> bool:
        return self.next_page_info() is not None


class Voice(_Model):
    """A public voice from ``list_common_audio`` (its ``id`` goes in ``voice_id``)."""

    _url_fields = ("audition",)
    id: str
    name: str = ""
    gender: str = ""
    lang: str = ""
    desc: str = ""
    grade: int | None = None
    speed: float | None = None
    pitch: float | None = None
    audition: str | None = None


class Download(_Model):
    """Where a finished video was saved."""

    path: Path
    bytes: int
    resumed_from: int = 0
    preview_path: Path | None = None


MakeStage = Literal[
    "upload_video", "upload_audio", "create", "wait", "download", "done"
]


class MakeEvent(_Model):
    """Progress of :meth:`lipsync.make`: the stage, and what is known at that point."""

    stage: MakeStage
    sent: int | None = None  # upload stages: bytes sent
    total: int | None = None  # upload/download stages: bytes in all
    file_id: str | None = None
    task: Task | None = None
    path: Path | None = None


class MakeResult(_Model):
    """Everything :meth:`lipsync.make` produced."""

    task: Task
    video_file_id: str
    audio_file_id: str | None = None
    download: Download
