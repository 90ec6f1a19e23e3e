"""The seed skill's four scripts (skills/chanjing-avatar/scripts/): their flags and outputs.

Interface kept exactly as the seed shows it: one line on stdout (the file id, the task id, the
video URL; ``get_upload_url`` prints ``sign_url``, ``mime_type`` and ``file_id`` as JSON), errors
on stderr with a non-zero exit (the CLI's codes), the same credentials file and environment
(``CHANJING_OPENAPI_BASE_URL``, ``CHANJING_OPENAPI_CREDENTIALS_DIR``). The work is the library's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from .. import Client


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, exit 2 (bad usage), like the CLI.
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


def _client() -> Client:
    from .. import Client

    return Client()


def _run(prog: str, body: Callable[[], str]) -> int:
    """Print ``body()``'s line, or one error line with the CLI's exit code."""
    from ._common import route_library_logs
    from ._errors import describe
    from ._output import Output, scrub

    route_library_logs(Output())  # like the CLI: library logs on a terminal's stderr only
    try:
        line = body()
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return 130
    except Exception as exc:
        failure = describe(exc)
        sys.stderr.write(f"{prog}: error: {' '.join(scrub(failure.message).split())}\n")
        return int(failure.code)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return 0


def get_upload_url(argv: Sequence[str] | None = None) -> int:
    p = _Parser(prog="get_upload_url",
                description="Get an upload URL; print sign_url, mime_type and file_id as JSON.")
    p.add_argument("--service", required=True,
                   help="lip_sync_video (mp4, mov, webm) or lip_sync_audio (mp3, m4a, wav)")
    p.add_argument("--name", help="original file name with its extension, e.g. 1.mp4")
    p.add_argument("--file", help="a local file: its name is used as --name")
    args = p.parse_args(argv)
    name = args.name
    if not name and args.file:
        from pathlib import Path

        name = Path(args.file).name
    if not name:
        p.error("give --name (the file name with its extension) or --file")

    def body() -> str:
        with _client() as c:
            u = c.files.create_upload_url(args.service, name)
        # The seed's contract: the signed URL is this script's output.
        return json.dumps(
            {"sign_url": u.sign_url, "mime_type": u.mime_type, "file_id": u.file_id},
            ensure_ascii=False,
        )

    return _run(p.prog, body)


def upload_file(argv: Sequence[str] | None = None) -> int:
    p = _Parser(prog="upload_file",
                description="Upload a local file, wait until it is ready, print its file_id.")
    p.add_argument("--service", required=True,
                   help="lip_sync_video (mp4, mov, webm) or lip_sync_audio (mp3, m4a, wav)")
    p.add_argument("--file", required=True, help="the local file")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds to wait for the file to become ready (default 600)")
    args = p.parse_args(argv)

    def body() -> str:
        with _client() as c:
            return c.files.upload(args.file, args.service, timeout=args.timeout).id

    return _run(p.prog, body)


def create_task(argv: Sequence[str] | None = None) -> int:
    p = _Parser(prog="create_task",
                description="Create a lip-sync task (TTS or audio driven); print its id.")
    p.add_argument("--video-file-id", required=True, help="file_id of the uploaded video")
    p.add_argument("--text", help="text to speak (TTS)")
    p.add_argument("--audio-man-id", help="voice id for the text (list_common_audio)")
    p.add_argument("--speed", type=float, default=1.0, help="0.5-2, default 1")
    p.add_argument("--pitch", type=float, default=1.0, help="default 1")
    p.add_argument("--audio-file-id", help="file_id of the uploaded audio (audio driven)")
    p.add_argument("--screen-width", type=int, help="default 1080")
    p.add_argument("--screen-height", type=int, help="default 1920")
    p.add_argument("--backway", type=int, default=1, help="1 loop, 2 back and forth")
    p.add_argument("--drive-mode", default="", help='"" normal or "random"')
    p.add_argument("--model", type=int, default=0, help="0 basic, 1 high quality")
    p.add_argument("--volume", type=int, default=100, help="1-100, default 100")
    p.add_argument("--callback", help="URL notified when the task ends")
    args = p.parse_args(argv)
    if args.audio_file_id and args.text:
        p.error("give --text with --audio-man-id, or --audio-file-id, not both")
    if not args.audio_file_id and args.text is None:
        p.error("give --text with --audio-man-id, or --audio-file-id")
    if args.text is not None and not args.audio_man_id:
        p.error("--audio-man-id is required with --text")

    def body() -> str:
        with _client() as c:
            return c.lipsync.create(
                video_file_id=args.video_file_id,
                text=args.text,
                voice_id=args.audio_man_id,
                speed=args.speed,
                pitch=args.pitch,
                audio_file_id=args.audio_file_id,
                screen_width=args.screen_width,
                screen_height=args.screen_height,
                backway=args.backway,
                drive_mode=args.drive_mode,
                model=args.model,
                volume=args.volume,
                callback=args.callback,
            )

    return _run(p.prog, body)


def poll_task(argv: Sequence[str] | None = None) -> int:
    p = _Parser(prog="poll_task", description="Wait for a task to finish; print its video_url.")
    p.add_argument("--id", required=True, help="the task id from create_task")
    p.add_argument("--timeout", type=float, default=1800.0,
                   help="seconds to wait before giving up (default 1800; exit 4)")
    args = p.parse_args(argv)

    def body() -> str:
        from .. import TaskFailedError

        with _client() as c:
            task = c.lipsync.wait(args.id, timeout=args.timeout)
        if task.failed:
            raise TaskFailedError(task)
        # The seed's contract: the video URL is this script's output.
        return task.video_url or ""

    return _run(p.prog, body)


SCRIPTS: dict[str, Callable[[Sequence[str] | None], int]] = {
    "get_upload_url": get_upload_url,
    "upload_file": upload_file,
    "create_task": create_task,
    "poll_task": poll_task,
}
