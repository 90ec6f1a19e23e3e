"""MCP tests: the INSTALLED ``chanjing-avatar mcp`` driven by the ``mcp`` SDK's own client, over
stdio and over HTTP, against a sandbox in this process (passthrough renderer)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the mcp extra is not installed")

from mcp_support import McpEnv


@pytest.fixture(scope="module")
def mcp_env(
    tmp_path_factory: pytest.TempPathFactory,
    test_sandbox_config: Callable[..., Any],
    tiny_video: Path,
    tiny_audio: Path,
) -> Iterator[McpEnv]:
    """One sandbox for a module's tests (each test starts its own server and home)."""
    from chanjing_avatar.sandbox import Sandbox

    root = tmp_path_factory.mktemp("mcp")
    with Sandbox(test_sandbox_config(root / "sandbox", task_min_duration_s=1.5)) as sb:
        yield McpEnv(sb=sb, root=root, video=tiny_video, audio=tiny_audio)


@pytest.fixture
def env(mcp_env: McpEnv) -> Iterator[McpEnv]:
    yield mcp_env
    mcp_env.sb.admin.clear_faults()
