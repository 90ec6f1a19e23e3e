"""The lip-sync renderer: speech → mouth track → tracked face → warped mouth, streamed to H.264.

Frames are decoded, rendered and encoded one at a time (memory does not grow with the length);
the speech itself is small and held whole (about 190 kB per second).
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import numpy as np

from .. import media
from ..base import AudioSpeech, ProgressFn, RenderError, RenderJob, RenderResult, VoiceInfo
from ..passthrough import PassthroughRenderer, Progress
from ..speech import Catalogue, SpeechError, default_catalogue
from ..speech.base import PhonemeTiming
from ..speech.voices import add_neural_voices
from .face import FaceTracker, LandmarkSmoother, Points, apply_affine, inner_gap
from .idle import IdleMotion, apply_head, close_eyes
from .library import MouthLibrary
from .mouth import Appearance, render_mouth, sample_appearance
from .neutral import LowerFacePaster
from .timeline import MouthTrack, build_track

if TYPE_CHECKING:
    from .neural import NeuralLipSync

# Seconds of a source video searched for a closed-mouth reference frame and for the person's own
# open mouths (the library).
_REF_SCAN_S = 6.0
NO_FACE = "no face found in the video or image: upload a clip with one clearly visible face"


_T = TypeVar("_T")
log = logging.getLogger("chanjing_avatar.render.lipsync")


def _prefetch(frames: Iterator[_T], depth: int) -> Iterator[_T]:
    """Run ``frames`` (a pipeline stage) in a thread, up to ``depth`` items ahead of its consumer.

    Decoding, FaceMesh, OpenCV and x264 release the GIL, so the stages overlap on two cores while
    memory stays bounded by the queue.
    """
    q: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for frame in frames:
                if not put(("frame", frame)):
                    break
            else:
                put(("end", None))
        except BaseException as e:  # handed to the consumer, which re-raises it
            put(("error", e))
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="lipsync-frames", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "end":
                return
            if kind == "error":
                assert isinstance(item, BaseException)
                raise item
            yield cast(_T, item)
    finally:
        stop.set()
        worker.join(timeout=30)


def _measure_look(img: media.Frame, pts: Points) -> Appearance:
    """The face's colours; the refined mesh (with irises) lets the teeth match the eye whites."""
    with FaceTracker(static=True, refine=True) as tracker:
        fine = tracker.detect(img)
    return sample_appearance(img, pts if fine is None else fine)


class LipsyncRenderer:
    """Offline lip sync on the CPU (``model`` 0; ``model`` 1: user ONNX weights if configured)."""

    name = "lipsync"

    def __init__(
        self,
        catalogue: Catalogue | None = None,
        crf: int = 23,
        preset: str = "superfast",
        neural_model: Path | None = None,
        neural_sha256: str | None = None,
    ) -> None:
        if catalogue is None:
            catalogue = default_catalogue()
            add_neural_voices(catalogue)
        self.catalogue = catalogue
        self._crf = crf
        self._preset = preset
        env_model = os.environ.get("CHANJING_LIPSYNC_MODEL1_ONNX")
        self._neural_model = neural_model or (Path(env_model) if env_model else None)
        self._neural_sha256 = neural_sha256 or os.environ.get("CHANJING_LIPSYNC_MODEL1_SHA256")
        self._helper = PassthroughRenderer(self.catalogue, crf=crf, preset=preset)

    def voices(self) -> Sequence[VoiceInfo]:
        return self.catalogue.voices()

    def audition(self, voice_id: str, out_path: Path) -> None:
        self._helper.audition(voice_id, out_path)

    # ------------------------------------------------------------------------------------------

    def _speech(self, job: RenderJob) -> tuple[Path, tuple[PhonemeTiming, ...]]:
        if isinstance(job.speech, AudioSpeech):
            try:
                media.probe(job.speech.audio_path, "audio")
            except media.MediaError as e:
                raise RenderError(f"the audio cannot be used: {e.reason}") from None
            return job.speech.audio_path, ()
        sp = job.speech
        job.work_dir.mkdir(parents=True, exist_ok=True)
        out = job.work_dir / f"{job.task_id or 'speech'}-tts.wav"
        try:
            syn = self.catalogue.synthesize(
                sp.text, sp.voice_id, out, speed=sp.speed, pitch=sp.pitch
            )
        except SpeechError as e:
            raise RenderError(f"text-to-speech failed: {e}") from None
        return out, syn.phonemes

    def render(self, job: RenderJob, progress: ProgressFn) -> RenderResult:
        # BLAS threads spin against the encoder's and the tracker's: small solves got 100x slower.
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return self._render(job, progress)

    def _render(self, job: RenderJob, progress: ProgressFn) -> RenderResult:
        report = Progress(progress)
        report(1)
        self._check_cancel(job)
        message = "success"
        neural: NeuralLipSync | None = None
        if job.model == 1:
            if self._neural_model is None:
                message = "model 1 has no neural weights configured here; rendered with model 0"
            else:
                from .neural import NeuralLipSync

                neural = NeuralLipSync(self._neural_model, self._neural_sha256)
        audio_path, phonemes = self._speech(job)
        report(8)
        try:
            audio = media.load_audio(audio_path, media.AUDIO_RATE, job.volume / 100.0)
        except media.MediaError as e:
            raise RenderError(f"the audio cannot be used: {e.reason}") from None
        if audio.size == 0:
            raise RenderError("the speech is empty (no audio samples)")
        if neural is not None:
            neural.start(audio, media.AUDIO_RATE)
        width, height = media.even(job.width), media.even(job.height)
        try:
            source = media.FrameSource(job.video_path, width, height)
        except media.MediaError as e:
            raise RenderError(f"the video cannot be used: {e.reason}") from None
        fps = source.fps
        n_frames = max(1, math.ceil(audio.size * fps / media.AUDIO_RATE - 1e-9))
        # Loudness at the speech's own level: volume must not change the mouth.
        gain = job.volume / 100.0
        level = audio if gain == 1.0 else audio / max(gain, 1e-3)
        track = build_track(level, media.AUDIO_RATE, float(fps), n_frames, phonemes)
        del level
        start = source.start_frame(job.drive_mode, job.seed)
        report(10)
        try:
            if source.info.is_image:
                frames = self._still_frames(source, track, float(fps), job, neural)
            else:
                frames = self._video_frames(source, track, n_frames, start, job, neural)
            return self._encode(job, frames, n_frames, fps, width, height, audio, report, message)
        except media.MediaError as e:
            raise RenderError(f"the video cannot be used: {e.reason}") from None

    def _still_frames(
        self,
        source: media.FrameSource,
        track: MouthTrack,
        fps: float,
        job: RenderJob,
        neural: NeuralLipSync | None,
    ) -> Iterator[media.Frame]:
        still = next(iter(source.frames(1)))
        with FaceTracker(static=True, refine=True) as tracker:
            pts = tracker.detect(still)
        if pts is None:
            raise RenderError(NO_FACE)
        look = sample_appearance(still, pts)
        log.info("mouth interior: synthesised from the face's colours (a still image)")
        idle = IdleMotion(pts, (still.shape[1], still.shape[0]), fps, job.seed)
        for i in range(len(track)):
            m = idle.head(i)
            frame = apply_head(still, m)
            p = apply_affine(m, pts)
            close_eyes(frame, p, idle.blink(i))
            yield self._mouth(frame, p, track, i, look, neural, fps)

    def _video_frames(
        self,
        source: media.FrameSource,
        track: MouthTrack,
        n_frames: int,
        start: int,
        job: RenderJob,
        neural: NeuralLipSync | None,
    ) -> Iterator[media.Frame]:
        fps = float(source.fps)
        # Reference: the most closed mouth among the first seconds of the source.
        best: tuple[float, media.Frame, np.ndarray] | None = None
        scan = min(source.frame_count, max(1, int(_REF_SCAN_S * fps)))
        library: MouthLibrary | None = None
        with FaceTracker() as tracker:
            for k, frame in enumerate(source.frames(scan, 1, 0)):
                if k % 2:
                    continue  # every other frame is enough
                pts = tracker.detect(frame)
                if pts is not None:
                    if library is None:
                        library = MouthLibrary(pts, (frame.shape[1], frame.shape[0]))
                    library.add(frame, pts)
                    g = inner_gap(pts)
                    if best is None or g < best[0] - 1e-4:
                        best = (g, frame.copy(), pts)
        if best is None or library is None:
            raise RenderError(NO_FACE)
        ref_img, ref_pts = best[1], best[2]
        look = _measure_look(ref_img, ref_pts)
        paster = LowerFacePaster(ref_img, ref_pts)
        if library.usable:
            log.info(
                "mouth interior: the person's own, from %d mouth shapes of the source "
                "video (widest opening %.2f)",
                len(library.samples),
                library.widest,
            )
        else:
            log.info(
                "mouth interior: synthesised from the face's colours (the source's mouth "
                "opens to %.2f of its width at most)",
                library.widest,
            )
            library = None

        def tracked() -> Iterator[tuple[media.Frame, Points | None]]:
            smoother = LandmarkSmoother()
            with FaceTracker() as tracker:
                for frame in source.frames(n_frames, job.backway, start):
                    pts = tracker.detect(frame)
                    if pts is None:
                        smoother.reset()
                    yield frame.copy(), None if pts is None else smoother(pts).copy()

        # Decode + track run one stage ahead of paste + warp (and the encoder after both).
        for i, (out, pts) in enumerate(_prefetch(tracked(), 4)):
            if pts is None:
                yield out  # the face is lost for a moment: show the source frame
                continue
            shown = paster.paste(out, pts)
            yield self._mouth(out, shown, track, i, look, neural, fps, library)

    def _mouth(
        self,
        frame: media.Frame,
        pts: np.ndarray,
        track: MouthTrack,
        i: int,
        look: Appearance,
        neural: NeuralLipSync | None,
        fps: float,
        library: MouthLibrary | None = None,
    ) -> media.Frame:
        if neural is not None:
            return neural.render_frame(frame, pts, i, fps)
        render_mouth(
            frame,
            pts,
            float(track.open[i]),
            float(track.round[i]),
            float(track.press[i]),
            look,
            library=library,
        )
        return frame

    def _encode(
        self,
        job: RenderJob,
        frames: Iterator[media.Frame],
        n_frames: int,
        fps: Fraction,
        width: int,
        height: int,
        audio: media.Samples,
        report: Progress,
        message: str,
    ) -> RenderResult:
        job.output_video.parent.mkdir(parents=True, exist_ok=True)
        preview: media.Frame | None = None
        preview_at = n_frames // 2
        try:
            with media.Mp4Writer(
                job.output_video, width, height, fps, crf=self._crf, preset=self._preset
            ) as writer:
                for i, frame in enumerate(_prefetch(frames, 4)):
                    if i % 10 == 0:
                        self._check_cancel(job)
                    writer.write_frame(frame)
                    if i == preview_at:
                        preview = frame.copy()
                    due = min(writer.audio_due(), audio.size)
                    if due > writer.samples_written:
                        writer.write_audio(audio[writer.samples_written : due])
                    report(10 + 88 * (i + 1) / n_frames)
                if writer.samples_written < audio.size:
                    writer.write_audio(audio[writer.samples_written : writer.audio_due()])
                written = writer.frames_written
        except BaseException:
            job.output_video.unlink(missing_ok=True)
            raise
        if preview is None:
            raise RenderError("the video produced no frames")
        media.write_jpeg(job.output_preview, preview)
        report(100)
        return RenderResult(duration_ms=round(written / fps * 1000), message=message)

    @staticmethod
    def _check_cancel(job: RenderJob) -> None:
        if job.cancel():
            raise RenderError("the task was cancelled")
