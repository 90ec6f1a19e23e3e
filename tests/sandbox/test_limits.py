"""Rate limits per app_id answering 40001; scaled, per bucket, or switched off."""

from __future__ import annotations

import time
from pathlib import Path

from chanjing_avatar import _wire
from chanjing_avatar._wire import RateLimit

from .api import Api, tts_body
from .conftest import VOICE, Factory
from .stub import FakeRenderer


def _burst(client: Api, n: int) -> list[int]:
    return [client.get(_wire.PATH_LIPSYNC_DETAIL, id="0" * 32)["code"] for _ in range(n)]


def test_documented_query_limit_is_10_per_second(
    sandbox_factory: Factory, stub: FakeRenderer
) -> None:
    sb = sandbox_factory(renderer=stub, rate_limit_scale=1.0)
    client = Api(sb)
    client.login()
    codes = _burst(client, 12)
    # 40000: the id is unknown, but the request counted.
    assert codes[:10] == [40000] * 10 and codes[10:] == [40001, 40001]
    body = client.post(_wire.PATH_LIPSYNC_LIST, {})  # same bucket
    assert body["code"] == 40001 and "超出RPM/QPS限制" in body["msg"]
    # Another app has its own bucket.
    app_id, secret = sb.admin.add_app()
    other = Api(sb, app_id, secret)
    other.login()
    assert _burst(other, 1) == [40000]
    assert sb.admin.count("lipsync_detail", 40001) == 2
    assert sb.admin.count("lipsync_list", 40001) == 1
    client.close()
    other.close()


def test_create_and_file_limits(
    sandbox_factory: Factory, stub: FakeRenderer, tiny_video: Path
) -> None:
    sb = sandbox_factory(
        renderer=stub,
        rate_limit_scale=1.0,
        rate_limits={"file_management": RateLimit("file_management", 4, 60)},
    )
    client = Api(sb)
    client.login()
    video = client.ready_file("lip_sync_video", tiny_video)  # 1 + n polls
    codes = [
        client.get(_wire.PATH_CREATE_UPLOAD_URL, service="lip_sync_video", name="a.mp4")["code"]
        for _ in range(4)
    ]
    assert codes[-1] == 40001
    created = [
        client.post(_wire.PATH_LIPSYNC_CREATE, tts_body(video, VOICE))["code"] for _ in range(11)
    ]
    assert created == [0] * 10 + [40001]
    assert sb.admin.count("lipsync_create", 0) == 10
    client.close()


def test_window_slides_with_time_scale(sandbox_factory: Factory, stub: FakeRenderer) -> None:
    # 10/s documented; with time_scale 2 the window is 0.5 s.
    sb = sandbox_factory(renderer=stub, rate_limit_scale=1.0, time_scale=2.0)
    client = Api(sb)
    client.login()
    assert _burst(client, 11)[-1] == 40001
    time.sleep(0.6)
    assert _burst(client, 10) == [40000] * 10
    client.close()


def test_limits_switch_off(sandbox_factory: Factory, stub: FakeRenderer) -> None:
    for overrides in (
        {"rate_limits_enabled": False},
        {"rate_limit_scale": 1.0, "rate_limits": {"lipsync_query": None}},
    ):
        sb = sandbox_factory(renderer=stub, data_dir=None, **overrides)
        client = Api(sb)
        client.login()
        assert 40001 not in _burst(client, 30)
        client.close()
        sb.stop()
