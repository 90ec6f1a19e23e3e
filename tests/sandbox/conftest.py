"""Fixtures of the sandbox's own tests: a stub renderer so server behaviour tests stay fast."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from chanjing_avatar.sandbox import Sandbox

from .api import Api
from .stub import VOICES, FakeRenderer, stub_renderer

VOICE = VOICES[0].id
Factory = Callable[..., Sandbox]


@pytest.fixture
def stub() -> FakeRenderer:
    return stub_renderer()


@pytest.fixture
def stub_sandbox(sandbox_factory: Factory, stub: FakeRenderer) -> Sandbox:
    return sandbox_factory(renderer=stub)


@pytest.fixture
def api(stub_sandbox: Sandbox) -> Iterator[Api]:
    client = Api(stub_sandbox)
    client.login()
    yield client
    client.close()
