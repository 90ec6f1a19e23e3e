"""A short face video for demos, made at run time from an image that ships in scikit-image.

The photo is NASA's portrait of astronaut Eileen Collins (public domain), in the scikit-image wheel
as ``skimage.data.astronaut()``. The video is a head-and-shoulders crop with a slow zoom and a small
pan, so that it is a real moving video (frames differ) while the face stays well in view.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np

from .media import Frame, Mp4Writer, even, resize

# Face centre and crop side in the 512×512 photo (measured by eye; the hair top is at y≈20).
_FACE_X, _FACE_Y, _SIDE = 224.0, 130.0, 300.0
_UPSCALE = 2  # crop on a 2× upsampled copy: sub-pixel steps, so the slow zoom does not judder


def _upscaled_photo() -> Frame:
    from skimage import data

    photo: Frame = np.ascontiguousarray(data.astronaut()[:, :, :3])  # type: ignore[no-untyped-call]
    h, w = photo.shape[:2]
    return resize(photo, w * _UPSCALE, h * _UPSCALE, "BICUBIC")


def demo_frames(seconds: float = 6.0, size: tuple[int, int] = (512, 512),
                fps: int = 25) -> tuple[list[tuple[int, int, int, int]], Frame]:
    """Crop boxes (x0, y0, x1, y1) in the upscaled photo, one per frame, and that photo."""
    big = _upscaled_photo()
    bh, bw = big.shape[:2]
    width, height = size
    n = max(1, round(seconds * fps))
    boxes = []
    for i in range(n):
        u = i / max(1, n - 1)
        ease = 0.5 - 0.5 * math.cos(math.pi * u)  # slow in, slow out
        zoom = 1.0 + 0.10 * ease
        dx = 8.0 * math.sin(2 * math.pi * u)
        dy = 4.0 * math.sin(math.pi * u)
        side = _SIDE / zoom
        crop_h = side if height >= width else side * height / width
        crop_w = crop_h * width / height
        # Keep the box inside the photo by sliding it (never by squashing it).
        crop_w, crop_h = min(crop_w, 512.0), min(crop_h, 512.0)
        x0 = min(max(0.0, _FACE_X + dx - crop_w / 2), 512.0 - crop_w)
        y0 = min(max(0.0, _FACE_Y + dy - crop_h * 0.45), 512.0 - crop_h)
        box = (round(x0 * _UPSCALE), round(y0 * _UPSCALE),
               round((x0 + crop_w) * _UPSCALE), round((y0 + crop_h) * _UPSCALE))
        boxes.append((box[0], box[1], min(bw, box[2]), min(bh, box[3])))
    return boxes, big


def make_demo_video(path: Path | str, seconds: float = 6.0,
                    size: tuple[int, int] = (512, 512), fps: int = 25) -> Path:
    """Write a ``seconds``-long H.264 mp4 (no audio) of a talking-head-framed face at ``size``
    (width, height; rounded up to even numbers). Returns ``path``."""
    width, height = even(size[0]), even(size[1])
    boxes, big = demo_frames(seconds, (width, height), fps)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with Mp4Writer(path, width, height, Fraction(fps), crf=20, audio=False) as writer:
        for x0, y0, x1, y1 in boxes:
            writer.write_frame(resize(big[y0:y1, x0:x1], width, height, "AREA"))
    return path
