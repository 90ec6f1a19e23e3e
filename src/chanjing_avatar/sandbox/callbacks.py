"""Task callbacks: POST the detail envelope to the task's URL, retried with backoff.

Deliveries run on their own small thread pool and retries wait in a timer heap, so a slow or dead
receiver never holds up rendering, requests or other callbacks. Every callback not yet delivered
(nor given up) is kept in a ``CallbackLog`` (the Store) with its next attempt and when it is due,
so a restarted sandbox carries on where the previous run stopped (``restore``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from .config import CallbackPolicy
from .store import CallbackLog, CallbackRecord

log = logging.getLogger("chanjing_avatar.sandbox")

# Called after every attempt with the task id and the HTTP status, or "error" for no answer.
Outcome = Callable[[str, str], None]


@dataclass(frozen=True)
class _Delivery:
    task_id: str
    url: str
    payload: dict[str, Any]
    attempt: int = 1


class CallbackSender:
    def __init__(
        self,
        policy: CallbackPolicy,
        real_seconds: Callable[[float], float],
        on_outcome: Outcome = lambda task_id, outcome: None,
        journal: CallbackLog | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._policy = policy
        self._real = real_seconds
        self._on_outcome = on_outcome
        self._journal = journal
        self._now = now
        self._pool = ThreadPoolExecutor(max(1, policy.senders), thread_name_prefix="sandbox-cb")
        self._http = httpx.Client(timeout=policy.timeout_s, follow_redirects=False)
        self._heap: list[tuple[float, int, _Delivery]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self._timer = threading.Thread(target=self._run_timer, name="sandbox-cb-timer", daemon=True)
        self._timer.start()

    def send(self, task_id: str, url: str, payload: dict[str, Any]) -> None:
        self._remember(CallbackRecord(task_id, url, payload, 1, self._now()))
        self._schedule(_Delivery(task_id, url, payload), delay=0.0)

    def restore(self, record: CallbackRecord) -> None:
        """Take over a callback a previous run left pending: its next attempt, when it is due."""
        self._remember(record)
        delivery = _Delivery(record.task_id, record.url, record.payload, max(1, record.attempt))
        self._schedule(delivery, delay=max(0.0, record.due_at - self._now()))

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        self._timer.join(5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._http.close()

    def _schedule(self, delivery: _Delivery, delay: float) -> None:
        with self._wake:
            if self._closed:
                return
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), delivery))
            self._wake.notify()

    def _run_timer(self) -> None:
        with self._wake:
            while not self._closed:
                if not self._heap:
                    self._wake.wait()
                    continue
                due, _, delivery = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
                try:
                    self._pool.submit(self._deliver, delivery)
                except RuntimeError:  # pool shut down
                    return

    def _deliver(self, delivery: _Delivery) -> None:
        try:
            answer = self._http.post(delivery.url, json=delivery.payload)
            outcome = str(answer.status_code)
            delivered = answer.is_success
        except httpx.HTTPError as exc:
            outcome, delivered = "error", False
            log.info("callback for task %s: %s", delivery.task_id, type(exc).__name__)
        self._on_outcome(delivery.task_id, outcome)
        if delivered or delivery.attempt >= self._policy.attempts:
            if not delivered:
                log.warning(
                    "callback for task %s given up after %d attempts",
                    delivery.task_id,
                    delivery.attempt,
                )
            self._forget(delivery.task_id)
            return
        backoff = self._policy.backoff_s * self._policy.factor ** (delivery.attempt - 1)
        delay = self._real(backoff)
        retry = _Delivery(delivery.task_id, delivery.url, delivery.payload, delivery.attempt + 1)
        # Recorded even while closing, so the next start makes this attempt.
        due_at = self._now() + delay
        self._remember(
            CallbackRecord(retry.task_id, retry.url, retry.payload, retry.attempt, due_at)
        )
        self._schedule(retry, delay)

    def _remember(self, record: CallbackRecord) -> None:
        if self._journal is None:
            return
        try:
            self._journal.save_callback(record)
        except Exception:  # delivery goes on; only a restart would lose it
            log.exception("could not record the callback of task %s", record.task_id)

    def _forget(self, task_id: str) -> None:
        if self._journal is None:
            return
        try:
            self._journal.delete_callback(task_id)
        except Exception:
            log.exception("could not clear the callback of task %s", task_id)
