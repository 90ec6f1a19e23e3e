"""What the stages of one batch run share: its options, its progress, and the run state."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .journal import Journal, RowState

if TYPE_CHECKING:
    from .. import AsyncClient
    from ..callback.receiver import CallbackReceiver

__all__ = ["JOURNAL_NAME", "BatchOptions", "BatchProgress", "RunState"]

log = logging.getLogger("chanjing_avatar.batch")

JOURNAL_NAME = "batch-journal.sqlite"


@dataclass
class BatchOptions:
    outdir: Path | str  # a str is taken as a path
    journal_path: Path | str | None = None  # default: OUTDIR/batch-journal.sqlite
    retry_failed: bool = False
    # Callbacks: the URL sent with each create, and the receiver that hears them.
    callback_url: str | None = None
    receiver: CallbackReceiver | None = None
    # Polling: each running task at most every ``poll_interval`` s (``safety_poll`` s when a
    # receiver is given); the client's limiter keeps all of it within the detail limit.
    poll_interval: float = 3.0
    safety_poll: float = 60.0
    task_timeout: float = 4 * 3600.0  # give up waiting (the task stays known; re-run to wait on)
    # Reconciliation: how long after sending the server may still act on a create, the bounds of
    # server minus local clock when no estimate exists yet, and the margin around the window
    # inside which other unclaimed tasks make the answer undecidable.
    settle: float = 60.0
    # Longest the client's rate limiter can hold a create between intent and send.
    max_send_delay: float = 70.0
    clock_offset: tuple[float, float] = (-10.0, 10.0)
    guard: float = 60.0
    upload_concurrency: int = 3
    upload_timeout: float = 600.0  # for one upload to become ready
    upload_attempts: int = 3
    download_concurrency: int = 3
    download_attempts: int = 3
    create_attempts: int = 4  # creates the server refused (40001/50000 after retries) per row
    create_backoff: float = 5.0
    # A new journal first lists the account's tasks of this long ago: tasks no journal knows
    # (a deleted journal's, most likely) stop it from creating until the user decides.
    recent_tasks: float = 6 * 3600.0
    fresh_start: bool = False  # the user said: create every row anew whatever the account has
    on_change: Callable[[BatchProgress], None] | None = None

    def __post_init__(self) -> None:
        self.outdir = Path(self.outdir)
        if self.journal_path is not None:
            self.journal_path = Path(self.journal_path)

    @property
    def output_dir(self) -> Path:
        return Path(self.outdir)

    @property
    def journal_file(self) -> Path:
        return Path(self.journal_path or self.output_dir / JOURNAL_NAME)


@dataclass
class BatchProgress:
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    done_this_run: int = 0
    creates_this_run: int = 0
    stopped: str | None = None  # why creating stopped early
    last_event: str = ""

    @property
    def done(self) -> int:
        return self.counts.get(RowState.DONE, 0)

    @property
    def failed(self) -> int:
        return self.counts.get(RowState.FAILED, 0) + self.counts.get(RowState.UNDECIDABLE, 0)

    @property
    def running(self) -> int:
        return sum(
            self.counts.get(s, 0)
            for s in (RowState.INTENDED, RowState.UNKNOWN, RowState.CREATED,
                      RowState.SUCCEEDED, RowState.DOWNLOADING)
        )

    @property
    def pending(self) -> int:
        return self.counts.get(RowState.PENDING, 0)

    def rate_per_min(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done_this_run / elapsed * 60 if elapsed > 0 else 0.0

    def eta_s(self) -> float | None:
        rate = self.rate_per_min()
        left = self.total - self.done - self.failed
        return left / rate * 60 if rate > 0 and left > 0 else None


class RunState:
    """One run: the client, the open journal, the options and progress every stage uses, and
    the two signals between stages (creating stopped; Ctrl-C)."""

    def __init__(self, client: AsyncClient, journal: Journal, opts: BatchOptions,
                 progress: BatchProgress, cancelled: asyncio.Event) -> None:
        self.client = client
        self.journal = journal
        self.opts = opts
        self.progress = progress
        self.cancelled = cancelled
        # Set when a pending row may have become ready (an upload ended, a back-off is over)
        # or creating stopped: the create stage looks again.
        self.rows_changed = asyncio.Event()

    @property
    def stopped(self) -> bool:
        return self.progress.stopped is not None

    def stop_creating(self, reason: str) -> None:
        stop_creating(self.progress, reason)
        self.rows_changed.set()

    def refresh(self, event: str = "") -> None:
        """Counts from the journal into the progress; tell ``on_change``."""
        refresh(self.progress, self.journal, self.opts, event)

    def output_path(self, row_id: str) -> Path:
        return self.opts.output_dir / f"{row_id}.mp4"


def stop_creating(progress: BatchProgress, reason: str) -> None:
    if progress.stopped is None:
        progress.stopped = reason
        log.warning("no more creates: %s", reason)


def refresh(progress: BatchProgress, journal: Journal, opts: BatchOptions, event: str) -> None:
    progress.counts = journal.counts()
    if event:
        progress.last_event = event
    if opts.on_change is not None:
        opts.on_change(progress)
