"""The passthrough renderer: speech muxed onto the source video. THE MOUTH DOES NOT MOVE.

The output is the uploaded video (or still image) looped or trimmed to the speech length
(``backway`` 1 loops from the start, 2 plays back and forth; ``drive_mode`` "random" starts at
a seeded random frame), scaled to cover ``screen_width``×``screen_height`` and centre-cropped,
with the speech (uploaded audio, or offline text-to-speech of the text) at ``volume``/100 as its
sound track.
The video is never cut to the audio: the audio is padded with silence to the last frame.

It is honest about what it is: no lip sync. The ``lipsync`` renderer does that.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

from . import media
from .base import (
    AudioSpeech,
    ProgressFn,
    RenderError,
    RenderJob,
    RenderResult,
    TtsSpeech,
    VoiceInfo,
)
from .speech import AUDITION_TEXT, Catalogue, SpeechError, default_catalogue


class Progress:
    """Maps a stage's 0..1 onto a percent range and calls the callback only on change."""

    def __init__(self, fn: ProgressFn) -> None:
        self._fn = fn
        self._last = -1

    def __call__(self, percent: float) -> None:
        p = max(0, min(100, int(percent)))
        if p > self._last:
            self._last = p
            self._fn(p)


def speech_audio(job: RenderJob, catalogue: Catalogue) -> Path:
    """The speech of ``job`` as an audio file: the upload, or TTS into ``job.work_dir``."""
    if isinstance(job.speech, AudioSpeech):
        try:
            media.probe(job.speech.audio_path, "audio")
        except media.MediaError as e:
            raise RenderError(f"the audio cannot be used: {e.reason}") from None
        return job.speech.audio_path
    speech: TtsSpeech = job.speech
    job.work_dir.mkdir(parents=True, exist_ok=True)
    out = job.work_dir / f"{job.task_id or 'speech'}-tts.wav"
    try:
        catalogue.synthesize(speech.text, speech.voice_id, out, speed=speech.speed,
                             pitch=speech.pitch)
    except SpeechError as e:
        raise RenderError(f"text-to-speech failed: {e}") from None
    return out


def _audio_chunks(path: Path, volume: float) -> Iterator[media.Samples]:
    try:
        yield from media.iter_audio(path, media.AUDIO_RATE, volume)
    except media.MediaError as e:
        raise RenderError(f"the audio cannot be used: {e.reason}") from None


class PassthroughRenderer:
    """Source video + speech, no lip movement (see the module docstring)."""

    name = "passthrough"

    # superfast: ~2.5× the speed of veryfast for ~2× the bytes; a local sandbox wants speed.
    def __init__(self, catalogue: Catalogue | None = None, crf: int = 23,
                 preset: str = "superfast") -> None:
        self.catalogue = catalogue if catalogue is not None else default_catalogue()
        self._crf = crf
        self._preset = preset

    def voices(self) -> Sequence[VoiceInfo]:
        return self.catalogue.voices()

    def audition(self, voice_id: str, out_path: Path) -> None:
        info = self.catalogue.get(voice_id)
        if info is None:
            raise RenderError(f"unknown voice {voice_id!r}")
        out_path = Path(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        wav = out_path.with_name(f".{out_path.stem}.audition.wav")
        try:
            syn = self.catalogue.synthesize(AUDITION_TEXT.get(info.lang, AUDITION_TEXT["en"]),
                                            voice_id, wav)
            if out_path.suffix.lower() == ".wav":
                wav.replace(out_path)
            else:
                media.write_audio(out_path, media.load_audio(wav, syn.sample_rate),
                                  syn.sample_rate)
        except SpeechError as e:
            raise RenderError(f"text-to-speech failed: {e}") from None
        finally:
            wav.unlink(missing_ok=True)

    def render(self, job: RenderJob, progress: ProgressFn) -> RenderResult:
        report = Progress(progress)
        report(1)
        self._check_cancel(job)
        audio_path = speech_audio(job, self.catalogue)
        report(10)
        self._check_cancel(job)
        try:
            n_samples = media.audio_sample_count(audio_path)
        except media.MediaError as e:
            raise RenderError(f"the audio cannot be used: {e.reason}") from None
        if n_samples == 0:
            raise RenderError("the speech is empty (no audio samples)")
        width, height = media.even(job.width), media.even(job.height)
        try:
            source = media.FrameSource(job.video_path, width, height)
        except media.MediaError as e:
            raise RenderError(f"the video cannot be used: {e.reason}") from None
        fps = source.fps
        n_frames = max(1, math.ceil(n_samples * fps / media.AUDIO_RATE - 1e-9))
        start = source.start_frame(job.drive_mode, job.seed)
        job.output_video.parent.mkdir(parents=True, exist_ok=True)
        preview: media.Frame | None = None
        preview_at = n_frames // 2  # a frame from the middle: past any fade-in of the source
        try:
            with media.Mp4Writer(job.output_video, width, height, fps, crf=self._crf,
                                 preset=self._preset) as writer:
                audio = _audio_chunks(audio_path, job.volume / 100.0)
                for i, frame in enumerate(source.frames(n_frames, job.backway, start)):
                    if i % 10 == 0:
                        self._check_cancel(job)
                    writer.write_frame(frame)
                    if i == preview_at:
                        preview = frame.copy()
                    due = writer.audio_due()
                    while writer.samples_written < due:
                        chunk = next(audio, None)
                        if chunk is None:
                            break
                        writer.write_audio(chunk)
                    report(10 + 88 * (i + 1) / n_frames)
                for chunk in audio:  # the speech's rounding tail (< 1 frame)
                    writer.write_audio(chunk[: max(0, writer.audio_due() - writer.samples_written)])
        except media.MediaError as e:
            job.output_video.unlink(missing_ok=True)
            raise RenderError(f"the video cannot be used: {e.reason}") from None
        except BaseException:
            job.output_video.unlink(missing_ok=True)
            raise
        if preview is None:
            raise RenderError("the video produced no frames")
        media.write_jpeg(job.output_preview, preview)
        report(100)
        return RenderResult(duration_ms=round(n_frames / fps * 1000))

    @staticmethod
    def _check_cancel(job: RenderJob) -> None:
        if job.cancel():
            raise RenderError("the task was cancelled")
