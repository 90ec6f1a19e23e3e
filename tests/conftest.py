"""Shared fixtures: an embedded sandbox on a temporary data dir, and tiny media to feed it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from media_maker import make_video, make_wav

if TYPE_CHECKING:
    from chanjing_avatar.sandbox import Sandbox, SandboxConfig
    from scale.services import Postgres, SeaweedS3

SandboxFactory = Callable[..., "Sandbox"]


def _sandbox_package() -> ModuleType:
    # A client-only install (no sandbox extra) skips what needs a sandbox, and runs the rest.
    return pytest.importorskip("chanjing_avatar.sandbox",
                               reason="needs the sandbox extra (pip install -e .[sandbox])")


def sandbox_config(data_dir: Path, **overrides: Any) -> SandboxConfig:
    """A config for tests: fast file sync, roomy rate limits, quick callback retries, admin on,
    callbacks to this machine allowed (the tests' receivers listen on loopback), and the
    passthrough renderer (fast, and it needs no face in the clip; pass
    ``renderer="auto"`` for the best available one)."""
    sandbox = _sandbox_package()
    base = sandbox.SandboxConfig(
        data_dir=data_dir,
        renderer="passthrough",
        file_sync_delay_s=0.05,
        rate_limit_scale=100.0,
        callback=sandbox.CallbackPolicy(attempts=4, backoff_s=0.05, factor=2.0, timeout_s=2.0),
        admin=True,
        callback_allow_private=True,
    )
    return replace(base, **overrides)


@pytest.fixture(scope="session")
def test_sandbox_config() -> Callable[..., SandboxConfig]:
    """``sandbox_config`` as a fixture, for module- or session-scoped sandboxes."""
    return sandbox_config


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator[SandboxFactory]:
    """Start sandboxes with ``factory(**SandboxConfig overrides)``; all are stopped afterwards.

    Calls share ``tmp_path / "sandbox"`` unless given a ``data_dir`` (None: a fresh one), so
    stopping one and starting another restarts the same server state.
    """
    started: list[Sandbox] = []

    def factory(**overrides: Any) -> Sandbox:
        data_dir = overrides.pop("data_dir", tmp_path / "sandbox")
        if data_dir is None:
            data_dir = tmp_path / f"sandbox-{len(started)}"
        sb = _sandbox_package().Sandbox(sandbox_config(data_dir, **overrides)).start()
        started.append(sb)
        return sb

    yield factory
    for sb in reversed(started):
        sb.stop()


@pytest.fixture
def sandbox(sandbox_factory: SandboxFactory) -> Sandbox:
    """A running embedded sandbox (see ``sandbox_config`` for its test settings)."""
    return sandbox_factory()


# One PostgreSQL and one SeaweedFS (S3) for the session, started on first use (tests/scale and
# the contract tests' deployment target); a machine that cannot give one skips with the reason.
@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    from scale.services import Postgres, why_not_postgres

    yield from _server(why_not_postgres(), Postgres.create)


@pytest.fixture(scope="session")
def s3() -> Iterator[SeaweedS3]:
    from scale.services import SeaweedS3, why_not_seaweedfs

    yield from _server(why_not_seaweedfs(), SeaweedS3.create)


def _server(why_not: str | None, create: Callable[[], Any]) -> Iterator[Any]:
    if why_not:
        pytest.skip(why_not)
    server = create()
    server.start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-second 64×64 mp4."""
    pytest.importorskip("av", reason="needs PyAV (the sandbox extra) to make a test video")
    return make_video(tmp_path_factory.mktemp("media") / "tiny.mp4")


@pytest.fixture(scope="session")
def tiny_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1.5-second WAV."""
    return make_wav(tmp_path_factory.mktemp("media") / "tiny.wav", seconds=1.5)
