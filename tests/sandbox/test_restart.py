"""State survives a restart; interrupted tasks resume."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from chanjing_avatar import _wire

from .api import Api, tts_body
from .conftest import VOICE, Factory
from .stub import stub_renderer


def test_restart_keeps_state_and_resumes_tasks(sandbox_factory: Factory, tiny_video: Path) -> None:
    first_stub = stub_renderer()
    sb = sandbox_factory(renderer=first_stub, render_concurrency=1)
    client = Api(sb)
    token = client.login()
    video = client.ready_file("lip_sync_video", tiny_video)
    done = client.wait_task(client.create(tts_body(video, VOICE)))
    first_stub.gate.clear()
    running = client.create(tts_body(video, VOICE))
    queued = client.create(tts_body(video, VOICE))
    deadline = time.monotonic() + 5
    while client.detail(running)["status"] != 10:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    pending = client.upload_url("lip_sync_video", "later.mp4")
    credentials, base = (sb.app_id, sb.secret_key), sb.base_url
    client.close()
    sb.stop()

    second_stub = stub_renderer()
    sb2 = sandbox_factory(renderer=second_stub)
    assert (sb2.app_id, sb2.secret_key) == credentials
    client = Api(sb2)
    client.token = token  # tokens persist too
    assert client.wait_file(video)["status"] == 1
    again = client.detail(done["id"])
    assert again["status"] == 20
    assert httpx.get(again["video_url"]).content == tiny_video.read_bytes()
    for task_id in (running, queued):
        assert client.wait_task(task_id)["status"] == 20
    assert len(second_stub.jobs) == 2
    # An upload URL handed out before the restart still works.
    put = httpx.put(
        pending["sign_url"].replace(base, sb2.base_url),
        content=tiny_video.read_bytes(),
        headers={"Content-Type": "video/mp4"},
    )
    assert put.status_code == 200
    assert client.wait_file(pending["file_id"])["status"] == 1
    listed = client.post(_wire.PATH_LIPSYNC_LIST, {"page_size": 10})["data"]
    assert [t["id"] for t in listed["list"]] == [queued, running, done["id"]]
    client.close()


def test_task_whose_input_vanished_fails_with_a_reason(
    sandbox_factory: Factory, tiny_video: Path
) -> None:
    stub = stub_renderer()
    sb = sandbox_factory(renderer=stub)
    client = Api(sb)
    client.login()
    video = client.ready_file("lip_sync_video", tiny_video)
    stub.gate.clear()
    task_id = client.create(tts_body(video, VOICE))
    time.sleep(0.1)
    client.close()
    sb.stop()
    for blob in (sb.config.data_dir / "blobs" / "uploads").iterdir():
        blob.unlink()
    sb2 = sandbox_factory(renderer=stub_renderer())
    client = Api(sb2)
    client.login()
    data = client.wait_task(task_id)
    assert data["status"] == 30 and "no longer available" in data["msg"]
    client.close()
