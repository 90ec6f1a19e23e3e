"""The ASGI application: routes, error mapping, the outer middleware and the OpenAPI document."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from .._version import __version__
from .._wire import CODE_MESSAGES, Code
from . import routes_admin, routes_api, routes_health, routes_media
from .core import SandboxCore
from .endpoints import ADMIN_PREFIX, AUDITION_PREFIX, RESULT_PREFIX, UPLOAD_PREFIX
from .envelope import fail, xml_error
from .errors import ApiError
from .faults import FaultInjector
from .middleware import SandboxMiddleware
from .openapi import install_openapi
from .signing import UploadSigner
from .stats import Stats
from .store import BackendUnavailable

_OBJECT_STORE_PREFIXES = (UPLOAD_PREFIX, RESULT_PREFIX, AUDITION_PREFIX)


def create_app(
    core: SandboxCore,
    signer: UploadSigner,
    faults: FaultInjector,
    stats: Stats,
    admin_token: str = "",
) -> FastAPI:
    """``admin_token``: the bearer token the admin endpoints require (when they are served)."""
    app = FastAPI(
        title="chanjing-avatar sandbox",
        version=__version__,
        description="A local server that speaks Chanjing's lip-sync Open API.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.core = core
    app.state.signer = signer
    app.state.faults = faults
    app.state.stats = stats
    app.include_router(routes_api.router)
    app.include_router(routes_media.router)
    app.include_router(routes_health.router)
    if core.config.admin:
        app.include_router(routes_admin.router)
    install_openapi(app, routes_api.BODIES)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return fail(exc.code, exc.msg)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ())[1:]) or 'request'}: {err.get('msg')}"
            for err in exc.errors()
        )
        if request.url.path.startswith(ADMIN_PREFIX):
            return JSONResponse({"error": problems}, status_code=400)
        missing = all(err.get("type") == "missing" for err in exc.errors())
        err = ApiError(Code.PARAM_ERROR if missing else Code.BAD_FORMAT, problems)
        return fail(err.code, err.msg)

    @app.exception_handler(HTTPException)
    async def routing_error(request: Request, exc: HTTPException) -> Response:
        return _routing_error(request, exc, admin=core.config.admin)

    @app.exception_handler(BackendUnavailable)
    async def unavailable(request: Request, exc: BackendUnavailable) -> Response:
        # The database or object store is briefly away: nothing was changed, retrying is safe.
        return fail(Code.INTERNAL, "the service is briefly unavailable; retry")

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        # A bug, not bad input: the client gets an envelope; the traceback goes only to the
        # server's log (Starlette re-raises after answering).
        return fail(Code.INTERNAL, CODE_MESSAGES[Code.INTERNAL], status=500)

    app.add_middleware(
        SandboxMiddleware, core=core, faults=faults, stats=stats, admin_token=admin_token
    )
    return app


def _routing_error(request: Request, exc: HTTPException, *, admin: bool) -> Response:
    """404 and 405 (and any other routing error) in the style of the path's family: the API
    envelope with ``code`` = the HTTP status, object-store XML for the upload and download paths,
    plain JSON for the admin API. The HTTP status and headers (``Allow`` on a 405) are kept."""
    path, method, status = request.url.path, request.method, exc.status_code
    shown = path if len(path) <= 200 else path[:200] + "..."
    allow = (exc.headers or {}).get("Allow", "")
    if status == 404:
        reason = f"not found: no endpoint {method} {shown}"
    elif status == 405:
        reason = f"method {method} not allowed on {shown}" + (f"; use {allow}" if allow else "")
    else:
        reason = str(exc.detail)
    if admin and (path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")):
        return JSONResponse({"error": reason}, status_code=status, headers=exc.headers)
    if path.startswith(_OBJECT_STORE_PREFIXES):
        code = {404: "NoSuchKey", 405: "MethodNotAllowed"}.get(status, "InvalidRequest")
        return xml_error(status, code, reason, shown, headers=exc.headers)
    return fail(status, reason, status=status, headers=exc.headers)
