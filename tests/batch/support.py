"""Shared by the batch and callback tests: a fast renderer, tiny media, a scaled-down sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from chanjing_avatar._config import RateLimits
from chanjing_avatar._wire import RateLimit
from chanjing_avatar.render.base import VoiceInfo
from fake_renderer import FakeRenderer
from media_maker import make_video, make_wav

VOICE = "a" * 32


def fast_renderer(seconds: float = 0.2, size: int = 64 * 1024) -> FakeRenderer:
    """Writes ``size`` deterministic bytes per task as its "video"; takes ``seconds`` of wall
    time."""
    return FakeRenderer([VoiceInfo(id=VOICE, name="Test", gender="female", lang="en")],
                        name="fast", steps=4, step_s=seconds / 4, output_bytes=size)


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
        renderer=fast_renderer(render_s),
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
