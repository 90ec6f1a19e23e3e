"""Callbacks: the detail envelope POSTed on a terminal state, retried, never blocking."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chanjing_avatar.sandbox import CallbackPolicy

from .api import Api, tts_body
from .conftest import VOICE, Factory
from .receiver import Receiver
from .stub import stub_renderer


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_callback_carries_the_detail_envelope(
    api: Api, tiny_video: Path, receiver: Receiver
) -> None:
    video = api.ready_file("lip_sync_video", tiny_video)
    ok_id = api.create(tts_body(video, VOICE, callback=receiver.url))
    bad_id = api.create(tts_body(video, VOICE, text="FAIL", callback=receiver.url))
    bodies = receiver.wait(2)
    by_id = {b["data"]["id"]: b for b in bodies}
    assert set(by_id) == {ok_id, bad_id}
    ok = by_id[ok_id]
    assert ok["code"] == 0 and ok["msg"] == "success" and len(ok["trace_id"]) == 32
    assert ok["data"] == api.detail(ok_id)
    assert by_id[bad_id]["data"]["status"] == 30
    time.sleep(0.3)
    assert len(receiver.bodies) == 2  # delivered once each


def test_failed_deliveries_are_retried_with_backoff(
    api: Api, tiny_video: Path, receiver: Receiver, sandbox_target: str
) -> None:
    receiver.fail_first = 2
    video = api.ready_file("lip_sync_video", tiny_video)
    api.create(tts_body(video, VOICE, callback=receiver.url))
    receiver.wait(3)
    gaps = [b - a for a, b in zip(receiver.times, receiver.times[1:], strict=False)]
    # Policy in tests: 0.05 s then 0.1 s.
    assert gaps[0] >= 0.04 and gaps[1] >= 0.09, gaps
    time.sleep(0.3)
    assert len(receiver.bodies) == 3
    if sandbox_target == "deployment":
        return  # workers send callbacks there; the admin stats count the API replicas' answers
    outcomes = api.sb.admin.stats()["responses"]["callback"]
    assert outcomes == {"http_500": 2, "http_200": 1}


def test_gives_up_after_the_policy_attempts(api: Api, tiny_video: Path, receiver: Receiver) -> None:
    receiver.fail_first = 100
    video = api.ready_file("lip_sync_video", tiny_video)
    api.create(tts_body(video, VOICE, callback=receiver.url))
    receiver.wait(4)
    time.sleep(1.0)
    assert len(receiver.bodies) == 4


def test_slow_or_dead_receivers_block_nothing(api: Api, tiny_video: Path) -> None:
    slow = Receiver(delay_s=1.5)
    try:
        video = api.ready_file("lip_sync_video", tiny_video)
        dead = "http://127.0.0.1:9/nothing-listens-here"
        first = [
            api.create(tts_body(video, VOICE, callback=url)) for url in (slow.url, slow.url, dead)
        ]
        started = time.monotonic()
        plain = api.create(tts_body(video, VOICE))
        assert api.wait_task(plain)["status"] == 20
        for task_id in first:
            assert api.wait_task(task_id)["status"] == 20
        assert api.detail(plain)["status"] == 20
        assert time.monotonic() - started < 1.4
    finally:
        slow.close()


def test_pending_retries_survive_a_restart(sandbox_factory: Factory, tiny_video: Path) -> None:
    receiver = Receiver(fail_first=100)
    # A backoff long enough that the sandbox stops while the second attempt is still waiting.
    policy = CallbackPolicy(attempts=3, backoff_s=1.0, factor=1.0, timeout_s=2.0)
    try:
        sb = sandbox_factory(renderer=stub_renderer(), callback=policy)
        client = Api(sb)
        client.login()
        video = client.ready_file("lip_sync_video", tiny_video)
        task_id = client.create(tts_body(video, VOICE, callback=receiver.url))
        first = receiver.wait(1)[0]
        client.close()
        sb.stop()
        assert len(receiver.bodies) == 1

        sb2 = sandbox_factory(renderer=stub_renderer(), callback=policy)
        second, third = receiver.wait(3)[1:]
        # The same callback carried on: its trace, this run's URLs, the backoff and the count of
        # attempts kept (3 in all, not 1 + 3).
        assert second["trace_id"] == third["trace_id"] == first["trace_id"]
        assert second["data"]["id"] == task_id and second["data"]["status"] == 20
        assert second["data"]["video_url"].startswith(sb2.base_url + "/")
        assert receiver.times[1] - receiver.times[0] >= 0.9
        time.sleep(1.2)
        assert len(receiver.bodies) == 3
        assert sb2.store.pending_callbacks() == []  # given up: nothing left for a next start
    finally:
        receiver.close()
