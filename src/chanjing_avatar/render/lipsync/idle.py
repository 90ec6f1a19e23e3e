"""Subtle life for a still image: slow head motion and blinks, seeded and deterministic."""

from __future__ import annotations

import math
import random

import cv2
import numpy as np
from numpy.typing import NDArray

from .face import Image, Points

_BLINK_S = 0.18
# FaceMesh eyelid contours, corner to corner.
EYE_L_UPPER_FULL = [33, 246, 161, 160, 159, 158, 157, 173, 133]
EYE_L_LOWER_FULL = [33, 7, 163, 144, 145, 153, 154, 155, 133]
EYE_R_UPPER_FULL = [263, 466, 388, 387, 386, 385, 384, 398, 362]
EYE_R_LOWER_FULL = [263, 249, 390, 373, 374, 380, 381, 382, 362]


class IdleMotion:
    def __init__(self, pts: Points, size: tuple[int, int], fps: float, seed: int) -> None:
        self._fps = fps
        self._centre = pts[[33, 263, 152]].mean(axis=0).astype(np.float64)
        self._scale = float(np.linalg.norm(pts[263] - pts[33]))
        rng = random.Random(seed)
        self._phases = [rng.uniform(0, 2 * math.pi) for _ in range(6)]
        self._blinks: list[float] = []
        t = rng.uniform(0.8, 2.0)
        for _ in range(10_000):
            self._blinks.append(t)
            t += rng.uniform(2.4, 5.5)
            if t > 24 * 3600:
                break
        self._size = size

    def head(self, i: int) -> NDArray[np.float64]:
        """A 2x3 affine: ±0.7° roll, ±0.5 % sway, ±0.4 % breathing zoom."""
        t = i / self._fps
        p = self._phases
        ang = 0.7 * (
            0.6 * math.sin(2 * math.pi * 0.11 * t + p[0])
            + 0.4 * math.sin(2 * math.pi * 0.23 * t + p[1])
        )
        dx = 0.012 * self._scale * 4 * math.sin(2 * math.pi * 0.07 * t + p[2])
        dy = 0.008 * self._scale * 4 * math.sin(2 * math.pi * 0.13 * t + p[3])
        sc = 1.0 + 0.004 * math.sin(2 * math.pi * 0.2 * t + p[4])
        m = np.asarray(
            cv2.getRotationMatrix2D((float(self._centre[0]), float(self._centre[1])), ang, sc),
            np.float64,
        )
        m[:, 2] += np.array([dx, dy])
        return np.asarray(m, np.float64)

    def blink(self, i: int) -> float:
        """Eyelid closure 0..1 at frame ``i``."""
        t = i / self._fps
        import bisect

        k = bisect.bisect_right(self._blinks, t) - 1
        if k < 0:
            return 0.0
        u = (t - self._blinks[k]) / _BLINK_S
        return float(math.sin(math.pi * u)) if 0.0 <= u <= 1.0 else 0.0


def apply_head(still: Image, m: NDArray[np.float64]) -> Image:
    h, w = still.shape[:2]
    return np.asarray(
        cv2.warpAffine(still, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT),
        np.uint8,
    )


def close_eyes(frame: Image, pts: Points, amount: float) -> None:
    """Lower the upper eyelids by ``amount`` (1 = shut), in place.

    A "curtain": the lid skin above each eye is stretched down over the opening, so the lash line
    travels with it. (A landmark warp folds over here: lid and lower lid nearly touch.)
    """
    if amount <= 0.02:
        return
    h, w = frame.shape[:2]
    for upper, lower in (
        (EYE_L_UPPER_FULL, EYE_L_LOWER_FULL),
        (EYE_R_UPPER_FULL, EYE_R_LOWER_FULL),
    ):
        up = pts[upper].astype(np.float64)
        lo = pts[lower].astype(np.float64)
        x0 = int(max(0, np.floor(min(up[:, 0].min(), lo[:, 0].min()))))
        x1 = int(min(w, np.ceil(max(up[:, 0].max(), lo[:, 0].max())) + 1))
        if x1 - x0 < 3:
            continue
        xs = np.arange(x0, x1, dtype=np.float64)
        ou, ol = np.argsort(up[:, 0]), np.argsort(lo[:, 0])
        yu = np.interp(xs, up[ou, 0], up[ou, 1])
        yl = np.maximum(np.interp(xs, lo[ol, 0], lo[ol, 1]), yu)
        lid = max(2.0, 1.2 * float((yl - yu).max()))
        ye = yu + amount * 0.95 * (yl - yu)
        y0 = int(max(0, np.floor((yu - lid).min())))
        y1 = int(min(h, np.ceil(ye.max()) + 2))
        if y1 - y0 < 3:
            continue
        yy = np.arange(y0, y1, dtype=np.float64)[:, None]
        top = (yu - lid)[None, :]
        inside = (yy >= top) & (yy <= ye[None, :])
        squeeze = (lid / (ye - yu + lid))[None, :]
        src_y = np.where(inside, top + (yy - top) * squeeze, yy).astype(np.float32)
        src_x = np.broadcast_to(xs.astype(np.float32)[None, :], src_y.shape).copy()
        frame[y0:y1, x0:x1] = cv2.remap(
            frame, src_x, src_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
