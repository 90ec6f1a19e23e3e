"""Vendor compatibility: the request sequences of Chanjing's own public clients, replayed with raw
httpx against the embedded sandbox, each to the end of its flow.

Nothing here is the vendors' code: each replay reproduces, step by step, what the client puts on
the wire (headers as that HTTP stack sends them, query vs body, body shapes and JSON types) and
what it reads back (the fields, the status values it treats as ready, done or failed). Only the
sleeps between polls are shortened.

Sources read (public GitHub repositories, as stored in the project's search index):

1. Chanjing's agent skills, ``chanjing-ai/chan-skills`` (urllib, stdlib only):
   - ``skills/chanjing-avatar/scripts/_auth.py``: the shared token helper. Base URL from
     ``CHANJING_OPENAPI_BASE_URL`` or ``CHANJING_API_BASE`` (trailing "/" stripped); credentials
     from ``CHANJING_OPENAPI_CREDENTIALS_DIR`` or ``CHANJING_CONFIG_DIR`` (default ``~/.chanjing``)
     ``/credentials.json``; reuses ``access_token`` while ``int(expire_in) > now + 300`` (so
     ``expire_in`` must be absolute), else POSTs ``{app_id, secret_key}`` and writes both back.
   - ``skills/chanjing-credentials-guard/scripts/chanjing-config`` (writes ``app_id`` and
     ``secret_key`` to that file) and ``.../chanjing-get-token`` (the same token rule; reads only
     ``CHANJING_CONFIG_DIR`` and ``CHANJING_API_BASE``, appending the path without stripping).
   - ``skills/chanjing-avatar/scripts/get_upload_url.py``: GET ``create_upload_url`` with
     ``service`` and ``name`` urlencoded in the query; prints ``data``.
   - ``skills/chanjing-avatar/scripts/upload_file.py``: the same, then PUT of the whole file read
     into memory with ``Content-Type`` = ``data.mime_type`` (no token), success if HTTP 200 or 204;
     then ``file_detail?id=`` until ``status`` in {1, 2} (1 per the official docs, 2 kept for
     history); any status other than 0/None is a failure. (The older ``upload_file`` without
     extension, commit 9d3a1c5, prints the id right after the PUT without polling.)
   - ``skills/chanjing-avatar/scripts/create_task.py``: POST ``create`` with ``access_token`` and
     ``Content-Type: application/json``; ``screen_width``/``screen_height`` ints (1080×1920 unless
     given), ``model`` int, tts ``text`` sent as ``[text]``, ``speed``/``pitch`` int 1 by default,
     floats when given; audio-driven sends ``audio_type: "audio"`` + ``audio_file_id``. Reads
     ``data`` as the task id. The older ``create_task`` (commit 9d3a1c5) and the seed's example
     send ``text`` as a plain string.
   - ``skills/chanjing-avatar/scripts/poll_task.py``: ``detail?id=`` until ``status`` 20 (needs a
     non-empty ``video_url``) or 30 (prints ``msg``); 0 and 10 keep polling.
   ``chanjing-ai/chanjing-content-creation-skills`` ships the same scripts
   (``skills/chanjing-content-creation-skill/products/chanjing-avatar/scripts/create_task``,
   ``common/base.py``; voices from ``products/chanjing-tts/scripts/list_voices``: GET
   ``list_common_audio?page=1&size=100``, reading ``list[].id`` and ``page_info.total_count``).
   Its create_task also documents ``--model 2`` (cartoon), which this sandbox refuses (the
   contract says 0|1).

2. Chanjing's Python SDK, ``chanjing-ai/chanjing-sdk`` (requests): ``src/chanjing/auth.py``
   (``CHANJING_APP_ID``/``CHANJING_SECRET_KEY``; token POSTed with ``json=``; ``expire_in`` ignored,
   24 h assumed), ``src/chanjing/api.py`` (``json_request``: raise on HTTP errors, ``code`` 0 or
   else; on 10400/10401 reset, fetch a new token and retry once with it; ``upload_file``: GET
   ``create_upload_url`` with ``params``, reads ``sign_url``, ``file_id``, ``full_path`` and
   ``mime_type``; PUT with ``Content-Type`` and an explicit ``Content-Length``, the body streamed
   from a file-like object, exactly HTTP 200 required; ``_poll_file_status`` sleeps first, then
   ``file_detail`` until ``status == 1`` ONLY, failing on 98/99/100),
   ``src/chanjing/services/lip_sync.py`` (create: audio-driven, ``model`` 1 ("pro"),
   ``screen_width``/``screen_height`` = the source video's own size, ``backway`` 1,
   ``drive_mode`` ""; ``detail`` with ``params`` until 20 (``video_url``, ``duration`` in ms;
   ``progress`` formatted with ``%d``) or 30 (billing words in ``msg``); download with a streamed
   GET of ``video_url``). Its ``BASE_URL`` is a module constant: point it at the sandbox by
   setting ``chanjing.api.BASE_URL`` and ``chanjing.services.lip_sync.BASE_URL``.

3. Chanjing's ComfyUI nodes, ``chanjing-ai/chanjingAI-ComfyUI``, ``nodes.py``
   (``CicadaLipSyncNode``): the SDK's sequence (the SDK was cut from it), except that an
   upstream AUDIO input reaches the upload as a temporary float32 WAV written by scipy; its voice
   clone node passes ``full_path`` on as the public URL of the uploaded file.
"""

from __future__ import annotations

import json
import math
import struct
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from chanjing_avatar.sandbox import Sandbox

POLL_S = 0.05  # the clients sleep 3-10 s between polls; the sequence is what matters here
DEADLINE_S = 60.0
TEXT = "君不见黄河之水天上来，奔流到海不复回。"


# ---- The skills' scripts: urllib ------------------------------------------------------------


class Urllib:
    """What ``urllib.request.urlopen`` puts on the wire: its User-Agent, ``Accept-Encoding:
    identity``, ``Connection: close``, no ``Accept``, and header names ``str.capitalize()``-d
    (``access_token`` goes out as ``Access_token``). An HTTP error status raises, as urlopen's
    HTTPError does."""

    def __init__(self) -> None:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        self.http = httpx.Client(timeout=30.0)
        self.http.headers.clear()
        self.http.headers.update(
            {
                "User-Agent": f"Python-urllib/{version}",
                "Accept-Encoding": "identity",
                "Connection": "close",
            }
        )

    def open(
        self,
        method: str,
        url: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> bytes:
        sent = {name.capitalize(): value for name, value in (headers or {}).items()}
        answer = self.http.request(method, url, content=data, headers=sent)
        assert answer.status_code < 400, (method, url, answer.status_code, answer.text[:300])
        return answer.content

    def json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.open(method, url, **kwargs).decode("utf-8"))
        return body

    def close(self) -> None:
        self.http.close()


class SkillScripts:
    """The chan-skills chanjing-avatar scripts, one method per script run (a new process each
    time, sharing only credentials.json and the environment)."""

    def __init__(self, env: dict[str, str], wire: Urllib) -> None:
        self.env = env
        self.wire = wire
        config_dir = env.get("CHANJING_OPENAPI_CREDENTIALS_DIR") or env["CHANJING_CONFIG_DIR"]
        self.config_file = Path(config_dir) / "credentials.json"
        self.api = (
            env.get("CHANJING_OPENAPI_BASE_URL") or env.get("CHANJING_API_BASE") or ""
        ).rstrip("/")

    # chanjing-credentials-guard/scripts/chanjing-config --ak --sk
    def configure(self, app_id: str, secret_key: str) -> None:
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        data = {"app_id": app_id, "secret_key": secret_key}
        self.config_file.write_text(json.dumps(data, indent=2, ensure_ascii=False))

    # _auth.get_token(), run at the start of every script
    def get_token(self) -> str:
        return self._token(self.config_file, self.api + "/open/v1/access_token")

    # chanjing-credentials-guard/scripts/chanjing-get-token: the same rule, but only
    # CHANJING_CONFIG_DIR and CHANJING_API_BASE, the path appended without stripping a "/"
    def chanjing_get_token(self) -> str:
        config_file = Path(self.env["CHANJING_CONFIG_DIR"]) / "credentials.json"
        return self._token(config_file, self.env["CHANJING_API_BASE"] + "/open/v1/access_token")

    def _token(self, config_file: Path, url: str) -> str:
        data = json.loads(config_file.read_text(encoding="utf-8"))
        app_id = (data.get("app_id") or "").strip()
        secret_key = (data.get("secret_key") or "").strip()
        assert app_id and secret_key
        try:
            expire_in = int(data.get("expire_in")) if data.get("expire_in") is not None else 0
        except (ValueError, TypeError):
            expire_in = 0
        token = data.get("access_token")
        if token and expire_in > int(time.time()) + 300:
            return str(token)
        body = self.wire.json(
            "POST",
            url,
            data=json.dumps({"app_id": app_id, "secret_key": secret_key}).encode("utf-8"),
            headers={"Content-Type": "application/json"},
        )
        assert body.get("code") == 0, body
        fresh = body.get("data", {}).get("access_token")
        assert fresh, body
        data["access_token"] = fresh
        data["expire_in"] = body["data"].get("expire_in")
        config_file.write_text(json.dumps(data, indent=2, ensure_ascii=False))
        return str(fresh)

    def _get(self, path: str, query: str, token: str) -> dict[str, Any]:
        body = self.wire.json("GET", f"{self.api}{path}?{query}", headers={"access_token": token})
        assert body.get("code") == 0, body
        data: dict[str, Any] = body.get("data", {})
        return data

    # get_upload_url.py --service S --name N
    def get_upload_url(self, service: str, name: str) -> dict[str, Any]:
        token = self.get_token()
        query = urllib.parse.urlencode({"service": service, "name": name})
        return self._get("/open/v1/common/create_upload_url", query, token)

    # upload_file.py --service S --file F
    def upload_file(self, service: str, path: Path) -> str:
        token = self.get_token()
        query = urllib.parse.urlencode({"service": service, "name": path.name})
        data = self._get("/open/v1/common/create_upload_url", query, token)
        sign_url = data.get("sign_url")
        mime_type = data.get("mime_type", "application/octet-stream")
        file_id = data.get("file_id")
        assert sign_url and file_id, data
        self.wire.open("PUT", sign_url, data=path.read_bytes(), headers={"Content-Type": mime_type})
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            query = f"id={urllib.parse.quote(file_id)}"
            detail = self._get("/open/v1/common/file_detail", query, token)
            status = detail.get("status")
            if status in {1, 2}:
                return str(file_id)
            assert status in (0, None), detail  # anything else: "文件未就绪"
            time.sleep(POLL_S)
        raise AssertionError("poll timeout")

    # chanjing-tts/scripts/list_voices (content-creation-skills)
    def list_voices(self, page: int = 1, size: int = 100) -> dict[str, Any]:
        token = self.get_token()
        query = urllib.parse.urlencode({"page": page, "size": size})
        return self._get("/open/v1/list_common_audio", query, token)

    # create_task.py (text as [text]) / the older create_task (text as a string)
    def create_task(self, body: dict[str, Any]) -> str:
        token = self.get_token()
        res = self.wire.json(
            "POST",
            f"{self.api}/open/v1/video_lip_sync/create",
            data=json.dumps(body).encode("utf-8"),
            headers={"access_token": token, "Content-Type": "application/json"},
        )
        assert res.get("code") == 0, res
        video_id = res.get("data")
        assert video_id, res
        return str(video_id)

    # poll_task.py --id ID
    def poll_task(self, task_id: str) -> str:
        token = self.get_token()
        url = f"{self.api}/open/v1/video_lip_sync/detail?id={urllib.parse.quote(task_id)}"
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            body = self.wire.json("GET", url, headers={"access_token": token})
            assert body.get("code") == 0, body
            data = body.get("data", {})
            status = data.get("status")
            if status == 20:
                video_url = data.get("video_url")
                assert video_url, data  # "任务成功但无 video_url"
                return str(video_url)
            assert status != 30, f"任务失败: {data.get('msg', 'unknown')}"
            time.sleep(POLL_S)
        raise AssertionError("task never finished")


def create_task_body(
    video_file_id: str,
    *,
    text: str | None = None,
    audio_man_id: str | None = None,
    audio_file_id: str | None = None,
    width: int = 1080,
    height: int = 1920,
    model: int = 0,
    speed: float = 1,
    pitch: float = 1,
    text_as_list: bool = True,
) -> dict[str, Any]:
    """The body create_task(.py) builds from its arguments (argparse defaults included)."""
    common = {
        "video_file_id": video_file_id,
        "screen_width": width,
        "screen_height": height,
        "model": model,
    }
    if audio_file_id:
        return {**common, "audio_type": "audio", "audio_file_id": audio_file_id}
    assert text and audio_man_id
    return {
        **common,
        "audio_type": "tts",
        "tts_config": {
            "text": [text] if text_as_list else text,
            "audio_man_id": audio_man_id,
            "speed": speed,
            "pitch": pitch,
        },
    }


def _check_mp4(path: Path, duration_ms: int) -> None:
    with av.open(str(path)) as container:
        assert container.streams.video and container.streams.audio
        assert container.duration is not None
        assert abs(container.duration / 1000 - duration_ms) <= 150, (
            container.duration,
            duration_ms,
        )


def test_skill_scripts_flow(
    sandbox: Sandbox, tiny_video: Path, tiny_audio: Path, tmp_path: Path
) -> None:
    # The environment docs/sandbox.md tells users to export (one base URL pasted with a trailing
    # "/"), and `chanjing-config --ak --sk`.
    env = {
        "CHANJING_OPENAPI_BASE_URL": sandbox.base_url,
        "CHANJING_API_BASE": sandbox.base_url + "/",
        "CHANJING_OPENAPI_CREDENTIALS_DIR": str(tmp_path / "chanjing"),
        "CHANJING_CONFIG_DIR": str(tmp_path / "chanjing"),
    }
    wire = Urllib()
    scripts = SkillScripts(env, wire)
    scripts.configure(sandbox.app_id, sandbox.secret_key)
    # The guard checks the credentials first: its token lands in credentials.json for the rest.
    token = scripts.chanjing_get_token()
    assert scripts.get_token() == token

    info = scripts.get_upload_url("lip_sync_video", "1.mp4")
    assert {"sign_url", "mime_type", "file_id"} <= set(info)
    video_id = scripts.upload_file("lip_sync_video", tiny_video)
    audio_id = scripts.upload_file("lip_sync_audio", tiny_audio)
    voices = scripts.list_voices(page=1, size=100)
    assert voices["page_info"]["total_count"] >= len(voices["list"]) > 0
    voice = voices["list"][0]["id"]

    # The scripts' --width/--height options keep the render small (their default is 1080×1920).
    small = 64
    bodies = {
        "tts, text as [text] (create_task.py)": create_task_body(
            video_id, text=TEXT, audio_man_id=voice, width=small, height=small
        ),
        "tts, text as a string, --speed 1.2 --pitch 1.0 (older create_task, the seed)": (
            create_task_body(
                video_id,
                text=TEXT,
                audio_man_id=voice,
                speed=1.2,
                pitch=1.0,
                text_as_list=False,
                width=small,
                height=small,
            )
        ),
        "audio (create_task.py --audio-file-id)": create_task_body(
            video_id, audio_file_id=audio_id, width=small, height=small
        ),
    }
    for n, (label, body) in enumerate(bodies.items()):
        task_id = scripts.create_task(body)
        video_url = scripts.poll_task(task_id)
        # The seed: "Download the generated video using the url in response".
        out = tmp_path / f"result-{n}.mp4"
        out.write_bytes(wire.open("GET", video_url))
        detail = httpx.get(
            f"{sandbox.base_url}/open/v1/video_lip_sync/detail",
            params={"id": task_id},
            headers={"access_token": scripts.get_token()},
        ).json()["data"]
        _check_mp4(out, detail["duration"])
        assert detail["video_url"] == video_url, label
    wire.close()

    # Every script run found the token cached by the first one: expire_in is absolute and a day
    # ahead, so no run asked for a new token (which would have invalidated the others').
    saved = json.loads(scripts.config_file.read_text())
    assert saved["expire_in"] > time.time() + 23 * 3600
    assert sandbox.admin.count("access_token", "0") == 1


# ---- The SDK and the ComfyUI nodes: requests ------------------------------------------------


class Requests:
    """What ``requests`` puts on the wire: its User-Agent, ``Accept: */*``, ``Accept-Encoding:
    gzip, deflate``, keep-alive; ``raise_for_status()`` on every answer."""

    def __init__(self) -> None:
        self.http = httpx.Client(timeout=30.0)
        self.http.headers.clear()
        self.http.headers.update(
            {
                "User-Agent": "python-requests/2.32.3",
                "Accept-Encoding": "gzip, deflate",
                "Accept": "*/*",
                "Connection": "keep-alive",
            }
        )

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        answer = self.http.request(method, url, **kwargs)
        assert answer.status_code < 400, (method, url, answer.status_code, answer.text[:300])
        return answer

    def close(self) -> None:
        self.http.close()


class SdkClient:
    """chanjing-sdk's AuthManager + ApiClient + LipSyncService (nodes.py's CicadaAuth,
    api_json_request, upload_file and CicadaLipSyncNode do the same)."""

    def __init__(self, base_url: str, app_id: str, secret_key: str) -> None:
        self.base = base_url  # chanjing.api.BASE_URL, set to the sandbox
        self.app_id, self.secret_key = app_id, secret_key
        self.wire = Requests()
        self.token: str | None = None
        self.token_expire = 0.0

    # AuthManager.get_token / _refresh_token / reset
    def get_token(self) -> str:
        if self.token and time.time() < self.token_expire - 300:
            return self.token
        result = self.json_request(
            "POST",
            f"{self.base}/open/v1/access_token",
            _retried_auth=True,
            json={"app_id": self.app_id, "secret_key": self.secret_key},
        )
        self.token = result.get("data", {}).get("access_token")
        self.token_expire = time.time() + 24 * 3600
        assert self.token, result
        return self.token

    def reset(self) -> None:
        self.token, self.token_expire = None, 0.0

    # ApiClient.json_request
    def json_request(
        self, method: str, url: str, *, _retried_auth: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        result: dict[str, Any] = self.wire.request(method, url, **kwargs).json()
        code = result.get("code")
        if code == 0:
            return result
        if code in (10400, 10401) and not _retried_auth:
            self.reset()
            new_token = self.get_token()
            headers = kwargs.get("headers", {})
            if isinstance(headers, dict) and "access_token" in headers:
                kwargs["headers"] = {**headers, "access_token": new_token}
            return self.json_request(method, url, _retried_auth=True, **kwargs)
        raise AssertionError(f"API 请求失败 (code={code}): {result.get('msg')}")

    # ApiClient.upload_file + _poll_file_status
    def upload_file(self, path: Path, service: str, access_token: str) -> dict[str, str]:
        result = self.json_request(
            "GET",
            f"{self.base}/open/v1/common/create_upload_url",
            params={"service": service, "name": path.name},
            headers={"access_token": access_token},
        )
        upload = result.get("data", {})
        sign_url, file_id = upload.get("sign_url"), upload.get("file_id")
        file_url = upload.get("full_path", "")
        mime_type = upload.get("mime_type", "application/octet-stream")
        data = path.read_bytes()

        def body() -> Iterator[bytes]:  # requests sends a file-like object in 8 KiB reads
            for start in range(0, len(data), 8192):
                yield data[start : start + 8192]

        answer = self.wire.request(
            "PUT",
            sign_url,
            headers={"Content-Type": mime_type, "Content-Length": str(len(data))},
            content=body(),
        )
        assert answer.status_code == 200, f"文件上传失败: HTTP {answer.status_code}"
        deadline = time.monotonic() + DEADLINE_S
        while True:
            assert time.monotonic() < deadline, f"文件同步超时, file_id: {file_id}"
            time.sleep(POLL_S)  # it sleeps before the first look
            detail = self.json_request(
                "GET",
                f"{self.base}/open/v1/common/file_detail",
                params={"id": file_id},
                headers={"access_token": access_token},
            )
            status = detail.get("data", {}).get("status", 0)
            if status == 1:
                return {"file_id": str(file_id), "url": str(file_url)}
            assert status not in (98, 99, 100), f"文件不可用 (status={status})"

    # LipSyncService.create + _poll, LipSyncResult.download
    def lip_sync(
        self, video: Path, audio: Path, size: tuple[int, int], before_create: Any = None
    ) -> tuple[str, dict[str, Any]]:
        access_token = self.get_token()
        video_result = self.upload_file(video, "lip_sync_video", access_token)
        audio_result = self.upload_file(audio, "lip_sync_audio", access_token)
        if before_create is not None:
            before_create(video_result, audio_result)
        w, h = size
        result = self.json_request(
            "POST",
            f"{self.base}/open/v1/video_lip_sync/create",
            json={
                "video_file_id": video_result["file_id"],
                "audio_type": "audio",
                "audio_file_id": audio_result["file_id"],
                "model": 1,
                "screen_width": w,
                "screen_height": h,
                "backway": 1,
                "drive_mode": "",
            },
            headers={"access_token": access_token, "Content-Type": "application/json"},
        )
        task_id = result.get("data")
        assert isinstance(task_id, str) and task_id
        deadline = time.monotonic() + DEADLINE_S
        while True:
            assert time.monotonic() < deadline, "对口型任务超时"
            result = self.json_request(
                "GET",
                f"{self.base}/open/v1/video_lip_sync/detail",
                params={"id": task_id},
                headers={"access_token": access_token},
            )
            data = result.get("data", {})
            status, progress = data.get("status"), data.get("progress", 0)
            assert "%d%%" % progress  # noqa: UP031 - how the SDK logs it: must be a number
            if status == 20:
                assert data.get("video_url"), "视频合成完成但未返回视频URL"
                return task_id, data
            assert status != 30, f"视频合成失败: {data.get('msg')}"
            time.sleep(POLL_S)

    def download(self, video_url: str, path: Path) -> None:
        with self.wire.http.stream("GET", video_url, timeout=300) as answer:
            assert answer.status_code < 400
            with path.open("wb") as out:
                for chunk in answer.iter_bytes(1024 * 1024):
                    out.write(chunk)


def write_float_wav(path: Path, seconds: float = 1.2, rate: int = 22_050) -> Path:
    """A 32-bit float WAV, as scipy.io.wavfile writes a ComfyUI AUDIO tensor."""
    samples = b"".join(
        struct.pack("<f", 0.3 * math.sin(2 * math.pi * 330 * n / rate))
        for n in range(round(seconds * rate))
    )
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)  # WAVE_FORMAT_IEEE_FLOAT
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"data" + struct.pack("<I", len(samples)) + samples
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks)
    return path


@pytest.mark.parametrize("client", ["chanjing-sdk", "chanjingAI-ComfyUI"])
def test_sdk_and_comfyui_flow(
    sandbox: Sandbox, tiny_video: Path, tiny_audio: Path, tmp_path: Path, client: str
) -> None:
    audio = tiny_audio if client == "chanjing-sdk" else write_float_wav(tmp_path / "tmpk3j2x9.wav")
    sdk = SdkClient(sandbox.base_url, sandbox.app_id, sandbox.secret_key)

    def meanwhile(video_result: dict[str, str], audio_result: dict[str, str]) -> None:
        # full_path is the public URL of the upload (the ComfyUI voice clone hands it on).
        for result, source in ((video_result, tiny_video), (audio_result, audio)):
            assert result["url"]
            got = httpx.get(result["url"], follow_redirects=True)  # (the SDK's requests follows)
            assert got.content == source.read_bytes()
        # Another process takes a new token: the SDK's next call meets 10400 and recovers.
        sandbox.admin.invalidate_tokens()

    # cv2 reads the clip's own size (64×64); without cv2 the SDK sends 1080×1920.
    task_id, data = sdk.lip_sync(tiny_video, audio, (64, 64), before_create=meanwhile)
    assert data["id"] == task_id and isinstance(data["duration"], int)
    out = tmp_path / "output.mp4"
    sdk.download(data["video_url"], out)
    _check_mp4(out, data["duration"])
    sdk.wire.close()

    admin = sandbox.admin
    # The SDK keeps polling with the token it started with, so after the invalidation every
    # detail call meets 10400 once, takes a new token and retries (the known stale-token fault):
    # slow, but the flow completes.
    stale_polls = admin.count("lipsync_detail", "10400")
    assert stale_polls >= 1
    assert admin.count("access_token", "0") == 2 + stale_polls
    # The create met 10400 once and was retried once: one task, no duplicate.
    assert admin.count("lipsync_create", "10400") == 1
    assert admin.count("lipsync_create", "0") == 1
    assert [t["id"] for t in admin.tasks()] == [task_id]
