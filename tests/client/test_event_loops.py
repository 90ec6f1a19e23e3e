"""One AsyncClient used from several event loops (``asyncio.run`` twice, two loops in two
threads) works in each, against the embedded sandbox; run in a child process so a hang fails
the test instead of stalling the suite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sandbox = pytest.importorskip("chanjing_avatar.sandbox")
WORKER = Path(__file__).with_name("loops_worker.py")


def test_async_client_across_event_loops_never_fails_or_hangs(
    sandbox: Any, tmp_path: Path
) -> None:
    try:
        done = subprocess.run(
            [sys.executable, str(WORKER), sandbox.app_id, sandbox.secret_key, sandbox.base_url,
             str(tmp_path / "cred")],
            capture_output=True, text=True, timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("an AsyncClient used from a second event loop hung")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    # Four asyncio.run in a row, then two loops at once in two threads: all six work.
    assert report == {"ok": 6, "errors": []}
    assert sandbox.admin.count("lipsync_list") == 6 * 4
