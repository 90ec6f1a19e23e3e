"""The Open API endpoints under /open/v1/."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel
from starlette.responses import JSONResponse

from .. import _wire
from .._wire import VOICE_PAGE_MAX
from . import schemas
from .envelope import ok
from .errors import format_error, param_error
from .middleware import request_fault
from .web import base_url, core_of, read_json

router = APIRouter()
Token = Annotated[str | None, Header(alias=_wire.TOKEN_HEADER, convert_underscores=False)]

# The JSON bodies these routes read themselves, for the OpenAPI document.
BODIES: dict[tuple[str, str], type[BaseModel]] = {
    (_wire.PATH_ACCESS_TOKEN, "post"): schemas.TokenRequest,
    (_wire.PATH_LIPSYNC_CREATE, "post"): schemas.CreateRequest,
    (_wire.PATH_LIPSYNC_LIST, "post"): schemas.ListRequest,
}


async def _auth(request: Request, token: str | None) -> str:
    # A primary-key read and a counter: cheaper inline than a thread hop.
    return core_of(request).authenticate(token, request.url.path)


@router.post(_wire.PATH_ACCESS_TOKEN, response_model=schemas.TokenAnswer, tags=["auth"])
async def access_token(request: Request) -> JSONResponse:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise format_error("body must be a JSON object")
    core = core_of(request)
    data = await anyio.to_thread.run_sync(
        core.issue_token, body.get("app_id"), body.get("secret_key")
    )
    return ok(data)


@router.get(_wire.PATH_CREATE_UPLOAD_URL, response_model=schemas.UploadUrlAnswer, tags=["files"])
async def create_upload_url(
    request: Request,
    access_token: Token = None,
    service: Annotated[str | None, Query(description="e.g. lip_sync_video")] = None,
    name: Annotated[str | None, Query(description="original file name with extension")] = None,
) -> JSONResponse:
    app_id = await _auth(request, access_token)
    if not service:
        raise param_error("service: required")
    if not name:
        raise param_error("name: required")
    core = core_of(request)
    record = await anyio.to_thread.run_sync(core.create_upload, app_id, service, name)
    expires = int(core.clock.now() + core.config.upload_url_ttl_s)
    query = request.app.state.signer.query(record.id, record.mime_type, expires)
    base = base_url(request)
    direct = core.upload_urls(record, base)  # straight to the object store, when shared
    sign_url, full_path = direct or (
        f"{base}/upload/{record.id}?{query}",
        f"{base}/upload/{record.id}",
    )
    return ok(
        {
            "sign_url": sign_url,
            "full_path": full_path,
            "key": record.blob_key,
            "mime_type": record.mime_type,
            "file_id": record.id,
        }
    )


@router.get(_wire.PATH_FILE_DETAIL, response_model=schemas.FileDetailAnswer, tags=["files"])
async def file_detail(
    request: Request,
    access_token: Token = None,
    id: Annotated[str | None, Query(description="file id")] = None,
) -> JSONResponse:
    app_id = await _auth(request, access_token)
    fault = request_fault(request.scope)
    core = core_of(request)
    data = await anyio.to_thread.run_sync(
        core.file_detail, app_id, id, fault is not None and fault.kind == "file_98"
    )
    return ok(data)


@router.post(_wire.PATH_LIPSYNC_CREATE, response_model=schemas.CreateAnswer, tags=["lip sync"])
async def lipsync_create(request: Request, access_token: Token = None) -> JSONResponse:
    app_id = await _auth(request, access_token)
    body = await read_json(request)
    fault = request_fault(request.scope)
    fail_msg = fault.msg if fault is not None and fault.kind == "task_failure" else ""
    core = core_of(request)
    task_id = await anyio.to_thread.run_sync(core.create_task, app_id, body, fail_msg)
    return ok(task_id)


@router.get(_wire.PATH_LIPSYNC_DETAIL, response_model=schemas.TaskDetailAnswer, tags=["lip sync"])
async def lipsync_detail(
    request: Request,
    access_token: Token = None,
    id: Annotated[str | None, Query(description="task id")] = None,
) -> JSONResponse:
    app_id = await _auth(request, access_token)
    core = core_of(request)
    task = core.own_task(app_id, id)
    return ok(core.task_view(task, base_url(request)))


@router.post(_wire.PATH_LIPSYNC_LIST, response_model=schemas.TaskListAnswer, tags=["lip sync"])
async def lipsync_list(request: Request, access_token: Token = None) -> JSONResponse:
    app_id = await _auth(request, access_token)
    body = await read_json(request, if_empty={})
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise format_error("body must be a JSON object")
    page = _positive(body.get("page"), "page", 1)
    page_size = min(_positive(body.get("page_size"), "page_size", 10), 100)
    core = core_of(request)
    return ok(core.list_tasks(app_id, page, page_size, base_url(request)))


@router.get(_wire.PATH_LIST_COMMON_AUDIO, response_model=schemas.VoiceListAnswer, tags=["voices"])
async def list_common_audio(
    request: Request,
    access_token: Token = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    size: Annotated[int, Query(ge=1, le=1_000_000, description="capped at 50")] = 10,
) -> JSONResponse:
    await _auth(request, access_token)
    core = core_of(request)
    size = min(size, VOICE_PAGE_MAX)
    voices = await anyio.to_thread.run_sync(core.voices)
    base = base_url(request)
    start = (page - 1) * size
    items: list[dict[str, Any]] = [
        {
            "id": v.id,
            "grade": v.grade,
            "name": v.name,
            "gender": v.gender,
            "lang": v.lang,
            "desc": v.desc,
            "speed": v.speed,
            "pitch": v.pitch,
            "audition": f"{base}/audition/{v.id}.wav",
        }
        for v in voices[start : start + size]
    ]
    total = len(voices)
    return ok(
        {
            "list": items,
            "page_info": {
                "page": page,
                "size": size,
                "total_count": total,
                "total_page": -(-total // size),
            },
        }
    )


def _positive(value: Any, field: str, default: int) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value > 1_000_000:
        raise param_error(f"{field}: must be a positive integer")
    return value
