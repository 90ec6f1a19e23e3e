"""The Open API wire contract, shared by the client and the sandbox.

Pure data and pure functions: paths, response codes, status numbers, services, rate limits and the
validation rules of a lip-sync ``create`` body. The sandbox answers with these rules and the client
checks with the same ones before it spends a request (and money).
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

DEFAULT_BASE_URL: Final = "https://open-api.chanjing.cc"

# Paths (all under /open/v1/).
PATH_ACCESS_TOKEN: Final = "/open/v1/access_token"
PATH_CREATE_UPLOAD_URL: Final = "/open/v1/common/create_upload_url"
PATH_FILE_DETAIL: Final = "/open/v1/common/file_detail"
PATH_LIPSYNC_CREATE: Final = "/open/v1/video_lip_sync/create"
PATH_LIPSYNC_DETAIL: Final = "/open/v1/video_lip_sync/detail"
PATH_LIPSYNC_LIST: Final = "/open/v1/video_lip_sync/list"
PATH_LIST_COMMON_AUDIO: Final = "/open/v1/list_common_audio"

TOKEN_HEADER: Final = "access_token"
# Refresh this long before expire_in, as the vendor's clients do.
TOKEN_REFRESH_MARGIN_S: Final = 300
UPLOAD_URL_TTL_S: Final = 15 * 60
TEXT_MAX_CHARS: Final = 4000  # text must be shorter than this
VOICE_PAGE_MAX: Final = 50


class Code(IntEnum):
    """Envelope ``code`` values."""

    SUCCESS = 0
    BAD_FORMAT = 400
    TOKEN_INVALID = 10400
    AUTH_FAILED = 10401
    PARAM_ERROR = 40000
    RATE_LIMITED = 40001
    QUOTA_EXHAUSTED = 40002
    INTERNAL = 50000
    CONTENT_REJECTED = 50011
    INTERNAL_2 = 51000


CODE_MESSAGES: Final[Mapping[int, str]] = {
    Code.SUCCESS: "success",
    Code.BAD_FORMAT: "参数格式错误 (invalid parameter format)",
    Code.TOKEN_INVALID: "AccessToken已失效 (access token verification failed)",
    Code.AUTH_FAILED: "鉴权失败 (authentication failed)",
    Code.PARAM_ERROR: "参数错误 (parameter error)",
    Code.RATE_LIMITED: "超出RPM/QPS限制 (rate limit exceeded)",
    Code.QUOTA_EXHAUSTED: "生产时长已达上限 (production quota reached)",
    Code.INTERNAL: "系统内部错误 (system internal error)",
    Code.CONTENT_REJECTED: "内容不合规 (non-compliant content)",
    Code.INTERNAL_2: "系统内部错误 (system internal error)",
}


class TaskStatus(IntEnum):
    """Lip-sync task ``status`` (not the numbers of Chanjing's other products)."""

    QUEUED = 0
    GENERATING = 10
    SUCCEEDED = 20
    FAILED = 30

    @property
    def is_terminal(self) -> bool:
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED)


class FileStatus(IntEnum):
    """``file_detail`` status. Servers answer READY; clients accept READY and READY_LEGACY."""

    PROCESSING = 0
    READY = 1
    READY_LEGACY = 2
    CHECK_FAILED = 98
    DELETED = 99
    PURGED = 100


FILE_READY_STATUSES: Final = frozenset({FileStatus.READY, FileStatus.READY_LEGACY})
FILE_FAILED_STATUSES: Final = frozenset(
    {FileStatus.CHECK_FAILED, FileStatus.DELETED, FileStatus.PURGED}
)

# Billing failures of a status-30 task, as the vendor words them.
BILLING_MARKERS: Final = ("余额不足", "蝉豆不足", "扣费失败")


def is_billing_failure(msg: str) -> bool:
    return any(marker in msg for marker in BILLING_MARKERS)


# Services and the file extensions each accepts. Lip sync uses the first two; the others exist on
# the real API and are accepted for upload so that vendor tools keep working against the sandbox.
SERVICE_LIP_SYNC_VIDEO: Final = "lip_sync_video"
SERVICE_LIP_SYNC_AUDIO: Final = "lip_sync_audio"
VIDEO_EXTENSIONS: Final = ("mp4", "mov", "webm")
AUDIO_EXTENSIONS: Final = ("mp3", "m4a", "wav")
IMAGE_EXTENSIONS: Final = ("jpg", "jpeg", "png")
SERVICE_EXTENSIONS: Final[Mapping[str, tuple[str, ...]]] = {
    SERVICE_LIP_SYNC_VIDEO: VIDEO_EXTENSIONS,
    SERVICE_LIP_SYNC_AUDIO: AUDIO_EXTENSIONS,
    "customised_person": VIDEO_EXTENSIONS,
    "prompt_audio": AUDIO_EXTENSIONS,
    "make_video_audio": AUDIO_EXTENSIONS,
    "make_video_background": IMAGE_EXTENSIONS + VIDEO_EXTENSIONS,
    "ai_creation": IMAGE_EXTENSIONS + VIDEO_EXTENSIONS + AUDIO_EXTENSIONS,
}
# Photos a lip-sync source may be: the API drives videos only, so the client makes a still video
# of the photo and uploads that. ``SOURCE_EXTENSIONS``: what a local source file may be.
PHOTO_EXTENSIONS: Final = ("jpg", "jpeg", "png", "webp")
SOURCE_EXTENSIONS: Final = VIDEO_EXTENSIONS + PHOTO_EXTENSIONS
MIME_TYPES: Final[Mapping[str, str]] = {
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "wav": "audio/wav",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
}


def file_extension(name: str) -> str:
    """Lower-case extension of a file name without the dot ('' if none)."""
    base = posixpath.basename(name.replace("\\", "/"))
    _, dot, ext = base.rpartition(".")
    return ext.lower() if dot and _ else ""


def check_upload_name(service: str, name: str) -> str | None:
    """Why ``name`` cannot be uploaded for ``service``, or None if it can."""
    if service not in SERVICE_EXTENSIONS:
        return f"service: unknown service {service!r}; use one of {', '.join(SERVICE_EXTENSIONS)}"
    if not name or len(name) > 255:
        return "name: give the original file name with its extension (1-255 characters)"
    if any(ch in name for ch in "\x00\r\n"):
        return "name: control characters are not allowed"
    ext = file_extension(name)
    allowed = SERVICE_EXTENSIONS[service]
    if ext not in allowed:
        return (
            f"name: extension {('.' + ext) if ext else '(none)'} is not accepted for {service}; "
            f"use {', '.join('.' + e for e in allowed)}"
        )
    return None


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` requests per ``period_s`` seconds, per app_id."""

    bucket: str
    count: int
    period_s: float


# Documented limits. Paths not listed are not limited.
RATE_LIMITS: Final[Mapping[str, RateLimit]] = {
    "lipsync_create": RateLimit("lipsync_create", 10, 60.0),
    "lipsync_query": RateLimit("lipsync_query", 10, 1.0),
    "file_management": RateLimit("file_management", 30, 60.0),
}
PATH_RATE_BUCKET: Final[Mapping[str, str]] = {
    PATH_LIPSYNC_CREATE: "lipsync_create",
    PATH_LIPSYNC_DETAIL: "lipsync_query",
    PATH_LIPSYNC_LIST: "lipsync_query",
    PATH_CREATE_UPLOAD_URL: "file_management",
    PATH_FILE_DETAIL: "file_management",
}


class CreateFieldError(ValueError):
    """A lip-sync ``create`` body breaks a rule; ``field`` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _check_id(body: Mapping[str, Any], field: str, pending: Collection[str]) -> None:
    value = body.get(field)
    if value is None and field in pending:
        return
    if not isinstance(value, str) or not value.strip():
        raise CreateFieldError(field, "required: a file id from file management")
    if len(value) > 128:
        raise CreateFieldError(field, "too long to be a file id")


def normalize_text(text: Any) -> list[str]:
    """``tts_config.text`` as a list of strings; accepts a string or an array of strings."""
    if isinstance(text, str):
        parts = [text]
    elif isinstance(text, list) and all(isinstance(t, str) for t in text):
        parts = list(text)
    else:
        raise CreateFieldError("tts_config.text", "must be a string or an array of strings")
    joined = "".join(parts)
    if not joined.strip():
        raise CreateFieldError("tts_config.text", "must not be empty")
    if len(joined) >= TEXT_MAX_CHARS:
        raise CreateFieldError(
            "tts_config.text", f"must be shorter than {TEXT_MAX_CHARS} characters"
        )
    return parts


def validate_create(body: Any, *, pending: Collection[str] = ()) -> dict[str, Any]:
    """Check a create body against the documented rules; return it with defaults filled in.

    Raises :class:`CreateFieldError` naming the first wrong field. Existence of files and voices is
    not checked here (that needs the server's state). The id fields named in ``pending``
    (``video_file_id``, ``audio_file_id``, ``tts_config.audio_man_id``) may be absent: a client
    checks everything else before it uploads a file or picks a voice.
    """
    if not isinstance(body, Mapping):
        raise CreateFieldError("body", "must be a JSON object")
    out: dict[str, Any] = dict(body)
    _check_id(body, "video_file_id", pending)
    for field, default in (("screen_width", 1080), ("screen_height", 1920)):
        value = body.get(field, default)
        if value is None:
            value = default
        if not _is_int(value) or not 64 <= value <= 4096:
            raise CreateFieldError(field, "must be an integer from 64 to 4096")
        out[field] = value
    backway = body.get("backway", 1)
    if not _is_int(backway) or backway not in (1, 2):
        raise CreateFieldError("backway", "must be 1 (loop forward) or 2 (back and forth)")
    out["backway"] = backway
    drive_mode = body.get("drive_mode", "")
    if drive_mode is None:
        drive_mode = ""
    if drive_mode not in ("", "random"):
        raise CreateFieldError("drive_mode", 'must be "" (normal) or "random"')
    out["drive_mode"] = drive_mode
    model = body.get("model", 0)
    if not _is_int(model) or model not in (0, 1):
        raise CreateFieldError("model", "must be 0 (basic) or 1 (high quality)")
    out["model"] = model
    volume = body.get("volume", 100)
    if not _is_int(volume) or not 1 <= volume <= 100:
        raise CreateFieldError("volume", "must be an integer from 1 to 100")
    out["volume"] = volume
    callback = body.get("callback")
    if callback not in (None, ""):
        if not isinstance(callback, str) or not callback.startswith(("http://", "https://")):
            raise CreateFieldError("callback", "must be an http:// or https:// URL")
        if len(callback) > 2048:
            raise CreateFieldError("callback", "must be at most 2048 characters")
    audio_type = body.get("audio_type", "tts")
    if audio_type in (None, ""):
        audio_type = "tts"
    if audio_type not in ("tts", "audio"):
        raise CreateFieldError("audio_type", 'must be "tts" or "audio"')
    out["audio_type"] = audio_type
    if audio_type == "tts":
        tts = body.get("tts_config")
        if not isinstance(tts, Mapping):
            raise CreateFieldError("tts_config", 'required when audio_type is "tts"')
        tts_out = dict(tts)
        tts_out["text"] = normalize_text(tts.get("text"))
        voice = tts.get("audio_man_id")
        voice_pending = voice is None and "tts_config.audio_man_id" in pending
        if not voice_pending and (not isinstance(voice, str) or not voice.strip()):
            raise CreateFieldError("tts_config.audio_man_id", "required: a voice id")
        speed = tts.get("speed", 1)
        if not _is_number(speed) or not 0.5 <= float(speed) <= 2:
            raise CreateFieldError("tts_config.speed", "must be a number from 0.5 to 2")
        pitch = tts.get("pitch", 1)
        if not _is_number(pitch) or not 0.5 <= float(pitch) <= 2:
            raise CreateFieldError("tts_config.pitch", "must be a number from 0.5 to 2")
        tts_out["speed"], tts_out["pitch"] = speed, pitch
        out["tts_config"] = tts_out
    else:
        _check_id(body, "audio_file_id", pending)
    return out
