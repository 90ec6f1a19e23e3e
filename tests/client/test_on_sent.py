"""The public send hook ``lipsync.create(on_sent=...)``: called once per attempt, with wall time,
after the rate limiter's wait and before the bytes leave; a raising hook sends nothing. Both
drivers, over a mock transport and over loopback HTTP to the sandbox."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from chanjing_avatar import RateLimits
from chanjing_avatar._wire import PATH_ACCESS_TOKEN, RateLimit

from .drivers import MakeClient, envelope, mock_client, token
from .fakes import FakeClock

VOICE = "a" * 32


def test_on_sent_hears_each_create_attempt_after_the_limiter(
    make_client: MakeClient, tmp_path: Path
) -> None:
    clock = FakeClock(0.0)
    events: list[tuple[str, float]] = []
    answers = iter([envelope(None, 40001, "rate limited"), envelope("task-1")])

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == PATH_ACCESS_TOKEN:
            return token()
        events.append(("arrived", clock.now))
        return next(answers)

    limits = RateLimits({"lipsync_create": RateLimit("lipsync_create", 1, 10.0)})
    with mock_client(make_client, tmp_path, handler, clock, rate_limits=limits) as c:
        task_id = c.lipsync.create(
            video_file_id="vid-1", text="hi", voice_id="v" * 32,
            on_sent=lambda at: events.append(("sent", clock.now)) or None,
        )
    assert task_id == "task-1"
    # One call per attempt, each just before its request; the retry waited for its slot first.
    assert [e[0] for e in events] == ["sent", "arrived", "sent", "arrived"]
    assert events[2][1] >= 10.0


def test_on_sent_gets_wall_time_and_a_raising_hook_sends_nothing(
    make_client: MakeClient, tmp_path: Path
) -> None:
    sent: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == PATH_ACCESS_TOKEN:
            return token()
        sent.append(req)
        return envelope("task-1")

    times: list[float] = []
    with mock_client(make_client, tmp_path, handler) as c:
        before = time.time()
        c.lipsync.create(video_file_id="vid-1", text="hi", voice_id="v" * 32,
                         on_sent=times.append)
        assert before <= times[0] <= time.time()
        assert c.lipsync.create(video_file_id="vid-1", audio_file_id="aud-1",
                                on_sent=times.append) == "task-1"
        assert len(times) == 2

        def refuse(_at: float) -> None:
            raise RuntimeError("journal is full")

        with pytest.raises(RuntimeError):
            c.lipsync.create(video_file_id="vid-1", text="hi", voice_id="v" * 32,
                             on_sent=refuse)
    assert len(sent) == 2


def _skip(seconds: float) -> None:
    if seconds <= 0.2:
        time.sleep(seconds)


def test_on_sent_once_per_attempt_before_the_server_sees_it(
    make_client: MakeClient, copy_sandbox: Any, admin: Any, face_video: Path, tmp_path: Path
) -> None:
    sb = copy_sandbox
    with make_client(app_id=sb.app_id, secret_key=sb.secret_key, base_url=sb.base_url,
                     credentials_dir=tmp_path / "cred", sleep=_skip) as c:
        file_id = c.files.upload(face_video, "lip_sync_video").id
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
