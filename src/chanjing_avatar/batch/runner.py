"""The batch runner: uploads, creates, waits and downloads overlapping, on one AsyncClient.

- Uploads run a few at a time; identical files (same content) are uploaded once.
- Creates run one at a time (the only way to know each one's time window) as fast as the client's
  rate limiter allows. An unknown outcome is reconciled before the next create is sent.
- One poller asks for the details of every running task, within the detail limit; a callback
  receiver, when given, pokes it so a finished task is fetched at once.
- Downloads land under a temporary name and are renamed when complete; size and sha256 are
  journalled.
Every step is journalled before and after (see ``journal.py``), so the same call resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import filelock

from .. import (
    AuthenticationError,
    ChanjingError,
    ContentRejectedError,
    DownloadError,
    FileUnavailableError,
    InvalidRequestError,
    OutcomeUnknownError,
    QuotaExhaustedError,
    Task,
)
from .._wire import TaskStatus, is_billing_failure
from .journal import Journal, JournalLostError, JournalRow, RowState
from .manifest import Manifest
from .reconcile import Listed, decide, estimate_offset

if TYPE_CHECKING:
    from .. import AsyncClient
    from ..callback.receiver import CallbackReceiver

__all__ = ["BatchOptions", "BatchProgress", "BatchRunner", "UnknownTasksError", "run_batch"]

log = logging.getLogger("chanjing_avatar.batch")

JOURNAL_NAME = "batch-journal.sqlite"


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


@dataclass
class BatchOptions:
    outdir: Path
    journal_path: Path | None = None  # default: OUTDIR/batch-journal.sqlite
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

    @property
    def journal_file(self) -> Path:
        return self.journal_path or self.outdir / JOURNAL_NAME


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




class BatchRunner:
    def __init__(self, client: AsyncClient, manifest: Manifest, options: BatchOptions) -> None:
        self.rescued: Path | None = None  # where a lost journal's state was written back
        self.client = client
        self.manifest = manifest
        self.opts = options
        self.journal: Journal | None = None
        self.progress = BatchProgress(total=len(manifest.rows))
        self._stop_reason: str | None = None
        self._files_changed = asyncio.Event()
        self._poll_wake = asyncio.Event()
        self._active: dict[str, str] = {}  # task id -> row id, being polled
        self._due: dict[str, float] = {}
        self._started_wait: dict[str, float] = {}
        self._downloads: asyncio.Queue[str | None] = asyncio.Queue()
        self._creating_row: str | None = None  # the row whose create may be on the wire
        self._create_call: asyncio.Task[str] | None = None
        self._create_sent = False  # the current create's bytes may have left
        self._creator_done = False
        self._uploads_running = 0
        self._row_failures: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}
        self._cancel = asyncio.Event()
        self._creator_finished = asyncio.Event()
        self._lock: filelock.BaseFileLock | None = None
        self._same_boot = False
        self._manifest_ids = {row.id for row in manifest.rows}
        self._missing: dict[str, int] = {}

    # -- public ------------------------------------------------------------------------------

    def stop_creating(self, reason: str) -> None:
        """No new creates from now on (the one on the wire, if any, is finished and journalled)."""
        if self._stop_reason is None:
            self._stop_reason = reason
            self.progress.stopped = reason
            log.warning("no more creates: %s", reason)
        self._files_changed.set()

    def cancel(self) -> None:
        """Ctrl-C: stop creating, let a create on the wire finish and be journalled, then end the
        run. Running tasks keep rendering on the server; the next run waits for them."""
        self.stop_creating("cancelled")
        self._cancel.set()
        call = self._create_call
        if call is not None and not call.done() and not self._create_sent:
            call.cancel()

    async def _main(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._uploader())
                tg.create_task(self._creator())
                tg.create_task(self._poller())
                for _ in range(max(1, self.opts.download_concurrency)):
                    tg.create_task(self._downloader())
        except BaseExceptionGroup as group:
            # One failure, as itself: the journal's loss first, else the first one raised.
            raise _first(group) from None

    async def run(self) -> Journal:
        opts = self.opts
        opts.outdir.mkdir(parents=True, exist_ok=True)
        self._lock = filelock.FileLock(str(opts.journal_file) + ".lock")
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            raise RuntimeError(
                f"another batch is running with {opts.journal_file}; wait for it to end"
            ) from None
        journal = self.journal = Journal(opts.journal_file)
        try:
            boot = _boot_id()
            self._same_boot = boot is not None and journal.meta("boot_id") == boot
            if boot is not None:
                journal.set_meta("boot_id", boot)
            journal.sync_manifest(self.manifest)
            if opts.retry_failed:
                journal.retry_failed()
            self._check_outputs()
            self._refresh()
            if journal.meta("account_checked") is None:
                await self._check_account()
            main = asyncio.ensure_future(self._main())
            cancelled = asyncio.ensure_future(self._cancel.wait())
            try:
                await asyncio.wait({main, cancelled}, return_when=asyncio.FIRST_COMPLETED)
                if not main.done():
                    # Cancelled: the create on the wire (if any) ends and is journalled first.
                    await self._creator_finished.wait()
                    main.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await main
                else:
                    main.result()
            finally:
                cancelled.cancel()
                if not main.done():
                    main.cancel()
            # A row is done only while its file is there: the folder may have been emptied.
            self._check_outputs()
        except JournalLostError:
            self._rescue_journal()
            raise
        finally:
            with contextlib.suppress(JournalLostError):
                self._refresh()
            self._lock.release()
        return journal

    def _rescue_journal(self) -> None:
        """The journal's file is gone or replaced: put its state back where a re-run finds it
        (or beside the file that replaced it), so that no task it knows is paid for again."""
        assert self.journal is not None
        path = self.opts.journal_file
        target = path if not path.exists() else path.with_name(path.name + ".rescued")
        try:
            self.journal.save_copy(target)
        except (OSError, sqlite3.Error) as e:
            log.warning("could not write the journal's state to %s: %s", target, e)
            return
        self.rescued = target

    async def _check_account(self) -> None:
        """A new journal creates nothing while the account has recent tasks no journal row
        owns: they may be this batch's, made under a journal that was deleted."""
        assert self.journal is not None
        journal = self.journal
        if self.opts.fresh_start or journal.claimed_task_ids() or any(
                r.attempts for r in journal.rows()):
            journal.set_meta("account_checked", "fresh" if self.opts.fresh_start else "known")
            return
        listed = await self._list_since(time.time() - self.opts.recent_tasks)
        claimed = journal.claimed_task_ids()
        since = time.time() - self.opts.recent_tasks
        unknown = sorted({t.task_id for t in listed if t.create_time >= since} - claimed)
        if unknown:
            hours = self.opts.recent_tasks / 3600
            raise UnknownTasksError(unknown, hours)
        journal.set_meta("account_checked", "clean")

    # -- helpers -----------------------------------------------------------------------------

    def _refresh(self, event: str = "") -> None:
        if self.journal is None:
            return
        self.progress.counts = self.journal.counts()
        if event:
            self.progress.last_event = event
        if self.opts.on_change is not None:
            self.opts.on_change(self.progress)

    def _output_path(self, row_id: str) -> Path:
        return self.opts.outdir / f"{row_id}.mp4"

    def _check_outputs(self) -> None:
        """A done row whose file went missing or changed size is downloaded again."""
        assert self.journal is not None
        for row in self.journal.rows():
            if row.state != RowState.DONE:
                continue
            path = Path(row.output_path or self._output_path(row.id))
            try:
                size = path.stat().st_size
            except OSError:
                self.journal.output_lost(row.id, "file missing")
                continue
            if size != row.output_size:
                self.journal.output_lost(row.id, f"size {size} != {row.output_size}")

    # The create's send time, journalled just before its bytes go out (after the limiter's wait,
    # the client's ``on_sent`` hook): the window starts at the real send, and a row intended but
    # not sent (same boot) needs no task list at all.
    def _on_sent(self, sent_at: float) -> None:
        if self._creating_row is not None and self.journal is not None:
            self._create_sent = True
            self.journal.create_sent(self._creating_row, sent_at)

    # -- uploads -----------------------------------------------------------------------------

    async def _uploader(self) -> None:
        assert self.journal is not None
        journal = self.journal
        needed: dict[str, dict[str, Any]] = {}
        for row in journal.rows():
            if row.state != RowState.PENDING:
                continue
            for key in (row.video_key, row.audio_key):
                if key is None or key in needed:
                    continue
                up = journal.upload(key)
                if up is not None and up["state"] not in ("done", "failed"):
                    needed[key] = up
        sem = asyncio.Semaphore(max(1, self.opts.upload_concurrency))
        self._uploads_running = len(needed)

        async def one(up: dict[str, Any]) -> None:
            async with sem:
                if self._stop_reason is not None:
                    return
                key = up["key"]
                name = Path(up["path"]).name
                attempt = 0
                while True:
                    attempt += 1
                    journal.upload_intended(key)
                    try:
                        detail = await self.client.files.upload(
                            Path(up["path"]), up["service"], timeout=self.opts.upload_timeout
                        )
                        break
                    except (ContentRejectedError, FileUnavailableError, InvalidRequestError) as e:
                        reason = e.msg
                    except OSError as e:
                        reason = os_reason(e, Path(up["path"]))
                    except ChanjingError as e:
                        # A lost or stuck upload: a fresh upload URL usually fixes it.
                        if attempt < self.opts.upload_attempts:
                            log.info("upload of %s failed (%s); uploading again", name, e)
                            continue
                        reason = str(e)
                    failed = journal.upload_failed(key, reason)
                    self._refresh(f"upload of {name} failed: {reason}")
                    log.warning("upload failed for rows %s: %s", failed, reason)
                    return
                journal.upload_done(key, detail.id)
                self._refresh(f"uploaded {name}")

        try:
            async with asyncio.TaskGroup() as tg:
                for up in needed.values():
                    t = tg.create_task(one(up))
                    t.add_done_callback(lambda _t: self._upload_finished())
        finally:
            self._uploads_running = 0
            self._files_changed.set()

    def _upload_finished(self) -> None:
        self._uploads_running = max(0, self._uploads_running - 1)
        self._files_changed.set()

    # -- creates -----------------------------------------------------------------------------

    async def _creator(self) -> None:
        assert self.journal is not None
        journal = self.journal
        try:
            # Unknown outcomes first: nothing else is created until each is settled.
            for row in journal.rows():
                if row.state in RowState.UNRESOLVED_CREATE:
                    await self._reconcile(row.id)
            for row in journal.rows():
                if row.state in (RowState.CREATED,):
                    self._watch(row.id, row.task_id)
                elif row.state in (RowState.SUCCEEDED, RowState.DOWNLOADING):
                    self._downloads.put_nowait(row.id)
            while self._stop_reason is None:
                ready = self._next_ready()
                if ready is None:
                    if not self._waiting_for_files():
                        break
                    self._files_changed.clear()
                    await self._files_changed.wait()
                    continue
                await self._create(ready)
        finally:
            self._creator_done = True
            self._creator_finished.set()
            self._poll_wake.set()

    def _waiting_for_files(self) -> bool:
        """Something will make a pending row ready later: an upload, or a back-off ending."""
        assert self.journal is not None
        if self._uploads_running > 0:
            return True
        now = time.monotonic()
        return any(
            t > now and self.journal.row(rid).state == RowState.PENDING
            for rid, t in self._retry_at.items()
        )

    def _next_ready(self) -> JournalRow | None:
        assert self.journal is not None
        now = time.monotonic()
        for row in self.journal.rows(state=RowState.PENDING):
            if row.id not in self._manifest_ids:
                continue  # dropped from the manifest: never created now
            vid, aid = self.journal.file_ids(row)
            if vid is None or (row.audio_key is not None and aid is None):
                continue
            if self._row_failures.get(row.id, 0) and self._retry_at.get(row.id, 0) > now:
                continue
            return row
        return None

    def _create_kwargs(self, row: JournalRow) -> dict[str, Any]:
        assert self.journal is not None
        vid, aid = self.journal.file_ids(row)
        spec = row.spec
        kwargs: dict[str, Any] = {"video_file_id": vid, **spec.get("options", {})}
        if row.audio_key is not None:
            kwargs["audio_file_id"] = aid
        else:
            kwargs["text"] = spec["text"]
            kwargs["voice_id"] = spec["voice_id"]
        if self.opts.callback_url:
            kwargs["callback"] = self.opts.callback_url
        return kwargs

    async def _create(self, row: JournalRow) -> None:
        assert self.journal is not None
        journal = self.journal
        kwargs = self._create_kwargs(row)
        intent = time.time()
        journal.create_intended(row.id, intent, kwargs)
        self._creating_row = row.id
        self._create_sent = False
        self._refresh(f"creating {row.id}")
        self._create_call = asyncio.ensure_future(
            self.client.lipsync.create(**kwargs, on_sent=self._on_sent)
        )
        try:
            task_id = await self._create_call
        except asyncio.CancelledError:
            if self._cancel.is_set() and not self._create_sent:
                # Stopped while waiting for a rate-limit slot: nothing was sent.
                self._creating_row = None
                journal.reconciled(row.id, "recreate", reason="cancelled before sending")
                return
            raise
        except OutcomeUnknownError as e:
            self._creating_row = None
            journal.outcome_unknown(row.id, e.sent_at.timestamp(), time.time(), str(e))
            self._refresh(f"{row.id}: create outcome unknown; reconciling")
            await self._reconcile(row.id)
            return
        except (QuotaExhaustedError, AuthenticationError) as e:
            self._creating_row = None
            journal.create_not_sent(row.id, str(e))
            self.stop_creating(f"{type(e).__name__}: {e.msg}")
            return
        except (InvalidRequestError, ContentRejectedError) as e:
            self._creating_row = None
            journal.fail(row.id, f"create refused: {e}", "create")
            self._refresh(f"{row.id}: create refused")
            return
        except ChanjingError as e:
            # Provably not processed (the client raises OutcomeUnknownError otherwise).
            self._creating_row = None
            n = self._row_failures[row.id] = self._row_failures.get(row.id, 0) + 1
            if n >= self.opts.create_attempts:
                journal.fail(row.id, f"create failed {n} times: {e}", "create")
            else:
                journal.create_not_sent(row.id, str(e))
                self._retry_at[row.id] = time.monotonic() + self.opts.create_backoff * n
                self._schedule_retry_wake()
            self._refresh(f"{row.id}: create failed: {e.msg}")
            return
        finally:
            self._creating_row = None
        journal.created(row.id, task_id)
        self.progress.creates_this_run += 1
        self._watch(row.id, task_id)
        self._refresh(f"created {row.id}")

    def _schedule_retry_wake(self) -> None:
        # Wake the creator when a backed-off row is due again.
        loop = asyncio.get_running_loop()
        delay = min(t for t in self._retry_at.values()) - time.monotonic()
        loop.call_later(max(0.0, delay) + 0.01, self._files_changed.set)

    async def _reconcile(self, row_id: str) -> None:
        assert self.journal is not None
        journal = self.journal
        opts = self.opts
        while True:
            row = journal.row(row_id)
            if row.state not in RowState.UNRESOLVED_CREATE:
                return
            sent_at, last_sent, settle = row.sent_at, row.last_sent_at, opts.settle
            if sent_at is None:
                if self._same_boot:
                    # The hook journals sent_at before any byte goes out, and nothing but a
                    # machine crash loses a journal write: this create never left.
                    journal.reconciled(row_id, "recreate", reason="never sent")
                    self._refresh(f"{row_id}: create was never sent")
                    return
                # The machine restarted: sent_at may be lost. Assume a send any time from the
                # intent until the rate-limit wait could have ended.
                assert row.intent_at is not None
                sent_at = last_sent = row.intent_at
                settle += opts.max_send_delay
            assert last_sent is not None
            offset = estimate_offset(journal.clock_samples(), default=opts.clock_offset)
            decision = decide(
                intent_at=sent_at,
                outcome_at=max(last_sent, row.outcome_at or last_sent),
                now=time.time(),
                listed=[],
                claimed=journal.claimed_task_ids(),
                settle=settle + (last_sent - sent_at),
                offset=offset,
                guard=opts.guard,
            )
            if decision.kind == "wait":
                assert decision.wait_until is not None
                # Ctrl-C ends the wait; the row stays unresolved for the next run.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._cancel.wait(),
                        timeout=max(0.0, decision.wait_until - time.time()) + 0.05,
                    )
                if self._cancel.is_set():
                    return
                continue
            listed = await self._list_since(decision.window.start - opts.guard)
            decision = decide(
                intent_at=sent_at,
                outcome_at=max(last_sent, row.outcome_at or last_sent),
                now=time.time(),
                listed=listed,
                claimed=journal.claimed_task_ids(),
                settle=settle + (last_sent - sent_at),
                offset=offset,
                guard=opts.guard,
            )
            detail: dict[str, Any] = {
                "window": [decision.window.start, decision.window.end],
                "candidates": list(decision.candidates),
                "nearby": list(decision.nearby),
                "reason": decision.reason,
                "offset": list(offset),
            }
            if decision.kind == "adopt":
                journal.reconciled(row_id, "adopted", task_id=decision.task_id, **detail)
                self._refresh(f"{row_id}: adopted task {decision.task_id}")
                self._watch(row_id, decision.task_id)
            elif decision.kind == "recreate":
                journal.reconciled(row_id, "recreate", **detail)
                self._refresh(f"{row_id}: create had not happened; creating again")
            else:
                journal.reconciled(row_id, "undecidable", **detail)
                self._refresh(f"{row_id}: undecidable: {decision.reason}")
            return

    async def _list_since(self, oldest: float) -> list[Listed]:
        """Every task of the account created at or after ``oldest`` (newest first pages)."""
        out: list[Listed] = []
        async for result in self.client.lipsync.iter_pages(50):
            for task in result.items:
                if task.create_time is not None:
                    out.append(Listed(task.id, task.create_time.timestamp()))
            times = [t.create_time.timestamp() for t in result.items if t.create_time]
            if times and max(times) < oldest:
                break  # pages are newest first: the rest is older still
        return out

    # -- waiting -----------------------------------------------------------------------------

    def _watch(self, row_id: str, task_id: str | None) -> None:
        if task_id is None:
            return
        self._active[task_id] = row_id
        self._due[task_id] = time.monotonic() + min(1.0, self.opts.poll_interval)
        self._started_wait.setdefault(task_id, time.monotonic())
        if self.opts.receiver is not None:
            self.opts.receiver.watch(task_id)
        self._poll_wake.set()

    def poke(self, task_id: str) -> None:
        """Fetch this task's detail at the next chance (a callback arrived)."""
        if task_id in self._active:
            self._due[task_id] = 0.0
            self._poll_wake.set()

    async def confirm(self, task_id: str) -> Task | None:
        """For a receiver: the poller fetches the detail (one shared limiter)."""
        self.poke(task_id)
        return None

    async def _poller(self) -> None:
        assert self.journal is not None
        interval = self.opts.safety_poll if self.opts.receiver else self.opts.poll_interval
        while True:
            if not self._active:
                if self._creator_done:
                    break
                self._poll_wake.clear()
                await self._poll_wake.wait()
                continue
            task_id = min(self._due, key=self._due.__getitem__)
            wait = self._due[task_id] - time.monotonic()
            if wait > 0:
                self._poll_wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._poll_wake.wait(), timeout=wait)
                continue
            row_id = self._active[task_id]
            try:
                task = await self.client.lipsync.get(task_id)
            except InvalidRequestError as e:
                # "no such task": the account no longer has it (another key, or purged).
                n = self._missing[task_id] = self._missing.get(task_id, 0) + 1
                if n >= 3:
                    self._unwatch(task_id)
                    self.journal.task_failed(row_id, task_id, f"task not found: {e.msg}",
                                             "task")
                    self._refresh(f"{row_id}: task {task_id} not found")
                else:
                    self._due[task_id] = time.monotonic() + interval
                continue
            except ChanjingError as e:
                log.info("detail of %s failed (%s); trying again later", task_id, e)
                self._due[task_id] = time.monotonic() + interval
                continue
            self._handle_task(row_id, task, interval)
        for _ in range(max(1, self.opts.download_concurrency)):
            self._downloads.put_nowait(None)

    def _handle_task(self, row_id: str, task: Task, interval: float) -> None:
        assert self.journal is not None
        journal = self.journal
        task_id = task.id
        if task_id not in self._active:
            return
        if task.create_time is not None:
            journal.task_seen(task_id, task.create_time.timestamp())
        if task.status == TaskStatus.SUCCEEDED:
            self._unwatch(task_id)
            journal.task_succeeded(row_id, task_id, task.video_url, task.duration_ms)
            self._downloads.put_nowait(row_id)
            self._refresh(f"{row_id}: rendered")
        elif task.status == TaskStatus.FAILED:
            self._unwatch(task_id)
            billing = is_billing_failure(task.msg)
            journal.task_failed(row_id, task_id, task.msg or "task failed",
                                "billing" if billing else "task")
            self._refresh(f"{row_id}: failed: {task.msg}")
            if billing:
                self.stop_creating(f"billing failure on {row_id}: {task.msg}")
        else:
            now = time.monotonic()
            if now - self._started_wait.get(task_id, now) > self.opts.task_timeout:
                self._unwatch(task_id)
                self._refresh(f"{row_id}: still running after the timeout; re-run to wait on")
                return
            # One request at a time through the client's limiter: with many tasks running, each
            # is simply polled less often, and the detail limit is never passed.
            self._due[task_id] = now + interval

    def _unwatch(self, task_id: str) -> None:
        self._active.pop(task_id, None)
        self._due.pop(task_id, None)
        if self.opts.receiver is not None:
            self.opts.receiver.unwatch(task_id)

    # -- downloads ---------------------------------------------------------------------------

    async def _downloader(self) -> None:
        assert self.journal is not None
        journal = self.journal
        while True:
            row_id = await self._downloads.get()
            if row_id is None:
                return
            row = journal.row(row_id)
            if row.state not in (RowState.SUCCEEDED, RowState.DOWNLOADING) or not row.task_id:
                continue
            target = self._output_path(row_id)
            journal.download_intended(row_id, str(target))
            error: ChanjingError | None = None
            result = None
            for attempt in range(1, self.opts.download_attempts + 1):
                try:
                    result = await self.client.lipsync.download(
                        row.task_id, target, overwrite=True
                    )
                    problem = await asyncio.to_thread(_not_a_video, Path(result.path))
                    if problem is None:
                        break
                    Path(result.path).unlink(missing_ok=True)
                    result = None
                    raise DownloadError(problem)
                except ChanjingError as e:
                    # Free to repeat: the partial file is resumed or replaced.
                    log.info("download of %s failed (%s), attempt %d", row_id, e, attempt)
                    error = e
                    await asyncio.sleep(self.opts.create_backoff * attempt)
                except OSError as e:
                    # The disk, not the network: this row fails with the reason, the batch goes
                    # on (a full disk keeps no half file: the others need the room).
                    if e.errno == errno.ENOSPC:
                        _discard_part(target)
                    result = None
                    reason = os_reason(e, target)
                    break
            else:
                reason = f"download failed: {error}"
            if result is None:
                journal.fail(row_id, reason, "download")
                self._refresh(f"{row_id}: {reason}")
                continue
            # Checked on the disk before the row is called done.
            try:
                size, digest = await asyncio.to_thread(_sha256, Path(result.path))
            except OSError as e:
                reason = os_reason(e, Path(result.path))
                journal.fail(row_id, reason, "download")
                self._refresh(f"{row_id}: {reason}")
                continue
            if size != result.bytes:
                reason = f"{result.path} holds {size} bytes, {result.bytes} were downloaded"
                journal.fail(row_id, reason, "download")
                self._refresh(f"{row_id}: {reason}")
                continue
            journal.downloaded(row_id, str(result.path), size, digest)
            self.progress.done_this_run += 1
            self._refresh(f"{row_id}: done")


def os_reason(e: OSError, path: Path) -> str:
    """One line for a file system error on ``path``."""
    if e.errno == errno.ENOSPC:
        return f"disk full at {path}"
    return f"{e.strerror or type(e).__name__} at {e.filename or path}"


def _discard_part(target: Path) -> None:
    part = target.with_name(f".{target.name}.part")
    for p in (part, part.with_name(part.name + ".json")):
        with contextlib.suppress(OSError):
            p.unlink()


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


def _not_a_video(path: Path) -> str | None:
    """Why the downloaded file is an error answer rather than a video (None if it is not)."""
    with path.open("rb") as f:
        head = f.read(4096)
    if head[:1] in (b"{", b"<"):
        text = head.decode("utf-8", "replace").lstrip()
        if text.startswith("{") and '"code"' in text:
            return f"the download answered an API error instead of a video: {text[:120]}"
        if text[:15].lower().startswith(("<!doctype", "<html", "<?xml", "<error")):
            return "the download answered a web page instead of a video"
    return None


def _boot_id() -> str | None:
    """Changes when the machine restarts (Linux); None where unknown."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _sha256(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


async def run_batch(
    client: AsyncClient, manifest: Manifest, options: BatchOptions
) -> Journal:
    """Run (or resume) a batch; returns the journal (closed state readable via a new Journal)."""
    runner = BatchRunner(client, manifest, options)
    return await runner.run()
