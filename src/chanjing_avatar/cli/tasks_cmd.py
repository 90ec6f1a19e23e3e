"""``chanjing-avatar create | status | list | wait | download``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._callbacks import CallbackListenOpt, Listen, SafetyPollOpt
from ._common import (
    BaseUrlOpt,
    CredentialsDirOpt,
    JsonOpt,
    LocalOpt,
    Session,
    VerboseOpt,
    read_text_arg,
    require_file,
    session,
)
from ._errors import CliError, ExitCode, with_path
from ._signals import terminate_as_interrupt

if TYPE_CHECKING:
    from .. import Client, Task

# -- options shared by create and make ---------------------------------------------------
TextOpt = Annotated[
    str | None, typer.Option("--text", help="Text to speak (TTS); use with --voice.")
]
TextFileOpt = Annotated[
    Path | None,
    typer.Option("--text-file", help="Read the text from a UTF-8 file ('-' for stdin).",
                 show_default=False),
]
VoiceOpt = Annotated[
    str | None, typer.Option("--voice", help="Voice id (see `chanjing-avatar voices`).")
]
SpeedOpt = Annotated[
    float | None, typer.Option("--speed", help="Speech speed, 0.5-2 (default 1).",
                               show_default=False)
]
PitchOpt = Annotated[
    float | None, typer.Option("--pitch", help="Speech pitch, 0.5-2 (default 1).",
                               show_default=False)
]
WidthOpt = Annotated[
    int | None,
    typer.Option("--width", help="Output width (default: the video's own, else 1080).",
                 show_default=False),
]
HeightOpt = Annotated[
    int | None,
    typer.Option("--height", help="Output height (default: the video's own, else 1920).",
                 show_default=False),
]
BackwayOpt = Annotated[
    int, typer.Option("--backway", help="When speech outlasts the video: 1 loop, 2 back and forth.")
]
DriveModeOpt = Annotated[
    str, typer.Option("--drive-mode", help="'' start at frame 0, 'random' at a random frame.")
]
ModelOpt = Annotated[int, typer.Option("--model", help="0 basic, 1 high quality.")]
VolumeOpt = Annotated[int, typer.Option("--volume", help="Speech volume, 1-100.")]
CallbackOpt = Annotated[
    str | None,
    typer.Option("--callback", "--callback-url",
                 help="URL the API POSTs the finished task to (e.g. the public address of a "
                 "`--callback-listen` receiver).", show_default=False),
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", help="Give up waiting after this many seconds (exit 4).")
]
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Replace the output file if it exists.")
]

# Wire field -> the option that sets it, for one-line errors that say what to fix.
_FIELD_OPTIONS = {
    "tts_config.text": "--text",
    "tts_config.audio_man_id": "--voice",
    "tts_config.speed": "--speed",
    "tts_config.pitch": "--pitch",
    "screen_width": "--width",
    "screen_height": "--height",
    "backway": "--backway",
    "drive_mode": "--drive-mode",
    "model": "--model",
    "volume": "--volume",
    "callback": "--callback",
    "video_file_id": "--video-file-id",
    "audio_file_id": "--audio-file-id",
}



def _has_cjk(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)


class Speech:
    """What drives the mouth: text + voice, or an audio file / file id. Checked before requests."""

    def __init__(
        self,
        *,
        text: str | None,
        text_file: Path | None,
        voice: str | None,
        speed: float | None,
        pitch: float | None,
        audio: Path | None,
        audio_file_id: str | None,
        voice_optional: bool = False,
    ) -> None:
        self.text = read_text_arg(text, text_file)
        self.voice = voice
        self.speed = 1.0 if speed is None else speed
        self.pitch = 1.0 if pitch is None else pitch
        self.audio = audio
        self.audio_file_id = audio_file_id
        has_tts = self.text is not None
        has_audio = audio is not None or audio_file_id is not None
        if audio is not None and audio_file_id is not None:
            raise CliError("give --audio or --audio-file-id, not both")
        if has_tts and has_audio:
            raise CliError("give either --text (with --voice) or an audio, not both")
        if not has_tts and not has_audio:
            raise CliError(
                "nothing to say: give --text/--text-file with --voice, or --audio/--audio-file-id"
            )
        if has_audio and (voice is not None or speed is not None or pitch is not None):
            raise CliError("--voice, --speed and --pitch go with --text, not with an audio")
        if has_tts and not voice and not voice_optional:
            raise CliError("--voice is required with --text (see `chanjing-avatar voices`)")
        if audio is not None:
            from .._wire import AUDIO_EXTENSIONS

            require_file(audio, "audio", AUDIO_EXTENSIONS)

    @property
    def is_tts(self) -> bool:
        return self.text is not None

    def pick_voice(self, client: Client, out: Any) -> None:
        """Choose a voice for the text's language when none was given (--local only)."""
        if not self.is_tts or self.voice:
            return
        lang = "zh" if self.text and _has_cjk(self.text) else "en"
        found = client.voices.list()
        if not found:
            raise CliError("the server lists no voices: give --voice")
        same = [v for v in found if v.lang.lower().startswith(lang)]
        self.voice = (same or found)[0].id
        out.note(f"voice: {self.voice} ({(same or found)[0].name})")


def precheck(speech: Speech, options: dict[str, Any]) -> None:
    """Apply the wire's create rules before anything is uploaded or paid for."""
    from .._wire import CreateFieldError, validate_create

    body: dict[str, Any] = {"video_file_id": "pending", **options}
    if body.get("screen_width") is None:
        body.pop("screen_width")
    if body.get("screen_height") is None:
        body.pop("screen_height")
    if speech.is_tts:
        body["audio_type"] = "tts"
        body["tts_config"] = {
            "text": speech.text,
            "audio_man_id": speech.voice or "pending",
            "speed": speech.speed,
            "pitch": speech.pitch,
        }
    else:
        body["audio_type"] = "audio"
        body["audio_file_id"] = speech.audio_file_id or "pending"
    try:
        validate_create(body)
    except CreateFieldError as e:
        option = _FIELD_OPTIONS.get(e.field, e.field)
        raise CliError(f"{option}: {e.reason}") from None


def create_options(
    width: int | None, height: int | None, backway: int, drive_mode: str, model: int,
    volume: int, callback: str | None,
) -> dict[str, Any]:
    return {
        "screen_width": width,
        "screen_height": height,
        "backway": backway,
        "drive_mode": drive_mode,
        "model": model,
        "volume": volume,
        "callback": callback,
    }


def create(
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
    local: LocalOpt = False,
    base_url: BaseUrlOpt = None,
    credentials_dir: CredentialsDirOpt = None,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Create a lip-sync task (local files are uploaded first); print its id."""
    from .._wire import VIDEO_EXTENSIONS
    from .files_cmd import upload_with_bar

    if (video is None) == (video_file_id is None):
        raise CliError("give exactly one of --video FILE or --video-file-id ID")
    if video is not None:
        require_file(video, "video", VIDEO_EXTENSIONS)
    speech = Speech(text=text, text_file=text_file, voice=voice, speed=speed, pitch=pitch,
                    audio=audio, audio_file_id=audio_file_id, voice_optional=local)
    options = create_options(width, height, backway, drive_mode, model, volume, callback)
    precheck(speech, options)
    with session(json_=json_, verbose=verbose, local=local, base_url=base_url,
                 credentials_dir=credentials_dir) as s:
        client = s.client()
        speech.pick_voice(client, s.out)
        if video is not None:
            video_file_id = upload_with_bar(s, client, video, "lip_sync_video", video.name).id
        audio_id = speech.audio_file_id
        if speech.audio is not None:
            audio_id = upload_with_bar(s, client, speech.audio, "lip_sync_audio",
                                       speech.audio.name).id
        assert video_file_id is not None
        task_id = client.lipsync.create(
            video_file_id=video_file_id,
            text=speech.text,
            voice_id=speech.voice,
            speed=speech.speed,
            pitch=speech.pitch,
            audio_file_id=audio_id,
            video_path=video,
            **options,
        )
        s.out.result(
            {"task_id": task_id, "video_file_id": video_file_id, "audio_file_id": audio_id},
            task_id,
        )
        if local:
            s.out.note("the local sandbox stops with this command; "
                       "`chanjing-avatar wait --local ID` resumes the task")


TaskIdArg = Annotated[str, typer.Argument(help="The task id.", show_default=False)]


def status(
    task_id: TaskIdArg,
    local: LocalOpt = False,
    base_url: BaseUrlOpt = None,
    credentials_dir: CredentialsDirOpt = None,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show a task's status, progress and result."""
    from ._present import task_dict, task_text

    with session(json_=json_, verbose=verbose, local=local, base_url=base_url,
                 credentials_dir=credentials_dir) as s:
        task = s.client().lipsync.get(task_id)
        s.out.result(task_dict(task), task_text(task))


def list_tasks(
    page: Annotated[int, typer.Option("--page", min=1, help="Page number.")] = 1,
    page_size: Annotated[
        int, typer.Option("--page-size", min=1, max=100, help="Tasks per page.")
    ] = 10,
    all_: Annotated[bool, typer.Option("--all", help="Every task, all pages.")] = False,
    local: LocalOpt = False,
    base_url: BaseUrlOpt = None,
    credentials_dir: CredentialsDirOpt = None,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """List lip-sync tasks, newest first."""
    from ._present import TASK_COLUMNS, task_dict, task_row

    with session(json_=json_, verbose=verbose, local=local, base_url=base_url,
                 credentials_dir=credentials_dir) as s:
        client = s.client()
        data: dict[str, Any]
        if all_:
            tasks = list(client.lipsync.iter_all())
            data = {"tasks": [task_dict(t) for t in tasks], "total_count": len(tasks)}
            title = f"{len(tasks)} tasks"
        else:
            result = client.lipsync.list(page=page, page_size=page_size)
            tasks = list(result.items)
            info = result.page_info
            data = {
                "tasks": [task_dict(t) for t in tasks],
                "page": info.page,
                "page_size": info.size,
                "total_count": info.total_count,
                "total_page": info.total_page,
            }
            title = f"page {info.page}/{max(info.total_page, 1)}, {info.total_count} tasks"
        s.out.result(data, lambda: s.out.table(TASK_COLUMNS, [task_row(t) for t in tasks], title))


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


def resume_hint(task_id: str, local: bool, output: Path | None, overwrite: bool = False, *,
                running: bool = True) -> str:
    import shlex

    flag = " --local" if local else ""
    out = f" -o {shlex.quote(str(output))}" if output is not None else ""
    if overwrite:
        out += " --overwrite"
    lead = "the task keeps running; resume with" if running else "resume with"
    return (f"{lead}: chanjing-avatar wait{flag} {task_id} && "
            f"chanjing-avatar download{flag} {task_id}{out}")


def wait(
    task_id: TaskIdArg,
    timeout: TimeoutOpt = 1800,
    callback_listen: CallbackListenOpt = None,
    safety_poll: SafetyPollOpt = None,
    local: LocalOpt = False,
    base_url: BaseUrlOpt = None,
    credentials_dir: CredentialsDirOpt = None,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Wait until a task finishes (exit 1 if it failed, 4 on timeout).

    With --callback-listen, the task's callback (its --callback-url must reach this address)
    ends the wait at once, and polling slows to a safety net.
    """
    from ._present import task_dict, task_text

    listen = Listen.from_options(callback_listen, safety_poll)
    with session(json_=json_, verbose=verbose, local=local, base_url=base_url,
                 credentials_dir=credentials_dir) as s:
        try:
            with terminate_as_interrupt():
                task = wait_with_bar(s, task_id, timeout, listen)
        except KeyboardInterrupt:
            flag = " --local" if local else ""
            raise CliError(
                f"interrupted; the task keeps running: chanjing-avatar wait{flag} {task_id}",
                ExitCode.INTERRUPTED,
            ) from None
        s.out.result(task_dict(task), task_text(task))


def download(
    task_id: TaskIdArg,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to save (default ./TASK_ID.mp4).",
                     show_default=False),
    ] = None,
    preview: Annotated[
        bool, typer.Option("--preview", help="Also save the cover image beside the video.")
    ] = False,
    overwrite: OverwriteOpt = False,
    local: LocalOpt = False,
    base_url: BaseUrlOpt = None,
    credentials_dir: CredentialsDirOpt = None,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Download a finished task's video (resumes an interrupted download)."""
    path = output if output is not None else Path(f"{task_id}.mp4")
    check_output(path, overwrite)
    with session(json_=json_, verbose=verbose, local=local, base_url=base_url,
                 credentials_dir=credentials_dir) as s:
        from .. import InvalidRequestError

        client = s.client()
        try:
            with terminate_as_interrupt():
                result = download_with_bar(s, client, task_id, path, overwrite=overwrite,
                                           preview=preview)
        except KeyboardInterrupt:
            raise CliError(_download_interrupted(task_id, path, local, overwrite),
                           ExitCode.INTERRUPTED) from None
        except OSError as e:
            raise with_path(e, path) from None
        except InvalidRequestError as e:
            if e.field != "task":
                raise
            # An unfinished task: say what to do rather than only what is missing.
            flag = " --local" if local else ""
            raise CliError(
                f"{e.msg}: wait for it first with `chanjing-avatar wait{flag} {task_id}`, "
                "then download again",
            ) from None
        s.out.result(download_dict(result), str(result.path))


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


def check_output(path: Path, overwrite: bool) -> None:
    """The output can be written: checked before anything is uploaded or paid for."""
    if path.is_dir():
        raise CliError(f"output is a directory, give a file name: {path}")
    if path.exists() and not overwrite:
        raise CliError(f"{path} exists; use --overwrite to replace it")
    parent = path.parent if str(path.parent) else Path(".")
    check_writable_folder(parent, "--output")


def check_writable_folder(folder: Path, option: str) -> None:
    """``folder`` (or the nearest folder above it that exists, where it would be made) takes a
    new file; exit 2 naming the folder otherwise. A probe file is made and removed: permission
    bits say nothing about a read-only mount, and root passes them all."""
    import os
    import tempfile

    existing = folder
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():
            break
        existing = existing.parent
    if not existing.is_dir():
        raise CliError(f"{option}: {existing} is not a folder; choose another output path")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".chanjing-write-check-")
    except OSError as e:
        raise CliError(f"{option}: cannot write in {existing} ({e.strerror or e}); "
                       "choose another output path") from None
    os.close(fd)
    os.unlink(probe)


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
