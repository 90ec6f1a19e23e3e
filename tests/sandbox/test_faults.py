"""Fault injection: every kind, by script and by probability, through the admin API."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from chanjing_avatar import _wire
from chanjing_avatar.sandbox import Fault, FaultRule

from .api import Api, tts_body
from .conftest import VOICE, Factory
from .stub import StubRenderer


def _detail(api: Api) -> httpx.Response:
    return api.http.get(
        _wire.PATH_LIPSYNC_DETAIL, params={"id": "0" * 32}, headers={"access_token": api.token}
    )


def test_no_faults_by_default_and_no_admin_unless_enabled(
    sandbox_factory: Factory, stub: StubRenderer
) -> None:
    sb = sandbox_factory(
        renderer=stub, admin=False, faults=[FaultRule("*", Fault.parse("50000"))]
    )  # not enabled
    client = Api(sb)
    client.login()
    assert all(_detail(client).json()["code"] == 40000 for _ in range(5))
    assert httpx.get(sb.base_url + "/_sandbox/stats").status_code == 404
    with pytest.raises(RuntimeError):
        sb.admin  # noqa: B018
    client.close()


def test_scripted_sequence_of_codes_and_gateway_errors(api: Api) -> None:
    api.sb.admin.add_fault("lipsync_detail", sequence=["50000", None, "40001", "502"])
    answers = [_detail(api) for _ in range(5)]
    assert answers[0].json()["code"] == 50000
    assert answers[1].json()["code"] == 40000  # let through
    assert answers[2].json()["code"] == 40001
    assert answers[3].status_code == 502 and "<html>" in answers[3].text
    assert answers[3].headers["content-type"].startswith("text/html")
    assert answers[4].json()["code"] == 40000  # script used up
    assert api.sb.admin.count("lipsync_detail", "http_502") == 1
    assert api.sb.admin.count("lipsync_detail", 50000) == 1


def test_probability_and_times(api: Api) -> None:
    api.sb.admin.add_fault("lipsync_list", "51000", probability=1.0, times=3)
    codes = [api.post(_wire.PATH_LIPSYNC_LIST, {})["code"] for _ in range(5)]
    assert codes == [51000] * 3 + [0, 0]
    api.sb.admin.clear_faults()
    api.sb.admin.add_fault("*", "50000", probability=0.5)
    codes = [api.post(_wire.PATH_LIPSYNC_LIST, {})["code"] for _ in range(60)]
    assert 10 < codes.count(50000) < 50 and codes.count(0) == 60 - codes.count(50000)
    api.sb.admin.clear_faults()
    assert api.sb.admin.faults() == []


def test_dropped_connection_mid_response(api: Api) -> None:
    api.sb.admin.add_fault("lipsync_list", "drop", times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        api.http.post(_wire.PATH_LIPSYNC_LIST, json={}, headers={"access_token": api.token})
    assert api.post(_wire.PATH_LIPSYNC_LIST, {})["code"] == 0
    assert api.sb.admin.count("lipsync_list", "dropped") == 1


def test_delay(api: Api) -> None:
    api.sb.admin.add_fault("list_common_audio", "delay:0.5", times=1)
    started = time.monotonic()
    assert api.get(_wire.PATH_LIST_COMMON_AUDIO)["code"] == 0
    assert time.monotonic() - started >= 0.5
    started = time.monotonic()
    api.get(_wire.PATH_LIST_COMMON_AUDIO)
    assert time.monotonic() - started < 0.4


def test_token_invalidation(api: Api) -> None:
    api.sb.admin.add_fault("list_common_audio", "invalidate_token", times=1)
    assert api.get(_wire.PATH_LIST_COMMON_AUDIO)["code"] == 10400
    assert api.get(_wire.PATH_LIST_COMMON_AUDIO)["code"] == 10400  # the token stays dead
    api.login()
    assert api.get(_wire.PATH_LIST_COMMON_AUDIO)["code"] == 0


def test_file_status_98(api: Api, tiny_video: Path) -> None:
    api.sb.admin.add_fault("file_detail", "file_98", times=1)
    file_id = api.upload("lip_sync_video", tiny_video)
    data = api.wait_file(file_id)
    assert data["status"] == 98 and "fault" in data["msg"]
    assert api.wait_file(file_id)["status"] == 98  # stays failed
    api.sb.admin.add_fault("upload", "file_98", times=1)
    assert api.wait_file(api.upload("lip_sync_video", tiny_video))["status"] == 98


def test_task_failure_with_billing_message(api: Api, tiny_video: Path) -> None:
    video = api.ready_file("lip_sync_video", tiny_video)
    api.sb.admin.add_fault("lipsync_create", "task_failure", times=1)
    failed = api.wait_task(api.create(tts_body(video, VOICE)))
    assert failed["status"] == 30 and _wire.is_billing_failure(failed["msg"])
    assert "余额不足" in failed["msg"]
    assert api.wait_task(api.create(tts_body(video, VOICE)))["status"] == 20


def test_upload_and_download_faults(api: Api, tiny_video: Path) -> None:
    info = api.upload_url("lip_sync_video", "v.mp4")
    api.sb.admin.add_fault("upload", "503", times=1)
    put = httpx.put(
        info["sign_url"],
        content=tiny_video.read_bytes(),
        headers={"Content-Type": info["mime_type"]},
    )
    assert put.status_code == 503
    put = httpx.put(
        info["sign_url"],
        content=tiny_video.read_bytes(),
        headers={"Content-Type": info["mime_type"]},
    )
    assert put.status_code == 200
    api.wait_file(info["file_id"])
    done = api.wait_task(api.create(tts_body(info["file_id"], VOICE)))
    api.sb.admin.add_fault("download", "drop", times=1)
    with pytest.raises(httpx.HTTPError):
        httpx.get(done["video_url"])
    assert httpx.get(done["video_url"]).content == tiny_video.read_bytes()


def test_initial_plan_from_config(sandbox_factory: Factory, stub: StubRenderer) -> None:
    sb = sandbox_factory(
        renderer=stub,
        faults_enabled=True,
        faults=[FaultRule("lipsync_detail", sequence=[Fault.parse("code:40002")])],
    )
    client = Api(sb)
    client.login()
    assert _detail(client).json()["code"] == 40002
    assert _detail(client).json()["code"] == 40000
    client.close()


def test_bad_rules_are_refused(api: Api) -> None:
    with pytest.raises(ValueError):
        api.sb.admin.set_faults([{"endpoint": "x", "fault": {"kind": "explode"}}])
    answer = httpx.post(api.sb.base_url + "/_sandbox/faults", json={"endpoint": "x"})
    assert answer.status_code == 400
