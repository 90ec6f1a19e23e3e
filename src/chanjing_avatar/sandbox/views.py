"""The wire views of the core's records: the ``data`` of the API's answers and callbacks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .store import FileState, IssuedToken, TaskRecord


def token_view(issued: IssuedToken) -> dict[str, Any]:
    return {"access_token": issued.token, "expire_in": issued.expire_in}


def file_view(state: FileState) -> dict[str, Any]:
    record = state.record
    return {
        "id": record.id,
        "service": record.service,
        "name": record.name,
        "bytes": record.bytes,
        "create_time": record.create_time,
        "file_path": record.blob_key,
        "status": int(state.status),
        "msg": state.msg,
    }


def task_view(task: TaskRecord, urls: tuple[str, str]) -> dict[str, Any]:
    """``urls``: the result's (video, preview) URLs, from ``SandboxCore.result_urls``."""
    video_url, preview_url = urls
    return {
        "id": task.id,
        "status": task.status,
        "progress": task.progress,
        "msg": task.msg,
        "video_url": video_url,
        "preview_url": preview_url,
        "duration": task.duration_ms,
        "create_time": task.create_time,
    }


def task_page_view(
    views: Sequence[dict[str, Any]], total: int, page: int, page_size: int
) -> dict[str, Any]:
    return {
        "list": list(views),
        "page_info": {
            "page": page,
            "size": page_size,
            "total_count": total,
            "total_page": math.ceil(total / page_size) if total else 0,
        },
    }
