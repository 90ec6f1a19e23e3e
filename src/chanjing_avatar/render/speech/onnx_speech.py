"""What the ONNX engines (kokoro.py, piper.py) share: the speech graph run with its per-token
durations exposed as a second output, so the phoneme timeline matches the audio exactly, and
the wav of the spoken pieces."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..media import write_wav
from .base import PhonemeTiming, SpeechError, Synthesis


class TimedGraph:
    """An ONNX speech graph whose tensor ``durations`` (per input token, in units of ``unit``
    samples) is added to its outputs. ``read`` gives the checked model bytes; they are read here
    so that they are freed once parsed."""

    def __init__(self, read: Callable[[], bytes], durations: str, unit: int) -> None:
        import onnx
        import onnxruntime as ort

        graph = onnx.load_from_string(read())
        graph.graph.output.append(
            onnx.helper.make_tensor_value_info(durations, onnx.TensorProto.FLOAT, None)
        )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = min(2, os.cpu_count() or 1)
        opts.log_severity_level = 3
        # Busy-waiting threads starve everything else on a small shared machine.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            graph.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._unit = unit
        self._lock = threading.Lock()

    def run(self, inputs: dict[str, NDArray[Any]]) -> tuple[NDArray[np.float32], NDArray[Any]]:
        """The audio, and the sample offsets of the token edges: token k spans
        ``edges[k]..edges[k + 1]``."""
        with self._lock:
            audio, durations = self._session.run(None, inputs)
        units = np.asarray(durations, np.float64).reshape(-1)
        edges = np.concatenate([[0.0], np.cumsum(units)]) * self._unit
        return np.asarray(audio, np.float32).reshape(-1), edges


def write_speech(
    pieces: Sequence[NDArray[np.float32]],
    sample_rate: int,
    out_wav: Path,
    timings: Sequence[PhonemeTiming],
    *,
    peak: float | None = None,
) -> Synthesis:
    """The pieces, one after the other, as ``out_wav``. ``peak``: louder audio is scaled down to
    it (else it is clipped at full scale)."""
    if not pieces:
        raise SpeechError("the text has nothing to speak")
    full = np.concatenate(pieces)
    if peak is not None:
        loudest = float(np.abs(full).max()) or 1.0
        if loudest > peak:
            full = full * (peak / loudest)
    write_wav(out_wav, full, sample_rate)
    return Synthesis(
        wav_path=Path(out_wav),
        duration_s=full.size / sample_rate,
        sample_rate=sample_rate,
        phonemes=tuple(timings),
    )
