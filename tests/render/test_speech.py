"""speech: the voice catalogue and the espeak-ng engine."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from chanjing_avatar.render import media
from chanjing_avatar.render.base import VoiceInfo
from chanjing_avatar.render.speech import (
    Catalogue,
    SpeechError,
    Synthesis,
    default_catalogue,
    voice_id,
)
from chanjing_avatar.render.speech.espeak import EspeakEngine
from chanjing_avatar.render.speech.text import split_languages, to_pinyin

from .conftest import rms

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return default_catalogue()


def _voice(cat: Catalogue, lang: str, gender: str) -> str:
    return next(v.id for v in cat.voices(available_only=False)
                if v.lang == lang and v.gender == gender)


def test_catalogue_ids_are_stable(catalogue: Catalogue) -> None:
    voices = catalogue.voices(available_only=False)
    ids = [v.id for v in voices]
    assert len(set(ids)) == len(ids) >= 4
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    # Ids are derived from fixed keys: a released id never changes.
    assert voice_id("zh-female-1") == "8cb96021eca56bee1765e2ec44493f4b"
    assert ids[0] == voice_id("zh-female-1")
    assert {(v.lang, v.gender) for v in voices} >= {
        ("zh", "female"), ("zh", "male"), ("en", "female"), ("en", "male")}
    assert all(v.name for v in voices)


def _check_speech(syn: Synthesis, lo: float, hi: float) -> np.ndarray:
    assert syn.wav_path.exists()
    samples = media.load_audio(syn.wav_path, syn.sample_rate)
    assert samples.size / syn.sample_rate == pytest.approx(syn.duration_s, abs=0.01)
    assert lo < syn.duration_s < hi, syn.duration_s
    assert rms(samples) > 0.02  # not silence
    return samples


@needs_espeak
def test_chinese_tts(catalogue: Catalogue, tmp_path: Path) -> None:
    text = "君不见黄河之水天上来，奔流到海不复回。"  # 14 syllables
    syn = catalogue.synthesize(text, _voice(catalogue, "zh", "female"), tmp_path / "zh.wav")
    _check_speech(syn, 2.0, 9.0)


@needs_espeak
def test_english_tts(catalogue: Catalogue, tmp_path: Path) -> None:
    text = ["Hello there, ", "this is a short test of the offline voice."]
    syn = catalogue.synthesize(text, _voice(catalogue, "en", "male"), tmp_path / "en.wav")
    _check_speech(syn, 1.5, 7.0)


@needs_espeak
def test_mixed_text(catalogue: Catalogue, tmp_path: Path) -> None:
    vid = _voice(catalogue, "zh", "male")
    syn = catalogue.synthesize("我喜欢用 Python 写代码, 3 个小时。", vid, tmp_path / "mix.wav")
    _check_speech(syn, 1.5, 9.0)


@needs_espeak
def test_speed_and_pitch(catalogue: Catalogue, tmp_path: Path) -> None:
    vid = _voice(catalogue, "en", "female")
    text = "The quick brown fox jumps over the lazy dog."
    slow = catalogue.synthesize(text, vid, tmp_path / "slow.wav", speed=0.5)
    fast = catalogue.synthesize(text, vid, tmp_path / "fast.wav", speed=2.0)
    assert slow.duration_s > 2.5 * fast.duration_s
    low = catalogue.synthesize(text, vid, tmp_path / "low.wav", pitch=0.5)
    high = catalogue.synthesize(text, vid, tmp_path / "high.wav", pitch=2.0)
    assert low.wav_path.read_bytes() != high.wav_path.read_bytes()


def test_unknown_voice(catalogue: Catalogue, tmp_path: Path) -> None:
    with pytest.raises(SpeechError, match="unknown voice"):
        catalogue.synthesize("hi", "0" * 32, tmp_path / "x.wav")


@needs_espeak
def test_empty_text(catalogue: Catalogue, tmp_path: Path) -> None:
    with pytest.raises(SpeechError, match="empty"):
        catalogue.synthesize(["  ", ""], _voice(catalogue, "zh", "female"), tmp_path / "x.wav")


def test_missing_espeak_says_how_to_install(tmp_path: Path) -> None:
    engine = EspeakEngine(binary="espeak-ng-not-installed-here")
    assert "apt-get install espeak-ng" in (engine.unavailable_reason() or "")
    cat = Catalogue()
    cat.register_engine(engine)
    info = VoiceInfo(id=voice_id("t"), name="t", gender="female", lang="en")
    cat.add_voice(info, engine.name, "en:f2")
    # Listed all the same, described as what it is here: unavailable.
    assert cat.voices() == []
    assert cat.voices(available_only=False) == [replace(info, desc="unavailable")]
    with pytest.raises(SpeechError, match="apt-get install espeak-ng"):
        cat.synthesize("hello", info.id, tmp_path / "x.wav")


class _FakeEngine:
    """An engine that writes a fixed tone: stands in for a later, better engine."""

    name = "fake"

    def unavailable_reason(self) -> str | None:
        return None

    def synthesize(self, text: str, voice: str, out_wav: Path, *, speed: float = 1.0,
                   pitch: float = 1.0) -> Synthesis:
        samples = np.full(1600, 0.1, np.float32)
        media.write_wav(out_wav, samples, 16000)
        return Synthesis(out_wav, 0.1, 16000)


def test_a_new_engine_takes_over_a_voice_keeping_its_id(tmp_path: Path) -> None:
    cat = default_catalogue()
    vid = voice_id("zh-female-1")
    cat.register_engine(_FakeEngine())
    cat.add_candidate(vid, "fake", "v1")
    engine, engine_voice = cat.resolve(vid)
    assert (engine.name, engine_voice) == ("fake", "v1")
    assert cat.synthesize("你好", vid, tmp_path / "f.wav").duration_s == pytest.approx(0.1)


def test_split_languages() -> None:
    assert split_languages("我有3个apple，你好", "zh") == [
        ("zh", "我有3个"), ("en", "apple，"), ("zh", "你好")]
    assert split_languages("  42 hello 世界", "en") == [("en", "  42 hello "), ("zh", "世界")]
    assert split_languages("", "zh") == []


def test_to_pinyin() -> None:
    assert to_pinyin("你好，世界。") == "ni3 hao3 , shi4 jie4 ."
    assert to_pinyin("绿") == "lv4"
