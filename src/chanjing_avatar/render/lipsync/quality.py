"""Measures of how a rendered mouth looks: its colours against the face's own, and seams.

- Colour: in CIELAB, the brightest pixels between the inner lips (the teeth) against the eye
  whites' a*/b*, and the darkest (the cavity) against the hue range of the lips.
- Seams: the gradient energy along a blend boundary in the output against the same band in the
  source (a visible edge or shadow raises it), and the fine detail inside the blended region
  against the source (a softened face lowers it).
- Ghosts: a faint second copy of the chin and lip edges a little further down the face (the
  "double chin" of pasting a closed mouth over a moving one), as the opacity of that copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from .face import (
    CHIN_INNER,
    JAW,
    LIP_LOWER_INNER,
    LIP_LOWER_OUTER,
    LIP_UPPER_INNER,
    LIP_UPPER_OUTER,
    STABLE,
    Image,
    Points,
)
from .look import eye_white_pixels, hue_deg, lip_pixels, to_lab
from .mouth import face_axes
from .warp import rbf_eval, rbf_weights

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


# Landmarks that carry the source's lower face onto the output's: lips, jaw, chin and the head.
_GHOST_ALIGN = LIP_LOWER_OUTER + LIP_UPPER_OUTER + JAW + CHIN_INNER + STABLE


def ghost_ratio(before: Image, before_pts: Points, after: Image, after_pts: Points) -> float:
    """Opacity of a copy of the lower face shifted down the face in ``after`` (0 = none).

    The region is the output's lower face, from just below the lower lip to 0.3 mouth widths
    below the jaw line. The source is carried into the output's geometry by its landmarks (a
    smooth warp: neutralising and the new mouth rightly move the chin) and moved by the small shift
    that fits best (the tracker's error); then the output's fine detail is fitted as
    ``b0 × source + b1 × source moved d further down`` for ``d`` from 0.1 to 0.3 mouth widths.
    The largest ``b1 / (b0 + b1)`` is the figure: a second chin or lip line that the source
    explains only as a displaced copy of itself. A 30 % copy 0.1 mouth widths down reads ≈ 0.2.
    """
    _, _, ey, mw = face_axes(after_pts)
    h, w = after.shape[:2]
    lip = after_pts[LIP_LOWER_OUTER].astype(np.float64) + 0.04 * mw * ey
    jaw = after_pts[JAW[2:15]].astype(np.float64)[::-1] + 0.3 * mw * ey
    poly = np.vstack([lip, jaw])
    x0, y0 = np.maximum(0, np.floor(poly.min(0)).astype(int) - 4)
    x1, y1 = np.minimum([w, h], np.ceil(poly.max(0)).astype(int) + 4)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return 0.0
    region = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(region, [np.round((poly - [x0, y0]) * 4).astype(np.int32)], 1, cv2.LINE_AA, 2)
    inside = region > 0
    xs = np.arange(x0, x1, dtype=np.float64)
    ys = np.arange(y0, y1, dtype=np.float64)
    ctrl = after_pts[_GHOST_ALIGN].astype(np.float64)
    back = (before_pts[_GHOST_ALIGN] - after_pts[_GHOST_ALIGN]).astype(np.float64)
    sigma = 0.3 * mw
    field = rbf_eval(ctrl, rbf_weights(ctrl, back, sigma), xs, ys, sigma)
    src = _gray(before)
    fine = 0.07 * mw  # detail finer than this: edges, not shading

    def detail(g: NDArray[np.float32]) -> NDArray[np.float32]:
        return np.asarray((g - cv2.GaussianBlur(g, (0, 0), fine))[inside], np.float32)

    moved: dict[float, NDArray[np.float32]] = {}

    def source(down: float) -> NDArray[np.float32]:
        """The aligned source, moved ``down`` px down the face."""
        if down not in moved:
            mx = field[..., 0] + xs[None, :] - down * ey[0]
            my = field[..., 1] + ys[:, None] - down * ey[1]
            g = cv2.remap(src, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
            moved[down] = detail(np.asarray(g, np.float32))
        return moved[down]

    out = detail(_gray(after)[y0:y1, x0:x1])

    def misfit(down: float) -> float:
        s = source(down)
        k = float(out @ s) / max(float(s @ s), 1e-6)
        return float(((out - k * s) ** 2).sum())

    # The best alignment takes the tracker's error; then a copy further down the face.
    step = max(0.5, 0.01 * mw)
    slack = max(1.0, 0.05 * mw)
    first = min(np.arange(-slack, slack + 1e-9, step), key=misfit)
    worst = 0.0
    for d in np.arange(max(3.0, 0.1 * mw), 0.3 * mw + 1e-9, 2 * step):
        b, *_ = np.linalg.lstsq(np.stack([source(first), source(first + d)], 1), out, rcond=None)
        if b[0] > 0 and b[1] > 0:
            worst = max(worst, float(b[1] / (b[0] + b[1])))
    return worst
