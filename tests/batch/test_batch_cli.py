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


@pytest.mark.parametrize(("value", "says"), [
    ("zz", "expected ROW=TASK_ID or ROW=new"),
    ("zz=new", "the manifest has no row zz"),
    ("*=t1", "only '*=new' applies to every row"),
    ("row000=new", "row row000 has no create to settle"),
])
def test_a_bad_resolve_value_is_one_line_and_writes_nothing(tmp_path: Path, value: str,
                                                             says: str) -> None:
    with Sandbox(sandbox_config(tmp_path / "sb")) as sb:
        manifest = write_manifest(tmp_path / "in", 2, videos=1)
        out = tmp_path / "out"
        p = subprocess.run([*CLI, "batch", str(manifest), "-o", str(out), "--resolve", value],
                           env=_env(sb, tmp_path), capture_output=True, text=True, timeout=60)
        assert p.returncode == 2, p.stderr
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --resolve "), p.stderr
        assert says in lines[0], lines[0]
        assert not out.exists()  # no journal, not even the folder
        assert sb.admin.count() == 0


def test_undecidable_rows_name_their_candidates_and_a_command_that_exists(
        tmp_path: Path) -> None:
    from chanjing_avatar.batch.manifest import load_manifest
    from chanjing_avatar.batch.reconcile import Listed, decide

    with Sandbox(sandbox_config(tmp_path / "sb", render_s=0.1)) as sb:
        manifest = write_manifest(tmp_path / "in", 2, videos=1)
        out = tmp_path / "out"
        out.mkdir()
        # row000's create was lost, and two foreign tasks landed in its window.
        t = time.time() - 600
        decision = decide(intent_at=t, outcome_at=t + 1, now=time.time(), claimed=set(),
                          listed=[Listed("cand-one", t + 2), Listed("cand-two", t + 3)],
                          settle=5)
        assert decision.kind == "undecidable"
        with Journal(out / "batch-journal.sqlite") as j:
            j.sync_manifest(load_manifest(manifest))
            j.create_intended("row000", t, {})
            j.outcome_unknown("row000", t, t + 1, "timed out")
            j.reconciled("row000", "undecidable", reason=decision.reason,
                         candidates=list(decision.candidates), nearby=list(decision.nearby))
        # In a pipe, as the other commands: one tab-separated line per row.
        p = subprocess.run([*CLI, "batch", str(manifest), "-o", str(out), "--poll-interval",
                            "0.2"], env=_env(sb, tmp_path), capture_output=True, text=True,
                           timeout=90)
        assert p.returncode == 5, p.stderr
        lines = p.stdout.splitlines()
        fields = [line.split("\t") for line in lines]
        assert [f[:2] for f in fields] == [["row000", "undecidable"], ["row001", "done"]], lines
        assert all(len(f) == 4 for f in fields), lines
        assert "cand-one, cand-two" in fields[0][3]
        assert fields[1][3] == str(out / "row001.mp4")
        # The error line names the candidates and how to settle the row with this command.
        (error,) = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
        assert "row000 (candidates: cand-one, cand-two)" in error, error
        assert "chanjing-avatar batch" in error and "--resolve row000=TASK_ID" in error, error
        assert "batch resolve" not in p.stdout + p.stderr
        report = json.loads((out / "batch-report.json").read_text())
        rows = {r["id"]: r for r in report["rows"]}
        assert rows["row000"]["candidates"] == ["cand-one", "cand-two"]
        assert "--resolve ROW=TASK_ID" in rows["row000"]["failure"]
        # Settled as the hint says (here: create it anew), the same command finishes.
        p = subprocess.run([*CLI, "batch", str(manifest), "-o", str(out), "--resolve",
                            "row000=new"], env=_env(sb, tmp_path), capture_output=True,
                           text=True, timeout=90)
        assert p.returncode == 0, p.stderr
        assert len(sb.admin.tasks()) == 2
