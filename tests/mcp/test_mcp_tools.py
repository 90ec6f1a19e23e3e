"""Every tool and resource over stdio, with the SDK's client, against the sandbox.

One server serves the whole module (starting one costs seconds); every result and the server's
stderr are checked for tracebacks, secrets and signed URLs (``McpEnv.check``)."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp_support import McpEnv, Server, call, one_line, text_of

import mcp

pytestmark = pytest.mark.anyio

TOOLS = {"list_voices", "upload_media", "create_lipsync", "get_lipsync", "list_lipsyncs",
         "wait_lipsync", "download_result", "make_video"}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def served(mcp_env: McpEnv) -> AsyncIterator[tuple[mcp.Client, Server]]:
    home = mcp_env.home("tools")
    async with mcp_env.stdio(home) as (client, server):
        yield client, server


@pytest.fixture
def client(served: tuple[mcp.Client, Server], env: McpEnv) -> mcp.Client:
    return served[0]


@pytest.fixture(scope="module")
async def voice(served: tuple[mcp.Client, Server], mcp_env: McpEnv) -> str:
    r = await call(mcp_env, served[0], "list_voices", {"lang": "zh", "page_size": 1})
    return str(r.structured_content["voices"][0]["id"])


@pytest.fixture(scope="module")
async def done_task(served: tuple[mcp.Client, Server], mcp_env: McpEnv, voice: str) -> str:
    client = served[0]
    r = await call(mcp_env, client, "create_lipsync", {
        "video": str(mcp_env.video), "text": "你好", "voice_id": voice})
    assert not r.is_error, text_of(r)
    task_id = str(r.structured_content["task_id"])
    r = await call(mcp_env, client, "wait_lipsync", {"task_id": task_id})
    assert r.structured_content["finished"] is True, text_of(r)
    return task_id


class Progress:
    def __init__(self) -> None:
        self.seen: list[tuple[float, float | None, str | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append((progress, total, message))


# -- the catalogue --------------------------------------------------------------------------------


async def test_every_tool_is_typed_described_and_annotated(client: mcp.Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and len(tool.description) > 30, tool.name
        assert tool.input_schema["type"] == "object", tool.name
        assert tool.output_schema and tool.output_schema["type"] == "object", tool.name
        assert tool.annotations is not None and tool.annotations.open_world_hint is True
    read_only = {n for n, t in tools.items() if t.annotations and t.annotations.read_only_hint}
    assert read_only == {"list_voices", "get_lipsync", "list_lipsyncs", "wait_lipsync"}
    # Paid or writing tools are not read-only; only download_result can replace a file.
    destructive = {n for n, t in tools.items() if t.annotations
                   and t.annotations.destructive_hint}
    assert destructive == {"download_result"}
    create = tools["create_lipsync"].input_schema["properties"]
    assert create["speed"]["minimum"] == 0.5 and create["speed"]["maximum"] == 2
    assert create["volume"]["minimum"] == 1 and create["volume"]["maximum"] == 100
    assert {"idempotency_key", "callback", "model", "backway", "drive_mode", "screen_width",
            "screen_height", "pitch", "audio"} <= set(create)
    assert tools["wait_lipsync"].input_schema["properties"]["timeout"]["maximum"] == 120


async def test_list_voices_filters_and_pages(client: mcp.Client, env: McpEnv) -> None:
    every = await call(env, client, "list_voices", {"page_size": 100})
    voices = every.structured_content["voices"]
    assert voices and every.structured_content["total"] == len(voices)
    zh = await call(env, client, "list_voices", {"lang": "zh", "gender": "female"})
    assert zh.structured_content["voices"]
    assert all(v["lang"].startswith("zh") and v["gender"] == "female"
               for v in zh.structured_content["voices"])
    first = await call(env, client, "list_voices", {"page": 1, "page_size": 1})
    second = await call(env, client, "list_voices", {"page": 2, "page_size": 1})
    assert first.structured_content["has_more"] is True
    assert first.structured_content["voices"] != second.structured_content["voices"]
    named = await call(env, client, "list_voices", {"name": voices[0]["name"]})
    assert voices[0]["id"] in {v["id"] for v in named.structured_content["voices"]}


# -- uploads ------------------------------------------------------------------------------------


async def test_upload_media_returns_a_ready_file_id(client: mcp.Client, env: McpEnv) -> None:
    r = await call(env, client, "upload_media", {"path": str(env.video)})
    assert not r.is_error, text_of(r)
    assert r.structured_content["service"] == "lip_sync_video"
    assert r.structured_content["file_id"] in text_of(r)
    a = await call(env, client, "upload_media", {"path": str(env.audio),
                                                 "service": "lip_sync_audio"})
    assert a.structured_content["service"] == "lip_sync_audio"


async def test_upload_refused_by_the_content_check_is_a_clear_error(
    client: mcp.Client, env: McpEnv
) -> None:
    env.sb.admin.add_fault("file_detail", "file_98", times=1)
    msg = one_line(await call(env, client, "upload_media", {"path": str(env.video)}))
    assert "98" in msg and "use another" in msg, msg


async def test_upload_bad_inputs(client: mcp.Client, env: McpEnv, tmp_path: Path) -> None:
    missing = one_line(await call(env, client, "upload_media",
                                  {"path": str(tmp_path / "nope.mp4")}))
    assert "not found" in missing and "nope.mp4" in missing
    wrong = one_line(await call(env, client, "upload_media",
                                {"path": str(env.audio), "service": "lip_sync_video"}))
    assert "lip_sync_video" in wrong and ".mp4" in wrong, wrong
    unknown = one_line(await call(env, client, "upload_media",
                                  {"path": str(env.video), "service": "avatar"}))
    assert "service" in unknown, unknown
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert "empty" in one_line(await call(env, client, "upload_media", {"path": str(empty)}))


# -- create, get, list, wait, download ------------------------------------------------------------


async def test_create_get_list_wait_download(
    client: mcp.Client, env: McpEnv, voice: str, tmp_path: Path
) -> None:
    up = await call(env, client, "upload_media", {"path": str(env.video)})
    audio = await call(env, client, "upload_media", {"path": str(env.audio)})
    r = await call(env, client, "create_lipsync", {
        "video": up.structured_content["file_id"],
        "audio": audio.structured_content["file_id"],
        "screen_width": 64, "screen_height": 64, "model": 1, "backway": 2,
        "drive_mode": "random", "volume": 80,
    })
    assert not r.is_error, text_of(r)
    task_id = r.structured_content["task_id"]
    got = await call(env, client, "get_lipsync", {"task_id": task_id})
    assert got.structured_content["task_id"] == task_id
    assert got.structured_content["state"] in ("queued", "generating", "succeeded")
    listed = await call(env, client, "list_lipsyncs", {"page": 1, "page_size": 5})
    assert task_id in {t["task_id"] for t in listed.structured_content["tasks"]}
    assert listed.structured_content["total"] >= 1

    progress = Progress()
    waited = await call(env, client, "wait_lipsync", {"task_id": task_id},
                        progress_callback=progress)
    assert waited.structured_content["finished"] is True, text_of(waited)
    assert waited.structured_content["task"]["state"] == "succeeded"
    assert waited.structured_content["task"]["has_video"] is True
    assert progress.seen, "no progress notification during wait_lipsync"
    values = [p for p, _, _ in progress.seen]
    assert all(a < b for a, b in itertools.pairwise(values)), progress.seen
    assert all(total == 100 for _, total, _ in progress.seen)

    out = tmp_path / "out.mp4"
    d = await call(env, client, "download_result", {"task_id": task_id, "output": str(out),
                                                    "preview": True})
    assert not d.is_error, text_of(d)
    assert out.stat().st_size == d.structured_content["bytes"] > 0
    assert d.structured_content["preview_path"]
    again = one_line(await call(env, client, "download_result", {"task_id": task_id,
                                                                 "output": str(out)}))
    assert "exists" in again and "overwrite" in again, again
    forced = await call(env, client, "download_result", {"task_id": task_id,
                                                         "output": str(out), "overwrite": True})
    assert not forced.is_error, text_of(forced)


async def test_wait_says_plainly_when_the_task_still_runs(
    client: mcp.Client, env: McpEnv, voice: str
) -> None:
    env.sb.admin.set_pacing(task_min_duration_s=6.0)
    try:
        r = await call(env, client, "create_lipsync", {
            "video": str(env.video), "text": "慢一点", "voice_id": voice})
        task_id = r.structured_content["task_id"]
        progress = Progress()
        w = await call(env, client, "wait_lipsync", {"task_id": task_id, "timeout": 1},
                       progress_callback=progress)
        assert not w.is_error
        assert w.structured_content["finished"] is False
        assert "still running" in text_of(w) and "wait_lipsync again" in text_of(w)
        assert progress.seen
        w = await call(env, client, "wait_lipsync", {"task_id": task_id, "timeout": 60})
        assert w.structured_content["finished"] is True
    finally:
        env.sb.admin.set_pacing(task_min_duration_s=1.5)


async def test_make_video_reports_progress_and_saves(
    client: mcp.Client, env: McpEnv, voice: str, tmp_path: Path
) -> None:
    progress = Progress()
    out = tmp_path / "made.mp4"
    r = await call(env, client, "make_video", {
        "video": str(env.video), "text": "你好，世界", "voice_id": voice, "output": str(out),
        "speed": 1.2, "pitch": 0.9, "idempotency_key": "make-1"}, progress_callback=progress)
    assert not r.is_error, text_of(r)
    assert r.structured_content["finished"] is True
    assert out.stat().st_size == r.structured_content["bytes"] > 0
    values = [p for p, _, _ in progress.seen]
    assert all(a < b for a, b in itertools.pairwise(values)), progress.seen
    assert values[-1] == 100, progress.seen
    assert any("generating" in (m or "") or "succeeded" in (m or "") for _, _, m in progress.seen)
    tasks = len(env.sb.admin.tasks())
    again = await call(env, client, "make_video", {
        "video": str(env.video), "text": "你好，世界", "voice_id": voice, "output": str(out),
        "speed": 1.2, "pitch": 0.9, "idempotency_key": "make-1"})
    assert not again.is_error, text_of(again)
    assert again.structured_content["replayed"] is True
    assert again.structured_content["path"] == r.structured_content["path"]
    assert len(env.sb.admin.tasks()) == tasks
    exists = one_line(await call(env, client, "make_video", {
        "video": str(env.video), "text": "你好", "voice_id": voice, "output": str(out)}))
    assert "exists" in exists


async def test_failed_task_is_reported_not_raised(
    client: mcp.Client, env: McpEnv, voice: str
) -> None:
    env.sb.admin.add_fault("lipsync_create", "task_failure", times=1)
    r = await call(env, client, "create_lipsync", {
        "video": str(env.video), "text": "你好", "voice_id": voice})
    w = await call(env, client, "wait_lipsync", {"task_id": r.structured_content["task_id"]})
    assert not w.is_error
    assert w.structured_content["task"]["state"] == "failed"
    assert "余额不足" in text_of(w)


# -- resources ------------------------------------------------------------------------------------


async def test_resources(client: mcp.Client, env: McpEnv, done_task: str) -> None:
    listed = {str(r.uri) for r in (await client.list_resources()).resources}
    assert "chanjing://voices" in listed
    templates = (await client.list_resource_templates()).resource_templates
    assert "chanjing://tasks/{task_id}" in {t.uri_template for t in templates}
    voices = env.seen(await client.read_resource("chanjing://voices"))
    catalogue = json.loads(voices.contents[0].text)
    assert catalogue and {"id", "name", "lang", "gender"} <= set(catalogue[0])
    task = env.seen(await client.read_resource(f"chanjing://tasks/{done_task}"))
    detail = json.loads(task.contents[0].text)
    assert detail["task_id"] == done_task and detail["state"] == "succeeded"


async def test_unknown_task_resource_is_an_error(client: mcp.Client, env: McpEnv) -> None:
    with pytest.raises(mcp.MCPError) as info:
        await client.read_resource("chanjing://tasks/" + "f" * 32)
    env.check(str(info.value))
    assert "Traceback" not in str(info.value)


# -- bad inputs ---------------------------------------------------------------------------------

BAD_CREATES: list[tuple[dict[str, Any], str]] = [
    ({"text": ""}, "text: must not be empty; give what the person should say"),
    ({"text": "   "}, "text: must not be empty"),
    ({"voice_id": "  "}, "voice_id: required: a voice id; take one from list_voices"),
    ({"text": None, "voice_id": None, "audio": "speech.wav", "speed": 1.5},
     "speed only applies to text + voice_id"),
    ({"voice_id": "0" * 32}, "unknown voice '00000000000000000000000000000000'; see list_voices"),
    ({"speed": 3}, "speed"),
    ({"pitch": 0.1}, "pitch"),
    ({"volume": 0}, "volume"),
    ({"screen_width": 10}, "screen_width"),
    ({"model": 2}, "model"),
    ({"backway": 3}, "backway"),
    ({"drive_mode": "fast"}, "drive_mode"),
    ({"text": None}, "give text and voice_id"),
    ({"audio": "speech.wav"}, "not both"),
    ({"video": "/nowhere/face.mp4"}, "not found"),
    ({"video": "face.gif"}, "extension"),
    ({"idempotency_key": "no spaces"}, "idempotency_key"),
    ({"callback": "ftp://x"}, "callback"),
    ({"text": "字" * 4000}, "4000"),
]


@pytest.mark.parametrize("change,expected", BAD_CREATES,
                         ids=[f"{i}-{e}" for i, (_, e) in enumerate(BAD_CREATES)])
async def test_bad_create_inputs_are_one_line_errors(
    client: mcp.Client, env: McpEnv, voice: str, change: dict[str, Any], expected: str,
    tmp_path: Path,
) -> None:
    before = len(env.sb.admin.tasks())
    args = {"video": str(env.video), "text": "你好", "voice_id": voice, **change}
    args = {k: v for k, v in args.items() if v is not None}
    if change.get("video") == "face.gif":
        (tmp_path / "face.gif").write_bytes(b"GIF89a")
        args["video"] = str(tmp_path / "face.gif")
    msg = one_line(await call(env, client, "create_lipsync", args))
    assert expected in msg, msg
    assert len(env.sb.admin.tasks()) == before  # nothing was paid for


async def test_unknown_tool_and_task(client: mcp.Client, env: McpEnv) -> None:
    assert "Unknown tool" in one_line(await call(env, client, "delete_everything", {}))
    msg = one_line(await call(env, client, "get_lipsync", {"task_id": "f" * 32}))
    assert msg


async def test_server_stderr_is_clean(served: tuple[mcp.Client, Server], env: McpEnv) -> None:
    env.check(served[1].stderr())
    for text in env.outputs:
        env.check(text)
