"""Run one driver-contract test over both drivers: ``Client``, and ``AsyncClient`` driven from the
test's thread through an anyio blocking portal (its event loop runs in a thread of its own)."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from chanjing_avatar import AsyncClient, Client

Handler = Callable[[httpx.Request], httpx.Response]


class Blocking:
    """An AsyncClient (or one of its groups) with blocking methods: each coroutine method runs on
    the portal's event loop; everything else is the object's own."""

    def __init__(self, target: Any, portal: BlockingPortal) -> None:
        self._target = target
        self._portal = portal

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if inspect.iscoroutinefunction(value):
            return lambda *a, **kw: self._portal.call(functools.partial(value, *a, **kw))
        if inspect.isasyncgenfunction(value):  # an async iterator: collected on the loop
            return lambda *a, **kw: self._portal.call(_collect, value(*a, **kw))
        if hasattr(value, "_client") and value is not self._target:  # a group: files, lipsync...
            return Blocking(value, self._portal)
        return value

    def __enter__(self) -> Blocking:
        return self

    def __exit__(self, *exc: object) -> None:
        self._portal.call(self._target.aclose)


async def _collect(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


MakeClient = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def make_client(request: pytest.FixtureRequest) -> Iterator[MakeClient]:
    """``make_client(**Client kwargs)``: a Client, or a blocking view of an AsyncClient; a
    ``sleep`` given is the blocking one (wrapped for the async client)."""
    if request.param == "sync":
        yield Client
        return

    def make(*, sleep: Callable[[float], None] | None = None, **kw: Any) -> Blocking:
        async def async_sleep(seconds: float) -> None:
            if sleep is not None:
                sleep(seconds)

        return Blocking(AsyncClient(sleep=async_sleep, **kw), portal)

    with start_blocking_portal() as portal:
        yield make


def mock_client(make_client: MakeClient, tmp_path: Path, handler: Handler,
                clock: Any = None, **kw: Any) -> Any:
    """A client of ``make_client``'s kind over ``httpx.MockTransport(handler)``; its sleeps
    advance ``clock`` (a FakeClock) when one is given, else return at once."""
    def sleep(seconds: float) -> None:
        if clock is not None:
            clock.now += seconds

    return make_client(app_id="app", secret_key="s3cret-key-value", base_url="https://api.test",
                       credentials_dir=tmp_path / "cred", transport=httpx.MockTransport(handler),
                       clock=clock, sleep=sleep, **kw)


def envelope(data: Any = None, code: int = 0, msg: str = "success") -> httpx.Response:
    return httpx.Response(200, json={"trace_id": "t" * 32, "code": code, "msg": msg, "data": data})


def token() -> httpx.Response:
    return envelope({"access_token": "tok", "expire_in": int(time.time()) + 86400})
