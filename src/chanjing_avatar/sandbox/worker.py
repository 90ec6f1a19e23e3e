"""``chanjing-avatar sandbox worker``: runs probe, render and callback jobs from the shared queue.

Any number of workers, on any machine that reaches the database and the object store. Each one
sends heartbeats; the running jobs of a worker silent for ``lost_after_s`` are queued again by
the others. On SIGTERM a worker takes no new job, lets running ones finish for
``shutdown_grace_s``, then hands back what is left (the task returns to the queue) and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from procrastinate.worker import Worker

from .callback_targets import resolved_problem
from .clock import Clock, Pacing
from .config import SandboxConfig
from .core import PROBE, RENDER, SandboxCore
from .jobs import probe_file, render_task
from .queue_procrastinate import (
    CALLBACK,
    ProcrastinateQueue,
    QueuedCallbacks,
    deliver_callback,
    recover_forever,
)
from .server import resolve_renderer
from .store import BackendUnavailable
from .store_postgres import PostgresStore

log = logging.getLogger("chanjing_avatar.sandbox")


class SandboxWorker:
    def __init__(self, config: SandboxConfig, concurrency: int = 2) -> None:
        if not config.store_url:
            raise ValueError("a worker needs --store postgresql://... (the shared state)")
        from .backends import open_backends

        self.config = config
        self.concurrency = max(1, concurrency)
        self.clock = Clock(
            Pacing(config.time_scale, config.file_sync_delay_s, config.task_min_duration_s)
        )
        backends = open_backends(
            config, self.clock, max_connections=self.concurrency + 4, patient=True
        )
        assert isinstance(backends.store, PostgresStore)
        self.store: PostgresStore = backends.store
        self.queue = ProcrastinateQueue(self.store, config.store_url, config.callback)
        self.core = SandboxCore(
            config,
            self.store,
            backends.blobs,
            self.queue,
            self.clock,
            resolve_renderer(config.renderer),
            QueuedCallbacks(self.store, self.queue),
            backends.limiter,
        )
        self.core.public_url = (config.public_url or "").rstrip("/")
        self._http = httpx.Client(timeout=config.callback.timeout_s, follow_redirects=False)
        self.queue.register(PROBE, lambda file_id: probe_file(self.core, file_id), 1)
        self.queue.register(RENDER, lambda task_id: render_task(self.core, task_id), 1)
        self.queue.register(CALLBACK, self._callback, 1)
        self._worker: Worker | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.health_address: tuple[str, int] | None = None

    def _callback(self, task_id: str) -> None:
        deliver_callback(self.store, self.config.callback, self._post, task_id)

    def _post(self, url: str, payload: dict[str, Any]) -> bool:
        problem = resolved_problem(url, allow_private=self.config.callback_allow_private)
        if problem:  # refused for good: nothing to retry
            log.warning("callback refused: %s", problem)
            return True
        try:
            return self._http.post(url, json=payload).is_success
        except httpx.HTTPError as exc:
            log.info("callback: %s", type(exc).__name__)
            return False

    # Health endpoints on their own small HTTP server (a worker serves no API).
    def _serve_health(self, host: str, port: int) -> ThreadingHTTPServer:
        core = self.core

        class Health(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = 404, {"status": "not found"}
                if self.path == "/healthz":
                    status, body = 200, {"status": "ok"}
                elif self.path == "/readyz":
                    try:
                        core.ready()
                        status, body = 200, {"status": "ok"}
                    except BackendUnavailable as err:
                        status, body = 503, {"status": "unavailable", "reason": str(err)}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer((host, port), Health)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="worker-health", daemon=True).start()
        self.health_address = (host, int(server.server_address[1]))
        return server

    def stop(self) -> None:
        """Stop taking jobs; after the grace period running renders hand their task back."""
        loop, stop = self._loop, self._stop
        if loop is None or stop is None:
            return
        loop.call_soon_threadsafe(self._begin_stop)

    def _begin_stop(self) -> None:
        assert self._stop is not None and self._loop is not None
        if self._stop.is_set():
            return
        grace = self.config.shutdown_grace_s
        log.info("worker stopping: no new jobs; %.0fs for running ones", grace)
        self._stop.set()
        if self._worker is not None:
            self._worker.stop()  # type: ignore[no-untyped-call]
        self._loop.call_later(self.config.shutdown_grace_s, self.queue.stop)

    def _new_worker(self) -> Worker:
        lost = self.config.lost_after_s
        return Worker(
            self.queue.app,
            queues=list(self.queue.kinds),
            concurrency=self.concurrency,
            install_signal_handlers=False,
            update_heartbeat_interval=max(0.5, lost / 4),
            stalled_worker_timeout=lost,
            fetch_job_polling_interval=1.0,
            shutdown_graceful_timeout=self.config.shutdown_grace_s + 10,
            delete_jobs="successful",
        )

    def run(
        self,
        health: tuple[str, int] | None = None,
        on_ready: Callable[[SandboxWorker], None] | None = None,
    ) -> None:
        server = self._serve_health(*health) if health else None
        try:
            asyncio.run(self._main(on_ready))
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()
            self._http.close()
            self.store.close()

    async def _main(self, on_ready: Callable[[SandboxWorker], None] | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self._begin_stop)
        lost = self.config.lost_after_s
        async with self.queue.app.open_async():
            recover = asyncio.create_task(recover_forever(self.queue.app, lost, self._stop))
            ready = on_ready
            try:
                while not self._stop.is_set():
                    self._worker = self._new_worker()
                    run = asyncio.create_task(self._worker.run())  # type: ignore[no-untyped-call]
                    if ready is not None:
                        ready(self)
                        ready = None
                    try:
                        await run
                    except Exception as err:  # the database went away: start over when back
                        log.warning("worker lost the database (%s); retrying", type(err).__name__)
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._stop.wait(), 2.0)
            finally:
                self._stop.set()
                await recover
        log.info("worker stopped")
