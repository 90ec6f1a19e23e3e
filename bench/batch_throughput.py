"""Batch throughput against the sandbox with its limits scaled down.

    .venv/bin/python bench/batch_throughput.py [--rows 60] [--scale 30] [--render 0.1]

Time runs ``scale`` times faster in the sandbox's rate-limit windows and in the client's limiter
(the documented shapes: 10 creates per 60 s become 10 per 2 s at scale 30). Reports the wall time
of the whole batch divided by the lower bound the create limit sets:

    bound = (ceil(rows / 10) - 1) * 60 / scale   # the last create cannot be sent earlier
          + render                               # and its video takes this long to render

and the number of 40001 answers (goal: 0). The upload at the start and the download at the end
are counted in the wall time, not in the bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from batch.support import FastRenderer, write_manifest  # noqa: E402
from chanjing_avatar import AsyncClient  # noqa: E402
from chanjing_avatar._config import RateLimits  # noqa: E402
from chanjing_avatar._wire import RATE_LIMITS  # noqa: E402
from chanjing_avatar.batch.manifest import load_manifest  # noqa: E402
from chanjing_avatar.batch.runner import BatchOptions, BatchRunner  # noqa: E402
from chanjing_avatar.sandbox import Sandbox, SandboxConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=60)
    ap.add_argument("--scale", type=float, default=30.0)
    ap.add_argument("--render", type=float, default=0.1, help="render seconds per task")
    ap.add_argument("--poll", type=float, default=0.05, help="poll interval per task (s)")
    ap.add_argument("--client-margin", type=float, default=None,
                    help="experiment: the client limiter's latency allowance before any answer "
                    "is measured, as a share of the period (its own is 0.05, at least 0.1 s); "
                    "answered requests need none")
    args = ap.parse_args()
    if args.client_margin is not None:
        from chanjing_avatar._core import _ratelimit

        _ratelimit._MARGIN_RATIO = args.client_margin
        _ratelimit._MARGIN_MIN_S = 0.0

    create = RATE_LIMITS["lipsync_create"]
    period = create.period_s / args.scale
    bound = (math.ceil(args.rows / create.count) - 1) * period + args.render

    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        config = SandboxConfig(
            data_dir=tmp / "sb", admin=True, renderer=FastRenderer(args.render),
            file_sync_delay_s=0.0, time_scale=args.scale, render_concurrency=4,
        )
        with Sandbox(config) as sb:
            manifest = load_manifest(write_manifest(tmp / "in", args.rows, videos=1))

            async def run() -> tuple[float, float, float, float]:
                async with AsyncClient(
                    sb.app_id, sb.secret_key, base_url=sb.base_url,
                    credentials_dir=tmp / "cred", rate_limits=RateLimits.scaled(args.scale),
                ) as client:
                    await client.auth.token()  # not part of the batch
                    opts = BatchOptions(outdir=tmp / "out", poll_interval=args.poll)
                    runner = BatchRunner(client, manifest, opts)
                    started, started_wall = time.monotonic(), time.time()
                    await runner.run()
                    wall = time.monotonic() - started
                    ended_wall = time.time()
                    j = runner.journal
                    assert j is not None
                    counts = j.counts()
                    assert counts == {"done": args.rows}, counts
                    created = [e["at"] for e in j.events(kind="created")]
                    return (wall, max(created) - min(created), min(created) - started_wall,
                            ended_wall - max(created))

            wall, create_span, head, tail = asyncio.run(run())
            stats = sb.admin.stats()["responses"]
            rate_limited = sum(o.get("40001", 0) for o in stats.values())
            creates = sum(stats.get("lipsync_create", {}).values())

    result = {
        "rows": args.rows,
        "scale": args.scale,
        "create_limit": f"{create.count} per {period:g} s",
        "wall_s": round(wall, 3),
        "bound_s": round(bound, 3),
        "ratio": round(wall / bound, 4),
        "first_to_last_create_s": round(create_span, 3),
        "create_span_vs_limit": round(
            create_span / ((math.ceil(args.rows / create.count) - 1) * period), 4),
        "start_to_first_create_s": round(head, 3),
        "last_create_to_end_s": round(tail, 3),
        "client_margin": "slots anchored on answers; measured latency allowance"
        if args.client_margin is None
        else args.client_margin,
        "creates_sent": creates,
        "answers_40001": rate_limited,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
