"""The one fake renderer for tests of everything but rendering (importable from every test
folder: ``from fake_renderer import FakeRenderer``).

It copies the driving video as the result (or, with ``output_bytes``, writes that many
deterministic bytes per task), reports a few progress steps, and is steered by the text it is
asked to speak: ``FAIL`` fails the task, ``SLOW`` makes it take ``slow_steps`` steps,
``FALLBACK`` with model 1 reports rendering with model 0. A cleared ``gate`` holds every render
(or, with ``hold_text``, those whose text contains it) until it is set, at most ``hold_s``
seconds (restart and concurrency tests; a task surely still running when a command starts).
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from chanjing_avatar.render.base import (
    ProgressFn,
    RenderError,
    RenderJob,
    RenderResult,
    TtsSpeech,
    VoiceInfo,
)
from media_maker import make_wav

# A JPEG's start and end markers: downloads only check that bytes round-trip.
PREVIEW_BYTES = b"\xff\xd8\xff\xe0fake-preview\xff\xd9"


class FakeRenderer:
    def __init__(
        self,
        voices: Sequence[VoiceInfo] = (),
        *,
        name: str = "fake",
        steps: int = 4,
        step_s: float = 0.01,
        slow_steps: int = 20,
        slow_step_s: float = 0.2,
        output_bytes: int | None = None,
        fail_text: str = "FAIL",
        hold_text: str | None = None,
        hold_s: float | None = None,
    ) -> None:
        self.name = name
        self._voices = list(voices)
        self.steps, self.step_s = steps, step_s
        self.slow_steps, self.slow_step_s = slow_steps, slow_step_s
        self.output_bytes = output_bytes
        self.fail_text = fail_text
        self.hold_text, self.hold_s = hold_text, hold_s
        self.gate = threading.Event()
        self.gate.set()
        self.running = 0
        self.peak = 0
        self.jobs: list[RenderJob] = []
        self.texts: dict[str, str] = {}  # task id -> the text it was asked to speak
        self._lock = threading.Lock()

    def voices(self) -> Sequence[VoiceInfo]:
        return self._voices

    def audition(self, voice_id: str, out_path: Path) -> None:
        make_wav(out_path, seconds=0.2, rate=8000)

    def render(self, job: RenderJob, progress: ProgressFn) -> RenderResult:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.jobs.append(job)
        try:
            text = "".join(job.speech.text) if isinstance(job.speech, TtsSpeech) else ""
            self.texts[job.task_id] = text
            if self.hold_text is None or self.hold_text in text:
                until = None if self.hold_s is None else time.monotonic() + self.hold_s
                while not self.gate.wait(0.02):
                    if job.cancel():
                        raise RenderError("cancelled")
                    if until is not None and time.monotonic() > until:
                        break
            if self.fail_text and self.fail_text in text:
                raise RenderError("the fake renderer was told to fail")
            slow = "SLOW" in text
            steps = self.slow_steps if slow else self.steps
            for i in range(steps):
                progress(int(100 * (i + 1) / (steps + 1)))
                time.sleep(self.slow_step_s if slow else self.step_s)
            if self.output_bytes is None:
                shutil.copyfile(job.video_path, job.output_video)
            else:
                seed = hashlib.sha256(job.task_id.encode()).digest()
                data = seed * (self.output_bytes // len(seed) + 1)
                job.output_video.write_bytes(data[: self.output_bytes])
            job.output_preview.write_bytes(PREVIEW_BYTES)
            if "FALLBACK" in text and job.model == 1:
                return RenderResult(duration_ms=1000, message="model 1 has no neural weights "
                                    "configured here; rendered with model 0")
            return RenderResult(duration_ms=1000)
        finally:
            with self._lock:
                self.running -= 1
