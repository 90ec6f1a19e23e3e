"""espeak-ng, run as a separate process (it is GPL; it stays out of our process).

Robotic but tiny and instant. Debian's espeak-ng 1.51 reads Chinese characters badly with its
``cmn`` voice, so Mandarin is converted to tone-numbered pinyin (pypinyin) and spoken with
``cmn-latn-pinyin``. Mixed text is split into Chinese and Latin runs, each spoken with the
matching language and the same voice variant, and the pieces are joined.

Engine voice names are ``"<variant>"`` such as ``"f3"`` or ``"m1"`` (espeak-ng variants), optionally
prefixed with a preferred language for neutral text: ``"zh:f3"``, ``"en:m1"``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from .base import EngineUnavailable, SpeechError, Synthesis
from .text import Lang, normalize_punctuation, split_languages, to_pinyin

INSTALL_HINT = "install espeak-ng: apt-get install espeak-ng"
_LANG_VOICES: dict[Lang, str] = {"zh": "cmn-latn-pinyin", "en": "en-us"}
_BASE_WPM = 175  # espeak-ng's default rate
_TIMEOUT_S = 120.0


def _parse_voice(voice: str) -> tuple[Lang, str]:
    lang, _, variant = voice.rpartition(":")
    default: Lang = "en" if lang == "en" else "zh"
    return default, variant or "f3"


class EspeakEngine:
    name = "espeak-ng"

    def __init__(self, binary: str = "espeak-ng") -> None:
        self._binary = binary

    def _path(self) -> str | None:
        return shutil.which(self._binary)

    def unavailable_reason(self) -> str | None:
        if self._path() is None:
            return f"espeak-ng is not installed ({INSTALL_HINT})"
        try:
            import pypinyin  # noqa: F401
        except ImportError:
            return "pypinyin is missing: pip install 'chanjing-avatar[sandbox]'"
        return None

    def synthesize(self, text: str, voice: str, out_wav: Path, *, speed: float = 1.0,
                   pitch: float = 1.0) -> Synthesis:
        binary = self._path()
        if binary is None:
            raise EngineUnavailable(f"espeak-ng is not installed ({INSTALL_HINT})")
        default, variant = _parse_voice(voice)
        runs = split_languages(text, default)
        if not runs:
            raise SpeechError("the text has nothing to speak")
        rate = round(_BASE_WPM * min(2.0, max(0.5, speed)))
        pitch_arg = round(min(99.0, max(0.0, 50.0 * pitch)))
        pieces: list[np.ndarray] = []
        sample_rate = 0
        with tempfile.TemporaryDirectory(prefix="espeak-", dir=out_wav.parent) as tmp:
            for i, (lang, chunk) in enumerate(runs):
                spoken = to_pinyin(chunk) if lang == "zh" else normalize_punctuation(chunk)
                if not spoken.strip():
                    continue
                piece = Path(tmp) / f"{i}.wav"
                self._run(binary, spoken, f"{_LANG_VOICES[lang]}+{variant}", rate, pitch_arg, piece)
                samples, sr = _read_wav(piece)
                sample_rate = sample_rate or sr
                if sr != sample_rate:
                    raise SpeechError("espeak-ng produced audio at mixed sample rates")
                pieces.append(samples)
        if not pieces or sample_rate == 0:
            raise SpeechError("the text has nothing to speak")
        audio = np.concatenate(pieces)
        _write_wav(out_wav, audio, sample_rate)
        return Synthesis(out_wav, len(audio) / sample_rate, sample_rate)

    def _run(self, binary: str, text: str, voice: str, rate: int, pitch: int, out: Path) -> None:
        cmd = [binary, "-b", "1", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(out)]
        try:
            # Text on stdin: no argument-length limit, and never parsed as options.
            proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True,
                                  timeout=_TIMEOUT_S, check=False)
        except FileNotFoundError:
            raise EngineUnavailable(f"espeak-ng is not installed ({INSTALL_HINT})") from None
        except subprocess.TimeoutExpired:
            raise SpeechError("text-to-speech timed out") from None
        if proc.returncode != 0 or not out.exists():
            err = proc.stderr.decode("utf-8", "replace").strip()[:300]
            raise SpeechError(f"espeak-ng failed (exit {proc.returncode}): {err or 'no output'}")


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise SpeechError("espeak-ng produced an unexpected wav format")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return data.copy(), w.getframerate()


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
