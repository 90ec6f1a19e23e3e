"""The work queue: jobs are (kind, id) pairs handled by a fixed number of workers per kind.

Jobs carry only an id (the state lives in the store): the in-process ``ThreadWorkQueue`` serves an
embedded sandbox, ``ProcrastinateQueue`` (queue_procrastinate.py) keeps jobs in PostgreSQL for
workers on any machine.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

from .store import CallbackRecord

log = logging.getLogger("chanjing_avatar.sandbox")

Handler = Callable[[str], None]


class WorkQueue(Protocol):
    def register(self, kind: str, handler: Handler, workers: int) -> None: ...
    def submit(self, kind: str, item_id: str) -> None: ...
    def start(self) -> None: ...
    def stop(self, timeout: float = 10.0) -> None: ...
    def stopping(self) -> bool:
        """True once shutdown began: long jobs should give up early."""
        ...


class CallbackSink(Protocol):
    """Where a finished task's callback goes: sent from this process (``CallbackSender``) or
    handed to the queue's workers."""

    def send(self, task_id: str, url: str, payload: dict[str, Any]) -> None: ...
    def restore(self, record: CallbackRecord) -> None: ...
    def close(self) -> None: ...


class ThreadWorkQueue:
    def __init__(self) -> None:
        self._kinds: dict[str, tuple[Handler, int, queue.Queue[str | None]]] = {}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def register(self, kind: str, handler: Handler, workers: int) -> None:
        self._kinds[kind] = (handler, max(1, workers), queue.Queue())

    def submit(self, kind: str, item_id: str) -> None:
        self._kinds[kind][2].put(item_id)

    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        for kind, (handler, workers, jobs) in self._kinds.items():
            for n in range(workers):
                thread = threading.Thread(
                    target=self._run, args=(handler, jobs), name=f"sandbox-{kind}-{n}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for _handler, workers, jobs in self._kinds.values():
            for _ in range(workers):
                jobs.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _run(self, handler: Handler, jobs: queue.Queue[str | None]) -> None:
        while not self._stop.is_set():
            item = jobs.get()
            if item is None:
                return
            try:
                handler(item)
            except Exception:  # a job must never kill its worker
                log.exception("sandbox job %s failed", item)
