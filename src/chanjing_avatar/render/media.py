"""Streaming video and audio I/O on PyAV (which bundles FFmpeg with libx264 and aac).

Nothing here holds a whole video in memory: frames are decoded, scaled and encoded one at a time.
The pieces:

- :func:`probe` — is this a usable video (or still image) / audio file, and what is it?
- :class:`FrameSource` — source frames scaled to an output size, looped (``backway`` 1) or played
  back and forth (``backway`` 2) from a start frame, for as many frames as asked.
- :func:`audio_sample_count`, :func:`iter_audio`, :func:`load_audio` — audio decoded, mixed to
  mono and resampled, with a volume gain.
- :class:`Mp4Writer` — H.264 (libx264) + AAC mp4 written frame by frame, audio interleaved.
- :func:`write_jpeg` — a frame as a JPEG file.

Scaling choice: frames are scaled to *cover* the output size (keeping the aspect ratio) and
centre-cropped, so the output has no black bars; the face of a typical portrait or landscape clip
stays in the middle.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import av
import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.uint8]  # (height, width, 3) RGB
Samples = npt.NDArray[np.float32]  # mono, -1..1

AUDIO_RATE = 48_000  # output audio sample rate (mono AAC)
DEFAULT_FPS = Fraction(25)  # for still images and sources without a usable rate
MAX_FPS = Fraction(60)
# Bytes of scaled frames FrameSource may keep: a whole short source is cached when it fits (fast
# back-and-forth); a longer one is reversed by re-decoding chunks of this size.
FRAME_CACHE_BYTES = 128 * 1024 * 1024

_IMAGE_FORMATS = frozenset({"image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe"})


class MediaError(Exception):
    """The file is not usable media; ``str(err)`` (and ``reason``) says why, for humans."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MediaInfo:
    kind: Literal["video", "image", "audio"]
    format_name: str
    duration_s: float  # 0 for a still image
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: Fraction = DEFAULT_FPS  # output rate to use for this source
    video_codec: str = ""
    audio_codec: str = ""
    sample_rate: int = 0
    channels: int = 0

    @property
    def is_image(self) -> bool:
        return self.kind == "image"


def _open(path: Path | str) -> Any:
    try:
        return av.open(str(path), metadata_errors="ignore")
    except FileNotFoundError:
        raise MediaError("file not found") from None
    except av.error.InvalidDataError:
        raise MediaError("not a media file: the format could not be recognised") from None
    except (av.error.FFmpegError, OSError) as e:
        raise MediaError(f"cannot open the file: {e}") from None


def _video_streams(container: Any) -> list[Any]:
    # Cover art in an mp3/m4a is a "video" stream with the attached_pic disposition: not video.
    out = []
    for s in container.streams.video:
        if s.disposition & av.stream.Disposition.attached_pic:
            continue
        out.append(s)
    return out


def _duration_s(container: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000
    return 0.0


def _clean_fps(rate: Fraction | None) -> Fraction:
    if rate is None or rate <= 0:
        return DEFAULT_FPS
    rate = Fraction(rate)
    if rate > MAX_FPS:
        return MAX_FPS
    if rate < 1:
        return Fraction(1)
    return rate


def probe(path: Path | str, expect: Literal["video", "audio"]) -> MediaInfo:
    """Check that ``path`` is decodable media of the ``expect``-ed kind and describe it.

    ``expect="video"`` accepts videos and still images (jpg/png: one frame, duration 0). A frame (or
    audio packet) is actually decoded, so a truncated or corrupt file fails here rather than in the
    renderer. Raises :class:`MediaError` with a human reason.
    """
    container = _open(path)
    try:
        fmt = container.format.name
        vstreams = _video_streams(container)
        astreams = list(container.streams.audio)
        if expect == "video":
            if not vstreams:
                if astreams:
                    raise MediaError("not a video: the file only has audio")
                raise MediaError("not a video: the file has no video stream")
            vs = vstreams[0]
            frame = _first_frame(container, vs)
            if frame is None:
                raise MediaError("not a video: no frame could be decoded")
            image = fmt in _IMAGE_FORMATS
            duration = 0.0 if image else _duration_s(container, vs)
            if not image and duration <= 0:
                duration = 0.0
            return MediaInfo(
                kind="image" if image else "video",
                format_name=fmt,
                duration_s=duration,
                has_video=True,
                has_audio=bool(astreams),
                width=frame.width,
                height=frame.height,
                fps=DEFAULT_FPS if image else _clean_fps(vs.average_rate or vs.base_rate),
                video_codec=vs.codec_context.name,
                audio_codec=astreams[0].codec_context.name if astreams else "",
            )
        if not astreams:
            if vstreams:
                raise MediaError("not an audio file: the file has no audio stream (it is a video "
                                 "or an image)")
            raise MediaError("not an audio file: the file has no audio stream")
        aus = astreams[0]
        if not _decodes_audio(container, aus):
            raise MediaError("not an audio file: no audio could be decoded")
        duration = _duration_s(container, aus)
        return MediaInfo(
            kind="audio",
            format_name=fmt,
            duration_s=duration,
            has_video=bool(vstreams),
            has_audio=True,
            audio_codec=aus.codec_context.name,
            sample_rate=aus.codec_context.sample_rate or 0,
            channels=aus.codec_context.channels or 0,
        )
    except MediaError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as e:
        raise MediaError(f"the file cannot be decoded: {e}") from None
    finally:
        container.close()


def _first_frame(container: Any, stream: Any) -> Any:
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as e:
        raise MediaError(f"not a video: decoding failed ({e})") from None
    return None


def _decodes_audio(container: Any, stream: Any) -> bool:
    try:
        for _ in container.decode(stream):
            return True
    except av.error.FFmpegError as e:
        raise MediaError(f"not an audio file: decoding failed ({e})") from None
    return False


# --------------------------------------------------------------------------------------------
# Video frames


def cover_size(src_w: int, src_h: int, width: int, height: int) -> tuple[int, int]:
    """Size to scale a src_w×src_h frame to so that it covers width×height keeping its aspect."""
    scale = max(width / src_w, height / src_h)
    return max(width, math.ceil(src_w * scale - 1e-6)), max(height, math.ceil(src_h * scale - 1e-6))


def fit_frame(frame: Any, width: int, height: int) -> Frame:
    """An av.VideoFrame scaled to cover width×height and centre-cropped, as RGB uint8."""
    fw, fh = frame.width, frame.height
    sw, sh = cover_size(fw, fh, width, height)
    if sw * sh > fw * fh:
        # Upscaling: crop the source first, so swscale makes only the pixels we keep.
        scale = max(width / fw, height / fh)
        cw, ch = min(fw, max(1, round(width / scale))), min(fh, max(1, round(height / scale)))
        x0, y0 = (fw - cw) // 2, (fh - ch) // 2
        rgb: Frame = frame.to_ndarray(format="rgb24")
        return resize(rgb[y0:y0 + ch, x0:x0 + cw], width, height, "BILINEAR")
    arr: Frame = frame.reformat(width=sw, height=sh, format="rgb24",
                                interpolation="BILINEAR").to_ndarray()
    if sw == width and sh == height:
        return arr
    x0, y0 = (sw - width) // 2, (sh - height) // 2
    return np.ascontiguousarray(arr[y0:y0 + height, x0:x0 + width])


def resize(rgb: Frame, width: int, height: int, interpolation: str = "AREA") -> Frame:
    """An RGB frame resized to width×height (no aspect handling) with FFmpeg's swscale."""
    frame: Any = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    out: Frame = frame.reformat(width=width, height=height, format="rgb24",
                                interpolation=interpolation).to_ndarray()
    return out


def frame_order(n_src: int, count: int, backway: int, start: int) -> Iterator[tuple[int, int]]:
    """Runs ``(first, last)`` of source frame indices (inclusive; last < first runs backwards)
    covering ``count`` output frames: backway 1 loops from frame 0, 2 goes back and forth."""
    if n_src <= 0 or count <= 0:
        return
    period = n_src if backway != 2 or n_src == 1 else 2 * n_src - 2
    pos = start % period
    left = count
    while left > 0:
        if pos < n_src:  # forward leg: pos .. n_src-1
            first = pos
            last = min(n_src - 1, first + left - 1)
            step = last - first + 1
        else:  # backward leg: position pos is index period - pos, down to 1
            first = period - pos
            last = max(1, first - left + 1)
            step = first - last + 1
        yield first, last
        left -= step
        pos = (pos + step) % period


class FrameSource:
    """Frames of a video (or still image) scaled to width×height, streamed.

    Memory: one decoded frame at a time when playing forward. Playing backwards (backway 2) keeps a
    chunk of scaled frames (at most :data:`FRAME_CACHE_BYTES`): if the whole source fits, it is
    cached once and reused; otherwise each backward chunk is re-decoded from the keyframe before it.
    Either way memory is bounded by the cache size, never by the output length.

    Frames are numbered in presentation order from a packet index built when opening (demuxing
    only, no decoding), so seeking lands on exact frames.
    """

    def __init__(self, path: Path | str, width: int, height: int,
                 cache_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.width, self.height = width, height
        self.info = probe(self.path, "video")
        self.fps = self.info.fps
        if cache_bytes is None:
            cache_bytes = FRAME_CACHE_BYTES
        self._keyframes: list[int] = [0]
        self._pts = self._index() if not self.info.is_image else [0]
        self._pts_index = {p: i for i, p in enumerate(self._pts)}
        self.frame_count = max(1, len(self._pts))
        frame_bytes = width * height * 3
        self._chunk = max(1, cache_bytes // frame_bytes)
        self._cache: list[Frame] | None = None
        self._cache_all = self.frame_count <= self._chunk
        self._image: Frame | None = None

    @property
    def duration_s(self) -> float:
        return 0.0 if self.info.is_image else float(self.frame_count / self.fps)

    def _index(self) -> list[int]:
        container = _open(self.path)
        keys: set[int] = set()
        try:
            vs = _video_streams(container)[0]
            pts: set[int] = set()
            for p in container.demux(vs):
                if p.pts is None or p.size == 0:
                    continue
                pts.add(p.pts)
                if p.is_keyframe:
                    keys.add(p.pts)
        finally:
            container.close()
        ordered = sorted(pts)
        self._keyframes = [i for i, p in enumerate(ordered) if p in keys] or [0]
        return ordered

    def start_frame(self, drive_mode: str, seed: int) -> int:
        """The start frame for ``drive_mode``: 0, or a seeded random frame for "random"."""
        if drive_mode == "random" and self.frame_count > 1:
            return random.Random(seed).randrange(1, self.frame_count)
        return 0

    def frames(self, count: int, backway: int = 1, start: int = 0) -> Iterator[Frame]:
        """``count`` output frames starting at source frame ``start``."""
        if self.info.is_image:
            image = self._still()
            for _ in range(count):
                yield image
            return
        previous: Frame | None = None
        for first, last in frame_order(self.frame_count, count, backway, start):
            want = abs(last - first) + 1
            run = self._forward(first, last + 1) if last >= first else self._backward(first, last)
            for frame in run:
                previous = frame
                want -= 1
                yield frame
            # Frames that would not decode: hold the last good one, so the count is exact.
            while want > 0 and previous is not None:
                want -= 1
                yield previous
            if previous is None:
                raise MediaError("not a video: no frame could be decoded")

    def _still(self) -> Frame:
        if self._image is None:
            container = _open(self.path)
            try:
                frame = _first_frame(container, _video_streams(container)[0])
                if frame is None:
                    raise MediaError("not a video: no frame could be decoded")
                self._image = fit_frame(frame, self.width, self.height)
            finally:
                container.close()
        return self._image

    def _ensure_cache(self) -> list[Frame]:
        if self._cache is None:
            self._cache = list(self._decode(0, self.frame_count))
            if not self._cache:
                raise MediaError("not a video: no frame could be decoded")
            # Fewer decodable frames than packets: pad with the last one so indices stay valid.
            while len(self._cache) < self.frame_count:
                self._cache.append(self._cache[-1])
        return self._cache

    def _forward(self, a: int, b: int) -> Iterator[Frame]:
        if self._cache_all:
            yield from self._ensure_cache()[a:b]
        else:
            yield from self._decode(a, b)

    def _backward(self, first: int, last: int) -> Iterator[Frame]:
        if self._cache_all:
            cache = self._ensure_cache()
            for i in range(first, last - 1, -1):
                yield cache[i]
            return
        hi = first + 1
        while hi > last:
            lo = max(last, hi - self._chunk)
            # Start the chunk at a keyframe when one fits: its decode then wastes no frames.
            k = bisect.bisect_right(self._keyframes, hi - 1) - 1
            if k >= 0 and lo <= self._keyframes[k] < hi:
                lo = max(last, self._keyframes[k])
            chunk = list(self._decode(lo, hi))
            yield from reversed(chunk)
            del chunk
            hi = lo

    def _decode(self, a: int, b: int) -> Iterator[Frame]:
        """Scaled frames a..b-1 (the last good frame repeated if the file ends early)."""
        got = 0
        last: Frame | None = None
        for from_start in (a == 0, True):
            overshot = False
            for idx, frame in self._decoded(0 if from_start else a):
                if got == 0 and idx > a and not from_start:
                    overshot = True  # the seek landed past frame a: decode from the start
                    break
                if idx < a:
                    continue
                if idx >= b:
                    break
                last = fit_frame(frame, self.width, self.height)
                got += 1
                yield last
            if not overshot:
                break
        while last is not None and got < b - a:
            got += 1
            yield last

    def _decoded(self, a: int) -> Iterator[tuple[int, Any]]:
        """(index, av.VideoFrame) from the keyframe at or before frame ``a`` onwards."""
        container = _open(self.path)
        try:
            vs = _video_streams(container)[0]
            if a > 0:
                container.seek(self._pts[a], stream=vs, backward=True, any_frame=False)
            for seq, frame in enumerate(container.decode(vs)):
                idx = self._pts_index.get(frame.pts) if frame.pts is not None else None
                # Without timestamps only decode order from the start can number frames.
                yield (idx if idx is not None else (seq if a == 0 else -1)), frame
        except av.error.FFmpegError as e:
            raise MediaError(f"decoding the video failed: {e}") from None
        finally:
            container.close()


# --------------------------------------------------------------------------------------------
# Audio


def _resampled(path: Path | str, rate: int) -> Iterator[Samples]:
    container = _open(path)
    try:
        streams = list(container.streams.audio)
        if not streams:
            raise MediaError("not an audio file: the file has no audio stream")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in container.decode(streams[0]):
            for out in resampler.resample(frame):
                yield out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
        for out in resampler.resample(None):
            yield out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
    except av.error.FFmpegError as e:
        raise MediaError(f"decoding the audio failed: {e}") from None
    finally:
        container.close()


def audio_sample_count(path: Path | str, rate: int = AUDIO_RATE) -> int:
    """Exact number of mono samples at ``rate`` (decodes the file; container durations of VBR mp3
    are estimates)."""
    return sum(len(chunk) for chunk in _resampled(path, rate))


def iter_audio(path: Path | str, rate: int = AUDIO_RATE, volume: float = 1.0) -> Iterator[Samples]:
    """Mono float32 chunks at ``rate`` with a linear ``volume`` gain, streamed."""
    for chunk in _resampled(path, rate):
        if volume != 1.0:
            chunk = np.clip(chunk * np.float32(volume), -1.0, 1.0).astype(np.float32)
        yield chunk


def load_audio(path: Path | str, rate: int = AUDIO_RATE, volume: float = 1.0) -> Samples:
    """The whole audio as one mono float32 array (speech is small: 192 kB per second at 48 kHz)."""
    chunks = list(iter_audio(path, rate, volume))
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def write_wav(path: Path | str, samples: Samples, rate: int) -> None:
    """Mono 16-bit PCM wav."""
    import wave

    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def write_audio(path: Path | str, samples: Samples, rate: int) -> None:
    """Audio file by suffix: .wav (PCM), .mp3, .m4a (AAC)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".wav":
        write_wav(path, samples, rate)
        return
    codec = {".mp3": "libmp3lame", ".m4a": "aac", ".aac": "aac"}.get(suffix)
    if codec is None:
        raise ValueError(f"unsupported audio suffix {suffix!r}; use .wav, .mp3 or .m4a")
    fmt = "mp4" if suffix == ".m4a" else None
    with av.open(str(path), "w", format=fmt) as out:
        stream: Any = out.add_stream(codec, rate=rate, layout="mono")
        _encode_samples(out, stream, samples, 0, rate)
        for packet in stream.encode(None):
            out.mux(packet)


def _encode_samples(out: Any, stream: Any, samples: Samples, pts: int, rate: int) -> None:
    if len(samples) == 0:
        return
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1).astype(np.float32, copy=False),
                                       format="flt", layout="mono")
    frame.sample_rate = rate
    frame.pts = pts
    frame.time_base = Fraction(1, rate)
    for packet in stream.encode(frame):
        out.mux(packet)


# --------------------------------------------------------------------------------------------
# Encoding


def even(n: int) -> int:
    """H.264 4:2:0 needs even dimensions: odd sizes are rounded up by one pixel."""
    return n + (n % 2)


class Mp4Writer:
    """An H.264 + AAC mp4, written frame by frame with the audio interleaved.

    ``write_frame`` takes RGB frames of exactly width×height (even numbers, see :func:`even`);
    ``write_audio`` takes mono float32 samples at ``audio_rate``. On ``close`` the audio is padded
    with silence to the video length (never cut frames to the audio).
    """

    def __init__(self, path: Path | str, width: int, height: int, fps: Fraction,
                 audio_rate: int = AUDIO_RATE, crf: int = 23, preset: str = "veryfast",
                 audio: bool = True, gop: int | None = None) -> None:
        if width % 2 or height % 2:
            raise ValueError("H.264 (4:2:0) needs an even width and height")
        self.path = Path(path)
        self.width, self.height = width, height
        self.fps = Fraction(fps)
        self.audio_rate = audio_rate
        self._out = av.open(str(self.path), "w", format="mp4",
                            options={"movflags": "+faststart"})
        self._vs = self._out.add_stream("libx264", rate=self.fps)
        self._vs.width, self._vs.height = width, height
        self._vs.pix_fmt = "yuv420p"
        self._vs.options = {"preset": preset, "crf": str(crf)}
        if gop is not None:
            self._vs.gop_size = gop
        self._vs.thread_type = "AUTO"
        self._as = None
        if audio:
            self._as = self._out.add_stream("aac", rate=audio_rate, layout="mono")
            self._as.bit_rate = 128_000
        self.frames_written = 0
        self.samples_written = 0
        self._closed = False

    def write_frame(self, rgb: Frame) -> None:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self.frames_written
        frame.time_base = 1 / self.fps
        for packet in self._vs.encode(frame):
            self._out.mux(packet)
        self.frames_written += 1

    def write_audio(self, samples: Samples) -> None:
        if self._as is None or len(samples) == 0:
            return
        _encode_samples(self._out, self._as, samples, self.samples_written, self.audio_rate)
        self.samples_written += len(samples)

    @property
    def video_seconds(self) -> float:
        return float(self.frames_written / self.fps)

    def audio_due(self, frames: int | None = None) -> int:
        """Samples needed to cover ``frames`` video frames (default: those written)."""
        n = self.frames_written if frames is None else frames
        return math.ceil(n * self.audio_rate / self.fps - 1e-9)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._as is not None:
                pad = self.audio_due() - self.samples_written
                while pad > 0:
                    n = min(pad, self.audio_rate)
                    self.write_audio(np.zeros(n, np.float32))
                    pad -= n
                for packet in self._as.encode(None):
                    self._out.mux(packet)
            for packet in self._vs.encode(None):
                self._out.mux(packet)
        finally:
            self._out.close()

    def abort(self) -> None:
        """Close without flushing (the file is left incomplete; the caller removes it)."""
        if not self._closed:
            self._closed = True
            self._out.close()

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if et is None:
            self.close()
        else:
            self.abort()


def write_jpeg(path: Path | str, rgb: Frame) -> None:
    """A high-quality JPEG of an RGB frame (about 36 dB PSNR on a photo)."""
    h, w = rgb.shape[:2]
    cc = av.CodecContext.create("mjpeg", "w")
    cc.width, cc.height = w, h
    cc.pix_fmt = "yuvj420p"
    cc.time_base = Fraction(1, 25)
    # Constant quantiser at the best level; the default rate control gives ~33 dB mush.
    cc.qscale = True
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    frame = frame.reformat(format="yuvj420p")
    frame.pts = 0
    packets = [*cc.encode(frame), *cc.encode(None)]
    Path(path).write_bytes(b"".join(bytes(p) for p in packets))
