"""The voice catalogue: the voices tasks may name, each mapped to engines that can speak it.

A voice has a stable id (``audio_man_id``) and a list of ``(engine, engine voice)`` candidates; the
first candidate whose engine is available here speaks. A better engine for an existing voice is
added with :meth:`Catalogue.add_candidate` (``first=True``) without changing the voice's id.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from ..base import VoiceInfo
from .base import SpeechEngine, SpeechError, Synthesis
from .text import join_text


def voice_id(key: str) -> str:
    """A stable 32-hex id for the voice ``key`` (ids never change when engines do)."""
    return hashlib.md5(f"chanjing-avatar voice {key}".encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Candidate:
    engine: str
    engine_voice: str


@dataclass
class CatalogueVoice:
    info: VoiceInfo
    candidates: list[Candidate]


class Catalogue:
    """Engines by name and voices by id; thread-safe to read while rendering."""

    def __init__(self) -> None:
        self._engines: dict[str, SpeechEngine] = {}
        self._voices: dict[str, CatalogueVoice] = {}
        self._lock = threading.Lock()

    def register_engine(self, engine: SpeechEngine) -> None:
        with self._lock:
            self._engines[engine.name] = engine

    def engine(self, name: str) -> SpeechEngine | None:
        return self._engines.get(name)

    def add_voice(self, info: VoiceInfo, engine: str, engine_voice: str) -> None:
        with self._lock:
            if info.id in self._voices:
                raise ValueError(f"voice {info.id} is already registered")
            self._voices[info.id] = CatalogueVoice(info, [Candidate(engine, engine_voice)])

    def add_candidate(self, voice_id: str, engine: str, engine_voice: str,
                      first: bool = True) -> None:
        """Let ``engine`` speak an existing voice; ``first`` makes it preferred."""
        with self._lock:
            cand = Candidate(engine, engine_voice)
            lst = self._voices[voice_id].candidates
            lst.insert(0, cand) if first else lst.append(cand)

    def voices(self, available_only: bool = True) -> list[VoiceInfo]:
        """Voices in registration order (only speakable ones unless ``available_only=False``),
        each described with the engine that speaks it here."""
        with self._lock:
            entries = list(self._voices.values())
        described = [(v, self._pick(v)) for v in entries]
        return [_describe(v.info, p) for v, p in described if not available_only or p is not None]

    def get(self, voice_id: str) -> VoiceInfo | None:
        entry = self._voices.get(voice_id)
        return _describe(entry.info, self._pick(entry)) if entry else None

    def _pick(self, entry: CatalogueVoice) -> tuple[SpeechEngine, str] | None:
        for cand in entry.candidates:
            engine = self._engines.get(cand.engine)
            if engine is not None and engine.unavailable_reason() is None:
                return engine, cand.engine_voice
        return None

    def resolve(self, voice_id: str) -> tuple[SpeechEngine, str]:
        """The engine and engine voice that will speak ``voice_id``; SpeechError if none."""
        entry = self._voices.get(voice_id)
        if entry is None:
            raise SpeechError(f"unknown voice {voice_id!r}")
        picked = self._pick(entry)
        if picked is None:
            reasons = []
            for cand in entry.candidates:
                engine = self._engines.get(cand.engine)
                reason = engine.unavailable_reason() if engine else "not registered"
                reasons.append(f"{cand.engine}: {reason}")
            raise SpeechError(f"no speech engine for voice {voice_id} is available "
                              f"({'; '.join(reasons)})")
        return picked

    def synthesize(self, text: Sequence[str] | str, voice_id: str, out_wav: Path, *,
                   speed: float = 1.0, pitch: float = 1.0) -> Synthesis:
        engine, engine_voice = self.resolve(voice_id)
        joined = join_text(text)
        if not joined.strip():
            raise SpeechError("the text is empty")
        return engine.synthesize(joined, engine_voice, out_wav, speed=speed, pitch=pitch)


AUDITION_TEXT: dict[str, str] = {
    "zh": "你好，欢迎使用蝉镜数字人。今天我们一起来做一段视频。",
    "en": "Hello, and welcome to Chanjing avatar. Let's make a video together today.",
}


# How each engine sounds, for a voice's description (the engine that speaks it is picked when
# the catalogue is asked, so the description follows what is installed).
ENGINE_DESCRIPTIONS: dict[str, str] = {
    "espeak-ng": "offline espeak-ng (robotic)",
    "kokoro": "offline Kokoro (neural)",
    "piper": "offline Piper (neural)",
}


def _describe(info: VoiceInfo, picked: tuple[SpeechEngine, str] | None) -> VoiceInfo:
    engine = ENGINE_DESCRIPTIONS.get(picked[0].name, picked[0].name) if picked else "unavailable"
    return replace(info, desc=f"{info.desc}; {engine}" if info.desc else engine)


def _espeak_voice(key: str, name: str, gender: Literal["male", "female"], lang: str,
                  variant: str, note: str = "") -> tuple[VoiceInfo, str]:
    desc = f"{'Mandarin' if lang == 'zh' else 'English'}, {gender}{note}"
    return VoiceInfo(id=voice_id(key), name=name, gender=gender, lang=lang, desc=desc), \
        f"{lang}:{variant}"


# Keys are what ids are made from: keep them; engines behind a voice may change.
DEFAULT_VOICES: tuple[tuple[VoiceInfo, str], ...] = (
    _espeak_voice("zh-female-1", "小晴", "female", "zh", "f3"),
    _espeak_voice("zh-male-1", "云峰", "male", "zh", "m3"),
    _espeak_voice("en-female-1", "Emma", "female", "en", "f2",
                  ", no phoneme timings (no neural English female voice found in an installable "
                  "package)"),
    _espeak_voice("en-male-1", "Ryan", "male", "en", "m1"),
)


def default_catalogue() -> Catalogue:
    """A new catalogue with the engines and voices that ship with the project."""
    from .espeak import EspeakEngine

    cat = Catalogue()
    espeak = EspeakEngine()
    cat.register_engine(espeak)
    for info, engine_voice in DEFAULT_VOICES:
        cat.add_voice(info, espeak.name, engine_voice)
    return cat
