"""The create stage: one create at a time, as fast as the client's limiter allows, each written to
the journal before and after (intended → sent → created); an unknown outcome is reconciled
against the account's task list before the next create is sent."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import (
    AuthenticationError,
    ChanjingError,
    ContentRejectedError,
    InvalidRequestError,
    LipSyncRequest,
    OutcomeUnknownError,
    QuotaExhaustedError,
)
from ._poll import Poller
from ._run import RunState
from ._upload import Uploads
from .journal import UNRESOLVED_CREATE, JournalRow, RowState
from .manifest import Row
from .reconcile import Decision, Listed, decide, estimate_offset

if TYPE_CHECKING:
    from .. import AsyncClient

log = logging.getLogger("chanjing_avatar.batch")


class Creates:
    def __init__(self, run: RunState, rows: Mapping[str, Row], uploads: Uploads,
                 poller: Poller, *, same_boot: bool) -> None:
        self._run = run
        self._rows = rows  # the manifest's rows by id: rows dropped from it are never created
        self._uploads = uploads
        self._poller = poller
        self._same_boot = same_boot  # no restart of the machine since the journal's last run
        self._failures: dict[str, int] = {}  # row id -> creates the server refused this run
        self._retry_at: dict[str, float] = {}  # row id -> monotonic time it may be tried again
        self._sending: str | None = None  # the row whose create may be on the wire
        self._sent = False  # ... and its bytes may have left
        self._call: asyncio.Task[str] | None = None
        self.finished = asyncio.Event()  # the create in flight (if any) is journalled

    def cancel(self) -> None:
        """Ctrl-C: no more creates; one still waiting for its rate-limit slot is not sent."""
        self._run.rows_changed.set()  # a stage waiting for uploads looks again, and ends
        if self._call is not None and not self._call.done() and not self._sent:
            self._call.cancel()

    async def run(self) -> None:
        run = self._run
        try:
            # Unknown outcomes first: nothing else is created until each is settled.
            for row in run.journal.rows():
                if row.state in UNRESOLVED_CREATE:
                    await self.reconcile(row.id)
            while not run.stopped and not run.cancelled.is_set():
                ready = self._next_ready()
                if ready is None:
                    if not self._more_may_come():
                        break
                    run.rows_changed.clear()
                    await run.rows_changed.wait()
                    continue
                await self._create(ready)
        finally:
            self.finished.set()
            self._poller.no_more_tasks()

    def _more_may_come(self) -> bool:
        """Something will make a pending row ready later: an upload, or a back-off ending."""
        if self._uploads.running > 0:
            return True
        now = time.monotonic()
        return any(t > now and self._run.journal.row(rid).state == RowState.PENDING
                   for rid, t in self._retry_at.items())

    def _next_ready(self) -> JournalRow | None:
        journal, now = self._run.journal, time.monotonic()
        for row in journal.rows(RowState.PENDING):
            if row.id not in self._rows:
                continue  # dropped from the manifest: never created now
            vid, aid = journal.file_ids(row)
            if vid is None or (row.audio_key is not None and aid is None):
                continue
            if self._retry_at.get(row.id, 0) > now:
                continue
            return row
        return None

    def _request(self, row: JournalRow) -> LipSyncRequest:
        """The row's request with its files' ids (a local video's size as the screen size)."""
        vid, aid = self._run.journal.file_ids(row)
        request = self._rows[row.id].request.with_file_ids(video_file_id=vid, audio_file_id=aid)
        if self._run.opts.callback_url:
            request = dataclasses.replace(request, callback=self._run.opts.callback_url)
        return request

    # The create's send time, journalled just before its bytes go out (after the limiter's wait,
    # the client's ``on_sent`` hook): the window starts at the real send, and a row intended but
    # not sent (same boot) needs no task list at all.
    def _on_sent(self, sent_at: float) -> None:
        if self._sending is not None:
            self._sent = True
            self._run.journal.create_sent(self._sending, sent_at)

    async def _create(self, row: JournalRow) -> None:
        run, journal = self._run, self._run.journal
        request = self._request(row)
        journal.create_intended(row.id, time.time(), request.wire_body())
        self._sending, self._sent = row.id, False
        run.refresh(f"creating {row.id}")
        self._call = asyncio.ensure_future(run.client.lipsync.create(request,
                                                                     on_sent=self._on_sent))
        try:
            task_id = await self._call
        except asyncio.CancelledError:
            if run.cancelled.is_set() and not self._sent:
                # Stopped while waiting for a rate-limit slot: nothing was sent.
                self._sending = None
                journal.reconciled(row.id, "recreate", reason="cancelled before sending")
                return
            raise
        except OutcomeUnknownError as e:
            self._sending = None
            journal.outcome_unknown(row.id, e.sent_at.timestamp(), time.time(), str(e))
            run.refresh(f"{row.id}: create outcome unknown; reconciling")
            await self.reconcile(row.id)
            return
        except (QuotaExhaustedError, AuthenticationError) as e:
            self._sending = None
            journal.create_refused(row.id, str(e))
            run.stop_creating(f"{type(e).__name__}: {e.msg}")
            return
        except (InvalidRequestError, ContentRejectedError) as e:
            self._sending = None
            journal.fail(row.id, f"create refused: {e}", "create")
            run.refresh(f"{row.id}: create refused")
            return
        except ChanjingError as e:
            # Provably not processed (the client raises OutcomeUnknownError otherwise).
            self._sending = None
            self._refused(row.id, e)
            return
        finally:
            self._sending = None
        journal.created(row.id, task_id)
        run.progress.creates_this_run += 1
        self._poller.watch(row.id, task_id)
        run.refresh(f"created {row.id}")

    def _refused(self, row_id: str, e: ChanjingError) -> None:
        """A create refused with nothing made: try again after a back-off, a few times."""
        n = self._failures[row_id] = self._failures.get(row_id, 0) + 1
        if n >= self._run.opts.create_attempts:
            self._run.journal.fail(row_id, f"create failed {n} times: {e}", "create")
        else:
            self._run.journal.create_refused(row_id, str(e))
            delay = self._run.opts.create_backoff * n
            self._retry_at[row_id] = time.monotonic() + delay
            # Look again when the back-off is over.
            asyncio.get_running_loop().call_later(delay + 0.01, self._run.rows_changed.set)
        self._run.refresh(f"{row_id}: create failed: {e.msg}")

    # -- reconciliation ----------------------------------------------------------------------

    async def reconcile(self, row_id: str) -> None:
        """Settle a create whose outcome is unknown: adopt its task, create again, or leave the
        row undecidable with the candidates (see ``reconcile.py``)."""
        run, journal, opts = self._run, self._run.journal, self._run.opts
        while True:
            row = journal.row(row_id)
            if row.state not in UNRESOLVED_CREATE:
                return
            sent_at, last_sent, settle = row.sent_at, row.last_sent_at, opts.settle
            if sent_at is None:
                if self._same_boot:
                    # The hook journals sent_at before any byte goes out, and nothing but a
                    # machine crash loses a journal write: this create never left.
                    journal.reconciled(row_id, "recreate", reason="never sent")
                    run.refresh(f"{row_id}: create was never sent")
                    return
                # The machine restarted: sent_at may be lost. Assume a send any time from the
                # intent until the rate-limit wait could have ended.
                assert row.intent_at is not None
                sent_at = last_sent = row.intent_at
                settle += opts.max_send_delay
            assert last_sent is not None
            offset = estimate_offset(journal.clock_samples(), default=opts.clock_offset)
            window: dict[str, Any] = {
                "intent_at": sent_at, "outcome_at": max(last_sent, row.outcome_at or last_sent),
                "settle": settle + (last_sent - sent_at), "offset": offset, "guard": opts.guard,
            }
            first = decide(now=time.time(), listed=[], claimed=journal.claimed_task_ids(),
                           **window)
            if first.kind == "wait":
                assert first.wait_until is not None
                # Ctrl-C ends the wait; the row stays unresolved for the next run.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(run.cancelled.wait(),
                                           timeout=max(0.0, first.wait_until - time.time()) + 0.05)
                if run.cancelled.is_set():
                    return
                continue
            listed = await recent_tasks(run.client, first.window.start - opts.guard)
            self._settle(row_id, decide(now=time.time(), listed=listed,
                                        claimed=journal.claimed_task_ids(), **window), offset)
            return

    def _settle(self, row_id: str, decision: Decision, offset: tuple[float, float]) -> None:
        run = self._run
        detail: dict[str, Any] = {
            "window": [decision.window.start, decision.window.end],
            "candidates": list(decision.candidates),
            "nearby": list(decision.nearby),
            "reason": decision.reason,
            "offset": list(offset),
        }
        if decision.kind == "adopt":
            assert decision.task_id is not None
            run.journal.reconciled(row_id, "adopted", task_id=decision.task_id, **detail)
            run.refresh(f"{row_id}: adopted task {decision.task_id}")
            self._poller.watch(row_id, decision.task_id)
        elif decision.kind == "recreate":
            run.journal.reconciled(row_id, "recreate", **detail)
            run.refresh(f"{row_id}: create had not happened; creating again")
        else:
            run.journal.reconciled(row_id, "undecidable", **detail)
            shown = ", ".join(decision.candidates + decision.nearby)
            run.refresh(f"{row_id}: undecidable: {decision.reason} (candidates: {shown})")


async def recent_tasks(client: AsyncClient, oldest: float) -> list[Listed]:
    """Every task of the account created at or after ``oldest`` (unix s), and maybe a few older.

    Pages come newest first (``lipsync.iter_pages``, the one paging rule): the first page whose
    tasks are all older than ``oldest`` is the last one read.
    """
    out: list[Listed] = []
    async for page in client.lipsync.iter_pages(50):
        times = [(t.id, t.create_time.timestamp()) for t in page.items if t.create_time]
        out.extend(Listed(task_id, created) for task_id, created in times)
        if times and max(created for _, created in times) < oldest:
            break
    return out
