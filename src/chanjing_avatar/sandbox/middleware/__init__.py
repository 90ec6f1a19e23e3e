"""The ASGI layers around the API, one concern each, outermost first.

``Slashes`` merges repeated slashes; ``AdminGuard`` protects the admin API (which the layers
below neither count, fault nor log); ``AccessLog`` writes one line a request; ``Counting`` keeps
the request and answer counts; ``Faults`` injects the configured faults.
"""

from __future__ import annotations

from starlette.middleware import Middleware

from ..core import SandboxCore
from ..faults import FaultInjector
from ..stats import Stats
from .access_log import AccessLog
from .admin import AdminGuard
from .counting import Counting
from .faults import Faults, request_faults
from .slashes import Slashes

__all__ = ["middleware_stack", "request_faults"]


def middleware_stack(
    core: SandboxCore, faults: FaultInjector, stats: Stats, admin_token: str
) -> list[Middleware]:
    """The layers, outermost first (as Starlette's ``middleware=`` takes them)."""
    return [
        Middleware(Slashes),
        Middleware(AdminGuard, config=core.config, token=admin_token),
        Middleware(AccessLog, enabled=core.config.access_log),
        Middleware(Counting, stats=stats),
        Middleware(Faults, core=core, faults=faults),
    ]
