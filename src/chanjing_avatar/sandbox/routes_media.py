"""Object-store style routes: the signed upload PUT, result downloads, voice auditions."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, Request
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse, RedirectResponse, Response

from .blobs import BlobTooLarge, too_large_message
from .envelope import xml_error
from .ids import is_id
from .middleware import request_faults
from .signing import UploadSigner
from .web import core_of

router = APIRouter()

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.put(
    "/upload/{file_id}",
    tags=["object store"],
    openapi_extra=_UPLOAD_BODY,
    responses={
        200: {"description": "stored"},
        403: {"description": "XML error"},
        400: {"description": "XML error"},
        404: {"description": "XML error"},
    },
    response_class=Response,
)
async def upload(
    request: Request,
    file_id: str,
    expires: Annotated[str | None, Query(alias="Expires")] = None,
    signature: Annotated[str | None, Query(alias="Signature")] = None,
    content_type: Annotated[str | None, Header()] = None,
) -> Response:
    core = core_of(request)
    resource = f"/upload/{file_id}"
    signer: UploadSigner = request.app.state.signer
    unknown = sorted(set(request.query_params) - {"Expires", "Signature"})
    if unknown:
        shown = ", ".join(name[:40] for name in unknown[:5])
        message = f"Query parameters not covered by the signature: {shown}"
        return xml_error(403, "AccessDenied", message, resource)
    params = {"Expires": expires or "", "Signature": signature or ""}
    rejection = signer.check(file_id, content_type or "", params, core.clock.now())
    if rejection is not None:
        return xml_error(403, rejection.code, rejection.message, resource)
    record = core.store.get_file(file_id) if is_id(file_id) else None
    if record is None:
        return xml_error(404, "NoSuchUpload", "The upload does not exist", resource)
    limit = core.config.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return xml_error(400, "EntityTooLarge", too_large_message(limit), resource)
    blob_key = core.upload_blob_key(record)
    try:
        size = await core.blobs.put_stream(blob_key, request.stream(), limit)
    except BlobTooLarge:
        return xml_error(400, "EntityTooLarge", too_large_message(limit), resource)
    except ClientDisconnect:
        return xml_error(400, "IncompleteBody", "The request body ended early", resource)
    faults = request_faults(request.scope)
    await anyio.to_thread.run_sync(core.upload_finished, file_id, size, faults, blob_key)
    return Response(status_code=200, headers={"ETag": f'"{file_id}"'})


@router.head("/upload/{file_id}", include_in_schema=False)
@router.get(
    "/upload/{file_id}",
    tags=["object store"],
    response_class=Response,
    responses={
        200: {"description": "the uploaded bytes (Range supported)"},
        206: {"description": "part"},
        404: {"description": "XML error"},
    },
)
async def uploaded(request: Request, file_id: str) -> Response:
    """The ``full_path`` of an upload: its bytes once the PUT is done (public-read, as the
    vendor's clients expect of that URL)."""
    core = core_of(request)
    direct = await anyio.to_thread.run_sync(core.upload_redirect, file_id)
    if direct is not None:
        return RedirectResponse(direct, status_code=307)
    record = core.store.get_file(file_id) if is_id(file_id) else None
    if record is None or record.uploaded_at is None or not core.blobs.exists(record.blob_key):
        return xml_error(404, "NoSuchKey", "The specified key does not exist.", request.url.path)
    return FileResponse(core.blobs.path(record.blob_key), media_type=record.mime_type)


@router.head("/result/lip-sync/{name}", include_in_schema=False)
@router.get(
    "/result/lip-sync/{name}",
    tags=["downloads"],
    response_class=Response,
    responses={
        200: {"description": "the file (Range supported)"},
        206: {"description": "part"},
        404: {"description": "XML error"},
    },
)
async def result(request: Request, name: str) -> Response:
    direct = await anyio.to_thread.run_sync(core_of(request).result_redirect, name)
    if direct is not None:
        return RedirectResponse(direct, status_code=307)
    path = core_of(request).result_path(name)
    if path is None:
        return xml_error(404, "NoSuchKey", "The specified key does not exist.", request.url.path)
    media = "video/mp4" if name.endswith(".mp4") else "image/jpeg"
    return FileResponse(path, media_type=media)


@router.get(
    "/audition/{name}",
    tags=["downloads"],
    response_class=Response,
    responses={200: {"description": "a WAV sample"}, 404: {"description": "XML error"}},
)
async def audition(request: Request, name: str) -> Response:
    voice_id, dot, ext = name.rpartition(".")
    core = core_of(request)
    path = None
    if dot and ext == "wav" and voice_id:
        path = await anyio.to_thread.run_sync(core.audition_path, voice_id)
    if path is None:
        return xml_error(404, "NoSuchKey", "The specified key does not exist.", request.url.path)
    return FileResponse(path, media_type="audio/wav")
