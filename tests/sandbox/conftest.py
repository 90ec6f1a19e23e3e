"""Fixtures of the sandbox's own tests: a stub renderer so server behaviour tests stay fast.

Every test that starts a sandbox runs twice: on the embedded server, and on a deployment of API
replicas and workers behind a load balancer (``deployed.py``; skipped with the reason where the
machine cannot give PostgreSQL, S3 or nginx).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chanjing_avatar.sandbox import Sandbox

from .api import Api
from .stub import VOICES, FakeRenderer, stub_renderer

VOICE = VOICES[0].id
Factory = Callable[..., Sandbox]
TARGETS = ("embedded", "deployment")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sandbox_factory" in metafunc.fixturenames:
        metafunc.parametrize("sandbox_target", TARGETS)


@pytest.fixture(scope="session")
def deployments(request: pytest.FixtureRequest) -> Iterator[Any]:
    from .deployed import deployments_or_skip

    yield from deployments_or_skip(request)


@pytest.fixture
def sandbox_factory(
    sandbox_factory: Factory, sandbox_target: str, request: pytest.FixtureRequest
) -> Iterator[Factory]:
    """The embedded factory, or sandboxes on a shared deployment (a fresh app each)."""
    if sandbox_target == "embedded":
        yield sandbox_factory
        return
    pool = request.getfixturevalue("deployments")
    started: list[Any] = []

    def factory(**overrides: Any) -> Any:
        sb = pool.sandbox(overrides)
        started.append(sb)
        return sb

    yield factory
    for sb in started:
        sb.stop()


@pytest.fixture
def stub(sandbox_target: str) -> FakeRenderer:
    if sandbox_target == "deployment":
        from .deployed import RemoteStub

        return RemoteStub()  # type: ignore[return-value]
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
