"""The poll stage: one loop asks for the detail of every running task, one at a time through the
client's limiter (with many tasks each is simply polled less often); a callback moves a task to the
front."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from .. import ChanjingError, InvalidRequestError, Task, TaskStatus
from .._wire import is_billing_failure
from ._download import Downloads
from ._run import RunState
from .journal import RowState

log = logging.getLogger("chanjing_avatar.batch")

_NOT_FOUND_LIMIT = 3  # "no such task" this many times: the account no longer has it


class Poller:
    def __init__(self, run: RunState, downloads: Downloads) -> None:
        self._run = run
        self._downloads = downloads
        self._rows: dict[str, str] = {}  # task id -> row id, being polled
        self._due: dict[str, float] = {}  # task id -> monotonic time of its next poll
        self._since: dict[str, float] = {}  # task id -> when this run began waiting for it
        self._not_found: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._last_task_known = False
        for row in run.journal.rows(RowState.CREATED):  # created before this run
            if row.task_id:
                self.watch(row.id, row.task_id)

    def watch(self, row_id: str, task_id: str) -> None:
        self._rows[task_id] = row_id
        self._due[task_id] = time.monotonic() + min(1.0, self._run.opts.poll_interval)
        self._since.setdefault(task_id, time.monotonic())
        if self._run.opts.receiver is not None:
            self._run.opts.receiver.watch(task_id)
        self._wake.set()

    def poll_now(self, task_id: str) -> None:
        """Fetch this task's detail at the next chance (a callback arrived)."""
        if task_id in self._rows:
            self._due[task_id] = 0.0
            self._wake.set()

    def no_more_tasks(self) -> None:
        """The create stage ended: once the watched tasks end, so does polling."""
        self._last_task_known = True
        self._wake.set()

    async def run(self) -> None:
        try:
            while self._rows or not self._last_task_known:
                task_id = min(self._due, key=self._due.__getitem__, default=None)
                wait = None if task_id is None else self._due[task_id] - time.monotonic()
                if task_id is None or (wait is not None and wait > 0):
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=wait)
                    continue
                await self._poll(task_id)
        finally:
            self._downloads.close()

    @property
    def _interval(self) -> float:
        opts = self._run.opts
        return opts.safety_poll if opts.receiver is not None else opts.poll_interval

    async def _poll(self, task_id: str) -> None:
        run, row_id = self._run, self._rows[task_id]
        try:
            task = await run.client.lipsync.get(task_id)
        except InvalidRequestError as e:
            # "no such task": the account no longer has it (another key, or purged).
            n = self._not_found[task_id] = self._not_found.get(task_id, 0) + 1
            if n >= _NOT_FOUND_LIMIT:
                self._unwatch(task_id)
                run.journal.task_failed(row_id, task_id, f"task not found: {e.msg}", "task")
                run.refresh(f"{row_id}: task {task_id} not found")
            else:
                self._due[task_id] = time.monotonic() + self._interval
            return
        except ChanjingError as e:
            log.info("detail of %s failed (%s); trying again later", task_id, e)
            self._due[task_id] = time.monotonic() + self._interval
            return
        if task_id in self._rows:
            self._handle(row_id, task)

    def _handle(self, row_id: str, task: Task) -> None:
        run, journal = self._run, self._run.journal
        if task.create_time is not None:
            journal.task_seen(task.id, task.create_time.timestamp())
        if task.status == TaskStatus.SUCCEEDED:
            self._unwatch(task.id)
            journal.task_succeeded(row_id, task.id, task.video_url, task.duration_ms)
            self._downloads.add(row_id)
            run.refresh(f"{row_id}: rendered")
        elif task.status == TaskStatus.FAILED:
            self._unwatch(task.id)
            billing = is_billing_failure(task.msg)
            journal.task_failed(row_id, task.id, task.msg or "task failed",
                                "billing" if billing else "task")
            run.refresh(f"{row_id}: failed: {task.msg}")
            if billing:
                run.stop_creating(f"billing failure on {row_id}: {task.msg}")
        else:
            now = time.monotonic()
            if now - self._since.get(task.id, now) > run.opts.task_timeout:
                self._unwatch(task.id)
                run.refresh(f"{row_id}: still running after the timeout; re-run to wait on")
                return
            self._due[task.id] = now + self._interval

    def _unwatch(self, task_id: str) -> None:
        self._rows.pop(task_id, None)
        self._due.pop(task_id, None)
        if self._run.opts.receiver is not None:
            self._run.opts.receiver.unwatch(task_id)
