"""Memory stays flat with the output length (a 30 s output needs no more than a 5 s one)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import make_index_video, make_wav

_SCRIPT = r"""
import json, sys, tracemalloc
from pathlib import Path
from chanjing_avatar.render import media
from chanjing_avatar.render.base import AudioSpeech, RenderJob
from chanjing_avatar.render.passthrough import PassthroughRenderer

video, wav, out = map(Path, sys.argv[1:4])
# A cache smaller than the source: backway 2 takes the chunked re-decoding path.
media.FRAME_CACHE_BYTES = 128 * 128 * 3 * 8
renderer = PassthroughRenderer()
tracemalloc.start()
job = RenderJob(task_id="m", video_path=video, speech=AudioSpeech(wav), width=128, height=128,
                backway=2, output_video=out / "o.mp4", output_preview=out / "o.jpg",
                work_dir=out)
result = renderer.render(job, lambda p: None)
_, peak = tracemalloc.get_traced_memory()
# VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork + exec.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status")
           if line.startswith("VmHWM:"))
print(json.dumps({"traced_peak": peak, "peak_rss_kb": hwm, "duration_ms": result.duration_ms}))
"""


def _run(video: Path, wav: Path, out: Path) -> dict[str, int]:
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(video), str(wav), str(out)],
                          capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, int] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
@pytest.mark.skipif(platform.system() != "Linux", reason="reads /proc/self/status")
def test_memory_flat_with_output_length(tmp_path: Path) -> None:
    video = make_index_video(tmp_path / "src.mp4", 40, size=(160, 120))
    short = _run(video, make_wav(tmp_path / "5.wav", 5.0), tmp_path / "short")
    long = _run(video, make_wav(tmp_path / "30.wav", 30.0), tmp_path / "long")
    assert (short["duration_ms"], long["duration_ms"]) == (5000, 30000)
    # Python-side allocations (numpy frames included): no growth beyond noise.
    assert long["traced_peak"] < short["traced_peak"] * 1.25 + 1_000_000, (short, long)
    # Whole-process peak (FFmpeg's buffers too): within 5%.
    assert long["peak_rss_kb"] < short["peak_rss_kb"] * 1.05, (short, long)
