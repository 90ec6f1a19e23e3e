"""Running the sandbox: in the foreground (``serve``) or embedded in a thread (``Sandbox``)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from ..render.base import Renderer
from .admin import SandboxAdmin
from .admin_guard import is_loopback_host
from .app import create_app
from .backends import open_backends
from .callbacks import CallbackSender
from .clock import Clock, Pacing
from .config import SandboxConfig
from .core import PROBE, RENDER, SandboxCore
from .faults import FaultInjector
from .ids import new_secret
from .jobs import probe_file, render_task
from .queue import CallbackSink, ThreadWorkQueue, WorkQueue
from .signing import UploadSigner
from .stats import Stats

log = logging.getLogger("chanjing_avatar.sandbox")


def private_folder(path: Path) -> None:
    """Make ``path`` (and missing parents) with mode 0700; an existing one is narrowed to it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def private_file(path: Path) -> None:
    """Create ``path`` 0600 before SQLite opens it (its -wal and -shm files take the same mode);
    an existing one is narrowed to it."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)
    for suffix in ("-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            os.chmod(companion, 0o600)


def _http_protocol(cfg: SandboxConfig) -> Any:
    """httptools (the sandbox extra) with bounded request heads; else h11, which bounds their
    size (``h11_max_incomplete_event_size``) but not the time taken to send them."""
    try:
        from .http_limits import HeadLimits, bounded_protocol
    except ImportError:
        return "h11"
    return bounded_protocol(HeadLimits(cfg.max_head_bytes, cfg.max_headers, cfg.head_timeout_s))


def resolve_renderer(choice: Renderer | str) -> Renderer:
    if not isinstance(choice, str):
        return choice
    from ..render import get_renderer

    return get_renderer(choice)


class Sandbox:
    """A sandbox server; as a context manager it runs uvicorn in a background thread.

    >>> with Sandbox(SandboxConfig(data_dir=tmp)) as sb:   # doctest: +SKIP
    ...     sb.base_url, sb.app_id, sb.secret_key
    """

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._admin: SandboxAdmin | None = None
        self.base_url = ""
        self.app_id = ""
        self.secret_key = ""
        self._build()

    def _build(self) -> None:
        cfg = self.config
        if cfg.admin and not cfg.admin_remote and not is_loopback_host(cfg.host):
            raise ValueError(
                f"the admin endpoints on {cfg.host} would be reachable from other machines: "
                "bind a loopback address, or allow it explicitly (admin_remote / --admin-remote)"
            )
        self.admin_token = cfg.admin_token or new_secret()
        data_dir = Path(cfg.data_dir)
        private_folder(data_dir)
        if not cfg.store_url:
            private_file(data_dir / "sandbox.db")
        self.stats = Stats()
        self.clock = Clock(Pacing(cfg.time_scale, cfg.file_sync_delay_s, cfg.task_min_duration_s))
        backends = open_backends(cfg, self.clock)
        self.store, self.blobs, self.shared = backends.store, backends.blobs, backends.shared
        self.faults = self._fault_rules()
        self.work: WorkQueue
        self.callbacks: CallbackSink
        if self.shared:
            # An API replica: workers (``sandbox worker``) run the jobs it queues.
            from .queue_procrastinate import ProcrastinateQueue, QueuedCallbacks
            from .store_postgres import PostgresStore

            assert isinstance(self.store, PostgresStore) and cfg.store_url
            queue = ProcrastinateQueue(self.store, cfg.store_url, cfg.callback)
            self.work, self.callbacks = queue, QueuedCallbacks(self.store, queue)
        else:
            self.work = ThreadWorkQueue()
            self.callbacks = CallbackSender(
                cfg.callback,
                self.clock.real,
                self._callback_outcome,
                journal=self.store,
                allow_private=cfg.callback_allow_private,
            )
        self.core = SandboxCore(
            cfg,
            self.store,
            self.blobs,
            self.work,
            self.clock,
            resolve_renderer(cfg.renderer),
            self.callbacks,
            backends.limiter,
        )
        self.work.register(
            PROBE, lambda file_id: probe_file(self.core, file_id), cfg.probe_concurrency
        )
        self.work.register(
            RENDER, lambda task_id: render_task(self.core, task_id), cfg.render_concurrency
        )
        self.app_id, self.secret_key = self._default_app()
        for app_id, secret in cfg.extra_apps.items():
            self.store.add_app(app_id, secret)
        signer = UploadSigner(self._signing_key())
        self.app = create_app(self.core, signer, self.faults, self.stats, self.admin_token)

    def _fault_rules(self) -> FaultInjector:
        """This process's rules; a deployment's replicas share theirs (only when they can change:
        with the admin API or rules given at start), and rules given at start replace them."""
        cfg = self.config
        initial = cfg.faults if cfg.faults_enabled else ()
        if not (self.shared and (cfg.admin or initial)):
            return FaultInjector(initial, seed=cfg.fault_seed)
        from .faults_postgres import SharedFaults

        assert cfg.store_url
        shared = SharedFaults(cfg.store_url, seed=cfg.fault_seed)
        if initial:
            shared.set_rules(initial)
        return shared

    def _default_app(self) -> tuple[str, str]:
        """The given pair, or the one this data dir was first given (made up if none)."""
        store, cfg = self.store, self.config
        if cfg.app_id:
            app_id = cfg.app_id
        else:  # replicas starting together agree on one
            app_id = store.get_meta("default_app_id") or store.set_meta_once(
                "default_app_id", new_secret()
            )
        secret = cfg.secret_key or (store.app_secret(app_id) if not cfg.app_id else None)
        if secret is None:  # replicas starting together agree on one
            fresh = new_secret()
            secret = store.set_meta_once(f"first_secret:{app_id}", fresh) if self.shared else fresh
        store.add_app(app_id, secret)
        store.set_meta("default_app_id", app_id)
        return app_id, secret

    def _signing_key(self) -> bytes:
        key = self.store.get_meta("signing_key")
        if key is None:
            key = self.store.set_meta_once("signing_key", new_secret() + new_secret())
        return key.encode()

    def _callback_outcome(self, task_id: str, outcome: str) -> None:
        self.stats.request("callback")
        shown = outcome if outcome in ("error", "refused") else f"http_{outcome}"
        self.stats.response("callback", shown)

    def _uvicorn(self) -> uvicorn.Server:
        cfg = self.config
        config = uvicorn.Config(
            self.app,
            host=cfg.host,
            port=cfg.port,
            http=_http_protocol(cfg),
            h11_max_incomplete_event_size=cfg.max_head_bytes,
            limit_concurrency=cfg.max_connections,
            timeout_keep_alive=max(1, round(cfg.keep_alive_s)),
            lifespan="off",
            access_log=False,
            log_config=None,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        return uvicorn.Server(config)

    def _started(self, server: uvicorn.Server) -> None:
        port = self.config.port
        for s in server.servers:
            for sock in s.sockets:
                port = sock.getsockname()[1]
        host = self.config.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown}:{port}"
        self.core.public_url = (self.config.public_url or self.base_url).rstrip("/")
        if not self.shared:  # shared: workers run the jobs, and take over those of lost ones
            self.work.start()
            self.core.resume()

    # Embedded.
    def start(self, timeout: float = 30.0) -> Sandbox:
        server = self._uvicorn()
        self._server = server
        self._thread = threading.Thread(target=server.run, name="sandbox-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._shutdown_parts()
                raise RuntimeError(
                    f"sandbox did not start on {self.config.host}:{self.config.port}"
                )
            time.sleep(0.01)
        self._started(server)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
        self._server = self._thread = None
        self._shutdown_parts()

    def _shutdown_parts(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        self.work.stop()
        self.callbacks.close()
        self.faults.close()
        self.store.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def admin(self) -> SandboxAdmin:
        if not self.config.admin:
            raise RuntimeError("the admin endpoints are off: start with SandboxConfig(admin=True)")
        if not self.base_url:
            raise RuntimeError("the sandbox is not running")
        if self._admin is None:
            self._admin = SandboxAdmin(self.base_url, self.admin_token)
        return self._admin

    # Foreground.
    def serve(self, on_ready: Callable[[Sandbox], None] | None = None) -> None:
        """Run until interrupted (Ctrl-C / SIGTERM); ``on_ready`` is called once listening."""
        server = self._uvicorn()
        self._server = server
        watcher = threading.Thread(
            target=self._when_started, args=(server, on_ready), name="sandbox-ready", daemon=True
        )
        watcher.start()
        try:
            server.run()
        finally:
            self._server = None
            self._shutdown_parts()

    def _when_started(
        self, server: uvicorn.Server, on_ready: Callable[[Sandbox], None] | None
    ) -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.02)
        if server.started:
            self._started(server)
            if on_ready is not None:
                on_ready(self)
