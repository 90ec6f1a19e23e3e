"""The passthrough renderer, end to end on small media."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from chanjing_avatar.render import (
    RendererUnavailable,
    get_renderer,
    media,
    register_renderer,
    renderer_names,
)
from chanjing_avatar.render.base import (
    AudioSpeech,
    Renderer,
    RenderError,
    RenderJob,
    TtsSpeech,
)
from chanjing_avatar.render.passthrough import PassthroughRenderer
from chanjing_avatar.render.speech import voice_id

from .conftest import decode_frames, frame_index, make_wav, rms

ZH_VOICE = voice_id("zh-female-1")


@pytest.fixture(scope="module")
def renderer() -> PassthroughRenderer:
    return PassthroughRenderer()


def _job(tmp_path: Path, video: Path, speech: Any, **kw: Any) -> RenderJob:
    name = kw.pop("name", "t")
    base: dict[str, Any] = dict(
        task_id=name, video_path=video, speech=speech, width=64, height=64,
        output_video=tmp_path / f"{name}.mp4", output_preview=tmp_path / f"{name}.jpg",
        work_dir=tmp_path / "work",
    )
    base.update(kw)
    return RenderJob(**base)


def _streams(path: Path) -> tuple[float, float, int, int]:
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
        return (float(v.duration * v.time_base), float(a.duration * a.time_base),
                v.codec_context.width, v.codec_context.height)


def test_registry() -> None:
    assert "passthrough" in renderer_names()
    r = get_renderer("passthrough")
    assert isinstance(r, Renderer) and r.name == "passthrough"
    assert isinstance(get_renderer("auto"), Renderer)
    with pytest.raises(ValueError, match="unknown renderer"):
        get_renderer("nope")


def test_auto_skips_unavailable() -> None:
    def broken() -> Renderer:
        raise RendererUnavailable("no weights")

    register_renderer("zz-test-broken", broken, priority=10**6)
    try:
        assert get_renderer("auto").name != "zz-test-broken"
    finally:
        from chanjing_avatar import render

        render._registry.pop("zz-test-broken")


def test_audio_job(renderer: PassthroughRenderer, long_index_video: Path, tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "s.wav", 1.3)
    seen: list[int] = []
    job = _job(tmp_path, long_index_video, AudioSpeech(wav), width=96, height=64)
    result = renderer.render(job, seen.append)
    v_dur, a_dur, w, h = _streams(job.output_video)
    assert (w, h) == (96, 64)
    assert v_dur == pytest.approx(1.32, abs=0.001)  # 1.3 s → 33 frames at 25 fps
    assert a_dur == pytest.approx(v_dur, abs=0.03)
    assert result.duration_ms == 1320
    assert len(decode_frames(job.output_video)) == 33
    assert seen == sorted(seen) and seen[-1] == 100 and len(seen) > 5
    info = media.probe(job.output_preview, "video")
    assert info.is_image and (info.width, info.height) == (96, 64)
    # The source's own sound track is replaced by the speech.
    out = media.load_audio(job.output_video)
    assert rms(out[: 48000]) == pytest.approx(rms(media.load_audio(wav)[:48000]), rel=0.1)


def test_tts_job(renderer: PassthroughRenderer, index_video: Path, tmp_path: Path) -> None:
    job = _job(tmp_path, index_video, TtsSpeech(["你好，", "欢迎使用数字人。"], ZH_VOICE))
    result = renderer.render(job, lambda p: None)
    tts = next((tmp_path / "work").glob("*.wav"))
    speech_s = media.audio_sample_count(tts) / media.AUDIO_RATE
    v_dur, a_dur, _, _ = _streams(job.output_video)
    assert a_dur == pytest.approx(v_dur, abs=0.03)
    assert v_dur == pytest.approx(speech_s, abs=0.041)  # rounded up to a whole frame
    assert v_dur >= speech_s
    assert result.duration_ms == pytest.approx(speech_s * 1000, abs=41)
    assert rms(media.load_audio(job.output_video)) > 0.02


def _indices(path: Path) -> list[int]:
    return [frame_index(f) for f in decode_frames(path)]


def test_backway(renderer: PassthroughRenderer, index_video: Path, tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "s.wav", 1.0)  # 25 frames from a 10-frame source
    loop = _job(tmp_path, index_video, AudioSpeech(wav), backway=1, name="loop")
    bounce = _job(tmp_path, index_video, AudioSpeech(wav), backway=2, name="bounce")
    renderer.render(loop, lambda p: None)
    renderer.render(bounce, lambda p: None)
    assert _indices(loop.output_video) == [*range(10), *range(10), *range(5)]
    assert _indices(bounce.output_video) == [*range(10), *range(8, -1, -1), *range(1, 7)]


def test_trim_longer_video(renderer: PassthroughRenderer, long_index_video: Path,
                           tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "s.wav", 0.4)
    job = _job(tmp_path, long_index_video, AudioSpeech(wav))
    renderer.render(job, lambda p: None)
    assert _indices(job.output_video) == list(range(10))


def test_drive_mode_random(renderer: PassthroughRenderer, index_video: Path,
                           tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "s.wav", 0.2)
    runs = []
    for i, seed in enumerate((7, 7)):
        job = _job(tmp_path, index_video, AudioSpeech(wav), drive_mode="random", seed=seed,
                   name=f"r{i}")
        renderer.render(job, lambda p: None)
        runs.append(_indices(job.output_video))
    assert runs[0] == runs[1]  # same seed, same start
    assert runs[0][0] != 0
    assert runs[0] == [(runs[0][0] + k) % 10 for k in range(5)]


def test_volume(renderer: PassthroughRenderer, index_video: Path, tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "s.wav", 0.6, amp=0.6)
    levels = {}
    for vol in (100, 50):
        job = _job(tmp_path, index_video, AudioSpeech(wav), volume=vol, name=f"v{vol}")
        renderer.render(job, lambda p: None)
        levels[vol] = rms(media.load_audio(job.output_video))
    assert levels[50] / levels[100] == pytest.approx(0.5, abs=0.05)


def test_still_image_source(renderer: PassthroughRenderer, tmp_path: Path) -> None:
    from skimage import data, io

    img = tmp_path / "face.png"
    io.imsave(img, data.astronaut())
    wav = make_wav(tmp_path / "s.wav", 0.5)
    job = _job(tmp_path, img, AudioSpeech(wav), width=65, height=81, backway=2,
               drive_mode="random")
    result = renderer.render(job, lambda p: None)
    _, _, w, h = _streams(job.output_video)
    assert (w, h) == (66, 82)  # H.264 4:2:0: odd sizes round up to even
    assert result.duration_ms == 520
    frames = decode_frames(job.output_video)
    assert len(frames) == 13 and np.abs(frames[0].astype(int) - frames[-1]).mean() < 3


@pytest.mark.parametrize("what", ["video", "audio"])
def test_bad_inputs(renderer: PassthroughRenderer, index_video: Path, tmp_path: Path,
                    what: str) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not media at all " * 50)
    wav = make_wav(tmp_path / "s.wav", 0.2)
    job = (_job(tmp_path, junk, AudioSpeech(wav)) if what == "video"
           else _job(tmp_path, index_video, AudioSpeech(junk)))
    with pytest.raises(RenderError, match=f"the {what} cannot be used: not a media file"):
        renderer.render(job, lambda p: None)
    assert not job.output_video.exists()


def test_unknown_voice(renderer: PassthroughRenderer, index_video: Path, tmp_path: Path) -> None:
    job = _job(tmp_path, index_video, TtsSpeech(["hi"], "f" * 32))
    with pytest.raises(RenderError, match="unknown voice"):
        renderer.render(job, lambda p: None)


def test_cancel(renderer: PassthroughRenderer, index_video: Path, tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "s.wav", 2.0)
    calls = iter(range(1000))
    job = _job(tmp_path, index_video, AudioSpeech(wav), cancel=lambda: next(calls) > 3)
    with pytest.raises(RenderError, match="cancelled"):
        renderer.render(job, lambda p: None)
    assert not job.output_video.exists()


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".m4a"])
def test_audition(renderer: PassthroughRenderer, tmp_path: Path, suffix: str) -> None:
    for voice in renderer.voices()[:2]:
        out = tmp_path / f"{voice.id}{suffix}"
        renderer.audition(voice.id, out)
        info = media.probe(out, "audio")
        assert 1.0 < info.duration_s < 15
    assert not list(tmp_path.glob(".*"))
    with pytest.raises(RenderError, match="unknown voice"):
        renderer.audition("0" * 32, tmp_path / "x.wav")


def test_demo_video(tmp_path: Path) -> None:
    from chanjing_avatar.render.demo import make_demo_video

    path = make_demo_video(tmp_path / "demo.mp4", seconds=1.0, size=(96, 128))
    info = media.probe(path, "video")
    assert (info.width, info.height) == (96, 128)
    assert info.duration_s == pytest.approx(1.0, abs=0.05)
    frames = decode_frames(path)
    assert len(frames) == 25
    assert np.abs(frames[0].astype(int) - frames[-1]).mean() > 2  # it moves
    assert frames[0].std() > 20  # a photo, not a flat colour
