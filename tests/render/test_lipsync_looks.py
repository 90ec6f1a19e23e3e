"""How the rendered mouth looks, measured on real faces: colours from the face, no seams, and the
person's own mouth from a source video whose mouth moves."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mediapipe")
pytest.importorskip("cv2")

import cv2

from chanjing_avatar.render.base import RenderJob, TtsSpeech
from chanjing_avatar.render.demo import make_demo_video
from chanjing_avatar.render.lipsync.check import measure_sync, read_video
from chanjing_avatar.render.lipsync.face import FaceTracker, inner_gap
from chanjing_avatar.render.lipsync.library import MouthLibrary
from chanjing_avatar.render.lipsync.look import hue_deg, sample_appearance, to_lab
from chanjing_avatar.render.lipsync.mouth import render_mouth
from chanjing_avatar.render.lipsync.neutral import LowerFacePaster, mouth_region
from chanjing_avatar.render.lipsync.quality import (
    detail_ratio,
    ghost_ratio,
    mouth_colour,
    seam_ratio,
)
from chanjing_avatar.render.lipsync.renderer import LipsyncRenderer
from chanjing_avatar.render.speech import voice_id

pytestmark = [
    pytest.mark.render,
    pytest.mark.filterwarnings("ignore:SymbolDatabase.GetPrototype:UserWarning"),
]


def _grace() -> np.ndarray:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return np.ascontiguousarray(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))


def _astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, :3])


def _scaled(img: np.ndarray, f: float) -> np.ndarray:
    h, w = img.shape[:2]
    return np.ascontiguousarray(
        cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC)
    )


def _turned(img: np.ndarray, deg: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    return np.ascontiguousarray(cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT))


# name → (image, has visible eye whites). Grace Hopper squints behind glasses: no sclera shows.
FACES = {
    "astronaut": (_astronaut, True),
    "grace-hopper-glasses": (_grace, False),
    "astronaut-small": (lambda: _scaled(_astronaut(), 0.5), True),  # ≈ 100 px face in 256 px
    "grace-hopper-large": (lambda: _scaled(_grace(), 1.8), False),  # 1080 px tall
    "astronaut-rolled-25": (lambda: _turned(_astronaut(), 25), True),
}


@pytest.mark.parametrize("name", list(FACES))
def test_open_mouth_takes_its_colours_from_the_face(name: str) -> None:
    make, eyes_visible = FACES[name]
    img = make()
    with FaceTracker(static=True, refine=True) as tracker:
        pts = tracker.detect(img)
        assert pts is not None
        look = sample_appearance(img, pts)
        out = img.copy()
        render_mouth(out, pts, 0.9, 0.0, 0.0, look)
        out_pts = tracker.detect(out)
    assert out_pts is not None
    col = mouth_colour(img, pts, out, out_pts)
    print(name, col)
    # The cavity is the lips' hue, darkened (the old one was grey-blue: hue ≈ 200°).
    assert col.cavity_hue_outside <= 20.0, col
    assert col.cavity_lab[0] < 35.0, col
    skin = to_lab(
        np.median(
            img[
                int(pts[205][1]) - 2 : int(pts[205][1]) + 3,
                int(pts[205][0]) - 2 : int(pts[205][0]) + 3,
            ].reshape(-1, 3),
            axis=0,
        ).astype(np.float32)
    )
    if eyes_visible:
        assert look.teeth_from == "eye whites"
        assert col.teeth_ab_distance is not None and col.teeth_ab_distance <= 5.0, col
    else:
        assert look.teeth_from == "skin"
        # Warm like the skin around them (same light), not a neutral grey that reads as cold
        # next to it: the skin's hue, with part of its colour.
        dh = abs((float(hue_deg(np.array(col.teeth_lab))) - float(hue_deg(skin)) + 180) % 360 - 180)
        assert dh <= 25.0, (col, skin)
        assert col.teeth_lab[1] >= 0.2 * skin[1] and col.teeth_lab[2] >= 0.3 * skin[2], (col, skin)
    # Never brighter than the brightest skin, never glowing.
    assert col.teeth_lab[0] <= skin[0] + 20.0, (col, skin)


def _render(src: Path, d: Path, name: str, text: str, voice: str) -> Path:
    """Render ``src`` speaking ``text`` at 256×256 into ``d``; the output video."""
    job = RenderJob(
        task_id=name,
        video_path=src,
        speech=TtsSpeech([text], voice_id(voice)),
        width=256,
        height=256,
        output_video=d / f"{name}.mp4",
        output_preview=d / f"{name}.jpg",
        work_dir=d,
    )
    LipsyncRenderer().render(job, lambda p: None)
    return job.output_video


@pytest.fixture(scope="module")
def talking(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A video whose mouth already moves: the demo face rendered speaking (256 px, short)."""
    d = tmp_path_factory.mktemp("talking")
    src = make_demo_video(d / "demo.mp4", seconds=1.0, size=(256, 256))
    return _render(src, d, "talking", "欢迎来到直播间，今天给大家介绍新品。", "zh-female-1")


def test_neutralising_a_moving_mouth_leaves_no_seam(talking: Path) -> None:
    frames, *_ = read_video(talking)
    with FaceTracker() as tracker:
        pts = [tracker.detect(f) for f in frames]
    assert all(p is not None for p in pts)
    gaps = [inner_gap(p) for p in pts]
    assert max(gaps) > 0.2  # the source's mouth really opens
    ref = int(np.argmin(gaps))
    paster = LowerFacePaster(frames[ref], pts[ref])
    seams, details, chin_shift = [], [], []
    still_tracker = FaceTracker(static=True)
    for f, p, g in zip(frames, pts, gaps, strict=True):
        out = f.copy()
        shown = paster.paste(out, p)
        assert paster.last_mask is not None
        m, (bx, by) = paster.last_mask
        weight = np.zeros(f.shape[:2], np.float32)
        weight[by : by + m.shape[0], bx : bx + m.shape[1]] = m
        seams.append(seam_ratio(f, out, weight))
        region = np.zeros(f.shape[:2], np.uint8)
        cv2.fillPoly(
            region,
            [
                np.round(
                    p[
                        [
                            132,
                            58,
                            172,
                            136,
                            150,
                            149,
                            176,
                            148,
                            152,
                            377,
                            400,
                            378,
                            379,
                            365,
                            397,
                            288,
                            361,
                            2,
                        ]
                    ]
                ).astype(np.int32)
            ],
            1,
        )
        mouth = np.zeros(f.shape[:2], np.uint8)
        cv2.fillPoly(mouth, [np.round(mouth_region(p)).astype(np.int32)], 1)
        details.append(detail_ratio(f, out, (region > 0) & (mouth == 0)))
        if g > 0.2:
            # The chin follows the closed mouth: the tracker finds it where the reference has it.
            q = still_tracker.detect(out)
            assert q is not None
            mw = float(np.linalg.norm(p[291] - p[61]))
            chin_shift.append(float(np.linalg.norm(q[152] - shown[152])) / mw)
    still_tracker.close()
    seams_a, details_a = np.array(seams), np.array(details)
    print(
        f"seam ratio p5 {np.percentile(seams_a, 5):.2f} median {np.median(seams_a):.2f} "
        f"p95 {np.percentile(seams_a, 95):.2f}; detail median {np.median(details_a):.2f} "
        f"min {details_a.min():.2f}; chin offset {np.max(chin_shift):.3f} mouth widths"
    )
    # No edge or shadow along the blend: no more gradient energy there than the source has
    # (less is expected where the source's open lips crossed the band) ...
    assert np.percentile(seams_a, 95) <= 1.2 and seams_a.max() <= 1.4
    # ... the lower face keeps its detail ...
    assert np.median(details_a) >= 0.85 and details_a.min() >= 0.7
    # ... and there is one chin, where the closed mouth puts it.
    assert max(chin_shift) <= 0.06


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def redriven(talking: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The talking video re-driven with other speech, and what the renderer logged meanwhile."""
    logger = logging.getLogger("chanjing_avatar.render.lipsync")
    handler, level = _Messages(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        d = tmp_path_factory.mktemp("redrive")
        out = _render(talking, d, "redrive", "你好，欢迎使用数字人。", "zh-male-1")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return out, handler.messages


def test_a_talking_source_lends_its_own_mouth(
    talking: Path, redriven: tuple[Path, list[str]]
) -> None:
    frames, *_ = read_video(talking)
    with FaceTracker() as tracker:
        pts = [tracker.detect(f) for f in frames]
    lib = MouthLibrary(pts[0], (frames[0].shape[1], frames[0].shape[0]))
    for f, p in zip(frames, pts, strict=True):
        lib.add(f, p)
    assert lib.usable and len(lib.samples) >= 3
    # Re-driven: the log says which interior was used, and the sync holds.
    out, messages = redriven
    assert any("the person's own" in m for m in messages)
    rep = measure_sync(out)
    assert abs(rep.lag_frames) <= 1 and rep.correlation > 0.5, rep


def _ghosted(frame: np.ndarray, pts: np.ndarray, shift: int, opacity: float) -> np.ndarray:
    """The lower face blended with a copy of itself ``shift`` px lower: a double chin."""
    mw = float(np.linalg.norm(pts[291] - pts[61]))
    mask = np.zeros(frame.shape[:2], np.float32)
    x0, x1 = int(pts[152][0] - 0.8 * mw), int(pts[152][0] + 0.8 * mw)
    mask[int(pts[17][1]) : int(pts[152][1] + 0.5 * mw), max(0, x0) : x1] = opacity
    mask = cv2.GaussianBlur(mask, (0, 0), 2)[..., None]
    lower = np.roll(frame, shift, axis=0).astype(np.float32)
    return np.clip(frame * (1 - mask) + lower * mask, 0, 255).astype(np.uint8)


def test_re_driving_leaves_no_ghost_of_the_chin(
    talking: Path, redriven: tuple[Path, list[str]]
) -> None:
    src, *_ = read_video(talking)
    out, *_ = read_video(redriven[0])
    # Output frame i shows source frame i (played forward from the start, and shorter).
    assert len(out) <= len(src)
    with FaceTracker() as tracker:
        src_pts = [tracker.detect(f) for f in src[: len(out)]]
    with FaceTracker() as tracker:
        out_pts = [tracker.detect(f) for f in out]
    clean, ghosted = [], []
    for s, sp, o, op in zip(src, src_pts, out, out_pts, strict=False):
        assert sp is not None and op is not None
        clean.append(ghost_ratio(s, sp, o, op))
        shift = round(0.1 * float(np.linalg.norm(op[291] - op[61])))  # ≈ 4 px here
        ghosted.append(ghost_ratio(s, sp, _ghosted(o, op, shift, 0.3), op))
    clean_a, ghosted_a = np.array(clean), np.array(ghosted)
    print(
        f"ghost: re-driven median {np.median(clean_a):.3f} p95 {np.percentile(clean_a, 95):.3f} "
        f"max {clean_a.max():.3f}; with a 30 % copy {shift} px down: median "
        f"{np.median(ghosted_a):.3f} p5 {np.percentile(ghosted_a, 5):.3f}"
    )
    # A faint second chin is seen in most frames ...
    assert np.median(ghosted_a) >= 0.15
    # ... and the renderer leaves none (the old paste-over showed one wherever the source's mouth
    # opened wide: p95 ≈ 0.4).
    assert np.percentile(clean_a, 95) <= 0.15
