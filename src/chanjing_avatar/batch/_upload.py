"""The upload stage: every file the pending rows need, a few at a time, each content once."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from .. import ChanjingError, ContentRejectedError, FileUnavailableError, InvalidRequestError
from ._files import os_reason
from ._run import RunState
from .journal import RowState

log = logging.getLogger("chanjing_avatar.batch")


class Uploads:
    def __init__(self, run: RunState) -> None:
        self._run = run
        self.running = 0  # uploads not finished yet: a pending row may still become ready

    def needed(self) -> list[dict[str, Any]]:
        """The uploads the pending rows wait for (one per distinct content)."""
        journal = self._run.journal
        needed: dict[str, dict[str, Any]] = {}
        for row in journal.rows(RowState.PENDING):
            for key in (row.video_key, row.audio_key):
                if key is None or key in needed:
                    continue
                up = journal.upload(key)
                if up is not None and up["state"] not in ("done", "failed"):
                    needed[key] = up
        return list(needed.values())

    async def run(self) -> None:
        needed = self.needed()
        sem = asyncio.Semaphore(max(1, self._run.opts.upload_concurrency))
        self.running = len(needed)

        async def one(up: dict[str, Any]) -> None:
            try:
                async with sem:
                    if not self._run.stopped:
                        await self._upload(up)
            finally:
                self.running -= 1
                self._run.rows_changed.set()

        try:
            async with asyncio.TaskGroup() as tg:
                for up in needed:
                    tg.create_task(one(up))
        finally:
            self.running = 0
            self._run.rows_changed.set()

    async def _upload(self, up: dict[str, Any]) -> None:
        run, journal, opts = self._run, self._run.journal, self._run.opts
        key, path = up["key"], Path(up["path"])
        for attempt in range(1, max(1, opts.upload_attempts) + 1):
            journal.upload_intended(key)
            try:
                detail = await run.client.files.upload(path, up["service"],
                                                       timeout=opts.upload_timeout)
            except (ContentRejectedError, FileUnavailableError, InvalidRequestError) as e:
                reason = e.msg
            except OSError as e:
                reason = os_reason(e, path)
            except ChanjingError as e:
                # A lost or stuck upload: a fresh upload URL usually fixes it.
                if attempt < opts.upload_attempts:
                    log.info("upload of %s failed (%s); uploading again", path.name, e)
                    continue
                reason = str(e)
            else:
                journal.upload_done(key, detail.id)
                run.refresh(f"uploaded {path.name}")
                return
            break
        failed = journal.upload_failed(key, reason)
        run.refresh(f"upload of {path.name} failed: {reason}")
        log.warning("upload failed for rows %s: %s", failed, reason)
