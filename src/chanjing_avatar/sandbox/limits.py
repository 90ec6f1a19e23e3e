"""Per-app rate limits: a sliding window of request times per (app_id, bucket)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Protocol

from .._wire import RateLimit

# Counts one request against a shared log: (app_id, limit, window in real seconds) -> allowed.
SharedHit = Callable[[str, RateLimit, float], bool]


class Limiter(Protocol):
    def allow(self, app_id: str, bucket: str | None, now: float) -> bool: ...


class RateLimiter:
    """``allow`` answers False once an app used up its bucket within the window.

    ``real_seconds`` turns a documented period into real seconds (the sandbox's time scale).
    """

    def __init__(
        self, limits: Mapping[str, RateLimit], real_seconds: Callable[[float], float]
    ) -> None:
        self._limits = dict(limits)
        self._real = real_seconds
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, app_id: str, bucket: str | None, now: float) -> bool:
        limit = self._limits.get(bucket) if bucket else None
        if limit is None:
            return True
        window = self._real(limit.period_s)
        with self._lock:
            hits = self._hits.setdefault((app_id, limit.bucket), deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit.count:
                return False
            hits.append(now)
            return True


class SharedRateLimiter:
    """The same limits counted in a store every API replica shares (``now`` is the store's)."""

    def __init__(
        self,
        limits: Mapping[str, RateLimit],
        real_seconds: Callable[[float], float],
        hit: SharedHit,
    ) -> None:
        self._limits = dict(limits)
        self._real = real_seconds
        self._hit = hit

    def allow(self, app_id: str, bucket: str | None, now: float) -> bool:
        limit = self._limits.get(bucket) if bucket else None
        if limit is None:
            return True
        return self._hit(app_id, limit, self._real(limit.period_s))
