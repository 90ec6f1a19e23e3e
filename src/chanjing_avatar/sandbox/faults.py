"""Fault injection: rules that make chosen endpoints misbehave, by probability or by script.

A rule names an endpoint key (see ``endpoints.py``; ``"*"`` for every API endpoint) and either a
fault with a probability or a scripted sequence consumed one request at a time (``None`` in a
sequence lets that request through). Every matching live rule is asked in order and the first that
fires decides; faults are off unless a rule is installed.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from .._wire import Code

FaultKind = Literal[
    "code",
    "http",
    "drop",
    "delay",
    "delay_after",
    "drop_after",
    "invalidate_token",
    "file_98",
    "task_failure",
]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
BILLING_FAILURE_MSG = "余额不足 (insufficient balance)"


@dataclass(frozen=True)
class Fault:
    """One misbehaviour. Only the field of its kind matters."""

    kind: FaultKind
    code: int = int(Code.INTERNAL)  # "code": answer this envelope code
    status: int = 502  # "http": answer this HTTP status with an HTML body
    # "delay": wait this long (real seconds) before handling the request; "delay_after": handle
    # it, then hold the answer this long.
    delay_s: float = 1.0
    msg: str = ""  # "task_failure" / "file_98": the msg to report

    @classmethod
    def parse(cls, spec: str | Mapping[str, Any] | Fault) -> Fault:
        """Accept a Fault, a dict of its fields, or a short text.

        Texts: ``"50000"`` / ``"40001"`` (an envelope code), ``"502"`` (an HTTP status),
        ``"code:40002"``, ``"http:503"``, ``"delay:2.5"``, ``"delay_after:2.5"``, ``"drop"``,
        ``"drop_after"``, ``"invalidate_token"``, ``"file_98"``, ``"task_failure"`` or
        ``"task_failure:<msg>"``.
        """
        if isinstance(spec, Fault):
            return spec
        if isinstance(spec, Mapping):
            kind = spec.get("kind")
            if kind not in FAULT_KINDS:
                raise ValueError(
                    f"unknown fault kind {kind!r}; use one of {', '.join(FAULT_KINDS)}"
                )
            known = {k: spec[k] for k in ("code", "status", "delay_s", "msg") if k in spec}
            return cls(kind=cast(FaultKind, kind), **known)
        head, _, arg = spec.strip().partition(":")
        if head.isdigit():
            number = int(head)
            return cls("http", status=number) if number < 1000 else cls("code", code=number)
        if head == "code":
            return cls("code", code=int(arg or Code.INTERNAL))
        if head == "http":
            return cls("http", status=int(arg or 502))
        if head in ("delay", "delay_after"):
            delay_s = float(arg or 1.0)
            if not 0.0 <= delay_s < float("inf"):
                raise ValueError(f"{spec!r}: the delay must be a number of seconds >= 0")
            return cls(cast(FaultKind, head), delay_s=delay_s)
        if head == "task_failure":
            return cls("task_failure", msg=arg or BILLING_FAILURE_MSG)
        if head == "file_98":
            return cls("file_98", msg=arg)
        if head in ("drop", "drop_after", "invalidate_token"):
            return cls(cast(FaultKind, head))
        raise ValueError(f"unknown fault {spec!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "code": self.code,
            "status": self.status,
            "delay_s": self.delay_s,
            "msg": self.msg,
        }


@dataclass(frozen=True)
class FaultPolicy:
    """What the faults injected into one request ask of the core (the other kinds act on the
    HTTP exchange and never reach it)."""

    file_check_fails: bool = False  # "file_98": the file's content check fails
    task_failure_msg: str = ""  # "task_failure": the created task fails with this msg

    @classmethod
    def of(cls, fault: Fault | None) -> FaultPolicy:
        if fault is None:
            return NO_FAULTS
        if fault.kind == "file_98":
            return cls(file_check_fails=True)
        if fault.kind == "task_failure":
            return cls(task_failure_msg=fault.msg)
        return NO_FAULTS


NO_FAULTS = FaultPolicy()


def object_store_error(code: int) -> tuple[int, str, str]:
    """What an object store / CDN answers instead of a ``code`` fault's envelope, which it never
    sends: ``(HTTP status, XML error code, message)`` for the ``upload`` and ``download`` endpoints.
    """
    if code == Code.RATE_LIMITED:
        return 503, "SlowDown", "Please reduce your request rate."
    if code in (Code.TOKEN_INVALID, Code.AUTH_FAILED):
        return 403, "AccessDenied", "Access Denied"
    if code == Code.BAD_FORMAT or Code.PARAM_ERROR <= code < Code.INTERNAL:
        return 400, "InvalidRequest", f"The request was refused (injected code {code})."
    return 500, "InternalError", "We encountered an internal error. Please try again."


@dataclass
class FaultRule:
    """``fault`` with ``probability`` per matching request (at most ``times`` times), or a
    scripted ``sequence`` that is consumed request by request and then stops applying."""

    endpoint: str
    fault: Fault | None = None
    probability: float = 1.0
    times: int | None = None
    sequence: list[Fault | None] | None = None
    fired: int = field(default=0)

    def __post_init__(self) -> None:
        if (self.fault is None) == (self.sequence is None):
            raise ValueError("a fault rule needs either a fault or a sequence")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")

    @classmethod
    def parse(cls, spec: Mapping[str, Any] | FaultRule) -> FaultRule:
        if isinstance(spec, FaultRule):
            return spec
        endpoint = spec.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise ValueError("endpoint: required (an endpoint key or '*')")
        raw_seq = spec.get("sequence")
        sequence = (
            [None if item is None else Fault.parse(item) for item in raw_seq]
            if raw_seq is not None
            else None
        )
        raw_fault = spec.get("fault")
        times = spec.get("times")
        return cls(
            endpoint=endpoint,
            fault=None if raw_fault is None else Fault.parse(raw_fault),
            probability=float(spec.get("probability", 1.0)),
            times=None if times is None else int(times),
            sequence=sequence,
        )

    @property
    def exhausted(self) -> bool:
        if self.sequence is not None:
            return not self.sequence
        return self.times is not None and self.fired >= self.times

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "fault": None if self.fault is None else self.fault.to_json(),
            "probability": self.probability,
            "times": self.times,
            "sequence": None
            if self.sequence is None
            else [None if f is None else f.to_json() for f in self.sequence],
            "fired": self.fired,
        }


# Takes one firing of rule ``index``: (taken, the sequence's item). Not taken: another process
# used the rule up meanwhile.
Take = Callable[[int, FaultRule], tuple[bool, "Fault | None"]]


def choose(
    rules: Sequence[FaultRule], endpoint: str, rng: random.Random, take: Take
) -> Fault | None:
    """The fault for one request to ``endpoint``, or None (both injectors decide here).

    Every matching live rule is asked in order until one fires: a probability rule rolls its die
    (one draw from the seeded generator per rule asked, so a run is reproducible under
    ``fault_seed``), a sequence gives up its next item (``None`` = does not fire). Rules after the
    one that fired are not asked: they roll nothing and their sequences keep their items.
    """
    for index, rule in enumerate(rules):
        if rule.endpoint not in (endpoint, "*") or rule.exhausted:
            continue
        if rule.sequence is not None:
            taken, item = take(index, rule)
            if taken and item is not None:
                return item
        elif rng.random() < rule.probability and take(index, rule)[0]:
            return rule.fault
    return None


class FaultInjector:
    """Thread-safe holder of the active rules of this process; ``pick`` decides the fault of one
    request. (A deployment's replicas share theirs: ``faults_postgres.SharedFaults``.)"""

    blocking = False  # pick() may wait on a database

    def __init__(self, rules: Iterable[FaultRule] = (), *, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = list(rules)
        self._rng = random.Random(seed)

    def set_rules(self, rules: Sequence[FaultRule]) -> None:
        with self._lock:
            self._rules = list(rules)

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        self.set_rules([])

    def close(self) -> None:
        """Release what the rules are kept in (nothing, in one process)."""

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_json() for rule in self._rules]

    def pick(self, endpoint: str) -> Fault | None:
        with self._lock:
            return choose(self._rules, endpoint, self._rng, _take_here)


def _take_here(index: int, rule: FaultRule) -> tuple[bool, Fault | None]:
    rule.fired += 1
    return True, (rule.sequence.pop(0) if rule.sequence is not None else None)
