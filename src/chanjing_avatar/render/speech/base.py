"""The speech engine interface: text in, a wav file (and optionally phoneme timings) out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


class SpeechError(Exception):
    """Speech cannot be synthesised; ``str(err)`` is a reason fit for a task's ``msg``."""


class EngineUnavailable(SpeechError):
    """The engine is not installed here; the message says how to install it."""


@dataclass(frozen=True)
class PhonemeTiming:
    """One phoneme of the output, in seconds from the start of the wav."""

    phoneme: str  # engine notation (IPA where the engine offers it)
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Synthesis:
    wav_path: Path
    duration_s: float
    sample_rate: int
    # Empty when the engine cannot time its phonemes.
    phonemes: tuple[PhonemeTiming, ...] = ()


@runtime_checkable
class SpeechEngine(Protocol):
    """A text-to-speech engine; voices name it in the catalogue by ``name``."""

    name: str

    def unavailable_reason(self) -> str | None:
        """None when the engine can run here, else how to make it available."""
        ...

    def synthesize(self, text: str, voice: str, out_wav: Path, *, speed: float = 1.0,
                   pitch: float = 1.0) -> Synthesis:
        """Speak ``text`` with the engine-specific ``voice`` into ``out_wav`` (mono PCM wav).

        ``speed`` 0.5-2 (1 normal), ``pitch`` 0.5-2 (1 normal). Raises SpeechError.
        """
        ...
