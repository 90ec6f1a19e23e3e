"""Paging: one stop rule for every paged list (tasks, voices), whatever reads it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageCursor:
    """Which page to ask for next: ``page`` (from 1) of ``size`` items."""

    page: int = 1
    size: int = 50

    def after(self, got: int, total_page: int | None) -> PageCursor | None:
        """The page after this one, which returned ``got`` items and said there are
        ``total_page`` pages; None when this was the last. An empty page is the last; without a
        usable ``total_page`` (missing or 0) a short page is."""
        if got <= 0:
            return None
        if total_page is not None and total_page > 0:
            return None if self.page >= total_page else PageCursor(self.page + 1, self.size)
        return None if got < self.size else PageCursor(self.page + 1, self.size)
