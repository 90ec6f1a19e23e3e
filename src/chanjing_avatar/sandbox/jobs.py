"""Worker jobs: probe an uploaded file, render a task (paced, with rising progress)."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from .._wire import (
    SERVICE_LIP_SYNC_AUDIO,
    SERVICE_LIP_SYNC_VIDEO,
    Code,
    FileStatus,
    TaskStatus,
)
from ..render.base import AudioSpeech, RenderError, RenderJob, TtsSpeech
from .blobs import too_large_message
from .core import BLOB_KEYS, RENDER, SandboxCore
from .envelope import envelope_body
from .probing import probe_problem
from .store import BackendUnavailable, TaskRecord
from .views import task_view

log = logging.getLogger("chanjing_avatar.sandbox")

_PACE_TICK_S = 0.1


def probe_file(core: SandboxCore, file_id: str) -> None:
    record = core.store.get_file(file_id)
    if record is None or record.uploaded_at is None:
        return
    kinds: dict[str, Literal["video", "audio"]] = {
        SERVICE_LIP_SYNC_VIDEO: "video",
        SERVICE_LIP_SYNC_AUDIO: "audio",
    }
    kind = kinds.get(record.service)
    problem = None
    limit = core.config.max_upload_bytes
    if record.bytes > limit:
        # A presigned PUT goes straight to the object store, which cannot know the limit (the
        # URL is made before the size is known): refuse it now, and keep none of its bytes.
        core.blobs.delete(record.blob_key)
        problem = f"EntityTooLarge: {too_large_message(limit)}; the file was deleted"
    elif kind:
        with core.blobs.local_copy(record.blob_key) as local:
            problem = probe_problem(local, kind)
    if problem is None:
        core.store.update_file(file_id, checked_status=int(FileStatus.READY), msg="")
    else:
        core.store.update_file(file_id, checked_status=int(FileStatus.CHECK_FAILED), msg=problem)


class _Progress:
    """Progress shown to clients: the renderer's, held back by the pacing clock, never falling."""

    def __init__(self, core: SandboxCore, task_id: str, attempt: int, min_real_s: float) -> None:
        self._core = core
        self._task_id = task_id
        self._attempt = attempt
        self._min = min_real_s
        self._start = core.clock.monotonic()
        self._render = 0
        self._shown = -1
        self._lock = threading.Lock()

    def paced(self) -> int:
        if self._min <= 0:
            return 100
        return int(99 * min(1.0, (self._core.clock.monotonic() - self._start) / self._min))

    def remaining(self) -> float:
        return self._min - (self._core.clock.monotonic() - self._start)

    def render(self, percent: int) -> None:
        self._render = max(self._render, min(99, int(percent)))
        self.publish()

    def publish(self) -> None:
        with self._lock:
            value = min(self._render, self.paced())
            if value > self._shown:
                self._shown = value
                self._core.store.update_attempt(self._task_id, self._attempt, progress=value)


def render_task(core: SandboxCore, task_id: str) -> None:
    attempt = core.store.claim_task(task_id)
    if attempt is None:  # gone or finished already
        return
    task = core.store.get_task(task_id)
    if task is None:
        return
    if attempt > core.config.render_attempts:
        _finish(
            core,
            task,
            attempt,
            TaskStatus.FAILED,
            f"rendering was interrupted {attempt - 1} times (its worker was lost); giving up",
        )
        return
    pacing = core.clock.pacing
    progress = _Progress(core, task_id, attempt, core.clock.real(pacing.task_min_duration_s))
    work_dir = core.config.data_dir / "work" / f"{task_id}-{attempt}"
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    try:
        with ExitStack() as inputs:
            _render(core, task, attempt, progress, work_dir, inputs)
    except BackendUnavailable:
        # The store or object store stayed away: give the task back for a later run (raised
        # again when even that fails, for the queue to retry the job).
        log.warning("task %s: a backend is unavailable; handing it back", task_id)
        _hand_back(core, task_id, attempt)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def used_blob(core: SandboxCore, params: dict[str, Any], field: str) -> str | None:
    """The blob a task's file field named when the task was created (a later upload to the
    same file writes another blob), or None when it is gone."""
    key = params.get(BLOB_KEYS[field])
    if not isinstance(key, str):  # a task created before blobs were pinned
        record = core.store.get_file(params[field])
        key = record.blob_key if record is not None else None
    return key if key is not None and core.blobs.exists(key) else None


def _render(
    core: SandboxCore,
    task: TaskRecord,
    attempt: int,
    progress: _Progress,
    work_dir: Path,
    inputs: ExitStack,
) -> None:
    task_id = task.id
    if task.fail_msg:
        _finish(core, task, attempt, TaskStatus.FAILED, task.fail_msg)
        return
    job = _build_job(core, task.params, task_id, task.seed, work_dir, inputs)
    if job is None:
        _finish(core, task, attempt, TaskStatus.FAILED, "an input file is no longer available")
        return
    try:
        result = core.renderer.render(job, progress.render)
    except BackendUnavailable:
        raise  # not the render's fault: render_task hands the task back
    except RenderError as err:
        if core.work.stopping():
            _hand_back(core, task_id, attempt)
        else:
            _finish(core, task, attempt, TaskStatus.FAILED, str(err) or "rendering failed")
        return
    except Exception as err:  # a renderer bug must still end the task
        log.exception("renderer %s crashed on task %s", core.renderer.name, task_id)
        if core.work.stopping():
            _hand_back(core, task_id, attempt)
        else:
            message = f"internal rendering error ({type(err).__name__})"
            _finish(core, task, attempt, TaskStatus.FAILED, message)
        return
    while progress.remaining() > 0 and not core.work.stopping():
        progress.render(99)
        time.sleep(max(0.0, min(_PACE_TICK_S, progress.remaining())))
    if core.work.stopping():
        _hand_back(core, task_id, attempt)
        return
    # Keys of this attempt: a late render of a lost attempt cannot overwrite what is published.
    done = replace(task, attempt=attempt)
    core.blobs.put_file(core.result_key(done, "mp4"), job.output_video)
    core.blobs.put_file(core.result_key(done, "jpg"), job.output_preview)
    _finish(core, task, attempt, TaskStatus.SUCCEEDED, result.message, result.duration_ms)


def _hand_back(core: SandboxCore, task_id: str, attempt: int) -> None:
    """Shutting down: the task goes back to the queue for another worker (or the next start)."""
    with core.store.transaction():
        if core.store.release_task(task_id, attempt, "resumed after a worker stopped"):
            core.work.submit(RENDER, task_id)


def _local_input(
    core: SandboxCore, params: dict[str, Any], field: str, inputs: ExitStack
) -> Path | None:
    key = used_blob(core, params, field)
    if key is None:
        return None
    try:
        return inputs.enter_context(core.blobs.local_copy(key))
    except FileNotFoundError:
        return None


def _build_job(
    core: SandboxCore,
    params: dict[str, Any],
    task_id: str,
    seed: int,
    work_dir: Path,
    inputs: ExitStack,
) -> RenderJob | None:
    video = _local_input(core, params, "video_file_id", inputs)
    if video is None or not video.is_file():
        return None
    speech: TtsSpeech | AudioSpeech
    if params["audio_type"] == "audio":
        audio = _local_input(core, params, "audio_file_id", inputs)
        if audio is None or not audio.is_file():
            return None
        speech = AudioSpeech(audio)
    else:
        tts = params["tts_config"]
        speech = TtsSpeech(
            text=tuple(tts["text"]),
            voice_id=tts["audio_man_id"],
            speed=float(tts["speed"]),
            pitch=float(tts["pitch"]),
        )
    return RenderJob(
        task_id=task_id,
        video_path=video,
        speech=speech,
        width=params["screen_width"],
        height=params["screen_height"],
        backway=params["backway"],
        drive_mode=params["drive_mode"],
        model=params["model"],
        volume=params["volume"],
        output_video=work_dir / "out.mp4",
        output_preview=work_dir / "out.jpg",
        work_dir=work_dir,
        seed=seed,
        cancel=core.work.stopping,
    )


def _finish(
    core: SandboxCore,
    task: TaskRecord,
    attempt: int,
    status: TaskStatus,
    msg: str,
    duration_ms: int = 0,
) -> None:
    """Publish the terminal state and its callback together, once: a render whose attempt is no
    longer current (its worker was given up for lost) publishes nothing."""
    changes: dict[str, Any] = {
        "status": int(status),
        "msg": msg,
        "duration_ms": duration_ms,
        "finished_at": core.clock.now(),
    }
    if status == TaskStatus.SUCCEEDED:
        changes["progress"] = 100
    with core.store.transaction():
        if not core.store.update_attempt(task.id, attempt, **changes):
            log.warning("task %s attempt %d finished late: not published", task.id, attempt)
            return
        done = core.store.get_task(task.id)
        if done is not None and task.callback:
            payload = envelope_body(
                Code.SUCCESS, "success", task_view(done, core.result_urls(done, core.public_url))
            )
            core.callbacks.send(task.id, task.callback, payload)
