"""Shared by the batch and callback tests: a fast renderer, tiny media, a scaled-down sandbox."""

from __future__ import annotations

import hashlib
import math
import struct
import time
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from chanjing_avatar._config import RateLimits
from chanjing_avatar._wire import RateLimit
from chanjing_avatar.render.base import RenderJob, RenderResult, VoiceInfo

VOICE = "a" * 32


class FastRenderer:
    """Writes a small deterministic "video" per task; takes ``seconds`` of wall time."""

    name = "fast"

    def __init__(self, seconds: float = 0.2, size: int = 64 * 1024) -> None:
        self.seconds = seconds
        self.size = size

    def voices(self) -> Sequence[VoiceInfo]:
        return [VoiceInfo(id=VOICE, name="Test", gender="female", lang="en")]

    def render(self, job: RenderJob, progress: Any) -> RenderResult:
        steps = 4
        for i in range(steps):
            time.sleep(self.seconds / steps)
            progress(int((i + 1) * 100 / steps))
        seed = hashlib.sha256(job.task_id.encode()).digest()
        job.output_video.write_bytes((seed * (self.size // len(seed) + 1))[: self.size])
        job.output_preview.write_bytes(b"\xff\xd8\xff\xd9")
        return RenderResult(duration_ms=1000)

    def audition(self, voice_id: str, out_path: Path) -> None:
        make_wav(out_path, 0.1)


def make_video(path: Path, shade: int = 0, *, width: int = 64, height: int = 64) -> Path:
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(3):
            img = np.full((height, width, 3), (shade * 40 + i * 20) % 255, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_wav(path: Path, seconds: float = 0.3, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 220 * i / rate)))
            for i in range(int(seconds * rate))
        ))
    return path


# Limits scaled down: the same shape as the documented ones, a fraction of the periods.
def limits(create_per_s: float = 10.0, burst: int = 10) -> dict[str, RateLimit]:
    return {
        "lipsync_create": RateLimit("lipsync_create", burst, burst / create_per_s),
        "lipsync_query": RateLimit("lipsync_query", 50, 1.0),
        "file_management": RateLimit("file_management", 30, 1.0),
    }


def sandbox_config(tmp: Path, *, render_s: float = 0.2, create_per_s: float = 10.0,
                   burst: int = 10, **kw: Any) -> Any:
    from chanjing_avatar.sandbox import CallbackPolicy, SandboxConfig

    kw.setdefault("callback", CallbackPolicy(attempts=2, backoff_s=0.2, timeout_s=2.0))
    kw.setdefault("callback_allow_private", True)  # the receivers listen on loopback
    return SandboxConfig(
        data_dir=tmp,
        admin=True,
        renderer=FastRenderer(render_s),
        file_sync_delay_s=0.0,
        render_concurrency=4,
        rate_limits=limits(create_per_s, burst),
        **kw,
    )


def client_kwargs(sb: Any, tmp: Path, *, create_per_s: float = 10.0, burst: int = 10,
                  read_timeout: float = 2.0) -> dict[str, Any]:
    return {
        "app_id": sb.app_id,
        "secret_key": sb.secret_key,
        "base_url": sb.base_url,
        "credentials_dir": tmp / "credentials",
        "allow_http": True,
        "rate_limits": RateLimits(limits(create_per_s, burst)),
        "timeout": httpx.Timeout(read_timeout, connect=2.0),
        "max_retries": 6,
    }


def write_manifest(folder: Path, n: int, *, videos: int = 2, audio_every: int = 0) -> Path:
    """n rows over ``videos`` distinct clips; every ``audio_every``-th row uses audio."""
    folder.mkdir(parents=True, exist_ok=True)
    for v in range(videos):
        if not (folder / f"clip{v}.mp4").exists():
            make_video(folder / f"clip{v}.mp4", shade=v)
    if audio_every and not (folder / "speech.wav").exists():
        make_wav(folder / "speech.wav")
    lines = ["id,video,text,voice,audio"]
    for i in range(n):
        clip = f"clip{i % videos}.mp4"
        if audio_every and i % audio_every == audio_every - 1:
            lines.append(f"row{i:03d},{clip},,,speech.wav")
        else:
            lines.append(f"row{i:03d},{clip},Line number {i},{VOICE},")
    path = folder / "manifest.csv"
    path.write_text("\n".join(lines) + "\n")
    return path
