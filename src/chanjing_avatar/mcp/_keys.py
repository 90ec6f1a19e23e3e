"""Idempotency keys for paid creates, on the batch runner's journal and reconciliation.

A key is a journal row: the first call with a key writes "create intended" (synced) before the
create is sent and "create sent" just before its bytes leave; the answer makes the row
"created" with its task id. A later call with the same key and the same request returns that
task and sends nothing. When the answer was lost (a timeout after sending, or this process
killed in between) the row is left intended/unknown, and the next call with the key settles it
the way the batch runner does (``batch.reconcile.decide``): after the server can no longer act
on the request, the account's tasks created in the send window that no key owns are listed;
none means create again, exactly one is adopted, anything else is reported, never guessed.

Creates of one account go one at a time (an asyncio lock, and a file lock across processes
sharing the state folder), and an unsettled create blocks the next one, so at most one outcome
is ever unknown: the condition that makes the window decidable.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import filelock

from chanjing_avatar import ChanjingError, LipSyncRequest, OutcomeUnknownError
from chanjing_avatar._wire import SERVICE_LIP_SYNC_VIDEO
from chanjing_avatar.batch import (
    Journal,
    JournalRow,
    Listed,
    Manifest,
    Row,
    RowState,
    SpecChangedError,
    decide,
)
from chanjing_avatar.batch.journal import UNRESOLVED_CREATE
from chanjing_avatar.batch.manifest import MediaRef
from chanjing_avatar.batch.reconcile import estimate_offset

if TYPE_CHECKING:
    from chanjing_avatar import AsyncClient

__all__ = ["KEY_RE", "CreateRequest", "KeyConflictError", "KeyedCreates", "NotSettledError"]

KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class KeyConflictError(ValueError):
    """The key already belongs to a create with other parameters."""


class NotSettledError(RuntimeError):
    """A create's outcome cannot be known yet (or cannot be decided): call again later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class CreateRequest:
    """What a create asks for: media as a local file (hashed) or a file id, speech, options."""

    video: MediaRef
    text: str | None = None
    voice_id: str | None = None
    audio: MediaRef | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def row(self, key: str) -> Row:
        def ref(m: MediaRef) -> str | Path:
            return m.path if m.path is not None else str(m.file_id)

        request = LipSyncRequest(
            video=ref(self.video), text=self.text, voice_id=self.voice_id,
            audio=ref(self.audio) if self.audio is not None else None, **self.options,
        )
        return Row(id=key, line=0, video=self.video, request=request, audio=self.audio)


def media_ref(value: str, service: str) -> MediaRef:
    """A local file (``/`` in it, or an existing path) or else a file id."""
    path = Path(value).expanduser()
    if "/" not in value and "\\" not in value and not path.is_file():
        return MediaRef(service=service, file_id=value)
    path = path.resolve()
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return MediaRef(service=service, path=path, sha256=digest, size=path.stat().st_size)


@dataclass(frozen=True)
class Created:
    task_id: str
    replayed: bool  # True: an earlier call with this key made (or adopted) it
    how: str  # created | replayed | adopted


class KeyedCreates:
    """Creates keyed by idempotency key for one account; see the module docstring."""

    def __init__(
        self,
        state_dir: Path,
        account: str,
        *,
        settle: float = 60.0,
        clock_offset: tuple[float, float] = (-10.0, 10.0),
        guard: float = 60.0,
        max_send_delay: float = 70.0,
    ) -> None:
        _private_dir(state_dir)
        name = hashlib.sha256(account.encode()).hexdigest()[:16]
        self.path = state_dir / f"keys-{name}.sqlite"
        for suffix in ("", ".lock"):
            _private_file(Path(str(self.path) + suffix))
        self.journal = Journal(self.path)
        for suffix in ("-wal", "-shm"):
            extra = Path(str(self.path) + suffix)
            if extra.exists():
                extra.chmod(0o600)
        self.settle = settle
        self.clock_offset = clock_offset
        self.guard = guard
        self.max_send_delay = max_send_delay
        self._lock = asyncio.Lock()
        self._flock = filelock.FileLock(str(self.path) + ".lock", thread_local=False)
        # A new journal has no row from an earlier boot; an old one must have been on this boot.
        boot, stored = _boot_id(), self.journal.meta("boot_id")
        self._same_boot = boot is not None and stored in (None, boot)
        if boot is not None:
            self.journal.set_meta("boot_id", boot)

    def close(self) -> None:
        self.journal.close()

    def _unresolved(self) -> list[JournalRow]:
        return [r for r in self.journal.rows() if r.state in UNRESOLVED_CREATE]

    def task_of(self, key: str) -> str | None:
        try:
            return self.journal.row(key).task_id
        except KeyError:
            return None

    async def create(
        self,
        client: AsyncClient,
        key: str,
        request: CreateRequest,
        *,
        budget: float,
        on_stage: Callable[[str], Any] | None = None,
    ) -> Created:
        """The task of ``key``: the one made or adopted before, else a new one (paid once).

        ``budget`` bounds the seconds spent waiting for an earlier create to settle.
        """
        deadline = time.monotonic() + budget
        async with self._lock:
            try:
                await asyncio.to_thread(self._flock.acquire, timeout=max(1.0, budget))
            except filelock.Timeout:
                raise NotSettledError(
                    "another server process has been creating on this account for "
                    f"{budget:.0f} s; call again with the same idempotency_key",
                    retry_after=budget,
                ) from None
            try:
                return await self._create(client, key, request, deadline, on_stage)
            finally:
                self._flock.release()

    async def _create(
        self,
        client: AsyncClient,
        key: str,
        request: CreateRequest,
        deadline: float,
        on_stage: Callable[[str], Any] | None,
    ) -> Created:
        journal = self.journal
        row = request.row(key)
        try:
            old: JournalRow | None = journal.row(key)
        except KeyError:
            old = None
        if old is not None and old.task_id is not None and old.state == RowState.CREATED:
            if old.spec != row.spec():
                raise _conflict(key)
            return Created(old.task_id, True, "replayed")
        try:
            journal.sync_manifest(Manifest(self.path, [row]))
        except SpecChangedError:
            raise _conflict(key) from None
        # Every unknown outcome first, this key's included: nothing is created meanwhile.
        for pending in self._unresolved():
            adopted = await self._settle(client, pending.id, deadline)
            if pending.id == key and adopted is not None:
                return Created(adopted, True, "adopted")
        current = journal.row(key)
        if current.state == RowState.UNDECIDABLE:
            raise NotSettledError(
                f"idempotency key {key}: {current.error}. A task may exist for it; check the "
                "task list, then use a new key only if none of them is yours"
            )
        video_id = await self._upload(client, request.video, on_stage)
        audio_id = (await self._upload(client, request.audio, on_stage)
                    if request.audio is not None else None)
        kwargs: dict[str, Any] = {"video_file_id": video_id, **dict(request.options)}
        if request.video.path is not None:
            # Not part of the key's parameters: a size not given is the video's own.
            kwargs["video_path"] = str(request.video.path)
        if audio_id is not None:
            kwargs["audio_file_id"] = audio_id
        else:
            kwargs.update(text=request.text, voice_id=request.voice_id)
        if on_stage is not None:
            await on_stage("create")
        journal.create_intended(key, time.time(), kwargs)
        sent = False

        def on_sent(at: float) -> None:
            nonlocal sent
            sent = True
            journal.create_sent(key, at)

        try:
            task_id = await client.lipsync.create(**kwargs, on_sent=on_sent)
        except OutcomeUnknownError as e:
            journal.outcome_unknown(key, e.sent_at.timestamp(), time.time(), str(e))
            adopted = await self._settle(client, key, deadline)
            if adopted is not None:
                return Created(adopted, False, "adopted")
            # Settled as "not created": one more create is safe, and is this call's.
            return await self._create(client, key, request, deadline, on_stage)
        except asyncio.CancelledError:
            if not sent:
                journal.reconciled(key, "recreate", reason="cancelled before sending")
            raise  # sent: left intended; the next call with the key settles it
        except BaseException as e:
            # The server refused (nothing was made), or this failed before sending.
            journal.create_refused(key, str(e))
            raise
        journal.created(key, task_id)
        await self._sample_clock(client, task_id)
        return Created(task_id, False, "created")

    async def _sample_clock(self, client: AsyncClient, task_id: str) -> None:
        """The server's create_time of a task whose send and answer times are known: it bounds
        the offset between the clocks, which narrows the window of any later unknown create."""
        try:
            task = await client.lipsync.get(task_id)
        except ChanjingError:
            return  # only a sample lost
        if task.create_time is not None:
            self.journal.task_seen(task_id, task.create_time.timestamp())

    async def _upload(
        self,
        client: AsyncClient,
        ref: MediaRef,
        on_stage: Callable[[str], Any] | None,
    ) -> str:
        if ref.file_id is not None:
            return ref.file_id
        journal = self.journal
        done = journal.upload(ref.key)
        if done is not None and done["state"] == "done" and done["file_id"]:
            return str(done["file_id"])  # the same content was uploaded for an earlier key
        assert ref.path is not None
        if on_stage is not None:
            stage = "upload_video" if ref.service == SERVICE_LIP_SYNC_VIDEO else "upload_audio"
            await on_stage(stage)
        journal.upload_intended(ref.key)
        detail = await client.files.upload(ref.path, ref.service)
        journal.upload_done(ref.key, detail.id)
        return detail.id

    async def _settle(self, client: AsyncClient, key: str, deadline: float) -> str | None:
        """Settle the unknown create of ``key``: the adopted task id, or None (not created)."""
        journal = self.journal
        while True:
            row = journal.row(key)
            if row.state not in UNRESOLVED_CREATE:
                return row.task_id if row.state == RowState.CREATED else None
            sent_at, last_sent, settle = row.sent_at, row.last_sent_at, self.settle
            if sent_at is None:
                if self._same_boot:
                    # "sent" is journalled before any byte leaves: this create never left.
                    journal.reconciled(key, "recreate", reason="never sent")
                    return None
                assert row.intent_at is not None
                sent_at = last_sent = row.intent_at
                settle += self.max_send_delay
            assert last_sent is not None
            offset = estimate_offset(journal.clock_samples(), default=self.clock_offset)
            args: dict[str, Any] = {
                "intent_at": sent_at,
                "outcome_at": max(last_sent, row.outcome_at or last_sent),
                "claimed": journal.claimed_task_ids(),
                "settle": settle + (last_sent - sent_at),
                "offset": offset,
                "guard": self.guard,
            }
            decision = decide(now=time.time(), listed=[], **args)
            if decision.kind == "wait":
                assert decision.wait_until is not None
                pause = decision.wait_until - time.time() + 0.05
                if time.monotonic() + pause > deadline:
                    raise NotSettledError(
                        f"the create for idempotency key {key} was sent but its answer was "
                        f"lost; its outcome is known in {pause:.0f} s. Call again with the "
                        "same idempotency_key then: it will not create twice",
                        retry_after=pause,
                    )
                await asyncio.sleep(max(0.0, pause))
                continue
            listed = await self._listed_since(client, decision.window.start - self.guard)
            decision = decide(now=time.time(), listed=listed, **args)
            detail: dict[str, Any] = {
                "window": [decision.window.start, decision.window.end],
                "candidates": list(decision.candidates),
                "nearby": list(decision.nearby),
                "reason": decision.reason,
            }
            if decision.kind == "adopt":
                journal.reconciled(key, "adopted", task_id=decision.task_id, **detail)
                return decision.task_id
            journal.reconciled(key, "recreate" if decision.kind == "recreate" else
                               "undecidable", **detail)
            if decision.kind == "undecidable":
                raise NotSettledError(
                    f"idempotency key {key}: {decision.reason}; candidates: "
                    f"{', '.join(decision.candidates) or 'none'}"
                )
            return None

    @staticmethod
    async def _listed_since(client: AsyncClient, oldest: float) -> list[Listed]:
        out: list[Listed] = []
        page = 1
        while True:
            result = await client.lipsync.list(page, 50)
            stamps = [(t.id, t.create_time.timestamp()) for t in result.items if t.create_time]
            out += [Listed(task_id, stamp) for task_id, stamp in stamps if stamp >= oldest]
            # Newest first: a page reaching past ``oldest`` is the last one needed.
            if (not result.items or page >= result.page_info.total_page
                    or any(stamp < oldest for _, stamp in stamps)):
                return out
            page += 1


def _conflict(key: str) -> KeyConflictError:
    return KeyConflictError(
        f"idempotency key {key} was already used for a create with other parameters; "
        "use a new key for a different video"
    )


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def _private_file(path: Path) -> None:
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    path.chmod(0o600)


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None
