"""The batch runner: uploads, creates, waits and downloads overlapping, on one AsyncClient.

Four stages over one shared :class:`~._run.RunState` (the journal, opened once, goes to each):

- ``Uploads`` (``_upload.py``): a few at a time; identical files (same content) uploaded once.
- ``Creates`` (``_create.py``): one at a time (the only way to know each one's time window) as
  fast as the client's rate limiter allows; an unknown outcome is reconciled before the next.
- ``Poller`` (``_poll.py``): the details of every running task, within the detail limit; a
  callback receiver, when given, moves a finished task to the front.
- ``Downloads`` (``_download.py``): under a temporary name, renamed when complete; size and
  sha256 journalled.
Every step is journalled before and after (see ``journal.py``), so the same call resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import filelock

from ._create import Creates, recent_tasks
from ._download import Downloads
from ._files import os_reason
from ._poll import Poller
from ._run import BatchOptions, BatchProgress, RunState, refresh, stop_creating
from ._upload import Uploads
from .journal import Journal, JournalLostError, RowState
from .manifest import Manifest

if TYPE_CHECKING:
    from .. import AsyncClient, Task

__all__ = ["BatchOptions", "BatchProgress", "BatchRunner", "UnknownTasksError", "os_reason",
           "run_batch"]

log = logging.getLogger("chanjing_avatar.batch")


class UnknownTasksError(RuntimeError):
    """A new journal found recent tasks on the account that it does not know; ``task_ids``."""

    def __init__(self, task_ids: list[str], hours: float) -> None:
        self.task_ids = task_ids
        shown = ", ".join(task_ids[:5]) + (" …" if len(task_ids) > 5 else "")
        super().__init__(
            f"this journal is new, but the account has {len(task_ids)} task(s) from the last "
            f"{hours:g} h that it does not know ({shown}): if an earlier run of this batch made "
            "them, restore its journal; to create every row anew anyway, add --resolve '*=new'"
        )


class BatchRunner:
    """One run of a manifest: ``await run()``; ``cancel()`` for Ctrl-C."""

    def __init__(self, client: AsyncClient, manifest: Manifest, options: BatchOptions) -> None:
        self.client = client
        self.manifest = manifest
        self.opts = options
        self.progress = BatchProgress(total=len(manifest.rows))
        self.journal: Journal | None = None  # open while running (a lost journal's report)
        self.rescued: Path | None = None  # where a lost journal's state was written back
        self._cancelled = asyncio.Event()
        self._creates: Creates | None = None
        self._poller: Poller | None = None

    def stop_creating(self, reason: str) -> None:
        """No new creates from now on (the one on the wire, if any, is finished and journalled)."""
        stop_creating(self.progress, reason)

    def cancel(self) -> None:
        """Ctrl-C: stop creating, let a create on the wire finish and be journalled, then end the
        run. Running tasks keep rendering on the server; the next run waits for them."""
        self.stop_creating("cancelled")
        self._cancelled.set()
        if self._creates is not None:
            self._creates.cancel()

    async def on_callback(self, task_id: str) -> Task | None:
        """For a :class:`CallbackReceiver`: a task's callback came, so the poller fetches its
        detail next (through the one shared limiter). Returns None: nothing fetched here."""
        if self._poller is not None:
            self._poller.poll_now(task_id)
        return None

    async def run(self) -> Journal:
        opts = self.opts
        opts.output_dir.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(opts.journal_file) + ".lock")
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            raise RuntimeError(
                f"another batch is running with {opts.journal_file}; wait for it to end"
            ) from None
        journal = self.journal = Journal(opts.journal_file)
        try:
            same_boot = self._prepare(journal)
            if journal.meta("account_checked") is None:
                await self._check_account(journal)
            await self._run_stages(RunState(self.client, journal, opts, self.progress,
                                            self._cancelled), same_boot)
            # A row is done only while its file is there: the folder may have been emptied.
            self._check_outputs(journal)
        except JournalLostError:
            self._rescue_journal(journal)
            raise
        finally:
            with contextlib.suppress(JournalLostError):
                refresh(self.progress, journal, opts, "")
            lock.release()
        return journal

    def _prepare(self, journal: Journal) -> bool:
        """The journal up to date with the manifest and the disk; True when the machine did not
        restart since the journal's last run."""
        boot = _boot_id()
        same_boot = boot is not None and journal.meta("boot_id") == boot
        if boot is not None:
            journal.set_meta("boot_id", boot)
        journal.sync_manifest(self.manifest)
        if self.opts.retry_failed:
            journal.retry_failed()
        self._check_outputs(journal)
        refresh(self.progress, journal, self.opts, "")
        return same_boot

    async def _run_stages(self, run: RunState, same_boot: bool) -> None:
        downloads = Downloads(run)
        poller = self._poller = Poller(run, downloads)
        uploads = Uploads(run)
        creates = self._creates = Creates(run, {r.id: r for r in self.manifest.rows}, uploads,
                                          poller, same_boot=same_boot)
        if self._cancelled.is_set():
            run.stop_creating("cancelled")
        stages = asyncio.ensure_future(_together(uploads.run(), creates.run(), poller.run(),
                                                 downloads.run()))
        cancelled = asyncio.ensure_future(self._cancelled.wait())
        try:
            await asyncio.wait({stages, cancelled}, return_when=asyncio.FIRST_COMPLETED)
            if stages.done():
                stages.result()
                return
            # Cancelled: the create on the wire (if any) ends and is journalled first.
            await creates.finished.wait()
            stages.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stages
        finally:
            cancelled.cancel()
            stages.cancel()

    async def _check_account(self, journal: Journal) -> None:
        """A new journal creates nothing while the account has recent tasks no journal row
        owns: they may be this batch's, made under a journal that was deleted."""
        opts = self.opts
        if opts.fresh_start or journal.claimed_task_ids() or any(
                r.attempts for r in journal.rows()):
            journal.set_meta("account_checked", "fresh" if opts.fresh_start else "known")
            return
        listed = await recent_tasks(self.client, time.time() - opts.recent_tasks)
        since = time.time() - opts.recent_tasks
        unknown = sorted({t.task_id for t in listed if t.create_time >= since}
                         - journal.claimed_task_ids())
        if unknown:
            raise UnknownTasksError(unknown, opts.recent_tasks / 3600)
        journal.set_meta("account_checked", "clean")

    def _check_outputs(self, journal: Journal) -> None:
        """A done row whose file went missing or changed size is downloaded again."""
        for row in journal.rows(RowState.DONE):
            path = Path(row.output_path or self.opts.output_dir / f"{row.id}.mp4")
            try:
                size = path.stat().st_size
            except OSError:
                journal.output_lost(row.id, "file missing")
                continue
            if size != row.output_size:
                journal.output_lost(row.id, f"size {size} != {row.output_size}")

    def _rescue_journal(self, journal: Journal) -> None:
        """The journal's file is gone or replaced: put its state back where a re-run finds it
        (or beside the file that replaced it), so that no task it knows is paid for again."""
        path = self.opts.journal_file
        target = path if not path.exists() else path.with_name(path.name + ".rescued")
        try:
            journal.save_copy(target)
        except (OSError, sqlite3.Error) as e:
            log.warning("could not write the journal's state to %s: %s", target, e)
            return
        self.rescued = target


async def _together(*stages: Coroutine[Any, Any, None]) -> None:
    """Run the stages to their end; one failure ends them all and is raised as itself (the
    journal's loss first)."""
    try:
        async with asyncio.TaskGroup() as tg:
            for stage in stages:
                tg.create_task(stage)
    except BaseExceptionGroup as group:
        raise _first(group) from None


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for sub in e.exceptions:
                walk(sub)
        elif not isinstance(e, asyncio.CancelledError):
            leaves.append(e)

    walk(group)
    lost = [e for e in leaves if isinstance(e, JournalLostError)]
    return (lost or leaves or [asyncio.CancelledError()])[0]


def _boot_id() -> str | None:
    """Changes when the machine restarts (Linux); None where unknown."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


async def run_batch(
    client: AsyncClient, manifest: Manifest, options: BatchOptions
) -> Journal:
    """Run (or resume) a batch and write its report (``OUTDIR/batch-report.json``), as the
    command does; returns the journal, still open (close it when done)."""
    from .report import build_report, write_report

    runner = BatchRunner(client, manifest, options)
    journal = await runner.run()
    write_report(options.output_dir, build_report(journal, stopped=runner.progress.stopped))
    return journal
