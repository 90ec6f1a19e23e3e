"""``--local`` text without ``--voice`` is spoken by the best voice of its language: a neural one
where the sandbox has it (English: Piper's Ryan, not espeak-ng's Emma)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from chanjing_avatar import Client, LipSyncRequest
from chanjing_avatar.cli._create import choose_voice
from chanjing_avatar.cli._output import Output
from chanjing_avatar.render.speech.kokoro import KokoroEngine
from chanjing_avatar.render.speech.piper import PiperEngine
from chanjing_avatar.sandbox import Sandbox


@pytest.mark.parametrize(("text", "name"),
                         [("Hello, and welcome.", "Ryan"), ("你好，欢迎。", "小晴")])
def test_text_without_a_voice_gets_the_best_voice_of_its_language(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path, text: str, name: str
) -> None:
    for engine in (PiperEngine(), KokoroEngine()):
        reason = engine.unavailable_reason()
        if reason:
            print(f"skipped: {engine.name} unavailable: {reason}")
            pytest.skip(f"{engine.name} unavailable: {reason}")
    sb = sandbox_factory(renderer="lipsync", data_dir=None)
    with Client(sb.app_id, sb.secret_key, base_url=sb.base_url, allow_http=True,
                credentials_dir=tmp_path / "creds") as client:
        request = LipSyncRequest(video="f" * 32, text=text)
        chosen = choose_voice(request, client, Output(json_mode=True, verbose=False), local=True)
        names = {v.id: v.name for v in client.voices.list()}
    assert names[chosen.voice_id or ""] == name
