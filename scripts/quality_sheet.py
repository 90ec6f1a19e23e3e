"""A sheet of closed / mid / open mouths from a fixed set of renders, before and after a change.

    .venv/bin/python scripts/quality_sheet.py [--before OLD_CHECKOUT] [--out docs/img]

Renders, with the lip-sync renderer of this checkout (and, with ``--before``, of another checkout:
``git worktree add /tmp/before <rev>``, run with the same venv), speaking Mandarin:

1. the astronaut photo (scikit-image, public domain), a 512×512 still;
2. the Grace Hopper photo (matplotlib's sample data; glasses), a 512×600 still;
3. a 640×360 landscape video made from the Grace Hopper photo with head motion (roll, sway, zoom);
4. a re-driven video whose mouth already moves: the astronaut demo video rendered speaking one
   text, then rendered again speaking another.

For each it finds the frames whose measured inner-lip gap is nearest the 10th, 60th and 98th
percentile (closed, mid, open) and writes ``quality-sheet.jpg``: per render a row of face crops at
native size and a row of the mouths zoomed ×3 (before above after when ``--before`` is given).
It prints the sync of each render and the colour figures of the open frame of the stills.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
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

ROOT = Path(__file__).resolve().parent.parent
TEXT_A = "你好，欢迎使用蝉镜数字人。今天我们来看一看，嘴巴张开的时候是什么样子。"
TEXT_B = "欢迎来到我们的直播间，这款手机现在只要两千九百九十九元。"
PICKS = (("closed", 10), ("mid", 60), ("open", 98))
CASES = ("astronaut", "grace-hopper", "grace-hopper-moving", "re-driven")


def _grace() -> np.ndarray:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, :3][:, 0:512])


def _moving_video(still: np.ndarray, path: Path, size: tuple[int, int], seconds: float) -> Path:
    """Head motion from a still: slow roll (±6°), sway and zoom, letterboxed into ``size``."""
    from fractions import Fraction

    from chanjing_avatar.render import media

    w, h = size
    sh, sw = still.shape[:2]
    base = min(w / sw, h / sh) * 1.15
    with media.Mp4Writer(path, w, h, Fraction(25), audio=False) as writer:
        for i in range(int(seconds * 25)):
            t = i / 25
            ang = 6.0 * np.sin(2 * np.pi * t / 3.1)
            s = base * (1.0 + 0.06 * np.sin(2 * np.pi * t / 4.3))
            m = cv2.getRotationMatrix2D((sw / 2, sh * 0.45), ang, s)
            m[0, 2] += w / 2 - sw / 2 + 0.04 * w * np.sin(2 * np.pi * t / 2.7)
            m[1, 2] += h / 2 - sh * 0.45
            writer.write_frame(
                cv2.warpAffine(still, m, (w, h), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REFLECT)
            )
    return path


def _render(src: Path, d: Path, name: str, text: str, size: tuple[int, int]) -> Path:
    job = RenderJob(
        task_id=name,
        video_path=src,
        speech=TtsSpeech([text], voice_id("zh-female-1")),
        width=size[0],
        height=size[1],
        output_video=d / f"{name}.mp4",
        output_preview=d / f"{name}.jpg",
        work_dir=d,
    )
    LipsyncRenderer().render(job, lambda p: None)
    return job.output_video


def render_cases(out: Path) -> None:
    """Render the fixed set and write the picked crops (PNG) and figures (JSON) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        astro, grace = tmp / "astronaut.png", tmp / "grace.png"
        cv2.imwrite(str(astro), cv2.cvtColor(_astronaut(), cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(grace), cv2.cvtColor(_grace(), cv2.COLOR_RGB2BGR))
        moving = _moving_video(_grace(), tmp / "grace-moving.mp4", (640, 360), 4.0)
        demo = make_demo_video(tmp / "demo.mp4", seconds=4.0, size=(512, 512))
        talking = _render(demo, tmp, "talking", TEXT_B, (512, 512))
        videos = {
            "astronaut": _render(astro, tmp, "astronaut", TEXT_A, (512, 512)),
            "grace-hopper": _render(grace, tmp, "grace-hopper", TEXT_A, (512, 600)),
            "grace-hopper-moving": _render(moving, tmp, "moving", TEXT_A, (640, 360)),
            "re-driven": _render(talking, tmp, "re-driven", TEXT_A, (512, 512)),
        }
        with FaceTracker(static=True) as tracker:
            for name, video in videos.items():
                rep = measure_sync(video)
                frames, *_ = read_video(video)
                figures[name] = {"lag_frames": rep.lag_frames, "r": round(rep.correlation, 3)}
                gaps = np.nan_to_num(rep.gaps, nan=-1.0)
                valid = gaps >= 0
                for label, q in PICKS:
                    target = np.percentile(gaps[valid], q)
                    i = int(np.argmin(np.where(valid, np.abs(gaps - target), np.inf)))
                    pts = tracker.detect(frames[i])
                    if pts is None:
                        continue
                    face_h = float(np.linalg.norm(pts[152] - pts[10]))
                    mw = float(np.linalg.norm(pts[291] - pts[61]))
                    c = (pts[13] + pts[14]) / 2
                    face = _crop(frames[i], pts[1], 1.25 * face_h, 1.25 * face_h)
                    mouth = _crop(frames[i], c, 1.5 * mw, 1.0 * mw)
                    mouth = cv2.resize(mouth, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
                    for kind, img in (("face", face), ("mouth", mouth)):
                        cv2.imwrite(str(out / f"{name}_{label}_{kind}.png"),
                                    cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    (out / "figures.json").write_text(json.dumps(figures, indent=1))


def _crop(img: np.ndarray, centre: np.ndarray, w: float, h: float) -> np.ndarray:
    ih, iw = img.shape[:2]
    w, h = min(int(w), iw), min(int(h), ih)
    x0 = int(np.clip(centre[0] - w / 2, 0, iw - w))
    y0 = int(np.clip(centre[1] - h / 2, 0, ih - h))
    return np.ascontiguousarray(img[y0 : y0 + h, x0 : x0 + w])


def _label(img: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((22, img.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return cv2.vconcat([bar, img])


def _row(d: Path, case: str, kind: str, tag: str) -> np.ndarray | None:
    tiles = []
    for label, _ in PICKS:
        p = d / f"{case}_{label}_{kind}.png"
        if not p.exists():
            return None
        tiles.append(_label(cv2.imread(str(p)), f"{tag} {case} {label}"))
    h = max(t.shape[0] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 0, h - t.shape[0], 0, 4, cv2.BORDER_CONSTANT,
                                value=(255, 255, 255)) for t in tiles]
    return cv2.hconcat(tiles)


def compose(dirs: list[tuple[str, Path]], out: Path) -> None:
    rows = []
    for case in CASES:
        for kind in ("face", "mouth"):
            for tag, d in dirs:
                r = _row(d, case, kind, tag)
                if r is not None:
                    rows.append(r)
    width = max(r.shape[1] for r in rows)
    rows = [cv2.copyMakeBorder(r, 0, 4, 0, width - r.shape[1], cv2.BORDER_CONSTANT,
                               value=(255, 255, 255)) for r in rows]
    cv2.imwrite(str(out), cv2.vconcat(rows), [cv2.IMWRITE_JPEG_QUALITY, 85])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"))
    ap.add_argument("--before", help="another checkout of this project to render the 'before'")
    ap.add_argument("--keep", help="keep the crops in this folder; an existing KEEP/before is "
                    "reused instead of rendering the 'before' again")
    ap.add_argument("--render-only", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.render_only:
        render_cases(Path(args.render_only))
        return
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(args.keep) if args.keep else Path(tmp_s)
        dirs: list[tuple[str, Path]] = []
        if args.keep and (tmp / "before" / "figures.json").exists():
            dirs.append(("before", tmp / "before"))
        elif args.before:
            env = {**os.environ, "PYTHONPATH": str(Path(args.before).resolve() / "src")}
            subprocess.run([sys.executable, __file__, "--render-only", str(tmp / "before")],
                           check=True, env=env)
            dirs.append(("before", tmp / "before"))
        render_cases(tmp / "after")
        dirs.append(("after", tmp / "after"))
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        compose(dirs, out / "quality-sheet.jpg")
        for tag, d in dirs:
            print(tag, (d / "figures.json").read_text())
    print(f"wrote {out / 'quality-sheet.jpg'}")


if __name__ == "__main__":
    main()
