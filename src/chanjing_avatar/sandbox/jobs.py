"""Worker jobs: probe an uploaded file, render a task (paced, with rising progress)."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Literal

from .._wire import SERVICE_LIP_SYNC_AUDIO, SERVICE_LIP_SYNC_VIDEO, FileStatus, TaskStatus
from ..render.base import AudioSpeech, RenderError, RenderJob, TtsSpeech
from .core import BLOB_KEYS, SandboxCore
from .envelope import envelope_body
from .probing import probe_problem

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
    problem = probe_problem(core.blobs.path(record.blob_key), kind) if kind else None
    if problem is None:
        core.store.update_file(file_id, checked_status=int(FileStatus.READY), msg="")
    else:
        core.store.update_file(file_id, checked_status=int(FileStatus.CHECK_FAILED), msg=problem)


class _Progress:
    """Progress shown to clients: the renderer's, held back by the pacing clock, never falling."""

    def __init__(self, core: SandboxCore, task_id: str, min_real_s: float) -> None:
        self._core = core
        self._task_id = task_id
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
                self._core.store.update_task(self._task_id, progress=value)


def render_task(core: SandboxCore, task_id: str) -> None:
    task = core.store.get_task(task_id)
    if task is None or TaskStatus(task.status).is_terminal:
        return
    core.store.update_task(task_id, status=int(TaskStatus.GENERATING), progress=0)
    pacing = core.clock.pacing
    progress = _Progress(core, task_id, core.clock.real(pacing.task_min_duration_s))
    work_dir = core.config.data_dir / "work" / task_id
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    try:
        if task.fail_msg:
            _finish(core, task_id, TaskStatus.FAILED, task.fail_msg)
            return
        job = _build_job(core, task.params, task_id, task.seed, work_dir)
        if job is None:
            _finish(core, task_id, TaskStatus.FAILED, "an input file is no longer available")
            return
        try:
            result = core.renderer.render(job, progress.render)
        except RenderError as err:
            if not core.work.stopping():
                _finish(core, task_id, TaskStatus.FAILED, str(err) or "rendering failed")
            return
        except Exception as err:  # a renderer bug must still end the task
            log.exception("renderer %s crashed on task %s", core.renderer.name, task_id)
            if not core.work.stopping():
                _finish(
                    core,
                    task_id,
                    TaskStatus.FAILED,
                    f"internal rendering error ({type(err).__name__})",
                )
            return
        while progress.remaining() > 0 and not core.work.stopping():
            progress.render(99)
            time.sleep(max(0.0, min(_PACE_TICK_S, progress.remaining())))
        if core.work.stopping():
            return  # left "generating": the next start resumes it
        core.blobs.put_file(f"results/{task_id}.mp4", job.output_video)
        core.blobs.put_file(f"results/{task_id}.jpg", job.output_preview)
        _finish(core, task_id, TaskStatus.SUCCEEDED, result.message, result.duration_ms)
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


def _build_job(
    core: SandboxCore, params: dict[str, Any], task_id: str, seed: int, work_dir: Path
) -> RenderJob | None:
    video_key = used_blob(core, params, "video_file_id")
    if video_key is None:
        return None
    speech: TtsSpeech | AudioSpeech
    if params["audio_type"] == "audio":
        audio_key = used_blob(core, params, "audio_file_id")
        if audio_key is None:
            return None
        speech = AudioSpeech(core.blobs.path(audio_key))
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
        video_path=core.blobs.path(video_key),
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
    core: SandboxCore, task_id: str, status: TaskStatus, msg: str, duration_ms: int = 0
) -> None:
    changes: dict[str, Any] = {
        "status": int(status),
        "msg": msg,
        "duration_ms": duration_ms,
        "finished_at": core.clock.now(),
    }
    if status == TaskStatus.SUCCEEDED:
        changes["progress"] = 100
    core.store.update_task(task_id, **changes)
    task = core.store.get_task(task_id)
    if task is not None and task.callback:
        payload = envelope_body(0, "success", core.task_view(task, core.public_url))
        core.callbacks.send(task_id, task.callback, payload)
