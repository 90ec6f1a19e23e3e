"""Each voice is described by the engine that actually speaks it here (Kokoro, Piper or
espeak-ng), in the API's voice list and in ``chanjing-avatar voices --local``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from chanjing_avatar import _wire
from chanjing_avatar.render.speech.espeak import EspeakEngine
from chanjing_avatar.render.speech.kokoro import KokoroEngine
from chanjing_avatar.render.speech.piper import PiperEngine
from chanjing_avatar.sandbox import Sandbox

from .api import Api

ESPEAK = "offline espeak-ng (robotic)"


def _need(*engines: KokoroEngine | PiperEngine | EspeakEngine) -> None:
    for engine in engines:
        reason = engine.unavailable_reason()
        if reason:
            print(f"skipped: {engine.name} unavailable: {reason}")
            pytest.skip(f"{engine.name} unavailable: {reason}")


def _descriptions(sandbox_factory: Callable[..., Sandbox], renderer: str) -> dict[str, str]:
    api = Api(sandbox_factory(renderer=renderer, data_dir=None))
    try:
        api.login()
        voices = api.get(_wire.PATH_LIST_COMMON_AUDIO, page=1, size=100)["data"]["list"]
    finally:
        api.close()
    return {v["name"]: v["desc"] for v in voices}


def test_neural_voices_name_their_engine(sandbox_factory: Callable[..., Sandbox]) -> None:
    _need(KokoroEngine(), PiperEngine(), EspeakEngine())
    desc = _descriptions(sandbox_factory, "lipsync")
    assert desc["小晴"] == "Mandarin, female; offline Kokoro (neural)"
    assert desc["云峰"] == "Mandarin, male; offline Kokoro (neural)"
    assert desc["Ryan"] == "English, male; offline Piper (neural)"
    # No neural English female voice ships in an installable package: Emma says so.
    assert desc["Emma"].startswith("English, female, no phoneme timings"), desc["Emma"]
    assert desc["Emma"].endswith(f"; {ESPEAK}"), desc["Emma"]


def test_espeak_only_renderer_says_robotic(sandbox_factory: Callable[..., Sandbox]) -> None:
    _need(EspeakEngine())
    desc = _descriptions(sandbox_factory, "passthrough")
    assert desc and all(d.endswith(ESPEAK) for d in desc.values()), desc


def test_cli_voices_local_json(tmp_path: Path) -> None:
    _need(KokoroEngine(), PiperEngine(), EspeakEngine())
    env = {
        **os.environ,
        "CHANJING_LOCAL_DIR": str(tmp_path / "local"),
        "CHANJING_LOCAL_RENDERER": "lipsync",
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "chanjing_avatar", "voices", "--local", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    voices = json.loads(done.stdout)
    listed = voices["voices"] if isinstance(voices, dict) else voices
    desc = {v["name"]: v["desc"] for v in listed}
    assert "Kokoro" in desc["小晴"] and "Piper" in desc["Ryan"], desc
    assert "robotic" not in desc["小晴"] + desc["云峰"] + desc["Ryan"]
