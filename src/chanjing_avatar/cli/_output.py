"""Where output goes.

- Results on stdout: human text, or one JSON document with ``--json``.
- Progress bars, stage notes, logs and warnings on stderr, and only when stderr is a terminal
  (pipes and CI logs get no bar junk).
- Errors on stderr as one line, always (see ``_errors``).

Everything printed passes :func:`scrub`, which masks the secrets this process knows of.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

_secrets: set[str] = set()
_secret_sources: list[Callable[[], Iterable[str]]] = []
# Query strings of URLs can carry signatures; show the URL without them.
_URL_RE = re.compile(r"https?://[^\s\"'<>]+")


def register_secret(value: str | None) -> None:
    """Mask ``value`` in everything this process prints from now on."""
    if value and len(value) >= 6:
        _secrets.add(value)


def register_secret_source(source: Callable[[], Iterable[str]]) -> None:
    """Secrets that appear later (a refreshed token): asked for each time output is scrubbed."""
    _secret_sources.append(source)


def redact_url(url: str) -> str:
    from .. import redact_url as _redact

    return _redact(url)


def mask(secret: str | None) -> str:
    """A hint of a secret good for telling two apart, never enough to use it."""
    if not secret:
        return "<none>"
    return f"{secret[:3]}…({len(secret)} chars)"


def scrub(text: str) -> str:
    for source in _secret_sources:
        for value in source():
            register_secret(value)
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    if "?" in text:
        text = _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
    return text


def _scrub_data(data: Any) -> Any:
    if isinstance(data, str):
        return scrub(data)
    if isinstance(data, dict):
        return {k: _scrub_data(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_scrub_data(v) for v in data]
    return data


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Output:
    def __init__(self, *, json_mode: bool = False, verbose: bool = False) -> None:
        self.json_mode = json_mode
        self.verbose = verbose
        self.stdout_tty = _isatty(sys.stdout)
        self.stderr_tty = _isatty(sys.stderr)
        self._err_console: Console | None = None

    # -- stdout --------------------------------------------------------------------------------
    def result(self, data: Any, human: str | Callable[[], None] | None = None) -> None:
        """The command's result: ``data`` as JSON with --json, else ``human`` (text or printer)."""
        if self.json_mode:
            sys.stdout.write(json.dumps(_scrub_data(data), ensure_ascii=False, indent=2) + "\n")
        elif callable(human):
            human()
        else:
            text = human if human is not None else str(data)
            sys.stdout.write(scrub(text) + "\n")
        sys.stdout.flush()

    def line(self, text: str) -> None:
        """One line of human output on stdout."""
        sys.stdout.write(scrub(text) + "\n")

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[str]], title: str = "") -> None:
        """A table on a terminal; tab-separated lines in a pipe."""
        if not self.stdout_tty:
            for row in rows:
                sys.stdout.write("\t".join(scrub(c) for c in row) + "\n")
            return
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title or None, show_lines=False)
        for i, col in enumerate(columns):
            # Ids are for copying: never shorten the first column.
            width = max((len(r[0]) for r in rows), default=0) if i == 0 else None
            t.add_column(col, no_wrap=i == 0, min_width=width)
        for row in rows:
            t.add_row(*(scrub(c) for c in row), )
        Console(highlight=False).print(t)

    # -- stderr --------------------------------------------------------------------------------
    @property
    def err_console(self) -> Console:
        if self._err_console is None:
            from rich.console import Console

            self._err_console = Console(stderr=True, highlight=False)
        return self._err_console

    def note(self, text: str) -> None:
        """A progress note or log line: stderr, terminal only."""
        if self.stderr_tty:
            self.err_console.print(scrub(text), markup=False)

    def debug(self, text: str) -> None:
        if self.verbose:
            self.note(text)

    def warn(self, text: str) -> None:
        if self.stderr_tty:
            self.err_console.print("warning: " + scrub(text), style="yellow", markup=False)

    def error(self, text: str) -> None:
        """The one error line (always printed, terminal or not)."""
        sys.stdout.flush()
        line = "error: " + " ".join(scrub(text).split())
        if self.stderr_tty:
            self.err_console.print(line, style="bold red", markup=False, soft_wrap=True)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def error_detail(self, text: str) -> None:
        """A --verbose detail line under the error."""
        sys.stderr.write("  detail: " + " ".join(scrub(text).split()) + "\n")
        sys.stderr.flush()

    @contextmanager
    def progress(self, description: str, *, total: float | None = None,
                 unit: str = "percent") -> Iterator[Bar]:
        """A bar on stderr when it is a terminal; a silent stand-in otherwise."""
        if not self.stderr_tty:
            yield Bar(None, None)
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
        if unit == "bytes":
            columns += [DownloadColumn(), TransferSpeedColumn()]
        else:
            columns += [TaskProgressColumn()]
        columns.append(TimeElapsedColumn())
        with Progress(*columns, console=self.err_console, transient=False) as progress:
            task = progress.add_task(description, total=total)
            yield Bar(progress, task)


class Bar:
    """Updates one progress task; does nothing without a terminal."""

    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def update(self, completed: float, total: float | None = None,
               description: str | None = None) -> None:
        if self._progress is None:
            return
        kwargs: dict[str, Any] = {"completed": completed}
        if total is not None:
            kwargs["total"] = total
        if description is not None:
            kwargs["description"] = description
        self._progress.update(self._task, **kwargs)
