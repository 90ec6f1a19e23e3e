"""The receiver over real HTTP on loopback: pathological JSON is a 400, replays of a finished
task's notice are not confirmed again nor shown twice, and a flood of forged notices for ids
nobody watches cannot spend the account's detail quota."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest

from chanjing_avatar._models import Task
from chanjing_avatar.callback import CallbackReceiver, ReceiverServer

pytestmark = pytest.mark.timeout(120)


class _Account:
    """Stands in for the API's detail endpoint: counts the fetches a receiver makes."""

    def __init__(self, status: int = 20) -> None:
        self.status = status
        self.fetched: list[str] = []
        self.shown: list[tuple[str, int]] = []

    async def confirm(self, task_id: str) -> Task:
        self.fetched.append(task_id)
        return Task(id=task_id, status=self.status)

    def on_task(self, task: Task) -> None:
        self.shown.append((task.id, int(task.status)))


def _notice(task_id: str) -> str:
    return json.dumps({"code": 0, "msg": "success", "data": {"id": task_id, "status": 20}})


def test_pathological_json_is_400_on_a_live_connection() -> None:
    async def main() -> None:
        account = _Account()
        rx = CallbackReceiver(account.confirm, watch_all=True)
        async with ReceiverServer(rx) as server, httpx.AsyncClient() as http:
            bodies = [
                "[" * 30_000 + "]" * 30_000,
                '{"a":' * 10_000 + "1" + "}" * 10_000,
                '{"id": ' + "9" * 5000 + "}",
                '{"id": "\\ud800"}',
            ]
            for body in bodies:
                answer = await http.post(server.url, content=body)
                assert answer.status_code == 400, (body[:20], answer.status_code)
            answer = await http.post(server.url, content=_notice("t-ok"))
            assert answer.status_code == 200
            await rx.drain()
        assert account.fetched == ["t-ok"]

    asyncio.run(main())


def test_replayed_notices_are_confirmed_and_shown_once() -> None:
    async def main() -> None:
        account = _Account(status=20)
        rx = CallbackReceiver(account.confirm, on_task=account.on_task)
        rx.watch("t1")
        async with ReceiverServer(rx) as server, httpx.AsyncClient() as http:
            for _ in range(5):
                assert (await http.post(server.url, content=_notice("t1"))).status_code == 200
                await rx.drain()
        assert account.fetched == ["t1"]
        assert account.shown == [("t1", 20)]
        assert rx.stats.replayed == 4

    asyncio.run(main())


def test_a_state_is_shown_once_but_a_new_state_is_shown() -> None:
    async def main() -> None:
        account = _Account(status=10)
        rx = CallbackReceiver(account.confirm, on_task=account.on_task)
        rx.watch("t1")
        async with ReceiverServer(rx) as server, httpx.AsyncClient() as http:
            for status in (10, 10, 20, 20):
                account.status = status
                await http.post(server.url, content=_notice("t1"))
                await rx.drain()
        assert account.shown == [("t1", 10), ("t1", 20)]

    asyncio.run(main())


def test_a_flood_of_forged_notices_is_rate_limited_when_watching_all() -> None:
    async def main() -> None:
        account = _Account(status=30)
        rx = CallbackReceiver(account.confirm, watch_all=True, confirm_rate=0.1, confirm_burst=10)
        statuses: list[int] = []
        async with ReceiverServer(rx) as server, httpx.AsyncClient() as http:
            for _ in range(200):
                answer = await http.post(server.url, content=_notice(uuid.uuid4().hex))
                statuses.append(answer.status_code)
            await rx.drain()
        # The burst, plus what the rate refilled while the flood was sent.
        assert len(account.fetched) <= 10 + 5, len(account.fetched)
        assert statuses.count(429) >= 180
        assert rx.stats.throttled == statuses.count(429)

    asyncio.run(main())
