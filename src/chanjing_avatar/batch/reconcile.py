"""Deciding what became of a create whose outcome is unknown. Pure: no I/O, no clock.

The API has no idempotency key, so a create that timed out (or a process killed while sending) may
or may not have made a task. The batch runner sends creates one at a time per account and resolves
an unknown outcome before it sends the next create, so such a create has a known time window:

    from the moment just before it was sent (journalled as "create intended")
    to the moment the server can no longer act on it (sent + ``settle``, or when the error
    came back if that is later),

widened by the possible clock offset between us and the server, and by a second because the
server's ``create_time`` is whole seconds. Inside the window, a task that no row of the journal
claims can only be ours, unless some other program creates tasks on the same account at the same
moment. That case cannot be decided from the task list (tasks carry no trace of their request), so
it is reported, never guessed:

- no unclaimed task in the window: the create did not happen; create again;
- exactly one, and no unclaimed task near the window either: it is ours; adopt it;
- otherwise (two or more, or one with other unknown tasks close by, the sign that something else
  creates tasks on this account): undecidable; the row stops and the user decides.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

__all__ = ["Decision", "Listed", "Window", "decide", "estimate_offset", "window"]


@dataclass(frozen=True)
class Listed:
    """A task as the account's task list shows it: id and server ``create_time`` (unix s)."""

    task_id: str
    create_time: float


@dataclass(frozen=True)
class Window:
    """Server-clock interval [start, end] in which the unknown create could have landed."""

    start: float
    end: float

    def __contains__(self, t: float) -> bool:
        return self.start <= t <= self.end


@dataclass(frozen=True)
class Decision:
    kind: Literal["wait", "adopt", "recreate", "undecidable"]
    window: Window
    reason: str
    task_id: str | None = None  # adopt: the task
    wait_until: float | None = None  # wait: local time after which to decide
    candidates: tuple[str, ...] = field(default=())
    nearby: tuple[str, ...] = field(default=())


def window(
    intent_at: float,
    outcome_at: float | None,
    *,
    settle: float,
    offset: tuple[float, float] = (-2.0, 2.0),
) -> Window:
    """The server-time window of a create intended at ``intent_at`` (local clock).

    ``outcome_at`` is when the unknown outcome was noticed (None after a crash). ``offset`` bounds
    server clock minus local clock.
    """
    lo, hi = offset
    last = max(intent_at + settle, outcome_at if outcome_at is not None else intent_at)
    # create_time is truncated to whole seconds.
    return Window(start=math.floor(intent_at + lo) - 1.0, end=math.ceil(last + hi) + 1.0)


def decide(
    *,
    intent_at: float,
    outcome_at: float | None,
    now: float,
    listed: Iterable[Listed],
    claimed: set[str] | frozenset[str],
    settle: float,
    offset: tuple[float, float] = (-2.0, 2.0),
    guard: float = 60.0,
) -> Decision:
    """Adopt, recreate, wait or give up on one unknown create.

    ``listed`` must hold every task of the account created in [window.start - guard,
    window.end + guard]; ``claimed`` every task id the journal already gives to a row.
    """
    win = window(intent_at, outcome_at, settle=settle, offset=offset)
    # ``now`` is local; the window end is in server time at most ``hi`` ahead.
    settled_at = win.end - offset[0]
    if now < settled_at:
        return Decision(
            "wait",
            win,
            "the server may still act on the request",
            wait_until=settled_at,
        )
    unclaimed = [t for t in listed if t.task_id not in claimed]
    candidates = tuple(t.task_id for t in unclaimed if t.create_time in win)
    nearby = tuple(
        t.task_id
        for t in unclaimed
        if t.create_time not in win and win.start - guard <= t.create_time <= win.end + guard
    )
    span = f"{_fmt(win.start)}..{_fmt(win.end)}"
    if not candidates:
        return Decision(
            "recreate",
            win,
            f"no unclaimed task was created in {span}: the create did not happen",
            nearby=nearby,
        )
    if len(candidates) == 1 and not nearby:
        return Decision(
            "adopt",
            win,
            f"the only unclaimed task created in {span}",
            task_id=candidates[0],
            candidates=candidates,
        )
    if len(candidates) > 1:
        why = f"{len(candidates)} unclaimed tasks were created in {span}"
    else:
        why = (
            f"one unclaimed task was created in {span}, but {len(nearby)} other unclaimed "
            f"task(s) close to it show another program creating tasks on this account"
        )
    return Decision(
        "undecidable",
        win,
        why + "; cannot tell which (if any) is this row's: adopt one with --resolve "
        "ROW=TASK_ID, or create again with --resolve ROW=new",
        candidates=candidates,
        nearby=nearby,
    )


def estimate_offset(
    samples: Sequence[tuple[float, float, float]], *, default: tuple[float, float] = (-2.0, 2.0)
) -> tuple[float, float]:
    """Bounds of (server clock - local clock) from creates whose outcome was known.

    Each sample is (local time before sending, local time the answer came, the task's server
    ``create_time`` in whole seconds). The server stamped the task between the two local times,
    so the offset lies in [create_time - answered, create_time + 1 - sent]. Samples are
    intersected; with none, or if they disagree (a clock jump), ``default`` is returned, widened
    to include the estimate.
    """
    lo, hi = -math.inf, math.inf
    for sent, answered, created in samples:
        lo = max(lo, created - answered)
        hi = min(hi, created + 1.0 - sent)
    if not samples or lo > hi:
        return default
    # A small margin for the server stamping with a slightly different clock read.
    return (lo - 0.5, hi + 0.5)


def _fmt(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%H:%M:%S")
