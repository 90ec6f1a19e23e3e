"""The admin endpoints take the token printed at start, on a Host of this sandbox; --admin off
loopback needs an explicit flag; the data folder is 0700 and its database 0600."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from chanjing_avatar.sandbox import Sandbox, SandboxConfig

from .api import Api
from .conftest import Factory


def test_admin_needs_the_token(api: Api) -> None:
    url = api.sb.base_url + "/_sandbox/tokens/invalidate"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": api.sb.admin_token}):
        answer = httpx.post(url, json={}, headers=headers)
        assert answer.status_code == 401, (headers, answer.text)
        assert "admin token" in answer.json()["error"]
    # Nobody's token was invalidated by those attempts.
    assert api.post("/open/v1/video_lip_sync/list", {})["code"] == 0
    # The embedded helper carries the token.
    assert api.sb.admin.invalidate_tokens() == 1
    assert api.sb.admin_token not in repr(api.sb.admin)


def test_admin_checks_the_host_header(api: Api) -> None:
    auth = {"Authorization": f"Bearer {api.sb.admin_token}"}
    stats = api.sb.base_url + "/_sandbox/stats"
    rebound = httpx.get(stats, headers={**auth, "Host": "attacker.example:8848"})
    assert rebound.status_code == 403
    assert "Host" in rebound.json()["error"]
    for host in ("localhost:1", "127.0.0.1", "[::1]:8848"):
        assert httpx.get(stats, headers={**auth, "Host": host}).status_code == 200, host


def test_admin_on_a_non_loopback_host_must_be_allowed(
    tmp_path: Path, test_sandbox_config: Callable[..., SandboxConfig]
) -> None:
    with pytest.raises(ValueError, match="admin_remote"):
        Sandbox(test_sandbox_config(tmp_path / "sb", host="0.0.0.0"))
    cli = [sys.executable, "-m", "chanjing_avatar", "sandbox", "serve", "--admin"]
    refused = subprocess.run(
        [*cli, "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2, refused.stderr
    assert "--admin-remote" in refused.stderr and "Traceback" not in refused.stderr


def test_admin_remote_warns_and_prints_the_token(tmp_path: Path) -> None:
    """Bound to every interface inside a fresh network namespace (only its own loopback)."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare for a private network namespace")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace: {probe.stderr.decode().strip()}")
    script = (
        "ip link set lo up 2>/dev/null || true; exec "
        f"{sys.executable} -m chanjing_avatar sandbox serve --admin --admin-remote "
        f"--host 0.0.0.0 --port 0 --renderer passthrough --json --data-dir {tmp_path / 'd'}"
    )
    proc = subprocess.Popen(
        ["unshare", "-n", "sh", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert len(info["admin_token"]) >= 16
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
    assert "warning: admin endpoints reachable from other machines" in err


def test_data_folder_and_database_are_private(tmp_path: Path, sandbox_factory: Factory) -> None:
    old = os.umask(0o022)
    try:
        data = tmp_path / "fresh" / "sandbox"
        sb = sandbox_factory(data_dir=data)
        Api(sb).login()  # a write, so the WAL exists
    finally:
        os.umask(old)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in data.glob("sandbox.db*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # An existing folder left open by an older version is narrowed.
    sb.stop()
    data.chmod(0o755)
    (data / "sandbox.db").chmod(0o644)
    sandbox_factory(data_dir=data)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "sandbox.db").stat().st_mode) == 0o600
