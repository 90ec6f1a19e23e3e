"""File management: upload URLs, the signed PUT (and its 403s), file_detail statuses."""

from __future__ import annotations

import calendar
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from chanjing_avatar import _wire

from .api import Api, assert_store_error
from .conftest import Factory
from .stub import FakeRenderer


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit((*parts[:3], urlencode(query), ""))


def test_upload_url_shape(api: Api, sandbox_target: str) -> None:
    data = api.upload_url("lip_sync_video", "my clip.MOV")
    assert set(data) == {"sign_url", "full_path", "key", "mime_type", "file_id"}
    assert data["mime_type"] == "video/quicktime"
    assert len(data["file_id"]) == 32 and int(data["file_id"], 16) >= 0
    query = dict(parse_qsl(urlsplit(data["sign_url"]).query))
    if sandbox_target == "embedded":  # the embedded object store, OSS-style query
        assert data["sign_url"].startswith(api.sb.base_url + "/")
        expires = int(query["Expires"])
    else:  # straight to the S3 store, SigV4 query
        assert not data["sign_url"].startswith(api.sb.base_url + "/")
        signed = calendar.timegm(time.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
        expires = signed + int(query["X-Amz-Expires"])
    assert abs(expires - (time.time() + 15 * 60)) < 30


@pytest.mark.parametrize(
    ("service", "name", "field"),
    [
        ("lip_sync_video", "clip.mp3", "extension"),
        ("lip_sync_audio", "voice.mp4", "extension"),
        ("lip_sync_video", "noext", "extension"),
        ("no_such_service", "a.mp4", "service"),
        ("lip_sync_video", "", "name"),
        ("", "a.mp4", "service"),
        ("lip_sync_video", "a\r\n.mp4", "name"),
    ],
)
def test_upload_url_validation(api: Api, service: str, name: str, field: str) -> None:
    body = api.get(_wire.PATH_CREATE_UPLOAD_URL, service=service, name=name)
    assert body["code"] == 40000, body
    assert field in body["msg"]


def test_path_tricks_in_names_stay_harmless(api: Api, tiny_video: Path) -> None:
    file_id = api.upload("lip_sync_video", tiny_video, name="../../etc/passwd.mp4")
    data = api.wait_file(file_id)
    assert data["status"] == 1
    assert ".." not in data["file_path"]
    assert not (api.sb.config.data_dir.parent / "etc").exists()


def test_put_then_ready(api: Api, tiny_video: Path, tiny_audio: Path) -> None:
    info = api.upload_url("lip_sync_video", "v.mp4")
    first = api.get(_wire.PATH_FILE_DETAIL, id=info["file_id"])
    assert first["data"]["status"] == 0  # nothing uploaded yet
    put = httpx.put(
        info["sign_url"],
        content=tiny_video.read_bytes(),
        headers={"Content-Type": info["mime_type"]},
    )
    assert put.status_code == 200
    data = api.wait_file(info["file_id"])
    assert data["status"] == 1 and data["msg"] == "success"
    assert data["bytes"] == tiny_video.stat().st_size
    assert data["service"] == "lip_sync_video"
    audio_id = api.upload("lip_sync_audio", tiny_audio)
    assert api.wait_file(audio_id)["status"] == 1


def test_sync_delay_keeps_status_0(
    sandbox_factory: Factory, stub: FakeRenderer, tiny_video: Path
) -> None:
    sb = sandbox_factory(renderer=stub, file_sync_delay_s=1.0)
    client = Api(sb)
    client.login()
    file_id = client.upload("lip_sync_video", tiny_video)
    started = time.monotonic()
    assert client.get(_wire.PATH_FILE_DETAIL, id=file_id)["data"]["status"] == 0
    client.wait_file(file_id)
    assert time.monotonic() - started >= 0.8
    client.close()


def test_undecodable_files_get_98(
    api: Api, tmp_path: Path, tiny_audio: Path, tiny_video: Path
) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video at all" * 100)
    data = api.wait_file(api.upload("lip_sync_video", junk))
    assert data["status"] == 98 and data["msg"]
    # Audio bytes uploaded as a video, and the reverse.
    wav_as_video = api.wait_file(api.upload("lip_sync_video", tiny_audio, name="x.mp4"))
    assert wav_as_video["status"] == 98 and "video" in wav_as_video["msg"]
    junk_audio = tmp_path / "junk.wav"
    junk_audio.write_bytes(b"\x00" * 10)
    assert api.wait_file(api.upload("lip_sync_audio", junk_audio))["status"] == 98


def test_wrong_content_type_is_403(api: Api, tiny_video: Path) -> None:
    info = api.upload_url("lip_sync_video", "v.mp4")
    put = httpx.put(
        info["sign_url"], content=b"abc", headers={"Content-Type": "application/octet-stream"}
    )
    assert put.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in put.text
    assert put.headers["content-type"].startswith("application/xml")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"Signature": "0" * 64}, "SignatureDoesNotMatch"),
        ({"Expires": "9999999999"}, "SignatureDoesNotMatch"),
        ({"Expires": "soon"}, "AccessDenied"),
        ({"Signature": ""}, "AccessDenied"),
    ],
)
def test_tampered_query_is_403(
    api: Api, change: dict[str, str], code: str, sandbox_target: str
) -> None:
    info = api.upload_url("lip_sync_video", "v.mp4")
    if "X-Amz-Signature" in info["sign_url"]:  # the same changes to a SigV4 URL
        change = {f"X-Amz-{k}": v for k, v in change.items()}
    put = httpx.put(
        _with_query(info["sign_url"], **change),
        content=b"abc",
        headers={"Content-Type": info["mime_type"]},
    )
    assert_store_error(put, code, sandbox_target)


def test_url_of_another_file_is_403(api: Api) -> None:
    one = api.upload_url("lip_sync_video", "a.mp4")
    two = api.upload_url("lip_sync_video", "b.mp4")
    put = httpx.put(
        one["sign_url"].replace(one["file_id"], two["file_id"]),
        content=b"x",
        headers={"Content-Type": "video/mp4"},
    )
    assert put.status_code == 403 and "SignatureDoesNotMatch" in put.text


def test_expired_url_is_403(sandbox_factory: Factory, stub: FakeRenderer) -> None:
    sb = sandbox_factory(renderer=stub, upload_url_ttl_s=-1)
    client = Api(sb)
    client.login()
    info = client.upload_url("lip_sync_video", "v.mp4")
    put = httpx.put(info["sign_url"], content=b"abc", headers={"Content-Type": "video/mp4"})
    assert put.status_code == 403
    assert "<Code>AccessDenied</Code>" in put.text and "Request has expired" in put.text
    client.close()


def test_oversized_upload_is_refused(sandbox_factory: Factory, stub: FakeRenderer) -> None:
    sb = sandbox_factory(renderer=stub, max_upload_bytes=1000)
    client = Api(sb)
    client.login()
    info = client.upload_url("lip_sync_video", "v.mp4")
    headers = {"Content-Type": "video/mp4"}
    put = httpx.put(info["sign_url"], content=b"x" * 1001, headers=headers)
    assert put.status_code == 400 and "EntityTooLarge" in put.text

    def chunks() -> object:  # no Content-Length: caught while streaming
        for _ in range(5):
            yield b"y" * 400

    put = httpx.put(info["sign_url"], content=chunks(), headers=headers)  # type: ignore[arg-type]
    assert put.status_code == 400 and "EntityTooLarge" in put.text
    assert client.get(_wire.PATH_FILE_DETAIL, id=info["file_id"])["data"]["status"] == 0
    client.close()


def test_file_detail_errors(api: Api, tiny_video: Path) -> None:
    file_id = api.upload("lip_sync_video", tiny_video)
    assert api.get(_wire.PATH_FILE_DETAIL)["code"] == 40000
    assert api.get(_wire.PATH_FILE_DETAIL, id="f" * 32)["code"] == 40000
    assert api.get(_wire.PATH_FILE_DETAIL, id="../x")["code"] == 40000
    app_id, secret = api.sb.admin.add_app()
    stranger = Api(api.sb, app_id, secret)
    stranger.login()
    body = stranger.get(_wire.PATH_FILE_DETAIL, id=file_id)
    assert body["code"] == 40000 and body["data"] is None
    stranger.close()
