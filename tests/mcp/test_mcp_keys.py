"""Paid calls are never repeated: idempotency keys, a lost answer, a server killed mid-create.

Each test uses its own sandbox account, so the task list reconciliation reads holds only what
the test made."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sqlite3
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp_support import McpEnv, call, one_line, text_of

import mcp

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


async def first_voice(env: McpEnv, client: mcp.Client) -> str:
    r = await call(env, client, "list_voices", {"page_size": 1})
    return str(r.structured_content["voices"][0]["id"])


def journal_file(home: Path) -> Path:
    found = list((home / ".local" / "state" / "chanjing-avatar" / "mcp").glob("keys-*.sqlite"))
    assert len(found) == 1, found
    return found[0]


def journal_row(home: Path, key: str) -> dict[str, Any]:
    db = sqlite3.connect(f"file:{journal_file(home)}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        row = db.execute("SELECT * FROM rows WHERE id = ?", (key,)).fetchone()
        return dict(row) if row else {}
    finally:
        db.close()


@pytest.fixture(scope="module")
async def keyed(mcp_env: McpEnv) -> AsyncIterator[tuple[mcp.Client, str, Path]]:
    """One server (settle 1 s) on an account of its own, for the tests that share it."""
    home = mcp_env.home("keys")
    app_id, environ = mcp_env.account(home)
    async with mcp_env.stdio(home, "--settle", "1", env=environ) as (client, _):
        yield client, app_id, home


async def test_same_key_twice_makes_one_task_and_other_parameters_are_refused(
    keyed: tuple[mcp.Client, str, Path], env: McpEnv
) -> None:
    client, app_id, home = keyed
    before = env.tasks_of(app_id)
    vid = await first_voice(env, client)
    args = {"video": str(env.video), "text": "你好", "voice_id": vid,
            "idempotency_key": "order-42"}
    first = await call(env, client, "create_lipsync", args)
    assert not first.is_error, text_of(first)
    task_id = first.structured_content["task_id"]
    again = await call(env, client, "create_lipsync", args)
    assert not again.is_error, text_of(again)
    assert again.structured_content["task_id"] == task_id
    assert first.structured_content["replayed"] is False
    assert again.structured_content["replayed"] is True
    assert env.tasks_of(app_id) == [task_id, *before]

    # The same video under another name is the same request.
    copy = home / "copy of face.mp4"
    shutil.copyfile(env.video, copy)
    moved = await call(env, client, "create_lipsync", {**args, "video": str(copy)})
    assert moved.structured_content["task_id"] == task_id, text_of(moved)

    other = await call(env, client, "create_lipsync", {**args, "text": "再见"})
    msg = one_line(other)
    assert "order-42" in msg and "other parameters" in msg, msg
    other_video = await call(env, client, "create_lipsync", {**args, "audio": str(env.audio),
                                                             "text": None, "voice_id": None})
    assert "other parameters" in one_line(other_video)
    assert env.tasks_of(app_id) == [task_id, *before]

    # No key: one is made up and returned, and each call is a new task.
    fresh = await call(env, client, "create_lipsync", {k: v for k, v in args.items()
                                                       if k != "idempotency_key"})
    key = fresh.structured_content["idempotency_key"]
    assert key and key != "order-42"
    assert len(env.tasks_of(app_id)) == len(before) + 2

    # The journal: private, and no secret in it.
    path = journal_file(home)
    for each in path.parent.iterdir():  # the journal, its WAL and lock files
        assert stat.S_IMODE(each.stat().st_mode) == 0o600, each
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    raw = b"".join(p.read_bytes() for p in path.parent.iterdir() if p.is_file())
    for secret in env.secrets:
        assert secret.encode() not in raw


async def test_concurrent_calls_with_one_key_make_one_task(
    keyed: tuple[mcp.Client, str, Path], env: McpEnv
) -> None:
    client, app_id, _ = keyed
    before = len(env.tasks_of(app_id))
    vid = await first_voice(env, client)
    args = {"video": str(env.video), "text": "同时", "voice_id": vid,
            "idempotency_key": "together-1"}
    results = await asyncio.gather(*(call(env, client, "create_lipsync", args)
                                     for _ in range(4)))
    ids = {r.structured_content["task_id"] for r in results}
    assert len(ids) == 1, [text_of(r) for r in results]
    assert sorted(r.structured_content["replayed"] for r in results) == [False, True, True, True]
    assert len(env.tasks_of(app_id)) == before + 1


async def test_a_refused_create_leaves_its_key_free_to_correct(
    keyed: tuple[mcp.Client, str, Path], env: McpEnv
) -> None:
    client, app_id, _ = keyed
    before = len(env.tasks_of(app_id))
    args = {"video": str(env.video), "text": "你好", "voice_id": "0" * 32,
            "idempotency_key": "fix-1"}
    assert "unknown voice" in one_line(await call(env, client, "create_lipsync", args))
    fixed = await call(env, client, "create_lipsync", {
        **args, "voice_id": await first_voice(env, client)})
    assert not fixed.is_error, text_of(fixed)
    assert fixed.structured_content["replayed"] is False
    assert len(env.tasks_of(app_id)) == before + 1


async def test_a_dropped_answer_still_makes_one_task(
    keyed: tuple[mcp.Client, str, Path], env: McpEnv
) -> None:
    client, app_id, home = keyed
    vid = await first_voice(env, client)
    before = len(env.tasks_of(app_id))
    env.sb.admin.add_fault("lipsync_create", "drop_after", times=1)
    args = {"video": str(env.video), "text": "你好", "voice_id": vid,
            "idempotency_key": "drop-1"}
    first = await call(env, client, "create_lipsync", args)
    assert not first.is_error, text_of(first)
    assert env.sb.admin.stats()["faults"]["lipsync_create"], "the fault did not fire"
    retry = await call(env, client, "create_lipsync", args)
    assert retry.structured_content["task_id"] == first.structured_content["task_id"]
    tasks = env.tasks_of(app_id)
    assert len(tasks) == before + 1 and first.structured_content["task_id"] in tasks
    row = journal_row(home, "drop-1")
    assert row["task_id"] == first.structured_content["task_id"]
    # It was adopted from the task list, not answered.
    db = sqlite3.connect(f"file:{journal_file(home)}?mode=ro", uri=True)
    try:
        kinds = [k for (k,) in db.execute(
            "SELECT kind FROM events WHERE row_id = 'drop-1' ORDER BY seq")]
    finally:
        db.close()
    assert "outcome_unknown" in kinds and "reconcile" in kinds, kinds


async def test_an_unsettled_create_blocks_every_create_and_says_when(env: McpEnv) -> None:
    home = env.home("keys-unsettled")
    app_id, environ = env.account(home)
    async with env.stdio(home, "--settle", "600", env=environ) as (client, _):
        vid = await first_voice(env, client)
        env.sb.admin.add_fault("lipsync_create", "drop_after", times=1)
        args = {"video": str(env.video), "text": "你好", "voice_id": vid,
                "idempotency_key": "late-1"}
        msg = one_line(await call(env, client, "create_lipsync", args))
        assert "late-1" in msg and "call again with the same idempotency_key" in msg.lower(), msg
        assert len(env.tasks_of(app_id)) == 1  # it was made; its answer was lost
        # Nothing else is created until that outcome is known.
        other = one_line(await call(env, client, "create_lipsync", {
            **args, "idempotency_key": "next-1"}))
        assert "late-1" in other, other
        assert len(env.tasks_of(app_id)) == 1
        assert journal_row(home, "late-1")["state"] == "unknown"

        # A journal deleted under the server: no create without its record.
        journal_file(home).unlink()
        lost = one_line(await call(env, client, "create_lipsync", {
            **args, "idempotency_key": "after-loss"}))
        assert "journal" in lost and "deleted" in lost, lost
        assert len(env.tasks_of(app_id)) == 1


async def _call_until_killed(url: str, args: dict[str, Any]) -> None:
    async with mcp.Client(url) as client:
        await client.call_tool("create_lipsync", args)


async def test_server_killed_between_send_and_answer_then_same_key_adopts(env: McpEnv) -> None:
    home = env.home("keys-kill")
    app_id, environ = env.account(home)
    with env.http(home, "--settle", "1", env=environ) as server:
        assert server.url is not None
        async with mcp.Client(server.url) as client:
            vid = await first_voice(env, client)
            warm = await call(env, client, "create_lipsync", {
                "video": str(env.video), "text": "预热", "voice_id": vid})
            assert not warm.is_error, text_of(warm)
        # The server handles the create, then holds its answer: kill the MCP server meanwhile.
        env.sb.admin.add_fault("lipsync_create", "delay_after:20", times=1)
        args = {"video": str(env.video), "text": "你好", "voice_id": vid,
                "idempotency_key": "kill-1"}
        pending = asyncio.ensure_future(_call_until_killed(server.url, args))
        for _ in range(300):
            if len(env.tasks_of(app_id)) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(env.tasks_of(app_id)) == 2, "the create never reached the sandbox"
        row = journal_row(home, "kill-1")
        assert row["state"] == "intended" and row["sent_at"] is not None, row
        assert server.proc is not None
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        pending.cancel()
        with contextlib.suppress(BaseException):
            await pending
    made = next(t for t in env.tasks_of(app_id) if t != warm.structured_content["task_id"])

    with env.http(home, "--settle", "1", env=environ) as server:
        assert server.url is not None
        async with mcp.Client(server.url) as client:
            again = await call(env, client, "create_lipsync", args)
            assert not again.is_error, text_of(again)
            assert again.structured_content["task_id"] == made
            assert again.structured_content["replayed"] is True
    assert len(env.tasks_of(app_id)) == 2
    assert journal_row(home, "kill-1")["state"] == "created"

