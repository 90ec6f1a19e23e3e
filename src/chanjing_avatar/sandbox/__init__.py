"""The local sandbox: a server that speaks Chanjing's lip-sync Open API (see docs/sandbox.md)."""

from __future__ import annotations

from .admin import SandboxAdmin
from .config import CallbackPolicy, SandboxConfig
from .faults import Fault, FaultRule
from .server import Sandbox

__all__ = ["CallbackPolicy", "Fault", "FaultRule", "Sandbox", "SandboxAdmin", "SandboxConfig"]
