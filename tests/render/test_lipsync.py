"""The lip-sync renderer: automatic sync check on real output, failure modes, sizes, length."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mediapipe")
pytest.importorskip("cv2")

import av
import cv2

from chanjing_avatar.render import (
    get_renderer,
    media,
)
from chanjing_avatar.render.base import AudioSpeech, RenderError, RenderJob, TtsSpeech
from chanjing_avatar.render.demo import make_demo_video
from chanjing_avatar.render.lipsync.check import measure_sync
from chanjing_avatar.render.lipsync.renderer import LipsyncRenderer
from chanjing_avatar.render.speech import voice_id

pytestmark = [
    pytest.mark.render,
    pytest.mark.filterwarnings("ignore:SymbolDatabase.GetPrototype:UserWarning"),
]

ZH = "你好，欢迎使用蝉镜数字人！"
EN = "Hello, and welcome! Watch the mouth move."
SIZE = 320


@pytest.fixture(scope="module")
def renderer() -> LipsyncRenderer:
    r = get_renderer("auto")
    assert r.name == "lipsync"
    assert isinstance(r, LipsyncRenderer)
    return r


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("lipsync-media")
    from skimage import data

    still = data.astronaut()[:, :, :3]
    cv2.imwrite(str(d / "face.png"), cv2.cvtColor(still, cv2.COLOR_RGB2BGR))
    make_demo_video(d / "face.mp4", seconds=2.0, size=(SIZE, SIZE))
    make_demo_video(d / "face_long.mp4", seconds=4.0, size=(SIZE, SIZE))
    make_demo_video(d / "face_short.mp4", seconds=0.8, size=(SIZE, SIZE))
    # An uploaded speech file: espeak-ng (a separate process) into wav, then AAC in m4a.
    wav = d / "speech.wav"
    subprocess.run(
        [
            "espeak-ng",
            "-v",
            "en-us",
            "-s",
            "150",
            "-w",
            str(wav),
            "One, two, three. Open the window, please.",
        ],
        check=True,
        capture_output=True,
    )
    media.write_audio(d / "speech.m4a", media.load_audio(wav, 24_000), 24_000)
    rng = np.random.default_rng(0)
    noise = (rng.random((256, 256, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(d / "noface.png"), noise)
    return d


def _job(
    tmp: Path, name: str, src: Path, speech: TtsSpeech | AudioSpeech, **kw: object
) -> RenderJob:
    opts: dict[str, object] = {"width": SIZE, "height": SIZE}
    opts.update(kw)
    return RenderJob(
        task_id=name,
        video_path=src,
        speech=speech,
        output_video=tmp / f"{name}.mp4",
        output_preview=tmp / f"{name}.jpg",
        work_dir=tmp / "work",
        **opts,  # type: ignore[arg-type]
    )


def _speech(kind: str, media_dir: Path) -> TtsSpeech | AudioSpeech:
    if kind == "zh":
        return TtsSpeech([ZH], voice_id("zh-female-1"))
    if kind == "en":
        return TtsSpeech([EN], voice_id("en-male-1"))
    return AudioSpeech(media_dir / "speech.m4a")


def _streams(path: Path) -> tuple[int, int, float, float, int]:
    """width, height, video seconds, audio seconds, frame count."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        n = sum(1 for _ in c.decode(vs))
        rate = float(vs.average_rate or 25)
        w, h = vs.codec_context.width, vs.codec_context.height
    with av.open(str(path)) as c:
        samples = sum(f.samples for f in c.decode(c.streams.audio[0]))
        sr = c.streams.audio[0].codec_context.sample_rate
    return w, h, n / rate, samples / sr, n


@pytest.mark.parametrize("source", ["still", "video"])
@pytest.mark.parametrize("speech", ["zh", "en", "audio"])
def test_mouth_moves_in_sync(
    renderer: LipsyncRenderer, media_dir: Path, tmp_path: Path, speech: str, source: str
) -> None:
    src = media_dir / ("face.png" if source == "still" else "face.mp4")
    job = _job(tmp_path, f"{speech}-{source}", src, _speech(speech, media_dir))
    res = renderer.render(job, lambda p: None)
    assert res.message == "success"
    rep = measure_sync(job.output_video)
    assert rep.faces_found >= 0.95 * len(rep.gaps)
    # The mouth really opens and closes ...
    assert np.nanmax(rep.gaps) - np.nanmin(rep.gaps) > 0.08
    # ... in time with the sound: best lag within one frame, clearly positive correlation.
    assert abs(rep.lag_frames) <= 1, rep
    assert rep.correlation > 0.5, rep
    assert job.output_preview.stat().st_size > 1000


def test_no_face_is_a_clear_failure(
    renderer: LipsyncRenderer, media_dir: Path, tmp_path: Path
) -> None:
    job = _job(tmp_path, "noface", media_dir / "noface.png", AudioSpeech(media_dir / "speech.m4a"))
    with pytest.raises(RenderError, match="no face"):
        renderer.render(job, lambda p: None)
    assert not job.output_video.exists()


def test_no_face_in_a_video(renderer: LipsyncRenderer, media_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "noface.mp4"
    rng = np.random.default_rng(1)
    from fractions import Fraction

    with media.Mp4Writer(src, 128, 128, Fraction(25), audio=False) as w:
        for _ in range(10):
            w.write_frame((rng.random((128, 128, 3)) * 255).astype(np.uint8))
    job = _job(tmp_path, "noface-video", src, AudioSpeech(media_dir / "speech.m4a"))
    with pytest.raises(RenderError, match="no face"):
        renderer.render(job, lambda p: None)


@pytest.mark.parametrize("backway", [1, 2])
@pytest.mark.parametrize("clip", ["face_short.mp4", "face_long.mp4"])
def test_video_shorter_and_longer_than_speech(
    renderer: LipsyncRenderer, media_dir: Path, tmp_path: Path, clip: str, backway: int
) -> None:
    speech = AudioSpeech(media_dir / "speech.m4a")
    speech_s = media.audio_sample_count(speech.audio_path) / media.AUDIO_RATE
    job = _job(
        tmp_path,
        f"bw{backway}",
        media_dir / clip,
        speech,
        width=192,
        height=192,
        backway=backway,
        drive_mode="random",
        seed=7,
    )
    res = renderer.render(job, lambda p: None)
    w, h, video_s, audio_s, _ = _streams(job.output_video)
    assert (w, h) == (192, 192)
    # The output follows the speech, whatever the source length: within one frame.
    assert abs(video_s - speech_s) <= 1 / 25 + 1e-6
    assert abs(res.duration_ms / 1000 - video_s) < 0.05
    assert audio_s >= speech_s - 0.05


@pytest.mark.parametrize(("width", "height"), [(240, 426), (426, 240)])
def test_portrait_and_landscape(
    renderer: LipsyncRenderer, media_dir: Path, tmp_path: Path, width: int, height: int
) -> None:
    job = _job(
        tmp_path,
        f"{width}x{height}",
        media_dir / "face.mp4",
        AudioSpeech(media_dir / "speech.m4a"),
        width=width,
        height=height,
    )
    renderer.render(job, lambda p: None)
    w, h, *_ = _streams(job.output_video)
    assert (w, h) == (width, height)
    rep = measure_sync(job.output_video)
    assert rep.faces_found >= 0.95 * len(rep.gaps)
    assert abs(rep.lag_frames) <= 1 and rep.correlation > 0.4, rep


def _rss_mb() -> float:
    import os

    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.slow
def test_sixty_second_text_streams_with_flat_memory(
    renderer: LipsyncRenderer, media_dir: Path, tmp_path: Path
) -> None:
    sentence = "The quick brown fox jumps over the lazy dog, and then it runs back home again. "
    text = sentence * 13  # about sixty seconds of speech
    job = _job(
        tmp_path,
        "long",
        media_dir / "face.png",
        TtsSpeech([text], voice_id("en-male-1")),
        width=192,
        height=192,
    )
    seen: dict[int, float] = {}
    res = renderer.render(job, lambda p: seen.setdefault(p, _rss_mb()))
    assert 50_000 <= res.duration_ms <= 80_000, res
    # While frames stream (progress 20% → 98%) the process does not grow with the length.
    early = min(v for p, v in seen.items() if p >= 20)
    late = max(v for p, v in seen.items() if p >= 90)
    assert late - early < 30, (early, late)
