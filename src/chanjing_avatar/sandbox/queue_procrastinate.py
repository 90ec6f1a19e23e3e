"""``WorkQueue`` on Procrastinate: jobs live in the same PostgreSQL as the records.

A job is deferred on the connection of the store's current transaction, so the row that needs
the work and the job that does it commit together (or not at all). API replicas only defer;
``chanjing-avatar sandbox worker`` processes run the jobs (see worker.py). A worker that stops
sending heartbeats (killed, its machine lost) has its running jobs handed to another worker
after ``lost_after_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import procrastinate
from procrastinate import exceptions as pexc
from procrastinate import jobs as pjobs
from procrastinate.manager import JobManager

from .config import CallbackPolicy
from .queue import Handler
from .store import BackendUnavailable, CallbackRecord
from .store_postgres import PostgresStore

log = logging.getLogger("chanjing_avatar.sandbox")

CALLBACK = "callback"
_TASK_PREFIX = "sandbox."


class JobFailed(Exception):
    """Raised by a job that should run again later (Procrastinate's retry)."""


# What procrastinate_finish_job_v1 raises for a job no longer running (see _Jobs).
_NOT_RUNNING = 'Job was not found or not in "doing"'


class _Jobs(JobManager):
    """Procrastinate's job manager, but a job that ended elsewhere is one log line.

    A worker taken for lost that finishes late finds its job queued again, run by another
    worker, and deleted (or it is the first to finish, and the other worker finds it gone).
    Nothing is lost (its task published nothing: jobs.py); Procrastinate would raise from a
    background task, which asyncio logs with a full traceback.
    """

    async def finish_job(
        self, job: pjobs.Job, status: pjobs.Status, delete_job: bool
    ) -> None:
        try:
            await super().finish_job(job=job, status=status, delete_job=delete_job)
        except pexc.ConnectorException as err:
            if _NOT_RUNNING not in str(err.__cause__):
                raise
            log.warning(
                "job %s %s ended here after another worker took it over: not recorded twice",
                job.task_name,
                job.id,
            )


class ProcrastinateQueue:
    def __init__(
        self, store: PostgresStore, url: str, callback_policy: CallbackPolicy | None = None
    ) -> None:
        self._store = store
        self._url = url
        # Workers run jobs through an async connector; deferring always happens on the store's
        # (sync) transaction connection, through a sync one that opens no pool of its own.
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=url, kwargs={"connect_timeout": 5})
        )
        self.app.job_manager = _Jobs(self.app.connector)
        self._deferrer = procrastinate.App(
            connector=procrastinate.SyncPsycopgConnector(conninfo=url)
        )
        self._policy = callback_policy or CallbackPolicy()
        self._stop = threading.Event()
        self.kinds: dict[str, int] = {}  # kind -> concurrency wanted by the registrant

    def register(self, kind: str, handler: Handler, workers: int) -> None:
        # A job that met an unavailable backend runs again later.
        retry: Any = procrastinate.RetryStrategy(
            max_attempts=20, wait=5, retry_exceptions={BackendUnavailable}
        )
        if kind == CALLBACK:
            # The attempts are counted by the handler (it gives up cleanly); this only paces.
            retry = procrastinate.RetryStrategy(
                max_attempts=max(1, self._policy.attempts - 1),
                wait=max(1, round(self._policy.backoff_s)),
                retry_exceptions={JobFailed, BackendUnavailable},
            )

        def run(item_id: str) -> None:
            started = time.monotonic()
            try:
                handler(item_id)
            finally:
                log.info("job %s %s %.2fs", kind, item_id, time.monotonic() - started)

        self.app.task(name=_TASK_PREFIX + kind, queue=kind, retry=retry)(run)
        self.kinds[kind] = max(1, workers)

    def submit(self, kind: str, item_id: str) -> None:
        # By name: an API replica defers jobs it registered no handler for.
        with self._store.transaction():
            conn = self._store.active_connection()
            deferrer = self._deferrer.configure_task(
                _TASK_PREFIX + kind, queue=kind, connection=conn
            )
            deferrer.defer(item_id=item_id)

    def start(self) -> None:
        """Nothing to start here: ``worker.run_worker`` runs the jobs."""

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()

    def stopping(self) -> bool:
        return self._stop.is_set()


class QueuedCallbacks:
    """A ``CallbackSink`` whose deliveries are jobs: the payload waits in the store (written in
    the same transaction as the terminal state that caused it), any worker posts it."""

    def __init__(self, store: PostgresStore, queue: ProcrastinateQueue) -> None:
        self._store = store
        self._queue = queue

    def send(self, task_id: str, url: str, payload: dict[str, Any]) -> None:
        with self._store.transaction():
            self._store.save_callback(CallbackRecord(task_id, url, payload, 1, time.time()))
            self._queue.submit(CALLBACK, task_id)

    def restore(self, record: CallbackRecord) -> None:
        with self._store.transaction():
            self._store.save_callback(record)
            self._queue.submit(CALLBACK, record.task_id)

    def close(self) -> None:
        pass


def deliver_callback(
    store: PostgresStore,
    policy: CallbackPolicy,
    post: Callable[[str, dict[str, Any]], bool],
    task_id: str,
) -> None:
    """One delivery attempt of a task's pending callback (a job handler)."""
    record = next((r for r in store.pending_callbacks() if r.task_id == task_id), None)
    if record is None:
        return  # delivered (or given up) already
    if post(record.url, record.payload):
        store.delete_callback(task_id)
        return
    if record.attempt >= policy.attempts:
        log.warning("callback for task %s given up after %d attempts", task_id, record.attempt)
        store.delete_callback(task_id)
        return
    store.save_callback(
        CallbackRecord(task_id, record.url, record.payload, record.attempt + 1, time.time())
    )
    raise JobFailed(f"callback attempt {record.attempt} failed")


async def recover_lost_jobs(app: procrastinate.App, lost_after_s: float) -> int:
    """Put back the running jobs of workers silent for ``lost_after_s``; returns how many."""
    stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=lost_after_s)
    count = 0
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
            count += 1
            log.warning("job %s %s of a lost worker: queued again", job.task_name, job.id)
        except pexc.ConnectorException:  # another worker took it back first
            pass
    return count


async def recover_forever(app: procrastinate.App, lost_after_s: float, stop: asyncio.Event) -> None:
    period = max(0.5, lost_after_s / 3)
    while not stop.is_set():
        try:
            await recover_lost_jobs(app, lost_after_s)
        except Exception as err:  # the database may be briefly away: try again next round
            log.info("lost-job check failed: %s", type(err).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period)
