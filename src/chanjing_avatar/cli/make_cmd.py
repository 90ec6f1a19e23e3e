"""``chanjing-avatar make``: upload, create, wait and download in one command."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import typer

from ._callbacks import CallbackListenOpt, Listen, SafetyPollOpt
from ._common import Session, pass_session, require_file
from ._create import (
    BackwayOpt,
    CallbackOpt,
    CreateOptions,
    DriveModeOpt,
    HeightOpt,
    ModelOpt,
    OverwriteOpt,
    PitchOpt,
    SpeedOpt,
    TextFileOpt,
    TextOpt,
    TimeoutOpt,
    VoiceOpt,
    VolumeOpt,
    WidthOpt,
    check_output,
    choose_voice,
    resume_hint,
)
from ._errors import CliError, ExitCode, describe, with_path
from ._local import local_data_dir
from ._present import ProgressTween
from ._signals import terminate_as_interrupt

if TYPE_CHECKING:
    from collections.abc import Callable

    from .. import LipSyncRequest, MakeEvent, MakeResult


class StageView:
    """Shows make's stages on a terminal's stderr: one line (or bar) per stage."""

    LABELS: ClassVar[dict[str, str]] = {
        "upload_video": "upload video",
        "upload_audio": "upload audio",
        "create": "create task",
        "wait": "generate",
        "download": "download",
    }

    def __init__(self, s: Session) -> None:
        self.s = s
        self.task_id: str | None = None
        self.stage: str | None = None
        self._progress: Any = None
        self._bars: dict[str, Any] = {}
        self._tween = ProgressTween()
        self._ticking = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> StageView:
        if self.s.out.stderr_tty:
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description:<14}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                console=self.s.out.err_console,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._ticking.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._progress is not None:
            self._progress.stop()

    def _tick(self, bar: Any) -> None:
        """Between polls, the generate bar moves on at the pace the task has shown."""
        while not self._ticking.wait(0.25):
            self._progress.update(bar, completed=self._tween.at(time.monotonic()))

    def _bar(self, stage: str) -> Any:
        if stage not in self._bars:
            self._bars[stage] = self._progress.add_task(self.LABELS.get(stage, stage), total=100,
                                                        info="")
        return self._bars[stage]

    def __call__(self, ev: MakeEvent) -> None:
        from .._wire import TaskStatus
        from ._present import human_size, status_name

        self.stage = ev.stage
        if ev.task is not None:
            self.task_id = ev.task.id
        if self._progress is None or ev.stage == "done":
            return
        bar = self._bar(ev.stage)
        if ev.stage in ("upload_video", "upload_audio", "download"):
            if ev.total:
                info = f"{human_size(ev.sent or 0)} / {human_size(ev.total)}"
                self._progress.update(bar, total=ev.total, completed=ev.sent or 0, info=info)
            if ev.file_id:
                self._progress.update(bar, total=1, completed=1, info=f"file {ev.file_id}")
        elif ev.stage == "create":
            info = f"task {ev.task.id}" if ev.task is not None else ""
            self._progress.update(bar, total=1, completed=1 if ev.task else 0, info=info)
        elif ev.stage == "wait" and ev.task is not None:
            # Queued, then generating: the bar's label follows the task.
            label = "queued" if ev.task.status == TaskStatus.QUEUED else "generate"
            if ev.task.status != TaskStatus.QUEUED:
                self._tween.observe(time.monotonic(), ev.task.progress)
            self._progress.update(bar, completed=self._tween.at(time.monotonic()),
                                  description=label, info=status_name(ev.task.status))
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, args=(bar,), daemon=True,
                                                name="generate-bar")
                self._ticker.start()


def _demo_video() -> Path:
    """A face video made from an image shipped with an installed package (cached)."""
    try:
        from ..render.demo import make_demo_video
    except ImportError as e:
        raise CliError(
            f"making a demo video needs the sandbox extra ({e.name or e}): "
            "pip install 'chanjing-avatar[sandbox]', or give --video",
        ) from None
    path = local_data_dir() / "demo" / "demo-face.mp4"
    if not path.exists() or path.stat().st_size == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(".demo-face.tmp.mp4")
        make_demo_video(tmp)
        tmp.replace(path)
    return path


@pass_session()
def make(
    s: Session,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to save the video (e.g. out.mp4).",
                           show_default=False)
    ],
    video: Annotated[
        Path | None,
        typer.Option(
            "--video",
            help="Driving video (mp4, mov, webm); with --local, a demo face if omitted.",
            show_default=False,
        ),
    ] = None,
    text: TextOpt = None,
    text_file: TextFileOpt = None,
    voice: VoiceOpt = None,
    speed: SpeedOpt = None,
    pitch: PitchOpt = None,
    audio: Annotated[
        Path | None, typer.Option("--audio", help="Driving audio (mp3, m4a, wav) instead of text.",
                                  show_default=False)
    ] = None,
    width: WidthOpt = None,
    height: HeightOpt = None,
    backway: BackwayOpt = 1,
    drive_mode: DriveModeOpt = "",
    model: ModelOpt = 0,
    volume: VolumeOpt = 100,
    callback: CallbackOpt = None,
    callback_listen: CallbackListenOpt = None,
    safety_poll: SafetyPollOpt = None,
    timeout: TimeoutOpt = 1800,
    overwrite: OverwriteOpt = False,
) -> None:
    """The whole job: upload, create, wait, download; ends with the path, duration and size.

    Ctrl-C while waiting leaves the task running and prints the command that resumes it.
    With --callback-listen, the task's callback (sent to --callback-url, or to the listen
    address) ends the wait at once, and polling slows to a safety net.
    """
    from .. import ChanjingError, ContentRejectedError, TaskFailedError
    from .._wire import SOURCE_EXTENSIONS
    from ._present import human_size, task_notice
    from .files_cmd import content_rejected

    check_output(output, overwrite)
    if video is None and not s.local:
        raise CliError("give --video FILE (or use --local for a demo face)")
    if video is not None:
        require_file(video, "video", SOURCE_EXTENSIONS)
    listen = Listen.from_options(callback_listen, safety_poll, callback)
    options = CreateOptions(text, text_file, voice, speed, pitch, width, height, backway,
                            drive_mode, model, volume, callback)
    # Checked with a stand-in for the demo video, which is made only once all else is right.
    request = options.request(video or Path("demo-face.mp4"), audio, voice_optional=s.local)
    if video is None:
        s.out.note("no --video: making a demo face video")
        request = dataclasses.replace(request, video=_demo_video())
    # The sync client checks the voice (or picks one, --local) and makes the video without a
    # receiver.
    client = s.client()
    request = choose_voice(request, client, s.out, s.local)
    view = StageView(s)
    try:
        with terminate_as_interrupt(), view:
            if listen is None:
                result = client.lipsync.make(request, output=output, on_event=view,
                                             overwrite=overwrite, timeout=timeout)
            else:
                result = _make_with_receiver(s, listen, request, output=output, on_event=view,
                                             overwrite=overwrite, timeout=timeout)
    except KeyboardInterrupt:
        if view.task_id is None:
            raise CliError("interrupted before a task was created; nothing to resume",
                           ExitCode.INTERRUPTED) from None
        raise CliError(f"interrupted; {resume_hint(view.task_id, s.local, output, overwrite)}",
                       ExitCode.INTERRUPTED) from None
    except (OSError, ChanjingError) as e:
        refused = {"upload_video": request.video_path, "upload_audio": request.audio_path}
        if isinstance(e, ContentRejectedError) and refused.get(view.stage or "") is not None:
            raise content_rejected(refused[view.stage or ""] or output) from None
        if view.task_id is None or isinstance(e, TaskFailedError):
            raise
        # The task exists and is paid for: whatever went wrong, say how to get the video.
        failure = describe(with_path(e, output) if isinstance(e, OSError) else e)
        hint = resume_hint(view.task_id, s.local, output, overwrite, running=False)
        raise CliError(f"{failure.message}; task {view.task_id} was created: {hint}",
                       failure.code) from None
    task = result.task
    notice = task_notice(task)
    if notice:
        s.out.warn(notice, always=True)
    size = result.download.bytes
    duration = task.duration
    data = {
        "path": str(result.download.path),
        "bytes": size,
        "duration": duration,
        "task_id": task.id,
        "video_file_id": result.video_file_id,
        "audio_file_id": result.audio_file_id,
    }
    dur = f"{duration:.1f} s" if duration is not None else "unknown duration"
    s.out.result(data, f"{result.download.path} ({dur}, {human_size(size)})")


def _make_with_receiver(s: Session, listen: Listen, request: LipSyncRequest,
                        **kwargs: Any) -> MakeResult:
    """``lipsync.make`` (async) with the callback receiver running: the task is created with
    the callback URL, and the wait ends at a confirmed callback (or the safety-net poll)."""
    import asyncio

    from .. import Task
    from ._callbacks import running_receiver, wait_for_task

    async def main() -> MakeResult:
        client = s.async_client()
        try:
            async with running_receiver(client, listen, s.out) as server:
                url = listen.callback_url(s.out, server.url, request.callback, client.base_url)

                async def waiter(task_id: str, *, timeout: float,
                                 on_progress: Callable[[Task], None] | None) -> Task:
                    return await wait_for_task(client, server.receiver, task_id,
                                               timeout=timeout, safety_poll=listen.safety_poll,
                                               on_progress=on_progress)

                return await client.lipsync.make(dataclasses.replace(request, callback=url),
                                                 **kwargs, waiter=waiter)
        finally:
            await client.aclose()

    return asyncio.run(main())
