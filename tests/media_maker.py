"""The one maker of test media: small H.264 videos and WAV tones, made on the fly.

Importable from every test folder (``from media_maker import make_video, make_wav``): pytest puts
``tests/`` on the path for its root conftest.
"""

from __future__ import annotations

import math
import wave
from fractions import Fraction
from pathlib import Path


def make_video(
    path: Path,
    width: int = 64,
    height: int | None = None,
    *,
    seconds: float = 1.0,
    fps: int = 25,
    shade: int = 0,
) -> Path:
    """A small H.264 mp4 (no audio): a moving gradient with a bright box; ``shade`` makes
    videos of the same size differ in content."""
    import av
    import numpy as np

    height = height or width
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(max(1, round(seconds * fps))):
            img = np.zeros((height, width, 3), dtype=np.uint8)
            img[:, :, 0] = (np.arange(width) * 4 + i * 8 + shade * 40) % 256
            img[:, :, 1] = (128 + shade * 40) % 256
            img[height // 3 : height // 2, width // 3 : 2 * width // 3] = 200
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_wav(
    path: Path, seconds: float = 1.0, rate: int = 16_000, *, tone_hz: float = 440
) -> Path:
    """A mono 16-bit WAV tone."""
    frames = bytearray()
    for n in range(round(seconds * rate)):
        value = int(8000 * math.sin(2 * math.pi * tone_hz * n / rate))
        frames += value.to_bytes(2, "little", signed=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return path
