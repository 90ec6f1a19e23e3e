"""The sandbox's business rules, free of HTTP: tokens, files, tasks, voices.

Routes turn requests into calls here and :class:`ApiError` into envelopes; workers (``jobs.py``)
probe files and render tasks. Everything stateful lives behind the Store, BlobStore and WorkQueue
interfaces.
"""

from __future__ import annotations

import hmac
import logging
import random
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import _wire
from .._wire import Code, FileStatus, TaskStatus
from ..render.base import Renderer, VoiceInfo
from .blobs import BlobStore
from .callback_targets import url_problem
from .clock import Clock
from .config import SandboxConfig
from .errors import ApiError, param_error
from .faults import NO_FAULTS, FaultPolicy
from .ids import is_id, new_id, new_token
from .limits import Limiter, RateLimiter
from .queue import CallbackSink, WorkQueue
from .store import FileRecord, FileState, IssuedToken, Store, TaskRecord
from .views import task_view

log = logging.getLogger("chanjing_avatar.sandbox")

PROBE = "probe"
RENDER = "render"
# Where a task's params keep the blob each file field named at create: uploads never overwrite
# a blob, so what a task renders cannot change after it was created.
BLOB_KEYS = {"video_file_id": "video_blob_key", "audio_file_id": "audio_blob_key"}
_RESULT_URL_TTL_S = 7 * 24 * 3600  # as long as SigV4 allows


class SandboxCore:
    def __init__(
        self,
        config: SandboxConfig,
        store: Store,
        blobs: BlobStore,
        work: WorkQueue,
        clock: Clock,
        renderer: Renderer,
        callbacks: CallbackSink,
        limiter: Limiter | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.blobs = blobs
        self.work = work
        self.clock = clock
        self.renderer = renderer
        self.callbacks = callbacks
        self.limiter = limiter or RateLimiter(config.limits(), clock.real)
        self.public_url = config.public_url or ""
        self._voices: Sequence[VoiceInfo] | None = None
        self._audition_lock = threading.Lock()

    # Tokens.
    def issue_token(self, app_id: Any, secret_key: Any) -> IssuedToken:
        for name, value in (("app_id", app_id), ("secret_key", secret_key)):
            if not isinstance(value, str) or not value:
                raise param_error(f"{name}: required, a non-empty string")
        known = self.store.app_secret(app_id)
        if known is None or not hmac.compare_digest(
            known.encode(), secret_key.encode("utf-8", "replace")
        ):
            raise ApiError(Code.AUTH_FAILED, "app_id or secret_key is wrong")
        token = new_token()
        expire_at = self.clock.now() + self.config.token_ttl_s
        self.store.set_token(app_id, token, expire_at)
        # The wire has whole seconds: rounding down, a client never trusts a dead token.
        return IssuedToken(token, int(expire_at))

    def authenticate(self, token: str | None, endpoint_path: str) -> str:
        """The caller's app_id, after the token and the app's rate limit are checked."""
        app_id = self.store.token_app(token, self.clock.now()) if token else None
        if app_id is None:
            raise ApiError(Code.TOKEN_INVALID, "send a current access_token header")
        bucket = _wire.PATH_RATE_BUCKET.get(endpoint_path)
        if not self.limiter.allow(app_id, bucket, self.clock.monotonic()):
            raise ApiError(Code.RATE_LIMITED, f"{bucket} limit reached for this app_id")
        return app_id

    def invalidate_token_of(self, token: str | None) -> None:
        app_id = self.store.token_app(token, self.clock.now()) if token else None
        if app_id is not None:
            self.store.invalidate_tokens(app_id)

    # Files.
    def create_upload(self, app_id: str, service: str, name: str) -> FileRecord:
        problem = _wire.check_upload_name(service, name)
        if problem:
            raise param_error(problem)
        ext = _wire.file_extension(name)
        file_id = new_id()
        record = FileRecord(
            id=file_id,
            app_id=app_id,
            service=service,
            name=name,
            mime_type=_wire.MIME_TYPES[ext],
            blob_key=f"uploads/{file_id}.{ext}",
            create_time=int(self.clock.now()),
        )
        self.store.add_file(record)
        return record

    def upload_blob_key(self, record: FileRecord) -> str:
        """Where an upload to ``record`` writes: its own key the first time, a fresh one for a
        re-upload, so that a blob a task uses is never overwritten."""
        if record.uploaded_at is None:
            return record.blob_key
        stem = record.blob_key.rsplit(".", 1)[0].split("-", 1)[0]
        return f"{stem}-{new_id()}.{_wire.file_extension(record.name)}"

    def upload_finished(
        self,
        file_id: str,
        size: int,
        faults: FaultPolicy = NO_FAULTS,
        blob_key: str | None = None,
    ) -> None:
        changes: dict[str, Any] = {
            **({"blob_key": blob_key} if blob_key else {}),
            "bytes": size,
            "uploaded_at": self.clock.now(),
            "checked_status": None,
            "msg": "",
        }
        if faults.file_check_fails:
            changes["forced_status"] = int(FileStatus.CHECK_FAILED)
        with self.store.transaction():
            self.store.update_file(file_id, **changes)
            self.work.submit(PROBE, file_id)

    def upload_urls(self, record: FileRecord, base_url: str) -> tuple[str, str] | None:
        """(sign_url, full_path) straight to the object store, or None when uploads go
        through this server."""
        ttl = self.config.upload_url_ttl_s
        direct = self.blobs.presign_put(record.blob_key, record.mime_type, ttl)
        if direct is None:
            return None
        return direct, f"{base_url}/upload/{record.id}"

    def _sync_upload(self, record: FileRecord) -> FileRecord:
        """A direct upload reaches the object store without telling us: look for it."""
        if record.uploaded_at is not None:
            return record
        if self.blobs.presign_put(record.blob_key, record.mime_type, 1) is None:
            return record
        size = self.blobs.size(record.blob_key)
        if size is None:
            return record
        with self.store.transaction():
            if self.store.claim_upload(record.id, size, self.clock.now()):
                self.work.submit(PROBE, record.id)
        return self.store.get_file(record.id) or record

    def own_file(self, app_id: str, file_id: Any, field: str = "id") -> FileRecord:
        if not isinstance(file_id, str) or not file_id:
            raise param_error(f"{field}: required, a file id")
        record = self.store.get_file(file_id) if is_id(file_id) else None
        if record is None or record.app_id != app_id:
            raise param_error(f"{field}: no such file")
        return self._sync_upload(record)

    def file_status(self, record: FileRecord) -> tuple[int, str]:
        """What file_detail shows: processing until synced and probed."""
        if record.uploaded_at is None:
            return FileStatus.PROCESSING, "waiting for the upload"
        synced = self.clock.now() >= record.uploaded_at + self.clock.real(
            self.clock.pacing.file_sync_delay_s
        )
        if record.forced_status is not None and synced:
            return record.forced_status, record.msg or "content check failed (injected fault)"
        if record.checked_status is None or not synced:
            return FileStatus.PROCESSING, "processing"
        if record.checked_status == FileStatus.READY:
            return FileStatus.READY, "success"
        return record.checked_status, record.msg

    def file_detail(self, app_id: str, file_id: Any, faults: FaultPolicy = NO_FAULTS) -> FileState:
        record = self.own_file(app_id, file_id)
        if faults.file_check_fails and record.forced_status is None:
            self.store.update_file(
                record.id,
                forced_status=int(FileStatus.CHECK_FAILED),
                msg="content check failed (injected fault)",
            )
            record = self.own_file(app_id, file_id)
        status, msg = self.file_status(record)
        return FileState(record, status, msg)

    # Voices.
    def voices(self) -> Sequence[VoiceInfo]:
        if self._voices is None:
            self._voices = list(self.renderer.voices())
        return self._voices

    def voice(self, voice_id: str) -> VoiceInfo | None:
        return next((v for v in self.voices() if v.id == voice_id), None)

    def audition_path(self, voice_id: str) -> Path | None:
        """The audition sample of a voice, made by the renderer on first use."""
        if self.voice(voice_id) is None:
            return None
        key = f"audition/{voice_id}.wav"
        with self._audition_lock:
            if not self.blobs.exists(key):
                scratch = self.config.data_dir / "work" / f"audition-{new_id()}.wav"
                scratch.parent.mkdir(parents=True, exist_ok=True)
                self.renderer.audition(voice_id, scratch)
                self.blobs.put_file(key, scratch)
        return self.blobs.path(key)

    # Tasks.
    def create_task(self, app_id: str, body: Any, faults: FaultPolicy = NO_FAULTS) -> str:
        try:
            params = _wire.validate_create(body)
        except _wire.CreateFieldError as err:
            raise param_error(str(err)) from None
        video = self._ready_file(
            app_id, params["video_file_id"], "video_file_id", _wire.SERVICE_LIP_SYNC_VIDEO
        )
        params[BLOB_KEYS["video_file_id"]] = video.blob_key
        if params["audio_type"] == "audio":
            audio = self._ready_file(
                app_id, params["audio_file_id"], "audio_file_id", _wire.SERVICE_LIP_SYNC_AUDIO
            )
            params[BLOB_KEYS["audio_file_id"]] = audio.blob_key
        else:
            voice_id = params["tts_config"]["audio_man_id"]
            if self.voice(voice_id) is None:
                raise param_error(
                    f"tts_config.audio_man_id: unknown voice {voice_id[:64]!r}; "
                    "see list_common_audio"
                )
        problem = (
            url_problem(
                params.get("callback") or "", allow_private=self.config.callback_allow_private
            )
            if params.get("callback")
            else ""
        )
        if problem:
            raise param_error(f"callback: {problem}")
        task = TaskRecord(
            id=new_id(),
            app_id=app_id,
            create_time=int(self.clock.now()),
            params=params,
            callback=params.get("callback") or "",
            fail_msg=faults.task_failure_msg,
            seed=random.randrange(2**31),
        )
        # One transaction: a crash between the two cannot leave a task no worker will run.
        with self.store.transaction():
            self.store.add_task(task)
            self.work.submit(RENDER, task.id)
        return task.id

    def _ready_file(self, app_id: str, file_id: str, field: str, service: str) -> FileRecord:
        record = self.own_file(app_id, file_id, field)
        if record.service != service:
            raise param_error(f"{field}: the file was uploaded for {record.service}, not {service}")
        status, msg = self.file_status(record)
        if status != FileStatus.READY:
            state = "not ready yet (poll file_detail)" if status == 0 else f"unusable ({msg})"
            raise param_error(f"{field}: the file is {state}")
        return record

    def own_task(self, app_id: str, task_id: Any) -> TaskRecord:
        if not isinstance(task_id, str) or not task_id:
            raise param_error("id: required, a task id")
        task = self.store.get_task(task_id) if is_id(task_id) else None
        if task is None or task.app_id != app_id:
            raise param_error("id: no such task")
        return task

    @staticmethod
    def result_key(task: TaskRecord, ext: str) -> str:
        """Where a task's result is kept: each render attempt has its own keys."""
        suffix = f"-{task.attempt}" if task.attempt > 1 else ""
        return f"results/{task.id}{suffix}.{ext}"

    def result_urls(self, task: TaskRecord, base_url: str) -> tuple[str, str]:
        """(video URL, preview URL) of a task: presigned ones when the object store serves them,
        empty until the task succeeded."""
        if task.status != TaskStatus.SUCCEEDED:
            return "", ""
        urls = []
        for ext in ("mp4", "jpg"):
            direct = self.blobs.presign_get(self.result_key(task, ext), _RESULT_URL_TTL_S)
            urls.append(direct or f"{base_url}/result/lip-sync/{task.id}.{ext}")
        return urls[0], urls[1]

    def list_tasks(
        self, app_id: str | None, page: int, page_size: int
    ) -> tuple[list[TaskRecord], int]:
        """One page of tasks, newest first, and the count of all."""
        tasks, total = self.store.list_tasks(app_id, (page - 1) * page_size, page_size)
        return list(tasks), total

    def _result_blob(self, name: str) -> str | None:
        task_id, dot, ext = name.partition(".")
        if not dot or ext not in ("mp4", "jpg") or not is_id(task_id):
            return None
        task = self.store.get_task(task_id)
        if task is None or task.status != TaskStatus.SUCCEEDED:
            return None
        return self.result_key(task, ext)

    def result_path(self, name: str) -> Path | None:
        """The local file of a result download name (``<task id>.mp4`` or ``.jpg``)."""
        key = self._result_blob(name)
        return self.blobs.path(key) if key and self.blobs.exists(key) else None

    def result_redirect(self, name: str) -> str | None:
        """A presigned URL of the result, when the object store serves it."""
        key = self._result_blob(name)
        return self.blobs.presign_get(key, _RESULT_URL_TTL_S) if key else None

    def upload_redirect(self, file_id: str) -> str | None:
        """A presigned URL of an upload's bytes, when the object store serves them."""
        record = self.store.get_file(file_id) if is_id(file_id) else None
        if record is None:
            return None
        return self.blobs.presign_get(record.blob_key, _RESULT_URL_TTL_S)

    def ready(self) -> None:
        """Raise BackendUnavailable unless the store and the blob store answer."""
        self.store.ping()
        self.blobs.ping()

    # Restart.
    def resume(self) -> None:
        """Requeue files not yet probed, tasks a previous run left unfinished and callbacks it
        had not delivered yet (their ``data`` rebuilt, so URLs name this run's address)."""
        for pending in self.store.pending_callbacks():
            task = self.store.get_task(pending.task_id)
            payload = pending.payload
            if task is not None and TaskStatus(task.status).is_terminal:
                payload = {
                    **payload,
                    "data": task_view(task, self.result_urls(task, self.public_url)),
                }
            self.callbacks.restore(replace(pending, payload=payload))
        for record in self.store.files_awaiting_probe():
            self.work.submit(PROBE, record.id)
        for task in self.store.unfinished_tasks():
            if task.status == TaskStatus.GENERATING:
                self.store.update_task(
                    task.id,
                    status=int(TaskStatus.QUEUED),
                    progress=0,
                    msg="resumed after a sandbox restart",
                )
            self.work.submit(RENDER, task.id)
