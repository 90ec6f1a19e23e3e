"""Subtle life for a still image: slow head motion and blinks, seeded and deterministic."""

from __future__ import annotations

import math
import random

import cv2
import numpy as np
from numpy.typing import NDArray

from .face import EYE_L_LOWER, EYE_L_UPPER, EYE_R_LOWER, EYE_R_UPPER, Image, Points
from .mouth import _rbf_eval, _rbf_weights

_BLINK_S = 0.18
_BROWS = [70, 63, 105, 66, 107, 300, 293, 334, 296, 336]
_EYE_FIXED = [33, 133, 362, 263, 7, 163, 246, 161, 157, 173, 398, 384, 388, 466, 390, 249]


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
    """Lower the upper eyelids by ``amount`` (1 = shut), in place."""
    if amount <= 0.02:
        return
    p = pts.astype(np.float64)
    for upper, lower in ((EYE_L_UPPER, EYE_L_LOWER), (EYE_R_UPPER, EYE_R_LOWER)):
        up = p[upper]
        lo = p[lower]
        disp = (lo - up) * 0.92 * amount
        fixed = p[_EYE_FIXED + _BROWS + lower]
        eye_w = float(np.linalg.norm(p[upper[0]] - p[upper[-1]])) * 2.0
        x0 = int(max(0, fixed[:, 0].min() - eye_w * 0.3))
        x1 = int(min(frame.shape[1], fixed[:, 0].max() + eye_w * 0.3))
        y0 = int(max(0, fixed[:, 1].min() - eye_w * 0.3))
        y1 = int(min(frame.shape[0], fixed[:, 1].max() + eye_w * 0.3))
        if x1 - x0 < 6 or y1 - y0 < 6:
            continue
        ctrl = np.vstack([up + disp, fixed])
        vals = np.vstack([-disp, np.zeros_like(fixed)])
        sigma = 0.3 * eye_w
        wts = _rbf_weights(ctrl, vals, sigma, reg=0.01)
        step = max(2.0, eye_w / 10)
        gx = np.linspace(x0, x1 - 1, max(4, int((x1 - x0) / step) + 1))
        gy = np.linspace(y0, y1 - 1, max(4, int((y1 - y0) / step) + 1))
        grid = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
        f = _rbf_eval(ctrl, wts, grid, sigma).reshape(len(gy), len(gx), 2).astype(np.float32)
        f = np.asarray(
            cv2.resize(f, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR), np.float32
        )
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        edge = np.minimum.reduce([xx - x0, x1 - 1 - xx, yy - y0, y1 - 1 - yy]) / max(
            3.0, 0.15 * (y1 - y0)
        )
        taper = np.clip(edge, 0, 1)[..., None]
        f *= taper
        frame[y0:y1, x0:x1] = cv2.remap(
            frame, xx + f[..., 0], yy + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
