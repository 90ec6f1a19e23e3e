"""Requests that match no route: answered in the family's own style, never FastAPI's default body
nor a traceback. Also the gateway-like path handling (merged slashes) and the upload's full_path."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from chanjing_avatar import _wire
from chanjing_avatar.sandbox import Sandbox

from .api import Api, envelope
from .conftest import Factory
from .stub import FakeRenderer


def _error_envelope(answer: httpx.Response, status: int) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body: dict[str, object] = answer.json()
    assert set(body) == {"trace_id", "code", "msg", "data"}, body
    assert len(str(body["trace_id"])) == 32 and body["code"] == status and body["data"] is None
    assert "Traceback" not in answer.text and "detail" not in body
    return body


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/"),
        ("GET", "/nope"),
        ("POST", "/open/v1/video_lip_sync/cancel"),
        ("GET", "/open/v2/common/file_detail"),
        ("GET", "/result/other/x.mp4"),
    ],
)
def test_unknown_paths_get_an_envelope_404(api: Api, method: str, path: str) -> None:
    body = _error_envelope(api.http.request(method, path), 404)
    assert "not found" in str(body["msg"])


@pytest.mark.parametrize(
    "method, path, allow",
    [
        ("GET", _wire.PATH_ACCESS_TOKEN, "POST"),
        ("DELETE", _wire.PATH_ACCESS_TOKEN, "POST"),
        ("POST", _wire.PATH_FILE_DETAIL, "GET"),
        ("GET", _wire.PATH_LIPSYNC_LIST, "POST"),
        ("PUT", _wire.PATH_LIPSYNC_CREATE, "POST"),
    ],
)
def test_wrong_methods_get_an_envelope_405(api: Api, method: str, path: str, allow: str) -> None:
    answer = api.http.request(method, path, headers={"access_token": api.token})
    body = _error_envelope(answer, 405)
    assert answer.headers["allow"] == allow
    assert method in str(body["msg"]) and allow in str(body["msg"])


def test_object_store_paths_answer_xml(api: Api) -> None:
    answer = api.http.post(f"/result/lip-sync/{'a' * 32}.mp4")
    assert answer.status_code == 405
    assert answer.headers["content-type"].startswith("application/xml")
    assert b"<Code>MethodNotAllowed</Code>" in answer.content
    answer = api.http.delete(f"/upload/{'a' * 32}")
    assert answer.status_code == 405 and b"<Code>MethodNotAllowed</Code>" in answer.content


def test_admin_paths_answer_plain_json_or_nothing(
    api: Api, sandbox_factory: Factory, stub: FakeRenderer
) -> None:
    answer = api.http.get("/_sandbox/nope")
    assert answer.status_code == 401 and "error" in answer.json()  # no token: nothing told
    auth = {"Authorization": f"Bearer {api.sb.admin_token}"}
    answer = api.http.get("/_sandbox/nope", headers=auth)
    assert answer.status_code == 404 and "error" in answer.json()
    closed: Sandbox = sandbox_factory(renderer=stub, admin=False, data_dir=None)
    _error_envelope(httpx.get(closed.base_url + "/_sandbox/stats"), 404)


def test_a_crash_is_an_envelope_without_traceback(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise RuntimeError("a bug, not bad input")

    monkeypatch.setattr(api.sb.core, "voices", broken)
    answer = api.http.get(_wire.PATH_LIST_COMMON_AUDIO, headers={"access_token": api.token})
    assert answer.status_code == 500
    body = answer.json()
    assert set(body) == {"trace_id", "code", "msg", "data"} and body["code"] == 50000
    assert "Traceback" not in answer.text and "a bug" not in answer.text
    assert api.sb.admin.count("list_common_audio", "http_500") == 1


def test_repeated_slashes_are_merged_like_the_gateway(api: Api, tiny_video: Path) -> None:
    # A base URL given with a trailing "/" (the vendor's older scripts do not strip it).
    base = api.sb.base_url + "/"
    token = envelope(
        httpx.post(
            base + _wire.PATH_ACCESS_TOKEN,
            json={"app_id": api.app_id, "secret_key": api.secret},
        )
    )
    assert token["code"] == 0
    headers = {"access_token": token["data"]["access_token"]}
    info = envelope(
        httpx.get(
            base + _wire.PATH_CREATE_UPLOAD_URL,
            params={"service": "lip_sync_video", "name": "a.mp4"},
            headers=headers,
        )
    )["data"]
    put = httpx.put(
        info["sign_url"].replace("/upload/", "//upload/"),
        content=tiny_video.read_bytes(),
        headers={"Content-Type": info["mime_type"]},
    )
    assert put.status_code == 200, put.text
    assert api.sb.admin.count("access_token", "0") == 2


def test_full_path_serves_the_uploaded_bytes(api: Api, tiny_video: Path) -> None:
    info = api.upload_url("lip_sync_video", "clip.mp4")
    # (a deployment answers a redirect to the object store: HTTP clients follow it)
    before = httpx.get(info["full_path"], follow_redirects=True)
    assert before.status_code == 404 and b"<Code>NoSuchKey</Code>" in before.content
    data = tiny_video.read_bytes()
    put = httpx.put(info["sign_url"], content=data, headers={"Content-Type": info["mime_type"]})
    assert put.status_code == 200
    after = httpx.get(info["full_path"], follow_redirects=True)
    assert after.status_code == 200 and after.content == data
    assert after.headers["content-type"] == "video/mp4"
    part = httpx.get(info["full_path"], headers={"Range": "bytes=0-9"}, follow_redirects=True)
    assert part.status_code == 206 and part.content == data[:10]
    assert httpx.get(f"{api.sb.base_url}/upload/{'0' * 32}").status_code == 404
    assert httpx.get(f"{api.sb.base_url}/upload/..%2Fsandbox.db").status_code == 404
