"""A photo as the source: the client uploads a still video of it; the sandbox renders that.

Over loopback HTTP to a sandbox with the passthrough renderer (real decoding, speech and encoding;
the mouth does not move), so the output's frames are the photo's.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chanjing_avatar import (
    AsyncClient,
    Client,
    ConfigurationError,
    InvalidRequestError,
    LipSyncRequest,
    MakeEvent,
)
from chanjing_avatar._photo import GOP_FRAMES, speech_seconds, write_still_video
from chanjing_avatar._wire import PHOTO_EXTENSIONS, SOURCE_EXTENSIONS, VIDEO_EXTENSIONS
from media_maker import make_photo, make_wav

av = pytest.importorskip("av", reason="needs PyAV (pip install -e .[photo])")
np = pytest.importorskip("numpy")
sandbox = pytest.importorskip("chanjing_avatar.sandbox", reason="needs the sandbox extra")


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    cfg = sandbox.SandboxConfig(data_dir=tmp_path_factory.mktemp("sandbox"), admin=True,
                                renderer="passthrough", rate_limit_scale=100,
                                file_sync_delay_s=0.05)
    with sandbox.Sandbox(cfg) as server:
        yield server


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the client's temporary folders go during the test (to see them come and go)."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def _client(sb: Any, tmp_path: Path) -> Client:
    return Client(sb.app_id, sb.secret_key, base_url=sb.base_url,
                  credentials_dir=tmp_path / "cred", allow_http=True)


def _frames(path: Path) -> tuple[int, int, list[Any]]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        return s.width, s.height, frames


def _looks_like_the_photo(frame: Any) -> None:
    h, w = frame.shape[:2]
    red, blue = frame[h // 2, w // 4], frame[h // 2, 3 * w // 4]
    assert red[0] > 150 and red[2] < 80, red
    assert blue[2] > 150 and blue[0] < 80, blue


def test_the_accepted_extensions_come_from_the_wire() -> None:
    assert set(SOURCE_EXTENSIONS) == set(VIDEO_EXTENSIONS) | {"jpg", "jpeg", "png", "webp"}
    assert set(PHOTO_EXTENSIONS) <= set(SOURCE_EXTENSIONS)
    assert LipSyncRequest(video=Path("me.JPG"), text="hi").video_is_photo
    assert not LipSyncRequest(video=Path("me.mp4"), text="hi").video_is_photo
    with pytest.raises(InvalidRequestError, match="file name, not a file id"):
        LipSyncRequest(video="me.webp", text="hi")


def test_make_from_a_jpg_renders_the_photo(sb: Any, tmp_path: Path, temp_root: Path) -> None:
    photo = make_photo(tmp_path / "face.jpg", 301, 203)  # odd: rounded down to 300x202
    seen: list[list[tuple[str, int]]] = []

    def on_event(e: MakeEvent) -> None:
        if e.stage == "upload_video" and e.file_id:  # the still video exists while uploading
            seen.append([(p.name, p.stat().st_mode & 0o777) for p in sorted(temp_root.rglob("*"))])

    with _client(sb, tmp_path) as c:
        voice = c.voices.list(lang="zh")[0].id
        result = c.lipsync.make(video=str(photo), text="你好，世界。", voice_id=voice,
                                output=tmp_path / "out.mp4", on_event=on_event)
    width, height, frames = _frames(result.download.path)
    assert (width, height) == (300, 202)
    assert len(frames) >= 10
    for frame in (frames[0], frames[-1]):
        _looks_like_the_photo(frame)
    # It was a private folder holding face.mp4, and it is gone.
    (folder, folder_mode), (video, _) = seen[0]
    assert folder.startswith("chanjing-photo-") and folder_mode == 0o700 and video == "face.mp4"
    assert list(temp_root.iterdir()) == []


def test_create_from_a_png_with_audio_lasts_as_long_as_the_audio(
    sb: Any, tmp_path: Path, temp_root: Path
) -> None:
    photo = make_photo(tmp_path / "face.png", 256, 320, alpha=True)
    audio = make_wav(tmp_path / "speech.wav", seconds=2.0)
    request = LipSyncRequest(video=photo, audio=audio)
    assert speech_seconds(request) == pytest.approx(2.0, abs=0.05)

    async def main() -> Path:
        async with AsyncClient(sb.app_id, sb.secret_key, base_url=sb.base_url,
                               credentials_dir=tmp_path / "cred", allow_http=True) as c:
            task_id = await c.lipsync.create(request)
            task = await c.lipsync.wait(task_id, timeout=120)
            return (await c.lipsync.download(task, tmp_path / "out.mp4")).path

    out = asyncio.run(main())
    width, height, frames = _frames(out)
    assert (width, height) == (256, 320)
    assert len(frames) == pytest.approx(2.0 * 25, abs=2)
    h, w = frames[0].shape[:2]
    assert frames[0][h // 2, 3 * w // 4].min() > 200  # transparent: on white
    assert list(temp_root.iterdir()) == []


def test_a_long_speech_is_cheap_and_exact(tmp_path: Path) -> None:
    """Ten minutes of still video: a key frame per group, every frame there."""
    photo = make_photo(tmp_path / "face.webp", 640, 480)
    out = tmp_path / "long.mp4"
    assert write_still_video(photo, out, 600.0) == (640, 480)
    with av.open(str(out)) as c:
        packets = [p for p in c.demux(video=0) if p.size]
        assert float(c.duration) / 1e6 == pytest.approx(600.0, abs=0.1)
    assert len(packets) == 600 * 25
    assert sum(p.is_keyframe for p in packets) == 600 * 25 // GOP_FRAMES
    assert out.stat().st_size < 5 * 1024 * 1024


def test_an_exif_rotated_photo_is_upright(tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "phone.jpg", 300, 200, orientation=6)  # turn 90° clockwise
    assert write_still_video(photo, tmp_path / "o.mp4", 1.0) == (200, 300)
    _, _, frames = _frames(tmp_path / "o.mp4")
    top, right = frames[0][40, 100], frames[0][150, 195]
    assert top[0] > 150 and top[2] < 80  # the left (red) half is on top
    assert abs(int(right[0]) - 128) < 30 and abs(int(right[2]) - 128) < 30  # the grey bar right


@pytest.mark.parametrize("content", [b"not a picture at all" * 10, b"\xff\xd8\xff" + b"\0" * 64])
def test_a_bad_image_is_one_line_before_any_upload(
    sb: Any, tmp_path: Path, temp_root: Path, content: bytes
) -> None:
    photo = tmp_path / "broken.jpg"
    photo.write_bytes(content)
    sb.admin.reset_stats()
    with _client(sb, tmp_path) as c, pytest.raises(InvalidRequestError) as err:
        c.lipsync.make(video=photo, text="你好", voice_id="a" * 32, output=tmp_path / "o.mp4")
    assert err.value.field == "video"
    assert str(photo) in str(err.value) and "\n" not in str(err.value)
    assert sb.admin.count(endpoint="create_upload_url") == 0
    assert list(temp_root.iterdir()) == []
    assert not (tmp_path / "o.mp4").exists()


def test_a_tiny_photo_is_refused(tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "icon.png", 40, 40)
    with pytest.raises(InvalidRequestError, match="at least 64 px"):
        write_still_video(photo, tmp_path / "o.mp4", 1.0)


def test_without_the_extra_the_error_names_it(tmp_path: Path) -> None:
    """In a process where PyAV cannot be imported: one line naming the extra, nothing sent."""
    photo = make_photo(tmp_path / "face.jpg", 128, 128)
    code = f"""
import sys
sys.modules["av"] = None  # as if PyAV were not installed
from chanjing_avatar import Client, ConfigurationError
c = Client("app", "secret", base_url="http://127.0.0.1:9", credentials_dir={str(tmp_path)!r})
try:
    c.lipsync.make(video={str(photo)!r}, text="hi", voice_id="v" * 32, output="o.mp4")
except ConfigurationError as e:
    print(e)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=dict(os.environ, CHANJING_LOG=""))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines() == [
        "a photo as the video needs PyAV to make a video of it: "
        "pip install 'chanjing-avatar[photo]'"
    ]
    assert issubclass(ConfigurationError, ValueError)
