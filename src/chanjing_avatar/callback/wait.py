"""Waiting for tasks with callbacks, and a slow poll as the safety net."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .receiver import CallbackReceiver

if TYPE_CHECKING:
    from .. import AsyncClient, Task

__all__ = ["wait_with_callbacks"]


async def wait_with_callbacks(
    client: AsyncClient,
    receiver: CallbackReceiver,
    task_ids: Iterable[str],
    *,
    safety_poll: float = 60.0,
    timeout: float = 1800.0,
    on_progress: Callable[[Task], None] | None = None,
) -> dict[str, Task]:
    """Every task's final state. A confirmed callback ends a task's wait at once; without one,
    each task is still polled every ``safety_poll`` seconds, so a lost callback costs at most
    that long. Raises :class:`TimeoutError` when ``timeout`` passes first."""
    ids = list(dict.fromkeys(task_ids))
    receiver.watch(ids)
    deadline = time.monotonic() + timeout
    done: dict[str, Task] = {}

    async def one(task_id: str) -> None:
        event = receiver.notified(task_id)
        while True:
            task = await client.lipsync.get(task_id)
            if on_progress is not None:
                on_progress(task)
            if task.is_terminal:
                done[task_id] = task
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"task {task_id} not finished after {timeout:g} s")
            event.clear()
            # A callback wakes us early; the detail is fetched again rather than trusted.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=min(safety_poll, left))

    try:
        await asyncio.gather(*(one(t) for t in ids))
    finally:
        for t in ids:
            receiver.unwatch(t)
    return {t: done[t] for t in ids}
