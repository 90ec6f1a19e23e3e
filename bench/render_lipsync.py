"""Lip-sync renderer benchmark: speed as a multiple of real time, and peak memory vs length.

    .venv/bin/python bench/render_lipsync.py [--seconds 10] [--long 60] [--skip-memory]
        [--reference OTHER_CHECKOUT]

- speed: a 1280x720 source video and a 512x512 still, each rendered with SECONDS of uploaded
  speech (no TTS in the timing, libraries imported first as in a running server); × real time =
  output seconds / wall seconds. CPU seconds (all threads) are reported too: on a shared machine
  the wall time depends on the other load. TTS speed (Kokoro
  Mandarin, Piper English) is reported separately.
- memory: peak RSS of a fresh process rendering SECONDS vs LONG seconds of 720p output
  (goal: equal within 10 %).

Writes bench/results/render_lipsync.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from chanjing_avatar.render import media
from chanjing_avatar.render.base import AudioSpeech, RenderJob
from chanjing_avatar.render.demo import make_demo_video

SENTENCE = (
    "The quick brown fox jumps over the lazy dog, and the mouth follows every word. "
    "Open the window, please, and look at the moon tonight. "
)


def speech_file(d: Path, seconds: float) -> Path:
    """An uploaded-speech stand-in of exactly ``seconds``: espeak-ng speech, repeated."""
    wav = d / "one.wav"
    if not wav.exists():
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), SENTENCE], check=True)
    one = media.load_audio(wav, 24_000)
    reps = int(np.ceil(seconds * 24_000 / one.size))
    audio = np.tile(one, reps)[: int(seconds * 24_000)]
    out = d / f"speech_{seconds:g}.wav"
    media.write_wav(out, audio, 24_000)
    return out


def render_once(src: Path, speech: Path, size: tuple[int, int], out_dir: Path) -> dict[str, Any]:
    from chanjing_avatar.render.lipsync.renderer import LipsyncRenderer

    r = LipsyncRenderer()
    # A server imports once: load the tracker's libraries before timing.
    from chanjing_avatar.render.lipsync.face import FaceTracker

    FaceTracker(static=True).close()
    job = RenderJob(
        task_id="bench",
        video_path=src,
        speech=AudioSpeech(speech),
        width=size[0],
        height=size[1],
        output_video=out_dir / "out.mp4",
        output_preview=out_dir / "out.jpg",
        work_dir=out_dir,
    )
    t = time.perf_counter()
    c = time.process_time()
    res = r.render(job, lambda p: None)
    wall = time.perf_counter() - t
    cpu = time.process_time() - c
    out_s = res.duration_ms / 1000
    return {
        "output_s": out_s,
        "wall_s": round(wall, 2),
        "x_realtime": round(out_s / wall, 2),
        "cpu_s": round(cpu, 2),  # all threads; on a shared machine wall time is the noisy one
    }


def peak_rss_mb() -> float:
    """This process's peak RSS since exec (VmHWM). ru_maxrss would also count the parent's RSS at
    fork time: Linux keeps it across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    d = Path(args.dir)
    res = render_once(Path(args.src), Path(args.speech), (args.width, args.height), d)
    res["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(res))


def run_child(
    src: Path, speech: Path, size: tuple[int, int], d: Path, code: str | None = None
) -> dict[str, Any]:
    """Render in a fresh process; ``code``: another checkout whose ``src`` is imported instead."""
    cmd = [sys.executable, __file__, "--child", "--src", str(src), "--speech", str(speech),
           "--width", str(size[0]), "--height", str(size[1]), "--dir", str(d)]  # fmt: skip
    env = dict(os.environ)
    if code:
        env["PYTHONPATH"] = str(Path(code).resolve() / "src")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def tts_speed(d: Path) -> dict[str, Any]:
    from chanjing_avatar.render.speech.kokoro import KokoroEngine
    from chanjing_avatar.render.speech.kokoro import _load as load_kokoro
    from chanjing_avatar.render.speech.piper import PiperEngine
    from chanjing_avatar.render.speech.piper import _load as load_piper

    out: dict[str, Any] = {}
    load_kokoro()
    load_piper()
    zh = "你好，欢迎使用蝉镜数字人。今天我们来演示离线口型同步，嘴巴会跟着每一个字一起动。"
    for name, engine, voice, text in (
        ("kokoro_zh", KokoroEngine(), "jf_nezumi", zh),
        ("piper_en", PiperEngine(), "joe", SENTENCE),
    ):
        t = time.perf_counter()
        syn = engine.synthesize(text, voice, d / f"{name}.wav")
        wall = time.perf_counter() - t
        out[name] = {"audio_s": round(syn.duration_s, 2), "synth_s": round(wall, 2),
                     "rtf": round(wall / syn.duration_s, 3)}  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--long", type=float, default=60.0)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--only", choices=["speed", "tts", "memory"])
    ap.add_argument("--reference", help="another checkout (e.g. a git worktree of main): "
                    "render the same speed cases with it too and report CPU-time ratios")
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--src")
    ap.add_argument("--speech")
    ap.add_argument("--width", type=int, default=0)
    ap.add_argument("--height", type=int, default=0)
    ap.add_argument("--dir")
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    results: dict[str, Any] = {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        from skimage import data

        still = d / "still.png"
        import cv2

        cv2.imwrite(str(still), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
        video = make_demo_video(d / "src720.mp4", seconds=8.0, size=(1280, 720))
        speech = speech_file(d, args.seconds)
        if args.only in (None, "speed", "memory"):
            results["video_720p"] = run_child(video, speech, (1280, 720), d)
            print("720p video:", results["video_720p"], flush=True)
        if args.only in (None, "speed"):
            results["still_512"] = run_child(still, speech, (512, 512), d)
            print("512x512 still:", results["still_512"], flush=True)
        if args.reference and args.only in (None, "speed"):
            for key, src, size in (("video_720p", video, (1280, 720)),
                                   ("still_512", still, (512, 512))):
                ref = run_child(src, speech, size, d, args.reference)
                results[f"{key}_reference"] = ref
                results[f"{key}_cpu_ratio"] = round(results[key]["cpu_s"] / ref["cpu_s"], 3)
                print(f"{key} reference:", ref, "CPU ratio (this / reference):",
                      results[f"{key}_cpu_ratio"], flush=True)
        if args.only in (None, "tts"):
            results["tts"] = tts_speed(d)
            print("tts:", results["tts"], flush=True)
        if not args.skip_memory and args.only in (None, "memory"):
            long_speech = speech_file(d, args.long)
            short = results["video_720p"]
            longr = run_child(video, long_speech, (1280, 720), d)
            results["memory"] = {
                f"{args.seconds:g}s_peak_rss_mb": short["peak_rss_mb"],
                f"{args.long:g}s_peak_rss_mb": longr["peak_rss_mb"],
                "ratio": round(longr["peak_rss_mb"] / short["peak_rss_mb"], 3),
                f"{args.long:g}s_x_realtime": longr["x_realtime"],
            }
            print("memory:", results["memory"], flush=True)
    results["load_avg_end"] = os.getloadavg()[0]
    out = (
        Path(__file__).parent
        / "results"
        / f"render_lipsync{'_' + args.only if args.only else ''}.json"
    )
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
