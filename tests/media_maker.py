"""The one maker of test media: small H.264 videos, WAV tones and photos, made on the fly.

Importable from every test folder (``from media_maker import make_video, make_wav``): pytest puts
``tests/`` on the path for its root conftest.
"""

from __future__ import annotations

import math
import struct
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


def make_photo(path: Path, width: int, height: int, *, alpha: bool = False,
               orientation: int | None = None) -> Path:
    """A photo (format from the extension): left half red, right half blue, a grey bar on top;
    ``alpha`` makes the right half transparent; ``orientation`` adds an EXIF tag (jpg)."""
    import pytest

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
