"""docs/sandbox.md's set-up for scripts runs as written, with only what this repository ships."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _setup_block() -> str:
    text = (ROOT / "docs" / "sandbox.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return next(b for b in blocks if "CHANJING_OPENAPI_CREDENTIALS_DIR" in b)


def test_the_documented_setup_runs(copy_sandbox: Any, tmp_path: Path) -> None:
    script = (_setup_block().replace("<base url>", copy_sandbox.base_url)
              .replace("<app_id>", copy_sandbox.app_id)
              .replace("<secret_key>", copy_sandbox.secret_key))
    # The set-up's exports, then this repository's own seed script, in one shell.
    script += f'\n{sys.executable} {ROOT}/skills/chanjing-avatar/scripts/poll_task --help\n'
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANJING_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(tmp_path / "home")
    run = subprocess.run(["bash", "-eu", "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    stored = json.loads((tmp_path / ".sandbox-creds" / "credentials.json").read_text())
    assert stored["app_id"] == copy_sandbox.app_id
    assert stored["secret_key"] == copy_sandbox.secret_key
    assert not (tmp_path / "home" / ".chanjing").exists()  # the real folder is left alone
