"""Admin endpoints under the reserved ``/_sandbox`` prefix (served only when enabled)."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from .endpoints import ADMIN_PREFIX
from .faults import FaultInjector, FaultRule
from .ids import new_secret
from .stats import Stats
from .views import task_view
from .web import base_url, core_of

router = APIRouter(prefix=ADMIN_PREFIX, tags=["admin"])


class FaultRules(BaseModel):
    rules: list[dict[str, Any]] = Field(
        description="each {endpoint, fault | sequence, probability?, times?}; see docs/sandbox.md"
    )


class NewApp(BaseModel):
    app_id: str | None = Field(None, min_length=1, max_length=128)
    secret_key: str | None = Field(None, min_length=1, max_length=128)


class Invalidate(BaseModel):
    app_id: str | None = None


class PacingChange(BaseModel):
    time_scale: float | None = Field(None, gt=0)
    file_sync_delay_s: float | None = Field(None, ge=0)
    task_min_duration_s: float | None = Field(None, ge=0)


def _faults(request: Request) -> FaultInjector:
    faults: FaultInjector = request.app.state.faults
    return faults


def _stats(request: Request) -> Stats:
    stats: Stats = request.app.state.stats
    return stats


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


@router.get("/faults")
async def get_faults(request: Request) -> dict[str, Any]:
    return {"rules": await anyio.to_thread.run_sync(_faults(request).rules)}


@router.put("/faults")
async def set_faults(request: Request, body: FaultRules) -> Any:
    try:
        rules = [FaultRule.parse(r) for r in body.rules]
    except (ValueError, TypeError) as err:
        return _bad(str(err))
    faults = _faults(request)
    await anyio.to_thread.run_sync(faults.set_rules, rules)  # (shared ones: in the database)
    return {"rules": await anyio.to_thread.run_sync(faults.rules)}


@router.post("/faults")
async def add_fault(request: Request, body: dict[str, Any]) -> Any:
    try:
        rule = FaultRule.parse(body)
    except (ValueError, TypeError) as err:
        return _bad(str(err))
    faults = _faults(request)
    await anyio.to_thread.run_sync(faults.add, rule)
    return {"rules": await anyio.to_thread.run_sync(faults.rules)}


@router.delete("/faults")
async def clear_faults(request: Request) -> dict[str, Any]:
    await anyio.to_thread.run_sync(_faults(request).clear)
    return {"rules": []}


@router.post("/apps")
async def add_app(request: Request, body: NewApp) -> dict[str, str]:
    app_id = body.app_id or new_secret()
    secret_key = body.secret_key or new_secret()
    await anyio.to_thread.run_sync(core_of(request).store.add_app, app_id, secret_key)
    return {"app_id": app_id, "secret_key": secret_key}


@router.post("/tokens/invalidate")
async def invalidate_tokens(request: Request, body: Invalidate) -> dict[str, int]:
    store = core_of(request).store
    count = await anyio.to_thread.run_sync(store.invalidate_tokens, body.app_id)
    return {"invalidated": count}


@router.get("/tasks")
async def all_tasks(request: Request) -> dict[str, Any]:
    core = core_of(request)
    tasks, total = await anyio.to_thread.run_sync(core.store.list_tasks, None, 0, 1_000_000)
    base = base_url(request)
    items = [{**task_view(t, core.result_urls(t, base)), "app_id": t.app_id} for t in tasks]
    return {"list": items, "total_count": total}


@router.get("/stats")
async def get_stats(request: Request) -> dict[str, Any]:
    return _stats(request).snapshot()


@router.delete("/stats")
async def reset_stats(request: Request) -> dict[str, Any]:
    _stats(request).reset()
    return _stats(request).snapshot()


@router.get("/pacing")
async def get_pacing(request: Request) -> dict[str, float]:
    return vars(core_of(request).clock.pacing)


@router.put("/pacing")
async def set_pacing(request: Request, body: PacingChange) -> dict[str, float]:
    changes = {k: v for k, v in body.model_dump().items() if v is not None}
    return vars(core_of(request).clock.update(**changes))
