"""``chanjing-avatar batch MANIFEST -o OUTDIR``: many videos, crash-safe, never paying twice."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._common import Session, pass_session
from ._errors import CliError, ExitCode

if TYPE_CHECKING:
    from ..batch.manifest import Manifest
    from ..batch.runner import BatchProgress, BatchRunner
    from ._callbacks import Listen

# asyncio, signal, shlex and the batch/callback packages load inside the command: ``--help``
# must not pay for them.


@pass_session()
def batch(
    s: Session,
    manifest: Annotated[
        Path,
        typer.Argument(help="CSV or JSONL, one video per row: id, video, text + voice or audio, "
                       "options (see docs/batch.md).", show_default=False),
    ],
    outdir: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for the videos, journal and report.",
                           file_okay=False, show_default=False)
    ],
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Try the failed rows again (new tasks).")
    ] = False,
    resolve: Annotated[
        list[str] | None,
        typer.Option("--resolve", metavar="ROW=TASK_ID|new",
                     help="Settle a row: adopt TASK_ID, or 'new' to create again; '*=new' lets a "
                     "new journal create although the account has recent tasks it does not know."),
    ] = None,
    callback_url: Annotated[
        str | None,
        typer.Option("--callback-url", help="Public URL the API should POST to when a task ends "
                     "(forwarded to --callback-listen).", show_default=False),
    ] = None,
    callback_listen: Annotated[
        str | None,
        typer.Option("--callback-listen", metavar="[HOST:]PORT",
                     help="Run the callback receiver here (host 127.0.0.1 unless given); "
                     "polling then slows to a safety net.", show_default=False),
    ] = None,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", help="Seconds between polls of one task.")
    ] = 3.0,
    settle: Annotated[
        float, typer.Option("--settle", help="Seconds the server may still act on a create "
                            "whose answer was lost (reconciliation waits this long).")
    ] = 60.0,
    live: Annotated[
        bool, typer.Option("--live/--no-live", help="Live display on a terminal.")
    ] = True,
) -> None:
    """Make one video per manifest row; re-run the same command to resume."""
    import asyncio

    from ..batch.manifest import ManifestError, load_manifest
    from ._callbacks import Listen

    listen = Listen.from_options(callback_listen, None, callback_url)

    try:
        parsed = load_manifest(manifest)
    except ManifestError as e:
        for problem in e.problems:
            typer.echo(f"{manifest}: {problem}", err=True)
        raise CliError(
            f"{manifest}: {len(e.problems)} problem(s) (listed above); nothing was uploaded or "
            "created",
            ExitCode.USAGE,
        ) from None
    picks = _resolutions(resolve or [], parsed)
    if callback_url and not callback_listen:
        typer.echo("note: --callback-url without --callback-listen: polling as usual", err=True)
    code = asyncio.run(
        _run(s, parsed, outdir, retry_failed=retry_failed, picks=picks,
             callback_url=callback_url, listen=listen,
             poll_interval=poll_interval, settle=settle, live=live,
             argv=sys.argv)
    )
    if code:
        raise typer.Exit(code)


def _resolutions(resolve: list[str], manifest: Manifest) -> dict[str, str | None]:
    """The --resolve choices, checked before anything is written: row id -> the task id to
    adopt, or None to create anew ('*' for every row, with None only)."""
    rows = {row.id for row in manifest.rows}
    picks: dict[str, str | None] = {}
    for item in resolve:
        row, sep, choice = item.partition("=")
        if not sep or not row or not choice:
            raise CliError(f"--resolve {item}: expected ROW=TASK_ID or ROW=new (or '*=new')")
        if row == "*" and choice != "new":
            raise CliError(f"--resolve {item}: only '*=new' applies to every row")
        if row != "*" and row not in rows:
            raise CliError(f"--resolve {item}: the manifest has no row {row}")
        if row in picks:
            raise CliError(f"--resolve {item}: row {row} is given twice")
        task = None if choice == "new" else choice
        if task is not None and task in picks.values():
            raise CliError(f"--resolve {item}: task {task} is given to two rows")
        picks[row] = task
    return picks


def _apply_resolutions(journal_path: Path, manifest: Manifest,
                       picks: dict[str, str | None]) -> None:
    from ..batch.journal import Journal, SpecChangedError

    rows = {row: task for row, task in picks.items() if row != "*"}
    if not rows:
        return
    if not journal_path.exists():
        # No journal yet: every row is pending with no task, so a row may only adopt one.
        for row, task in rows.items():
            if task is None:
                raise CliError(f"--resolve {row}=new: row {row} has no create to settle "
                               "(this batch has no journal yet)")
    try:
        journal_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CliError(f"--output: cannot make {journal_path.parent} ({e.strerror or e})"
                       ) from None
    with Journal(journal_path) as j:
        try:
            j.sync_manifest(manifest)
        except SpecChangedError as e:
            raise CliError(str(e)) from None
        for row, task in rows.items():
            try:
                j.resolve(row, task)
            except ValueError as e:
                raise CliError(f"--resolve {row}={task or 'new'}: {e}") from None


async def _run(
    s: Session,
    manifest: Manifest,
    outdir: Path,
    *,
    retry_failed: bool,
    picks: dict[str, str | None],
    callback_url: str | None,
    listen: Listen | None,
    poll_interval: float,
    settle: float,
    live: bool,
    argv: list[str],
) -> int:
    import asyncio
    import shlex
    import signal

    from ..batch.journal import JournalLostError, JournalStateError, SpecChangedError
    from ..batch.report import (
        SUMMARY_COLUMNS,
        build_report,
        render_summary,
        summary_rows,
        write_report,
    )
    from ..batch.runner import BatchOptions, BatchRunner, UnknownTasksError

    opts = BatchOptions(outdir=outdir, retry_failed=retry_failed, callback_url=callback_url,
                        poll_interval=poll_interval, settle=settle)
    if listen is not None:
        opts.safety_poll = listen.safety_poll
    opts.fresh_start = "*" in picks
    _apply_resolutions(opts.journal_file, manifest, picks)
    server = None
    client = s.async_client()
    runner = BatchRunner(client, manifest, opts)
    if listen is not None:
        from ..callback import CallbackReceiver, ReceiverServer, is_loopback
        from ._callbacks import start_server

        if not is_loopback(listen.host):
            s.out.warn(f"the callback receiver listens on {listen.host}, not only on this "
                       "machine")
        receiver = CallbackReceiver(runner.on_callback)
        opts.receiver = receiver
        server = ReceiverServer(receiver, host=listen.host, port=listen.port)
        try:
            await start_server(server)
        except BaseException:
            await client.aclose()
            raise
        s.out.note(f"callback receiver on {server.url}")
        # The same URL as make's: --callback-url, else the listen address.
        opts.callback_url = listen.callback_url(s.out, server.url, callback_url,
                                                client.base_url)

    display = _Display(s, runner) if live and s.out.stderr_tty and not s.out.json_mode else None
    loop = asyncio.get_running_loop()
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        if interrupted:
            return
        interrupted = True
        s.out.warn("stopping: no new creates; the create in flight (if any) is finished and "
                   "journalled. Ctrl-C again to quit at once (still safe to resume).")
        runner.cancel()
        # A second Ctrl-C falls through to the default handler.
        loop.remove_signal_handler(signal.SIGINT)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def on_sigterm() -> None:
        # What CI runners and agent harnesses send: the same as Ctrl-C; a second one ends
        # the process at once.
        on_sigint()
        loop.remove_signal_handler(signal.SIGTERM)

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    resume = "chanjing-avatar " + " ".join(shlex.quote(a) for a in _resume_args(argv[1:]))
    if display:
        display.start()
    try:
        journal = await runner.run()
    except SpecChangedError as e:
        raise CliError(str(e)) from None
    except JournalLostError as e:
        raise CliError(_journal_lost(e, runner, outdir, resume), ExitCode.FAILED) from None
    except UnknownTasksError as e:
        raise CliError(str(e), ExitCode.UNKNOWN) from None
    except JournalStateError:
        raise  # a bug, not the user's: reported as one
    except RuntimeError as e:
        raise CliError(str(e)) from None
    finally:
        if display:
            display.stop()
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(signal.SIGINT)
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(signal.SIGTERM)
        if server is not None:
            await server.stop()
        await client.aclose()

    report = build_report(journal, stopped=runner.progress.stopped)
    journal.close()
    try:
        path = write_report(outdir, report)
    except OSError as e:
        from ..batch.runner import os_reason

        raise CliError(f"the report could not be written: {os_reason(e, outdir)}; "
                       f"the journal is intact: {resume}", ExitCode.FAILED) from None
    if s.out.json_mode:
        s.out.result(report)
    elif s.out.stdout_tty:
        from rich.console import Console

        Console(highlight=False).print(render_summary(report))
        s.out.line(f"report: {path}")
    else:
        s.out.table(SUMMARY_COLUMNS, summary_rows(report))
        s.out.note(f"report: {path}")
    counts = report["counts"]
    unfinished = report["total"] - counts.get("done", 0) - counts.get("failed", 0) - counts.get(
        "undecidable", 0)
    if interrupted or unfinished:
        why = runner.progress.stopped or "tasks still running"
        s.out.error(f"{unfinished} row(s) not finished ({why}); resume with: {resume}")
        return int(ExitCode.INTERRUPTED if interrupted else ExitCode.FAILED)
    if counts.get("undecidable"):
        stuck = [r for r in report["rows"] if r["state"] == "undecidable"]
        which = "; ".join(f"{r['id']} (candidates: {', '.join(r['candidates']) or 'none'})"
                          for r in stuck[:5]) + ("; …" if len(stuck) > 5 else "")
        row = stuck[0]["id"]
        s.out.error(f"{len(stuck)} row(s) undecidable: {which}. Settle each, then resume: "
                    f"{resume} --resolve {row}=TASK_ID (adopt) or --resolve {row}=new")
        return int(ExitCode.UNKNOWN)
    if counts.get("failed"):
        s.out.error(f"{counts['failed']} row(s) failed; retry them with: {resume} --retry-failed")
        return int(ExitCode.FAILED)
    return 0


def _resume_args(args: list[str]) -> list[str]:
    """The command line to resume with: without the one-time --retry-failed and --resolve."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "--resolve":
            skip = True
        elif a != "--retry-failed" and not a.startswith("--resolve="):
            out.append(a)
    return out


def _journal_lost(e: Exception, runner: BatchRunner, outdir: Path, resume: str) -> str:
    """The one line for a journal that went away mid-run; the report keeps the task ids."""
    from ..batch.report import build_report, write_report

    where = ""
    if runner.journal is not None:
        with contextlib.suppress(Exception):
            outdir.mkdir(parents=True, exist_ok=True)
            where = f"; report: {write_report(outdir, build_report(runner.journal))}"
    if runner.rescued is not None:
        return (f"{e}: stopped, nothing more was created. Its state was written back to "
                f"{runner.rescued}{where}; resume with: {resume}")
    return f"{e}: stopped, nothing more was created{where}"


class _Display:
    """Rows done / running / failed, rate and ETA, redrawn on stderr."""

    def __init__(self, s: Session, runner: BatchRunner) -> None:
        from rich.live import Live

        self._runner = runner
        self._live = Live(self._render(), console=s.out.err_console, refresh_per_second=4,
                          transient=False, get_renderable=self._render)

    def _render(self) -> Any:
        import time

        from rich.text import Text

        p: BatchProgress = self._runner.progress
        eta = p.eta_s()
        eta_text = "—" if eta is None else time.strftime("%H:%M:%S", time.gmtime(eta))
        text = Text()
        text.append(f"{p.done}/{p.total} done", style="green")
        text.append(f"  {p.running} running  {p.pending} pending  ")
        text.append(f"{p.failed} failed", style="red" if p.failed else "")
        text.append(f"  {p.rate_per_min():.1f}/min  ETA {eta_text}")
        if p.stopped:
            text.append(f"  stopped: {p.stopped}", style="yellow")
        if p.last_event:
            text.append(f"\n{p.last_event}", style="dim")
        return text

    def start(self) -> None:
        self._live.start()

    def stop(self) -> None:
        self._live.stop()
