"""Gaps reported by the CLI and batch engineers, closed in the client (no network: a mock transport
and a fake clock): the public send hook, the limiter anchored on answers, error bodies in place of
a download or as the answer of an upload PUT."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from chanjing_avatar import AsyncClient, Client, DownloadError, RateLimits, Task, TransportError
from chanjing_avatar._core._ratelimit import SlidingWindow
from chanjing_avatar._wire import PATH_ACCESS_TOKEN, PATH_CREATE_UPLOAD_URL, RateLimit

from .fakes import FakeClock

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64
XML_DENIED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
              b"<Message>Request has expired</Message></Error>")


def _env(data: Any = None, code: int = 0, msg: str = "success") -> httpx.Response:
    return httpx.Response(200, json={"trace_id": "t" * 32, "code": code, "msg": msg, "data": data})


def _token() -> httpx.Response:
    return _env({"access_token": "tok", "expire_in": int(time.time()) + 86400})


Handler = Callable[[httpx.Request], httpx.Response]


def _client(tmp_path: Path, handler: Handler, clock: FakeClock | None = None,
            **kw: Any) -> Client:
    def sleep(s: float) -> None:
        if clock is not None:
            clock.now += s

    return Client("app", "s3cret-key-value", base_url="https://api.test",
                  credentials_dir=tmp_path / "cred", transport=httpx.MockTransport(handler),
                  clock=clock, sleep=sleep, **kw)


def _async_client(tmp_path: Path, handler: Handler, **kw: Any) -> AsyncClient:
    async def sleep(_s: float) -> None:
        return None

    return AsyncClient("app", "s3cret-key-value", base_url="https://api.test",
                       credentials_dir=tmp_path / "cred", transport=httpx.MockTransport(handler),
                       sleep=sleep, **kw)


# --- 1. the public send hook ----------------------------------------------------------------------

def test_on_sent_hears_each_create_attempt_after_the_limiter(tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    events: list[tuple[str, float]] = []
    answers = iter([_env(None, 40001, "rate limited"), _env("task-1")])

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == PATH_ACCESS_TOKEN:
            return _token()
        events.append(("arrived", clock.now))
        return next(answers)

    limits = RateLimits({"lipsync_create": RateLimit("lipsync_create", 1, 10.0)})
    with _client(tmp_path, handler, clock, rate_limits=limits) as c:
        before = time.time()
        task_id = c.lipsync.create(
            video_file_id="vid-1", text="hi", voice_id="v" * 32,
            on_sent=lambda at: events.append(("sent", clock.now)) or None,
        )
        assert before <= time.time()
    assert task_id == "task-1"
    # One call per attempt, each just before its request; the retry waited for its slot first.
    assert [e[0] for e in events] == ["sent", "arrived", "sent", "arrived"]
    assert events[2][1] >= 10.0


def test_on_sent_gets_wall_time_and_a_raising_hook_sends_nothing(tmp_path: Path) -> None:
    sent: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == PATH_ACCESS_TOKEN:
            return _token()
        sent.append(req)
        return _env("task-1")

    times: list[float] = []
    with _client(tmp_path, handler) as c:
        before = time.time()
        c.lipsync.create(video_file_id="vid-1", text="hi", voice_id="v" * 32,
                         on_sent=times.append)
        assert before <= times[0] <= time.time()

        def refuse(_at: float) -> None:
            raise RuntimeError("journal is full")

        with pytest.raises(RuntimeError):
            c.lipsync.create(video_file_id="vid-1", text="hi", voice_id="v" * 32,
                             on_sent=refuse)
    assert len(sent) == 1


def test_async_on_sent(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == PATH_ACCESS_TOKEN:
            return _token()
        seen.append("request")
        return _env("task-1")

    async def main() -> str:
        async with _async_client(tmp_path, handler) as c:
            return await c.lipsync.create(video_file_id="vid-1", audio_file_id="aud-1",
                                          on_sent=lambda _at: seen.append("sent"))

    assert asyncio.run(main()) == "task-1"
    assert seen == ["sent", "request"]


# --- 2. the limiter: anchored on answers, measured latency ---------------------------------------

def _max_in_window(arrivals: list[float], period: float) -> int:
    arrivals = sorted(arrivals)
    return max(
        sum(1 for b in arrivals[i:] if b < a + period) for i, a in enumerate(arrivals)
    )


@pytest.mark.parametrize("slow_first", [False, True])
def test_sequential_calls_keep_the_server_window_and_lose_only_latency(
    tmp_path: Path, slow_first: bool
) -> None:
    """The server counts arrivals; the client's slots follow the answers, so a slow request
    (its arrival late) never lets a later one in early, and a fast run loses no fixed margin."""
    clock = FakeClock(0.0)
    arrivals: list[float] = []

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == PATH_ACCESS_TOKEN:
            return _token()
        # The very first request takes 300 ms to arrive when slow_first, the others 10 ms.
        before = 0.3 if slow_first and not arrivals else 0.01
        clock.now += before
        arrivals.append(clock.now)
        clock.now += 0.01
        return _env({"list": [], "page_info": {"page": 1, "size": 10, "total_count": 0,
                                               "total_page": 1}})

    limits = RateLimits({"lipsync_query": RateLimit("lipsync_query", 10, 1.0)})
    with _client(tmp_path, handler, clock, rate_limits=limits) as c:
        for _ in range(30):
            c.lipsync.list()
    assert _max_in_window(arrivals, 1.0) <= 10
    if not slow_first:
        # Two window turns, each losing one request's latency (20 ms): no 5 % / 100 ms margin.
        assert arrivals[20] - arrivals[0] < 2 * (1.0 + 0.03)


def test_window_waits_for_a_late_send_of_an_earlier_slot() -> None:
    w = SlidingWindow(RateLimit("b", 2, 1.0))
    a, b = w.book(0.0), w.book(0.0)
    c = w.book(0.0)
    assert c.at >= 1.0  # after a's slot, plus its latency allowance
    # a is sent late (the event loop was busy): c's check pushes it after a's answer.
    w.sent(a, 0.5)
    w.settle(a, 0.6)
    w.sent(b, 0.0)
    w.settle(b, 0.01)
    assert w.check(c, c.at) >= 1.6


def test_a_slot_never_sent_is_given_back() -> None:
    w = SlidingWindow(RateLimit("b", 1, 1.0))
    a = w.book(0.0)
    w.settle(a, 0.0)  # cancelled while waiting: never sent
    assert w.book(0.0).at == 0.0


def test_answered_slots_need_no_margin() -> None:
    w = SlidingWindow(RateLimit("b", 1, 60.0))
    a = w.book(0.0)
    w.sent(a, 0.0)
    w.settle(a, 0.05)
    assert w.book(0.1).at == pytest.approx(60.05)  # not 60 + 3 s


# --- 3. downloads never keep an error body --------------------------------------------------------

def _download_client(tmp_path: Path, answers: list[httpx.Response],
                     seen: list[httpx.Request]) -> Client:
    it = iter(answers)

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return next(it)

    return _client(tmp_path, handler)


TASK = Task(id="task-1", status=20, video_url="https://oss.test/result/task-1.mp4?Signature=x")


@pytest.mark.parametrize(
    "bad",
    [
        _env(None, 50000, "系统内部错误"),  # application/json, retryable code
        httpx.Response(200, content=b"<html><body>502 Bad Gateway</body></html>",
                       headers={"content-type": "application/octet-stream"}),  # sniffed
        httpx.Response(200, content=b'{"trace_id": "x", "code": 51000, "msg": "busy"}',
                       headers={"content-type": "video/mp4"}),  # sniffed envelope
    ],
)
def test_download_retries_an_error_body_and_never_keeps_it(tmp_path: Path,
                                                           bad: httpx.Response) -> None:
    seen: list[httpx.Request] = []
    good = httpx.Response(200, content=VIDEO, headers={"content-type": "video/mp4"})
    with _download_client(tmp_path, [bad, good], seen) as c:
        result = c.lipsync.download(TASK, tmp_path / "out.mp4")
    assert (tmp_path / "out.mp4").read_bytes() == VIDEO and result.bytes == len(VIDEO)
    assert len(seen) == 2 and "range" not in seen[1].headers


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (_env(None, 40002, "quota"), 40002),
        (httpx.Response(200, content=XML_DENIED, headers={"content-type": "application/xml"}),
         None),
    ],
)
def test_download_refuses_a_definite_error_body(tmp_path: Path, bad: httpx.Response,
                                                code: int | None) -> None:
    seen: list[httpx.Request] = []
    with _download_client(tmp_path, [bad], seen) as c, pytest.raises(DownloadError) as info:
        c.lipsync.download(TASK, tmp_path / "out.mp4")
    assert info.value.code == code and info.value.http_status == 200
    assert len(seen) == 1
    assert not list(tmp_path.glob("*out.mp4*"))  # no file, no part, no part metadata


def test_download_error_body_gives_up_after_the_retries(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    answers = [_env(None, 50000, "err") for _ in range(3)]
    with _download_client(tmp_path, answers, seen) as c:
        c._ctx.retry = type(c._ctx.retry)(max_retries=2)
        with pytest.raises(DownloadError, match="API error"):
            c.lipsync.download(TASK, tmp_path / "out.mp4")
    assert len(seen) == 3 and not list(tmp_path.glob("*out.mp4*"))


def test_async_download_rejects_an_html_page(tmp_path: Path) -> None:
    answers = iter([
        httpx.Response(200, content=b"<!DOCTYPE html><html>maintenance</html>",
                       headers={"content-type": "text/html"}),
        httpx.Response(200, content=VIDEO, headers={"content-type": "video/mp4"}),
    ])

    async def main() -> bytes:
        async with _async_client(tmp_path, lambda _r: next(answers)) as c:
            await c.lipsync.download(TASK, tmp_path / "out.mp4")
        return (tmp_path / "out.mp4").read_bytes()

    assert asyncio.run(main()) == VIDEO


# --- 4. an upload PUT answered 2xx with an error body ---------------------------------------------

def _upload_handler(put_answers: list[httpx.Response], calls: list[str]) -> Handler:
    it = iter(put_answers)
    urls = iter(range(1, 100))

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == PATH_ACCESS_TOKEN:
            return _token()
        if req.url.path == PATH_CREATE_UPLOAD_URL:
            n = next(urls)
            calls.append(f"url{n}")
            return _env({"sign_url": f"https://oss.test/upload/f{n}.mp4?Signature=s{n}",
                         "mime_type": "video/mp4", "file_id": f"file-{n}"})
        assert req.method == "PUT"
        calls.append(f"put:{req.url.path}")
        req.read()
        return next(it)

    return handler


def test_upload_put_2xx_envelope_error_is_retried(tmp_path: Path) -> None:
    src = tmp_path / "me.mp4"
    src.write_bytes(VIDEO)
    calls: list[str] = []
    answers = [_env(None, 50000, "系统内部错误"), httpx.Response(200)]
    with _client(tmp_path, _upload_handler(answers, calls)) as c:
        detail = c.files.upload(src, "lip_sync_video", wait=False)
    assert detail.id == "file-1"
    assert calls == ["url1", "put:/upload/f1.mp4", "put:/upload/f1.mp4"]


def test_upload_put_2xx_xml_refusal_gets_a_new_address(tmp_path: Path) -> None:
    src = tmp_path / "me.mp4"
    src.write_bytes(VIDEO)
    calls: list[str] = []
    answers = [httpx.Response(200, content=XML_DENIED,
                              headers={"content-type": "application/xml"}),
               httpx.Response(200, json={"code": 0, "msg": "ok"})]
    with _client(tmp_path, _upload_handler(answers, calls)) as c:
        detail = c.files.upload(src, "lip_sync_video", wait=False)
    assert detail.id == "file-2"  # the id of the address that took the bytes
    assert calls == ["url1", "put:/upload/f1.mp4", "url2", "put:/upload/f2.mp4"]


def test_upload_put_2xx_refusal_twice_raises(tmp_path: Path) -> None:
    src = tmp_path / "me.mp4"
    src.write_bytes(VIDEO)
    calls: list[str] = []
    answers = [_env(None, 40000, "bad"), _env(None, 40000, "bad")]
    with _client(tmp_path, _upload_handler(answers, calls)) as c, \
            pytest.raises(TransportError, match="API error") as info:
        c.files.upload(src, "lip_sync_video", wait=False)
    assert info.value.code == 40000 and info.value.http_status == 200
    assert calls == ["url1", "put:/upload/f1.mp4", "url2", "put:/upload/f2.mp4"]


def test_async_upload_put_envelope_error(tmp_path: Path) -> None:
    src = tmp_path / "me.mp4"
    src.write_bytes(VIDEO)
    calls: list[str] = []
    answers = [_env(None, 51000, "busy"), httpx.Response(204)]

    async def main() -> str:
        async with _async_client(tmp_path, _upload_handler(answers, calls)) as c:
            return (await c.files.upload(src, "lip_sync_video", wait=False)).id

    assert asyncio.run(main()) == "file-1"
    assert calls.count("put:/upload/f1.mp4") == 2

