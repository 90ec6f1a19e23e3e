"""``model`` 1: a Wav2Lip-family network the user brings as ONNX, run with onnxruntime.

The network takes a mel window ``(B, 1, 80, 16)`` and a face pair ``(B, 6, 96, 96)`` (the face with
its lower half blanked, then a reference face; BGR, 0..1) and returns the face ``(B, 3, 96, 96)``.
Such weights are research/non-commercial: they are never bundled, only loaded from the path the
user configures, and only when their SHA-256 matches the one the user gives. The FaceMesh box
replaces Wav2Lip's own face detector; the output is pasted back with a feathered lower-face mask.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from ..base import RenderError
from . import _pins
from .face import Image, Points

MEL_RATE = 16_000
_N_FFT = 800
_HOP = 200
_N_MELS = 80
_MEL_STEP = 16  # mel frames per window
_MEL_FPS = MEL_RATE / _HOP  # 80 mel frames per second
_FACE = 96


def _mel_filters(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> NDArray[np.float64]:
    """Slaney-style mel filterbank (area-normalised), as Wav2Lip's preprocessing uses."""

    def hz_to_mel(f: NDArray[np.float64]) -> NDArray[np.float64]:
        f_sp = 200.0 / 3
        mels = f / f_sp
        log_t = f >= 1000.0
        mels[log_t] = 15.0 + np.log(f[log_t] / 1000.0) / (math.log(6.4) / 27.0)
        return mels

    def mel_to_hz(m: NDArray[np.float64]) -> NDArray[np.float64]:
        f_sp = 200.0 / 3
        freqs = f_sp * m
        log_t = m >= 15.0
        freqs[log_t] = 1000.0 * np.exp((math.log(6.4) / 27.0) * (m[log_t] - 15.0))
        return freqs

    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_pts = mel_to_hz(
        np.linspace(hz_to_mel(np.array([fmin]))[0], hz_to_mel(np.array([fmax]))[0], n_mels + 2)
    )
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_pts[2 : n_mels + 2] - mel_pts[:n_mels])
    return np.asarray(weights * enorm[:, None], np.float64)


def melspectrogram(audio: NDArray[np.float32], rate: int) -> NDArray[np.float32]:
    """(80, T) normalised log-mel at 80 frames/s, the way Wav2Lip was trained (values -4..4)."""
    if rate != MEL_RATE:
        n = round(audio.size * MEL_RATE / rate)
        audio = np.interp(np.linspace(0, audio.size - 1, n), np.arange(audio.size), audio).astype(
            np.float32
        )
    y = np.append(audio[0:1], audio[1:] - 0.97 * audio[:-1]).astype(np.float64)
    pad = _N_FFT // 2
    y = np.pad(y, pad, mode="reflect") if y.size > pad else np.pad(y, pad)
    n_frames = 1 + (y.size - _N_FFT) // _HOP
    window = np.hanning(_N_FFT + 1)[:-1]
    basis = _mel_filters(MEL_RATE, _N_FFT, _N_MELS, 55.0, 7600.0)
    out = np.empty((_N_MELS, n_frames), np.float32)
    for s in range(0, n_frames, 512):  # bounded memory for long speech
        idx = np.arange(s, min(n_frames, s + 512))
        frames = np.stack([y[i * _HOP : i * _HOP + _N_FFT] for i in idx]) * window
        mag = np.abs(np.fft.rfft(frames, axis=1)).T
        db = 20 * np.log10(np.maximum(1e-5, basis @ mag)) - 20.0
        out[:, idx] = np.clip((2 * 4.0) * ((db + 100.0) / 100.0) - 4.0, -4.0, 4.0)
    return out


class NeuralLipSync:
    """Loads the user's ONNX model (hash-checked) and renders faces frame by frame."""

    def __init__(self, model_path: Path, sha256: str | None) -> None:
        if not sha256:
            raise RenderError(
                "model 1 needs the SHA-256 of its weights (CHANJING_LIPSYNC_MODEL1_SHA256) "
                "as well as their path"
            )
        if not model_path.is_file():
            raise RenderError(f"model 1 weights not found at {model_path}")
        data = model_path.read_bytes()
        if _pins.sha256_bytes(data) != sha256.lower():
            raise RenderError(
                "model 1 weights do not match the configured SHA-256; refusing to load them"
            )
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = min(2, os.cpu_count() or 1)
        opts.log_severity_level = 3
        # Busy-waiting threads starve everything else on a small shared machine.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        preferred = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        providers = [p for p in preferred if p in ort.get_available_providers()]
        try:
            self._session: Any = ort.InferenceSession(data, sess_options=opts, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types
            raise RenderError(f"model 1 weights cannot be loaded: {e}") from None
        inputs = self._session.get_inputs()
        if len(inputs) != 2:
            raise RenderError("model 1 must take two inputs (mel window and face pair)")
        mel_in = [i for i in inputs if len(i.shape) == 4 and i.shape[1] == 1]
        face_in = [i for i in inputs if len(i.shape) == 4 and i.shape[1] == 6]
        if not mel_in or not face_in:
            raise RenderError("model 1 inputs must be (B,1,80,16) mel and (B,6,96,96) faces")
        self._mel_name = mel_in[0].name
        self._face_name = face_in[0].name
        self._mel: NDArray[np.float32] | None = None
        self._ref: NDArray[np.float32] | None = None

    def start(self, audio: NDArray[np.float32], rate: int) -> None:
        self._mel = melspectrogram(audio, rate)
        self._ref = None

    def _window(self, i: int, fps: float) -> NDArray[np.float32]:
        assert self._mel is not None
        start = int(_MEL_FPS * (i / fps))
        total = self._mel.shape[1]
        if start + _MEL_STEP > total:
            start = max(0, total - _MEL_STEP)
        win = self._mel[:, start : start + _MEL_STEP]
        if win.shape[1] < _MEL_STEP:
            win = np.pad(win, ((0, 0), (0, _MEL_STEP - win.shape[1])), constant_values=-4.0)
        return win

    @staticmethod
    def face_box(pts: Points, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        h, w = shape[:2]
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        side = max(x1 - x0, y1 - y0) * 1.05
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + 0.04 * side  # Wav2Lip pads below the chin
        a = int(max(0, cx - side / 2))
        b = int(max(0, cy - side / 2))
        c = int(min(w, cx + side / 2))
        d = int(min(h, cy + side / 2))
        return a, b, c, d

    def render_frame(self, frame: Image, pts: Points, i: int, fps: float) -> Image:
        x0, y0, x1, y1 = self.face_box(pts, frame.shape)
        if x1 - x0 < 16 or y1 - y0 < 16:
            return frame
        crop = frame[y0:y1, x0:x1]
        face = (
            cv2.resize(crop[:, :, ::-1], (_FACE, _FACE), interpolation=cv2.INTER_AREA).astype(
                np.float32
            )
            / 255.0
        )
        if self._ref is None:
            self._ref = face.copy()  # the first (neutralised) face is the identity reference
        masked = face.copy()
        masked[_FACE // 2 :] = 0.0
        pair = np.concatenate([masked, self._ref], axis=2).transpose(2, 0, 1)[None]
        mel = self._window(i, fps)[None, None]
        out = self._session.run(
            None, {self._face_name: pair.astype(np.float32), self._mel_name: mel}
        )[0]
        pred = np.clip(np.asarray(out, np.float32)[0].transpose(1, 2, 0), 0, 1)[:, :, ::-1] * 255.0
        pred = cv2.resize(pred, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC)
        # Paste the lower half back with a soft edge so the box never shows.
        hh, ww = pred.shape[:2]
        yy = np.linspace(0, 1, hh)[:, None]
        xx = np.linspace(0, 1, ww)[None, :]
        mask = np.clip((yy - 0.45) / 0.12, 0, 1) * np.clip(np.minimum(xx, 1 - xx) / 0.12, 0, 1)
        mask *= np.clip((1 - yy) / 0.06, 0, 1)
        m = mask[..., None].astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(crop * (1 - m) + pred * m, 0, 255).astype(np.uint8)
        return frame
