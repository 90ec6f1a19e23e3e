"""The client against the sandbox over real loopback HTTP: flows, errors, retries, faults."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chanjing_avatar import (
    AsyncClient,
    AuthenticationError,
    Client,
    ContentRejectedError,
    DownloadError,
    InvalidRequestError,
    LipSyncRequest,
    MakeEvent,
    OutcomeUnknownError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
    Task,
    TaskFailedError,
    TransportError,
    WaitTimeoutError,
)
from chanjing_avatar._core._download import download_part_path
from chanjing_avatar._core._probe import video_size
from media_maker import make_video, make_wav

from .fakes import copy_renderer

sandbox = pytest.importorskip("chanjing_avatar.sandbox")
Sandbox, SandboxConfig = sandbox.Sandbox, sandbox.SandboxConfig

FAST = {"file_sync_delay_s": 0.1, "callback_allow_private": True}  # receivers on loopback
VOICE = "a" * 32


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    return {"video": make_video(d / "face.mp4", 240, 320, fps=10),
            "audio": make_wav(d / "speech.wav")}


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # Many short-lived clients share this app: lift the server's limits (tested separately).
    cfg = SandboxConfig(data_dir=tmp_path_factory.mktemp("sandbox"), admin=True,
                        renderer=copy_renderer(), rate_limit_scale=100, **FAST)
    with Sandbox(cfg) as server:
        yield server


@pytest.fixture
def admin(sb: Any) -> Iterator[Any]:
    sb.admin.clear_faults()
    sb.admin.reset_stats()
    yield sb.admin
    sb.admin.clear_faults()


def _client(sb: Any, tmp_path: Path, **kw: Any) -> Client:
    kw.setdefault("credentials_dir", tmp_path / "cred")
    kw.setdefault("sleep", _short_sleep)
    return Client(sb.app_id, sb.secret_key, base_url=sb.base_url, **kw)


def _short_sleep(seconds: float) -> None:
    # Backoffs are skipped (attempt counts are what these tests check); short waits still happen.
    if seconds <= 0.2:
        time.sleep(seconds)


def _async_client(sb: Any, tmp_path: Path, **kw: Any) -> AsyncClient:
    kw.setdefault("credentials_dir", tmp_path / "cred")
    return AsyncClient(sb.app_id, sb.secret_key, base_url=sb.base_url, **kw)


@pytest.fixture
def client(sb: Any, tmp_path: Path) -> Iterator[Client]:
    # Backoff sleeps are skipped (attempt counts are what matter); polls still sleep briefly.
    with _client(sb, tmp_path) as c:
        yield c


# --- the seed flow -------------------------------------------------------------------------------

def test_seed_flow_text_sync(client: Client, admin: Any, media: dict[str, Path],
                             tmp_path: Path) -> None:
    sent: list[tuple[int, int]] = []
    video = client.files.upload(media["video"], "lip_sync_video",
                                on_progress=lambda a, b: sent.append((a, b)))
    assert video.is_ready and sent[-1] == (media["video"].stat().st_size,) * 2
    voices = client.voices.list(lang="zh")
    assert {v.lang for v in voices} <= {"zh", "zh-TW"} and voices
    task_id = client.lipsync.create(video_file_id=video.id, text="君不见黄河之水天上来",
                                    voice_id=voices[0].id, video_path=media["video"])
    seen: list[int] = []
    task = client.lipsync.wait(task_id, timeout=60, on_progress=lambda t: seen.append(t.progress))
    assert task.succeeded and task.duration == 1.0 and task.create_time is not None
    (tmp_path / "out").mkdir()
    out = client.lipsync.download(task, tmp_path / "out", preview=True)
    assert out.path == tmp_path / "out" / f"{task_id}.mp4"
    assert out.path.read_bytes() == media["video"].read_bytes()
    assert out.preview_path is not None and out.preview_path.exists()
    # The screen size defaulted to the video's own, not 1080x1920.
    listed = {t["id"]: t for t in admin.tasks()}
    assert task_id in listed
    page = client.lipsync.list(1, 5)
    assert page.items[0].id == task_id
    assert any(t.id == task_id for t in client.lipsync.iter_all(page_size=2))
    assert admin.count(code=40001) == 0


def test_seed_flow_audio_sync_make(client: Client, media: dict[str, Path],
                                   tmp_path: Path) -> None:
    events: list[MakeEvent] = []
    result = client.lipsync.make(video=media["video"], audio=media["audio"],
                                 output=tmp_path / "made.mp4", on_event=events.append)
    assert result.task.succeeded and result.audio_file_id
    assert result.download.path.read_bytes() == media["video"].read_bytes()
    stages = [e.stage for e in events]
    for stage in ("upload_video", "upload_audio", "create", "wait", "download", "done"):
        assert stage in stages


def test_seed_flows_async(sb: Any, admin: Any, media: dict[str, Path], tmp_path: Path) -> None:
    async def main() -> None:
        async with _async_client(sb, tmp_path) as c:
            video = await c.files.upload(media["video"], "lip_sync_video")
            audio = await c.files.upload(media["audio"], "lip_sync_audio")
            voices = await c.voices.list(gender="male")
            assert [v.name for v in voices] == ["Ethan"]
            text_id = await c.lipsync.create(video_file_id=video.id, text="hello",
                                             voice_id=voices[0].id)
            audio_id = await c.lipsync.create(video_file_id=video.id, audio_file_id=audio.id)
            done = await c.lipsync.wait_many([text_id, audio_id], timeout=60)
            assert all(t.succeeded for t in done.values())
            got = await c.lipsync.download(text_id, tmp_path / "a.mp4")
            assert got.path.read_bytes() == media["video"].read_bytes()
            made = await c.lipsync.make(video=video.id, text="again", voice_id=VOICE,
                                        output=tmp_path / "b.mp4")
            assert made.task.succeeded
            ids = [t.id async for t in c.lipsync.iter_all()]
            assert text_id in ids and audio_id in ids

    asyncio.run(main())
    assert admin.count(code=40001) == 0


def test_make_takes_a_waiter_and_on_sent_sync(client: Client, media: dict[str, Path],
                                             tmp_path: Path) -> None:
    sent: list[float] = []
    waited: list[tuple[str, float]] = []

    def waiter(task_id: str, *, timeout: float, on_progress: Any) -> Task:
        waited.append((task_id, timeout))
        return client.lipsync.wait(task_id, timeout=timeout, on_progress=on_progress)

    events: list[MakeEvent] = []
    before = time.time()
    result = client.lipsync.make(video=media["video"], text="hi", voice_id=VOICE,
                                 output=tmp_path / "w.mp4", on_event=events.append,
                                 on_sent=sent.append, waiter=waiter, timeout=120)
    assert waited == [(result.task.id, 120)]
    assert len(sent) == 1 and before <= sent[0] <= time.time()
    assert result.download.path.read_bytes() == media["video"].read_bytes()
    assert "wait" in [e.stage for e in events]  # the waiter's progress reaches on_event


def test_make_async_waits_through_a_callback_receiver(sb: Any, admin: Any,
                                                      media: dict[str, Path],
                                                      tmp_path: Path) -> None:
    from chanjing_avatar.callback import CallbackReceiver, ReceiverServer, wait_with_callbacks

    async def main() -> None:
        async with _async_client(sb, tmp_path) as c:
            receiver = CallbackReceiver(c.lipsync.get)
            async with ReceiverServer(receiver) as server:

                async def waiter(task_id: str, *, timeout: float, on_progress: Any) -> Task:
                    # A safety poll far beyond the test's timeout: only a callback ends it.
                    done = await wait_with_callbacks(c, receiver, [task_id], safety_poll=3600,
                                                     timeout=timeout, on_progress=on_progress)
                    return done[task_id]

                sent: list[float] = []
                made = await c.lipsync.make(video=media["video"], text="hi", voice_id=VOICE,
                                            output=tmp_path / "cb.mp4", callback=server.url,
                                            waiter=waiter, on_sent=sent.append, timeout=60)
            assert made.task.succeeded and len(sent) == 1
            # The callback came (it may beat the waiter, whose first look then finds the task
            # done); either way no 3600 s safety poll was needed.
            assert receiver.stats.received >= 1
            assert made.download.path.read_bytes() == media["video"].read_bytes()

    asyncio.run(main())


def test_make_with_a_waiter_raises_for_a_failed_task(client: Client, admin: Any,
                                                     media: dict[str, Path],
                                                     tmp_path: Path) -> None:
    admin.add_fault("lipsync_create", "task_failure", times=1)

    def waiter(task_id: str, *, timeout: float, on_progress: Any) -> Task:
        try:
            return client.lipsync.wait(task_id, timeout=timeout, on_progress=on_progress)
        except TaskFailedError as e:
            return e.task  # a waiter may return the failed task: make raises for it

    with pytest.raises(TaskFailedError):
        client.lipsync.make(video=media["video"], text="hi", voice_id=VOICE,
                            output=tmp_path / "f.mp4", waiter=waiter)
    assert not (tmp_path / "f.mp4").exists()


# --- errors from real answers --------------------------------------------------------------------

def test_wrong_keys(sb: Any, tmp_path: Path) -> None:
    with Client(sb.app_id, "wrong-secret", base_url=sb.base_url,
                credentials_dir=tmp_path) as c, pytest.raises(AuthenticationError) as info:
        c.lipsync.list()
    assert info.value.code == 10401 and "wrong-secret" not in str(info.value)


def test_invalid_requests_name_the_field(client: Client, admin: Any) -> None:
    with pytest.raises(InvalidRequestError) as info:  # local check: no request at all
        client.lipsync.create(video_file_id="f" * 32, text="x", voice_id=VOICE, volume=0)
    assert info.value.field == "volume"
    assert admin.count("lipsync_create") == 0
    with pytest.raises(InvalidRequestError) as info:  # the server's answer
        client.lipsync.create(video_file_id="f" * 32, text="x", voice_id=VOICE)
    assert info.value.code in (40000, 400) and info.value.trace_id
    assert info.value.field == "video_file_id"


def test_unknown_task(client: Client) -> None:
    with pytest.raises(InvalidRequestError) as info:
        client.lipsync.get("0" * 32)
    assert info.value.code == 40000


# --- injected faults: retries that succeed and that give up --------------------------------------

def test_retry_succeeds(client: Client, admin: Any) -> None:
    admin.add_fault("lipsync_list", sequence=["50000", "502", "40001", "drop", None])
    assert client.lipsync.list().page_info.page == 1
    assert admin.count("lipsync_list") == 5


@pytest.mark.parametrize(
    ("fault", "cls"),
    [("50000", ServerError), ("51000", ServerError), ("40001", RateLimitError),
     ("503", TransportError), ("drop", TransportError)],
)
def test_retry_gives_up(client: Client, admin: Any, fault: str, cls: type[Exception]) -> None:
    admin.add_fault("lipsync_list", fault)
    with pytest.raises(cls) as info:
        client.lipsync.list()
    assert admin.count("lipsync_list") == 1 + 4
    if fault == "503":
        assert info.value.http_status == 503  # type: ignore[attr-defined]


def test_max_retries_zero(sb: Any, admin: Any, tmp_path: Path) -> None:
    admin.add_fault("file_detail", "50000")
    with _client(sb, tmp_path, max_retries=0) as c, pytest.raises(ServerError):
        c.files.get("0" * 32)
    assert admin.count("file_detail") == 1


@pytest.mark.parametrize(("code", "cls"), [("40002", QuotaExhaustedError),
                                          ("50011", ContentRejectedError),
                                          ("40000", InvalidRequestError)])
def test_create_definite_errors(client: Client, admin: Any, media: dict[str, Path],
                                code: str, cls: type[Exception]) -> None:
    video = client.files.upload(media["video"], "lip_sync_video")
    admin.add_fault("lipsync_create", code)
    with pytest.raises(cls):
        client.lipsync.create(video_file_id=video.id, text="x", voice_id=VOICE)
    assert admin.count("lipsync_create") == 1


def test_create_retried_on_40001_only_once_created(client: Client, admin: Any,
                                                  media: dict[str, Path]) -> None:
    video = client.files.upload(media["video"], "lip_sync_video")
    before = len(admin.tasks())
    admin.add_fault("lipsync_create", sequence=["40001", "40001", None])
    client.lipsync.create(video_file_id=video.id, text="x", voice_id=VOICE)
    assert admin.count("lipsync_create") == 3
    assert len(admin.tasks()) == before + 1


@pytest.mark.parametrize("fault", ["drop", "502", "50000"])
def test_create_outcome_unknown(client: Client, admin: Any, media: dict[str, Path],
                                fault: str) -> None:
    video = client.files.upload(media["video"], "lip_sync_video")
    admin.add_fault("lipsync_create", fault, times=1)
    with pytest.raises(OutcomeUnknownError) as info:
        client.lipsync.create(video_file_id=video.id, text="对账", voice_id=VOICE)
    err = info.value
    assert admin.count("lipsync_create") == 1  # never resent
    assert err.request["video_file_id"] == video.id and err.sent_at.tzinfo is not None
    if fault == "502":
        assert err.http_status == 502


def test_create_outcome_unknown_on_read_timeout(sb: Any, admin: Any, media: dict[str, Path],
                                                tmp_path: Path) -> None:
    with _client(sb, tmp_path, timeout=httpx.Timeout(0.5, connect=5)) as c:
        video = c.files.upload(media["video"], "lip_sync_video")
        before = len(admin.tasks())
        admin.add_fault("lipsync_create", "delay:1.5", times=1)
        with pytest.raises(OutcomeUnknownError):
            c.lipsync.create(video_file_id=video.id, text="x", voice_id=VOICE)
    assert admin.count("lipsync_create") == 1
    assert len(admin.tasks()) <= before + 1


class _Recording(httpx.BaseTransport):
    """Real loopback transport that remembers the requests."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.inner.handle_request(request)


class _RefuseFirstConnect(httpx.BaseTransport):
    """Real loopback transport whose first create attempt fails to connect."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.refused = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/video_lip_sync/create") and self.refused == 0:
            self.refused += 1
            raise httpx.ConnectError("connection refused", request=request)
        return self.inner.handle_request(request)


def test_create_retried_when_connect_refused(sb: Any, admin: Any, media: dict[str, Path],
                                             tmp_path: Path) -> None:
    transport = _RefuseFirstConnect()
    with _client(sb, tmp_path, transport=transport) as c:
        video = c.files.upload(media["video"], "lip_sync_video")
        c.lipsync.create(video_file_id=video.id, text="x", voice_id=VOICE)
    assert transport.refused == 1 and admin.count("lipsync_create") == 1


def test_connect_refused_everywhere_gives_up(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with Client("a", "b", base_url=f"http://127.0.0.1:{port}", credentials_dir=tmp_path,
                sleep=lambda _s: None) as c, pytest.raises(TransportError) as info:
        c.lipsync.list()
    assert info.value.http_status is None


# --- files ---------------------------------------------------------------------------------------

def test_file_98_is_content_rejected(client: Client, admin: Any, media: dict[str, Path]) -> None:
    admin.add_fault("upload", "file_98", times=1)
    with pytest.raises(ContentRejectedError):
        client.files.upload(media["video"], "lip_sync_video")


def test_bad_media_fails_content_check(client: Client, tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(ContentRejectedError) as info:
        client.files.upload(junk, "lip_sync_video")
    assert info.value.msg


def test_expired_upload_url_gets_a_new_one(tmp_path: Path, media: dict[str, Path]) -> None:
    cfg = SandboxConfig(data_dir=tmp_path / "sb", admin=True, renderer=copy_renderer(),
                        upload_url_ttl_s=1, rate_limit_scale=100, **FAST)
    with Sandbox(cfg) as server:
        server.admin.add_fault("upload", "delay:2", times=1)  # the first PUT arrives too late
        with _client(server, tmp_path) as c:
            detail = c.files.upload(media["video"], "lip_sync_video")
        assert detail.is_ready
        assert server.admin.count("upload", "http_403") == 1
        assert server.admin.count("create_upload_url") == 2
        assert server.admin.count("upload", "http_200") == 1


def test_upload_retry_rewinds_stream(client: Client, admin: Any, media: dict[str, Path]) -> None:
    admin.add_fault("upload", sequence=["502", "503", None])
    with open(media["video"], "rb") as f:
        detail = client.files.upload(f, "lip_sync_video", name="face.mp4")
    assert detail.is_ready and detail.bytes == media["video"].stat().st_size
    assert admin.count("upload") == 3


def test_file_wait_timeout(client: Client, admin: Any, media: dict[str, Path]) -> None:
    admin.set_pacing(file_sync_delay_s=30)
    try:
        with pytest.raises(WaitTimeoutError) as info:
            client.files.upload(media["video"], "lip_sync_video", timeout=0.5)
        assert info.value.last is not None
    finally:
        admin.set_pacing(file_sync_delay_s=0.1)


# --- tasks ---------------------------------------------------------------------------------------

def test_task_failure_billing(client: Client, admin: Any, media: dict[str, Path]) -> None:
    video = client.files.upload(media["video"], "lip_sync_video")
    admin.add_fault("lipsync_create", "task_failure", times=1)
    task_id = client.lipsync.create(video_file_id=video.id, text="x", voice_id=VOICE)
    with pytest.raises(TaskFailedError) as info:
        client.lipsync.wait(task_id, timeout=30)
    assert info.value.is_billing and "余额不足" in info.value.reason


def test_wait_timeout_has_last_task(client: Client, admin: Any, media: dict[str, Path]) -> None:
    video = client.files.upload(media["video"], "lip_sync_video")
    admin.set_pacing(task_min_duration_s=30)
    try:
        task_id = client.lipsync.create(video_file_id=video.id, text="x", voice_id=VOICE)
        with pytest.raises(WaitTimeoutError) as info:
            client.lipsync.wait(task_id, timeout=1)
        assert info.value.last is not None and info.value.last.id == task_id
    finally:
        admin.set_pacing(task_min_duration_s=0)


def test_download_resumes_and_refuses_overwrite(sb: Any, client: Client, admin: Any,
                                                media: dict[str, Path], tmp_path: Path) -> None:
    big = tmp_path / "big.mp4"
    big.write_bytes(media["video"].read_bytes() + b"\0" * 300_000)  # several chunks
    video = client.files.upload(media["video"], "lip_sync_video")
    task = client.lipsync.wait(
        client.lipsync.create(video_file_id=video.id, text="x", voice_id=VOICE), timeout=30)
    expected = media["video"].read_bytes()
    # A connection cut mid-body is resumed with Range.
    admin.reset_stats()
    admin.add_fault("download", "drop", times=1)
    recorder = _Recording()
    with _client(sb, tmp_path, transport=recorder) as c:
        out = c.lipsync.download(task, tmp_path / "r.mp4")
    assert out.path.read_bytes() == expected
    assert admin.count("download") == 2 and admin.count("download", "dropped") == 1
    ranges = [r.headers.get("range") for r in recorder.requests if "/result/" in r.url.path]
    assert ranges[0] is None and ranges[1] == f"bytes={len(expected) // 2}-"
    # A run that gave up leaves a part file; the next run resumes it.
    target = tmp_path / "again.mp4"
    admin.add_fault("download", "drop", times=1)
    with _client(sb, tmp_path, max_retries=0) as impatient, pytest.raises(DownloadError):
        impatient.lipsync.download(task, target)
    partial = download_part_path(target).stat().st_size
    assert 0 < partial < len(expected)
    out = client.lipsync.download(task.id, target)
    assert out.resumed_from == partial and target.read_bytes() == expected
    assert not download_part_path(target).exists()
    # A part file of unknown origin is not trusted.
    other = tmp_path / "other.mp4"
    download_part_path(other).write_bytes(b"junk" * 100)
    out = client.lipsync.download(task, other)
    assert out.resumed_from == 0 and other.read_bytes() == expected
    with pytest.raises(FileExistsError):
        client.lipsync.download(task, target)
    client.lipsync.download(task, target, overwrite=True)


def test_download_errors(client: Client, admin: Any, media: dict[str, Path],
                         tmp_path: Path) -> None:
    video = client.files.upload(media["video"], "lip_sync_video")
    task = client.lipsync.wait(
        client.lipsync.create(video_file_id=video.id, text="x", voice_id=VOICE), timeout=30)
    admin.reset_stats()
    admin.add_fault("download", "404", times=1)
    with pytest.raises(DownloadError) as info:
        client.lipsync.download(task, tmp_path / "a.mp4")
    assert info.value.http_status == 404 and admin.count("download") == 1
    admin.reset_stats()
    admin.add_fault("download", "503")
    with pytest.raises(DownloadError) as info:
        client.lipsync.download(task, tmp_path / "b.mp4")
    assert info.value.http_status == 503 and admin.count("download") == 1 + 4
    assert not (tmp_path / "b.mp4").exists()


def test_screen_size_follows_video(client: Client, tmp_path: Path) -> None:
    landscape = make_video(tmp_path / "wide.mp4", width=320, height=176)
    assert video_size(landscape) == (320, 176)
    detail = client.files.upload(landscape, "lip_sync_video")
    request = LipSyncRequest(video=landscape, text="x", voice_id=VOICE)
    body = request.with_file_ids(video_file_id=detail.id).wire_body()
    assert (body["screen_width"], body["screen_height"]) == (320, 176)


# --- token sharing, rate limits, logs ------------------------------------------------------------

def test_token_invalidated_midway_is_recovered(client: Client, admin: Any) -> None:
    client.lipsync.list()
    admin.invalidate_tokens()
    client.lipsync.list()  # one 10400, a refresh, one retry
    assert admin.count("access_token") == 2 and admin.count(code=10400) == 1


def test_token_refused_every_time_raises_without_looping(client: Client, admin: Any) -> None:
    from chanjing_avatar._core._decisions import AUTH_ATTEMPTS

    client.lipsync.list()
    admin.reset_stats()
    admin.add_fault("lipsync_list", "invalidate_token")  # every token dies on arrival
    with pytest.raises(AuthenticationError) as info:
        client.lipsync.list()
    assert info.value.code == 10400
    assert admin.count("lipsync_list") == AUTH_ATTEMPTS
    assert admin.count("access_token") == AUTH_ATTEMPTS - 1


def test_two_clients_share_one_token(sb: Any, admin: Any, tmp_path: Path) -> None:
    with _client(sb, tmp_path) as a, _client(sb, tmp_path) as b:
        a.lipsync.list()
        b.lipsync.list()
        admin.invalidate_tokens()
        a.lipsync.list()
        b.lipsync.list()  # sees a's new token in the file: no second refresh
    assert admin.count("access_token") == 2
    assert admin.count(code=10400) == 1


def test_threads_and_tasks_share_refreshes(sb: Any, admin: Any, tmp_path: Path) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []
    invalidations = 0

    def rotator() -> None:
        nonlocal invalidations
        # Slower than one call's refresh-and-retry, even on a loaded machine: each call may retry
        # once only, by design.
        while not stop.wait(1.0):
            admin.invalidate_tokens(sb.app_id)
            invalidations += 1

    with _client(sb, tmp_path, rate_limits=False) as c:
        c.auth.token()

        def work() -> None:
            try:
                for _ in range(40):
                    c.lipsync.list()
                    time.sleep(0.06)
            except BaseException as e:  # pragma: no cover
                errors.append(e)

        async def tasks() -> None:
            async with _async_client(sb, tmp_path, rate_limits=False) as ac:
                async def one() -> None:
                    for _ in range(40):
                        await ac.lipsync.list()
                        await asyncio.sleep(0.06)
                await asyncio.gather(*(one() for _ in range(4)))

        admin.reset_stats()
        rot = threading.Thread(target=rotator)
        rot.start()
        threads = [threading.Thread(target=work) for _ in range(4)]
        def run_tasks() -> None:
            try:
                asyncio.run(tasks())
            except BaseException as e:  # pragma: no cover
                errors.append(e)

        threads.append(threading.Thread(target=run_tasks))
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            stop.set()
            rot.join()
    assert not errors
    assert admin.count("lipsync_list", 0) == 320
    # One refresh per invalidation, not one per thread or task.
    assert invalidations >= 1
    assert admin.count("access_token") <= invalidations + 1


def test_limiter_shared_by_threads_avoids_40001(tmp_path: Path) -> None:
    # Real (unscaled) windows: a loaded CI machine delays requests by tens of milliseconds.
    cfg = SandboxConfig(data_dir=tmp_path / "sb", admin=True, renderer=copy_renderer(), **FAST)
    with Sandbox(cfg) as server, _client(server, tmp_path, sleep=None) as c:
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(5):
                    c.lipsync.list()
            except BaseException as e:  # pragma: no cover
                errors.append(e)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert server.admin.count("lipsync_list") == 20
        assert server.admin.count(code=40001) == 0

        async def tasks() -> None:
            async with _async_client(server, tmp_path) as ac:
                await asyncio.gather(*(ac.lipsync.list() for _ in range(20)))

        time.sleep(1.2)  # another client has its own limiter: let the server's window pass
        asyncio.run(tasks())
        assert server.admin.count(code=40001) == 0


def test_logs_hide_secrets(sb: Any, admin: Any, media: dict[str, Path], tmp_path: Path,
                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="chanjing_avatar")
    with _client(sb, tmp_path) as c:
        c.files.upload(media["video"], "lip_sync_video")
        token = c.auth.token()
        admin.add_fault("lipsync_list", "50000", times=1)
        c.lipsync.list()
    text = caplog.text
    assert "/open/v1/common/create_upload_url" in text and "PUT" in text
    assert sb.secret_key not in text and token not in text and "Signature=***" in text


def test_chanjing_log_env_turns_on_request_logs(sb: Any, tmp_path: Path) -> None:
    code = (
        "import sys; from chanjing_avatar import Client\n"
        "c = Client(sys.argv[1], sys.argv[2], base_url=sys.argv[3], credentials_dir=sys.argv[4])\n"
        "c.lipsync.list(); print(c.auth.token())\n"
    )
    env = {**os.environ, "CHANJING_LOG": "debug"}
    run = subprocess.run(
        [sys.executable, "-c", code, sb.app_id, sb.secret_key, sb.base_url, str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )
    token = run.stdout.strip()
    assert "POST" in run.stderr and "/open/v1/video_lip_sync/list" in run.stderr
    assert token and token not in run.stderr and sb.secret_key not in run.stderr


def test_eight_processes_share_one_credentials_file(tmp_path: Path) -> None:
    """Tokens rotate (short lifetime, and the admin invalidates them); no process fails."""
    import json

    cfg = SandboxConfig(data_dir=tmp_path / "sb", admin=True, renderer=copy_renderer(),
                        rate_limits_enabled=False, token_ttl_s=302, **FAST)
    cred = tmp_path / "shared"
    worker = Path(__file__).with_name("token_worker.py")
    with Sandbox(cfg) as server:
        start_at = time.time() + 3.0  # all eight begin together, after their imports
        procs = [
            subprocess.Popen(
                [sys.executable, str(worker), server.app_id, server.secret_key, server.base_url,
                 str(cred), "6", str(start_at)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for _ in range(8)
        ]
        unreadable: list[str] = []
        reads = 0
        stop = threading.Event()

        def reader() -> None:
            nonlocal reads
            path = cred / "credentials.json"
            while not stop.is_set():
                try:
                    raw = path.read_text()
                except FileNotFoundError:
                    continue
                try:
                    data = json.loads(raw)
                    assert data["access_token"] and data["app_id"] == server.app_id
                    reads += 1
                except (ValueError, KeyError, AssertionError):
                    unreadable.append(raw[:80])

        def rotator() -> None:
            while not stop.wait(1.7):
                server.admin.invalidate_tokens(server.app_id)

        threads = [threading.Thread(target=reader), threading.Thread(target=rotator)]
        for t in threads:
            t.start()
        try:
            outs = [p.communicate(timeout=120) for p in procs]
        finally:
            stop.set()
            for t in threads:
                t.join()
        results = [json.loads(out) for out, _err in outs]
        refreshes = server.admin.count("access_token")
        wire_10400 = server.admin.count(code=10400)
    assert all(p.returncode == 0 for p in procs), [err for _o, err in outs]
    assert [r["errors"] for r in results] == [[]] * 8
    assert all(r["calls"] > 10 for r in results)
    assert unreadable == [] and reads > 100
    assert (cred / "credentials.json").stat().st_mode & 0o777 == 0o600
    assert cred.stat().st_mode & 0o777 == 0o700
    # One refresh per rotation, not one per process: ~6 s / 2 s lifetime + ~3 invalidations.
    print(f"calls={sum(r['calls'] for r in results)} refreshes={refreshes} "
          f"wire_10400={wire_10400} reads={reads}")
    assert refreshes <= 20, (refreshes, wire_10400)
