"""The end of a run: a JSON report in OUTDIR and a summary table on the terminal."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .journal import Journal, RowState

__all__ = ["REPORT_NAME", "SUMMARY_COLUMNS", "build_report", "render_summary", "summary_rows",
           "write_report"]

REPORT_NAME = "batch-report.json"


def build_report(journal: Journal, *, stopped: str | None = None) -> dict[str, Any]:
    rows = []
    for r in journal.rows():
        recon = journal.events(r.id, "reconcile")
        last = recon[-1]["detail"] if recon else {}
        rows.append(
            {
                "id": r.id,
                "line": r.line,
                "state": r.state,
                "task_id": r.task_id,
                "output": r.output_path,
                "bytes": r.output_size,
                "sha256": r.output_sha256,
                "duration_ms": r.duration_ms,
                "failure": r.error if r.state in (RowState.FAILED, RowState.UNDECIDABLE) else None,
                "failure_kind": r.error_kind
                if r.state in (RowState.FAILED, RowState.UNDECIDABLE)
                else None,
                # An undecidable row's tasks to choose from (--resolve ROW=TASK_ID).
                "candidates": [*last.get("candidates", []), *last.get("nearby", [])]
                if r.state == RowState.UNDECIDABLE else [],
                "creates_intended": r.attempts,
                "reconciliations": [
                    {"decision": e["detail"].get("decision"), "task_id": e["detail"].get("task_id"),
                     "reason": e["detail"].get("reason")}
                    for e in recon
                ],
            }
        )
    counts = journal.counts()
    return {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "journal": str(journal.path),
        "total": len(rows),
        "counts": counts,
        "complete": counts.get(RowState.DONE, 0) + counts.get(RowState.FAILED, 0)
        + counts.get(RowState.UNDECIDABLE, 0) == len(rows),
        "stopped": stopped,
        "rows": rows,
    }


def write_report(outdir: Path, report: dict[str, Any]) -> Path:
    """Atomically (temp file + rename): a reader never sees half a report."""
    path = outdir / REPORT_NAME
    tmp = path.with_name(f".{path.name}.tmp")
    # Owner-only, like the journal: task ids and file names are the account's business.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    os.replace(tmp, path)
    return path


SUMMARY_COLUMNS = ("row", "state", "task", "output / reason")


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """One line per row, those that need attention first: id, state, task id, output or reason
    (an undecidable row's reason names its candidate tasks)."""
    order = {RowState.UNDECIDABLE: 0, RowState.FAILED: 1}
    out = []
    for r in sorted(report["rows"], key=lambda r: (order.get(r["state"], 2), r["line"])):
        what = r["output"] if r["state"] == RowState.DONE else (r["failure"] or "")
        if r.get("candidates"):
            what += f" (candidates: {', '.join(r['candidates'])})"
        out.append((r["id"], r["state"], r["task_id"] or "", what or ""))
    return out


def render_summary(report: dict[str, Any], *, max_rows: int = 50) -> Any:
    """A rich renderable: the rows that need attention first, then the counts."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title="batch summary", show_lines=False)
    for name in SUMMARY_COLUMNS:
        table.add_column(name, overflow="fold" if name.startswith("output") else "ellipsis")
    style: dict[str, str] = {RowState.DONE: "green", RowState.FAILED: "red",
                             RowState.UNDECIDABLE: "magenta"}
    rows = summary_rows(report)
    for row_id, state, task_id, what in rows[:max_rows]:
        table.add_row(row_id, Text(state, style=style.get(state, "yellow")), task_id[:12], what)
    if len(rows) > max_rows:
        table.caption = f"… {len(rows) - max_rows} more rows in {REPORT_NAME}"
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report["counts"].items()))
    return Group(table, Text(f"{report['total']} rows: {counts}"))
