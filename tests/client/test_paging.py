"""One stop rule for every paged list: ``PageCursor``, used by ``iter_pages`` / ``iter_all`` (both
drivers), ``TaskPage.has_next_page`` and the voices flow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from chanjing_avatar import PageCursor, TaskPage
from chanjing_avatar._wire import PATH_ACCESS_TOKEN, PATH_LIPSYNC_LIST, PATH_LIST_COMMON_AUDIO

from .drivers import MakeClient, envelope, mock_client, token


@pytest.mark.parametrize(
    ("cursor", "got", "total_page", "after"),
    [
        (PageCursor(1, 10), 10, 3, PageCursor(2, 10)),
        (PageCursor(3, 10), 10, 3, None),  # the last page by the count
        (PageCursor(1, 10), 0, 3, None),  # an empty page ends it whatever the count says
        (PageCursor(1, 10), 10, None, PageCursor(2, 10)),  # no count: a full page goes on
        (PageCursor(1, 10), 4, None, None),  # ... and a short one ends it
        (PageCursor(1, 10), 10, 0, PageCursor(2, 10)),  # 0 is no count
    ],
)
def test_page_cursor_stop_rule(cursor: PageCursor, got: int, total_page: int | None,
                               after: PageCursor | None) -> None:
    assert cursor.after(got, total_page) == after


def test_task_page_knows_whether_another_follows() -> None:
    tasks = [{"id": f"t{i}"} for i in range(2)]
    first = TaskPage.model_validate({"list": tasks, "page_info": {"page": 1, "size": 2,
                                                                  "total_page": 2}})
    assert first.has_next_page() and first.next_page_info() == PageCursor(2, 2)
    last = TaskPage.model_validate({"list": tasks, "page_info": {"page": 2, "size": 2,
                                                                 "total_page": 2}})
    assert not last.has_next_page()


def _pages_server(sizes: list[int], with_count: bool, asked: list[int]) -> Any:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == PATH_ACCESS_TOKEN:
            return token()
        assert req.url.path == PATH_LIPSYNC_LIST
        page = json.loads(req.content)["page"]
        asked.append(page)
        n = sizes[page - 1] if page <= len(sizes) else 0
        info: dict[str, int] = {"page": page, "size": 2}
        if with_count:
            info["total_page"] = len(sizes)
        return envelope({"list": [{"id": f"p{page}-{i}"} for i in range(n)], "page_info": info})

    return handler


@pytest.mark.parametrize(("sizes", "with_count", "asked"), [
    ([2, 2, 1], True, [1, 2, 3]),
    ([2, 2, 2], True, [1, 2, 3]),  # the count ends it: no empty fourth page asked for
    ([2, 2, 1], False, [1, 2, 3]),  # the short page ends it
    ([2, 2], False, [1, 2, 3]),  # a full last page: one more ask finds it empty
])
def test_iter_pages_and_iter_all_follow_the_cursor(
    make_client: MakeClient, tmp_path: Path, sizes: list[int], with_count: bool,
    asked: list[int],
) -> None:
    seen: list[int] = []
    with mock_client(make_client, tmp_path, _pages_server(sizes, with_count, seen)) as c:
        pages = list(c.lipsync.iter_pages(page_size=2))
        assert seen == asked
        tasks = list(c.lipsync.iter_all(page_size=2))
    assert [len(p.items) for p in pages] == [*sizes, 0][: len(asked)]
    assert [t.id for t in tasks] == [f"p{p}-{i}" for p, n in enumerate(sizes, 1)
                                     for i in range(n)]


def test_voices_read_every_page(make_client: MakeClient, tmp_path: Path) -> None:
    asked: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == PATH_ACCESS_TOKEN:
            return token()
        assert req.url.path == PATH_LIST_COMMON_AUDIO
        page = int(req.url.params["page"])
        asked.append(req.url.params["size"])
        n = 50 if page == 1 else 3  # a full page, then a short one; no count given
        return envelope({"list": [{"id": f"v{page}-{i}", "lang": "zh"} for i in range(n)]})

    with mock_client(make_client, tmp_path, handler) as c:
        voices = c.voices.list(lang="zh")
    assert len(voices) == 53 and asked == ["50", "50"]
