"""Error bodies where bytes were expected: a download answered by an API envelope, a web page or
an XML error is retried or refused and never kept as the file; an upload PUT answered 2xx with
such a body is a failed PUT (retried, or a fresh address). Both drivers, over a mock transport and
over loopback HTTP to the sandbox's fault injection."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from chanjing_avatar import DownloadError, Task, TransportError
from chanjing_avatar._wire import PATH_ACCESS_TOKEN, PATH_CREATE_UPLOAD_URL

from .drivers import Handler, MakeClient, envelope, mock_client, token

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64
XML_DENIED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
              b"<Message>Request has expired</Message></Error>")
VOICE = "a" * 32


# --- downloads --------------------------------------------------------------------------------

def _download_client(make_client: MakeClient, tmp_path: Path, answers: list[httpx.Response],
                     seen: list[httpx.Request]) -> Any:
    it = iter(answers)

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return next(it)

    return mock_client(make_client, tmp_path, handler)


Answer = Callable[[], httpx.Response]
TASK = Task(id="task-1", status=20, video_url="https://oss.test/result/task-1.mp4?Signature=x")


# Answers are made afresh for each test (a response is consumed by the driver that reads it).
@pytest.mark.parametrize(
    "bad",
    [
        lambda: envelope(None, 50000, "系统内部错误"),  # application/json, retryable code
        lambda: httpx.Response(200, content=b"<html><body>502 Bad Gateway</body></html>",
                               headers={"content-type": "application/octet-stream"}),  # sniffed
        lambda: httpx.Response(200, content=b'{"trace_id": "x", "code": 51000, "msg": "busy"}',
                               headers={"content-type": "video/mp4"}),  # sniffed envelope
        lambda: httpx.Response(200, content=b"<!DOCTYPE html><html>maintenance</html>",
                               headers={"content-type": "text/html"}),
    ],
    ids=["envelope", "sniffed-page", "sniffed-envelope", "html-page"],
)
def test_download_retries_an_error_body_and_never_keeps_it(
    make_client: MakeClient, tmp_path: Path, bad: Answer
) -> None:
    seen: list[httpx.Request] = []
    good = httpx.Response(200, content=VIDEO, headers={"content-type": "video/mp4"})
    with _download_client(make_client, tmp_path, [bad(), good], seen) as c:
        result = c.lipsync.download(TASK, tmp_path / "out.mp4")
    assert (tmp_path / "out.mp4").read_bytes() == VIDEO and result.bytes == len(VIDEO)
    assert len(seen) == 2 and "range" not in seen[1].headers


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (lambda: envelope(None, 40002, "quota"), 40002),
        (lambda: httpx.Response(200, content=XML_DENIED,
                                headers={"content-type": "application/xml"}), None),
    ],
    ids=["quota-envelope", "xml-denied"],
)
def test_download_refuses_a_definite_error_body(make_client: MakeClient, tmp_path: Path,
                                                bad: Answer, code: int | None) -> None:
    seen: list[httpx.Request] = []
    with _download_client(make_client, tmp_path, [bad()], seen) as c, \
            pytest.raises(DownloadError) as info:
        c.lipsync.download(TASK, tmp_path / "out.mp4")
    assert info.value.code == code and info.value.http_status == 200
    assert len(seen) == 1
    assert not list(tmp_path.glob("*out.mp4*"))  # no file, no part, no part metadata


def test_download_error_body_gives_up_after_the_retries(
    make_client: MakeClient, tmp_path: Path
) -> None:
    seen: list[httpx.Request] = []
    answers = [envelope(None, 50000, "err") for _ in range(3)]
    with _download_client(make_client, tmp_path, answers, seen) as c:
        c._ctx.retry = type(c._ctx.retry)(max_retries=2)
        with pytest.raises(DownloadError, match="API error"):
            c.lipsync.download(TASK, tmp_path / "out.mp4")
    assert len(seen) == 3 and not list(tmp_path.glob("*out.mp4*"))


# --- upload PUTs answered 2xx with an error body ------------------------------------------------

def _upload_handler(put_answers: list[httpx.Response], calls: list[str]) -> Handler:
    it = iter(put_answers)
    urls = iter(range(1, 100))

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == PATH_ACCESS_TOKEN:
            return token()
        if req.url.path == PATH_CREATE_UPLOAD_URL:
            n = next(urls)
            calls.append(f"url{n}")
            return envelope({"sign_url": f"https://oss.test/upload/f{n}.mp4?Signature=s{n}",
                             "mime_type": "video/mp4", "file_id": f"file-{n}"})
        assert req.method == "PUT"
        calls.append(f"put:{req.url.path}")
        req.read()
        return next(it)

    return handler


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "me.mp4"
    path.write_bytes(VIDEO)
    return path


@pytest.mark.parametrize(
    ("code", "ok"), [(50000, 200), (51000, 204)], ids=["50000-then-200", "51000-then-204"]
)
def test_upload_put_2xx_envelope_error_is_retried(
    make_client: MakeClient, tmp_path: Path, src: Path, code: int, ok: int
) -> None:
    calls: list[str] = []
    answers = [envelope(None, code, "系统内部错误"), httpx.Response(ok)]
    with mock_client(make_client, tmp_path, _upload_handler(answers, calls)) as c:
        detail = c.files.upload(src, "lip_sync_video", wait=False)
    assert detail.id == "file-1"
    assert calls == ["url1", "put:/upload/f1.mp4", "put:/upload/f1.mp4"]


def test_upload_put_2xx_xml_refusal_gets_a_new_address(
    make_client: MakeClient, tmp_path: Path, src: Path
) -> None:
    calls: list[str] = []
    answers = [httpx.Response(200, content=XML_DENIED,
                              headers={"content-type": "application/xml"}),
               httpx.Response(200, json={"code": 0, "msg": "ok"})]
    with mock_client(make_client, tmp_path, _upload_handler(answers, calls)) as c:
        detail = c.files.upload(src, "lip_sync_video", wait=False)
    assert detail.id == "file-2"  # the id of the address that took the bytes
    assert calls == ["url1", "put:/upload/f1.mp4", "url2", "put:/upload/f2.mp4"]


def test_upload_put_2xx_refusal_twice_raises(
    make_client: MakeClient, tmp_path: Path, src: Path
) -> None:
    calls: list[str] = []
    answers = [envelope(None, 40000, "bad"), envelope(None, 40000, "bad")]
    with mock_client(make_client, tmp_path, _upload_handler(answers, calls)) as c, \
            pytest.raises(TransportError, match="API error") as info:
        c.files.upload(src, "lip_sync_video", wait=False)
    assert info.value.code == 40000 and info.value.http_status == 200
    assert calls == ["url1", "put:/upload/f1.mp4", "url2", "put:/upload/f2.mp4"]


# --- the same over loopback HTTP: the sandbox's fault injection ---------------------------------

def _skip(seconds: float) -> None:
    if seconds <= 0.2:
        time.sleep(seconds)


def _sandbox_client(make_client: MakeClient, sb: Any, tmp_path: Path) -> Any:
    return make_client(app_id=sb.app_id, secret_key=sb.secret_key, base_url=sb.base_url,
                       credentials_dir=tmp_path / "cred", sleep=_skip)


# "http:200": a gateway's web page answered with 200 in place of the object store;
# "50000": what the object store answers for an internal error (an XML error, HTTP 500).
@pytest.mark.parametrize("fault", ["http:200", "50000"])
def test_download_answered_by_an_error_page_is_retried(
    make_client: MakeClient, copy_sandbox: Any, admin: Any, face_video: Path, tmp_path: Path,
    fault: str,
) -> None:
    with _sandbox_client(make_client, copy_sandbox, tmp_path) as c:
        file_id = c.files.upload(face_video, "lip_sync_video").id
        task = c.lipsync.wait(
            c.lipsync.create(video_file_id=file_id, text="x", voice_id=VOICE), timeout=30)
        admin.reset_stats()
        admin.add_fault("download", fault, times=1)
        out = c.lipsync.download(task, tmp_path / "out.mp4")
    assert out.path.read_bytes() == face_video.read_bytes()
    assert admin.count("download") == 2


@pytest.mark.parametrize("fault", ["http:200", "50000"])
def test_upload_answered_by_an_error_page_is_retried(
    make_client: MakeClient, copy_sandbox: Any, admin: Any, face_video: Path, tmp_path: Path,
    fault: str,
) -> None:
    admin.add_fault("upload", fault, times=1)
    with _sandbox_client(make_client, copy_sandbox, tmp_path) as c:
        detail = c.files.upload(face_video, "lip_sync_video", timeout=30)
    assert detail.is_ready and detail.bytes == face_video.stat().st_size
    assert admin.count("upload") == 2
