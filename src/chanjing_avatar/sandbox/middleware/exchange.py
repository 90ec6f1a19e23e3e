"""What the layers learn about one API request and its answer, kept in the request's scope."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Message, Scope

from ..endpoints import endpoint_key
from ..faults import Fault

_STATE_KEY = "sandbox_exchange"
_CODE_SNIFF_BYTES = 64 * 1024


@dataclass
class Exchange:
    endpoint: str
    fault: Fault | None = None
    status: int = 0
    json: bool = False
    body: bytearray = field(default_factory=bytearray)  # the start of a JSON answer
    cut: bool = False  # a fault cut the answer short or withheld it
    disconnected: bool = False  # the client left before its answer

    def note(self, message: Message) -> None:
        """Record the status and the start of a JSON body from an answer's message."""
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.json = any(
                k.lower() == b"content-type" and v.startswith(b"application/json")
                for k, v in message.get("headers", [])
            )
        elif message["type"] == "http.response.body" and self.json:
            room = _CODE_SNIFF_BYTES - len(self.body)
            if room > 0:
                self.body += message.get("body", b"")[:room]

    def outcome(self) -> str:
        """The envelope code of a JSON answer, else ``http_<status>``, ``dropped`` or
        ``disconnected``."""
        if self.cut:
            return "dropped"
        if self.disconnected:
            return "disconnected"
        if self.json and self.status == 200:
            try:
                data: Any = json.loads(self.body)
                return str(int(data["code"]))
            except (ValueError, KeyError, TypeError):
                pass
        return f"http_{self.status}"


def exchange_of(scope: Scope) -> Exchange | None:
    """The exchange of an API request (made on first use); None for the admin API and anything
    that is not HTTP, which no layer counts, faults or logs."""
    if scope["type"] != "http":
        return None
    state = scope.setdefault("state", {})
    exchange: Exchange | None = state.get(_STATE_KEY)
    if exchange is None:
        endpoint = endpoint_key(scope["path"])
        if endpoint == "admin":
            return None
        exchange = state[_STATE_KEY] = Exchange(endpoint)
    return exchange
