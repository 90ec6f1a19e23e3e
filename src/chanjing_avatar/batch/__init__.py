"""Crash-safe batch runs on the async client: manifest, journal, reconciliation, runner."""

from .journal import (
    TRANSITIONS,
    Journal,
    JournalLostError,
    JournalRow,
    JournalStateError,
    RowState,
    SpecChangedError,
)
from .manifest import Manifest, ManifestError, ManifestProblem, Row, load_manifest
from .reconcile import Decision, Listed, decide
from .report import build_report, write_report
from .runner import BatchOptions, BatchProgress, BatchRunner, UnknownTasksError, run_batch

__all__ = [
    "TRANSITIONS",
    "BatchOptions",
    "BatchProgress",
    "BatchRunner",
    "Decision",
    "Journal",
    "JournalLostError",
    "JournalRow",
    "JournalStateError",
    "Listed",
    "Manifest",
    "ManifestError",
    "ManifestProblem",
    "Row",
    "RowState",
    "SpecChangedError",
    "UnknownTasksError",
    "build_report",
    "decide",
    "load_manifest",
    "run_batch",
    "write_report",
]
