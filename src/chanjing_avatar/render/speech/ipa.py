"""English text → IPA with the espeak-ng command (a separate process: its GPL stays out of ours)."""

from __future__ import annotations

import re
import shutil
import subprocess

from .base import EngineUnavailable, SpeechError

# A clause and the punctuation that ends it; espeak-ng prints one line per clause and drops the
# punctuation, which the neural voices need for their pauses.
_CLAUSE = re.compile(r"([^,.;:!?]+)([,.;:!?]*)")


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def english_ipa(text: str, voice: str = "en-us") -> str:
    """IPA of English ``text`` with clause punctuation kept (", " "." "?" "!")."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise EngineUnavailable("espeak-ng is not installed (apt-get install espeak-ng)")
    clauses = [(m.group(1).strip(), m.group(2)[:1]) for m in _CLAUSE.finditer(text)]
    clauses = [(c, p) for c, p in clauses if re.search(r"\w", c)]
    if not clauses:
        return ""
    body = "\n".join(c for c, _ in clauses)
    try:
        proc = subprocess.run(
            [exe, "-q", "-v", voice, "--ipa", "-b", "1"],
            input=body.encode("utf-8"),
            capture_output=True,
            timeout=60,
            check=True,
        )
    except (subprocess.SubprocessError, OSError) as e:
        raise SpeechError(f"espeak-ng failed: {e}") from None
    lines = [ln.strip() for ln in proc.stdout.decode("utf-8", "replace").splitlines() if ln.strip()]
    lines = [ln.replace("\u200d", "") for ln in lines]
    if len(lines) == len(clauses):
        parts = [ln + (p or ",") for ln, (_, p) in zip(lines, clauses, strict=True)]
    else:  # espeak split differently: keep its lines, pause between them
        parts = [ln + "," for ln in lines]
    out = " ".join(parts)
    if out.endswith(","):
        out = out[:-1] + "."
    for mark in ",.?!;":
        out = out.replace(mark, mark + " ")
    return re.sub(r"\s+", " ", out).strip()
