"""SIGKILL the runner at many points, resume each time: no task twice, no output lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chanjing_avatar.batch.journal import RowState
from chanjing_avatar.sandbox import Sandbox

from .support import limits, sandbox_config, write_manifest
from .test_batch_sandbox import check_exactly_once

pytestmark = pytest.mark.timeout(280)

CHILD = Path(__file__).with_name("kill_child.py")


def K(method: str, when: str = "after", n: int = 1, **kw: Any) -> dict[str, Any]:
    return {"method": method, "when": when, "n": n, **kw}


# (kill point, fault to arm on create first)
PLAN: list[tuple[dict[str, Any], list[str] | None]] = [
    (K("sync_manifest"), None),
    (K("upload_intended"), None),
    (K("upload_done", "before"), None),  # uploaded, not journalled: uploaded again
    (K("upload_done"), None),
    (K("create_intended"), None),  # intended, never sent
    (K("create_sent"), None),  # about to send
    (K("created", "before"), None),  # answered, not journalled: must be adopted
    (K("created"), None),
    (K("create_sent", "timer", delay=0.3), ["delay:0.8"]),  # in flight; server creates later
    (K("outcome_unknown"), ["502"]),  # unknown outcome journalled, not reconciled
    (K("reconciled", "before"), None),
    (K("outcome_unknown"), ["drop"]),  # the server did create this one
    (K("reconciled"), None),
    (K("task_succeeded"), None),
    (K("download_intended"), None),
    (K("downloaded", "before"), None),  # file in place, not journalled
    (K("downloaded"), None),
    (K("task_seen", n=2), None),
    (K("created", n=3), None),
    (K("create_sent", "before", n=2), None),
    (K("created", "before", n=2), None),
    ({"at": 0.9}, None),
    ({"at": 1.6}, None),
    ({"at": 2.3}, None),
    (K("create_intended", n=2), None),
    (K("created", "before"), None),
    (K("download_intended", "before", n=2), None),
]


def test_sigkill_anywhere_then_resume(tmp_path: Path) -> None:
    with Sandbox(sandbox_config(tmp_path / "sb", create_per_s=3, burst=1,
                                render_s=0.3)) as sb:
        manifest = write_manifest(tmp_path / "in", 30, videos=2, audio_every=9)
        outdir = tmp_path / "out"
        base = {
            "base_url": sb.base_url, "app_id": sb.app_id, "secret_key": sb.secret_key,
            "credentials_dir": str(tmp_path / "cred"), "manifest": str(manifest),
            "outdir": str(outdir),
            "limits": {k: [v.count, v.period_s] for k, v in limits(3, 1).items()},
        }
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}

        def run(kill: dict[str, Any] | None) -> int:
            proc = subprocess.run(
                [sys.executable, str(CHILD), json.dumps({**base, "kill": kill})],
                env=env, capture_output=True, text=True, timeout=120,
            )
            if proc.returncode not in (0, -9):
                raise AssertionError(proc.stderr[-3000:])
            return proc.returncode

        killed = []
        for kill, fault in PLAN:
            if fault:
                sb.admin.clear_faults()
                sb.admin.add_fault("lipsync_create", sequence=list(fault))
            if run(kill) == -9:
                killed.append(kill)
        sb.admin.clear_faults()
        assert len(killed) >= 20, f"only {len(killed)} kills hit: {killed}"
        assert run(None) == 0

        j = check_exactly_once(sb, outdir / "batch-journal.sqlite", outdir)
        assert all(r.state == RowState.DONE for r in j.rows())
        assert len(sb.admin.tasks()) == 30
        decisions = [e["detail"] for e in j.events(kind="reconcile")]
        kinds = {d["decision"] for d in decisions}
        # Both ways happened and were recorded: adopted (the server had it) and recreated.
        print(len(killed), "kills;", [(d["decision"], d.get("reason", "")[:40]) for d in decisions])
        assert "adopted" in kinds and "recreate" in kinds, decisions
