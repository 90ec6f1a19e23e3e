"""Pure decisions: retry or not, how long to back off, when to poll next, is a token fresh."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .._exceptions import ChanjingError, RateLimitError, ServerError, TransportError
from .._wire import TOKEN_REFRESH_MARGIN_S
from ._envelope import GATEWAY_STATUSES


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    base_s: float = 0.5
    cap_s: float = 20.0
    # Rate limited (Code.RATE_LIMITED): the window must roll over, so start higher.
    rate_limited_base_s: float = 2.0


def backoff(policy: RetryPolicy, attempt: int, rng: random.Random, *, rate_limited: bool) -> float:
    """Capped exponential backoff with "equal jitter": half fixed, half random.

    ``attempt`` counts retries already made (0 before the first retry).
    """
    base = policy.rate_limited_base_s if rate_limited else policy.base_s
    ceiling = min(policy.cap_s, base * 2.0**attempt)
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def may_retry(policy: RetryPolicy, retries: int, *, rate_limited: bool, limited_s: float,
              patience_s: float) -> bool:
    """Whether a retryable failure gets another try: ``max_retries`` of them, and for a rate
    limited one (40001) also as long as the backoff slept for those stays under ``patience_s``
    (the window rolls over however many other programs of the app fill it). Never when retries
    are off (``max_retries`` 0)."""
    if retries < policy.max_retries:
        return True
    return rate_limited and policy.max_retries > 0 and limited_s < patience_s


def is_retryable(error: ChanjingError) -> bool:
    """Whether repeating the same idempotent request may succeed."""
    if isinstance(error, RateLimitError | ServerError):
        return True
    if isinstance(error, TransportError):
        return error.http_status is None or error.http_status in GATEWAY_STATUSES
    return False


# Tokens one call may try after refusals (10400/10401). Each refresh kills the previous token, so
# while other processes (or the vendor's scripts) refresh too, the next token may be refused as
# well: retry while each refused token is a new one, up to this many.
AUTH_ATTEMPTS = 5


def retry_refused_token(refused: list[str], token: str, limit: int = AUTH_ATTEMPTS) -> bool:
    """After ``token`` was refused (``refused``: the tokens this call already had refused):
    whether to get another one and retry. Never for the same token twice, never unbounded."""
    return token not in refused and len(refused) + 1 < limit


def token_is_fresh(expire_in: float, now: float, margin: float = TOKEN_REFRESH_MARGIN_S) -> bool:
    """Usable without refresh: more than ``margin`` seconds before ``expire_in``."""
    return now < expire_in - margin


@dataclass(frozen=True)
class PollPolicy:
    """Adaptive polling: start near ``first_s``, grow by ``growth`` up to ``max_s``, with jitter.

    When the task reports progress, the next poll is aimed just after the estimated finish if that
    comes sooner.
    """

    first_s: float = 2.0
    growth: float = 2.5
    max_s: float = 30.0
    jitter: float = 0.1  # +-10 %
    min_s: float = 0.5


def poll_delay(
    policy: PollPolicy,
    polls: int,
    rng: random.Random,
    *,
    eta_s: float | None = None,
) -> float:
    """Seconds until the next poll, after ``polls`` polls so far (>= 1)."""
    base = min(policy.max_s, policy.first_s * policy.growth ** max(0, polls - 1))
    delay = base * (1 + rng.uniform(-policy.jitter, policy.jitter))
    if eta_s is not None and 0 <= eta_s < delay * 1.2:
        # Aim slightly after the estimated finish rather than a whole interval later (stretching
        # this interval by at most a fifth to get there).
        delay = eta_s + min(1.0, 0.05 * base)
    elif eta_s is not None and delay <= eta_s < 2 * delay:
        # The finish falls inside the next two intervals: split them so one poll lands on it.
        delay = eta_s / 2
    elif eta_s is not None and eta_s < 0:
        # Past the estimate: back off from it (2, 4, 8 ... s late), never hammering.
        delay = min(delay, max(policy.first_s, -eta_s))
    return max(policy.min_s, delay)


@dataclass
class ProgressEstimator:
    """Estimates when a task finishes from the progress it reports (linear from first sight)."""

    t0: float | None = None
    p0: int = 0
    last_t: float | None = None
    last_p: int = 0
    reached_t: float | None = None  # first seen at or past the target

    def observe(self, now: float, progress: int) -> None:
        if self.t0 is None or progress < self.last_p:
            self.t0, self.p0, self.reached_t = now, progress, None
        self.last_t, self.last_p = now, progress
        if progress >= self.target and self.reached_t is None:
            self.reached_t = now

    # Servers often finish straight from 99 %: aim there.
    target: int = 99

    def eta(self, now: float) -> float | None:
        """Seconds from ``now`` to the estimated finish (negative when overdue), or None when
        too little is known."""
        if self.t0 is None or self.last_t is None:
            return None
        if self.reached_t is not None:
            return self.reached_t - now  # overdue: back off from when it got there
        dp = self.last_p - self.p0
        dt = self.last_t - self.t0
        if dp < 3 or dt <= 0:
            return None
        finish = self.t0 + (self.target - self.p0) * dt / dp  # where the line crosses target
        return finish - now
