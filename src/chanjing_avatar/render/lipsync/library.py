"""The person's own mouth: real mouth interiors from the source video, keyed by lip opening.

While the source is scanned, each frame's mouth region is aligned to the reference frame (a
similarity on stable landmarks) and kept when it is the sharpest of its opening class. At render
time the interior between the target inner lips is taken from the sample whose opening is closest,
warped so that its inner lips meet the target's (the Video Rewrite idea, with landmarks instead of
hand-marked points). Stills and clips whose mouth never opens keep the synthesised interior.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from .face import ALIGN, LIP_LOWER_INNER, LIP_UPPER_INNER, Image, Points, inner_gap, similarity
from .warp import rbf_eval, rbf_weights

F64 = NDArray[np.float64]
_BIN = 0.03  # opening classes, as a fraction of the mouth width
MIN_USEFUL_GAP = 0.2  # a library whose widest opening is smaller is not used
_INNER = LIP_UPPER_INNER + LIP_LOWER_INNER


@dataclass
class MouthSample:
    gap: float
    crop: Image  # mouth region in reference-frame coordinates
    inner: F64  # the 22 inner-lip points in crop coordinates (upper 11, lower 11)
    sharpness: float


class MouthLibrary:
    def __init__(self, ref_pts: Points, frame_size: tuple[int, int]) -> None:
        self.ref_pts = ref_pts
        mw = float(np.linalg.norm(ref_pts[291] - ref_pts[61]))
        self.mw = mw
        c = (ref_pts[13] + ref_pts[14]) / 2
        w, h = frame_size
        self._x0 = int(max(0, c[0] - 0.85 * mw))
        self._y0 = int(max(0, c[1] - 0.5 * mw))
        self._x1 = int(min(w, c[0] + 0.85 * mw))
        self._y1 = int(min(h, c[1] + 0.8 * mw))
        self.samples: dict[int, MouthSample] = {}

    def add(self, frame: Image, pts: Points) -> None:
        """Keep this frame's mouth if it is the sharpest of its opening class so far."""
        gap = inner_gap(pts)
        if gap < 0.04:
            return
        m = similarity(pts[ALIGN], self.ref_pts[ALIGN])  # frame → reference coordinates
        mm = m.copy()
        mm[:, 2] -= [self._x0, self._y0]
        size = (self._x1 - self._x0, self._y1 - self._y0)
        if size[0] < 8 or size[1] < 8:
            return
        crop = np.asarray(
            cv2.warpAffine(frame, mm, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE),
            np.uint8,
        )
        inner = pts[_INNER].astype(np.float64) @ mm[:, :2].T + mm[:, 2]
        gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        sharp = float(cv2.Laplacian(gray, cv2.CV_32F).var())
        k = int(gap / _BIN)
        old = self.samples.get(k)
        if old is None or sharp > old.sharpness:
            self.samples[k] = MouthSample(gap, crop, inner, sharp)

    @property
    def widest(self) -> float:
        return max((s.gap for s in self.samples.values()), default=0.0)

    @property
    def usable(self) -> bool:
        return self.widest >= MIN_USEFUL_GAP

    def interior(
        self,
        pts: Points,
        up_curve: F64,
        lo_curve: F64,
        box: tuple[int, int, int, int],
    ) -> NDArray[np.float32] | None:
        """RGB of the box (x0, y0, x1, y1, frame coordinates) from the closest real mouth.

        ``pts`` are the frame's (reference-aligned) landmarks, ``up_curve``/``lo_curve`` the
        target inner lips (11 points each, frame coordinates).
        """
        if not self.samples:
            return None
        mw = float(np.linalg.norm(pts[291] - pts[61])) + 1e-6
        target = float(np.mean(np.linalg.norm(lo_curve[4:7] - up_curve[4:7], axis=1))) / mw
        if target < 0.05:
            return None  # a slit: nothing of the sample would show
        s = min(self.samples.values(), key=lambda s: abs(s.gap - target))
        m = similarity(pts[ALIGN], self.ref_pts[ALIGN])  # frame → reference
        # [x, y, 1] @ to_crop: frame → crop coordinates.
        to_crop = np.vstack([m[:, :2].T, m[:, 2] - [self._x0, self._y0]])
        curves = np.vstack([up_curve, lo_curve])
        tgt = np.c_[curves, np.ones(len(curves))] @ to_crop
        sigma = 0.3 * self.mw
        # Inner lips of the sample onto the target's; an affine part carries the rest.
        a, *_ = np.linalg.lstsq(np.c_[tgt, np.ones(len(tgt))], s.inner, rcond=None)
        resid = s.inner - np.c_[tgt, np.ones(len(tgt))] @ a
        w = rbf_weights(tgt, resid, sigma, reg=0.05)
        # Both parts evaluated in frame coordinates: the affine one composed with ``to_crop``,
        # the RBF one with its width scaled (a similarity scales all distances alike).
        x0, y0, x1, y1 = box
        xs = np.arange(x0, x1, dtype=np.float64)
        ys = np.arange(y0, y1, dtype=np.float64)
        aff = to_crop @ a[:2]
        aff[2] += a[2]
        scale = float(np.hypot(m[0, 0], m[1, 0]))
        src = rbf_eval(curves, w, xs, ys, sigma / scale)
        src += xs[None, :, None] * aff[0] + ys[:, None, None] * aff[1] + aff[2]
        mapx = np.ascontiguousarray(src[..., 0], np.float32)
        mapy = np.ascontiguousarray(src[..., 1], np.float32)
        out = cv2.remap(s.crop, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return np.asarray(out, np.float32)
