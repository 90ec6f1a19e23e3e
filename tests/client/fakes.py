"""Helpers for driving the sans-I/O flows without any network."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from chanjing_avatar._core import Context, Reply, RetryPolicy, Send, Sleep, WithStoreLock
from chanjing_avatar._credentials import StoredToken


@dataclass
class MemoryStore:
    """An in-memory stand-in for the credentials file."""

    stored: StoredToken | None = None
    version: int = 0
    writes: int = 0

    def signature(self) -> object | None:
        return self.version if self.stored else None

    def read(self) -> StoredToken | None:
        return self.stored

    def write(self, token: str, expire_in: float) -> None:
        self.stored = StoredToken(token, expire_in)
        self.version += 1
        self.writes += 1

    def replace(self, token: str, expire_in: float) -> None:  # another process refreshed
        self.write(token, expire_in)


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def envelope(data: Any = None, code: int = 0, msg: str = "success") -> Reply:
    body = json.dumps({"trace_id": "t" * 32, "code": code, "msg": msg, "data": data}).encode()
    return Reply(200, httpx.Headers({"content-type": "application/json"}), body, None, 1.7e9)


def http(status: int, body: bytes = b"<html>bad gateway</html>", ctype: str = "text/html") -> Reply:
    return Reply(status, httpx.Headers({"content-type": ctype}), body, None, 1.7e9)


def neterr(kind: type[httpx.RequestError] = httpx.ReadTimeout) -> Reply:
    return Reply.failed(kind("boom"), 1.7e9)


@dataclass
class Recorder:
    """Runs a flow; answers Sends with ``answer(send)``, advances the fake clock on Sleeps."""

    clock: FakeClock
    answer: Callable[[Send], Reply]
    sends: list[Send] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    locks: int = 0

    def run(self, flow: Any) -> Any:
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = flow.throw(error) if error else flow.send(value)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            if isinstance(effect, Send):
                self.sends.append(effect)
                value = self.answer(effect)
            elif isinstance(effect, Sleep):
                self.sleeps.append(effect.seconds)
                self.clock.now += effect.seconds
            elif isinstance(effect, WithStoreLock):
                self.locks += 1
                try:
                    value = self.run(effect.flow)
                except Exception as e:
                    error = e
            else:
                raise AssertionError(effect)

    def paths(self) -> list[str]:
        return [s.endpoint for s in self.sends]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(StoredToken("tok-1", 1.7e9 + 86400))


@pytest.fixture
def ctx(store: MemoryStore, clock: FakeClock) -> Context:
    return Context(
        base_url="https://api.test",
        app_id="app",
        secret_key="s3cret-key-value",
        store=store,
        clock=clock,
        wall=lambda: 1.7e9,
        rng=random.Random(7),
        retry=RetryPolicy(max_retries=4),
    )


def copy_renderer() -> Any:
    """The renderer for client tests: the output is the driving video itself (fast, no
    decoding)."""
    from chanjing_avatar.render.base import VoiceInfo
    from fake_renderer import FakeRenderer

    return FakeRenderer([
        VoiceInfo(id="a" * 32, name="Xiaoyun", gender="female", lang="zh"),
        VoiceInfo(id="b" * 32, name="Ethan", gender="male", lang="en"),
        VoiceInfo(id="c" * 32, name="Mei", gender="female", lang="zh-TW"),
    ], name="copy", steps=1, step_s=0.0)
