"""The callback receiver: forged notices change nothing; a real one ends a wait early."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from batch.support import VOICE, client_kwargs, make_video, sandbox_config, write_manifest
from chanjing_avatar import AsyncClient
from chanjing_avatar._models import Task
from chanjing_avatar.batch.journal import Journal, RowState
from chanjing_avatar.batch.manifest import load_manifest
from chanjing_avatar.batch.runner import BatchOptions
from chanjing_avatar.callback import (
    CallbackReceiver,
    ReceiverServer,
    extract_task_id,
    wait_with_callbacks,
)
from chanjing_avatar.sandbox import Sandbox

pytestmark = pytest.mark.timeout(120)


def test_extract_task_id_shapes() -> None:
    assert extract_task_id({"code": 0, "msg": "success", "data": {"id": "abc", "status": 20}}) \
        == "abc"
    assert extract_task_id({"id": "abc", "status": 20}) == "abc"
    assert extract_task_id({"code": 0, "data": "abc"}) is None
    assert extract_task_id([1]) is None
    assert extract_task_id({"id": 5}) is None
    assert extract_task_id({"id": "x" * 500}) is None


def _receiver(statuses: dict[str, int]) -> tuple[CallbackReceiver, list[str], list[Task]]:
    fetched: list[str] = []
    acted: list[Task] = []

    async def confirm(task_id: str) -> Task:
        fetched.append(task_id)
        return Task(id=task_id, status=statuses[task_id])

    return CallbackReceiver(confirm, on_task=acted.append, max_body=1024), fetched, acted


async def _post(app: Any, body: bytes | str, method: str = "POST") -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cb") as http:
        content = body.encode() if isinstance(body, str) else body
        return await http.request(method, "/", content=content,
                                  headers={"content-type": "application/json"})


def test_forged_callbacks_change_nothing() -> None:
    async def main() -> None:
        rx, fetched, acted = _receiver({"known": 10})
        rx.watch("known")
        # Unknown id: acknowledged, nothing fetched.
        r = await _post(rx, json.dumps({"code": 0, "data": {"id": "stranger", "status": 20}}))
        assert r.status_code == 200
        # Bad JSON, no id, oversized, wrong method: refused.
        assert (await _post(rx, "{not json")).status_code == 400
        assert (await _post(rx, json.dumps({"data": {"status": 20}}))).status_code == 400
        big = json.dumps({"id": "known", "pad": "x" * 5000})
        assert (await _post(rx, big)).status_code == 413
        assert (await _post(rx, "", method="GET")).status_code == 405
        await rx.drain()
        assert fetched == [] and acted == []
        # Wrong status for a known id: the detail is fetched, and only the fetched one is used.
        r = await _post(rx, json.dumps({"id": "known", "status": 20, "video_url": "http://evil"}))
        assert r.status_code == 200
        await rx.drain()
        assert fetched == ["known"]
        assert [int(t.status) for t in acted] == [10] and acted[0].video_url is None
        assert rx.stats.ignored == 1 and rx.stats.rejected == 4

    asyncio.run(main())


def test_answers_before_the_confirmation_ends() -> None:
    async def main() -> None:
        gate = asyncio.Event()

        async def slow_confirm(task_id: str) -> Task:
            await gate.wait()
            return Task(id=task_id, status=20)

        rx = CallbackReceiver(slow_confirm, watch_all=True)
        started = time.monotonic()
        r = await _post(rx, json.dumps({"id": "t1"}))
        assert r.status_code == 200 and time.monotonic() - started < 1.0
        gate.set()
        await rx.drain()
        assert rx.stats.confirmed == 1

    asyncio.run(main())


def test_real_callback_ends_wait_sooner_than_polling(tmp_path: Path) -> None:
    render_s = 1.5
    safety_poll = 30.0
    with Sandbox(sandbox_config(tmp_path / "sb", render_s=render_s)) as sb:
        video = make_video(tmp_path / "v.mp4")

        async def main() -> tuple[float, Task, int]:
            async with AsyncClient(**client_kwargs(sb, tmp_path)) as c:
                rx = CallbackReceiver(c.lipsync.get)
                async with ReceiverServer(rx) as srv:
                    assert srv.host == "127.0.0.1"
                    detail = await c.files.upload(video, "lip_sync_video")
                    task_id = await c.lipsync.create(
                        video_file_id=detail.id, text="hello", voice_id=VOICE, callback=srv.url
                    )
                    started = time.monotonic()
                    waiting = asyncio.ensure_future(wait_with_callbacks(
                        c, rx, [task_id], safety_poll=safety_poll, timeout=60))
                    await asyncio.sleep(0.3)
                    # A forged "finished" notice while it still renders ends nothing.
                    async with httpx.AsyncClient() as http:
                        await http.post(srv.url, json={"code": 0, "data": {
                            "id": task_id, "status": 20, "progress": 100}})
                    await asyncio.sleep(0.3)
                    assert not waiting.done()
                    result = await waiting
                    return time.monotonic() - started, result[task_id], rx.stats.confirmed

        elapsed, task, confirmed = asyncio.run(main())
        assert task.succeeded
        assert elapsed >= render_s * 0.8  # not ended by the forged notice
        assert elapsed < safety_poll / 3  # ended by the real callback, long before a poll
        assert confirmed >= 2  # the forged one and the real one were both checked
        assert sb.admin.count("callback") >= 1


def test_batch_with_callbacks_and_a_slow_safety_poll(tmp_path: Path) -> None:
    with Sandbox(sandbox_config(tmp_path / "sb", render_s=0.5)) as sb:
        manifest = write_manifest(tmp_path / "in", 6, videos=1)
        outdir = tmp_path / "out"

        async def main() -> float:
            async with AsyncClient(**client_kwargs(sb, tmp_path)) as c:
                opts = BatchOptions(outdir=outdir, safety_poll=60.0, settle=2.0,
                                    clock_offset=(-1.0, 1.0), guard=3.0)
                from chanjing_avatar.batch.runner import BatchRunner

                runner = BatchRunner(c, load_manifest(manifest), opts)
                rx = CallbackReceiver(runner.on_callback)
                opts.receiver = rx
                async with ReceiverServer(rx) as srv:
                    opts.callback_url = srv.url
                    started = time.monotonic()
                    await runner.run()
                    return time.monotonic() - started

        elapsed = asyncio.run(main())
        j = Journal(outdir / "batch-journal.sqlite")
        assert all(r.state == RowState.DONE for r in j.rows())
        assert elapsed < 20  # a 60 s safety poll alone would take over a minute
        # Few detail requests: the first look after create, then one per callback.
        assert sb.admin.count("lipsync_detail") <= 6 * 3


def test_busy_address_is_a_listen_error_not_an_exit() -> None:
    import socket

    from chanjing_avatar.callback import ListenError

    async def confirm(task_id: str) -> Task:
        return Task(id=task_id)

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        async def main() -> str:
            server = ReceiverServer(CallbackReceiver(confirm), port=port)
            with pytest.raises(ListenError) as info:
                await server.start()
            await server.stop()
            # The loop is still running: uvicorn's sys.exit did not escape.
            await asyncio.sleep(0)
            return str(info.value)

        message = asyncio.run(main())
    assert message == (f"cannot listen on 127.0.0.1:{port} (Address already in use): "
                       "pick another port or address")
    assert isinstance(ListenError("127.0.0.1", port), OSError)
