"""What every renderer does around its own frames: the speech, progress by phase, cancel checks,
the streamed H.264 + AAC encode and the preview.

A renderer is then four steps, each from here except the third::

    run = Run(job, progress)                      # reports Phase.STARTED, checks cancel
    speech = prepare_speech(job, catalogue)       # TTS or the upload → a file (+ phoneme timings)
    run.reached(Phase.SPEECH)
    plan = open_source(job, speech.sample_count())
    run.reached(Phase.FRAMES)
    frames = ...                                  # the renderer's own: an iterator of RGB frames
    return encode(job, run, plan, frames, speech.chunks(), encoding)

Every media failure becomes a :class:`RenderError` saying which input cannot be used; a failed or
cancelled encode leaves no output file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

from . import media
from .base import AudioSpeech, ProgressFn, RenderError, RenderJob, RenderResult
from .speech import AUDITION_TEXT, Catalogue, SpeechError
from .speech.base import PhonemeTiming

CANCELLED = "the task was cancelled"
_CANCEL_EVERY = 10  # frames between cancel checks while encoding


class Phase(IntEnum):
    """The steps of a render, each valued at the percent reported once it is reached.

    Encoding fills ``FRAMES``..``ENCODED`` one step per frame: it is nearly all of the time.
    """

    STARTED = 1  # the job is taken
    SPEECH = 8  # the speech is a file: TTS done, or the upload checked
    FRAMES = 10  # the source is open and the frames are planned; encoding starts
    ENCODED = 98  # every frame written
    DONE = 100  # the preview written


class Run:
    """One render's progress (by phase, then by frame; never falling) and its cancel checks."""

    def __init__(self, job: RenderJob, progress: ProgressFn) -> None:
        self._job = job
        self._fn = progress
        self._last = -1
        self.reached(Phase.STARTED)

    def reached(self, phase: Phase) -> None:
        """Report ``phase``; before the end, stop here if the task was cancelled."""
        self._report(phase)
        if phase is not Phase.DONE:
            self.check_cancel()

    def frame_done(self, index: int, total: int) -> None:
        self._report(Phase.FRAMES + (Phase.ENCODED - Phase.FRAMES) * (index + 1) / total)

    def check_cancel(self) -> None:
        if self._job.cancel():
            raise RenderError(CANCELLED)

    def _report(self, percent: float) -> None:
        p = max(0, min(100, int(percent)))
        if p > self._last:
            self._last = p
            self._fn(p)


@contextmanager
def unusable(what: Literal["audio", "video"]) -> Iterator[None]:
    """A media failure inside becomes the user-facing "the <what> cannot be used: <reason>"."""
    try:
        yield
    except media.MediaError as e:
        raise RenderError(f"the {what} cannot be used: {e.reason}") from None


# --------------------------------------------------------------------------------------------
# Speech


@dataclass(frozen=True)
class Speech:
    """The speech of a job as an audio file, with the job's volume as a linear gain."""

    path: Path
    gain: float = 1.0
    phonemes: tuple[PhonemeTiming, ...] = ()  # from TTS engines that time their phonemes

    def sample_count(self) -> int:
        """Mono samples at ``media.AUDIO_RATE`` (decoded, streamed)."""
        with unusable("audio"):
            return _not_empty(media.audio_sample_count(self.path))

    def load(self) -> media.Samples:
        """The whole speech at ``media.AUDIO_RATE`` with the gain (small: 192 kB a second)."""
        with unusable("audio"):
            samples = media.load_audio(self.path, media.AUDIO_RATE, self.gain)
        _not_empty(samples.size)
        return samples

    def chunks(self) -> Iterator[media.Samples]:
        """The speech with the gain, streamed in decoder-sized chunks."""
        with unusable("audio"):
            yield from media.iter_audio(self.path, media.AUDIO_RATE, self.gain)


def _not_empty(n_samples: int) -> int:
    if n_samples == 0:
        raise RenderError("the speech is empty (no audio samples)")
    return n_samples


def prepare_speech(job: RenderJob, catalogue: Catalogue) -> Speech:
    """The speech of ``job``: the upload (checked), or TTS of its text into ``job.work_dir``."""
    gain = job.volume / 100.0
    if isinstance(job.speech, AudioSpeech):
        with unusable("audio"):
            media.probe(job.speech.audio_path, "audio")
        return Speech(job.speech.audio_path, gain)
    sp = job.speech
    job.work_dir.mkdir(parents=True, exist_ok=True)
    out = job.work_dir / f"{job.task_id or 'speech'}-tts.wav"
    try:
        syn = catalogue.synthesize(sp.text, sp.voice_id, out, speed=sp.speed, pitch=sp.pitch)
    except SpeechError as e:
        raise RenderError(f"text-to-speech failed: {e}") from None
    return Speech(out, gain, syn.phonemes)


def audition(catalogue: Catalogue, voice_id: str, out_path: Path) -> None:
    """A short sample of ``voice_id`` in ``out_path`` (wav, mp3 or m4a by suffix)."""
    info = catalogue.get(voice_id)
    if info is None:
        raise RenderError(f"unknown voice {voice_id!r}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    wav = out_path.with_name(f".{out_path.stem}.audition.wav")
    try:
        syn = catalogue.synthesize(AUDITION_TEXT.get(info.lang, AUDITION_TEXT["en"]), voice_id, wav)
        if out_path.suffix.lower() == ".wav":
            wav.replace(out_path)
        else:
            media.write_audio(out_path, media.load_audio(wav, syn.sample_rate), syn.sample_rate)
    except SpeechError as e:
        raise RenderError(f"text-to-speech failed: {e}") from None
    finally:
        wav.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Frames and the encode


@dataclass(frozen=True)
class Plan:
    """The opened source and the output's frame grid: as many frames as cover the speech."""

    source: media.FrameSource
    width: int
    height: int
    fps: Fraction
    n_frames: int
    start: int  # the source frame to start at (``drive_mode``)


def open_source(job: RenderJob, n_samples: int) -> Plan:
    """Open the job's video or image at the output size and plan frames for ``n_samples``."""
    width, height = media.even(job.width), media.even(job.height)
    with unusable("video"):
        source = media.FrameSource(job.video_path, width, height)
    fps = source.fps
    n_frames = max(1, math.ceil(n_samples * fps / media.AUDIO_RATE - 1e-9))
    return Plan(source, width, height, fps, n_frames, source.start_frame(job.drive_mode, job.seed))


@dataclass(frozen=True)
class Encoding:
    """x264 settings. ``superfast``: ~2.5× the speed of veryfast for ~2× the bytes; a local
    sandbox wants speed."""

    crf: int = 23
    preset: str = "superfast"


class _Feed:
    """Audio chunks handed out by count, so the sound track follows the frames sample for sample."""

    def __init__(self, chunks: Iterator[media.Samples]) -> None:
        self._chunks = chunks
        self._head = np.zeros(0, np.float32)

    def take(self, n: int) -> media.Samples:
        parts: list[media.Samples] = []
        while n > 0:
            if self._head.size == 0:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._head = chunk
            part, self._head = self._head[:n], self._head[n:]
            parts.append(part)
            n -= part.size
        return np.concatenate(parts) if parts else self._head[:0]


def encode(
    job: RenderJob,
    run: Run,
    plan: Plan,
    frames: Iterable[media.Frame],
    audio: Iterator[media.Samples],
    encoding: Encoding,
    message: str = "success",
) -> RenderResult:
    """Write ``frames`` with ``audio`` interleaved to ``job.output_video`` (the audio padded with
    silence to the last frame) and the middle frame to ``job.output_preview``."""
    job.output_video.parent.mkdir(parents=True, exist_ok=True)
    preview: media.Frame | None = None
    preview_at = plan.n_frames // 2  # a frame from the middle: past any fade-in of the source
    feed = _Feed(audio)
    try:
        with unusable("video"), media.Mp4Writer(
            job.output_video, plan.width, plan.height, plan.fps, crf=encoding.crf,
            preset=encoding.preset,
        ) as writer:
            for i, frame in enumerate(frames):
                if i % _CANCEL_EVERY == 0:
                    run.check_cancel()
                writer.write_frame(frame)
                if i == preview_at:
                    preview = frame.copy()
                writer.write_audio(feed.take(writer.audio_due() - writer.samples_written))
                run.frame_done(i, plan.n_frames)
            written = writer.frames_written
    except BaseException:
        job.output_video.unlink(missing_ok=True)
        raise
    if preview is None:
        raise RenderError("the video produced no frames")
    media.write_jpeg(job.output_preview, preview)
    run.reached(Phase.DONE)
    return RenderResult(duration_ms=round(written / plan.fps * 1000), message=message)
