"""``chanjing-avatar batch`` end to end: manifest errors, a run, Ctrl-C and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chanjing_avatar.batch.journal import UNRESOLVED_CREATE, Journal, RowState
from chanjing_avatar.sandbox import Sandbox

from .support import sandbox_config, write_manifest

pytestmark = pytest.mark.timeout(120)

CLI = [sys.executable, "-m", "chanjing_avatar"]


def _env(sb: Sandbox, tmp: Path) -> dict[str, str]:
    return {**os.environ, "CHANJING_APP_ID": sb.app_id, "CHANJING_SECRET_KEY": sb.secret_key,
            "CHANJING_OPENAPI_CREDENTIALS_DIR": str(tmp / "cred"),
            "CHANJING_OPENAPI_BASE_URL": sb.base_url}


def test_manifest_errors_listed_before_anything_is_sent(tmp_path: Path) -> None:
    with Sandbox(sandbox_config(tmp_path / "sb")) as sb:
        bad = tmp_path / "bad.csv"
        bad.write_text("id,video,text,voice\nx,nope.mp4,hi,v\nx,nope2.mp4,,\n")
        p = subprocess.run([*CLI, "batch", str(bad), "-o", str(tmp_path / "out")],
                           env=_env(sb, tmp_path), capture_output=True, text=True, timeout=60)
        assert p.returncode == 2
        assert "line 2" in p.stderr and "line 3" in p.stderr and "duplicate id" in p.stderr
        assert sb.admin.count() == 0  # not even a token was asked for


def test_ctrl_c_stops_creating_and_prints_how_to_resume(tmp_path: Path) -> None:
    # The CLI's client keeps the documented 10 creates a minute: row 11 waits for its slot.
    with Sandbox(sandbox_config(tmp_path / "sb", rate_limits_enabled=False)) as sb:
        manifest = write_manifest(tmp_path / "in", 12, videos=1)
        out = tmp_path / "out"
        args = [*CLI, "batch", str(manifest), "-o", str(out), "--poll-interval", "0.2",
                "--settle", "2"]
        env = _env(sb, tmp_path)
        proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if len(sb.admin.tasks()) >= 10:
                break
        time.sleep(0.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        assert time.monotonic() - started < 10  # no waiting for the rate-limit slot
        assert proc.returncode == 130, stderr
        assert "resume with: chanjing-avatar batch" in stderr
        report = json.loads((out / "batch-report.json").read_text())
        assert report["counts"].get("pending", 0) == 2
        assert len(sb.admin.tasks()) == 10
        with Journal(out / "batch-journal.sqlite") as j:
            assert not [r for r in j.rows() if r.state in UNRESOLVED_CREATE]
        # Resume with the same command: everything finishes, nothing twice.
        p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert len(sb.admin.tasks()) == 12
        with Journal(out / "batch-journal.sqlite") as j:
            assert all(r.state == RowState.DONE for r in j.rows())


def test_callback_listen_alone_sends_the_listen_address(tmp_path: Path) -> None:
    with Sandbox(sandbox_config(tmp_path / "sb")) as sb:
        manifest = write_manifest(tmp_path / "in", 2, videos=1)
        out = tmp_path / "out"
        # A wildcard address says nothing about where the API can reach it: exit 2, no request.
        p = subprocess.run([*CLI, "batch", str(manifest), "-o", str(out), "--no-live",
                            "--callback-listen", "0.0.0.0:0"],
                           env=_env(sb, tmp_path), capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and "--callback-url" in p.stderr, p.stderr
        assert sb.admin.count() == 0
        # Without --callback-url the creates carry the receiver's own address, as make's do.
        p = subprocess.run([*CLI, "batch", str(manifest), "-o", str(out), "--no-live",
                            "--callback-listen", "0"],
                           env=_env(sb, tmp_path), capture_output=True, text=True, timeout=90)
        assert p.returncode == 0, p.stderr
        tasks = sb.admin.tasks()
        records = [sb.store.get_task(t["id"]) for t in tasks]
        urls = {r.callback for r in records if r is not None}
        assert len(tasks) == 2 and len(urls) == 1, tasks
        url = str(urls.pop())
        assert url.startswith("http://127.0.0.1:") and not url.startswith("http://127.0.0.1:0/")
        # The API is on this machine too: no warning about a loopback URL.
        assert "cannot reach" not in p.stderr
