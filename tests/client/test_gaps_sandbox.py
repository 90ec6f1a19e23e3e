"""The send hook and error bodies against the sandbox (its fault injection) over loopback HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chanjing_avatar import AsyncClient, Client

from .fakes import CopyRenderer
from .media import make_video

sandbox = pytest.importorskip("chanjing_avatar.sandbox")
VOICE = "a" * 32


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    cfg = sandbox.SandboxConfig(data_dir=tmp_path_factory.mktemp("sandbox"), admin=True,
                                renderer=CopyRenderer(), rate_limit_scale=100,
                                file_sync_delay_s=0.1)
    with sandbox.Sandbox(cfg) as server:
        yield server


@pytest.fixture
def admin(sb: Any) -> Iterator[Any]:
    sb.admin.clear_faults()
    sb.admin.reset_stats()
    yield sb.admin
    sb.admin.clear_faults()


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("media") / "face.mp4")


def _skip(seconds: float) -> None:
    if seconds <= 0.2:
        time.sleep(seconds)


def _client(sb: Any, tmp_path: Path) -> Client:
    return Client(sb.app_id, sb.secret_key, base_url=sb.base_url,
                  credentials_dir=tmp_path / "cred", sleep=_skip)


def test_on_sent_once_per_attempt_before_the_server_sees_it(
    sb: Any, admin: Any, video: Path, tmp_path: Path
) -> None:
    with _client(sb, tmp_path) as c:
        file_id = c.files.upload(video, "lip_sync_video").id
        admin.reset_stats()
        admin.add_fault("lipsync_create", "40001", times=1)
        seen: list[tuple[float, int]] = []
        task_id = c.lipsync.create(
            video_file_id=file_id, text="hi", voice_id=VOICE,
            on_sent=lambda at: seen.append((at, admin.count("lipsync_create"))),
        )
        assert task_id
    # Two attempts (40001, then created); each hook ran before its request reached the server.
    assert [n for _at, n in seen] == [0, 1]
    assert admin.count("lipsync_create") == 2
    assert seen[0][0] <= seen[1][0] <= time.time()


def test_async_on_sent(sb: Any, admin: Any, video: Path, tmp_path: Path) -> None:
    async def main() -> list[float]:
        times: list[float] = []
        async with AsyncClient(sb.app_id, sb.secret_key, base_url=sb.base_url,
                               credentials_dir=tmp_path / "cred") as c:
            file_id = (await c.files.upload(video, "lip_sync_video")).id
            await c.lipsync.create(video_file_id=file_id, text="hi", voice_id=VOICE,
                                   on_sent=times.append)
        return times

    assert len(asyncio.run(main())) == 1


# "http:200": a gateway's web page answered with 200 in place of the object store;
# "50000": what the object store answers for an internal error (an XML error, HTTP 500).
@pytest.mark.parametrize("fault", ["http:200", "50000"])
def test_download_answered_by_an_error_page_is_retried(sb: Any, admin: Any, video: Path,
                                                       tmp_path: Path, fault: str) -> None:
    with _client(sb, tmp_path) as c:
        file_id = c.files.upload(video, "lip_sync_video").id
        task = c.lipsync.wait(
            c.lipsync.create(video_file_id=file_id, text="x", voice_id=VOICE), timeout=30)
        admin.reset_stats()
        admin.add_fault("download", fault, times=1)
        out = c.lipsync.download(task, tmp_path / "out.mp4")
    assert out.path.read_bytes() == video.read_bytes()
    assert admin.count("download") == 2


@pytest.mark.parametrize("fault", ["http:200", "50000"])
def test_upload_answered_by_an_error_page_is_retried(sb: Any, admin: Any, video: Path,
                                                     tmp_path: Path, fault: str) -> None:
    admin.add_fault("upload", fault, times=1)
    with _client(sb, tmp_path) as c:
        detail = c.files.upload(video, "lip_sync_video", timeout=30)
    assert detail.is_ready and detail.bytes == video.stat().st_size
    assert admin.count("upload") == 2
