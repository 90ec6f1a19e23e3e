"""The lip-sync renderer: speech → mouth track → tracked face → warped mouth, streamed to H.264.

Frames are decoded, rendered and encoded one at a time (memory does not grow with the length);
the speech itself is small and held whole (about 190 kB per second).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import numpy as np

from .. import media
from ..base import ProgressFn, RenderError, RenderJob, RenderResult, VoiceInfo
from ..pipeline import Encoding, Phase, Run, audition, encode, open_source, prepare_speech
from ..speech import Catalogue, default_catalogue
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
        self._encoding = Encoding(crf, preset)
        env_model = os.environ.get("CHANJING_LIPSYNC_MODEL1_ONNX")
        self._neural_model = neural_model or (Path(env_model) if env_model else None)
        self._neural_sha256 = neural_sha256 or os.environ.get("CHANJING_LIPSYNC_MODEL1_SHA256")

    def voices(self) -> Sequence[VoiceInfo]:
        return self.catalogue.voices()

    def audition(self, voice_id: str, out_path: Path) -> None:
        audition(self.catalogue, voice_id, out_path)

    def render(self, job: RenderJob, progress: ProgressFn) -> RenderResult:
        # BLAS threads spin against the encoder's and the tracker's: small solves got 100x slower.
        # OpenCV's own pool likewise: the stages already keep both cores busy, and splitting each
        # remap across them cost CPU time and wall time.
        import cv2
        from threadpoolctl import threadpool_limits

        cv_threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                return self._render(job, progress)
        finally:
            cv2.setNumThreads(cv_threads)

    def _render(self, job: RenderJob, progress: ProgressFn) -> RenderResult:
        run = Run(job, progress)
        message = "success"
        neural: NeuralLipSync | None = None
        if job.model == 1:
            if self._neural_model is None:
                message = "model 1 has no neural weights configured here; rendered with model 0"
            else:
                from .neural import NeuralLipSync

                neural = NeuralLipSync(self._neural_model, self._neural_sha256)
        speech = prepare_speech(job, self.catalogue)
        run.reached(Phase.SPEECH)
        audio = speech.load()
        if neural is not None:
            neural.start(audio, media.AUDIO_RATE)
        plan = open_source(job, audio.size)
        # Loudness at the speech's own level: volume must not change the mouth.
        level = audio if speech.gain == 1.0 else audio / max(speech.gain, 1e-3)
        fps = float(plan.fps)
        track = build_track(level, media.AUDIO_RATE, fps, plan.n_frames, speech.phonemes)
        del level
        run.reached(Phase.FRAMES)
        if plan.source.info.is_image:
            frames = self._still_frames(plan.source, track, fps, job, neural)
        else:
            frames = self._video_frames(plan.source, track, plan.n_frames, plan.start, job, neural)
        # The frames are made one stage ahead of the encoder.
        return encode(job, run, plan, _prefetch(frames, 4), iter((audio,)), self._encoding,
                      message)

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
            # Decoding runs a stage ahead of the tracker here too.
            for k, frame in enumerate(_prefetch(source.frames(scan, 1, 0), 4)):
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

        def neutralised() -> Iterator[tuple[media.Frame, Points | None]]:
            for out, pts in _prefetch(tracked(), 4):
                yield out, None if pts is None else paster.paste(out, pts)

        # Stages, each in its own thread and a few frames ahead of the next: decode + track,
        # neutralise, the new mouth, and the encoder.
        for i, (out, shown) in enumerate(_prefetch(neutralised(), 4)):
            if shown is None:
                yield out  # the face is lost for a moment: show the source frame
                continue
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
