"""The ASGI application: routes, error mapping, the outer middleware and the OpenAPI document."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import JSONResponse, Response

from .._version import __version__
from .._wire import Code
from . import routes_admin, routes_api, routes_media
from .core import SandboxCore
from .endpoints import ADMIN_PREFIX
from .envelope import fail
from .errors import ApiError
from .faults import FaultInjector
from .middleware import SandboxMiddleware
from .openapi import install_openapi
from .signing import UploadSigner
from .stats import Stats


def create_app(
    core: SandboxCore, signer: UploadSigner, faults: FaultInjector, stats: Stats
) -> FastAPI:
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

    app.add_middleware(SandboxMiddleware, core=core, faults=faults, stats=stats)
    return app
