"""Neutralising the source's own mouth motion before the new mouth is drawn.

Two steps per frame, both aligned to the current head pose by a similarity transform on stable
landmarks: the frame's own jaw, chin and lips are *warped* to where they sit in a closed-mouth
reference frame (so the chin outline moves rather than being pasted over: no second chin), then
only the mouth region of the reference (lips and the skin just around them, well inside the face)
is pasted in with a feathered, colour-matched blend. Resampling is bicubic: a bilinear resample
here and another in the mouth warp visibly soften the lower face.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from .face import (
    ALIGN,
    CHIN_INNER,
    JAW,
    LIP_LOWER_OUTER,
    LIP_UPPER_OUTER,
    STABLE,
    Image,
    Points,
    apply_affine,
    similarity,
)
from .warp import backward_warp

_WARPED = JAW + CHIN_INNER + LIP_UPPER_OUTER + LIP_LOWER_OUTER


def mouth_region(pts: Points) -> NDArray[np.float64]:
    """An ellipse around the lips (wider than them, short of the nostrils and the chin line)."""
    ex = (pts[263] - pts[33]).astype(np.float64)
    ex /= np.linalg.norm(ex) + 1e-9
    ey = np.array([-ex[1], ex[0]])
    mw = float(np.linalg.norm(pts[291] - pts[61]))
    c = ((pts[13] + pts[14]) / 2).astype(np.float64) + 0.05 * mw * ey
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    return np.asarray(
        c + np.outer(np.cos(t) * 0.78 * mw, ex) + np.outer(np.sin(t) * 0.36 * mw, ey), np.float64
    )


class LowerFacePaster:
    def __init__(self, ref: Image, ref_pts: Points) -> None:
        self.ref_pts = ref_pts
        mw = float(np.linalg.norm(ref_pts[291] - ref_pts[61]))
        self._mw = mw
        h, w = ref.shape[:2]
        poly = mouth_region(ref_pts)
        feather = max(2.0, 0.12 * mw)
        x0 = int(max(0, poly[:, 0].min() - 3 * feather))
        y0 = int(max(0, poly[:, 1].min() - 3 * feather))
        x1 = int(min(w, poly[:, 0].max() + 3 * feather))
        y1 = int(min(h, poly[:, 1].max() + 3 * feather))
        self._box = (x0, y0, x1, y1)
        self._patch = np.ascontiguousarray(ref[y0:y1, x0:x1])
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        pts = np.round((poly - [x0, y0]) * 4).astype(np.int32)
        cv2.fillPoly(mask, [pts], 1.0, lineType=cv2.LINE_AA, shift=2)
        # Shrink then blur: the feather stays inside the outline.
        k = int(feather) | 1
        eroded = cv2.erode(mask, np.ones((k, k), np.uint8))
        self._mask = np.asarray(cv2.GaussianBlur(eroded, (0, 0), feather / 2), np.float32)
        self.last_mask: tuple[NDArray[np.float32], tuple[int, int]] | None = None

    def paste(self, frame: Image, cur_pts: Points) -> Points:
        """Close the mouth of ``frame`` (in place); return the landmarks it now shows."""
        m = similarity(self.ref_pts[ALIGN], cur_pts[ALIGN])
        shown = apply_affine(m, self.ref_pts)
        mw = self._mw * float(np.hypot(m[0, 0], m[1, 0]))
        # 1. The frame's own jaw, chin and lips move to the reference's (posed) places.
        idx = _WARPED
        backward_warp(
            frame,
            shown[idx].astype(np.float64),
            (cur_pts[idx] - shown[idx]).astype(np.float64),
            shown[STABLE].astype(np.float64),
            sigma=0.3 * mw,
            margin=0.35 * mw,
        )
        # 2. The reference's mouth region on top.
        x0, y0, x1, y1 = self._box
        corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float32)
        c = apply_affine(m, corners)
        h, w = frame.shape[:2]
        bx0 = int(max(0, np.floor(c[:, 0].min())))
        by0 = int(max(0, np.floor(c[:, 1].min())))
        bx1 = int(min(w, np.ceil(c[:, 0].max())))
        by1 = int(min(h, np.ceil(c[:, 1].max())))
        if bx1 - bx0 < 4 or by1 - by0 < 4:
            return shown
        # Patch coords → frame ROI coords.
        mm = m.copy()
        mm[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64) - np.array([bx0, by0], np.float64)
        size = (bx1 - bx0, by1 - by0)
        patch = cv2.warpAffine(
            self._patch, mm, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
        )
        mask = cv2.warpAffine(self._mask, mm, size, flags=cv2.INTER_LINEAR, borderValue=0.0)
        roi = frame[by0:by1, bx0:bx1]
        ring = cv2.inRange(mask, 0.05, 0.6)
        if cv2.countNonZero(ring) > 20:
            # Follow the source's lighting: match the colour along the blend ring.
            cur = np.array(cv2.mean(roi, mask=ring)[:3])
            ref = np.array(cv2.mean(patch, mask=ring)[:3])
            gain = np.clip(cur / np.maximum(ref, 1.0), 0.8, 1.25)
            patch = cv2.multiply(patch, np.array([*gain, 1.0]), dtype=cv2.CV_8U)
        frame[by0:by1, bx0:bx1] = cv2.blendLinear(patch, roi, mask, 1.0 - mask)
        self.last_mask = (np.asarray(mask, np.float32), (bx0, by0))
        return shown
