"""SIGTERM ends a command the way Ctrl-C does.

Agent harnesses, CI runners and ``timeout`` stop a command with SIGTERM. Python's default for it
kills the process on the spot, so a paid task's id and the command that resumes it would be lost.
Inside :func:`terminate_as_interrupt` a SIGTERM raises KeyboardInterrupt instead, and the command
reports what it reports for Ctrl-C.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the main thread while the block runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
