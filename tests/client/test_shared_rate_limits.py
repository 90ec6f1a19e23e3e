"""One app's rate limits are shared by its processes on one machine, over the sandbox.

Several real processes upload at once with the documented file-management limit (30 per 60 s, in
the sandbox's scaled time): none fails and none is refused with 40001, because they queue through
the state file beside the credentials file. 40001 on uploads is retried until the window rolls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chanjing_avatar import Client, RateLimitError, RateLimits
from chanjing_avatar._core._ratelimit import RateLimiter
from chanjing_avatar._ratelimit_file import FileRateLimiter, state_path
from chanjing_avatar._wire import RATE_LIMITS
from media_maker import make_video

sandbox = pytest.importorskip("chanjing_avatar.sandbox", reason="needs the sandbox extra")
ROOT = Path(__file__).resolve().parents[2]
SCALE = 6.0  # 30 file-management requests per 10 s


def _sandbox(data_dir: Path) -> Any:
    from .fakes import copy_renderer

    return sandbox.Sandbox(sandbox.SandboxConfig(
        data_dir=data_dir, admin=True, renderer=copy_renderer(), time_scale=SCALE,
        file_sync_delay_s=0.05))


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with _sandbox(tmp_path_factory.mktemp("sandbox")) as server:
        yield server


@pytest.fixture
def fresh_sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A sandbox of its own: its rate windows start empty, whatever ran before."""
    with _sandbox(tmp_path_factory.mktemp("sandbox")) as server:
        yield server


def test_processes_uploading_at_once_share_the_limit(sb: Any, tmp_path: Path) -> None:
    video = make_video(tmp_path / "face.mp4", 64, 64, seconds=0.2)
    cred, start = tmp_path / "cred", tmp_path / "start"
    workers, uploads = 5, 8  # 40 uploads, at least 80 file-management requests: 3 windows
    sb.admin.reset_stats()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.client.upload_worker", sb.app_id, sb.secret_key,
             sb.base_url, str(cred), str(video), str(uploads), str(SCALE), str(start)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, CHANJING_LOG=""),
        )
        for _ in range(workers)
    ]
    try:
        start.touch()
        results = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0] * workers, [err for _, err in results]
    lines = [json.loads(out) for out, _ in results]
    assert [r["errors"] for r in lines] == [[]] * workers
    assert sum(r["done"] for r in lines) == workers * uploads
    requests = (sb.admin.count("create_upload_url") + sb.admin.count("file_detail"))
    assert requests >= 2 * workers * uploads > RATE_LIMITS["file_management"].count * 2
    assert sb.admin.count(code=40001) == 0  # their combined rate stayed within the limit
    state = state_path(cred, sb.base_url, sb.app_id)
    assert state.exists() and state.stat().st_mode & 0o777 == 0o600


def test_an_unusable_folder_falls_back_to_the_process_limiter(tmp_path: Path) -> None:
    limits = RateLimits().limits
    assert isinstance(FileRateLimiter.create(limits, tmp_path / "missing" / "r.json"),
                      RateLimiter)
    (tmp_path / "dir.json").mkdir()  # not a file
    assert isinstance(FileRateLimiter.create(limits, tmp_path / "dir.json"), RateLimiter)
    assert isinstance(FileRateLimiter.create(limits, tmp_path / "r.json"), FileRateLimiter)


def test_a_read_only_folder_falls_back(sb: Any, tmp_path: Path) -> None:
    """A credentials folder on a read-only mount: the client still works, limited in-process."""
    cred = tmp_path / "ro"
    cred.mkdir(mode=0o700)
    with Client(sb.app_id, sb.secret_key, base_url=sb.base_url, credentials_dir=cred,
                allow_http=True) as c:
        c.auth.token()  # the token file is written while the folder is writable
    if subprocess.run(["mount", "-o", "bind,ro", str(cred), str(cred)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot make a read-only mount here (needs root and mount)")
    try:
        with Client(sb.app_id, sb.secret_key, base_url=sb.base_url, credentials_dir=cred,
                    allow_http=True) as c:
            assert c.lipsync.list().total_count >= 0
            assert isinstance(c._limiter, RateLimiter)
    finally:
        subprocess.run(["umount", str(cred)], check=True)


def test_40001_on_uploads_is_retried_until_the_window_rolls(
    fresh_sb: Any, tmp_path: Path
) -> None:
    """More 40001s than max_retries, on the upload address and on the PUT: still uploaded.
    (The client's sleeps are recorded, not slept: only a sandbox of its own has room.)"""
    sb = fresh_sb
    video = make_video(tmp_path / "face.mp4", 64, 64, seconds=0.2)
    sleeps: list[float] = []
    sb.admin.clear_faults()
    sb.admin.reset_stats()
    sb.admin.add_fault("create_upload_url", "40001", times=6)
    sb.admin.add_fault("upload", "40001", times=6)  # an object store's 503 SlowDown
    try:
        with Client(sb.app_id, sb.secret_key, base_url=sb.base_url, credentials_dir=tmp_path,
                    allow_http=True, max_retries=4, sleep=sleeps.append) as c:
            detail = c.files.upload(video, "lip_sync_video")
    finally:
        sb.admin.clear_faults()
    assert detail.is_ready
    # Six refusals each, more than max_retries, and the backoff slept for them stays bounded.
    assert sb.admin.count("create_upload_url", 40001) == 6
    assert sb.admin.count("upload", "http_503") == 6
    assert 12 * 1.0 <= sum(sleeps) < 2 * 2 * 60

    sb.admin.add_fault("create_upload_url", "40001")  # forever: gives up after two windows
    try:
        with Client(sb.app_id, sb.secret_key, base_url=sb.base_url, credentials_dir=tmp_path,
                    allow_http=True, sleep=sleeps.append) as c, pytest.raises(RateLimitError):
            c.files.upload(video, "lip_sync_video")
    finally:
        sb.admin.clear_faults()


def test_a_child_forked_while_the_state_file_is_locked_does_not_keep_it(tmp_path: Path) -> None:
    """The lock is the process's own: a child forked while a parent thread holds it (and that
    lives on, holding the inherited descriptor) does not block the other processes."""
    import multiprocessing
    import threading
    import time

    limits = RateLimits().limits
    path = tmp_path / "state.json"
    parent = FileRateLimiter(limits, path)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with parent._locked():
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=time.sleep, args=(30,))
    child.start()  # forked while the lock is held
    release.set()
    holder.join()
    other = multiprocessing.get_context("spawn").Process(target=_book_once, args=(path,))
    try:
        other.start()
        other.join(20)
        assert other.exitcode == 0, "another process could not lock the state file"
    finally:
        for proc in (child, other):
            if proc.is_alive():
                proc.kill()
            proc.join()


def _book_once(path: Path) -> None:
    import time

    limiter = FileRateLimiter(RateLimits().limits, path)
    slot = limiter.book("file_management", time.monotonic())
    assert slot is not None
    limiter.settle(slot, time.monotonic())
