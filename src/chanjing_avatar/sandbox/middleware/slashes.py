"""Repeated slashes in a path are merged, as the nginx in front of the real API does
(``merge_slashes``): vendor scripts that append "/open/v1/..." to a base URL ending in "/" still
reach the endpoint."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

_SLASHES = re.compile("/{2,}")


class Slashes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            scope = {**scope, "path": _SLASHES.sub("/", scope["path"])}
            scope.pop("raw_path", None)
        await self.app(scope, receive, send)
