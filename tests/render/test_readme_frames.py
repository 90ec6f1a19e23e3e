"""scripts/readme_frames.py leaves the checkout alone unless told where to write."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mediapipe")

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "readme_frames.py"


def _status() -> str:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        return ""
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                          capture_output=True, text=True, cwd=REPO).stdout


def test_a_trial_run_writes_its_sheet_outside_the_checkout() -> None:
    before = _status()
    r = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                       timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _status() == before  # nothing new or changed in docs/img or anywhere else
    written = Path(r.stdout.strip().splitlines()[-1].removeprefix("wrote "))
    try:
        assert not written.resolve().is_relative_to(REPO)
        # The sheet alone: the single crops only with --crops.
        assert [p.name for p in written.iterdir()] == ["lipsync-frames.jpg"]
        assert (written / "lipsync-frames.jpg").stat().st_size > 10_000
    finally:
        shutil.rmtree(written, ignore_errors=True)
