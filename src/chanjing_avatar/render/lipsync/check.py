"""Measuring lip sync in an output video: the inner-lip gap seen by the tracker, cross-correlated
with the loudness of the output's own audio track."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

from .face import FaceTracker, inner_gap

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class SyncReport:
    lag_frames: int  # > 0: the mouth moves after the sound
    correlation: float  # Pearson r at the best lag
    correlation_at_zero: float
    gaps: F64  # inner-lip gap / mouth width per frame (NaN where no face)
    loudness: F64  # audio RMS per frame
    fps: float
    faces_found: int


def read_video(path: Path) -> tuple[list[NDArray[np.uint8]], NDArray[np.float32], int, float]:
    """Frames (RGB), mono audio, its sample rate and the frame rate of a short output video."""
    frames: list[NDArray[np.uint8]] = []
    chunks: list[NDArray[np.float32]] = []
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        fps = float(vs.average_rate or 25)
        for f in c.decode(vs):
            frames.append(np.asarray(f.to_ndarray(format="rgb24"), np.uint8))
    rate = 0
    with av.open(str(path)) as c:
        if c.streams.audio:
            rs = av.AudioResampler(format="flt", layout="mono", rate=16_000)
            rate = 16_000
            for af in c.decode(c.streams.audio[0]):
                for o in rs.resample(af):
                    chunks.append(o.to_ndarray().reshape(-1).astype(np.float32))
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return frames, audio, rate, fps


def frame_rms(audio: NDArray[np.float32], rate: int, fps: float, n: int) -> F64:
    out = np.zeros(n)
    for i in range(n):
        a = int(i * rate / fps)
        b = int((i + 1) * rate / fps)
        seg = audio[a:b].astype(np.float64)
        out[i] = float(np.sqrt((seg * seg).mean())) if seg.size else 0.0
    return out


def measure_sync(path: Path, max_lag: int = 5) -> SyncReport:
    frames, audio, rate, fps = read_video(path)
    gaps = np.full(len(frames), np.nan)
    with FaceTracker() as tracker:
        for i, f in enumerate(frames):
            pts = tracker.detect(f)
            if pts is not None:
                gaps[i] = inner_gap(pts)
    loud = frame_rms(audio, rate, fps, len(frames))
    ok = ~np.isnan(gaps)

    def corr(lag: int) -> float:
        # gap[i + lag] against loud[i]
        n = len(frames)
        idx = np.arange(max(0, -lag), min(n, n - lag))
        g = gaps[idx + lag]
        lo = loud[idx]
        m = ~np.isnan(g)
        if m.sum() < 10 or np.std(g[m]) < 1e-9 or np.std(lo[m]) < 1e-12:
            return 0.0
        return float(np.corrcoef(g[m], lo[m])[0, 1])

    scores = {lag: corr(lag) for lag in range(-max_lag, max_lag + 1)}
    best = max(scores, key=lambda k: scores[k])
    return SyncReport(best, scores[best], scores[0], gaps, loud, fps, int(ok.sum()))
