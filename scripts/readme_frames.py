"""Three frames (closed, mid, open) of the lip-sync demo, for the README.

    .venv/bin/python scripts/readme_frames.py [--out DIR] [--crops]
    .venv/bin/python scripts/readme_frames.py --out docs/img    # refresh the README's picture

Renders the demo face video (render/demo.py) speaking Mandarin with the lip-sync renderer, measures
the inner-lip gap of every output frame with the face tracker, and writes ``lipsync-frames.jpg``:
the frames nearest the 10th, 60th and 98th percentiles of the opening, cropped to the face, side by
side. ``--crops`` also writes each one alone (``lipsync-closed.jpg``, ``-mid``, ``-open``).

Without ``--out`` it writes to a new temporary folder (printed), so a trial run never changes the
checkout.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

from chanjing_avatar.render.base import RenderJob, TtsSpeech
from chanjing_avatar.render.demo import make_demo_video
from chanjing_avatar.render.lipsync.check import measure_sync, read_video
from chanjing_avatar.render.lipsync.face import FaceTracker
from chanjing_avatar.render.lipsync.renderer import LipsyncRenderer
from chanjing_avatar.render.speech import voice_id

TEXT = "你好，欢迎使用蝉镜数字人。今天我们来演示离线口型同步，嘴巴会跟着每一个字一起动。"


def _write(path: Path, bgr: np.ndarray) -> None:
    cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 88])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", help="folder to write to (default: a new temporary folder)")
    ap.add_argument("--crops", action="store_true", help="also write each frame alone")
    args = ap.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="readme-frames-"))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        video = make_demo_video(d / "demo.mp4", seconds=4.0, size=(512, 512))
        job = RenderJob(
            task_id="readme",
            video_path=video,
            speech=TtsSpeech([TEXT], voice_id("zh-female-1")),
            width=512,
            height=512,
            output_video=d / "out.mp4",
            output_preview=d / "out.jpg",
            work_dir=d,
        )
        LipsyncRenderer().render(job, lambda p: None)
        report = measure_sync(job.output_video)
        frames, *_ = read_video(job.output_video)
    gaps = np.nan_to_num(report.gaps, nan=-1.0)
    valid = gaps >= 0
    picks = {}
    for name, q in (("closed", 10), ("mid", 60), ("open", 98)):
        target = np.percentile(gaps[valid], q)
        picks[name] = int(np.argmin(np.where(valid, np.abs(gaps - target), np.inf)))
    # One square box around the face (from the first pick) for all three, so they line up.
    with FaceTracker(static=True) as tracker:
        pts = tracker.detect(frames[picks["closed"]])
    assert pts is not None
    h, w = frames[0].shape[:2]
    side = int(min(h, w, 1.5 * float(np.linalg.norm(pts[152] - pts[10]))))
    cx, cy = pts[1]
    x0 = int(np.clip(cx - side / 2, 0, w - side))
    y0 = int(np.clip(cy - side / 2, 0, h - side))
    tiles = []
    for name, i in picks.items():
        crop = frames[i][y0 : y0 + side, x0 : x0 + side]
        bgr = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)
        if args.crops:
            _write(out / f"lipsync-{name}.jpg", bgr)
        tiles.append(cv2.resize(bgr, (300, 300), interpolation=cv2.INTER_AREA))
        print(f"{name}: frame {i}, inner-lip gap {gaps[i]:.3f} of the mouth width")
    _write(out / "lipsync-frames.jpg", cv2.hconcat(tiles))
    print(f"sync: best lag {report.lag_frames} frames, r = {report.correlation:.2f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
