"""The same server over streamable HTTP (``--http``), driven by the SDK's HTTP client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp_support import McpEnv, Server, call, one_line, text_of

import mcp

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def http_server(mcp_env: McpEnv) -> Iterator[Server]:
    with mcp_env.http(mcp_env.home("http")) as server:
        yield server


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (from /proc/net/tcp*)."""
    found = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, _, hexport = local.partition(":")
            if state == "0A" and int(hexport, 16) == port:
                found.add(addr)
    return found


def test_http_listens_on_loopback_only(http_server: Server) -> None:
    assert http_server.url is not None
    port = int(http_server.url.rsplit(":", 1)[1].split("/")[0])
    addresses = listening_addresses(port)
    if not addresses:
        pytest.skip("/proc/net/tcp is not readable here")
    assert addresses == {"0100007F"}, addresses  # 127.0.0.1


async def test_every_tool_resources_and_progress_over_http(
    http_server: Server, env: McpEnv, tmp_path: Path
) -> None:
    assert http_server.url is not None
    async with mcp.Client(http_server.url) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert "make_video" in tools and "wait_lipsync" in tools
        voices = await call(env, client, "list_voices", {"lang": "zh"})
        voice = voices.structured_content["voices"][0]["id"]

        seen: list[tuple[float, str | None]] = []

        async def progress(p: float, total: float | None, message: str | None) -> None:
            seen.append((p, message))

        out = tmp_path / "http.mp4"
        made = await call(env, client, "make_video", {
            "video": str(env.video), "text": "你好", "voice_id": voice, "output": str(out)},
            progress_callback=progress)
        assert not made.is_error, text_of(made)
        assert out.stat().st_size == made.structured_content["bytes"]
        assert seen and seen[-1][0] == 100, seen

        created = await call(env, client, "create_lipsync", {
            "video": str(env.video), "text": "再见", "voice_id": voice})
        task_id = created.structured_content["task_id"]
        waits: list[float] = []

        async def on_wait(p: float, total: float | None, message: str | None) -> None:
            waits.append(p)

        w = await call(env, client, "wait_lipsync", {"task_id": task_id},
                       progress_callback=on_wait)
        assert w.structured_content["finished"] is True
        assert waits, "no progress notification during wait_lipsync over HTTP"

        got = await call(env, client, "get_lipsync", {"task_id": task_id})
        assert got.structured_content["state"] == "succeeded"
        page = await call(env, client, "list_lipsyncs", {"page_size": 5})
        assert task_id in {t["task_id"] for t in page.structured_content["tasks"]}
        saved = await call(env, client, "download_result", {
            "task_id": task_id, "output": str(tmp_path)})
        assert Path(saved.structured_content["path"]).stat().st_size > 0
        up = await call(env, client, "upload_media", {"path": str(env.audio)})
        assert up.structured_content["service"] == "lip_sync_audio"

        detail = env.seen(await client.read_resource(f"chanjing://tasks/{task_id}"))
        assert json.loads(detail.contents[0].text)["state"] == "succeeded"
        catalogue = env.seen(await client.read_resource("chanjing://voices"))
        assert voice in catalogue.contents[0].text

        msg = one_line(await call(env, client, "create_lipsync", {
            "video": str(env.video), "text": "你好", "voice_id": voice, "volume": 101}))
        assert "volume" in msg
