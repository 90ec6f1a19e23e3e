"""Measures of how a rendered mouth looks: its colours against the face's own, and seams.

- Colour: in CIELAB, the brightest pixels between the inner lips (the teeth) against the eye
  whites' a*/b*, and the darkest (the cavity) against the hue range of the lips.
- Seams: the gradient energy along a blend boundary in the output against the same band in the
  source (a visible edge or shadow raises it), and the fine detail inside the blended region
  against the source (a softened face lowers it).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from .face import LIP_LOWER_INNER, LIP_UPPER_INNER, Image, Points
from .look import eye_white_pixels, hue_deg, lip_pixels, to_lab

Mask = NDArray[np.float32]


@dataclass(frozen=True)
class MouthColour:
    teeth_lab: tuple[float, float, float]
    cavity_lab: tuple[float, float, float]
    eye_white_lab: tuple[float, float, float] | None  # None: no eye white visible
    lip_hue: tuple[float, float]  # 10th..90th percentile of the lips' hue, degrees
    teeth_ab_distance: float | None  # |Δa*, Δb*| teeth vs eye whites
    cavity_hue: float
    cavity_hue_outside: float  # degrees outside the lips' hue range (0 = inside)


def _hue_outside(h: float, lo: float, hi: float) -> float:
    def diff(a: float, b: float) -> float:
        return abs((a - b + 180.0) % 360.0 - 180.0)

    span = (hi - lo) % 360.0
    if (h - lo) % 360.0 <= span:
        return 0.0
    return min(diff(h, lo), diff(h, hi))


def mouth_colour(source: Image, source_pts: Points, out: Image, out_pts: Points) -> MouthColour:
    """Colours inside the open mouth of ``out`` against the face in ``source``.

    ``source_pts`` should be the refined mesh (478 points) so the eye whites can be found;
    ``out_pts`` are the output's landmarks (the inner-lip line bounds the mouth interior).
    """
    poly = np.vstack([out_pts[LIP_UPPER_INNER], out_pts[LIP_LOWER_INNER][::-1]])
    m = np.zeros(out.shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(poly * 4).astype(np.int32)], 255, cv2.LINE_AA, 2)
    # Keep clear of the lips' inner edge (the tracker's line is a pixel or two off).
    mw = float(np.linalg.norm(out_pts[291] - out_pts[61]))
    k = 2 * max(1, round(0.03 * mw)) + 1
    inner = np.asarray(cv2.erode(m, np.ones((k, k), np.uint8))) > 127
    px = out[inner]
    if len(px) < 6:
        raise ValueError("the mouth is not open in this frame")
    lab = to_lab(px.astype(np.float32))
    order = np.argsort(lab[:, 0])
    k = max(2, len(order) // 8)
    teeth = np.median(lab[order[-k:]], axis=0)
    cavity = np.median(lab[order[: max(2, len(order) // 4)]], axis=0)
    lips = to_lab(lip_pixels(source, source_pts).astype(np.float32))
    hues = hue_deg(lips)
    # Percentiles on the circle: around the median hue.
    med = float(np.degrees(np.arctan2(np.median(lips[:, 2]), np.median(lips[:, 1]))) % 360)
    rel = (hues - med + 180.0) % 360.0 - 180.0
    lo, hi = med + float(np.percentile(rel, 10)), med + float(np.percentile(rel, 90))
    whites = eye_white_pixels(source, source_pts)
    ew = to_lab(np.median(whites.astype(np.float32), axis=0)) if len(whites) >= 6 else None
    cav_h = float(hue_deg(cavity))
    return MouthColour(
        teeth_lab=(float(teeth[0]), float(teeth[1]), float(teeth[2])),
        cavity_lab=(float(cavity[0]), float(cavity[1]), float(cavity[2])),
        eye_white_lab=None if ew is None else (float(ew[0]), float(ew[1]), float(ew[2])),
        lip_hue=(lo % 360.0, hi % 360.0),
        teeth_ab_distance=None if ew is None else float(np.hypot(*(teeth[1:] - ew[1:]))),
        cavity_hue=cav_h,
        cavity_hue_outside=_hue_outside(cav_h, lo % 360.0, hi % 360.0),
    )


def _energy(gray: NDArray[np.float32], where: NDArray[np.bool_]) -> float:
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    e = gx * gx + gy * gy
    return float(e[where].mean()) if where.any() else 0.0


def _gray(img: Image) -> NDArray[np.float32]:
    return np.asarray(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), np.float32)


def seam_ratio(before: Image, after: Image, weight: Mask) -> float:
    """Gradient energy along the blend boundary of ``weight`` (0..1), after ÷ before.

    The band is where the weight passes through 0.5, widened by 2 px: a visible edge, a
    shadow line or a step in brightness there raises the ratio above 1.
    """
    edge = ((weight > 0.3) & (weight < 0.7)).astype(np.uint8)
    band = cv2.dilate(edge, np.ones((5, 5), np.uint8)) > 0
    b = _energy(_gray(before), band)
    return _energy(_gray(after), band) / max(b, 1e-6)


def detail_ratio(before: Image, after: Image, region: NDArray[np.bool_]) -> float:
    """Fine detail (Laplacian energy) inside ``region``, after ÷ before (< 1: softer)."""

    def lap(img: Image) -> float:
        g = cv2.Laplacian(_gray(img), cv2.CV_32F, ksize=3)
        return float((g * g)[region].mean()) if region.any() else 0.0

    return lap(after) / max(lap(before), 1e-6)
