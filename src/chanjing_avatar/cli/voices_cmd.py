"""``chanjing-avatar voices``."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import Session, pass_session
from ._errors import CliError


@pass_session()
def voices(
    s: Session,
    lang: Annotated[str | None, typer.Option("--lang", help="Only this language (e.g. zh, en).")]
    = None,
    gender: Annotated[
        str | None, typer.Option("--gender", help="Only this gender (male, female).")
    ] = None,
    search: Annotated[
        str | None, typer.Option("--search", help="Only voices whose name contains TEXT.")
    ] = None,
) -> None:
    """List the public voices (every page); their ids go to --voice."""
    from ._present import VOICE_COLUMNS, voice_dict, voice_row

    everything = s.client().voices.list()
    # A filter no voice could ever match is a typo, not an empty answer.
    for option, value, known in (
        ("--lang", lang, {v.lang.lower().split("-")[0] for v in everything}),
        ("--gender", gender, {v.gender.lower() for v in everything}),
    ):
        if value is not None and known and not any(k.startswith(value.lower().split("-")[0])
                                                   for k in known):
            raise CliError(f"{option} {value}: no voice has it; known: "
                           f"{', '.join(sorted(k for k in known if k))}")
    found = (s.client().voices.list(lang=lang, gender=gender, name=search)
             if lang or gender or search else everything)
    s.out.result(
        [voice_dict(v) for v in found],
        lambda: s.out.table(VOICE_COLUMNS, [voice_row(v) for v in found],
                            title=f"{len(found)} voices"),
    )
