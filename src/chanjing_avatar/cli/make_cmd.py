"""``chanjing-avatar make``: upload, create, wait and download in one command."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import typer

from ._callbacks import CallbackListenOpt, Listen, SafetyPollOpt
from ._common import (
    BaseUrlOpt,
    CredentialsDirOpt,
    JsonOpt,
    LocalOpt,
    Session,
    VerboseOpt,
    local_data_dir,
    require_file,
    session,
)
from ._errors import CliError, ExitCode, describe, with_path
from ._signals import terminate_as_interrupt
from .tasks_cmd import (
    BackwayOpt,
    CallbackOpt,
    DriveModeOpt,
    HeightOpt,
    ModelOpt,
    OverwriteOpt,
    PitchOpt,
    Speech,
    SpeedOpt,
    TextFileOpt,
    TextOpt,
    TimeoutOpt,
    VoiceOpt,
    VolumeOpt,
    WidthOpt,
    check_output,
    create_options,
    precheck,
    resume_hint,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from .. import MakeEvent, MakeResult


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
        if self._progress is not None:
            self._progress.stop()

    def _bar(self, stage: str) -> Any:
        if stage not in self._bars:
            self._bars[stage] = self._progress.add_task(self.LABELS.get(stage, stage), total=100,
                                                        info="")
        return self._bars[stage]

    def __call__(self, ev: MakeEvent) -> None:
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
            label = "queued" if int(ev.task.status) == 0 else "generate"
            self._progress.update(bar, completed=ev.task.progress, description=label,
                                  info=status_name(ev.task.status))


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


def make(
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
    local: LocalOpt = False,
    base_url: BaseUrlOpt = None,
    credentials_dir: CredentialsDirOpt = None,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """The whole job: upload, create, wait, download; ends with the path, duration and size.

    Ctrl-C while waiting leaves the task running and prints the command that resumes it.
    With --callback-listen, the task's callback (sent to --callback-url, or to the listen
    address) ends the wait at once, and polling slows to a safety net.
    """
    from .. import ChanjingError, TaskFailedError
    from .._wire import VIDEO_EXTENSIONS
    from ._present import human_size

    check_output(output, overwrite)
    if video is None and not local:
        raise CliError("give --video FILE (or use --local for a demo face)")
    if video is not None:
        require_file(video, "video", VIDEO_EXTENSIONS)
    speech = Speech(text=text, text_file=text_file, voice=voice, speed=speed, pitch=pitch,
                    audio=audio, audio_file_id=None, voice_optional=local)
    listen = Listen.from_options(callback_listen, safety_poll, callback)
    options = create_options(width, height, backway, drive_mode, model, volume, callback)
    precheck(speech, options)
    options = {k: v for k, v in options.items() if v is not None}
    with session(json_=json_, verbose=verbose, local=local, base_url=base_url,
                 credentials_dir=credentials_dir) as s:
        if video is None:
            s.out.note("no --video: making a demo face video")
            video = _demo_video()
        # The sync client picks a voice (--local) and makes the video without a receiver.
        client = s.client()
        speech.pick_voice(client, s.out)
        view = StageView(s)
        tts_options = {"speed": speech.speed, "pitch": speech.pitch} if speech.is_tts else {}
        kwargs: dict[str, Any] = dict(
            video=video, output=output, text=speech.text, voice_id=speech.voice,
            audio=speech.audio, on_event=view, overwrite=overwrite, timeout=timeout,
            **tts_options, **options,
        )
        try:
            with terminate_as_interrupt(), view:
                if listen is None:
                    result = client.lipsync.make(**kwargs)
                else:
                    result = _make_with_receiver(s, listen, kwargs)
        except KeyboardInterrupt:
            if view.task_id is None:
                raise CliError("interrupted before a task was created; nothing to resume",
                               ExitCode.INTERRUPTED) from None
            raise CliError(f"interrupted; {resume_hint(view.task_id, local, output, overwrite)}",
                           ExitCode.INTERRUPTED) from None
        except (OSError, ChanjingError) as e:
            if view.task_id is None or isinstance(e, TaskFailedError):
                raise
            # The task exists and is paid for: whatever went wrong, say how to get the video.
            failure = describe(with_path(e, output) if isinstance(e, OSError) else e)
            hint = resume_hint(view.task_id, local, output, overwrite, running=False)
            raise CliError(f"{failure.message}; task {view.task_id} was created: {hint}",
                           failure.code) from None
        task = result.task
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


def _make_with_receiver(s: Session, listen: Listen, kwargs: dict[str, Any]) -> MakeResult:
    """``lipsync.make`` (async) with the callback receiver running: the task is created with
    the callback URL, and the wait ends at a confirmed callback (or the safety-net poll)."""
    import asyncio

    from .. import Task
    from ._callbacks import running_receiver, wait_for_task

    kwargs = dict(kwargs)
    given_url = kwargs.pop("callback", None)

    async def main() -> MakeResult:
        client = s.async_client()
        try:
            async with running_receiver(client, listen, s.out) as server:
                url = listen.callback_url(s.out, server.url, given_url, client.base_url)

                async def waiter(task_id: str, *, timeout: float,
                                 on_progress: Callable[[Task], None] | None) -> Task:
                    return await wait_for_task(client, server.receiver, task_id,
                                               timeout=timeout, safety_poll=listen.safety_poll,
                                               on_progress=on_progress)

                return await client.lipsync.make(**kwargs, callback=url, waiter=waiter)
        finally:
            await client.aclose()

    return asyncio.run(main())
