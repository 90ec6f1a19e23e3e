"""What both renderers share (render/pipeline.py): named progress phases, cancel checks at each
phase and while encoding, and the audio handed to the encoder sample for sample (the sound track
itself is checked in test_passthrough.py and test_lipsync.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from chanjing_avatar.render.base import AudioSpeech, Renderer, RenderError, RenderJob
from chanjing_avatar.render.passthrough import PassthroughRenderer
from chanjing_avatar.render.pipeline import Phase, _Feed

from .conftest import make_wav

pytestmark = pytest.mark.filterwarnings("ignore:SymbolDatabase.GetPrototype:UserWarning")


def _renderers() -> list[object]:
    out: list[object] = ["passthrough"]
    missing = [m for m in ("mediapipe", "cv2") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"skipped: lipsync needs {', '.join(missing)}")
        out.append(pytest.param("lipsync", marks=pytest.mark.skip(f"needs {missing}")))
    else:
        out.append("lipsync")
    return out


def _renderer(name: str) -> Renderer:
    if name == "passthrough":
        return PassthroughRenderer()
    from chanjing_avatar.render.lipsync.renderer import LipsyncRenderer

    return LipsyncRenderer()


@pytest.fixture(scope="module")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from chanjing_avatar.render.demo import make_demo_video

    return make_demo_video(tmp_path_factory.mktemp("pipeline") / "face.mp4", 1.2, (256, 256))


def _job(tmp: Path, video: Path, **kw: object) -> RenderJob:
    wav = make_wav(tmp / "speech.wav", 1.0)
    return RenderJob(task_id="t", video_path=video, speech=AudioSpeech(wav), width=256, height=256,
                     output_video=tmp / "out.mp4", output_preview=tmp / "out.jpg",
                     work_dir=tmp / "work", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", _renderers())
def test_progress_goes_through_every_named_phase(name: str, face_video: Path,
                                                 tmp_path: Path) -> None:
    seen: list[int] = []
    _renderer(name).render(_job(tmp_path, face_video), seen.append)
    assert seen == sorted(set(seen)), seen  # strictly rising
    assert [p for p in seen if p in set(Phase)] == [p.value for p in Phase], seen
    assert all(Phase.FRAMES < p < Phase.ENCODED for p in seen if p not in set(Phase))


@pytest.mark.parametrize("name", _renderers())
@pytest.mark.parametrize("at", [Phase.STARTED, Phase.SPEECH, Phase.FRAMES, Phase.FRAMES + 40])
def test_cancel_stops_at_any_phase_and_leaves_no_output(name: str, at: int, face_video: Path,
                                                        tmp_path: Path) -> None:
    seen: list[int] = []
    job = _job(tmp_path, face_video, cancel=lambda: bool(seen) and seen[-1] >= at)
    with pytest.raises(RenderError, match="the task was cancelled"):
        _renderer(name).render(job, seen.append)
    # Stopped where asked: at that phase, or within ten frames once encoding.
    assert (max(seen) == at) if at <= Phase.FRAMES else (max(seen) < Phase.ENCODED), seen
    assert not job.output_video.exists() and not job.output_preview.exists()


@pytest.mark.parametrize("sizes", [[1024] * 9, [7, 5000, 1, 333], [48_000], []])
def test_feed_hands_out_exactly_what_is_asked(sizes: list[int]) -> None:
    rng = np.random.default_rng(1)
    chunks = [rng.random(n).astype(np.float32) for n in sizes]
    whole = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    feed = _Feed(iter(chunks))
    got = [feed.take(n) for n in (0, 1920, 1, 1919, 3000, 10**6, 5)]
    assert [g.size for g in got] == [min(n, max(0, whole.size - sum(g.size for g in got[:k])))
                                     for k, n in enumerate((0, 1920, 1, 1919, 3000, 10**6, 5))]
    assert np.array_equal(np.concatenate(got), whole)
    assert all(g.dtype == np.float32 for g in got)

