"""Request and response counts per endpoint and answer code, for tests and benchmarks."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    """``outcome`` is the envelope code as text ("0", "40001"), ``http_<status>`` for answers
    without an envelope, or ``dropped`` for a connection cut by a fault."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._responses: Counter[tuple[str, str]] = Counter()

    def request(self, endpoint: str) -> None:
        with self._lock:
            self._requests[endpoint] += 1

    def response(self, endpoint: str, outcome: str) -> None:
        with self._lock:
            self._responses[(endpoint, outcome)] += 1

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._responses.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            responses: dict[str, dict[str, int]] = {}
            for (endpoint, outcome), n in sorted(self._responses.items()):
                responses.setdefault(endpoint, {})[outcome] = n
            return {"requests": dict(sorted(self._requests.items())), "responses": responses}
