"""Sandbox time: durations the server waits can run faster than the wall clock.

Timestamps on the wire (``create_time``, ``expire_in``, upload expiry) always stay wall-clock
unix seconds; ``time_scale`` only shortens the waits the sandbox imposes (file sync delay, task
pacing, rate-limit windows, callback backoff), so a "10-minute" task with ``time_scale=60`` takes
10 real seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class Pacing:
    """Knobs that the admin API may change while the server runs (all in sandbox seconds)."""

    time_scale: float = 1.0
    file_sync_delay_s: float = 1.0
    task_min_duration_s: float = 0.0


class Clock:
    def __init__(self, pacing: Pacing) -> None:
        self._pacing = pacing
        self._lock = threading.Lock()

    @property
    def pacing(self) -> Pacing:
        with self._lock:
            return Pacing(**vars(self._pacing))

    def update(self, **changes: float) -> Pacing:
        with self._lock:
            for key, value in changes.items():
                setattr(self._pacing, key, float(value))
            return Pacing(**vars(self._pacing))

    def real(self, sandbox_seconds: float) -> float:
        """Real seconds that ``sandbox_seconds`` take under the current time scale."""
        scale = self._pacing.time_scale
        return sandbox_seconds / scale if scale > 0 else sandbox_seconds

    @staticmethod
    def now() -> float:
        return time.time()

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()
