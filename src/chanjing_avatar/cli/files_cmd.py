"""``chanjing-avatar upload``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import (
    BaseUrlOpt,
    CredentialsDirOpt,
    JsonOpt,
    LocalOpt,
    Session,
    VerboseOpt,
    require_file,
    session,
)
from ._errors import CliError, ExitCode
from ._signals import terminate_as_interrupt

if TYPE_CHECKING:
    from .. import Client, FileDetail


def upload_with_bar(s: Session, client: Client, path: Path, service: str, label: str) -> FileDetail:
    """Upload ``path`` with a byte progress bar on a terminal; returns the ready file."""
    with s.out.progress(f"upload {label}", total=path.stat().st_size, unit="bytes") as bar:

        def on_progress(done: int, total: int) -> None:
            # Once sent, the server still checks the file: say so rather than sit at 100 %.
            bar.update(done, total, f"upload {label}" + (" (checking)" if done >= total else ""))

        detail = client.files.upload(path, service, on_progress=on_progress)
    return detail


def upload(
    file: Annotated[Path, typer.Argument(help="The local file to upload.", show_default=False)],
    service: Annotated[
        str,
        typer.Option(
            "--service",
            help="lip_sync_video (mp4, mov, webm) or lip_sync_audio (mp3, m4a, wav).",
        ),
    ],
    local: LocalOpt = False,
    base_url: BaseUrlOpt = None,
    credentials_dir: CredentialsDirOpt = None,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Upload a file, wait until it is ready, print its file id."""
    from .._wire import SERVICE_EXTENSIONS
    from ._present import file_dict

    if service not in SERVICE_EXTENSIONS:
        raise CliError(
            f"unknown service {service!r}; use lip_sync_video or lip_sync_audio"
        )
    require_file(file, "file", SERVICE_EXTENSIONS[service])
    with session(json_=json_, verbose=verbose, local=local, base_url=base_url,
                 credentials_dir=credentials_dir) as s:
        client = s.client()
        try:
            with terminate_as_interrupt():
                detail = upload_with_bar(s, client, file, service, file.name)
        except KeyboardInterrupt:
            raise CliError(f"interrupted; the upload of {file} did not finish and gave no file "
                           "id: run the same command again to upload it", ExitCode.INTERRUPTED
                           ) from None
        s.out.result(file_dict(detail), detail.id)
