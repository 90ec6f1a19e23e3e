"""The download stage: a few workers fetch the rendered videos, each checked on the disk."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from pathlib import Path

from .. import ChanjingError, Download, DownloadError
from ._files import discard_part, not_a_video, os_reason, sha256_of
from ._run import RunState
from .journal import JournalLostError, RowState

log = logging.getLogger("chanjing_avatar.batch")


class Downloads:
    def __init__(self, run: RunState) -> None:
        self._run = run
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._workers = max(1, run.opts.download_concurrency)
        # Rendered before this run (or to fetch again: a file went missing).
        for row in run.journal.rows():
            if row.state in (RowState.SUCCEEDED, RowState.DOWNLOADING):
                self.add(row.id)

    def add(self, row_id: str) -> None:
        self._queue.put_nowait(row_id)

    def close(self) -> None:
        """No more rows will come: the workers end once the queue is empty."""
        for _ in range(self._workers):
            self._queue.put_nowait(None)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for _ in range(self._workers):
                tg.create_task(self._worker())

    async def _worker(self) -> None:
        while (row_id := await self._queue.get()) is not None:
            await self._download(row_id)

    async def _download(self, row_id: str) -> None:
        run, journal = self._run, self._run.journal
        row = journal.row(row_id)
        if row.state not in (RowState.SUCCEEDED, RowState.DOWNLOADING) or not row.task_id:
            return
        target = run.output_path(row_id)
        journal.download_intended(row_id, str(target))
        try:
            result = await self._fetch(row.task_id, target)
            # Checked on the disk before the row is called done.
            size, digest = await asyncio.to_thread(sha256_of, Path(result.path))
        except asyncio.CancelledError:
            with contextlib.suppress(JournalLostError):
                journal.download_stopped(row_id)
            raise
        except _RowFailed as e:
            reason = str(e)
        except OSError as e:
            reason = os_reason(e, target)
        else:
            if size == result.bytes:
                journal.downloaded(row_id, str(result.path), size, digest)
                run.progress.done_this_run += 1
                run.refresh(f"{row_id}: done")
                return
            reason = f"{result.path} holds {size} bytes, {result.bytes} were downloaded"
        journal.fail(row_id, reason, "download")
        run.refresh(f"{row_id}: {reason}")

    async def _fetch(self, task_id: str, target: Path) -> Download:
        """The video at ``target``, tried a few times; :class:`_RowFailed` says why not."""
        opts = self._run.opts
        error: ChanjingError | None = None
        for attempt in range(1, opts.download_attempts + 1):
            try:
                result = await self._run.client.lipsync.download(task_id, target,
                                                                   overwrite=True)
                problem = await asyncio.to_thread(not_a_video, Path(result.path))
                if problem is None:
                    return result
                Path(result.path).unlink(missing_ok=True)
                raise DownloadError(problem)
            except ChanjingError as e:
                # Free to repeat: the partial file is resumed or replaced.
                log.info("download of %s failed (%s), attempt %d", target.name, e, attempt)
                error = e
                await asyncio.sleep(opts.create_backoff * attempt)
            except OSError as e:
                # The disk, not the network: this row fails with the reason, the batch goes
                # on (a full disk keeps no half file: the others need the room).
                if e.errno == errno.ENOSPC:
                    discard_part(target)
                raise _RowFailed(os_reason(e, target)) from None
        raise _RowFailed(f"download failed: {error}")


class _RowFailed(Exception):
    """This row's download failed for the reason given."""
