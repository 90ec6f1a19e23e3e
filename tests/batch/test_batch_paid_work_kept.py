"""``chanjing-avatar batch`` never loses or repeats paid work when its folder goes wrong: the
output folder deleted mid-run, a new journal on an account with tasks it does not know, a full
disk, SIGTERM. Journal and report are the owner's alone and hold no callback token.

Real CLI processes against the embedded sandbox; real signals; a real tmpfs (root only, skipped
with the reason otherwise).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from chanjing_avatar.sandbox import Sandbox

from .support import fast_renderer, sandbox_config, write_manifest

pytestmark = pytest.mark.timeout(180)

CLI = [sys.executable, "-m", "chanjing_avatar"]
ROWS = 10  # the documented 10 creates a minute, which the command keeps: all at once


def _env(sb: Sandbox, tmp: Path) -> dict[str, str]:
    return {**os.environ, "CHANJING_APP_ID": sb.app_id, "CHANJING_SECRET_KEY": sb.secret_key,
            "CHANJING_OPENAPI_CREDENTIALS_DIR": str(tmp / "cred"),
            "CHANJING_OPENAPI_BASE_URL": sb.base_url}


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _args(manifest: Path, out: Path, *extra: str) -> list[str]:
    return [*CLI, "batch", str(manifest), "-o", str(out), "--no-live", "--poll-interval", "0.2",
            "--settle", "2", *extra]


def _clean(stderr: str) -> None:
    assert "Traceback" not in stderr and "ExceptionGroup" not in stderr, stderr


def _report(out: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((out / "batch-report.json").read_text())
    return data


def test_deleting_the_output_folder_mid_run_stops_and_the_rerun_pays_nothing_twice(
        tmp_path: Path) -> None:
    with Sandbox(sandbox_config(tmp_path / "sb", render_s=1.5)) as sb:
        manifest = write_manifest(tmp_path / "in", ROWS, videos=1)
        out = tmp_path / "out"
        env = _env(sb, tmp_path)
        proc = subprocess.Popen(_args(manifest, out), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)
        deadline = time.monotonic() + 60
        while len(list(out.glob("row*.mp4"))) < 2:
            assert time.monotonic() < deadline and proc.poll() is None, "no video came"
            time.sleep(0.05)
        shutil.rmtree(out, ignore_errors=True)
        _, stderr = proc.communicate(timeout=90)
        _clean(stderr)
        assert proc.returncode == 1, stderr
        assert "was deleted while the batch ran" in stderr, stderr
        made = {t["id"] for t in sb.admin.tasks()}
        assert len(made) == ROWS
        # The journal's state was written back: the same command finishes without paying again.
        p = subprocess.run(_args(manifest, out), env=env, capture_output=True, text=True,
                           timeout=120)
        _clean(p.stderr)
        assert p.returncode == 0, p.stderr
        assert {t["id"] for t in sb.admin.tasks()} == made
        report = _report(out)
        assert report["counts"] == {"done": ROWS}
        for row in report["rows"]:  # type: ignore[attr-defined]
            assert Path(row["output"]).stat().st_size == row["bytes"]


def test_a_new_journal_does_not_create_blindly_over_recent_unknown_tasks(tmp_path: Path) -> None:
    with Sandbox(sandbox_config(tmp_path / "sb", render_s=0.1)) as sb:
        manifest = write_manifest(tmp_path / "in", 3, videos=1)
        out = tmp_path / "out"
        env = _env(sb, tmp_path)
        p = subprocess.run(_args(manifest, out), env=env, capture_output=True, text=True,
                           timeout=90)
        assert p.returncode == 0, p.stderr
        made = {t["id"] for t in sb.admin.tasks()}
        shutil.rmtree(out)  # the journal is gone; the account still has its 3 tasks
        p = subprocess.run(_args(manifest, out), env=env, capture_output=True, text=True,
                           timeout=90)
        _clean(p.stderr)
        assert p.returncode == 5, p.stderr
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "--resolve '*=new'" in lines[0], lines
        assert {t["id"] for t in sb.admin.tasks()} == made  # nothing created
        # The user decides: one row adopts its old task, the others are made anew.
        old = sorted(made)[0]
        p = subprocess.run(_args(manifest, out, "--resolve", f"row000={old}", "--resolve",
                                 "*=new"), env=env, capture_output=True, text=True, timeout=90)
        assert p.returncode == 0, p.stderr
        assert len({t["id"] for t in sb.admin.tasks()} - made) == 2
        rows = {r["id"]: r for r in _report(out)["rows"]}  # type: ignore[attr-defined]
        assert rows["row000"]["task_id"] == old


def _tmpfs(where: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"mount -t tmpfs refused: {p.stderr.strip()}")


def test_a_full_disk_fails_its_rows_with_a_reason_and_retry_pays_nothing_more(
        tmp_path: Path) -> None:
    out = tmp_path / "out"
    _tmpfs(out, "2m")  # room for the journal and a few of the ten 512 KiB videos
    try:
        config = replace(sandbox_config(tmp_path / "sb", render_s=0.2),
                         renderer=fast_renderer(0.2, 512 * 1024))
        with Sandbox(config) as sb:
            manifest = write_manifest(tmp_path / "in", ROWS, videos=1)
            env = _env(sb, tmp_path)
            p = subprocess.run(_args(manifest, out), env=env, capture_output=True, text=True,
                               timeout=120)
            _clean(p.stderr)
            assert p.returncode == 1, p.stderr
            lines = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
            assert len(lines) == 1 and "--retry-failed" in lines[0], p.stderr
            report = _report(out)
            assert stat.S_IMODE((out / "batch-report.json").stat().st_mode) == 0o600
            failed = [r for r in report["rows"] if r["state"] == "failed"]  # type: ignore[attr-defined]
            assert failed, report
            for row in failed:
                assert row["failure"].startswith(f"disk full at {out}"), row
                assert "\n" not in row["failure"]
            made = {t["id"] for t in sb.admin.tasks()}
            assert len(made) == ROWS
            # Room again: the failed downloads are fetched; no task is made twice.
            subprocess.run(["mount", "-o", "remount,size=64m", str(out)], check=True)
            p = subprocess.run(_args(manifest, out, "--retry-failed"), env=env,
                               capture_output=True, text=True, timeout=120)
            assert p.returncode == 0, p.stderr
            assert {t["id"] for t in sb.admin.tasks()} == made
            assert _report(out)["counts"] == {"done": ROWS}
    finally:
        subprocess.run(["umount", "-l", str(out)], capture_output=True)


def test_sigterm_stops_creating_and_prints_how_to_resume(tmp_path: Path) -> None:
    with Sandbox(sandbox_config(tmp_path / "sb", rate_limits_enabled=False)) as sb:
        manifest = write_manifest(tmp_path / "in", 12, videos=1)  # row 11 waits for its slot
        out = tmp_path / "out"
        env = _env(sb, tmp_path)
        proc = subprocess.Popen(_args(manifest, out), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)
        deadline = time.monotonic() + 60
        while len(sb.admin.tasks()) < 10:
            assert time.monotonic() < deadline and proc.poll() is None, "creates never came"
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        _clean(stderr)
        assert proc.returncode == 130, (proc.returncode, stderr)
        assert "resume with: chanjing-avatar batch" in stderr, stderr
        report = _report(out)
        assert report["counts"].get("pending", 0) == 2  # type: ignore[attr-defined]
        known = [r["task_id"] for r in report["rows"] if r["task_id"]]  # type: ignore[attr-defined]
        assert len(known) == 10 == len(sb.admin.tasks())


def test_journal_and_report_are_private_and_hold_no_callback_token(tmp_path: Path) -> None:
    with Sandbox(sandbox_config(tmp_path / "sb", render_s=0.1)) as sb:
        manifest = write_manifest(tmp_path / "in", 2, videos=1)
        out = tmp_path / "out"
        token = "cbtoken-" + "7" * 24
        p = subprocess.run(_args(manifest, out, "--callback-url",
                                 f"http://127.0.0.1:9/hook?token={token}"),
                           env=_env(sb, tmp_path), capture_output=True, text=True, timeout=90)
        assert p.returncode == 0, p.stderr
        assert token not in p.stdout + p.stderr
        for name in ("batch-journal.sqlite", "batch-journal.sqlite-wal", "batch-report.json"):
            path = out / name
            if not path.exists():
                continue
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
            assert token.encode() not in path.read_bytes(), name
