"""Smooth backward warps from Gaussian radial basis functions over landmark control points."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from .face import Image

F64 = NDArray[np.float64]


def rbf_weights(ctrl: F64, values: F64, sigma: float, reg: float = 0.02) -> F64:
    dx = ctrl[:, None, 0] - ctrl[None, :, 0]
    dy = ctrl[:, None, 1] - ctrl[None, :, 1]
    d2 = dx * dx + dy * dy
    k = np.exp(-d2 / (2 * sigma * sigma))
    k[np.diag_indices_from(k)] += reg
    return np.asarray(np.linalg.solve(k, values), dtype=np.float64)


def rbf_eval(ctrl: F64, weights: F64, gx: F64, gy: F64, sigma: float) -> F64:
    """The field at every point of the grid ``gx`` × ``gy``: (len(gy), len(gx), 2).

    A Gaussian factors into an x and a y part, so the sum over control points is one small
    matrix product per component instead of a distance for every grid point and control point.
    """
    kx = np.exp(-((gx[:, None] - ctrl[None, :, 0]) ** 2) / (2 * sigma * sigma))
    ky = np.exp(-((gy[:, None] - ctrl[None, :, 1]) ** 2) / (2 * sigma * sigma))
    return np.stack([(ky * weights[:, k]) @ kx.T for k in (0, 1)], -1)


def smoothstep(x: F64) -> F64:
    x = np.clip(x, 0.0, 1.0)
    return np.asarray(x * x * (3 - 2 * x), dtype=np.float64)


def edge_taper(gx: F64, gy: F64, box: tuple[int, int, int, int]) -> F64:
    """(len(gy), len(gx), 1) weights: 1 inside the box, easing to 0 at its edge (no seam)."""
    x0, y0, x1, y1 = box
    ramp = max(4.0, 0.12 * min(x1 - x0, y1 - y0))
    ex = np.minimum(gx - x0, x1 - 1 - gx)
    ey = np.minimum(gy - y0, y1 - 1 - gy)
    return smoothstep(np.minimum(ey[:, None], ex[None, :]) / ramp)[..., None]


def backward_warp(
    frame: Image, dst: F64, back: F64, pinned: F64, *, sigma: float, margin: float
) -> None:
    """Move image content so that what was at ``dst + back`` appears at ``dst`` (in place).

    Only the box around ``dst`` (plus ``margin``) changes; ``pinned`` points and the box edge
    stay put, and the field fades out toward the edge, so there is no seam.
    """
    h, w = frame.shape[:2]
    x0 = int(max(0, dst[:, 0].min() - margin))
    x1 = int(min(w, dst[:, 0].max() + margin))
    y0 = int(max(0, dst[:, 1].min() - margin))
    y1 = int(min(h, dst[:, 1].max() + margin))
    if x1 - x0 < 8 or y1 - y0 < 8 or float(np.abs(back).max(initial=0.0)) < 0.5:
        return  # nothing moves by half a pixel (a closed mouth, tracker jitter): no resampling
    rw, rh = x1 - x0, y1 - y0
    step = max(3.0, sigma / 2)
    gx = np.linspace(x0, x1 - 1, max(4, int(rw / step) + 1))
    gy = np.linspace(y0, y1 - 1, max(4, int(rh / step) + 1))
    border = np.array(
        [[x, y] for x in np.linspace(x0, x1, 7) for y in (y0, y1)]
        + [[x, y] for y in np.linspace(y0, y1, 7)[1:-1] for x in (x0, x1)]
    )
    inside = (pinned[:, 0] > x0) & (pinned[:, 0] < x1) & (pinned[:, 1] > y0) & (pinned[:, 1] < y1)
    ctrl = np.vstack([dst, pinned[inside], border])
    vals = np.vstack([back, np.zeros((int(inside.sum()) + len(border), 2))])
    field = rbf_eval(ctrl, rbf_weights(ctrl, vals, sigma), gx, gy, sigma)
    field *= edge_taper(gx, gy, (x0, y0, x1, y1))
    coarse = field.astype(np.float32)
    full = np.asarray(cv2.resize(coarse, (rw, rh), interpolation=cv2.INTER_LINEAR), np.float32)
    mapx = full[..., 0] + np.arange(x0, x1, dtype=np.float32)[None, :]
    mapy = full[..., 1] + np.arange(y0, y1, dtype=np.float32)[:, None]
    frame[y0:y1, x0:x1] = cv2.remap(
        frame, mapx, mapy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
