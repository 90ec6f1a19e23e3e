"""Client-side rate limiting: a sliding window per bucket, anchored on what is known to happen.

The server counts a request when it arrives and refuses one that would make ``count`` arrivals in
any ``period``. The client cannot see arrivals, but it knows bounds for them: a request arrives
no earlier than it was sent and no later than its answer came back. So every request holds a
:class:`Slot` whose time is the latest moment the server may have counted it:

- booked (waiting to be sent): its booked time, or now if later, plus the latency allowance;
- sent, no answer yet: its send time plus the latency allowance;
- answered: the time the answer (or the error) came back. Exact, no margin needed.

A new request is booked ``period`` after the slot ``count`` places before it. The driver sleeps
until its slot, checks it again (an earlier request may have been sent late), and reports the send
and the answer. The latency allowance is measured (the slowest of the last answers, plus a little)
and only matters while an earlier request is still on its way; sequential callers (the batch
runner's creates) lose only the latency of one request per window instead of a fixed margin.

Everything here is arithmetic under a short lock: threads of a sync client and tasks of an async
client share one limiter, and nobody sleeps while holding the lock.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Iterable, Mapping

from .._wire import RateLimit

# Latency allowance before any answer was measured: 5 % of the period, at least 100 ms (the old
# fixed margin). Once measured: the slowest recent send->answer time, plus _SLACK_S.
_MARGIN_RATIO = 0.05
_MARGIN_MIN_S = 0.1
_SLACK_S = 0.02
_LATENCY_SAMPLES = 16
# How often the driver re-checks a slot after sleeping for it (a bound, in case a replaced
# ``sleep`` does not really sleep).
CHECKS = 3

BOOKED, SENT, DONE = 0, 1, 2


class Slot:
    """One request's place in a window (see the module docstring)."""

    __slots__ = ("at", "bucket", "key", "state", "window")

    def __init__(self, window: SlidingWindow, at: float, *, bucket: str = "", key: str = "",
                 state: int = BOOKED) -> None:
        self.window = window
        self.at = at
        self.state = state
        self.bucket = bucket  # for a limiter shared between processes (``_ratelimit_file``)
        self.key = key

    def __repr__(self) -> str:
        return f"Slot(at={self.at:.3f}, state={('booked', 'sent', 'done')[self.state]})"


class SlidingWindow:
    def __init__(self, limit: RateLimit, *, latencies: deque[float] | None = None) -> None:
        self.count = limit.count
        self.period = limit.period_s
        self._default_allowance = max(limit.period_s * _MARGIN_RATIO, _MARGIN_MIN_S)
        self._slots: deque[Slot] = deque()
        self._latencies = deque(maxlen=_LATENCY_SAMPLES) if latencies is None else latencies

    @property
    def slots(self) -> tuple[Slot, ...]:
        return tuple(self._slots)

    def load(self, slots: Iterable[tuple[str, int, float]]) -> None:
        """Take over slots kept elsewhere (key, state, time), oldest first."""
        self._slots.extend(Slot(self, at, key=key, state=state) for key, state, at in slots)

    def allowance(self) -> float:
        """How long after its send a request may reach the server (measured)."""
        if not self._latencies:
            return self._default_allowance
        return max(self._latencies) + _SLACK_S

    def _bound(self, slot: Slot, now: float) -> float:
        """The latest time the server may count (or have counted) ``slot``'s request."""
        if slot.state == DONE:
            return slot.at
        if slot.state == SENT:
            return slot.at + self.allowance()
        return max(slot.at, now) + self.allowance()

    def _earliest(self, index: int, now: float) -> float:
        """The earliest start for the slot at ``index`` (``len`` for a new one)."""
        if index < self.count:
            return now
        return max(now, self._bound(self._slots[index - self.count], now) + self.period)

    def _trim(self, now: float) -> None:
        slots = self._slots
        while slots and slots[0].state != BOOKED and (
            self._bound(slots[0], now) <= now - self.period
        ):
            slots.popleft()

    def book(self, now: float) -> Slot:
        """Book a slot; its ``at`` is when to send (>= now)."""
        self._trim(now)
        slot = Slot(self, self._earliest(len(self._slots), now))
        self._slots.append(slot)
        return slot

    def reserve(self, now: float) -> float:
        """Book a slot and assume it is sent at its time and answered at once; return the time.

        For callers that do not report sends and answers (tests of the window arithmetic).
        """
        slot = self.book(now)
        slot.state = DONE
        return slot.at

    def check(self, slot: Slot, now: float) -> float:
        """Re-check a booked slot just before sending: its start, pushed later if needed."""
        try:
            index = self._slots.index(slot)
        except ValueError:
            return max(slot.at, now)
        slot.at = max(slot.at, self._earliest(index, now))
        return slot.at

    def sent(self, slot: Slot, now: float) -> None:
        slot.at, slot.state = now, SENT

    def settle(self, slot: Slot, now: float) -> None:
        """The answer (or the error) is back; a slot never sent is given back."""
        if slot.state == BOOKED:
            with contextlib.suppress(ValueError):
                self._slots.remove(slot)
            return
        if slot.state == SENT:
            self._latencies.append(max(0.0, now - slot.at))
            slot.at, slot.state = now, DONE


class RateLimiter:
    def __init__(self, limits: Mapping[str, RateLimit]) -> None:
        self._windows = {name: SlidingWindow(limit) for name, limit in limits.items()}
        self._lock = threading.Lock()

    def book(self, bucket: str, now: float) -> Slot | None:
        """A slot in ``bucket`` (None when the bucket is unlimited)."""
        window = self._windows.get(bucket)
        if window is None:
            return None
        with self._lock:
            return window.book(now)

    def wait(self, slot: Slot, now: float) -> float:
        """Seconds to wait before sending ``slot``'s request (checked again each time)."""
        with self._lock:
            return max(0.0, slot.window.check(slot, now) - now)

    def sent(self, slot: Slot, now: float) -> None:
        with self._lock:
            slot.window.sent(slot, now)

    def settle(self, slot: Slot, now: float) -> None:
        with self._lock:
            slot.window.settle(slot, now)

    def reserve(self, bucket: str, now: float) -> float:
        """Seconds to wait for a slot, the send not reported (see ``SlidingWindow.reserve``)."""
        window = self._windows.get(bucket)
        if window is None:
            return 0.0
        with self._lock:
            return max(0.0, window.reserve(now) - now)
