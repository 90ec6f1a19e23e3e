"""Whether an uploaded file is usable media, asked of the renderer package's prober."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from ..render.media import MediaError, probe


def probe_problem(path: Path, kind: Literal["video", "audio"]) -> str | None:
    """None if ``path`` decodes as ``kind``; otherwise why not (for file_detail's msg)."""
    try:
        probe(path, kind)
    except MediaError as err:
        return f"content check failed: {err.reason}"
    return None
