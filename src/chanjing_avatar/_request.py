"""What a lip-sync create is: one immutable request owning the fields, defaults, checks and body.

The checks are the wire's own (``_wire.validate_create``, the rule book the sandbox answers with);
the ids of files not yet uploaded, and a voice not yet chosen, may be pending until the create.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from ._exceptions import InvalidRequestError
from ._wire import (
    AUDIO_EXTENSIONS,
    IMAGE_EXTENSIONS,
    PATH_LIPSYNC_CREATE,
    PHOTO_EXTENSIONS,
    SOURCE_EXTENSIONS,
    CreateFieldError,
    file_extension,
    validate_create,
)

log = logging.getLogger("chanjing_avatar")

_FILE_NAME_EXTENSIONS = frozenset(SOURCE_EXTENSIONS + AUDIO_EXTENSIONS + IMAGE_EXTENSIONS)
_VOICE = "tts_config.audio_man_id"


@dataclass(frozen=True, kw_only=True)
class LipSyncRequest:
    """One lip-sync task to create, checked by the wire's rules when it is built.

    ``video`` and ``audio`` are a file id (``str``) or a local file (an ``os.PathLike`` such as
    ``Path``), which ``lipsync.create`` and ``lipsync.make`` upload first. A local ``video`` may be
    a photo (``SOURCE_EXTENSIONS``: jpg, png, webp): it is uploaded as a still video of the
    speech's length (needs the ``photo`` extra). The mouth follows
    ``text`` spoken by ``voice_id`` (with ``speed`` and ``pitch``), or ``audio``.
    ``screen_width`` / ``screen_height`` left at None take a local video's own size, else the
    API's default (1080×1920). ``voice_id`` may be left out and given later with
    ``dataclasses.replace``; nothing is uploaded or created without it.

    Raises :class:`InvalidRequestError` naming the wrong field (``voice_id``, ``video``,
    ``audio``, or the wire's name such as ``tts_config.speed`` or ``screen_width``).
    """

    video: str | Path
    text: str | tuple[str, ...] | None = None
    voice_id: str | None = None
    audio: str | Path | None = None
    speed: float = 1.0
    pitch: float = 1.0
    screen_width: int | None = None
    screen_height: int | None = None
    backway: int = 1
    drive_mode: str = ""
    model: int = 0
    volume: int = 100
    callback: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "video", _file_ref(self.video, "video"))
        if self.audio is not None:
            object.__setattr__(self, "audio", _file_ref(self.audio, "audio"))
        if isinstance(self.text, list):
            object.__setattr__(self, "text", tuple(self.text))
        if (self.text is None) == (self.audio is None):
            raise InvalidRequestError("give either text (with voice_id) or audio", field="text",
                                      endpoint=PATH_LIPSYNC_CREATE)
        self._validate(self._pending(voice=True))

    # -- where the files are ----------------------------------------------------------------------

    @property
    def video_file_id(self) -> str | None:
        return self.video if isinstance(self.video, str) else None

    @property
    def video_path(self) -> Path | None:
        return self.video if isinstance(self.video, Path) else None

    @property
    def video_is_photo(self) -> bool:
        """The video is a local photo (uploaded as a still video made from it)."""
        return self.video_path is not None and (
            file_extension(self.video_path.name) in PHOTO_EXTENSIONS)

    @property
    def audio_file_id(self) -> str | None:
        return self.audio if isinstance(self.audio, str) else None

    @property
    def audio_path(self) -> Path | None:
        return self.audio if isinstance(self.audio, Path) else None

    def with_file_ids(
        self, *, video_file_id: str | None = None, audio_file_id: str | None = None
    ) -> LipSyncRequest:
        """This request with its local files replaced by their uploaded ids (None: unchanged).

        A local video's own size fills in the screen size left at None.
        """
        changes: dict[str, Any] = {}
        if video_file_id is not None:
            changes["video"] = video_file_id
            if self.video_path is not None:
                changes.update(_source_size(self.video_path, self.screen_width,
                                            self.screen_height))
        if audio_file_id is not None:
            changes["audio"] = audio_file_id
        return dataclasses.replace(self, **changes)

    # -- checks and the body ----------------------------------------------------------------------

    def check_before_upload(self) -> None:
        """Every rule but the ids of local files: what a create checks before it uploads."""
        self._validate(self._pending(voice=False))

    def wire_body(self) -> dict[str, Any]:
        """The ``video_lip_sync/create`` body (a :class:`CreateLipSync` as sent).

        Every id must be known: local files uploaded (see :meth:`with_file_ids`), a voice chosen.
        """
        for field, path in (("video", self.video_path), ("audio", self.audio_path)):
            if path is not None:
                raise InvalidRequestError(f"{field}: upload {path} first", field=field,
                                          endpoint=PATH_LIPSYNC_CREATE)
        from ._models import CreateLipSync

        return CreateLipSync.model_validate(self._validate(())).to_wire()

    def _pending(self, *, voice: bool) -> set[str]:
        pending = set()
        if self.video_path is not None:
            pending.add("video_file_id")
        if self.audio_path is not None:
            pending.add("audio_file_id")
        if voice and self.voice_id is None:
            pending.add(_VOICE)
        return pending

    def _validate(self, pending: Collection[str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "video_file_id": self.video_file_id,
            "backway": self.backway,
            "drive_mode": self.drive_mode,
            "model": self.model,
            "volume": self.volume,
        }
        if self.screen_width is not None:
            body["screen_width"] = self.screen_width
        if self.screen_height is not None:
            body["screen_height"] = self.screen_height
        if self.callback:
            body["callback"] = self.callback
        if self.text is not None:
            body["audio_type"] = "tts"
            body["tts_config"] = {
                "text": list(self.text) if isinstance(self.text, tuple) else self.text,
                "audio_man_id": self.voice_id,
                "speed": self.speed,
                "pitch": self.pitch,
            }
        else:
            body["audio_type"] = "audio"
            body["audio_file_id"] = self.audio_file_id
        try:
            return validate_create(body, pending=pending)
        except CreateFieldError as e:
            field = "voice_id" if e.field == _VOICE else e.field
            raise InvalidRequestError(str(e), field=field, endpoint=PATH_LIPSYNC_CREATE) from e


def _file_ref(value: object, field: str) -> str | Path:
    if isinstance(value, os.PathLike):
        return Path(value)
    if isinstance(value, str):
        if "/" in value or os.sep in value or file_extension(value) in _FILE_NAME_EXTENSIONS:
            raise InvalidRequestError(
                f"{field}: {value!r} is a file name, not a file id; pass a Path to upload it",
                field=field,
            )
        return value
    raise InvalidRequestError(f"{field}: give a file id (str) or a local file (Path)",
                              field=field)


def _source_size(path: Path, width: int | None, height: int | None) -> dict[str, int | None]:
    """The screen size with what is missing taken from the local video (if it can be read)."""
    if width is not None and height is not None:
        return {}
    from ._core._probe import video_size
    from ._wire import PHOTO_EXTENSIONS, file_extension

    if file_extension(path.name) in PHOTO_EXTENSIONS:
        from ._photo import photo_size  # the size its still video will have

        size = photo_size(path)
    else:
        size = video_size(path)
    if size is None:
        log.info("could not read the size of %s; using the default screen size", path)
        return {}
    return {"screen_width": size[0] if width is None else width,
            "screen_height": size[1] if height is None else height}


# -- the keyword forms of ``lipsync.create`` and ``lipsync.make`` ---------------------------------


class _Fields(TypedDict, total=False):
    text: str | Sequence[str] | None
    voice_id: str | None
    speed: float
    pitch: float
    screen_width: int | None
    screen_height: int | None
    backway: int
    drive_mode: str
    model: int
    volume: int
    callback: str | None


class CreateFields(_Fields, total=False):
    """``lipsync.create``'s keywords: files by id; ``video_path`` (the video's local copy) gives
    the default screen size."""

    video_file_id: str
    audio_file_id: str | None
    video_path: str | os.PathLike[str] | None


class MakeFields(_Fields, total=False):
    """``lipsync.make``'s keywords: ``video`` and ``audio`` are a local path or a file id."""

    video: str | os.PathLike[str]
    audio: str | os.PathLike[str] | None


def _only(request: LipSyncRequest, fields: Collection[str]) -> LipSyncRequest:
    if fields:
        raise TypeError(f"give a LipSyncRequest or keywords ({', '.join(fields)}), not both")
    return request


def _keywords(fields: Mapping[str, Any], required: str) -> dict[str, Any]:
    if required not in fields:
        raise TypeError(f"give a LipSyncRequest or {required}=")
    return dict(fields)


def from_create_fields(request: LipSyncRequest | None, fields: CreateFields) -> LipSyncRequest:
    """The request that ``create``'s arguments describe."""
    if request is not None:
        return _only(request, fields)
    kw = _keywords(fields, "video_file_id")
    video_file_id, video_path = kw.pop("video_file_id"), kw.pop("video_path", None)
    kw["audio"] = kw.pop("audio_file_id", None)
    if video_path is None:
        return LipSyncRequest(video=video_file_id, **kw)
    return LipSyncRequest(video=Path(video_path), **kw).with_file_ids(video_file_id=video_file_id)


def from_make_fields(request: LipSyncRequest | None, fields: MakeFields) -> LipSyncRequest:
    """The request that ``make``'s arguments describe (a str naming an existing file is a path)."""
    if request is not None:
        return _only(request, fields)
    kw = _keywords(fields, "video")
    kw["video"] = local_or_id(kw["video"], "video")
    if kw.get("audio") is not None:
        kw["audio"] = local_or_id(kw["audio"], "audio")
    return LipSyncRequest(**kw)


_FILE_ID = re.compile(r"[A-Za-z0-9_-]{6,128}")


def local_or_id(value: object, field: str) -> Path | str:
    """``make``'s rule for a str: an existing file, else a file id, else "no such file"."""
    if isinstance(value, os.PathLike):
        return Path(value)
    if isinstance(value, str):
        if os.path.exists(value):
            return Path(value)
        if _FILE_ID.fullmatch(value):
            return value
        raise InvalidRequestError(f"{field}: no such file: {value}", field=field)
    raise InvalidRequestError(f"{field}: give a path or a file id", field=field)
