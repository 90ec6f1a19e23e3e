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


def make_photo(path: Path, width: int, height: int, *, alpha: bool = False,
               orientation: int | None = None) -> Path:
    """A photo (format from the extension): left half red, right half blue, a grey bar on top;
    ``alpha`` makes the right half transparent; ``orientation`` adds an EXIF tag (jpg)."""
    pytest.importorskip("av", reason="needs PyAV (the photo extra) to make a test photo")
    import av
    import numpy as np

    img = np.zeros((height, width, 4), dtype=np.uint8)
    img[..., 3] = 255
    img[:, : width // 2, 0] = 220
    img[:, width // 2:, 2] = 220
    img[: height // 8, :, :3] = 128
    if alpha:
        img[:, width // 2:, 3] = 0
    ext = path.suffix.lower().lstrip(".")
    codec, pix_fmt = {"jpg": ("mjpeg", "yuvj444p"), "jpeg": ("mjpeg", "yuvj444p"),
                      "png": ("png", "rgba"), "webp": ("libwebp", "yuva420p")}[ext]
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream(codec, rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        frame = av.VideoFrame.from_ndarray(img, format="rgba")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    if orientation is not None:
        tiff = (b"II*\x00" + struct.pack("<IH", 8, 1)
                + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0))
        app1 = b"Exif\x00\x00" + tiff
        data = path.read_bytes()
        path.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
                         + data[2:])
    return path
