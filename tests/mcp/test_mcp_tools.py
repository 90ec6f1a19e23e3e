"""Every tool and resource over stdio, against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcp_support import McpEnv, call, one_line, text_of

pytestmark = pytest.mark.anyio

VOICE = None


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_smoke(env: McpEnv, tmp_path: Path) -> None:
    home = env.home("smoke")
    async with env.stdio(home) as (client, server):
        tools = await client.list_tools()
        names = {t.name for t in tools.tools}
        assert "make_video" in names
        r = await call(env, client, "list_voices", {"lang": "zh"})
        print(text_of(r), r.structured_content)
        voice = r.structured_content["voices"][0]["id"]
        got = []

        async def prog(p, t, m):
            got.append((p, t, m))

        r = await call(env, client, "make_video", {"video": str(env.video), "text": "你好",
                                                   "voice_id": voice}, progress_callback=prog)
        print(text_of(r), r.structured_content, got)
        r = await call(env, client, "create_lipsync", {"video": str(env.video), "text": "",
                                                   "voice_id": voice})
        print(one_line(r))
    print(server.stderr())
