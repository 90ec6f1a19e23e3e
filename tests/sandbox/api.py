"""Raw HTTP against a sandbox (deliberately not our client library)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from chanjing_avatar import _wire
from chanjing_avatar.sandbox import Sandbox


class Api:
    def __init__(self, sb: Sandbox, app_id: str | None = None, secret: str | None = None) -> None:
        self.sb = sb
        self.http = httpx.Client(base_url=sb.base_url, timeout=30.0)
        self.app_id = app_id or sb.app_id
        self.secret = secret or sb.secret_key
        self.token = ""

    def close(self) -> None:
        self.http.close()

    def login(self) -> str:
        data = self.ok(
            self.http.post(
                _wire.PATH_ACCESS_TOKEN, json={"app_id": self.app_id, "secret_key": self.secret}
            )
        )
        self.token = data["access_token"]
        return self.token

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        answer = self.http.get(path, params=params, headers={"access_token": self.token})
        return envelope(answer)

    def post(self, path: str, body: Any) -> dict[str, Any]:
        answer = self.http.post(path, json=body, headers={"access_token": self.token})
        return envelope(answer)

    def ok(self, answer: httpx.Response) -> Any:
        body = envelope(answer)
        assert body["code"] == 0, body
        assert body["msg"] == "success"
        return body["data"]

    def upload_url(self, service: str, name: str) -> dict[str, Any]:
        body = self.get(_wire.PATH_CREATE_UPLOAD_URL, service=service, name=name)
        assert body["code"] == 0, body
        data: dict[str, Any] = body["data"]
        return data

    def upload(self, service: str, path: Path, name: str | None = None) -> str:
        """Upload ``path``; returns the file id (not waiting for it to be ready)."""
        info = self.upload_url(service, name or path.name)
        with path.open("rb") as f:
            put = httpx.put(
                info["sign_url"], content=f, headers={"Content-Type": info["mime_type"]}
            )
        assert put.status_code == 200, put.text
        return str(info["file_id"])

    def wait_file(self, file_id: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            body = self.get(_wire.PATH_FILE_DETAIL, id=file_id)
            assert body["code"] == 0, body
            if body["data"]["status"] != 0:
                data: dict[str, Any] = body["data"]
                return data
            assert time.monotonic() < deadline, "file never left status 0"
            time.sleep(0.03)

    def ready_file(self, service: str, path: Path, name: str | None = None) -> str:
        file_id = self.upload(service, path, name)
        assert self.wait_file(file_id)["status"] == 1
        return file_id

    def create(self, body: dict[str, Any]) -> str:
        answer = self.post(_wire.PATH_LIPSYNC_CREATE, body)
        assert answer["code"] == 0, answer
        return str(answer["data"])

    def detail(self, task_id: str) -> dict[str, Any]:
        body = self.get(_wire.PATH_LIPSYNC_DETAIL, id=task_id)
        assert body["code"] == 0, body
        data: dict[str, Any] = body["data"]
        return data

    def wait_task(self, task_id: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            data = self.detail(task_id)
            if data["status"] in (20, 30):
                return data
            assert time.monotonic() < deadline, f"task still {data}"
            time.sleep(0.05)


def envelope(answer: httpx.Response) -> dict[str, Any]:
    """The parsed envelope, after checking its shape."""
    assert answer.status_code == 200, (answer.status_code, answer.text[:300])
    body: dict[str, Any] = answer.json()
    assert set(body) == {"trace_id", "code", "msg", "data"}, body
    assert len(body["trace_id"]) == 32 and int(body["trace_id"], 16) >= 0
    assert isinstance(body["code"], int) and isinstance(body["msg"], str)
    return body


def tts_body(
    video_file_id: str, voice: str, text: str = "你好,世界。", **extra: Any
) -> dict[str, Any]:
    return {
        "video_file_id": video_file_id,
        "screen_width": 64,
        "screen_height": 64,
        "audio_type": "tts",
        "tts_config": {"text": text, "audio_man_id": voice, "speed": 1, "pitch": 1},
        **extra,
    }


def assert_store_error(answer: httpx.Response, code: str, target: str) -> None:
    """A refusal in the object store's XML: 403 and ``code`` from the embedded store; a real S3
    store (a deployment's) has its own codes, and answers a malformed signed query with 400."""
    if target == "embedded":
        assert answer.status_code == 403 and f"<Code>{code}</Code>" in answer.text, answer.text
    else:
        assert answer.status_code in (400, 403) and "<Error><Code>" in answer.text, answer.text
