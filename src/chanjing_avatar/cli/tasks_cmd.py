"""``chanjing-avatar create | status | list | wait | download``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
)
from ._errors import CliError, ExitCode, with_path
from ._signals import terminate_as_interrupt

if TYPE_CHECKING:
    from .. import Client, Task


@pass_session()
def create(
    s: Session,
    video: Annotated[
        Path | None, typer.Option("--video", help="Driving video to upload (mp4, mov, webm).",
                                  show_default=False)
    ] = None,
    video_file_id: Annotated[
        str | None, typer.Option("--video-file-id", help="An uploaded video's file id.")
    ] = None,
    text: TextOpt = None,
    text_file: TextFileOpt = None,
    voice: VoiceOpt = None,
    speed: SpeedOpt = None,
    pitch: PitchOpt = None,
    audio: Annotated[
        Path | None, typer.Option("--audio", help="Driving audio to upload (mp3, m4a, wav).",
                                  show_default=False)
    ] = None,
    audio_file_id: Annotated[
        str | None, typer.Option("--audio-file-id", help="An uploaded audio's file id.")
    ] = None,
    width: WidthOpt = None,
    height: HeightOpt = None,
    backway: BackwayOpt = 1,
    drive_mode: DriveModeOpt = "",
    model: ModelOpt = 0,
    volume: VolumeOpt = 100,
    callback: CallbackOpt = None,
) -> None:
    """Create a lip-sync task (local files are uploaded first); print its id."""
    from .._wire import SOURCE_EXTENSIONS
    from .files_cmd import upload_with_bar

    if (video is None) == (video_file_id is None):
        raise CliError("give exactly one of --video FILE or --video-file-id ID")
    if audio is not None and audio_file_id is not None:
        raise CliError("give --audio or --audio-file-id, not both")
    if video is not None:
        require_file(video, "video", SOURCE_EXTENSIONS)
    options = CreateOptions(text, text_file, voice, speed, pitch, width, height, backway,
                            drive_mode, model, volume, callback)
    request = options.request(video or video_file_id or "", audio or audio_file_id,
                              voice_optional=s.local)
    client = s.client()
    request = choose_voice(request, client, s.out, s.local)
    uploaded: dict[str, str | None] = {}
    # A photo becomes a still video inside the library's create, which uploads that.
    if request.video_path is not None and not request.video_is_photo:
        path = request.video_path
        uploaded["video_file_id"] = upload_with_bar(s, client, path, "lip_sync_video",
                                                    path.name).id
    if request.audio_path is not None:
        path = request.audio_path
        uploaded["audio_file_id"] = upload_with_bar(s, client, path, "lip_sync_audio",
                                                    path.name).id
    request = request.with_file_ids(**uploaded)
    task_id = client.lipsync.create(request)
    s.out.result({"task_id": task_id, "video_file_id": request.video_file_id,
                  "audio_file_id": request.audio_file_id}, task_id)


TaskIdArg = Annotated[str, typer.Argument(help="The task id.", show_default=False)]


@pass_session()
def status(s: Session, task_id: TaskIdArg) -> None:
    """Show a task's status, progress and result."""
    from ._present import task_dict, task_text

    task = s.client().lipsync.get(task_id)
    warn_notice(s, task)
    s.out.result(task_dict(task), task_text(task))


@pass_session()
def list_tasks(
    s: Session,
    page: Annotated[int, typer.Option("--page", min=1, help="Page number.")] = 1,
    page_size: Annotated[
        int, typer.Option("--page-size", min=1, max=100, help="Tasks per page.")
    ] = 10,
    all_: Annotated[bool, typer.Option("--all", help="Every task, all pages.")] = False,
) -> None:
    """List lip-sync tasks, newest first."""
    from ._present import TASK_COLUMNS, task_dict, task_row

    client = s.client()
    data: dict[str, Any]
    if all_:
        tasks = list(client.lipsync.iter_all())
        # Every task as one page: the same keys as a page of --page.
        data = {"tasks": [task_dict(t) for t in tasks], "page": 1, "page_size": len(tasks),
                "total_count": len(tasks), "total_page": 1}
        title = f"{len(tasks)} tasks"
    else:
        result = client.lipsync.list(page=page, page_size=page_size)
        tasks = list(result.items)
        info = result.page_info
        if not tasks and page > max(info.total_page, 1):
            raise CliError(f"--page {page}: no such page; there are {info.total_page} "
                           f"page(s) of {info.size} ({info.total_count} tasks)")
        data = {
            "tasks": [task_dict(t) for t in tasks],
            "page": info.page,
            "page_size": info.size,
            "total_count": info.total_count,
            "total_page": info.total_page,
        }
        title = f"page {info.page}/{max(info.total_page, 1)}, {info.total_count} tasks"
    s.out.result(data, lambda: s.out.table(TASK_COLUMNS, [task_row(t) for t in tasks], title))


def warn_notice(s: Session, task: Task) -> None:
    from ._present import task_notice

    notice = task_notice(task)
    if notice:
        s.out.warn(notice, always=True)


def wait_with_bar(s: Session, task_id: str, timeout: float,
                  listen: Listen | None = None) -> Task:
    """Wait for a task with a bar of its own progress; a failed task raises (exit 1).

    With ``listen``, the callback receiver runs there and polling slows to its safety net."""
    from .. import TaskFailedError
    from ._present import status_name

    # The client (and with --local the sandbox, with its note) before the bar starts.
    client = s.client() if listen is None else None
    if s.local:
        s.sandbox()
    with s.out.progress(f"task {task_id[:8]}: queued", total=100) as bar:

        def on_progress(task: Task) -> None:
            bar.update(task.progress, description=f"task {task_id[:8]}: "
                       f"{status_name(task.status)}")

        if client is not None:
            task = client.lipsync.wait(task_id, timeout=timeout, on_progress=on_progress)
        else:
            from ._callbacks import wait_with_receiver

            assert listen is not None
            task = wait_with_receiver(s, task_id, listen, timeout=timeout,
                                      on_progress=on_progress)
    if task.failed:
        raise TaskFailedError(task)
    return task


@pass_session()
def wait(
    s: Session,
    task_id: TaskIdArg,
    timeout: TimeoutOpt = 1800,
    callback_listen: CallbackListenOpt = None,
    safety_poll: SafetyPollOpt = None,
) -> None:
    """Wait until a task finishes (exit 1 if it failed, 4 on timeout).

    With --callback-listen, the task's callback (its --callback-url must reach this address)
    ends the wait at once, and polling slows to a safety net.
    """
    from ._present import task_dict, task_text

    listen = Listen.from_options(callback_listen, safety_poll)
    try:
        with terminate_as_interrupt():
            task = wait_with_bar(s, task_id, timeout, listen)
    except KeyboardInterrupt:
        flag = " --local" if s.local else ""
        raise CliError(
            f"interrupted; the task keeps running: chanjing-avatar wait{flag} {task_id}",
            ExitCode.INTERRUPTED,
        ) from None
    warn_notice(s, task)
    s.out.result(task_dict(task), task_text(task))


@pass_session()
def download(
    s: Session,
    task_id: TaskIdArg,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Where to save: a file, or a folder (ending in / or "
                     "existing) that gets TASK_ID.mp4 (default ./TASK_ID.mp4).",
                     show_default=False, metavar="PATH"),
    ] = None,
    preview: Annotated[
        bool, typer.Option("--preview", help="Also save the cover image beside the video.")
    ] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Download a finished task's video (resumes an interrupted download)."""
    from .. import InvalidRequestError

    path = _download_path(task_id, output)
    check_output(path, overwrite)
    client = s.client()
    try:
        with terminate_as_interrupt():
            result = download_with_bar(s, client, task_id, path, overwrite=overwrite,
                                       preview=preview)
    except KeyboardInterrupt:
        raise CliError(_download_interrupted(task_id, path, s.local, overwrite),
                       ExitCode.INTERRUPTED) from None
    except OSError as e:
        raise with_path(e, path) from None
    except InvalidRequestError as e:
        if e.field != "task":
            raise
        # An unfinished task: say what to do rather than only what is missing.
        flag = " --local" if s.local else ""
        raise CliError(
            f"{e.msg}: wait for it first with `chanjing-avatar wait{flag} {task_id}`, "
            "then download again",
        ) from None
    s.out.result(download_dict(result), str(result.path))


def _download_path(task_id: str, output: str | None) -> Path:
    """``-o`` as given: a folder (existing, or written with a trailing slash) gets TASK_ID.mp4."""
    import os

    if output is None:
        return Path(f"{task_id}.mp4")
    if output.endswith((os.sep, "/")) or Path(output).is_dir():
        return Path(output) / f"{task_id}.mp4"
    return Path(output)


def _download_interrupted(task_id: str, path: Path, local: bool, overwrite: bool) -> str:
    """What an interrupted download left, and the command that goes on from there."""
    import shlex

    from .. import download_part_path

    try:
        kept = download_part_path(path).stat().st_size
    except OSError:
        kept = 0
    flag = " --local" if local else ""
    again = (f"chanjing-avatar download{flag} {task_id} -o {shlex.quote(str(path))}"
             + (" --overwrite" if overwrite else ""))
    if kept:
        return (f"interrupted; the download stopped after {kept} bytes, which are kept: "
                f"{again} goes on from there")
    return f"interrupted before any byte was saved; download again with: {again}"


def download_with_bar(s: Session, client: Client, task: Any, path: Path, *, overwrite: bool,
                      preview: bool = False) -> Any:
    with s.out.progress("download", unit="bytes") as bar:
        return client.lipsync.download(
            task, path, overwrite=overwrite, preview=preview,
            on_progress=lambda done, total: bar.update(done, total or None),
        )


def download_dict(result: Any) -> dict[str, Any]:
    return {
        "path": str(result.path),
        "bytes": result.bytes,
        "resumed_from": result.resumed_from,
        "preview_path": str(result.preview_path) if result.preview_path else None,
    }
