"""``/healthz`` (the process is alive) and ``/readyz`` (it reaches its store and blob store), for
load balancers and orchestrators."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from .store import BackendUnavailable
from .web import core_of

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    try:
        await anyio.to_thread.run_sync(core_of(request).ready)
    except BackendUnavailable as err:
        return JSONResponse({"status": "unavailable", "reason": str(err)}, status_code=503)
    return JSONResponse({"status": "ok"})
