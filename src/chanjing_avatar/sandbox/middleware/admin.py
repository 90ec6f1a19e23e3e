"""The admin API's guard (the rules are in ``admin_guard``): a refused request is answered
here, before any other layer sees it."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..admin_guard import admin_refusal
from ..config import SandboxConfig
from ..endpoints import endpoint_key


class AdminGuard:
    def __init__(self, app: ASGIApp, config: SandboxConfig, token: str) -> None:
        self.app = app
        self.config = config
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.config.admin and scope["type"] == "http" and endpoint_key(scope["path"]) == "admin":
            refusal = admin_refusal(scope, self.config, self.token)
            if refusal is not None:
                status, message = refusal
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                refused = JSONResponse({"error": message}, status_code=status, headers=headers)
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)
