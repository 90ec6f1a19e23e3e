"""bench/client_upload.py leaves no test file behind: after a run, after SIGTERM, after Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "client_upload.py"


@pytest.fixture(autouse=True)
def _needs() -> None:
    pytest.importorskip("chanjing_avatar.sandbox", reason="needs the sandbox extra")
    if shutil.which("curl") is None:
        pytest.skip("needs curl (the benchmark's reference)")


def _bench(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    return subprocess.Popen(
        [sys.executable, str(BENCH), "--out", str(tmp_path / "out.json"), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # default signal handling, however the suite itself was started
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _left(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "tmp").rglob("*") if p.is_file()]


def test_a_finished_run_deletes_its_file(tmp_path: Path) -> None:
    proc = _bench(tmp_path, "--size-mib", "1", "--rounds", "1")
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert "x curl's throughput" in out
    assert _left(tmp_path) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_run_deletes_its_file(tmp_path: Path, sig: signal.Signals) -> None:
    proc = _bench(tmp_path, "--size-mib", "256", "--rounds", "3")
    try:
        deadline = time.monotonic() + 120
        while not any(p.suffix == ".mp4" for p in _left(tmp_path)):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the benchmark never wrote its file"
            time.sleep(0.05)
        time.sleep(0.5)  # writing it, or already uploading it
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert _left(tmp_path) == []
