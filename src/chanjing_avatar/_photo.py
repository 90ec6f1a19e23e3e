"""A photo as a lip-sync source: a still video of it, made locally before the upload.

The API drives videos only, so a photo (jpg, png, webp) becomes an H.264 mp4 of the photo as it is
displayed (EXIF rotation applied, transparency on white), at its own size rounded down to even (at
most 4096 px a side), lasting as long as the speech: the local audio's duration, or a generous
estimate for text (and a short clip for an audio file id; the API loops a video shorter than the
speech). It is encoded with PyAV (the ``photo`` extra: ``pip install 'chanjing-avatar[photo]'``),
written in a private temporary folder, and deleted once uploaded.

Any length costs a few seconds of encoding: one group of pictures (a key frame and still frames
that refer to it) is encoded once and its packets are written again with later times; only those
packets are held in memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile
import unicodedata
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from ._exceptions import ConfigurationError, InvalidRequestError
from ._request import LipSyncRequest

log = logging.getLogger("chanjing_avatar")

EXTRA_HINT = "pip install 'chanjing-avatar[photo]'"
FPS = 25
GOP_FRAMES = 5 * FPS  # a key frame every 5 s: a small upload at any length
MAX_SIDE = 4096  # the API's largest screen side
MIN_SIDE = 64  # its smallest
# Speech length: a text's estimate is generous (a longer video is cut to the speech; a shorter one
# would loop, invisible on a still but not needed); seconds per wide (CJK) character, per other
# character, and a lead-in. An audio file id's length is unknown: a short clip the API loops.
_WIDE_S, _NARROW_S, _LEAD_S = 0.3, 0.09, 1.0
MIN_SECONDS, MAX_SECONDS, UNKNOWN_SECONDS = 2.0, 3600.0, 10.0
_IMAGE_FORMATS = frozenset({"image2", "png_pipe", "jpeg_pipe", "webp_pipe"})


def _av() -> Any:
    try:
        import av
        import numpy  # noqa: F401 - needed by the frame conversions
    except ImportError:
        raise ConfigurationError(
            f"a photo as the video needs PyAV to make a video of it: {EXTRA_HINT}"
        ) from None
    return av


def speech_seconds(request: LipSyncRequest) -> float:
    """How long the video made of a photo should last for ``request``'s speech."""
    if request.text is not None:
        text = "".join(request.text)
        wide = sum(1 for ch in text if unicodedata.east_asian_width(ch) in "WF")
        seconds = (_LEAD_S + _WIDE_S * wide + _NARROW_S * (len(text) - wide)) / request.speed
    elif request.audio_path is not None:
        seconds = _audio_seconds(request.audio_path) or UNKNOWN_SECONDS
    else:
        seconds = UNKNOWN_SECONDS
    return min(MAX_SECONDS, max(MIN_SECONDS, seconds))


def _audio_seconds(path: Path) -> float | None:
    av = _av()
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if container.duration:
                return float(container.duration) / 1_000_000  # AV_TIME_BASE
            stream = container.streams.audio[0]
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
    except (av.FFmpegError, IndexError, OSError):
        pass
    log.info("could not read the length of %s; the video of the photo loops instead", path)
    return None


def _bad(path: Path, why: str) -> InvalidRequestError:
    return InvalidRequestError(f"video: {path} {why}", field="video")


def _displayed(path: Path) -> Any:
    """The photo as displayed, as an even-sized yuv420p frame (an ``av.VideoFrame``)."""
    av = _av()
    import numpy as np

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if container.format.name not in _IMAGE_FORMATS or not container.streams.video:
                raise _bad(path, f"is not a photo (it reads as {container.format.name})")
            frame = next(container.decode(video=0), None)
    except av.FFmpegError:
        raise _bad(path, "cannot be read as a photo (jpg, png or webp)") from None
    if frame is None:
        raise _bad(path, "holds no picture")
    rgba = frame.to_ndarray(format="rgba")
    rgb = rgba[..., :3]
    if (rgba[..., 3] < 255).any():  # transparent parts on white
        alpha = rgba[..., 3:].astype(np.uint16)
        rgb = ((rgb * alpha + 255 * (255 - alpha)) // 255).astype(np.uint8)
    turns = round((frame.rotation or 0) / 90) % 4  # EXIF orientation, counter-clockwise
    if turns:
        rgb = np.rot90(rgb, turns)
    height, width = rgb.shape[:2]
    scale = min(1.0, MAX_SIDE / max(width, height))
    out_w, out_h = int(width * scale) // 2 * 2, int(height * scale) // 2 * 2
    if min(out_w, out_h) < MIN_SIDE:
        raise _bad(path, f"is {width}×{height}; the API needs at least {MIN_SIDE} px a side")
    if scale == 1.0:  # crop to even, no resampling
        rgb = rgb[:out_h, :out_w]
    still = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return still.reformat(width=out_w, height=out_h, format="yuv420p")


def write_still_video(photo: Path, out: Path, seconds: float) -> tuple[int, int]:
    """Write ``out`` (mp4): ``photo`` for ``seconds`` at 25 fps. Returns (width, height)."""
    av = _av()
    frame = _displayed(photo)
    frames = max(1, round(seconds * FPS))
    with av.open(str(out), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
        # No B-frames: decode order is display order, so a group can be written again as is.
        stream.options = {"preset": "veryfast", "crf": "18", "g": str(GOP_FRAMES),
                          "bf": "0", "sc_threshold": "0"}
        group = []
        for i in range(min(frames, GOP_FRAMES)):
            frame.pts = i
            group += stream.encode(frame)
        group += stream.encode(None)
        if not group:  # pragma: no cover - the encoder always answers a frame
            raise OSError("the video encoder gave no output")
        step = group[1].pts - group[0].pts if len(group) > 1 else 1
        for i in range(frames):
            src = group[i % len(group)]
            packet = av.Packet(bytes(src))
            packet.stream, packet.time_base = stream, src.time_base
            packet.pts = packet.dts = group[0].pts + i * step
            packet.duration = step
            packet.is_keyframe = src.is_keyframe
            container.mux(packet)
    return frame.width, frame.height


class StillVideo:
    """The still video of a request's photo, in a private temporary folder of its own.

    ``make()`` encodes it (blocking; CPU work) and returns the request to upload; ``close()``
    deletes the folder.
    """

    def __init__(self, request: LipSyncRequest) -> None:
        assert request.video_path is not None
        _av()  # the missing extra is said before any work
        self.request = request
        self.photo = request.video_path
        if not self.photo.is_file():
            raise _bad(self.photo, "does not exist (or is not a file)")
        self.seconds = speech_seconds(request)
        self._dir = Path(tempfile.mkdtemp(prefix="chanjing-photo-"))  # 0700

    def make(self) -> LipSyncRequest:
        out = self._dir / f"{self.photo.stem or 'photo'}.mp4"
        width, height = write_still_video(self.photo, out, self.seconds)
        log.info("made a %d×%d, %.1f s video of %s", width, height, self.seconds, self.photo)
        return dataclasses.replace(self.request, video=out)

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


def _still_video(request: LipSyncRequest) -> StillVideo | None:
    """The still video to make for ``request`` (None: no photo), everything else checked first."""
    if not request.video_is_photo:
        return None
    request.check_before_upload()
    return StillVideo(request)


@contextlib.contextmanager
def photo_source(request: LipSyncRequest) -> Iterator[LipSyncRequest]:
    """``request`` with a photo replaced by a still video of it (deleted at the end); any other
    request as it is."""
    video = _still_video(request)
    try:
        yield request if video is None else video.make()
    finally:
        if video is not None:
            video.close()


@contextlib.asynccontextmanager
async def async_photo_source(request: LipSyncRequest) -> AsyncIterator[LipSyncRequest]:
    """:func:`photo_source` for the async client: the encoding runs in a worker thread."""
    import anyio.to_thread

    video = _still_video(request)
    try:
        yield request if video is None else await anyio.to_thread.run_sync(video.make)
    finally:
        if video is not None:
            video.close()


# A photo uploaded on its own (``files.upload``) becomes a still video of this length; a task
# loops it (backway) for as long as its speech lasts, and a still loops without a seam.
UPLOAD_SECONDS = 10.0


def _is_photo_upload(file: object, service: str) -> bool:
    from ._wire import PHOTO_EXTENSIONS, SERVICE_LIP_SYNC_VIDEO, file_extension

    return (service == SERVICE_LIP_SYNC_VIDEO and isinstance(file, (str, os.PathLike))
            and file_extension(os.fspath(file)) in PHOTO_EXTENSIONS)


class _UploadStill:
    """A still video of a photo for ``files.upload``, in a private temporary folder."""

    def __init__(self, photo: Path) -> None:
        _av()
        if not photo.is_file():
            raise _bad(photo, "does not exist (or is not a file)")
        self.photo = photo
        self._dir = Path(tempfile.mkdtemp(prefix="chanjing-photo-"))  # 0700

    def make(self) -> Path:
        out = self._dir / f"{self.photo.stem or 'photo'}.mp4"
        write_still_video(self.photo, out, UPLOAD_SECONDS)
        return out

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


@contextlib.contextmanager
def photo_upload(file: Any, service: str) -> Iterator[Any]:
    """``file`` as uploaded: a photo for ``lip_sync_video`` becomes a still video (deleted at
    the end); anything else as it is."""
    if not _is_photo_upload(file, service):
        yield file
        return
    still = _UploadStill(Path(file))
    try:
        yield still.make()
    finally:
        still.close()


@contextlib.asynccontextmanager
async def async_photo_upload(file: Any, service: str) -> AsyncIterator[Any]:
    """:func:`photo_upload` for the async client: the encoding runs in a worker thread."""
    import anyio.to_thread

    if not _is_photo_upload(file, service):
        yield file
        return
    still = _UploadStill(Path(file))
    try:
        yield await anyio.to_thread.run_sync(still.make)
    finally:
        still.close()


def photo_size(path: Path) -> tuple[int, int] | None:
    """The screen size a photo's still video has (even, capped), or None when it cannot be read
    here (no PyAV, or not a photo)."""
    try:
        frame = _displayed(path)
    except (ConfigurationError, InvalidRequestError):
        return None
    return frame.width, frame.height
