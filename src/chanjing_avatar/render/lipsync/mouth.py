"""The mouth: a smooth warp of lips, jaw and chin, then the inside of the mouth painted in.

The warp is a backward map built from Gaussian radial basis functions over FaceMesh control
points. The upper and lower halves get separate fields (their inner-lip points coincide when the
mouth is closed but move apart), joined along the lip line, where the painted cavity hides the seam.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from .face import (
    JAW,
    LIP_LOWER_INNER,
    LIP_LOWER_OUTER,
    LIP_UPPER_INNER,
    LIP_UPPER_OUTER,
    STABLE,
    Image,
    Points,
)
from .library import MouthLibrary
from .look import Appearance, sample_appearance
from .warp import edge_taper, rbf_eval, rbf_weights

__all__ = ["Appearance", "render_mouth", "sample_appearance"]

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]

MAX_OPEN = 0.42  # inner-lip gap at full opening, as a fraction of mouth width
# How far the jaw outline follows the chin (1 at the chin, 0 at the ears).
_JAW_WEIGHT = dict(
    zip(
        JAW,
        [
            0.0,
            0.06,
            0.16,
            0.3,
            0.45,
            0.6,
            0.72,
            0.78,
            0.8,
            0.78,
            0.72,
            0.6,
            0.45,
            0.3,
            0.16,
            0.06,
            0.0,
        ],
        strict=True,
    )
)
_CHIN_WEIGHT = {
    18: 0.9,
    200: 0.84,
    199: 0.8,
    175: 0.78,
    83: 0.8,
    313: 0.8,
    201: 0.55,
    421: 0.55,
    208: 0.7,
    428: 0.7,
    32: 0.5,
    262: 0.5,
    194: 0.6,
    418: 0.6,
    204: 0.45,
    424: 0.45,
}


def face_axes(pts: Points) -> tuple[F64, F64, F64, float]:
    """Centre of the mouth, unit right and down axes of the face, and the mouth width."""
    ex = (pts[263] - pts[33]).astype(np.float64)
    ex /= np.linalg.norm(ex) + 1e-9
    ey = np.array([-ex[1], ex[0]])
    c = ((pts[13] + pts[14]) / 2).astype(np.float64)
    w = float(np.linalg.norm(pts[291] - pts[61]))
    return c, ex, ey, w


@dataclass
class MouthTargets:
    """Displacements (pixels, image axes) of control points for one frame."""

    upper_idx: list[int]
    upper_disp: F64
    lower_idx: list[int]
    lower_disp: F64
    up_curve: F64  # target upper inner lip, (11, 2) image coords
    lo_curve: F64  # target lower inner lip


# Control points in the order of MouthTargets: lips inner/outer interleaved, then chin and jaw
# (lower half), then the stable points with no motion.
_UPPER_IDX = [i for pair in zip(LIP_UPPER_INNER, LIP_UPPER_OUTER, strict=True) for i in pair]
_LOWER_IDX = [i for pair in zip(LIP_LOWER_INNER, LIP_LOWER_OUTER, strict=True) for i in pair]
_DROP = {**_CHIN_WEIGHT, **_JAW_WEIGHT}
_DROP_IDX = list(_DROP)
_DROP_WT = np.array(list(_DROP.values()))
_CORNER = np.isin(np.arange(11), (0, 10))


def mouth_targets(pts: Points, open_: float, round_: float, press: float) -> MouthTargets:
    c, ex, ey, w = face_axes(pts)
    half = w / 2
    p = pts.astype(np.float64)
    gaps = np.maximum(0.0, (p[LIP_LOWER_INNER] - p[LIP_UPPER_INNER]) @ ey)
    gap0 = float(gaps[5])
    amp = open_ * MAX_OPEN * w
    rin = max(0.0, round_)
    rout = max(0.0, -round_)

    def lip_disp(idx: list[int], upper: bool, inner: bool) -> F64:
        """(11, 2) displacements of one lip line, corner to corner."""
        u = ((p[idx] - c) @ ex) / half
        prof = np.maximum(0.0, 1.0 - np.abs(u) ** 1.8)
        dx = -u * 0.14 * w * rin + u * 0.05 * w * rout
        if upper:
            dy = gaps / 2 - (0.1 if inner else 0.06) * amp * prof
            if not inner:
                dy += -0.045 * w * rin * prof + 0.03 * w * press * prof
        else:
            dy = -gaps / 2 + (1.0 if inner else 0.93) * amp * prof + 0.02 * amp
            if not inner:
                dy += 0.045 * w * rin * prof - 0.03 * w * press * prof
        dy = np.where(_CORNER, 0.2 * amp - 0.02 * w * rin, dy)
        return np.asarray(dx[:, None] * ex + dy[:, None] * ey, np.float64)

    still = np.zeros((len(STABLE), 2))
    upd = np.concatenate(
        [
            np.stack(
                [lip_disp(LIP_UPPER_INNER, True, True), lip_disp(LIP_UPPER_OUTER, True, False)], 1
            ).reshape(-1, 2),
            still,
        ]
    )
    jaw_drop = amp * 0.82 - gap0 * 0.4
    u = ((p[_DROP_IDX] - c) @ ex) / half
    drop = (_DROP_WT * jaw_drop)[:, None] * ey - (u * 0.03 * w * rin * _DROP_WT)[:, None] * ex
    lod = np.concatenate(
        [
            np.stack(
                [lip_disp(LIP_LOWER_INNER, False, True), lip_disp(LIP_LOWER_OUTER, False, False)],
                1,
            ).reshape(-1, 2),
            drop,
            still,
        ]
    )
    up_curve = p[LIP_UPPER_INNER] + upd[0 : 2 * 11 : 2]
    lo_curve = p[LIP_LOWER_INNER] + lod[0 : 2 * 11 : 2]
    return MouthTargets(
        _UPPER_IDX + STABLE, upd, _LOWER_IDX + _DROP_IDX + STABLE, lod, up_curve, lo_curve
    )


def render_mouth(
    frame: Image,
    pts: Points,
    open_: float,
    round_: float,
    press: float,
    look: Appearance,
    *,
    extra_ctrl: tuple[F64, F64] | None = None,
    library: MouthLibrary | None = None,
) -> None:
    """Warp the lower face of ``frame`` (in place) so its mouth takes the given shape."""
    h, w_img = frame.shape[:2]
    c, ex, ey, mw = face_axes(pts)
    t = mouth_targets(pts, open_, round_, press)
    p = pts.astype(np.float64)
    # ROI: the lower face plus room for the jaw to drop.
    region = p[JAW + LIP_UPPER_OUTER + [2, 98, 327]]
    margin = 0.3 * mw
    x0 = int(max(0, region[:, 0].min() - margin))
    x1 = int(min(w_img, region[:, 0].max() + margin))
    y0 = int(max(0, region[:, 1].min() - margin))
    y1 = int(min(h, region[:, 1].max() + margin + MAX_OPEN * mw))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return
    rw, rh = x1 - x0, y1 - y0
    step = max(3.0, mw / 10.0)  # the field is smooth at this scale (sigma = mw / 5)
    gx = np.linspace(x0, x1 - 1, max(4, int(rw / step) + 1))
    gy = np.linspace(y0, y1 - 1, max(4, int(rh / step) + 1))
    grid = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
    sigma = 0.2 * mw
    border = np.array(
        [[x, y] for x in np.linspace(x0, x1, 7) for y in (y0, y1)]
        + [[x, y] for y in np.linspace(y0, y1, 7)[1:-1] for x in (x0, x1)]
    )
    half = mw / 2
    uc_up = (t.up_curve - c) @ ex
    vc_up = (t.up_curve - c) @ ey
    uc_lo = (t.lo_curve - c) @ ex
    vc_lo = (t.lo_curve - c) @ ey

    # Smooth inner-lip curves (quartic fits): straight segments between landmarks look cut out.
    wts_fit = np.array([4.0, *([1.0] * 9), 4.0])
    poly_up = np.polyfit(uc_up, vc_up, 4, w=wts_fit)
    poly_lo = np.polyfit(uc_lo, vc_lo, 4, w=wts_fit)

    def seam(u: NDArray[Any], v: NDArray[Any]) -> tuple[NDArray[Any], ...]:
        """Weight of the lower field (0 above the lip line, 1 below) and the inner-lip curves."""
        uu = np.clip(u, -half, half)
        v_up = np.polyval(poly_up.astype(u.dtype), uu)
        v_lo = np.maximum(np.polyval(poly_lo.astype(u.dtype), uu), v_up)
        outside = np.clip((np.abs(u) - half * 0.9) / (0.25 * mw), 0.0, 1.0)
        band = 0.6 + outside * (0.12 * mw)
        return np.clip(0.5 + (v - (v_up + v_lo) / 2) / band, 0.0, 1.0), v_up, v_lo

    # Coarse grid: both fields, the seam and the edge taper (all smooth at this scale).
    fields = []
    for idx, disp in ((t.upper_idx, t.upper_disp), (t.lower_idx, t.lower_disp)):
        tgt = p[idx] + disp
        back = -disp
        if extra_ctrl is not None:
            tgt = np.vstack([tgt, extra_ctrl[0]])
            back = np.vstack([back, extra_ctrl[1]])
        ctrl = np.vstack([tgt, border])
        vals = np.vstack([back, np.zeros((len(border), 2))])
        wts = rbf_weights(ctrl, vals, sigma)
        fields.append(rbf_eval(ctrl, wts, gx, gy, sigma))
    gu = (grid - c) @ ex
    gv = (grid - c) @ ey
    g_w = seam(gu, gv)[0].reshape(len(gy), len(gx), 1)
    taper = edge_taper(gx, gy, (x0, y0, x1, y1))
    # Blended on the coarse grid; only the lips need the exact seam (below).
    coarse = ((fields[0] + (fields[1] - fields[0]) * g_w) * taper).astype(np.float32)
    field = np.asarray(cv2.resize(coarse, (rw, rh), interpolation=cv2.INTER_LINEAR), np.float32)
    lips = np.vstack([t.up_curve, t.lo_curve, p[LIP_UPPER_OUTER], p[LIP_LOWER_OUTER]])
    pad = 0.12 * mw
    mx0 = int(max(x0, lips[:, 0].min() - pad)) - x0
    mx1 = int(min(x1, lips[:, 0].max() + pad)) - x0
    my0 = int(max(y0, lips[:, 1].min() - pad)) - y0
    my1 = int(min(y1, lips[:, 1].max() + pad)) - y0
    cav: tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]] | None = None
    if mx1 - mx0 > 2 and my1 - my0 > 2:
        up_f = (fields[0] * taper).astype(np.float32)
        lo_f = (fields[1] * taper).astype(np.float32)
        f_up = cv2.resize(up_f, (rw, rh), interpolation=cv2.INTER_LINEAR)[my0:my1, mx0:mx1]
        f_lo = cv2.resize(lo_f, (rw, rh), interpolation=cv2.INTER_LINEAR)[my0:my1, mx0:mx1]
        yy, xx = np.mgrid[my0 + y0 : my1 + y0, mx0 + x0 : mx1 + x0].astype(np.float32)
        dxp, dyp = xx - np.float32(c[0]), yy - np.float32(c[1])
        u = dxp * np.float32(ex[0]) + dyp * np.float32(ex[1])
        v = dxp * np.float32(ey[0]) + dyp * np.float32(ey[1])
        wm, v_up, v_lo = seam(u, v)
        field[my0:my1, mx0:mx1] = f_up + (f_lo - f_up) * wm[..., None]
        cav = (u, v, v_up, v_lo)
    mapx = field[..., 0] + np.arange(x0, x1, dtype=np.float32)[None, :]
    mapy = field[..., 1] + np.arange(y0, y1, dtype=np.float32)[:, None]
    out = np.asarray(
        cv2.remap(frame, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), np.uint8
    )
    if cav is not None:
        interior = None
        if library is not None and library.usable:
            box = (mx0 + x0, my0 + y0, mx1 + x0, my1 + y0)
            interior = library.interior(pts, t.up_curve, t.lo_curve, box)
        _paint_cavity(out[my0:my1, mx0:mx1], *cav, mw, look, interior)
    frame[y0:y1, x0:x1] = out


def _paint_cavity(
    roi: Image,
    u: NDArray[Any],
    v: NDArray[Any],
    v_up: NDArray[Any],
    v_lo: NDArray[Any],
    mw: float,
    look: Appearance,
    interior: NDArray[np.float32] | None = None,
) -> None:
    """Fill the opening between the inner lips: the face's own colours, shade, blur and grain.

    ``interior`` (ROI-sized RGB, already warped to this opening) is a real mouth from the source
    video; without it the teeth, cavity and tongue are synthesised from ``look``.
    """
    half = mw / 2
    gap = v_lo - v_up
    inside = (np.abs(u) < half * 1.02) & (gap > 0.2)
    if not inside.any():
        return
    ys, xs = np.nonzero(inside)
    sy = slice(ys.min(), ys.max() + 1)
    sx = slice(xs.min(), xs.max() + 1)
    u, v, v_up, v_lo, gap = u[sy, sx], v[sy, sx], v_up[sy, sx], v_lo[sy, sx], gap[sy, sx]
    alpha = np.clip(v - v_up + 0.5, 0, 1) * np.clip(v_lo - v + 0.5, 0, 1)
    alpha *= np.clip((half * 1.02 - np.abs(u)) / 1.5, 0, 1)
    if not (alpha > 0).any():
        return
    au = np.abs(u) / half
    # Soft occlusion: the lips shade what is just inside them, the corners are deep.
    d_up = np.clip((v - v_up) / (0.035 * mw), 0, 1)
    d_lo = np.clip((v_lo - v) / (0.04 * mw), 0, 1)
    occl = (0.6 + 0.4 * d_up * d_up * (3 - 2 * d_up)) * (0.75 + 0.25 * d_lo)
    occl = (occl * (1.0 - 0.5 * au**3))[..., None].astype(np.float32)
    img: NDArray[np.float32]
    if float(gap.max()) < max(2.0, 0.04 * mw):
        # A slit: one even shadow line (teeth or a sampled mouth squeezed this thin read as dots).
        img = np.asarray(look.cavity * _warm(occl, look) * 1.6, np.float32)
    elif interior is not None:
        img = np.asarray(interior[sy, sx] * (0.8 + 0.2 * occl), np.float32)
    else:
        img = _synth_interior(u, v, v_up, v_lo, gap, au, mw, look) * _warm(occl, look)
        img = np.asarray(cv2.GaussianBlur(img, (0, 0), look.blur), np.float32)
        if look.grain > 0.3:
            rng = np.random.default_rng(len(u))
            noise = rng.normal(0.0, look.grain, img.shape[:2]).astype(np.float32)
            img = img + noise[..., None]
    a = alpha[..., None].astype(np.float32)
    base = roi[sy, sx].astype(np.float32)
    roi[sy, sx] = np.clip(base * (1 - a) + img * a, 0, 255).astype(np.uint8)


def _warm(shade: NDArray[Any], look: Appearance) -> NDArray[np.float32]:
    """Shade (…, 1) → RGB factors: light bounced off the lips and gums warms the shadows."""
    tint = np.clip(look.lip / max(1.0, float(look.lip.max())), 0.45, 1.0)
    # shade ** (1 / tint) as exp(log): float32 exp and log are vectorised, power is not.
    log = np.log(np.clip(np.asarray(shade, np.float32), 1e-3, None))
    return np.asarray(np.exp(log * (1.0 / tint).astype(np.float32)), np.float32)


def _over(
    img: NDArray[np.float32],
    colour: NDArray[np.float32],
    shade: NDArray[Any],
    alpha: NDArray[Any],
    look: Appearance,
) -> None:
    """Lay ``colour`` shaded by ``shade`` (…, 1) over ``img`` with ``alpha`` (in place)."""
    rows = np.flatnonzero(alpha.any(axis=1))
    cols = np.flatnonzero(alpha.any(axis=0))
    if not len(rows):
        return
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))  # where it shows
    sub = img[box]
    sub += (colour * _warm(shade[box], look) - sub) * alpha[box][..., None].astype(np.float32)


def _synth_interior(
    u: NDArray[Any],
    v: NDArray[Any],
    v_up: NDArray[Any],
    v_lo: NDArray[Any],
    gap: NDArray[Any],
    au: NDArray[Any],
    mw: float,
    look: Appearance,
) -> NDArray[np.float32]:
    half = mw / 2
    g_c = float(gap.max())  # opening at the centre
    depth = np.clip((v - v_up) / np.maximum(gap, 1e-3), 0, 1)
    # Dark throat, lighter toward the lips.
    shade = (0.8 + 0.2 * np.abs(depth - 0.5) * 2)[..., None]
    img = look.cavity * _warm(shade, look)
    # Tongue: a soft mound on the floor of the mouth at wider openings.
    if g_c > 0.1 * mw:
        ty = v_lo - 0.16 * gap
        tr = (u / (0.5 * half)) ** 2 + ((v - ty) / np.maximum(0.26 * gap, 1e-3)) ** 2
        ta = np.clip((1.0 - tr) * 3.0, 0, 1) * np.clip((g_c - 0.1 * mw) / (0.08 * mw), 0, 1)
        tshade = (0.75 + 0.25 * np.clip((ty - v) / np.maximum(0.45 * gap, 1e-3) + 0.5, 0, 1))[
            ..., None
        ]
        _over(img, look.tongue, tshade, ta, look)
    # Upper teeth hang from the upper lip; hidden at the corners.
    th = np.minimum(0.11 * mw, 0.5 * gap) * np.clip(1.0 - au**2.2, 0, 1)
    ta = np.clip(v_up + th - v + 0.5, 0, 1) * (th > 0.5)
    tsh = (1.0 - 0.3 * au**2 - 0.1 * np.clip((v - v_up) / np.maximum(th, 1e-3), 0, 1))[..., None]
    # Faint gaps between teeth, narrower toward the corners (perspective).
    phase = np.sign(u) * (np.abs(u) / half) ** 0.8 * 4.2
    gaps_t = 1.0 - 0.15 * np.clip(1.0 - np.abs(phase - np.round(phase)) * 9.0, 0, 1)
    tsh = tsh * gaps_t[..., None]
    _over(img, look.teeth, tsh, ta, look)
    # Lower teeth show only at larger openings.
    lvis = np.clip((g_c - 0.16 * mw) / (0.1 * mw), 0, 1)
    if lvis > 0:
        lh = 0.05 * mw * lvis * np.clip(1.0 - (au / 0.65) ** 2, 0, 1)
        la = np.clip(v - (v_lo - lh) + 0.5, 0, 1) * (lh > 0.5)
        lsh = (0.85 - 0.3 * au**2)[..., None]
        _over(img, look.teeth, lsh, la, look)
    return np.asarray(img, np.float32)
