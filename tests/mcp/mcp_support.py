"""Run the installed ``chanjing-avatar mcp`` and talk to it with the ``mcp`` SDK's client."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp.client.stdio import StdioServerParameters, stdio_client

import mcp

CLI = Path(sys.executable).parent / "chanjing-avatar"
# Query values that would be a signature or token if they ever reached the output.
SIGNED_QUERY = re.compile(r"(?:Signature|Expires|sig|token|sign)=(?!\*\*\*)[^&\s\"']+",
                          re.IGNORECASE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """One server process and what it wrote to stderr."""

    home: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    url: str | None = None

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


@dataclass
class McpEnv:
    sb: Any
    root: Path
    video: Path
    audio: Path
    outputs: list[str] = field(default_factory=list)  # every text a client saw, for the checks
    app_secrets: set[str] = field(default_factory=set)

    @property
    def secrets(self) -> set[str]:
        found = {self.sb.secret_key, *self.app_secrets}
        for path in self.root.rglob("credentials*.json"):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            found |= {v for k, v in data.items() if k in ("secret_key", "access_token")
                      and isinstance(v, str)}
        return found

    def home(self, name: str) -> Path:
        home = self.root / name
        (home / ".chanjing").mkdir(parents=True, exist_ok=True)
        return home

    def account(self, home: Path, **extra: str | None) -> tuple[str, dict[str, str]]:
        """A new sandbox account (its own task list) and the environment that uses it."""
        app_id, secret = self.sb.admin.add_app()
        self.app_secrets.add(secret)
        return app_id, self.environ(home, CHANJING_APP_ID=app_id, CHANJING_SECRET_KEY=secret,
                                    **extra)

    def tasks_of(self, app_id: str) -> list[str]:
        return [t["id"] for t in self.sb.admin.tasks() if t.get("app_id") == app_id]

    def environ(self, home: Path, **extra: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHANJING_")}
        env.update(
            HOME=str(home),
            XDG_STATE_HOME=str(home / ".local" / "state"),
            XDG_DATA_HOME=str(home / ".local" / "share"),
            LANG="C.UTF-8",
            PYTHONIOENCODING="utf-8",
            CHANJING_OPENAPI_BASE_URL=self.sb.base_url,
            CHANJING_OPENAPI_CREDENTIALS_DIR=str(home / ".chanjing"),
            CHANJING_APP_ID=self.sb.app_id,
            CHANJING_SECRET_KEY=self.sb.secret_key,
        )
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    # -- stdio ----------------------------------------------------------------------------------

    @asynccontextmanager
    async def stdio(
        self, home: Path, *args: str, env: dict[str, str] | None = None
    ) -> AsyncIterator[tuple[mcp.Client, Server]]:
        server = Server(home=home, log=home / f"stderr-{time.monotonic_ns()}.log")
        params = StdioServerParameters(
            command=str(CLI), args=["mcp", *args], env=env or self.environ(home), cwd=str(home)
        )
        with server.log.open("w") as errlog:
            async with mcp.Client(stdio_client(params, errlog=errlog)) as client:
                yield client, server
        self.check(server.stderr())

    # -- HTTP -----------------------------------------------------------------------------------

    @contextmanager
    def http(self, home: Path, *args: str, env: dict[str, str] | None = None,
             port: int | None = None) -> Iterator[Server]:
        port = port or free_port()
        server = Server(home=home, log=home / f"stderr-http-{time.monotonic_ns()}.log")
        with server.log.open("w") as errlog:
            server.proc = subprocess.Popen(
                [str(CLI), "mcp", "--http", "--port", str(port), *args],
                stdin=subprocess.DEVNULL, stdout=errlog, stderr=errlog,
                env=env or self.environ(home), cwd=home,
            )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert server.proc.poll() is None, server.stderr()
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the HTTP server did not start"
                    time.sleep(0.1)
            server.url = f"http://127.0.0.1:{port}/mcp"
            yield server
        finally:
            if server.proc.poll() is None:
                server.proc.send_signal(signal.SIGTERM)
                try:
                    server.proc.wait(10)
                except subprocess.TimeoutExpired:
                    server.proc.kill()
                    server.proc.wait()
        self.check(server.stderr())

    # -- checks ---------------------------------------------------------------------------------

    def check(self, text: str) -> None:
        """No traceback, no secret, no signed URL."""
        assert "Traceback" not in text, text
        for secret in self.secrets:
            assert secret not in text, f"a secret leaked: {text}"
        assert not SIGNED_QUERY.search(text), f"a signed URL leaked: {text}"

    def seen(self, result: Any) -> Any:
        """Check one result (any SDK model) and keep its text."""
        text = result.model_dump_json() if hasattr(result, "model_dump_json") else str(result)
        self.check(text)
        self.outputs.append(text)
        return result


def text_of(result: Any) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def call(env: McpEnv, client: mcp.Client, name: str, args: dict[str, Any],
               **kw: Any) -> Any:
    return env.seen(await client.call_tool(name, args, **kw))


def one_line(result: Any) -> str:
    """The error text of a failed call: one line, no traceback."""
    assert result.is_error, result
    text = text_of(result)
    assert "\n" not in text.strip(), text
    assert "Traceback" not in text
    return text


def args_without_none(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


__all__: Sequence[str] = ["CLI", "McpEnv", "Server", "args_without_none", "call", "free_port",
                          "one_line", "text_of"]
