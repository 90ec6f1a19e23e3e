"""The sandbox tests' voices, and the shared fake renderer set up with them (the tests here
measure the server, not rendering)."""

from __future__ import annotations

from chanjing_avatar.render.base import VoiceInfo
from fake_renderer import PREVIEW_BYTES, FakeRenderer

__all__ = ["PREVIEW_BYTES", "VOICES", "FakeRenderer", "stub_renderer"]

VOICES = [
    VoiceInfo(
        id=f"{n:032x}",
        name=f"Stub {n}",
        gender="female" if n % 2 else "male",
        lang="zh" if n < 40 else "en",
    )
    for n in range(1, 61)
]


def stub_renderer(step_s: float = 0.01) -> FakeRenderer:
    return FakeRenderer(VOICES, name="stub", step_s=step_s)
