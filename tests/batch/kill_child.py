"""Child process for the SIGKILL test: runs the batch and kills itself at a chosen point.

argv: a JSON object with the sandbox address, paths, and ``kill``:
  {"method": "created", "when": "before"|"after", "n": 1}   at the n-th journal call
  {"method": "create_sent", "when": "timer", "n": 1, "delay": 0.25}   some time after it
  {"at": 1.2}   after that many seconds
  null          run to the end
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from chanjing_avatar import AsyncClient
from chanjing_avatar._config import RateLimits
from chanjing_avatar._wire import RateLimit
from chanjing_avatar.batch import journal as journal_mod
from chanjing_avatar.batch.manifest import load_manifest
from chanjing_avatar.batch.runner import BatchOptions, run_batch


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(kill: dict[str, Any] | None) -> None:
    if not kill:
        return
    if "at" in kill:
        threading.Timer(kill["at"], die).start()
        return
    name, when, n = kill["method"], kill["when"], kill.get("n", 1)
    original = getattr(journal_mod.Journal, name)
    calls = {"n": 0}

    def wrapped(self: Any, *a: Any, **kw: Any) -> Any:
        calls["n"] += 1
        hit = calls["n"] == n
        if hit and when == "before":
            die()
        result = original(self, *a, **kw)
        if hit and when == "after":
            die()
        if hit and when == "timer":
            threading.Timer(kill.get("delay", 0.2), die).start()
        return result

    setattr(journal_mod.Journal, name, wrapped)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    arm(cfg.get("kill"))
    limits = {k: RateLimit(k, v[0], v[1]) for k, v in cfg["limits"].items()}

    async def run() -> None:
        async with AsyncClient(
            cfg["app_id"], cfg["secret_key"], base_url=cfg["base_url"],
            credentials_dir=cfg["credentials_dir"], rate_limits=RateLimits(limits),
            timeout=2.0, max_retries=6,
        ) as client:
            await run_batch(
                client,
                load_manifest(cfg["manifest"]),
                BatchOptions(outdir=Path(cfg["outdir"]), poll_interval=0.15, settle=1.2,
                             clock_offset=(-0.5, 0.5), guard=2.0, create_backoff=0.2),
            )

    asyncio.run(run())


if __name__ == "__main__":
    main()
