"""Offline text-to-speech: engines behind :class:`SpeechEngine`, voices in a :class:`Catalogue`.

``default_catalogue()`` has the voices every renderer can speak. To add an engine, put it in a new
module here, register it on the catalogue and map voices to it (new voices with ``add_voice``, or
existing ids with ``add_candidate`` so that they keep their ids and gain the better engine).
"""

from __future__ import annotations

from .base import EngineUnavailable, PhonemeTiming, SpeechEngine, SpeechError, Synthesis
from .catalogue import (
    AUDITION_TEXT,
    DEFAULT_VOICES,
    Candidate,
    Catalogue,
    default_catalogue,
    voice_id,
)

__all__ = [
    "AUDITION_TEXT",
    "DEFAULT_VOICES",
    "Candidate",
    "Catalogue",
    "EngineUnavailable",
    "PhonemeTiming",
    "SpeechEngine",
    "SpeechError",
    "Synthesis",
    "default_catalogue",
    "voice_id",
]
