"""The rate limiter's window: slots anchored on answers (a slow request never lets a later one in
early) and measured latency instead of a fixed margin."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from chanjing_avatar import RateLimits
from chanjing_avatar._core._ratelimit import SlidingWindow
from chanjing_avatar._wire import PATH_ACCESS_TOKEN, RateLimit

from .drivers import MakeClient, envelope, mock_client, token
from .fakes import FakeClock


def _max_in_window(arrivals: list[float], period: float) -> int:
    arrivals = sorted(arrivals)
    return max(
        sum(1 for b in arrivals[i:] if b < a + period) for i, a in enumerate(arrivals)
    )


@pytest.mark.parametrize("slow_first", [False, True])
def test_sequential_calls_keep_the_server_window_and_lose_only_latency(
    make_client: MakeClient, tmp_path: Path, slow_first: bool
) -> None:
    """The server counts arrivals; the client's slots follow the answers, so a slow request
    (its arrival late) never lets a later one in early, and a fast run loses no fixed margin."""
    clock = FakeClock(0.0)
    arrivals: list[float] = []

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == PATH_ACCESS_TOKEN:
            return token()
        # The very first request takes 300 ms to arrive when slow_first, the others 10 ms.
        before = 0.3 if slow_first and not arrivals else 0.01
        clock.now += before
        arrivals.append(clock.now)
        clock.now += 0.01
        return envelope({"list": [], "page_info": {"page": 1, "size": 10, "total_count": 0,
                                                   "total_page": 1}})

    limits = RateLimits({"lipsync_query": RateLimit("lipsync_query", 10, 1.0)})
    with mock_client(make_client, tmp_path, handler, clock, rate_limits=limits) as c:
        for _ in range(30):
            c.lipsync.list()
    assert _max_in_window(arrivals, 1.0) <= 10
    if not slow_first:
        # Two window turns, each losing one request's latency (20 ms): no 5 % / 100 ms margin.
        assert arrivals[20] - arrivals[0] < 2 * (1.0 + 0.03)
def test_window_waits_for_a_late_send_of_an_earlier_slot() -> None:
    w = SlidingWindow(RateLimit("b", 2, 1.0))
    a, b = w.book(0.0), w.book(0.0)
    c = w.book(0.0)
    assert c.at >= 1.0  # after a's slot, plus its latency allowance
    # a is sent late (the event loop was busy): c's check pushes it after a's answer.
    w.sent(a, 0.5)
    w.settle(a, 0.6)
    w.sent(b, 0.0)
    w.settle(b, 0.01)
    assert w.check(c, c.at) >= 1.6


def test_a_slot_never_sent_is_given_back() -> None:
    w = SlidingWindow(RateLimit("b", 1, 1.0))
    a = w.book(0.0)
    w.settle(a, 0.0)  # cancelled while waiting: never sent
    assert w.book(0.0).at == 0.0


def test_answered_slots_need_no_margin() -> None:
    w = SlidingWindow(RateLimit("b", 1, 60.0))
    a = w.book(0.0)
    w.sent(a, 0.0)
    w.settle(a, 0.05)
    assert w.book(0.1).at == pytest.approx(60.05)  # not 60 + 3 s


