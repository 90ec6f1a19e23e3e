"""``SandboxAdmin``: a small HTTP helper over the admin endpoints, for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from .endpoints import ADMIN_PREFIX
from .faults import Fault, FaultRule

FaultSpec = Fault | str | Mapping[str, Any]


def _fault_json(spec: FaultSpec | None) -> dict[str, Any] | None:
    return None if spec is None else Fault.parse(spec).to_json()


class SandboxAdmin:
    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        self._http = httpx.Client(
            base_url=base_url + ADMIN_PREFIX,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
        )

    def __repr__(self) -> str:
        return f"SandboxAdmin({str(self._http.base_url)!r})"  # never the token

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        answer = self._http.request(method, path, json=body)
        if answer.status_code >= 400:
            raise ValueError(f"sandbox admin {method} {path}: {answer.text}")
        return answer.json()

    # Faults.
    def add_fault(
        self,
        endpoint: str,
        fault: FaultSpec | None = None,
        *,
        probability: float = 1.0,
        times: int | None = None,
        sequence: Sequence[FaultSpec | None] | None = None,
    ) -> None:
        """Add a rule after the existing ones: ``fault`` with ``probability`` (at most ``times``
        times), or a scripted ``sequence`` consumed one request at a time (None: this rule lets
        that request through). Every matching rule is asked in order; the first that fires wins.

        ``endpoint`` is a key such as ``"lipsync_detail"`` or ``"*"``; faults are given as
        ``Fault`` objects or texts like ``"50000"``, ``"502"``, ``"drop"``, ``"delay:2"``,
        ``"delay_after:2"``, ``"drop_after"``, ``"invalidate_token"``, ``"file_98"``,
        ``"task_failure"`` (see docs/sandbox.md).
        """
        body = {
            "endpoint": endpoint,
            "fault": _fault_json(fault),
            "probability": probability,
            "times": times,
            "sequence": None if sequence is None else [_fault_json(f) for f in sequence],
        }
        self._call("POST", "/faults", body)

    def set_faults(self, rules: Sequence[FaultRule | Mapping[str, Any]]) -> None:
        """Replace every rule."""
        as_json = [r.to_json() if isinstance(r, FaultRule) else dict(r) for r in rules]
        self._call("PUT", "/faults", {"rules": as_json})

    def faults(self) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = self._call("GET", "/faults")["rules"]
        return rules

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    # Apps and tokens.
    def add_app(self, app_id: str | None = None, secret_key: str | None = None) -> tuple[str, str]:
        """Register an app (made-up id/secret where not given); returns (app_id, secret_key)."""
        data = self._call("POST", "/apps", {"app_id": app_id, "secret_key": secret_key})
        return str(data["app_id"]), str(data["secret_key"])

    def invalidate_tokens(self, app_id: str | None = None) -> int:
        """Invalidate the current token of ``app_id`` (of every app if None)."""
        return int(self._call("POST", "/tokens/invalidate", {"app_id": app_id})["invalidated"])

    # Observation.
    def tasks(self) -> list[dict[str, Any]]:
        """Every app's tasks, newest first (detail fields plus ``app_id``)."""
        items: list[dict[str, Any]] = self._call("GET", "/tasks")["list"]
        return items

    def stats(self) -> dict[str, Any]:
        """``{"requests": {endpoint: n}, "responses": {endpoint: {outcome: n}},
        "faults": {endpoint: {fault kind: n}}}``."""
        snapshot: dict[str, Any] = self._call("GET", "/stats")
        return snapshot

    def count(self, endpoint: str | None = None, code: int | str | None = None) -> int:
        """Responses to ``endpoint`` (all if None) with envelope ``code`` / outcome (all if None).

        With neither, counts requests. ``code`` may be an int (40001) or an outcome text
        (``"http_502"``, ``"dropped"``).
        """
        snapshot = self.stats()
        if code is None:
            requests: dict[str, int] = snapshot["requests"]
            return sum(n for ep, n in requests.items() if endpoint in (None, ep))
        outcome = str(code)
        responses: dict[str, dict[str, int]] = snapshot["responses"]
        return sum(
            outcomes.get(outcome, 0) for ep, outcomes in responses.items() if endpoint in (None, ep)
        )

    def reset_stats(self) -> None:
        self._call("DELETE", "/stats")

    # Time.
    def pacing(self) -> dict[str, float]:
        values: dict[str, float] = self._call("GET", "/pacing")
        return values

    def set_pacing(
        self,
        *,
        time_scale: float | None = None,
        file_sync_delay_s: float | None = None,
        task_min_duration_s: float | None = None,
    ) -> dict[str, float]:
        """Change the sandbox clock while it runs (affects work started afterwards)."""
        body = {
            "time_scale": time_scale,
            "file_sync_delay_s": file_sync_delay_s,
            "task_min_duration_s": task_min_duration_s,
        }
        values: dict[str, float] = self._call("PUT", "/pacing", body)
        return values
