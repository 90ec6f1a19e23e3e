"""The batch journal: durable state in SQLite, written before and after every step.

Each step is one transaction (WAL; the writes before a paid create is sent are synced), so a
process killed at any instant leaves the last committed state, and every state has a defined way
forward on resume. A row's state moves only along the arrows of ``TRANSITIONS`` below: every
update checks it, and an update that is not on the table raises :class:`JournalStateError`.

::

    pending ──create intended──> intended ──created──> created ──finished──> succeeded
       ^                            │                     │                     │
       │                            └──outcome unknown──> unknown               downloading
       │                                                  │                     │
       └──────────── reconciled: recreate ────────────────┤                     done
                    reconciled: adopt ──> created         │
                    reconciled: undecidable ──> undecidable
    any ──> failed (with its reason); --retry-failed: failed ──> pending

Every task id this journal ever saw stays in ``tasks``: reconciliation never adopts a task that
belongs to another row, including the earlier attempts of retried rows.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import TaskStatus, redact_url
from .manifest import Manifest, MediaRef

__all__ = [
    "TRANSITIONS",
    "UNRESOLVED_CREATE",
    "Journal",
    "JournalLostError",
    "JournalRow",
    "JournalStateError",
    "RowState",
    "SpecChangedError",
]

SCHEMA_VERSION = 1


class RowState(enum.StrEnum):
    PENDING = "pending"
    INTENDED = "intended"  # create intended: the request may be on the wire
    UNKNOWN = "unknown"  # create sent, outcome unknown; reconcile before any other create
    UNDECIDABLE = "undecidable"  # reconciliation cannot tell; the user decides
    CREATED = "created"
    SUCCEEDED = "succeeded"  # task done, not downloaded yet
    DOWNLOADING = "downloading"
    DONE = "done"
    FAILED = "failed"


S = RowState
# The one rule: a row goes from a state only to the states listed for it.
TRANSITIONS: Mapping[RowState, frozenset[RowState]] = {
    # create intended; a lost journal's task adopted (by the user); an upload failed
    S.PENDING: frozenset({S.INTENDED, S.CREATED, S.FAILED}),
    # answered; answer lost; refused (nothing made) or never sent; refused for good; reconciled
    S.INTENDED: frozenset({S.CREATED, S.UNKNOWN, S.PENDING, S.FAILED, S.UNDECIDABLE}),
    # reconciled: adopted, recreate, undecidable
    S.UNKNOWN: frozenset({S.CREATED, S.PENDING, S.UNDECIDABLE}),
    # the user decides: adopt, or create again
    S.UNDECIDABLE: frozenset({S.CREATED, S.PENDING}),
    # the task finished, or failed (or vanished)
    S.CREATED: frozenset({S.SUCCEEDED, S.FAILED}),
    S.SUCCEEDED: frozenset({S.DOWNLOADING}),
    # fetched and checked; failed; stopped (Ctrl-C); started again after a crash
    S.DOWNLOADING: frozenset({S.DONE, S.FAILED, S.SUCCEEDED, S.DOWNLOADING}),
    # the file went missing or changed: fetch again
    S.DONE: frozenset({S.SUCCEEDED}),
    # --retry-failed: a new task, or (a failed download) the same task fetched again
    S.FAILED: frozenset({S.PENDING, S.SUCCEEDED}),
}
del S

UNRESOLVED_CREATE = frozenset({RowState.INTENDED, RowState.UNKNOWN})
FINISHED = frozenset({RowState.DONE, RowState.FAILED, RowState.UNDECIDABLE})


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS uploads (
    key TEXT PRIMARY KEY,          -- service + content hash: one upload per identical file
    service TEXT NOT NULL,
    path TEXT,
    sha256 TEXT,
    size INTEGER,
    state TEXT NOT NULL,           -- intended | done | failed
    file_id TEXT,
    error TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rows (
    id TEXT PRIMARY KEY,
    line INTEGER NOT NULL,
    ord INTEGER NOT NULL,
    spec TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    video_key TEXT NOT NULL,
    audio_key TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,   -- creates intended so far
    intent_at REAL,                        -- wall clock when the create was decided
    sent_at REAL,                          -- first time its bytes went out (NULL: never sent)
    last_sent_at REAL,                     -- last (re)send of the same create
    outcome_at REAL,                       -- when the unknown outcome was noticed
    task_id TEXT,
    task_status INTEGER,
    task_msg TEXT,
    video_url TEXT,
    duration_ms INTEGER,
    output_path TEXT,
    output_size INTEGER,
    output_sha256 TEXT,
    error TEXT,
    error_kind TEXT,                       -- upload | create | task | billing | download | ...
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    row_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    how TEXT NOT NULL,                     -- created | adopted
    sent_at REAL,
    at REAL NOT NULL,                      -- when the answer (or the adoption) came
    create_time REAL                       -- the server's create_time, once seen
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    row_id TEXT,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


class JournalLostError(RuntimeError):
    """The journal file was deleted or replaced while open, or cannot be written (disk full):
    nothing more may be created, since its record could not be kept."""


class JournalStateError(RuntimeError):
    """An update would move a row along an arrow that ``TRANSITIONS`` does not have."""

    def __init__(self, row_id: str, state: str, to: str) -> None:
        self.row_id, self.state, self.to = row_id, state, to
        super().__init__(f"row {row_id}: no way from {state} to {to}")


class SpecChangedError(ValueError):
    """Rows changed in the manifest after their task was created; listed in ``rows``."""

    def __init__(self, rows: list[str]) -> None:
        self.rows = rows
        super().__init__(
            "these rows changed since their task was created: "
            + ", ".join(rows)
            + ". Use a new output folder, or restore the manifest."
        )


@dataclass(frozen=True)
class JournalRow:
    id: str
    line: int
    ord: int
    spec: dict[str, Any]
    video_key: str
    audio_key: str | None
    state: RowState
    attempts: int
    intent_at: float | None
    sent_at: float | None
    last_sent_at: float | None
    outcome_at: float | None
    task_id: str | None
    task_status: int | None
    task_msg: str | None
    video_url: str | None
    duration_ms: int | None
    output_path: str | None
    output_size: int | None
    output_sha256: str | None
    error: str | None
    error_kind: str | None
    updated_at: float


class Journal:
    """One batch's state. Not thread-safe: use it from the event loop's thread."""

    def __init__(self, path: str | Path, *, clock: Any = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        # Owner-only from the first byte (SQLite gives its -wal and -shm files the same mode).
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        self._identity = (st.st_dev, st.st_ino)
        self._db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # A small WAL: the journal must still fit when the disk around it fills up.
        self._db.execute("PRAGMA wal_autocheckpoint=64")
        self._db.execute("PRAGMA journal_size_limit=1048576")
        # NORMAL survives any crash of this process; only the writes that must outlive a power
        # cut as well (the ones just before a paid create is sent) are synced: see ``_tx``.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check_open(self) -> None:
        """Raise :class:`JournalLostError` unless ``path`` is still the file this journal writes.

        A journal deleted (or its folder) while open keeps taking writes that no later run
        will read: every task it records would be paid for again.
        """
        try:
            st = os.stat(self.path)
        except OSError:
            raise JournalLostError(
                f"the journal {self.path} was deleted while the batch ran"
            ) from None
        if (st.st_dev, st.st_ino) != self._identity:
            raise JournalLostError(
                f"the journal {self.path} was replaced by another file while the batch ran"
            )

    def save_copy(self, path: Path) -> Path:
        """Write this journal's current state to ``path`` (a lost journal's rescue)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        target = sqlite3.connect(str(path))
        try:
            self._db.backup(target)
        finally:
            target.close()
        return path

    @contextmanager
    def _tx(self, *, sync: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction; ``sync`` fsyncs it (and all before it) to the disk."""
        self.check_open()
        try:
            if sync:
                self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise JournalLostError(f"the journal {self.path} cannot be written ({e})") from None
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            if sync:
                self._db.execute("PRAGMA synchronous=NORMAL")
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as e:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise JournalLostError(f"the journal {self.path} cannot be written ({e})") from None
        if sync:
            self._db.execute("PRAGMA synchronous=NORMAL")

    def _event(self, db: sqlite3.Connection, row_id: str | None, kind: str, **detail: Any) -> None:
        db.execute(
            "INSERT INTO events (at, row_id, kind, detail) VALUES (?, ?, ?, ?)",
            (self._clock(), row_id, kind, json.dumps(detail, ensure_ascii=False, default=str)),
        )

    # -- reading ---------------------------------------------------------------------------

    def rows(self, state: str | None = None) -> list[JournalRow]:
        if state is None:
            cur = self._db.execute("SELECT * FROM rows ORDER BY ord")
        else:
            cur = self._db.execute("SELECT * FROM rows WHERE state=? ORDER BY ord", (state,))
        return [self._row(r) for r in cur.fetchall()]

    def row(self, row_id: str) -> JournalRow:
        r = self._db.execute("SELECT * FROM rows WHERE id = ?", (row_id,)).fetchone()
        if r is None:
            raise KeyError(row_id)
        return self._row(r)

    @staticmethod
    def _row(r: sqlite3.Row) -> JournalRow:
        d = dict(r)
        d["spec"] = json.loads(d.pop("spec"))
        d.pop("spec_hash")
        d["state"] = RowState(d["state"])
        return JournalRow(**d)

    def upload(self, key: str) -> dict[str, Any] | None:
        r = self._db.execute("SELECT * FROM uploads WHERE key = ?", (key,)).fetchone()
        return dict(r) if r else None

    def claimed_task_ids(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT task_id FROM tasks")}

    def events(self, row_id: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM events WHERE 1=1", []
        if row_id is not None:
            sql += " AND row_id = ?"
            args.append(row_id)
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        out = []
        for r in self._db.execute(sql + " ORDER BY seq", args):
            d = dict(r)
            d["detail"] = json.loads(d["detail"])
            out.append(d)
        return out

    def counts(self) -> dict[str, int]:
        return {
            r[0]: r[1]
            for r in self._db.execute("SELECT state, COUNT(*) FROM rows GROUP BY state")
        }

    def meta(self, key: str) -> str | None:
        r = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if r is None else str(r[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- setup -----------------------------------------------------------------------------

    def sync_manifest(self, manifest: Manifest) -> None:
        """Add new rows; accept a changed row only while it owns no live task (pending, or
        failed: a fix before ``--retry-failed``).

        Raises :class:`SpecChangedError` (and changes nothing) when a row that has or may have a
        task now asks for something else.
        """
        now = self._clock()
        existing = {r["id"]: dict(r) for r in self._db.execute("SELECT * FROM rows")}
        changed = [
            row.id
            for row in manifest.rows
            if row.id in existing
            and existing[row.id]["spec_hash"] != row.spec_hash()
            and existing[row.id]["state"] not in (RowState.PENDING, RowState.FAILED)
        ]
        if changed:
            raise SpecChangedError(changed)
        with self._tx() as db:
            for ord_, row in enumerate(manifest.rows):
                for ref in (row.video, row.audio):
                    if ref is not None:
                        self._ensure_upload(db, ref, now)
                args = (
                    row.line,
                    ord_,
                    json.dumps(row.spec(), ensure_ascii=False),
                    row.spec_hash(),
                    row.video.key,
                    row.audio.key if row.audio else None,
                )
                if row.id in existing:
                    db.execute(
                        "UPDATE rows SET line=?, ord=?, spec=?, spec_hash=?, video_key=?, "
                        "audio_key=? WHERE id=?",
                        (*args, row.id),
                    )
                else:
                    db.execute(
                        "INSERT INTO rows (line, ord, spec, spec_hash, video_key, audio_key, id, "
                        "state, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (*args, row.id, RowState.PENDING, now),
                    )
                    self._event(db, row.id, "added", line=row.line)

    @staticmethod
    def _ensure_upload(db: sqlite3.Connection, ref: MediaRef, now: float) -> None:
        if ref.file_id is not None:
            # A given file id needs no upload.
            db.execute(
                "INSERT OR IGNORE INTO uploads (key, service, state, file_id, updated_at) "
                "VALUES (?, ?, 'done', ?, ?)",
                (ref.key, ref.service, ref.file_id, now),
            )
        else:
            db.execute(
                "INSERT OR IGNORE INTO uploads (key, service, path, sha256, size, state, "
                "updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                (ref.key, ref.service, str(ref.path), ref.sha256, ref.size, now),
            )
            # The same content may now live at another path.
            db.execute(
                "UPDATE uploads SET path = ? WHERE key = ? AND state != 'done'",
                (str(ref.path), ref.key),
            )

    # -- uploads ---------------------------------------------------------------------------

    def upload_intended(self, key: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE uploads SET state='intended', error=NULL, updated_at=? WHERE key=?",
                (self._clock(), key),
            )
            self._event(db, None, "upload_intended", key=key)

    def upload_done(self, key: str, file_id: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE uploads SET state='done', file_id=?, updated_at=? WHERE key=?",
                (file_id, self._clock(), key),
            )
            self._event(db, None, "uploaded", key=key, file_id=file_id)

    def upload_failed(self, key: str, error: str) -> list[str]:
        """Mark the upload failed and fail every unfinished row that needs it; return their ids."""
        with self._tx() as db:
            now = self._clock()
            db.execute(
                "UPDATE uploads SET state='failed', error=?, updated_at=? WHERE key=?",
                (error, now, key),
            )
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM rows WHERE state = ? AND (video_key = ? OR audio_key = ?)",
                    (RowState.PENDING, key, key),
                )
            ]
            for rid in ids:
                self._fail(db, rid, f"upload failed: {error}", "upload")
            return ids

    def file_ids(self, row: JournalRow) -> tuple[str | None, str | None]:
        """(video file id, audio file id) when uploaded; None where still missing."""
        video = self.upload(row.video_key)
        audio = self.upload(row.audio_key) if row.audio_key else None
        vid = video["file_id"] if video and video["state"] == "done" else None
        aid = audio["file_id"] if audio and audio["state"] == "done" else None
        return vid, aid

    # -- create ----------------------------------------------------------------------------

    def create_intended(self, row_id: str, at: float, request: dict[str, Any]) -> None:
        """Written BEFORE the create is sent, and synced: from here on the row may own a task."""
        with self._tx(sync=True) as db:
            self._move(db, row_id, RowState.INTENDED, sql="attempts=attempts+1", intent_at=at,
                       sent_at=None, last_sent_at=None, outcome_at=None, error=None,
                       error_kind=None)
            self._event(db, row_id, "create_intended", at=at, request=_redacted(request))

    def create_sent(self, row_id: str, at: float) -> None:
        """Written just before the create's bytes go out (each send, retries included).

        Not synced (it sits between the rate-limit slot and the send): it survives a crash of
        this process, not a crash of the machine; see ``Creates.reconcile``.
        """
        with self._tx() as db:
            db.execute(
                "UPDATE rows SET sent_at=COALESCE(sent_at, ?), last_sent_at=? WHERE id=? "
                "AND state IN (?, ?)",
                (at, at, row_id, RowState.INTENDED, RowState.UNKNOWN),
            )

    def created(self, row_id: str, task_id: str) -> None:
        """The create answered with ``task_id``: the row owns it."""
        with self._tx() as db:
            self._claim(db, row_id, task_id, "created")
            self._event(db, row_id, "created", task_id=task_id, how="created")

    def outcome_unknown(self, row_id: str, sent_at: float, noticed_at: float, why: str) -> None:
        with self._tx() as db:
            self._move(db, row_id, RowState.UNKNOWN,
                       sql="sent_at=MIN(COALESCE(sent_at, :sent), :sent), "
                       "last_sent_at=MAX(COALESCE(last_sent_at, :sent), :sent)",
                       params={"sent": sent_at}, outcome_at=noticed_at)
            self._event(db, row_id, "outcome_unknown", sent_at=sent_at, noticed_at=noticed_at,
                        why=why)

    def create_refused(self, row_id: str, reason: str) -> None:
        """The server refused the create (nothing was made): pending again, to try later."""
        with self._tx() as db:
            self._move(db, row_id, RowState.PENDING, intent_at=None, sent_at=None,
                       last_sent_at=None, outcome_at=None, error=reason)
            self._event(db, row_id, "create_refused", reason=reason)

    def reconciled(
        self, row_id: str, decision: str, task_id: str | None = None, **detail: Any
    ) -> None:
        """Record which way a reconciliation went: adopted, recreate or undecidable."""
        with self._tx() as db:
            self._event(db, row_id, "reconcile", decision=decision, task_id=task_id, **detail)
            if decision == "adopted":
                assert task_id is not None
                self._claim(db, row_id, task_id, "adopted")
            elif decision == "recreate":
                self._move(db, row_id, RowState.PENDING, intent_at=None, sent_at=None,
                           last_sent_at=None, outcome_at=None)
            elif decision == "undecidable":
                self._move(db, row_id, RowState.UNDECIDABLE,
                           error=detail.get("reason", "undecidable"), error_kind="undecidable")
            else:
                raise ValueError(decision)

    def _claim(self, db: sqlite3.Connection, row_id: str, task_id: str, how: str) -> None:
        """The row owns ``task_id`` (and the ``tasks`` table keeps it for good)."""
        r = db.execute("SELECT attempts, sent_at FROM rows WHERE id=?", (row_id,)).fetchone()
        db.execute(
            "INSERT INTO tasks (task_id, row_id, attempt, how, sent_at, at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (task_id, row_id, r["attempts"], how, r["sent_at"], self._clock()),
        )
        self._move(db, row_id, RowState.CREATED, task_id=task_id, task_status=None,
                   task_msg=None, video_url=None)

    # -- tasks -----------------------------------------------------------------------------

    def task_seen(self, task_id: str, create_time: float | None) -> None:
        """The server's create_time of a task, for estimating the clock offset."""
        if create_time is None:
            return
        with self._tx() as db:
            db.execute(
                "UPDATE tasks SET create_time=? WHERE task_id=? AND create_time IS NULL",
                (create_time, task_id),
            )

    def clock_samples(self, limit: int = 50) -> list[tuple[float, float, float]]:
        """(sent, answered, server create_time) of recent creates answered directly."""
        cur = self._db.execute(
            "SELECT sent_at, at, create_time FROM tasks WHERE how='created' AND sent_at IS NOT "
            "NULL AND create_time IS NOT NULL ORDER BY at DESC LIMIT ?",
            (limit,),
        )
        return [(float(a), float(b), float(c)) for a, b, c in cur.fetchall()]

    def task_succeeded(
        self, row_id: str, task_id: str, video_url: str | None, duration_ms: int | None
    ) -> None:
        with self._tx() as db:
            if self._move(db, row_id, RowState.SUCCEEDED, only_task=task_id,
                          task_status=int(TaskStatus.SUCCEEDED),
                          video_url=redact_url(video_url) if video_url else None,
                          duration_ms=duration_ms):
                self._event(db, row_id, "task_succeeded", task_id=task_id)

    def task_failed(self, row_id: str, task_id: str, msg: str, kind: str) -> None:
        with self._tx() as db:
            if self._move(db, row_id, RowState.FAILED, only_task=task_id,
                          task_status=int(TaskStatus.FAILED), task_msg=msg,
                          error=msg or "task failed", error_kind=kind):
                self._event(db, row_id, "failed", reason=msg or "task failed", error_kind=kind)

    def fail(self, row_id: str, reason: str, kind: str) -> None:
        with self._tx() as db:
            self._fail(db, row_id, reason, kind)

    def _fail(self, db: sqlite3.Connection, row_id: str, reason: str, kind: str) -> None:
        self._move(db, row_id, RowState.FAILED, error=reason, error_kind=kind)
        self._event(db, row_id, "failed", reason=reason, error_kind=kind)

    # -- download --------------------------------------------------------------------------

    def download_intended(self, row_id: str, download_part_path: str) -> None:
        with self._tx() as db:
            self._move(db, row_id, RowState.DOWNLOADING)
            self._event(db, row_id, "download_intended", part=download_part_path)

    def downloaded(self, row_id: str, path: str, size: int, sha256: str) -> None:
        with self._tx() as db:
            self._move(db, row_id, RowState.DONE, output_path=path, output_size=size,
                       output_sha256=sha256, error=None, error_kind=None)
            self._event(db, row_id, "downloaded", path=path, size=size, sha256=sha256)

    def download_stopped(self, row_id: str) -> None:
        """The run ended during the download: the next run fetches it (resuming the part)."""
        with self._tx() as db:
            self._move(db, row_id, RowState.SUCCEEDED)
            self._event(db, row_id, "download_stopped")

    def output_lost(self, row_id: str, why: str) -> None:
        """A done row's file is missing or altered: download it again."""
        with self._tx() as db:
            self._move(db, row_id, RowState.SUCCEEDED, output_path=None, output_size=None,
                       output_sha256=None)
            self._event(db, row_id, "output_lost", why=why)

    # -- user decisions --------------------------------------------------------------------

    def retry_failed(self) -> list[str]:
        """Failed rows go back to pending; their old task ids stay claimed."""
        with self._tx() as db:
            failed = db.execute("SELECT id, error_kind FROM rows WHERE state=?",
                                (RowState.FAILED,)).fetchall()
            db.execute(
                "UPDATE uploads SET state='pending', error=NULL, updated_at=? "
                "WHERE state='failed'",
                (self._clock(),),
            )
            for r in failed:
                # A download failure needs no new task: fetch again.
                if r["error_kind"] == "download":
                    self._move(db, r["id"], RowState.SUCCEEDED, error=None, error_kind=None)
                    self._event(db, r["id"], "retry", to=RowState.SUCCEEDED)
                else:
                    self._move(db, r["id"], RowState.PENDING, task_id=None, error=None,
                               error_kind=None)
                    self._event(db, r["id"], "retry", to=RowState.PENDING)
            return [r["id"] for r in failed]

    def resolve(self, row_id: str, task_id: str | None) -> None:
        """The user decides an undecidable row: adopt ``task_id``, or create anew (None)."""
        row = self.row(row_id)
        # A pending row that never had a task may adopt one (a lost journal's task).
        adoptable = row.state == RowState.PENDING and row.task_id is None and task_id is not None
        if row.state not in (RowState.UNDECIDABLE, *UNRESOLVED_CREATE) and not adoptable:
            raise ValueError(f"row {row_id} is {row.state}, not waiting for a decision")
        if task_id is None:
            self.reconciled(row_id, "recreate", by="user")
        else:
            if task_id in self.claimed_task_ids():
                raise ValueError(f"task {task_id} already belongs to a row")
            self.reconciled(row_id, "adopted", task_id=task_id, by="user")

    # -- the one way a row's state changes -------------------------------------------------

    def _move(self, db: sqlite3.Connection, row_id: str, to: RowState, *,
              only_task: str | None = None, sql: str = "", params: Mapping[str, Any] = {},
              **columns: Any) -> bool:
        """Move ``row_id`` to ``to`` if ``TRANSITIONS`` allows it (else
        :class:`JournalStateError`), setting ``columns`` and the SQL ``sql`` (with ``params``).

        With ``only_task``, a row that owns another task by now is left as it is (False).
        """
        r = db.execute("SELECT state, task_id FROM rows WHERE id=?", (row_id,)).fetchone()
        if r is None:
            raise KeyError(row_id)
        if only_task is not None and r["task_id"] != only_task:
            return False
        state = RowState(r["state"])
        if to not in TRANSITIONS[state]:
            raise JournalStateError(row_id, state, to)
        sets = ["state=:state", "updated_at=:updated_at", *(f"{k}=:{k}" for k in columns)]
        if sql:
            sets.append(sql)
        db.execute(f"UPDATE rows SET {', '.join(sets)} WHERE id=:id",
                   {**columns, **params, "state": str(to), "updated_at": self._clock(),
                    "id": row_id})
        return True


def _redacted(request: dict[str, Any]) -> dict[str, Any]:
    """A create's arguments as journalled: a callback URL's query (often a token) masked."""
    out = dict(request)
    if isinstance(out.get("callback"), str):
        out["callback"] = redact_url(out["callback"])
    return out
