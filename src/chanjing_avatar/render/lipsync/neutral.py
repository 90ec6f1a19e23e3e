"""Neutralising the source's own mouth motion: the lower face is pasted from a closed-mouth
reference frame, aligned to the current head pose and blended, before the new mouth is drawn."""

from __future__ import annotations

import cv2
import numpy as np

from .face import ALIGN, JAW, Image, Points, apply_affine, similarity

# Lower-face outline: the jaw from ear to ear, closed over the cheeks and under the nose.
_TOP = [361, 323, 411, 425, 423, 327, 2, 98, 203, 205, 187, 93, 132]


class LowerFacePaster:
    def __init__(self, ref: Image, ref_pts: Points) -> None:
        self.ref_pts = ref_pts
        mw = float(np.linalg.norm(ref_pts[291] - ref_pts[61]))
        h, w = ref.shape[:2]
        chin_dir = ref_pts[152] - (ref_pts[33] + ref_pts[263]) / 2
        chin_dir = chin_dir / (np.linalg.norm(chin_dir) + 1e-6)
        jaw = ref_pts[JAW].astype(np.float64)
        centre = ref_pts[JAW + _TOP].mean(axis=0)
        # Reach a little past the jaw line so a chin that drops in the source stays covered.
        jaw = jaw + (jaw - centre) * 0.06 + chin_dir * 0.12 * mw
        poly = np.vstack([jaw, ref_pts[_TOP].astype(np.float64)])
        feather = max(2.0, 0.1 * mw)
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
        self._ring = (self._mask > 0.05) & (self._mask < 0.6)

    def paste(self, frame: Image, cur_pts: Points) -> Points:
        """Paste the reference lower face onto ``frame`` (in place); the landmarks it now shows."""
        m = similarity(self.ref_pts[ALIGN], cur_pts[ALIGN])
        x0, y0, x1, y1 = self._box
        corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float32)
        c = apply_affine(m, corners)
        h, w = frame.shape[:2]
        bx0 = int(max(0, np.floor(c[:, 0].min())))
        by0 = int(max(0, np.floor(c[:, 1].min())))
        bx1 = int(min(w, np.ceil(c[:, 0].max())))
        by1 = int(min(h, np.ceil(c[:, 1].max())))
        if bx1 - bx0 < 4 or by1 - by0 < 4:
            return apply_affine(m, self.ref_pts)
        # Patch coords → frame ROI coords.
        mm = m.copy()
        mm[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64) - np.array([bx0, by0], np.float64)
        size = (bx1 - bx0, by1 - by0)
        patch = cv2.warpAffine(
            self._patch, mm, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
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
        blended = cv2.blendLinear(patch, roi, mask, 1.0 - mask)
        frame[by0:by1, bx0:bx1] = blended
        return apply_affine(m, self.ref_pts)
