"""Face landmarks from MediaPipe FaceMesh (pinned; its models ship in the wheel, hash-checked)."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from ._pins import check_mediapipe

Points = NDArray[np.float32]  # (468, 2) pixel coordinates
Image = NDArray[np.uint8]  # (H, W, 3) RGB
_TRACK_SIDE = 640

# FaceMesh indices, left to right on the image.
LIP_UPPER_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LIP_LOWER_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
LIP_UPPER_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LIP_LOWER_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
JAW = [132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361]
CHIN_INNER = [18, 200, 199, 175, 83, 313, 201, 421, 208, 428, 32, 262, 194, 418, 204, 424]
# Points that stay put while the mouth moves (nose, cheeks, eyes, upper face outline).
STABLE = [
    1,
    2,
    4,
    5,
    6,
    98,
    327,
    168,
    33,
    133,
    362,
    263,
    70,
    300,
    50,
    280,
    205,
    425,
    234,
    454,
    93,
    323,
    116,
    345,
    123,
    352,
    187,
    411,
    129,
    358,
    203,
    423,
]
ALIGN = [33, 133, 362, 263, 168, 6, 1, 4, 234, 454, 93, 323, 50, 280, 116, 345]
# Eye openings (lid margins, closed rings) and the iris landmarks of the refined mesh.
EYE_L_RING = [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]
EYE_R_RING = [263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249]
IRIS_L = [468, 469, 470, 471, 472]  # centre first; FaceMesh with refine_landmarks only
IRIS_R = [473, 474, 475, 476, 477]
EYE_L_UPPER = [160, 159, 158]
EYE_L_LOWER = [144, 145, 153]
EYE_R_UPPER = [385, 386, 387]
EYE_R_LOWER = [380, 374, 373]


# mediapipe 0.10.14 calls a protobuf API that newer protobuf 4.x deprecates, on every frame.
warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype", category=UserWarning)


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence fd 2 while mediapipe starts: its C++ start-up notes are not for our users."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def inner_gap(pts: Points) -> float:
    """Inner-lip opening divided by mouth width (0 = closed)."""
    width = float(np.linalg.norm(pts[291] - pts[61])) + 1e-6
    gaps = [float(np.linalg.norm(pts[lo] - pts[up])) for up, lo in ((13, 14), (82, 87), (312, 317))]
    return float(np.mean(gaps)) / width


class FaceTracker:
    """FaceMesh in tracking mode (or per-image mode for unrelated frames)."""

    def __init__(
        self, *, static: bool = False, min_confidence: float = 0.5, refine: bool = False
    ) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        with _quiet_stderr():
            check_mediapipe()
            import mediapipe as mp

            self._mesh: Any = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=static,
                max_num_faces=1,
                refine_landmarks=refine,  # + iris points (478 in all)
                min_detection_confidence=min_confidence,
                min_tracking_confidence=min_confidence,
            )
            # The graph starts (and its threads chatter) on the first frame: a blank one, here.
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))

    def detect(self, rgb: Image) -> Points | None:
        """Landmarks in pixels, or None when no face is found."""
        h, w = rgb.shape[:2]
        # The mesh model sees a 192 px crop: a big frame only costs time to convert.
        scale = min(1.0, _TRACK_SIDE / max(h, w))
        if scale < 1.0:
            small = cv2.resize(
                rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA
            )
            res = self._mesh.process(small)
        else:
            res = self._mesh.process(np.ascontiguousarray(rgb))
        if not res.multi_face_landmarks:
            return None
        lm = res.multi_face_landmarks[0].landmark
        arr = np.array([(p.x * w, p.y * h) for p in lm], dtype=np.float32)
        return arr

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class LandmarkSmoother:
    """One-euro style smoothing: steady when still, little lag when the head moves."""

    def __init__(self, min_alpha: float = 0.25, speed_px: float = 6.0) -> None:
        self._state: Points | None = None
        self._min_alpha = min_alpha
        self._speed = speed_px

    def __call__(self, pts: Points) -> Points:
        if self._state is None:
            self._state = pts.copy()
            return self._state
        move = float(np.median(np.linalg.norm(pts - self._state, axis=1)))
        alpha = min(1.0, self._min_alpha + move / self._speed)
        self._state = (self._state + alpha * (pts - self._state)).astype(np.float32)
        return self._state

    def reset(self) -> None:
        self._state = None


def similarity(src: Points, dst: Points) -> NDArray[np.float64]:
    """2x3 least-squares similarity transform mapping ``src`` points onto ``dst``."""
    s_mean = src.mean(axis=0)
    d_mean = dst.mean(axis=0)
    s = (src - s_mean).astype(np.float64)
    d = (dst - d_mean).astype(np.float64)
    a = float((s * d).sum())
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum())
    n = float((s * s).sum()) + 1e-9
    ca, sb = a / n, b / n
    m = np.array([[ca, -sb, 0.0], [sb, ca, 0.0]])
    m[:, 2] = d_mean - m[:, :2] @ s_mean
    return m


def apply_affine(m: NDArray[np.float64], pts: Points) -> Points:
    return (pts.astype(np.float64) @ m[:, :2].T + m[:, 2]).astype(np.float32)
