"""The colours, sharpness and grain of one face, measured once, for painting inside its mouth.

Teeth take their colour from the same face's eye whites (same light, same white balance), the
cavity and tongue take the lips' hue, darkened; the painted interior is blurred to the face's own
sharpness and given its grain, so it is never cleaner or colder than the skin around it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from .face import (
    EYE_L_RING,
    EYE_R_RING,
    IRIS_L,
    IRIS_R,
    LIP_LOWER_INNER,
    LIP_LOWER_OUTER,
    LIP_UPPER_INNER,
    LIP_UPPER_OUTER,
    Image,
    Points,
)

RGB = NDArray[np.float32]
_CHEEKS = (50, 280, 205, 425, 187, 411)


def to_lab(rgb: NDArray[np.generic]) -> NDArray[np.float32]:
    """sRGB (0..255, any shape ending in 3) → CIELAB (L 0..100, a*, b*)."""
    a = np.asarray(rgb, np.float32).reshape(-1, 1, 3) / 255.0
    return np.asarray(cv2.cvtColor(a, cv2.COLOR_RGB2Lab), np.float32).reshape(np.shape(rgb))


def from_lab(lab: NDArray[np.generic]) -> RGB:
    a = np.asarray(lab, np.float32).reshape(-1, 1, 3)
    out = np.asarray(cv2.cvtColor(a, cv2.COLOR_Lab2RGB), np.float32) * 255.0
    return np.asarray(np.clip(out, 0, 255).reshape(np.shape(lab)), np.float32)


def hue_deg(lab: NDArray[np.generic]) -> NDArray[np.float64]:
    lab = np.asarray(lab, np.float64)
    return np.asarray(np.degrees(np.arctan2(lab[..., 2], lab[..., 1])) % 360.0)


def _poly_mask(shape: tuple[int, ...], poly: NDArray[np.generic]) -> NDArray[np.bool_]:
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(np.asarray(poly) * 4).astype(np.int32)], 255, cv2.LINE_AA, 2)
    return m > 127


def lip_pixels(rgb: Image, pts: Points) -> NDArray[np.uint8]:
    """Pixels of the lips: between the outer and the inner lip lines (corners left out)."""
    upper = np.vstack([pts[LIP_UPPER_OUTER[2:-2]], pts[LIP_UPPER_INNER[2:-2]][::-1]])
    lower = np.vstack([pts[LIP_LOWER_OUTER[2:-2]], pts[LIP_LOWER_INNER[2:-2]][::-1]])
    m = _poly_mask(rgb.shape, upper) | _poly_mask(rgb.shape, lower)
    m &= ~_poly_mask(rgb.shape, np.vstack([pts[LIP_UPPER_INNER], pts[LIP_LOWER_INNER][::-1]]))
    return np.asarray(rgb[m], np.uint8)


def eye_white_pixels(rgb: Image, pts: Points) -> NDArray[np.uint8]:
    """The brighter half of the sclera: eye openings minus the irises (needs 478 landmarks)."""
    if len(pts) < 478:
        return np.zeros((0, 3), np.uint8)
    found: list[NDArray[np.uint8]] = []
    for ring, iris in ((EYE_L_RING, IRIS_L), (EYE_R_RING, IRIS_R)):
        eye = _poly_mask(rgb.shape, pts[ring])
        if eye.sum() > 60:  # off the lid margins, where the eye is big enough to spare them
            eye = cv2.erode(eye.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        c = pts[iris[0]]
        r = float(np.mean(np.linalg.norm(pts[iris[1:]] - c, axis=1)))
        yy, xx = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
        eye &= (xx - c[0]) ** 2 + (yy - c[1]) ** 2 > (1.15 * r + 0.5) ** 2
        px = rgb[eye]
        if len(px) >= 4:
            found.append(px)
    if not found:
        return np.zeros((0, 3), np.uint8)
    px = np.vstack(found)
    # The whitest third (bright, little colour): lids, lashes and iris edges drop out.
    lab = to_lab(px.astype(np.float32))
    score = lab[:, 0] - 1.5 * np.hypot(lab[:, 1], lab[:, 2])
    return np.asarray(px[score >= np.percentile(score, 67)], np.uint8)


def _sharpness_sigma(gray: NDArray[np.float32]) -> float:
    """The blur (Gaussian sigma, px) of a region's edges: how much a 1 px blur still removes.

    For an edge already blurred by s, blurring by 1 more keeps s/sqrt(s²+1) of its gradient energy.
    """

    def energy(g: NDArray[np.float32]) -> float:
        gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
        return float(np.sqrt(np.mean(gx * gx + gy * gy)))

    e0 = energy(gray)
    if e0 < 1e-3:
        return 1.0
    r = min(0.97, energy(np.asarray(cv2.GaussianBlur(gray, (0, 0), 1.0), np.float32)) / e0)
    return float(np.clip(r / np.sqrt(max(1e-6, 1 - r * r)), 0.4, 3.0))


@dataclass(frozen=True)
class Appearance:
    """Colours (RGB 0..255) and texture of one face, for the inside of its mouth."""

    lip: RGB
    skin_luma: float
    teeth: RGB  # the eye whites' colour, at teeth brightness
    cavity: RGB  # the lips' hue, dark
    tongue: RGB  # the lips' hue, a little darker and less saturated
    blur: float  # Gaussian sigma (px) that matches the face's sharpness
    grain: float  # luma noise std (0..255) of the skin
    teeth_from: str  # "eye whites" or "skin" (eyes not visible)


def sample_appearance(rgb: Image, pts: Points) -> Appearance:
    """Measure a face. ``pts`` with the 10 iris points (refined mesh) let teeth match the eyes."""
    h, w = rgb.shape[:2]
    lips = lip_pixels(rgb, pts)
    if len(lips) < 8:  # a tiny face: the middle of the lower lip
        lips = np.array(
            [
                rgb[int(np.clip(p[1], 0, h - 1)), int(np.clip(p[0], 0, w - 1))]
                for p in (pts[LIP_LOWER_OUTER[2:-2]] + pts[LIP_LOWER_INNER[2:-2]]) / 2
            ]
        )
    lip = np.median(lips.astype(np.float32), axis=0).astype(np.float32)
    lip_lab = to_lab(lip)
    cheeks = []
    for i in _CHEEKS:
        x, y = int(np.clip(pts[i][0], 0, w - 1)), int(np.clip(pts[i][1], 0, h - 1))
        cheeks.append(float(rgb[y, x].astype(np.float32) @ np.array([0.299, 0.587, 0.114])))
    skin_luma = float(np.median(cheeks))
    skin_lab = to_lab(
        np.median(
            np.array(
                [
                    rgb[int(np.clip(pts[i][1], 0, h - 1)), int(np.clip(pts[i][0], 0, w - 1))]
                    for i in _CHEEKS
                ],
                np.float32,
            ),
            axis=0,
        )
    )
    whites = eye_white_pixels(rgb, pts)
    wl = to_lab(np.median(whites.astype(np.float32), axis=0)) if len(whites) >= 6 else None
    skin_c = float(np.hypot(skin_lab[1], skin_lab[2]))
    # Narrowed or hidden eyes yield lid skin, not sclera: then the teeth come from the skin.
    if wl is not None and np.hypot(wl[1], wl[2]) < 0.6 * skin_c and wl[0] > 0.75 * skin_lab[0]:
        teeth_from = "eye whites"
        # Teeth sit in the mouth's shade: a little below the sclera's brightness, never above
        # the skin's by much (a glint on glasses must not make them glow).
        tl = float(np.clip(wl[0] * 0.92, 35.0, min(92.0, skin_lab[0] + 18.0)))
        teeth_lab = np.array([tl, wl[1], wl[2]], np.float32)
    else:
        teeth_from = "skin"
        teeth_lab = np.array(
            [min(90.0, skin_lab[0] + 8.0), skin_lab[1] * 0.3, skin_lab[2] * 0.45], np.float32
        )
    cavity_lab = np.array(
        [max(5.0, 0.16 * lip_lab[0]), lip_lab[1] * 0.6, lip_lab[2] * 0.6], np.float32
    )
    tongue_lab = np.array([0.6 * lip_lab[0], lip_lab[1] * 1.0, lip_lab[2] * 0.9], np.float32)
    # Sharpness and grain from the lower face around the mouth.
    mw = float(np.linalg.norm(pts[291] - pts[61]))
    c = ((pts[13] + pts[14]) / 2).astype(np.float64)
    x0, x1 = int(max(0, c[0] - mw)), int(min(w, c[0] + mw))
    y0, y1 = int(max(0, c[1] - 0.7 * mw)), int(min(h, c[1] + 0.9 * mw))
    region = cv2.cvtColor(rgb[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(np.float32)
    blur = _sharpness_sigma(region) if region.size >= 64 else 1.0
    grain = 0.0
    patches = []
    r = max(2, int(0.08 * mw))
    for i in (205, 425, 50, 280):
        x, y = int(pts[i][0]), int(pts[i][1])
        if r <= x < w - r and r <= y < h - r:
            p = cv2.cvtColor(rgb[y - r : y + r, x - r : x + r], cv2.COLOR_RGB2GRAY)
            p = p.astype(np.float32)
            patches.append(float(np.std(p - cv2.GaussianBlur(p, (0, 0), 1.5))))
    if patches:
        grain = float(np.clip(np.median(patches), 0.0, 12.0))
    return Appearance(
        lip=lip,
        skin_luma=skin_luma,
        teeth=from_lab(teeth_lab),
        cavity=from_lab(cavity_lab),
        tongue=from_lab(tongue_lab),
        blur=blur,
        grain=grain,
        teeth_from=teeth_from,
    )
