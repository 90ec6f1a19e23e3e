from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .drivers import make_client  # noqa: F401 - fixture
from .fakes import clock, copy_renderer, ctx, store  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def copy_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A sandbox whose renderer copies the driving video (admin on, roomy limits); skipped
    when the sandbox extra is not installed."""
    sandbox = pytest.importorskip("chanjing_avatar.sandbox",
                                  reason="needs the sandbox extra (pip install -e .[sandbox])")
    cfg = sandbox.SandboxConfig(data_dir=tmp_path_factory.mktemp("sandbox"), admin=True,
                                renderer=copy_renderer(), rate_limit_scale=100,
                                file_sync_delay_s=0.05)
    with sandbox.Sandbox(cfg) as server:
        yield server


@pytest.fixture
def admin(copy_sandbox: Any) -> Iterator[Any]:
    copy_sandbox.admin.clear_faults()
    copy_sandbox.admin.reset_stats()
    yield copy_sandbox.admin
    copy_sandbox.admin.clear_faults()


@pytest.fixture(scope="module")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from media_maker import make_video

    pytest.importorskip("av", reason="needs PyAV (the sandbox extra) to make a test video")
    return make_video(tmp_path_factory.mktemp("media") / "face.mp4", 240, 320, fps=10)
