"""The neural engines' place in the voice catalogue: they speak the existing voices first.

Voice ids do not change; where Kokoro (Mandarin) or Piper (English) is installed it is preferred
over espeak-ng, and it also gives phoneme timings that the lip-sync renderer uses.
"""

from __future__ import annotations

from .catalogue import Catalogue, voice_id
from .kokoro import KokoroEngine
from .piper import PiperEngine

# voice key → (engine, engine voice), most preferred first.
NEURAL_CANDIDATES: dict[str, list[tuple[str, str]]] = {
    "zh-female-1": [("kokoro", "jf_nezumi")],
    "zh-male-1": [("kokoro", "jm_kumo")],
    "en-male-1": [("piper", "joe")],
}


def add_neural_voices(cat: Catalogue) -> None:
    """Register Kokoro and Piper on ``cat`` and put them first for the default voices."""
    cat.register_engine(KokoroEngine())
    cat.register_engine(PiperEngine())
    for key, cands in NEURAL_CANDIDATES.items():
        vid = voice_id(key)
        if cat.get(vid) is None:
            continue
        for engine, engine_voice in reversed(cands):
            cat.add_candidate(vid, engine, engine_voice, first=True)
