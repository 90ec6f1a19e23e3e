"""Speech → per-frame mouth shapes.

Phoneme events give the shape (open, round/spread, lips pressed); the band-limited loudness of the
actual audio scales it, so silence closes the mouth whatever the phonemes say. Audio-only speech
(no phonemes) is driven by loudness and spectral tilt alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..speech.base import PhonemeTiming

FloatArray = NDArray[np.float32]

# TTS phoneme timelines run late against their audio; lips also move before the sound.
ANTICIPATION_S = 0.04


@dataclass(frozen=True)
class MouthTrack:
    """Per-frame mouth parameters: ``open`` 0..1, ``round`` -1 (spread)..1, ``press`` 0..1."""

    open: FloatArray
    round: FloatArray
    press: FloatArray
    loudness: FloatArray  # normalised band-limited loudness 0..1, for reference and tests

    def __len__(self) -> int:
        return int(self.open.shape[0])


# (open, round, press) targets. Characters not listed count as a neutral consonant.
_OPEN_VOWELS = "aɑɐæäaɶ"
_MID_VOWELS = "ɛeəɜʌɚɝœøɤ"
_CLOSE_SPREAD = "iɪjɨɯ"
_CLOSE_ROUND = "uʊwyɥʏ"
_BACK_ROUND = "oɔɒɵ"
_BILABIAL = "pbmɸβ"
_LABIODENTAL = "fvʋ"
_POSTALVEOLAR = "ʃʒʂʐɕʑꭧꭦʧʤ"
_RHOTIC = "rɹɻɾɽ"
_VELAR = "kgɡŋxhχɣqʔ"
_CORONAL = "tdnlszθðʦʣʨʥ"

VISEMES: dict[str, tuple[float, float, float]] = {}
for _chars, _shape in (
    (_OPEN_VOWELS, (1.0, 0.0, 0.0)),
    (_MID_VOWELS, (0.62, -0.15, 0.0)),
    (_CLOSE_SPREAD, (0.32, -0.6, 0.0)),
    (_CLOSE_ROUND, (0.28, 1.0, 0.0)),
    (_BACK_ROUND, (0.66, 0.75, 0.0)),
    (_BILABIAL, (0.0, 0.0, 1.0)),
    (_LABIODENTAL, (0.08, -0.1, 0.55)),
    (_POSTALVEOLAR, (0.22, 0.45, 0.0)),
    (_RHOTIC, (0.3, 0.35, 0.0)),
    (_VELAR, (0.34, 0.0, 0.0)),
    (_CORONAL, (0.22, -0.15, 0.0)),
):
    for _c in _chars:
        VISEMES[_c] = _shape
_NEUTRAL = (0.25, 0.0, 0.0)
# Marks that carry no articulation of their own: stress/length merge into a neighbour.
_STRESS = "ˈˌ"
_MODIFIERS = "ːˑʰʲʷ̃ \u0303\u200d↓→↗↘"
PAUSE = " ,.!?;:—…-'\"()"


def viseme_of(phoneme: str) -> tuple[float, float, float] | None:
    """The shape of a phoneme, None for pauses and marks; clusters take their strongest shape."""
    shapes = [VISEMES.get(c, _NEUTRAL) for c in phoneme if c not in _MODIFIERS + PAUSE + _STRESS]
    if not shapes:
        return None
    if any(s[2] >= 1.0 for s in shapes):
        return (0.0, 0.0, 1.0)
    return max(shapes, key=lambda s: s[0])


def normalise_events(events: Sequence[PhonemeTiming]) -> list[PhonemeTiming]:
    """Move stress marks onto the following phoneme and length/tone marks onto the preceding one."""
    out: list[PhonemeTiming] = []
    pending_start: float | None = None
    for ev in events:
        ch = ev.phoneme
        if ch and all(c in _STRESS for c in ch):
            pending_start = ev.start_s if pending_start is None else pending_start
            continue
        if ch and all(c in _MODIFIERS and c != " " for c in ch) and out:
            prev = out[-1]
            out[-1] = PhonemeTiming(prev.phoneme, prev.start_s, ev.end_s)
            continue
        start = pending_start if pending_start is not None else ev.start_s
        pending_start = None
        out.append(PhonemeTiming(ch, start, ev.end_s))
    return out


def band_loudness(
    audio: FloatArray, sample_rate: int, fps: float, n_frames: int
) -> tuple[FloatArray, FloatArray]:
    """Per-frame loudness (dB) in the speech band 300-3400 Hz and the spectral centroid (Hz).

    A 40 ms Hann window centred on each frame's middle.
    """
    win = max(64, round(0.04 * sample_rate))
    nfft = 1 << (win - 1).bit_length()
    window = np.hanning(win).astype(np.float32)
    freqs = np.fft.rfftfreq(nfft, 1.0 / sample_rate)
    band = (freqs >= 300) & (freqs <= 3400)
    audio = np.asarray(audio, np.float32)
    n = audio.size
    db = np.full(n_frames, -120.0, np.float32)
    centroid = np.zeros(n_frames, np.float32)
    chunk = 256  # frames per FFT batch: bounded memory for long audio
    for s in range(0, n_frames, chunk):
        idx = np.arange(s, min(n_frames, s + chunk))
        starts = ((idx + 0.5) / fps * sample_rate).astype(np.int64) - win // 2
        seg = np.zeros((idx.size, win), np.float32)
        for k, a in enumerate(starts):  # windows past either end are zero-padded
            lo, hi = max(0, a), min(n, a + win)
            if hi > lo:
                seg[k, lo - a : hi - a] = audio[lo:hi]
        spec = np.abs(np.fft.rfft(seg * window, n=nfft, axis=1)) ** 2
        e = spec[:, band].sum(axis=1) / win
        db[idx] = (10.0 * np.log10(e + 1e-12)).astype(np.float32)
        tot = spec[:, band].sum(axis=1) + 1e-12
        centroid[idx] = ((spec[:, band] * freqs[band]).sum(axis=1) / tot).astype(np.float32)
    return db, centroid


def normalise_loudness(db: FloatArray, floor_db: float = 38.0) -> FloatArray:
    """0..1 with the loud end at the 95th percentile of voiced frames; ``floor_db`` below is 0."""
    voiced = db[db > db.max() - 50.0] if db.size else db
    if voiced.size == 0:
        return np.zeros_like(db)
    ref = float(np.percentile(voiced, 95))
    x = (db - (ref - floor_db)) / floor_db
    out: FloatArray = np.clip(x, 0.0, 1.0).astype(np.float32)
    return out


def _smooth(x: FloatArray, sigma_frames: float) -> FloatArray:
    if sigma_frames <= 0 or x.size < 3:
        return x
    r = max(1, int(3 * sigma_frames))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_frames) ** 2).astype(np.float32)
    k /= k.sum()
    xp = np.pad(x, r, mode="edge")
    return np.convolve(xp, k, mode="valid").astype(np.float32)


def build_track(
    audio: FloatArray,
    sample_rate: int,
    fps: float,
    n_frames: int,
    events: Sequence[PhonemeTiming] | None = None,
) -> MouthTrack:
    """The mouth track for ``n_frames`` video frames of ``audio`` (mono float32)."""
    db, centroid = band_loudness(audio, sample_rate, fps, n_frames)
    loud = normalise_loudness(db)
    # The gate closes the mouth in silence; a slight smoothing keeps it from chattering.
    gate = np.clip((loud - 0.06) / 0.2, 0.0, 1.0).astype(np.float32)
    t = ((np.arange(n_frames) + 0.5) / fps).astype(np.float64)
    sigma = 0.035 * fps  # coarticulation: ~35 ms
    if events:
        evs = normalise_events(events)
        shape_open = np.zeros(n_frames, np.float32)
        shape_round = np.zeros(n_frames, np.float32)
        shape_press = np.zeros(n_frames, np.float32)
        starts = np.array([e.start_s for e in evs]) - ANTICIPATION_S
        ends = np.array([e.end_s for e in evs]) - ANTICIPATION_S
        shapes = [viseme_of(e.phoneme) for e in evs]
        pos = np.searchsorted(starts, t, side="right") - 1
        for i in range(n_frames):
            j = int(pos[i])
            if j < 0 or t[i] > ends[j] + 0.08:
                continue
            sh = shapes[j]
            if sh is None:
                continue
            shape_open[i], shape_round[i], shape_press[i] = sh
        shape_open = _smooth(shape_open, sigma)
        shape_round = _smooth(shape_round, sigma * 1.5)
        # Bilabials must actually close: press wins over the smoothed opening.
        press = _smooth(shape_press, sigma * 0.6)
        opening = shape_open * (1.0 - np.clip(press * 1.4, 0.0, 1.0))
        level = 0.45 + 0.55 * loud
        open_ = np.clip(opening * level * gate * 1.1, 0.0, 1.0)
        round_ = np.clip(shape_round * np.clip(gate * 1.5, 0.0, 1.0), -1.0, 1.0)
    else:
        # No phonemes: loudness drives the opening; a dark (low centroid) sound rounds the lips.
        open_ = np.clip(loud**1.1 * gate * 0.95, 0.0, 1.0)
        round_ = np.clip((1400.0 - centroid) / 1200.0, -0.5, 0.6) * gate
        press = np.zeros(n_frames, np.float32)
        round_ = _smooth(round_.astype(np.float32), sigma * 1.5)
    open_ = _smooth(open_.astype(np.float32), sigma * 0.6)
    return MouthTrack(
        open=open_.astype(np.float32),
        round=np.asarray(round_, np.float32),
        press=np.clip(press, 0.0, 1.0).astype(np.float32),
        loudness=loud,
    )
