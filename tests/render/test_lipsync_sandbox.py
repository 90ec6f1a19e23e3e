"""The lip-sync renderer behind the sandbox: tasks end 20 with a moving mouth, or 30 and why."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

pytest.importorskip("mediapipe")


from chanjing_avatar.render import media
from chanjing_avatar.render.demo import make_demo_video
from chanjing_avatar.render.lipsync.check import measure_sync
from chanjing_avatar.render.speech import voice_id
from chanjing_avatar.sandbox import Sandbox


def _load_api() -> Any:
    """The sandbox tests' raw-HTTP helper, loaded by path (it does not depend on sys.path)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "sandbox" / "api.py"
    spec = importlib.util.spec_from_file_location("lipsync_sandbox_api", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_api = _load_api()
Api = _api.Api
tts_body = _api.tts_body

pytestmark = [pytest.mark.render, pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture
def api(sandbox_factory: Callable[..., Sandbox]) -> Iterator[Any]:
    client = Api(sandbox_factory(renderer="lipsync"))
    client.login()
    yield client
    client.close()


def _face_video(tmp: Path) -> Path:
    return make_demo_video(tmp / "face.mp4", seconds=1.0, size=(192, 192))


def test_tts_task_renders_a_moving_mouth(api: Any, tmp_path: Path) -> None:
    video = api.ready_file("lip_sync_video", _face_video(tmp_path))
    body: dict[str, Any] = tts_body(video, voice_id("zh-female-1"), text="你好，欢迎使用蝉镜！")
    body.update(screen_width=192, screen_height=192)
    data = api.wait_task(api.create(body), timeout=180)
    assert data["status"] == 20, data
    out = tmp_path / "out.mp4"
    out.write_bytes(httpx.get(data["video_url"], timeout=30).content)
    rep = measure_sync(out)
    assert np.nanmax(rep.gaps) - np.nanmin(rep.gaps) > 0.08
    assert abs(rep.lag_frames) <= 1 and rep.correlation > 0.5, rep


def test_no_face_ends_30_with_the_reason(api: Any, tmp_path: Path) -> None:
    from fractions import Fraction

    src = tmp_path / "noface.mp4"
    rng = np.random.default_rng(3)
    with media.Mp4Writer(src, 96, 96, Fraction(25), audio=False) as w:
        for _ in range(10):
            w.write_frame((rng.random((96, 96, 3)) * 255).astype(np.uint8))
    video = api.ready_file("lip_sync_video", src)
    data = api.wait_task(
        api.create(tts_body(video, voice_id("en-male-1"), text="Hi.")), timeout=120
    )
    assert data["status"] == 30
    assert "no face" in data["msg"]


def test_model1_without_weights_says_it_fell_back(
    api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHANJING_LIPSYNC_MODEL1_ONNX", raising=False)
    video = api.ready_file("lip_sync_video", _face_video(tmp_path))
    body = tts_body(video, voice_id("en-male-1"), text="Hello there.", model=1)
    data = api.wait_task(api.create(body), timeout=120)
    assert data["status"] == 20, data
    assert "model 0" in data["msg"]
