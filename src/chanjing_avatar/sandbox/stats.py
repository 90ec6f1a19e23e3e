"""Request and response counts per endpoint and answer code, for tests and benchmarks."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    """``outcome`` is the envelope code as text ("0", "40001"), ``http_<status>`` for answers
    without an envelope, ``dropped`` for a connection cut by a fault, or ``disconnected`` when the
    client went away before its answer. ``faults`` counts the injected faults by kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._responses: Counter[tuple[str, str]] = Counter()
        self._faults: Counter[tuple[str, str]] = Counter()

    def request(self, endpoint: str) -> None:
        with self._lock:
            self._requests[endpoint] += 1

    def response(self, endpoint: str, outcome: str) -> None:
        with self._lock:
            self._responses[(endpoint, outcome)] += 1

    def fault(self, endpoint: str, kind: str) -> None:
        with self._lock:
            self._faults[(endpoint, kind)] += 1

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._responses.clear()
            self._faults.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            responses: dict[str, dict[str, int]] = {}
            for (endpoint, outcome), n in sorted(self._responses.items()):
                responses.setdefault(endpoint, {})[outcome] = n
            faults: dict[str, dict[str, int]] = {}
            for (endpoint, kind), n in sorted(self._faults.items()):
                faults.setdefault(endpoint, {})[kind] = n
            return {
                "requests": dict(sorted(self._requests.items())),
                "responses": responses,
                "faults": faults,
            }
