"""The background local sandbox that ``--local`` commands share: one per data folder.

Started by the first ``--local`` command (see ``_local.py``) as
``python -m chanjing_avatar.cli._local_server DATA_DIR IDLE_SECONDS``, in a session of its own so
that a Ctrl-C at the terminal does not stop it. It writes ``server.json`` (address and
credentials, 0600) once it listens, and stops by itself after ``IDLE_SECONDS`` without a request
and without a task in progress; ``chanjing-avatar local stop`` (SIGTERM) stops it sooner. It
removes ``server.json`` on the way out, and only its own.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..sandbox import Sandbox

STATE_FILE = "server.json"
ERROR_FILE = "server-error.txt"
ENV_LOCAL_RENDERER = "CHANJING_LOCAL_RENDERER"
_IDLE_CHECK_S = 1.0


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with a 0600 file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _state(sb: Sandbox, data_dir: Path, idle_s: float, renderer: str) -> dict[str, Any]:
    return {"pid": os.getpid(), "base_url": sb.base_url, "app_id": sb.app_id,
            "secret_key": sb.secret_key, "data_dir": str(data_dir), "idle_timeout": idle_s,
            "renderer": renderer, "started": time.time()}


def _watch_idle(sb: Sandbox, idle_s: float, stop: threading.Event) -> None:
    """SIGTERM to this process after ``idle_s`` with no request and nothing rendering."""
    last_count = -1
    last_active = time.monotonic()
    while not stop.wait(_IDLE_CHECK_S):
        count = sum(sb.stats.snapshot()["requests"].values())
        if count != last_count or sb.store.unfinished_tasks():
            last_count, last_active = count, time.monotonic()
        elif time.monotonic() - last_active >= idle_s:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def main(argv: list[str]) -> int:
    data_dir, idle_s = Path(argv[0]), float(argv[1])
    renderer = os.environ.get(ENV_LOCAL_RENDERER, "").strip() or "auto"
    state_path = data_dir / STATE_FILE
    try:
        from ..sandbox import Sandbox, SandboxConfig

        # Single-user and on loopback: callbacks go to the user's own receiver here.
        sb = Sandbox(SandboxConfig(data_dir=data_dir, renderer=renderer,
                                   callback_allow_private=True))
    except Exception as e:  # a missing package or model, an unknown renderer name
        write_private(data_dir / ERROR_FILE, f"{type(e).__name__}: {e}")
        return 1
    stop = threading.Event()

    def ready(sb: Sandbox) -> None:
        write_private(state_path, json.dumps(_state(sb, data_dir, idle_s, renderer)))
        threading.Thread(target=_watch_idle, args=(sb, idle_s, stop), name="local-idle",
                         daemon=True).start()

    # The server stops at SIGTERM and then raises it again with the handler it found: a no-op
    # here, so that the state file is removed below rather than the process killed first.
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        sb.serve(on_ready=ready)
    finally:
        stop.set()
        try:
            if json.loads(state_path.read_text(encoding="utf-8")).get("pid") == os.getpid():
                state_path.unlink()
        except (OSError, ValueError):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
