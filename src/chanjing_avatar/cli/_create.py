"""What ``create`` and ``make`` share: the options that describe a :class:`LipSyncRequest`, the
request built from them, the voice checked before anything is uploaded, the output checked
before anything is paid for, and the command that resumes a created task."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import read_text_arg, require_file
from ._errors import CliError

if TYPE_CHECKING:
    from .. import Client, LipSyncRequest
    from ._output import Output

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
    float, typer.Option("--timeout", min=0,
                        help="Give up waiting after this many seconds (exit 4).")
]
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Replace the output file if it exists.")
]

# A request's field -> the option that sets it, for one-line errors that say what to fix.
_FIELD_OPTIONS = {
    "text": "--text",
    "tts_config.text": "--text",
    "voice_id": "--voice",
    "tts_config.speed": "--speed",
    "tts_config.pitch": "--pitch",
    "screen_width": "--width",
    "screen_height": "--height",
    "backway": "--backway",
    "drive_mode": "--drive-mode",
    "model": "--model",
    "volume": "--volume",
    "callback": "--callback",
    "video": "--video",
    "video_file_id": "--video-file-id",
    "audio": "--audio",
    "audio_file_id": "--audio-file-id",
}


@dataclasses.dataclass(frozen=True)
class CreateOptions:
    """The request's options as given on the command line (files resolved by the command)."""

    text: str | None
    text_file: Path | None
    voice: str | None
    speed: float | None
    pitch: float | None
    width: int | None
    height: int | None
    backway: int
    drive_mode: str
    model: int
    volume: int
    callback: str | None

    def request(self, video: Path | str, audio: Path | str | None, *,
                voice_optional: bool) -> LipSyncRequest:
        """The :class:`LipSyncRequest` these options describe, checked by the wire's rules before
        any request (the voice may stay unchosen when ``voice_optional``)."""
        from .. import InvalidRequestError, LipSyncRequest
        from .._wire import AUDIO_EXTENSIONS, CreateFieldError

        text = read_text_arg(self.text, self.text_file)
        if text is not None and audio is not None:
            raise CliError("give either --text (with --voice) or an audio, not both")
        if text is None and audio is None:
            raise CliError(
                "nothing to say: give --text/--text-file with --voice, or --audio/--audio-file-id"
            )
        if audio is not None and (self.voice is not None or self.speed is not None
                                  or self.pitch is not None):
            raise CliError("--voice, --speed and --pitch go with --text, not with an audio")
        if text is not None and not self.voice and not voice_optional:
            raise CliError("--voice is required with --text (see `chanjing-avatar voices`)")
        if isinstance(audio, Path):
            require_file(audio, "audio", AUDIO_EXTENSIONS)
        try:
            return LipSyncRequest(
                video=video, text=text, voice_id=self.voice or None, audio=audio,
                speed=1.0 if self.speed is None else self.speed,
                pitch=1.0 if self.pitch is None else self.pitch,
                screen_width=self.width, screen_height=self.height, backway=self.backway,
                drive_mode=self.drive_mode, model=self.model, volume=self.volume,
                callback=self.callback,
            )
        except InvalidRequestError as e:
            # A wire rule broken (its reason), or the request's own check (its whole message).
            rule = e.__cause__ if isinstance(e.__cause__, CreateFieldError) else None
            option = _FIELD_OPTIONS.get(e.field or "", e.field)
            reason = rule.reason if rule is not None else e.msg
            raise CliError(f"{option}: {reason}" if rule is not None and option else reason
                           ) from None


def _has_cjk(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)


def choose_voice(request: LipSyncRequest, client: Client, out: Output,
                 local: bool) -> LipSyncRequest:
    """The request with a voice that exists, found before anything is uploaded: an unknown one
    is refused; none given (``--local``) picks one for the text's language."""
    if request.text is None:
        return request
    found = client.voices.list()
    flag = " --local" if local else ""
    if request.voice_id is not None:
        if any(v.id == request.voice_id for v in found):
            return request
        raise CliError(f"--voice {request.voice_id}: no such voice; "
                       f"`chanjing-avatar voices{flag}` lists them")
    if not found:
        raise CliError("the server lists no voices: give --voice")
    text = "".join(request.text)
    lang = "zh" if _has_cjk(text) else "en"
    speaking = [v for v in found if v.lang.lower().startswith(lang)] or found
    # The sandbox names each voice's engine: a neural one sounds best (the real API's list
    # says nothing of the kind, and its first voice of the language serves).
    voice = next((v for v in speaking if "(neural)" in v.desc), speaking[0])
    out.note(f"voice: {voice.id} ({voice.name})")
    return dataclasses.replace(request, voice_id=voice.id)


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
