"""The rate limiter shared by every process of one app on one machine, through a small file.

The server counts an app's requests whoever sends them, so several ``make`` commands in a shell
loop (or several programs) on one account share its windows. Each process keeps its place in a
state file beside the credentials file (``ratelimit-<hash>.json``, one per base URL and app id,
0600): every booking, send and answer is a short read-modify-write under an exclusive lock
(``lockf``) on that file, running ``_core._ratelimit``'s arithmetic over everyone's slots. Times are
``CLOCK_MONOTONIC`` (the same for every process of the machine); the file names the boot it was
written in, and places held by a process that died (never answered) are dropped after two periods.

Each operation opens the file anew, so a forked child shares nothing but the file. When the
folder cannot hold the file (read-only, missing, another user's), the limiter is the in-process
one, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ._core._ratelimit import (
    _LATENCY_SAMPLES,
    BOOKED,
    DONE,
    SENT,
    RateLimiter,
    SlidingWindow,
    Slot,
)
from ._wire import RateLimit

log = logging.getLogger("chanjing_avatar")

T = TypeVar("T")
_VERSION = 1
_STALE_PERIODS = 2.0  # a place not answered after this many periods: its process is gone
_MAX_BYTES = 1 << 20


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def state_path(credentials_dir: Path, base_url: str, app_id: str) -> Path:
    digest = hashlib.sha256(f"{base_url}\n{app_id}".encode()).hexdigest()[:16]
    return credentials_dir / f"ratelimit-{digest}.json"


class FileRateLimiter:
    """:class:`RateLimiter`'s interface over a state file shared between processes."""

    def __init__(self, limits: Mapping[str, RateLimit], path: Path) -> None:
        self._limits = dict(limits)
        self._path = path
        self._boot = _boot_id()
        self._mutex = threading.Lock()
        self._keys = itertools.count()
        self._latencies = {b: deque[float](maxlen=_LATENCY_SAMPLES) for b in self._limits}
        with self._locked() as state:  # fails here, not later, when the file cannot be used
            del state

    @classmethod
    def create(cls, limits: Mapping[str, RateLimit], path: Path) -> FileRateLimiter | RateLimiter:
        """The shared limiter, or the in-process one when ``path`` cannot be used."""
        try:
            return cls(limits, path)
        except OSError as e:
            log.debug("rate limits not shared between processes (%s: %s)", path,
                      e.strerror or e)
            return RateLimiter(limits)

    @contextlib.contextmanager
    def _locked(self) -> Any:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        with self._mutex:
            fd = os.open(self._path, flags, 0o600)
            try:
                # A POSIX record lock, not flock: it belongs to this process, so a child forked
                # while it is held does not keep holding it through the inherited descriptor.
                fcntl.lockf(fd, fcntl.LOCK_EX)
                raw = os.pread(fd, _MAX_BYTES, 0)
                state = self._load(raw)
                yield state
                data = json.dumps(state, separators=(",", ":")).encode()
                if data != raw:
                    os.pwrite(fd, data, 0)
                    os.ftruncate(fd, len(data))
            finally:
                os.close(fd)  # releases the lock

    def _load(self, raw: bytes) -> dict[str, Any]:
        try:
            state = json.loads(raw) if raw else {}
        except ValueError:
            state = {}
        if (not isinstance(state, dict) or state.get("v") != _VERSION
                or state.get("boot") != self._boot or not isinstance(state.get("buckets"), dict)):
            state = {"v": _VERSION, "boot": self._boot, "buckets": {}}
        return state

    def _window(self, state: dict[str, Any], bucket: str, now: float) -> SlidingWindow:
        limit = self._limits[bucket]
        stale = now - _STALE_PERIODS * limit.period_s
        slots = []
        for entry in state["buckets"].get(bucket, []):
            try:
                key, status, at = str(entry[0]), int(entry[1]), float(entry[2])
            except (TypeError, ValueError, IndexError):
                continue
            if status in (BOOKED, SENT, DONE) and (status == DONE or at >= stale):
                slots.append((key, status, at))  # else held by a process that is gone
        window = SlidingWindow(limit, latencies=self._latencies[bucket])
        window.load(slots)
        return window

    def _apply(self, bucket: str, now: float, op: Callable[[SlidingWindow], T]) -> T:
        with self._locked() as state:
            window = self._window(state, bucket, now)
            result = op(window)
            state["buckets"][bucket] = [[s.key, s.state, round(s.at, 6)] for s in window.slots]
            return result

    @staticmethod
    def _find(window: SlidingWindow, slot: Slot) -> Slot | None:
        return next((s for s in window.slots if s.key == slot.key), None)

    # -- RateLimiter's interface ------------------------------------------------------------------

    def book(self, bucket: str, now: float) -> Slot | None:
        if bucket not in self._limits:
            return None
        key = f"{os.getpid()}-{next(self._keys)}"

        def op(window: SlidingWindow) -> Slot:
            slot = window.book(now)
            slot.bucket, slot.key = bucket, key
            return slot

        return self._apply(bucket, now, op)

    def wait(self, slot: Slot, now: float) -> float:
        def op(window: SlidingWindow) -> float:
            mine = self._find(window, slot)
            if mine is None:  # dropped as stale: book again
                mine = window.book(now)
                mine.bucket, mine.key = slot.bucket, slot.key
            slot.at = window.check(mine, now)
            return max(0.0, slot.at - now)

        return self._apply(slot.bucket, now, op)

    def sent(self, slot: Slot, now: float) -> None:
        self._apply(slot.bucket, now, lambda window: self._each(window, slot, window.sent, now))

    def settle(self, slot: Slot, now: float) -> None:
        self._apply(slot.bucket, now, lambda window: self._each(window, slot, window.settle, now))

    def _each(self, window: SlidingWindow, slot: Slot, step: Callable[[Slot, float], None],
              now: float) -> None:
        mine = self._find(window, slot)
        if mine is not None:
            step(mine, now)

    def reserve(self, bucket: str, now: float) -> float:
        if bucket not in self._limits:
            return 0.0
        return self._apply(bucket, now, lambda window: max(0.0, window.reserve(now) - now))
