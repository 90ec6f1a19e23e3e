"""A page of tasks says how many there are in all (TaskPage.total_count), over the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chanjing_avatar import Client, PageInfo


def test_a_page_counts_every_task(copy_sandbox: Any, face_video: Path, tmp_path: Path) -> None:
    with Client(copy_sandbox.app_id, copy_sandbox.secret_key, base_url=copy_sandbox.base_url,
                credentials_dir=tmp_path / "cred", allow_http=True) as c:
        file_id = c.files.upload(face_video, "lip_sync_video").id
        before = c.lipsync.list(page_size=1).total_count
        for _ in range(3):
            c.lipsync.create(video_file_id=file_id, text="你好", voice_id="a" * 32)
        page = c.lipsync.list(page=1, page_size=2)
        assert isinstance(page.page_info, PageInfo)
        assert page.total_count == before + 3 == len(copy_sandbox.admin.tasks())
        assert page.total_page == (page.total_count + 1) // 2
        assert len(page.items) == 2
        past = c.lipsync.list(page=page.total_page + 1, page_size=2)
        assert past.items == [] and past.total_count == page.total_count
