"""``lipsync.wait`` on a task that takes 10 minutes, in scaled time.

    .venv/bin/python bench/client_wait.py [--scale 60] [--runs 3] [--minutes 10]

The sandbox runs with ``time_scale`` (a 10-minute task lasts 10 real seconds at 60) and the client
gets a matching clock and sleep, so every delay it chooses is in "API seconds". Reported per run:
detail requests made by ``wait`` and the detection delay (from the task's finish to ``wait``
returning) as a share of the elapsed time. Goals (issue 3): at most 25 detail requests, finished
within 5 % of the elapsed time.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


class _CopyRenderer:
    name = "copy"

    def voices(self) -> list[Any]:
        from chanjing_avatar.render.base import VoiceInfo

        return [VoiceInfo(id="a" * 32, name="bench", gender="female", lang="zh")]

    def render(self, job: Any, progress: Any) -> Any:
        import shutil

        from chanjing_avatar.render.base import RenderResult

        shutil.copyfile(job.video_path, job.output_video)
        job.output_preview.write_bytes(b"\xff\xd8\xff\xd9")
        progress(100)
        return RenderResult(duration_ms=1000)

    def audition(self, voice_id: str, out_path: Path) -> None:
        out_path.write_bytes(b"")


def _video(path: Path) -> Path:
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 160, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((160, 160, 3), i * 20, np.uint8),
                                               format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).with_name("results") / "client_wait.json")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    runs: list[dict[str, float]] = []

    from chanjing_avatar import Client, RateLimits
    from chanjing_avatar.sandbox import Sandbox, SandboxConfig

    k = args.scale
    duration = args.minutes * 60
    with tempfile.TemporaryDirectory() as tmp:
        cfg = SandboxConfig(data_dir=Path(tmp) / "sb", admin=True, renderer=_CopyRenderer(),
                            time_scale=k, task_min_duration_s=duration, file_sync_delay_s=1)
        with Sandbox(cfg) as sb, Client(
            sb.app_id, sb.secret_key, base_url=sb.base_url, credentials_dir=Path(tmp) / "cred",
            rate_limits=RateLimits.scaled(k),
            clock=lambda: time.monotonic() * k,
            sleep=lambda s: time.sleep(s / k),
        ) as c:
            video = c.files.upload(_video(Path(tmp) / "v.mp4"), "lip_sync_video")
            print(f"task of {args.minutes:g} min at time_scale {k:g}; times in API seconds")
            print(f"{'run':>3} {'detail reqs':>11} {'elapsed s':>9} {'delay s':>8} "
                  f"{'delay %':>8}")
            worst_reqs, worst_share = 0, 0.0
            for run in range(1, args.runs + 1):
                task_id = c.lipsync.create(video_file_id=video.id, text="bench", voice_id="a" * 32)
                created = time.time()
                sb.admin.reset_stats()
                task = c.lipsync.wait(task_id, timeout=duration * 3)
                returned = time.time()
                requests = sb.admin.count("lipsync_detail")
                record = sb.store.get_task(task_id)
                finished = record.finished_at
                assert task.succeeded and finished is not None
                elapsed = (returned - created) * k
                delay = (returned - finished) * k
                share = delay / elapsed
                worst_reqs, worst_share = max(worst_reqs, requests), max(worst_share, share)
                runs.append({"detail_requests": requests, "elapsed_s": round(elapsed, 1),
                             "delay_s": round(delay, 1), "delay_share": round(share, 4)})
                print(f"{run:>3} {requests:>11} {elapsed:9.1f} {delay:8.1f} {share:8.2%}")
    print(f"worst: {worst_reqs} detail requests (goal <= 25), detection delay {worst_share:.2%} "
          "of elapsed (goal <= 5 %)")
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps({
        "task_minutes": args.minutes, "time_scale": k, "load_avg_start": load_start,
        "runs": runs, "worst_detail_requests": worst_reqs, "worst_delay_share": worst_share,
        "goals": {"detail_requests": 25, "delay_share": 0.05},
    }, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
