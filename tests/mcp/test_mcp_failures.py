"""Bad or missing credentials and an unreachable API: each call is a one-line tool error that
says what to fix, and nothing secret shows."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from mcp_support import CLI, McpEnv, call, free_port, one_line


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_wrong_secret_key(env: McpEnv) -> None:
    home = env.home("bad-key")
    wrong = "W" * 32
    env.app_secrets.add(wrong)
    async with env.stdio(home, env=env.environ(home, CHANJING_SECRET_KEY=wrong)) as (client, _):
        msg = one_line(await call(env, client, "list_voices", {}))
        assert "authentication failed" in msg and "secret key" in msg, msg
        msg = one_line(await call(env, client, "create_lipsync", {
            "video": str(env.video), "text": "你好", "voice_id": "x" * 32}))
        assert "authentication failed" in msg, msg


@pytest.mark.anyio
async def test_missing_credentials_then_unreachable_api(env: McpEnv) -> None:
    home = env.home("no-key")
    environ = env.environ(home, CHANJING_APP_ID=None, CHANJING_SECRET_KEY=None)
    async with env.stdio(home, env=environ) as (client, _):
        msg = one_line(await call(env, client, "get_lipsync", {"task_id": "a" * 32}))
        assert "app_id" in msg and "auth set" in msg, msg

    home = env.home("unreachable")
    dead = f"http://127.0.0.1:{free_port()}"
    environ = env.environ(home, CHANJING_OPENAPI_BASE_URL=dead)
    async with env.stdio(home, env=environ) as (client, _):
        msg = one_line(await call(env, client, "list_lipsyncs", {}))
        assert dead in msg and "network" in msg, msg


def test_http_port_in_use_is_a_usage_error(env: McpEnv) -> None:
    home = env.home("port-busy")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([str(CLI), "mcp", "--http", "--port", str(port)],
                           capture_output=True, text=True, timeout=120,
                           env=env.environ(home), cwd=home)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use; choose another "
        "--host/--port"]


def test_missing_extra_says_how_to_install(env: McpEnv, tmp_path: Path) -> None:
    # An ``mcp`` package that fails to import, ahead of the real one.
    shadow = tmp_path / "shadow" / "mcp"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'mcp'\", name='mcp')\n")
    home = env.home("no-extra")
    r = subprocess.run([str(CLI), "mcp"], capture_output=True, text=True, timeout=120,
                       env=env.environ(home, PYTHONPATH=str(shadow.parent)), cwd=home,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    assert "pip install 'chanjing-avatar[mcp]'" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
