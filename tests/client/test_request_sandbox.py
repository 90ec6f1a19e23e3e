"""The keyword forms of create and make send what the LipSyncRequest form sends (sync and async),
over loopback HTTP to the sandbox."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from chanjing_avatar import AsyncClient, Client, LipSyncRequest, MakeEvent
from chanjing_avatar._wire import PATH_LIPSYNC_CREATE
from media_maker import make_video

OPTIONS: dict[str, Any] = {"text": "你好", "voice_id": "a" * 32, "speed": 1.2, "pitch": 0.8,
                           "backway": 2, "drive_mode": "random", "model": 1, "volume": 50}


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Landscape, so that "the video's own size" differs from the API's default.
    return make_video(tmp_path_factory.mktemp("media") / "wide.mp4", width=320, height=176)


class Recording(httpx.HTTPTransport):
    def __init__(self, bodies: list[dict[str, Any]]) -> None:
        super().__init__()
        self.bodies = bodies

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == PATH_LIPSYNC_CREATE:
            self.bodies.append(json.loads(request.read()))
        return super().handle_request(request)


class AsyncRecording(httpx.AsyncHTTPTransport):
    def __init__(self, bodies: list[dict[str, Any]]) -> None:
        super().__init__()
        self.bodies = bodies

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == PATH_LIPSYNC_CREATE:
            self.bodies.append(json.loads(await request.aread()))
        return await super().handle_async_request(request)


def _sync(sb: Any, out: Path, video: Path) -> tuple[list[dict[str, Any]], list[str]]:
    bodies: list[dict[str, Any]] = []
    uploaded: list[str] = []
    events: list[MakeEvent] = []
    with Client(sb.app_id, sb.secret_key, base_url=sb.base_url, credentials_dir=out / "cred",
                transport=Recording(bodies), allow_http=True) as c:
        uploaded.append(c.files.upload(video, "lip_sync_video").id)
        c.lipsync.create(video_file_id=uploaded[0], video_path=video, **OPTIONS)
        c.lipsync.create(LipSyncRequest(video=video, **OPTIONS), on_event=events.append)
        uploaded.append(next(e.file_id for e in events if e.file_id))
        uploaded.append(c.lipsync.make(video=str(video), output=out / "a.mp4",
                                       **OPTIONS).video_file_id)
        uploaded.append(c.lipsync.make(LipSyncRequest(video=video, **OPTIONS),
                                       output=out / "b.mp4").video_file_id)
    return bodies, uploaded


def _async(sb: Any, out: Path, video: Path) -> tuple[list[dict[str, Any]], list[str]]:
    bodies: list[dict[str, Any]] = []
    uploaded: list[str] = []
    events: list[MakeEvent] = []

    async def main() -> None:
        async with AsyncClient(sb.app_id, sb.secret_key, base_url=sb.base_url,
                               credentials_dir=out / "cred", transport=AsyncRecording(bodies),
                               allow_http=True) as c:
            uploaded.append((await c.files.upload(video, "lip_sync_video")).id)
            await c.lipsync.create(video_file_id=uploaded[0], video_path=video, **OPTIONS)
            await c.lipsync.create(LipSyncRequest(video=video, **OPTIONS), on_event=events.append)
            uploaded.append(next(e.file_id for e in events if e.file_id))
            result = await c.lipsync.make(video=str(video), output=out / "a.mp4", **OPTIONS)
            uploaded.append(result.video_file_id)
            result = await c.lipsync.make(LipSyncRequest(video=video, **OPTIONS),
                                          output=out / "b.mp4")
            uploaded.append(result.video_file_id)

    asyncio.run(main())
    return bodies, uploaded


@pytest.mark.parametrize("run", [_sync, _async], ids=["sync", "async"])
def test_keyword_and_request_forms_send_the_same_body(
    copy_sandbox: Any, tmp_path: Path, video: Path, run: Any
) -> None:
    bodies, uploaded = run(copy_sandbox, tmp_path, video)
    assert len(bodies) == 4 and len(set(uploaded)) == 4  # create(request) uploaded its video
    assert [b.pop("video_file_id") for b in bodies] == uploaded
    assert bodies[0] == bodies[1] == bodies[2] == bodies[3]
    assert (bodies[0]["screen_width"], bodies[0]["screen_height"]) == (320, 176)
    assert bodies[0]["tts_config"] == {"text": ["你好"], "audio_man_id": "a" * 32,
                                       "speed": 1.2, "pitch": 0.8}
