"""Client-side rate limiting: a sliding window per bucket with reservations.

``reserve`` is arithmetic under a short lock: it books the earliest slot that keeps at most
``count`` requests in any ``period`` and returns how long the caller must wait for it. Threads of a
sync client and tasks of an async client share one limiter; neither blocks while holding the lock.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping

from .._wire import RateLimit

# A request reaches the server a little after its slot (scheduling, connect): keep a margin of
# 5 % of the period, and at least 100 ms.
_MARGIN_RATIO = 0.05
_MARGIN_MIN_S = 0.1


class SlidingWindow:
    def __init__(self, limit: RateLimit) -> None:
        self.count = limit.count
        self.period = limit.period_s + max(limit.period_s * _MARGIN_RATIO, _MARGIN_MIN_S)
        self._slots: deque[float] = deque()

    def reserve(self, now: float) -> float:
        """Book a slot; return its start time (>= now)."""
        slots = self._slots
        while slots and slots[0] <= now - self.period:
            slots.popleft()
        at = now if len(slots) < self.count else max(now, slots[-self.count] + self.period)
        slots.append(at)
        if len(slots) > self.count * 4:  # keep memory bounded
            slots.popleft()
        return at


class RateLimiter:
    def __init__(self, limits: Mapping[str, RateLimit]) -> None:
        self._windows = {name: SlidingWindow(limit) for name, limit in limits.items()}
        self._lock = threading.Lock()

    def reserve(self, bucket: str, now: float) -> float:
        """Seconds to wait before sending a request of ``bucket`` (0 if unlimited)."""
        window = self._windows.get(bucket)
        if window is None:
            return 0.0
        with self._lock:
            return max(0.0, window.reserve(now) - now)
