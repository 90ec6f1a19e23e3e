"""The offline lip-sync renderer (see docs/renderer.md): ``LipsyncRenderer``."""

from __future__ import annotations


def missing_dependency() -> str | None:
    """None when the renderer's packages import here, else what is missing."""
    try:
        import cv2  # noqa: F401
        import mediapipe  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        return f"{e.name or e} is not installed: run scripts/setup (the render extra)"
    return None


def __getattr__(name: str) -> object:
    if name == "LipsyncRenderer":
        from .renderer import LipsyncRenderer

        return LipsyncRenderer
    raise AttributeError(name)


__all__ = ["LipsyncRenderer", "missing_dependency"]
