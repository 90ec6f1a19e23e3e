"""``--local``: find the background local sandbox of the data folder, or start it.

One server per data folder, shared by every ``--local`` command (two started at once agree
through a lock file beside the folder); one that crashed is started again. The server outlives
the command, so tasks go on rendering between commands and their URLs stay valid while it runs;
it stops after ``CHANJING_LOCAL_IDLE`` seconds without use (default 600).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import CliError, ExitCode
from ._local_server import ERROR_FILE, STATE_FILE

ENV_LOCAL_DIR = "CHANJING_LOCAL_DIR"
ENV_LOCAL_IDLE = "CHANJING_LOCAL_IDLE"
DEFAULT_IDLE_S = 600.0
_START_TIMEOUT_S = 180.0  # a renderer may load models at start


def local_data_dir() -> Path:
    """Where ``--local`` keeps the local sandbox's state, so ids outlive one command."""
    explicit = os.environ.get(ENV_LOCAL_DIR, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME", "").strip() or str(Path.home() / ".local" / "share")
    return Path(base) / "chanjing-avatar" / "local"


def idle_timeout() -> float:
    text = os.environ.get(ENV_LOCAL_IDLE, "").strip()
    if not text:
        return DEFAULT_IDLE_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise CliError(f"{ENV_LOCAL_IDLE}={text}: give the idle time in seconds (> 0)")
    return value


@dataclass(frozen=True)
class LocalServer:
    """A running background sandbox: where it listens and the app it serves."""

    pid: int
    base_url: str
    app_id: str
    secret_key: str
    data_dir: Path
    idle_timeout: float

    def as_dict(self) -> dict[str, Any]:
        return {"running": True, "pid": self.pid, "base_url": self.base_url,
                "data_dir": str(self.data_dir), "idle_timeout": self.idle_timeout}


def _lock_path(data_dir: Path) -> Path:
    return data_dir.with_name(data_dir.name + ".lock")


@contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    """The data folder's lock (a file beside it): one command at a time finds or starts."""
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(_lock_path(data_dir), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own child that died) is not alive.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _answers(base_url: str) -> bool:
    """The server answers HTTP (any status) at ``base_url``."""
    import httpx

    try:
        httpx.get(base_url + "/", timeout=5.0)
    except httpx.HTTPError:
        return False
    return True


def running(data_dir: Path) -> LocalServer | None:
    """The data folder's server if it runs and answers (a stale state file is ignored)."""
    try:
        state = json.loads((data_dir / STATE_FILE).read_text(encoding="utf-8"))
        server = LocalServer(int(state["pid"]), str(state["base_url"]), str(state["app_id"]),
                             str(state["secret_key"]), data_dir,
                             float(state["idle_timeout"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _alive(server.pid) or not _answers(server.base_url):
        return None
    return server


def ensure(data_dir: Path, on_start: Any = None) -> LocalServer:
    """The data folder's server, started (in the background) when none runs."""
    with _locked(data_dir):
        server = running(data_dir)
        if server is not None:
            return server
        if on_start is not None:
            on_start()
        return _start(data_dir)


def _start(data_dir: Path) -> LocalServer:
    (data_dir / STATE_FILE).unlink(missing_ok=True)
    (data_dir / ERROR_FILE).unlink(missing_ok=True)
    log = open(data_dir / "server.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "chanjing_avatar.cli._local_server", str(data_dir),
             str(idle_timeout())],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            close_fds=True,
            # Default signal handling, whatever this command inherited (`nohup … &`).
            preexec_fn=_default_signals,
        )
    finally:
        log.close()
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        server = running(data_dir)
        if server is not None and server.pid == child.pid:
            return server
        if child.poll() is not None:
            raise CliError(f"--local: the local sandbox did not start: {_start_error(data_dir)}",
                           ExitCode.FAILED)
        time.sleep(0.05)
    _terminate(child.pid)
    raise CliError(f"--local: the local sandbox did not start within {_START_TIMEOUT_S:.0f} s "
                   f"(log: {data_dir / 'server.log'})", ExitCode.FAILED)


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _start_error(data_dir: Path) -> str:
    try:
        return " ".join((data_dir / ERROR_FILE).read_text(encoding="utf-8").split())
    except OSError:
        return f"see {data_dir / 'server.log'}"


def _terminate(pid: int, timeout: float = 20.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout``; True once the process is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return not _alive(pid)


def stop(data_dir: Path) -> LocalServer | None:
    """Stop the data folder's server; the one stopped, or None if none ran."""
    with _locked(data_dir):
        server = running(data_dir)
        if server is None:
            return None
        _terminate(server.pid)
        (data_dir / STATE_FILE).unlink(missing_ok=True)
        return server
