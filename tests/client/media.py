"""Small media made on the fly for the integration tests."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import pytest


def make_video(path: Path, width: int = 240, height: int = 320, seconds: float = 1.0) -> Path:
    pytest.importorskip("av", reason="needs PyAV (the sandbox extra) to make a test video")
    import av
    import numpy as np

    fps = 10
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(seconds * fps)):
            img = np.full((height, width, 3), (i * 20) % 255, dtype=np.uint8)
            img[height // 3: height // 2, width // 3: 2 * width // 3] = 200
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_wav(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 220 * i / rate)))
            for i in range(int(seconds * rate))
        )
        w.writeframes(frames)
    return path
