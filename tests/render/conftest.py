"""Small media made by the tests themselves: frames that encode their index as brightness."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")

from chanjing_avatar.render import media

STEP = 5  # brightness per source frame index
FPS = 25


def make_index_video(path: Path, frames: int, size: tuple[int, int] = (64, 64),
                     audio_s: float = 0.0, gop: int | None = None) -> Path:
    """Frame i is a flat grey of brightness i*STEP (read back with :func:`frame_index`)."""
    w, h = size
    with media.Mp4Writer(path, w, h, Fraction(FPS), crf=10, audio=audio_s > 0,
                          gop=gop) as writer:
        for i in range(frames):
            writer.write_frame(np.full((h, w, 3), i * STEP, np.uint8))
        if audio_s > 0:
            writer.write_audio(tone(audio_s))
    return path


def frame_index(frame: np.ndarray) -> int:
    return round(float(frame.mean()) / STEP)


def tone(seconds: float, rate: int = media.AUDIO_RATE, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * math.pi * 440 * t)).astype(np.float32)


def make_wav(path: Path, seconds: float, amp: float = 0.5, rate: int = 22050) -> Path:
    media.write_wav(path, tone(seconds, rate, amp), rate)
    return path


def decode_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples.astype(np.float64))))) if samples.size else 0.0


@pytest.fixture(scope="session")
def index_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 frames (0.4 s) at 25 fps, 64×64, no audio."""
    return make_index_video(tmp_path_factory.mktemp("media") / "index.mp4", 10)


@pytest.fixture(scope="session")
def long_index_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50 frames (2 s) with a 2 s tone."""
    return make_index_video(tmp_path_factory.mktemp("media") / "index50.mp4", 50, audio_s=2.0)


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 s of tone at 22.05 kHz (a different rate than the output's, to exercise resampling)."""
    return make_wav(tmp_path_factory.mktemp("media") / "speech.wav", 1.0)
