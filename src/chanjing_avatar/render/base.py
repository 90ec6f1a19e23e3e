"""The renderer interface: what the sandbox asks of any renderer, and nothing more.

The sandbox builds a :class:`RenderJob` from a validated task, calls :meth:`Renderer.render` in a
worker, and maps a :class:`RenderError` to task status 30 with the error's message as ``msg``.
Renderers never touch the server's store; they read input files and write the two outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable


@dataclass(frozen=True)
class VoiceInfo:
    """A voice a renderer can speak; the sandbox lists these from ``list_common_audio``."""

    id: str
    name: str
    gender: Literal["male", "female"]
    lang: str  # e.g. "zh", "en"
    desc: str = ""
    grade: int = 0
    speed: float = 1.0
    pitch: float = 1.0


@dataclass(frozen=True)
class TtsSpeech:
    """Speech to synthesise from text."""

    text: Sequence[str]
    voice_id: str
    speed: float = 1.0
    pitch: float = 1.0


@dataclass(frozen=True)
class AudioSpeech:
    """Speech from an uploaded audio file."""

    audio_path: Path


@dataclass(frozen=True)
class RenderJob:
    task_id: str
    video_path: Path  # the uploaded driving video (or a still image)
    speech: TtsSpeech | AudioSpeech
    width: int
    height: int
    backway: Literal[1, 2] = 1  # 1 loop from the start, 2 play back and forth
    drive_mode: Literal["", "random"] = ""  # "random": start at a random frame
    model: int = 0
    volume: int = 100  # 1-100, applied to the speech
    output_video: Path = Path("out.mp4")  # write an mp4 (H.264 + AAC) here
    output_preview: Path = Path("out.jpg")  # and a JPEG frame here
    work_dir: Path = Path(".")  # scratch space, removed by the caller afterwards
    seed: int = 0  # for drive_mode "random": same seed, same start frame
    cancel: Callable[[], bool] = field(default=lambda: False, compare=False)


@dataclass(frozen=True)
class RenderResult:
    duration_ms: int  # of the output video
    message: str = "success"  # goes to the task's msg (e.g. a fallback notice)


class RenderError(Exception):
    """The task cannot be rendered; ``str(err)`` is the user-facing reason for ``msg``."""


ProgressFn = Callable[[int], None]  # percent 0-100, called from the worker thread


@runtime_checkable
class Renderer(Protocol):
    name: str

    def voices(self) -> Sequence[VoiceInfo]:
        """Voices this renderer can speak (ids are what tasks pass as ``audio_man_id``)."""
        ...

    def render(self, job: RenderJob, progress: ProgressFn) -> RenderResult:
        """Render ``job`` in the calling (worker) thread; raise RenderError on failure."""
        ...

    def audition(self, voice_id: str, out_path: Path) -> None:
        """Write a short sample of ``voice_id`` to ``out_path`` (audio, mp3/wav/m4a by suffix)."""
        ...
