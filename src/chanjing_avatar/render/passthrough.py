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

from collections.abc import Sequence
from pathlib import Path

from .base import ProgressFn, RenderJob, RenderResult, VoiceInfo
from .pipeline import Encoding, Phase, Run, audition, encode, open_source, prepare_speech
from .speech import Catalogue, default_catalogue


class PassthroughRenderer:
    """Source video + speech, no lip movement (see the module docstring)."""

    name = "passthrough"

    def __init__(self, catalogue: Catalogue | None = None, crf: int = 23,
                 preset: str = "superfast") -> None:
        self.catalogue = catalogue if catalogue is not None else default_catalogue()
        self._encoding = Encoding(crf, preset)

    def voices(self) -> Sequence[VoiceInfo]:
        return self.catalogue.voices()

    def audition(self, voice_id: str, out_path: Path) -> None:
        audition(self.catalogue, voice_id, out_path)

    def render(self, job: RenderJob, progress: ProgressFn) -> RenderResult:
        run = Run(job, progress)
        speech = prepare_speech(job, self.catalogue)
        run.reached(Phase.SPEECH)
        plan = open_source(job, speech.sample_count())
        run.reached(Phase.FRAMES)
        frames = plan.source.frames(plan.n_frames, job.backway, plan.start)
        return encode(job, run, plan, frames, speech.chunks(), self._encoding)
