"""Signed upload URLs: unknown query parameters are refused, and a re-upload never changes what
a task already created renders."""

from __future__ import annotations

from pathlib import Path

import httpx

from chanjing_avatar import _wire

from .api import Api, assert_store_error, tts_body
from .conftest import VOICE
from .stub import FakeRenderer


def test_unknown_query_parameters_get_403(api: Api, sandbox_target: str) -> None:
    info = api.upload_url("lip_sync_video", "a.mp4")
    for extra in ("x-amz-acl=public-read", "Expires2=1", "response-content-type=text/html"):
        put = httpx.put(
            f"{info['sign_url']}&{extra}", content=b"x", headers={"Content-Type": "video/mp4"}
        )
        assert put.status_code == 403, (extra, put.text)
        assert_store_error(put, "AccessDenied", sandbox_target)
        assert sandbox_target != "embedded" or "not covered" in put.text
    detail = api.get(_wire.PATH_FILE_DETAIL, id=info["file_id"])
    assert detail["data"]["msg"] == "waiting for the upload", detail


def test_a_reupload_does_not_change_a_created_task(
    api: Api, stub: FakeRenderer, tiny_video: Path, tmp_path: Path
) -> None:
    info = api.upload_url("lip_sync_video", "v.mp4")
    original = tiny_video.read_bytes()
    put = httpx.put(info["sign_url"], content=original, headers={"Content-Type": "video/mp4"})
    assert put.status_code == 200
    assert api.wait_file(info["file_id"])["status"] == 1
    stub.gate.clear()  # the task is created, then held before it renders
    task_id = api.create(tts_body(info["file_id"], VOICE))
    swapped = original[:-16] + b"\0" * 16
    put = httpx.put(info["sign_url"], content=swapped, headers={"Content-Type": "video/mp4"})
    assert put.status_code == 200  # the file itself may be replaced...
    assert httpx.get(info["full_path"]).content == swapped
    stub.gate.set()
    done = api.wait_task(task_id)
    assert done["status"] == 20
    # ...but the task renders what it was created with.
    assert httpx.get(done["video_url"]).content == original


def test_non_ascii_signatures_and_dates_get_403_not_500(api: Api) -> None:
    info = api.upload_url("lip_sync_video", "a.mp4")
    base = info["sign_url"].split("?")[0]
    for query in ({"Expires": "4102444800", "Signature": "\x80é"},  # compare_digest refuses str
                  {"Expires": "²³", "Signature": "abc"}):  # isdigit, yet not int()
        put = httpx.put(base, params=query, content=b"x", headers={"Content-Type": "video/mp4"})
        assert put.status_code == 403, (query, put.status_code, put.text)


def test_a_non_ascii_secret_key_is_refused_not_a_500(api: Api) -> None:
    r = api.http.post(_wire.PATH_ACCESS_TOKEN, json={"app_id": api.app_id, "secret_key": "\x80é"})
    assert r.status_code == 200 and r.json()["code"] == _wire.Code.AUTH_FAILED, r.text
