"""Renderers for the sandbox: the interface in ``base``; implementations beside it.

``get_renderer(name)`` builds a renderer by name; ``"auto"`` tries registered renderers from the
highest priority down and returns the first that can be built here. Importing this package is
light: implementations (and PyAV) load only when a renderer is built.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .base import Renderer, RenderError


class RendererUnavailable(RenderError):
    """A renderer cannot be built here (a missing package or model); the message says why."""


_Factory = Callable[[], Renderer]
_registry: dict[str, tuple[int, _Factory]] = {}
_lock = threading.Lock()


def register_renderer(name: str, factory: _Factory, priority: int = 0) -> None:
    """Make ``get_renderer(name)`` work; ``"auto"`` prefers higher ``priority``.

    ``factory`` should raise :class:`RendererUnavailable` (or ImportError) when its dependencies
    are missing, so that ``"auto"`` falls back to the next renderer.
    """
    if name == "auto":
        raise ValueError('"auto" is reserved')
    with _lock:
        _registry[name] = (priority, factory)


def renderer_names() -> list[str]:
    """Registered names, preferred first."""
    with _lock:
        return [n for n, _ in sorted(_registry.items(), key=lambda kv: -kv[1][0])]


def get_renderer(name: str = "auto") -> Renderer:
    """A new renderer by name, or the best available one for ``"auto"``."""
    if name == "auto":
        reasons: list[str] = []
        for candidate in renderer_names():
            try:
                return get_renderer(candidate)
            except (RendererUnavailable, ImportError) as e:
                reasons.append(f"{candidate}: {e}")
        raise RendererUnavailable("no renderer is available: " + "; ".join(reasons))
    with _lock:
        entry = _registry.get(name)
    if entry is None:
        known = ", ".join(["auto", *renderer_names()])
        raise ValueError(f"unknown renderer {name!r}; use one of {known}")
    try:
        return entry[1]()
    except ImportError as e:
        raise RendererUnavailable(
            f"renderer {name!r} needs a package that is not installed ({e.name or e}): "
            "pip install 'chanjing-avatar[sandbox]'"
        ) from e


def _passthrough() -> Renderer:
    from .passthrough import PassthroughRenderer

    return PassthroughRenderer()


def _lipsync() -> Renderer:
    from .lipsync import missing_dependency

    reason = missing_dependency()
    if reason:
        raise RendererUnavailable(f"renderer 'lipsync' is unavailable: {reason}")
    from .lipsync.renderer import LipsyncRenderer

    return LipsyncRenderer()


register_renderer("passthrough", _passthrough, priority=0)
register_renderer("lipsync", _lipsync, priority=10)

__all__ = [
    "RenderError",
    "Renderer",
    "RendererUnavailable",
    "get_renderer",
    "register_renderer",
    "renderer_names",
]
