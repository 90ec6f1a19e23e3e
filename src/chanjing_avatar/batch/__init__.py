"""Crash-safe batch runs on the async client: manifest, journal, reconciliation, runner."""

from .journal import Journal, JournalRow, RowState, SpecChangedError
from .manifest import Manifest, ManifestError, ManifestProblem, Row, load_manifest
from .reconcile import Decision, Listed, decide
from .report import build_report, write_report
from .runner import BatchOptions, BatchProgress, BatchRunner, run_batch

__all__ = [
    "BatchOptions",
    "BatchProgress",
    "BatchRunner",
    "Decision",
    "Journal",
    "JournalRow",
    "Listed",
    "Manifest",
    "ManifestError",
    "ManifestProblem",
    "Row",
    "RowState",
    "SpecChangedError",
    "build_report",
    "decide",
    "load_manifest",
    "run_batch",
    "write_report",
]
