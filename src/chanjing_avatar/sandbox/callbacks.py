"""Task callbacks: POST the detail envelope to the task's URL, retried with backoff.

Deliveries run on their own small thread pool and retries wait in a timer heap, so a slow or dead
receiver never holds up rendering or requests. Due deliveries queue per target (host and port)
and are taken round-robin, at most half the senders on one target, so one tenant's slow
receiver cannot delay callbacks to another's. Each attempt first checks the target again
(``callback_targets``): a URL refused there is given up at once. Every callback not yet delivered
(nor given up) is kept in a ``CallbackLog`` (the Store) with its next attempt and when it is due,
so a restarted sandbox carries on where the previous run stopped (``restore``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from .callback_targets import resolved_problem
from .config import CallbackPolicy
from .store import CallbackLog, CallbackRecord

log = logging.getLogger("chanjing_avatar.sandbox")

# Called after every attempt with the task id and the HTTP status, "error" for no answer or
# "refused" for a target the sandbox will not reach.
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
        *,
        allow_private: bool = True,
    ) -> None:
        self._policy = policy
        self._allow_private = allow_private
        self._real = real_seconds
        self._on_outcome = on_outcome
        self._journal = journal
        self._now = now
        self._senders = max(1, policy.senders)
        self._per_target = max(1, self._senders // 2)
        self._pool = ThreadPoolExecutor(self._senders, thread_name_prefix="sandbox-cb")
        timeout = httpx.Timeout(policy.timeout_s, connect=min(policy.timeout_s, policy.connect_s))
        self._http = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)
        self._ready: dict[str, deque[_Delivery]] = {}  # per target, in round-robin order
        self._busy: dict[str, int] = {}
        self._running = 0
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
                target = _target(delivery.url)
                self._ready.setdefault(target, deque()).append(delivery)
                if not self._dispatch():
                    return

    def _dispatch(self) -> bool:
        """Hand due deliveries to free senders, targets in turn (``_wake`` held); False once
        the pool is shut down."""
        while self._running < self._senders:
            target = next((t for t in self._ready if self._busy.get(t, 0) < self._per_target), None)
            if target is None:
                return True
            queue = self._ready.pop(target)
            delivery = queue.popleft()
            if queue:
                self._ready[target] = queue  # to the back of the round
            try:
                self._pool.submit(self._attempt, target, delivery)
            except RuntimeError:  # pool shut down
                return False
            self._busy[target] = self._busy.get(target, 0) + 1
            self._running += 1
        return True

    def _attempt(self, target: str, delivery: _Delivery) -> None:
        try:
            self._deliver(delivery)
        finally:
            with self._wake:
                self._running -= 1
                self._busy[target] -= 1
                if not self._busy[target]:
                    del self._busy[target]
                if not self._closed:
                    self._dispatch()

    def _deliver(self, delivery: _Delivery) -> None:
        problem = resolved_problem(delivery.url, allow_private=self._allow_private)
        if problem:
            log.warning("callback for task %s refused: %s", delivery.task_id, problem)
            self._on_outcome(delivery.task_id, "refused")
            self._forget(delivery.task_id)
            return
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


def _target(url: str) -> str:
    """The fairness key of a callback URL: its host and port."""
    try:
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port or parts.scheme}"
    except ValueError:
        return url
