"""The seed's whole flow with raw HTTP against the sandbox and a real renderer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import httpx
import pytest

from chanjing_avatar import _wire
from chanjing_avatar.sandbox import Sandbox, SandboxConfig

from .api import Api


@pytest.fixture(scope="module")
def real_sandbox(
    tmp_path_factory: pytest.TempPathFactory, test_sandbox_config: Callable[..., SandboxConfig]
) -> Iterator[Sandbox]:
    # The test config's renderer is the first (passthrough) one: no face needed in the tiny clip.
    config = test_sandbox_config(tmp_path_factory.mktemp("seed"))
    with Sandbox(config) as sb:
        yield sb


def _media_duration(path: Path) -> tuple[float, float, float]:
    """(container, video, audio) durations in seconds; the streams' by decoding every frame."""
    with av.open(str(path)) as container:
        assert container.streams.video and container.streams.audio
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264" and audio.codec_context.name == "aac"
        assert container.duration is not None and video.average_rate
        frame_s = 1 / float(video.average_rate)
        v_end = a_end = 0.0
        for frame in container.decode(video=0, audio=0):
            start = float(frame.time or 0)  # type: ignore[union-attr]
            if isinstance(frame, av.AudioFrame):
                a_end = max(a_end, start + frame.samples / frame.sample_rate)
            else:
                v_end = max(v_end, start + frame_s)
        return container.duration / 1_000_000, v_end, a_end


def _speech_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.duration is not None and stream.time_base is not None
        return float(stream.duration * stream.time_base)


def test_seed_flow_tts_and_audio(
    real_sandbox: Sandbox, tiny_video: Path, tiny_audio: Path, tmp_path: Path
) -> None:
    http = httpx.Client(base_url=real_sandbox.base_url, timeout=60)
    # 1. token
    token = http.post(
        _wire.PATH_ACCESS_TOKEN,
        json={"app_id": real_sandbox.app_id, "secret_key": real_sandbox.secret_key},
    ).json()
    assert token["code"] == 0
    headers = {"access_token": token["data"]["access_token"]}

    # 2. upload URL → PUT → poll file_detail until ready
    def upload(service: str, path: Path) -> str:
        info = http.get(
            _wire.PATH_CREATE_UPLOAD_URL,
            headers=headers,
            params={"service": service, "name": path.name},
        ).json()["data"]
        with path.open("rb") as f:
            put = httpx.put(
                info["sign_url"], content=f, headers={"Content-Type": info["mime_type"]}
            )
        assert put.status_code == 200
        deadline = time.monotonic() + 30
        while True:
            detail = http.get(
                _wire.PATH_FILE_DETAIL, headers=headers, params={"id": info["file_id"]}
            ).json()
            assert detail["code"] == 0
            if detail["data"]["status"] in (1, 2):
                return str(info["file_id"])
            assert detail["data"]["status"] == 0 and time.monotonic() < deadline, detail
            time.sleep(0.05)

    video_id = upload("lip_sync_video", tiny_video)
    audio_id = upload("lip_sync_audio", tiny_audio)

    # 3. voices
    voices = http.get(
        _wire.PATH_LIST_COMMON_AUDIO, headers=headers, params={"page": 1, "size": 50}
    ).json()["data"]["list"]
    assert voices
    voice = voices[0]["id"]

    # 4. create (tts and audio) → 5. detail until 20 → 6. download
    bodies = {
        "tts": {
            "video_file_id": video_id,
            "screen_width": 64,
            "screen_height": 96,
            "audio_type": "tts",
            "tts_config": {"text": "你好。", "audio_man_id": voice, "speed": 1.5, "pitch": 1},
        },
        "audio": {
            "video_file_id": video_id,
            "screen_width": 96,
            "screen_height": 64,
            "audio_type": "audio",
            "audio_file_id": audio_id,
            "backway": 2,
        },
    }
    for kind, body in bodies.items():
        created = http.post(_wire.PATH_LIPSYNC_CREATE, headers=headers, json=body).json()
        assert created["code"] == 0, created
        task_id = created["data"]
        deadline = time.monotonic() + 90
        while True:
            detail = http.get(
                _wire.PATH_LIPSYNC_DETAIL, headers=headers, params={"id": task_id}
            ).json()["data"]
            if detail["status"] in (20, 30):
                break
            assert time.monotonic() < deadline, detail
            time.sleep(0.1)
        assert detail["status"] == 20, detail
        out = tmp_path / f"{kind}.mp4"
        out.write_bytes(httpx.get(detail["video_url"], timeout=60).content)
        total, video_end, audio_end = _media_duration(out)
        assert abs(total * 1000 - detail["duration"]) <= 100, (total, detail)
        with av.open(str(out)) as container:
            stream = container.streams.video[0]
            assert (stream.width, stream.height) == (body["screen_width"], body["screen_height"])
        if kind == "audio":
            assert abs(audio_end - _speech_seconds(tiny_audio)) <= 0.1
        assert audio_end > 0.3  # some speech, and the video lasts as long as it
        assert abs(video_end - audio_end) <= 0.15
        preview = httpx.get(detail["preview_url"])
        assert preview.status_code == 200 and preview.content[:2] == b"\xff\xd8"
    http.close()


def test_audition_is_served(real_sandbox: Sandbox) -> None:
    client = Api(real_sandbox)
    client.login()
    voice = client.get(_wire.PATH_LIST_COMMON_AUDIO)["data"]["list"][0]
    sample = httpx.get(voice["audition"], timeout=60)
    assert sample.status_code == 200
    assert sample.content[:4] == b"RIFF"
    client.close()
