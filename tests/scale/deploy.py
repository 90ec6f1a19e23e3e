"""A shared sandbox as separate processes: API replicas (``sandbox serve``) and workers
(``sandbox worker``) on one PostgreSQL and one S3 bucket, plus a client that alternates between
the replicas."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from sandbox.api import Api

from .services import S3_KEY, S3_SECRET, SeaweedS3, stop

APP_ID, SECRET = "scaleapp", "scale-secret-0123456789"


@dataclass
class Proc:
    role: str
    popen: subprocess.Popen[bytes]
    info: dict[str, Any]
    log: Path

    @property
    def url(self) -> str:
        return str(self.info.get("base_url") or self.info.get("health_url"))

    def alive(self) -> bool:
        return self.popen.poll() is None


def _read_first_line(stream: IO[bytes], timeout: float, popen: subprocess.Popen[bytes]) -> str:
    out: list[bytes] = []

    def read() -> None:
        out.append(stream.readline())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not out or not out[0]:
        raise RuntimeError(f"process gave no start line (exit {popen.poll()})")
    return out[0].decode()


@dataclass
class Deployment:
    store_url: str
    blobs_url: str
    s3: SeaweedS3
    folder: Path
    api_args: tuple[str, ...] = ()
    worker_args: tuple[str, ...] = ()
    worker_private_callbacks: bool = True  # workers POST to the loopback test receivers
    procs: list[Proc] = field(default_factory=list)
    app_id: str = APP_ID
    secret_key: str = SECRET
    admin_token: str = field(default_factory=lambda: secrets.token_hex(16))  # one for all
    renderer: str = "passthrough"
    entry: tuple[str, ...] = ("-m", "chanjing_avatar")  # or a launcher script (stub_main.py)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            AWS_ACCESS_KEY_ID=S3_KEY,
            AWS_SECRET_ACCESS_KEY=S3_SECRET,
            AWS_REGION="us-east-1",
            AWS_ENDPOINT_URL=self.s3.endpoint,
            CHANJING_SANDBOX_STORE=self.store_url,
            CHANJING_SANDBOX_BLOBS=self.blobs_url,
            CHANJING_SANDBOX_SECRET_KEY=self.secret_key,
            CHANJING_SANDBOX_ADMIN_TOKEN=self.admin_token,
            PYTHONUNBUFFERED="1",
        )
        return env

    def _launch(self, role: str, args: list[str], prefix: list[str] | None) -> Proc:
        n = sum(p.role == role for p in self.procs)
        log = self.folder / f"{role}-{n}.log"
        cmd = [*(prefix or []), sys.executable, *self.entry, "sandbox", *args]
        popen = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=log.open("ab"), env=self.env(), cwd=self.folder
        )
        proc = Proc(role, popen, {}, log)
        self.procs.append(proc)
        return proc

    def _started(self, proc: Proc) -> Proc:
        """Wait for the process's start line (its address as JSON)."""
        assert proc.popen.stdout is not None
        try:
            line = _read_first_line(proc.popen.stdout, 90, proc.popen)
        except RuntimeError as err:
            proc.popen.kill()
            raise RuntimeError(
                f"{proc.role}: {err}; log:\n{proc.log.read_text()[-3000:]}"
            ) from None
        proc.info = json.loads(line)
        return proc

    def start_api(
        self,
        *extra: str,
        prefix: list[str] | None = None,
        host: str = "127.0.0.1",
        wait: bool = True,
    ) -> Proc:
        args = [
            "serve",
            "--json",
            "--host",
            host,
            "--port",
            "0",
            "--renderer",
            self.renderer,
            "--app-id",
            self.app_id,
            "--sync-delay",
            "0.05",
            "--rate-limit-scale",
            "100",
            "--admin",
            "--admin-remote",  # replicas may listen on a test network's address
            "--allow-private-callbacks",  # the test receivers listen on loopback
            "--data-dir",
            str(self.folder / f"api-{len(self.procs)}"),
            *self.api_args,
            *extra,
        ]
        proc = self._launch("api", args, prefix)
        return self._started(proc) if wait else proc

    def start_worker(self, *extra: str, prefix: list[str] | None = None, wait: bool = True) -> Proc:
        args = [
            "worker",
            "--json",
            "--renderer",
            self.renderer,
            "--concurrency",
            "2",
            *(["--allow-private-callbacks"] if self.worker_private_callbacks else []),
            "--data-dir",
            str(self.folder / f"worker-{len(self.procs)}"),
            *self.worker_args,
            *extra,
        ]
        proc = self._launch("worker", args, prefix)
        return self._started(proc) if wait else proc

    def start(self, apis: int = 2, workers: int = 2) -> Deployment:
        """Start the processes together (the first API replica migrates the database first)."""
        if apis:
            self.start_api()
        launched = [self.start_api(wait=False) for _ in range(apis - 1)]
        launched += [self.start_worker(wait=False) for _ in range(workers)]
        for proc in launched:
            self._started(proc)
        return self

    def apis(self) -> list[Proc]:
        return [p for p in self.procs if p.role == "api" and p.alive()]

    def workers(self) -> list[Proc]:
        return [p for p in self.procs if p.role == "worker" and p.alive()]

    @property
    def base_url(self) -> str:
        return self.apis()[0].url

    def client(self, **options: Any) -> httpx.Client:
        """An httpx client whose requests alternate between the live API replicas."""
        return httpx.Client(
            base_url=self.base_url,
            transport=RoundRobin([p.url for p in self.apis()]),
            timeout=30.0,
            **options,
        )

    def kill(self, proc: Proc, sig: int = signal.SIGKILL) -> None:
        proc.popen.send_signal(sig)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            stop(proc.popen, grace=10.0)
            if proc.popen.stdout is not None:
                proc.popen.stdout.close()

    def logs(self) -> str:
        return "\n".join(f"--- {p.log.name}\n{p.log.read_text()[-2000:]}" for p in self.procs)


class RoundRobin(httpx.BaseTransport):
    """Sends each request to the next base URL in turn; a replica that refuses the connection
    is skipped (as a load balancer would)."""

    def __init__(self, bases: list[str]) -> None:
        self._bases = [httpx.URL(b) for b in bases]
        self._next = 0
        self._lock = threading.Lock()
        self._inner = httpx.HTTPTransport()
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        last: Exception | None = None
        for _ in range(len(self._bases)):
            with self._lock:
                base = self._bases[self._next % len(self._bases)]
                self._next += 1
            request.url = request.url.copy_with(host=base.host, port=base.port)
            try:
                answer = self._inner.handle_request(request)
                self.sent.append(f"{base.host}:{base.port}")
                return answer
            except httpx.ConnectError as err:
                last = err
        assert last is not None
        raise last

    def close(self) -> None:
        self._inner.close()


def wait_for(check: Any, timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(every)


class DeployedApi(Api):
    """The sandbox tests' raw-HTTP client, its requests alternating between replicas."""

    def __init__(self, deployment: Deployment) -> None:
        self.sb = deployment  # type: ignore[assignment]
        self.http = deployment.client()
        self.app_id, self.secret = deployment.app_id, deployment.secret_key
        self.token = ""

    @property
    def replicas_used(self) -> set[str]:
        transport = self.http._transport
        assert isinstance(transport, RoundRobin)
        return set(transport.sent)


def audio_body(video_id: str, audio_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "video_file_id": video_id,
        "screen_width": 64,
        "screen_height": 64,
        "audio_type": "audio",
        "audio_file_id": audio_id,
        **extra,
    }
