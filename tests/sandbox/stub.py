"""A fast stand-in renderer for tests of the server's own behaviour (not of rendering)."""

from __future__ import annotations

import shutil
import threading
import time
import wave
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

# The smallest well-formed JPEG is not needed: downloads only check bytes round-trip.
PREVIEW_BYTES = b"\xff\xd8\xff\xe0stub-preview\xff\xd9"
VOICES = [
    VoiceInfo(
        id=f"{n:032x}",
        name=f"Stub {n}",
        gender="female" if n % 2 else "male",
        lang="zh" if n < 40 else "en",
    )
    for n in range(1, 61)
]


class StubRenderer:
    """Copies the source video as the result. Text containing ``FAIL`` fails the task; a cleared
    ``gate`` holds every render until it is set (for restart and concurrency tests)."""

    name = "stub"

    def __init__(self, step_s: float = 0.01) -> None:
        self.step_s = step_s
        self.gate = threading.Event()
        self.gate.set()
        self.running = 0
        self.peak = 0
        self.jobs: list[RenderJob] = []
        self._lock = threading.Lock()

    def voices(self) -> Sequence[VoiceInfo]:
        return VOICES

    def audition(self, voice_id: str, out_path: Path) -> None:
        with wave.open(str(out_path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(b"\x00\x00" * 1600)

    def render(self, job: RenderJob, progress: ProgressFn) -> RenderResult:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.jobs.append(job)
        try:
            while not self.gate.wait(0.02):
                if job.cancel():
                    raise RenderError("cancelled")
            if isinstance(job.speech, TtsSpeech) and "FAIL" in "".join(job.speech.text):
                raise RenderError("stub cannot say that")
            for pct in (10, 40, 70, 90):
                progress(pct)
                time.sleep(self.step_s)
            shutil.copyfile(job.video_path, job.output_video)
            job.output_preview.write_bytes(PREVIEW_BYTES)
            return RenderResult(duration_ms=1000)
        finally:
            with self._lock:
                self.running -= 1
