"""Bad or missing credentials and an unreachable API: each call is a one-line tool error that
says what to fix, and nothing secret shows."""

from __future__ import annotations

import pytest
from mcp_support import McpEnv, call, free_port, one_line

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_wrong_secret_key(env: McpEnv) -> None:
    home = env.home("bad-key")
    wrong = "W" * 32
    env.app_secrets.add(wrong)
    async with env.stdio(home, env=env.environ(home, CHANJING_SECRET_KEY=wrong)) as (client, _):
        msg = one_line(await call(env, client, "list_voices", {}))
        assert "authentication failed" in msg and "secret key" in msg, msg
        msg = one_line(await call(env, client, "create_lipsync", {
            "video": str(env.video), "text": "你好", "voice_id": "x" * 32}))
        assert "authentication failed" in msg, msg


async def test_missing_credentials_then_unreachable_api(env: McpEnv) -> None:
    home = env.home("no-key")
    environ = env.environ(home, CHANJING_APP_ID=None, CHANJING_SECRET_KEY=None)
    async with env.stdio(home, env=environ) as (client, _):
        msg = one_line(await call(env, client, "get_lipsync", {"task_id": "a" * 32}))
        assert "app_id" in msg and "auth set" in msg, msg

    home = env.home("unreachable")
    dead = f"http://127.0.0.1:{free_port()}"
    environ = env.environ(home, CHANJING_OPENAPI_BASE_URL=dead)
    async with env.stdio(home, env=environ) as (client, _):
        msg = one_line(await call(env, client, "list_lipsyncs", {}))
        assert dead in msg and "network" in msg, msg
