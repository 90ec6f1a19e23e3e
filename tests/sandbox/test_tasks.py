"""Lip-sync tasks: create validation, life cycle, pacing, concurrency, detail and list."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from chanjing_avatar import _wire

from .api import Api, tts_body
from .conftest import VOICE, Factory
from .stub import PREVIEW_BYTES, FakeRenderer


@pytest.fixture
def video_id(api: Api, tiny_video: Path) -> str:
    return api.ready_file("lip_sync_video", tiny_video)


@pytest.fixture
def audio_id(api: Api, tiny_audio: Path) -> str:
    return api.ready_file("lip_sync_audio", tiny_audio)


def _tts(**changes: Any) -> dict[str, Any]:
    config = {"text": "你好", "audio_man_id": VOICE}
    config.update(changes)
    return config


BAD_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"screen_width": 10}, "screen_width"),
    ({"screen_height": "1920"}, "screen_height"),
    ({"screen_width": 1.5}, "screen_width"),
    ({"backway": 3}, "backway"),
    ({"drive_mode": "fast"}, "drive_mode"),
    ({"model": 2}, "model"),
    ({"volume": 0}, "volume"),
    ({"volume": 101}, "volume"),
    ({"callback": "ftp://x"}, "callback"),
    ({"audio_type": "video"}, "audio_type"),
    ({"tts_config": None}, "tts_config"),
    ({"tts_config": _tts(text="")}, "tts_config.text"),
    ({"tts_config": _tts(text="   ")}, "tts_config.text"),
    ({"tts_config": _tts(text="字" * 4000)}, "tts_config.text"),
    ({"tts_config": _tts(text=5)}, "tts_config.text"),
    ({"tts_config": _tts(text=["a", 1])}, "tts_config.text"),
    ({"tts_config": _tts(speed=0.4)}, "tts_config.speed"),
    ({"tts_config": _tts(speed=2.5)}, "tts_config.speed"),
    ({"tts_config": _tts(speed="fast")}, "tts_config.speed"),
    ({"tts_config": _tts(pitch=3)}, "tts_config.pitch"),
    ({"tts_config": _tts(audio_man_id="")}, "tts_config.audio_man_id"),
    ({"tts_config": _tts(audio_man_id="f" * 32)}, "tts_config.audio_man_id"),
    ({"audio_type": "audio"}, "audio_file_id"),
    ({"video_file_id": ""}, "video_file_id"),
    ({"video_file_id": 7}, "video_file_id"),
    ({"video_file_id": "0" * 32}, "video_file_id"),
]


@pytest.mark.parametrize(("change", "field"), BAD_FIELDS)
def test_create_names_the_wrong_field(
    api: Api, video_id: str, change: dict[str, Any], field: str
) -> None:
    body = {**tts_body(video_id, VOICE), **change}
    answer = api.post(_wire.PATH_LIPSYNC_CREATE, body)
    assert answer["code"] == 40000, answer
    assert field in answer["msg"]
    assert answer["data"] is None


def test_create_body_must_be_an_object(api: Api) -> None:
    assert api.post(_wire.PATH_LIPSYNC_CREATE, [1])["code"] == 40000
    raw = api.http.post(
        _wire.PATH_LIPSYNC_CREATE, content=b"{", headers={"access_token": api.token}
    )
    assert raw.json()["code"] == 400


def test_create_checks_the_files(
    api: Api, video_id: str, audio_id: str, tiny_video: Path, tmp_path: Path
) -> None:
    # The audio file where a video is expected, and the reverse.
    wrong = api.post(_wire.PATH_LIPSYNC_CREATE, tts_body(audio_id, VOICE))
    assert wrong["code"] == 40000 and "video_file_id" in wrong["msg"]
    swapped = {"video_file_id": video_id, "audio_type": "audio", "audio_file_id": video_id}
    wrong = api.post(_wire.PATH_LIPSYNC_CREATE, swapped)
    assert wrong["code"] == 40000 and "audio_file_id" in wrong["msg"]
    # Not uploaded yet.
    pending = api.upload_url("lip_sync_video", "later.mp4")["file_id"]
    answer = api.post(_wire.PATH_LIPSYNC_CREATE, tts_body(pending, VOICE))
    assert answer["code"] == 40000 and "not ready" in answer["msg"]
    # Failed its check.
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"junk" * 50)
    bad = api.upload("lip_sync_video", junk)
    api.wait_file(bad)
    answer = api.post(_wire.PATH_LIPSYNC_CREATE, tts_body(bad, VOICE))
    assert answer["code"] == 40000 and "unusable" in answer["msg"]
    # Another app's file.
    app_id, secret = api.sb.admin.add_app()
    stranger = Api(api.sb, app_id, secret)
    stranger.login()
    answer = stranger.post(_wire.PATH_LIPSYNC_CREATE, tts_body(video_id, VOICE))
    assert answer["code"] == 40000 and "video_file_id" in answer["msg"]
    stranger.close()


def test_tts_task_succeeds_with_text_as_string_or_array(
    api: Api, video_id: str, stub: FakeRenderer
) -> None:
    for text in ("一句话。", ["第一句。", "第二句。"]):
        task_id = api.create(tts_body(video_id, VOICE, text=text))  # type: ignore[arg-type]
        assert len(task_id) == 32 and int(task_id, 16) >= 0
        data = api.wait_task(task_id)
        assert data["status"] == 20 and data["progress"] == 100
        assert data["msg"] == "success"
        assert data["duration"] == 1000
        assert abs(data["create_time"] - time.time()) < 60
        assert urlsplit(data["video_url"]).path.endswith(f"/{task_id}.mp4")  # (signed: a query)
        assert httpx.get(data["preview_url"]).content == PREVIEW_BYTES
    assert list(stub.jobs[-1].speech.text) == ["第一句。", "第二句。"]  # type: ignore[union-attr]
    assert stub.jobs[-1].width == 64


def test_audio_task_and_defaults(
    api: Api, video_id: str, audio_id: str, stub: FakeRenderer, tiny_audio: Path
) -> None:
    task_id = api.create(
        {"video_file_id": video_id, "audio_type": "audio", "audio_file_id": audio_id}
    )
    assert api.wait_task(task_id)["status"] == 20
    job = stub.jobs[-1]
    assert (job.width, job.height, job.backway, job.drive_mode, job.model, job.volume) == (
        1080,
        1920,
        1,
        "",
        0,
        100,
    )
    assert job.speech.audio_path.read_bytes() == tiny_audio.read_bytes()  # type: ignore[union-attr]


def test_render_error_fails_the_task(api: Api, video_id: str) -> None:
    data = api.wait_task(api.create(tts_body(video_id, VOICE, text="please FAIL")))
    assert data["status"] == 30
    assert data["msg"] == "the fake renderer was told to fail"
    assert data["video_url"] == "" and data["preview_url"] == ""


def test_paced_task_shows_rising_progress(
    sandbox_factory: Factory, stub: FakeRenderer, tiny_video: Path
) -> None:
    # 60 sandbox seconds at time_scale 40: 1.5 real seconds.
    sb = sandbox_factory(renderer=stub, task_min_duration_s=60, time_scale=40)
    client = Api(sb)
    client.login()
    task_id = client.create(tts_body(client.ready_file("lip_sync_video", tiny_video), VOICE))
    started = time.monotonic()
    seen: list[tuple[int, int]] = []
    while True:
        data = client.detail(task_id)
        seen.append((data["status"], data["progress"]))
        if data["status"] == 20:
            break
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    assert 1.3 <= elapsed < 5, elapsed
    generating = [p for s, p in seen if s == 10]
    assert len(set(generating)) >= 5, seen
    assert generating == sorted(generating)
    assert seen[-1] == (20, 100)
    client.close()


def test_render_concurrency_limits_running_tasks(
    sandbox_factory: Factory, stub: FakeRenderer, tiny_video: Path
) -> None:
    sb = sandbox_factory(renderer=stub, render_concurrency=1)
    client = Api(sb)
    client.login()
    video = client.ready_file("lip_sync_video", tiny_video)
    stub.gate.clear()
    first = client.create(tts_body(video, VOICE))
    second = client.create(tts_body(video, VOICE))
    deadline = time.monotonic() + 5
    while client.detail(first)["status"] != 10:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.2)
    assert client.detail(second)["status"] == 0
    stub.gate.set()
    assert client.wait_task(second)["status"] == 20
    assert stub.peak == 1
    client.close()


def test_detail_errors(api: Api, video_id: str) -> None:
    task_id = api.create(tts_body(video_id, VOICE))
    assert api.get(_wire.PATH_LIPSYNC_DETAIL)["code"] == 40000
    assert api.get(_wire.PATH_LIPSYNC_DETAIL, id="0" * 32)["code"] == 40000
    assert api.get(_wire.PATH_LIPSYNC_DETAIL, id="'; drop table tasks; --")["code"] == 40000
    app_id, secret = api.sb.admin.add_app()
    stranger = Api(api.sb, app_id, secret)
    stranger.login()
    assert stranger.get(_wire.PATH_LIPSYNC_DETAIL, id=task_id)["code"] == 40000
    stranger.close()
    assert api.detail(task_id)["id"] == task_id


def test_list_pages_newest_first_own_tasks_only(api: Api, video_id: str) -> None:
    ids = [api.create(tts_body(video_id, VOICE)) for _ in range(5)]
    app_id, secret = api.sb.admin.add_app()
    stranger = Api(api.sb, app_id, secret)
    stranger.login()
    theirs = stranger.post(_wire.PATH_LIPSYNC_LIST, {"page": 1, "page_size": 10})
    assert theirs["data"]["list"] == []
    assert theirs["data"]["page_info"] == {"page": 1, "size": 10, "total_count": 0, "total_page": 0}
    stranger.close()

    first = api.post(_wire.PATH_LIPSYNC_LIST, {"page": 1, "page_size": 2})["data"]
    second = api.post(_wire.PATH_LIPSYNC_LIST, {"page": 2, "page_size": 2})["data"]
    third = api.post(_wire.PATH_LIPSYNC_LIST, {"page": 3, "page_size": 2})["data"]
    listed = [t["id"] for page in (first, second, third) for t in page["list"]]
    assert listed == ids[::-1]
    assert first["page_info"] == {"page": 1, "size": 2, "total_count": 5, "total_page": 3}
    assert set(first["list"][0]) == {
        "id",
        "status",
        "progress",
        "msg",
        "video_url",
        "preview_url",
        "duration",
        "create_time",
    }
    no_body = api.http.post(_wire.PATH_LIPSYNC_LIST, headers={"access_token": api.token})
    assert no_body.json()["data"]["page_info"]["total_count"] == 5
    defaults = api.post(_wire.PATH_LIPSYNC_LIST, {})["data"]["page_info"]
    assert (defaults["page"], defaults["size"]) == (1, 10)
    for bad in ({"page": 0}, {"page_size": "10"}, {"page": True}):
        assert api.post(_wire.PATH_LIPSYNC_LIST, bad)["code"] == 40000
    assert len(api.sb.admin.tasks()) == 5


def test_pacing_changes_at_run_time(api: Api, video_id: str) -> None:
    admin = api.sb.admin
    assert admin.pacing()["task_min_duration_s"] == 0
    admin.set_pacing(task_min_duration_s=0.8)
    started = time.monotonic()
    assert api.wait_task(api.create(tts_body(video_id, VOICE)))["status"] == 20
    assert time.monotonic() - started >= 0.75
    admin.set_pacing(task_min_duration_s=0, time_scale=2.0)
    assert admin.pacing() == {
        "time_scale": 2.0,
        "file_sync_delay_s": 0.05,
        "task_min_duration_s": 0.0,
    }
    assert api.sb.admin.count("admin") == 0  # the admin API does not count itself
