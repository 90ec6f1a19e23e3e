"""``chanjing-avatar voices``."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import BaseUrlOpt, CredentialsDirOpt, JsonOpt, LocalOpt, VerboseOpt, session


def voices(
    lang: Annotated[str | None, typer.Option("--lang", help="Only this language (e.g. zh, en).")]
    = None,
    gender: Annotated[
        str | None, typer.Option("--gender", help="Only this gender (male, female).")
    ] = None,
    search: Annotated[
        str | None, typer.Option("--search", help="Only voices whose name contains TEXT.")
    ] = None,
    local: LocalOpt = False,
    base_url: BaseUrlOpt = None,
    credentials_dir: CredentialsDirOpt = None,
    json_: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """List the public voices (every page); their ids go to --voice."""
    from ._present import VOICE_COLUMNS, voice_dict, voice_row

    with session(json_=json_, verbose=verbose, local=local, base_url=base_url,
                 credentials_dir=credentials_dir) as s:
        found = s.client().voices.list(lang=lang, gender=gender, name=search)
        s.out.result(
            [voice_dict(v) for v in found],
            lambda: s.out.table(VOICE_COLUMNS, [voice_row(v) for v in found],
                                title=f"{len(found)} voices"),
        )
