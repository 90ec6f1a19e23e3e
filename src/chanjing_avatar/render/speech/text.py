"""Text preparation shared by engines: language runs and Mandarin → tone-numbered pinyin."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

Lang = Literal["zh", "en"]

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAN_RE = re.compile(f"[{_HAN}]")
_LATIN_RE = re.compile(r"[A-Za-z]")
# Full-width punctuation to ASCII, so that engines pause on it.
_PUNCT = str.maketrans({
    "，": ", ", "。": ". ", "、": ", ", "；": "; ", "：": ": ", "？": "? ", "！": "! ",
    "（": " (", "）": ") ", "“": '"', "”": '"', "‘": "'", "’": "'", "《": '"', "》": '"',
    "…": "... ", "—": ", ", "～": " ", "\u3000": " ",
})


def join_text(text: Sequence[str] | str) -> str:
    return text if isinstance(text, str) else "".join(text)


def split_languages(text: str, default: Lang) -> list[tuple[Lang, str]]:
    """Split ``text`` into runs of Chinese and of Latin-script text.

    Characters of neither script (digits, spaces, punctuation) stay with the run they follow, or
    with ``default`` at the start, so "我有3个" stays one Mandarin run.
    """
    runs: list[tuple[Lang, list[str]]] = []
    current: Lang | None = None
    for ch in text:
        if _HAN_RE.match(ch):
            lang: Lang | None = "zh"
        elif _LATIN_RE.match(ch):
            lang = "en"
        else:
            lang = None
        if lang is not None and lang != current:
            current = lang
            runs.append((lang, [ch]))
        elif runs:
            runs[-1][1].append(ch)
        else:
            current = default
            runs.append((default, [ch]))
    out = [(lang, "".join(chars)) for lang, chars in runs]
    # A run of only digits/punctuation between two runs adds nothing: merge runs of one language.
    merged: list[tuple[Lang, str]] = []
    for lang, chunk in out:
        if merged and merged[-1][0] == lang:
            merged[-1] = (lang, merged[-1][1] + chunk)
        else:
            merged.append((lang, chunk))
    return [(lang, chunk) for lang, chunk in merged if chunk.strip()]


def normalize_punctuation(text: str) -> str:
    return text.translate(_PUNCT)


def to_pinyin(text: str) -> str:
    """Chinese text as tone-numbered pinyin syllables ("ni3 hao3"); other characters are kept."""
    from pypinyin import Style, lazy_pinyin

    parts = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True,
                        errors="default")
    out: list[str] = []
    for part in parts:
        out.append(normalize_punctuation(part) if not part.isalnum() else part)
    return re.sub(r"\s+", " ", " ".join(out)).strip()
