"""The contract tests' second target: a deployment of 2 API replicas + 2 workers (separate
processes on PostgreSQL, S3 and the job queue) behind nginx, which sends each request to the next
replica.

``sandbox_factory(**overrides)`` gives a ``DeployedSandbox``: what the tests use of an embedded
``Sandbox`` (``base_url``, the app's credentials, ``admin``), on a fresh app of a deployment
shared by every test with the same settings, so starting it is paid once per settings. What a
deployment cannot show from outside (the embedded server's data folder, its connection bounds,
the renderer's in-process state, faults of the embedded object store) skips the test with the
reason.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from chanjing_avatar.sandbox.admin import SandboxAdmin
from fake_renderer import FakeRenderer
from scale.balancer import Balancer, why_not_nginx
from scale.deploy import Deployment
from scale.services import Postgres, SeaweedS3, unique_name

from .stub import stub_renderer

STUB_MAIN = Path(__file__).resolve().parents[1] / "scale" / "stub_main.py"


def _skip(why: str) -> NoReturn:
    pytest.skip(f"deployment target: {why}")


class RemoteStub:
    """The ``stub`` fixture on the deployment target: the workers run the stub renderer in their
    own processes, so its in-process state (gate, jobs, texts, peak) cannot be seen from here."""

    def __getattr__(self, name: str) -> NoReturn:
        _skip(f"stub.{name} is the renderer's in-process state (renders run in the workers)")


# SandboxConfig overrides a deployment takes, as (serve flags, worker flags).
def _flags(key: str, value: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if key == "renderer":
        return ("--renderer", _renderer_name(value)), ("--renderer", _renderer_name(value))
    if key == "callback_allow_private":
        flag = "--allow-private-callbacks" if value else "--no-allow-private-callbacks"
        return (flag,), (flag,)
    if key == "rate_limit_scale":
        return ("--rate-limit-scale", str(value)), ()
    if key == "rate_limits_enabled":
        return (() if value else ("--no-rate-limits",)), ()
    if key == "time_scale":
        return ("--time-scale", str(value)), ("--time-scale", str(value))
    if key == "task_min_duration_s":
        return ("--task-min-duration", str(value)), ("--task-min-duration", str(value))
    if key == "file_sync_delay_s":
        return ("--sync-delay", str(value)), ()
    if key == "token_ttl_s":
        return ("--token-ttl", str(value)), ()
    if key == "upload_url_ttl_s":
        if value < 1:
            _skip("an S3 presigned URL lasts at least 1 s (tests/scale/test_blobs_s3.py "
                  "checks that an expired one is refused)")
        return ("--upload-url-ttl", str(value)), ()
    if key == "admin":
        return (() if value else ("--no-admin",)), ()
    if key == "faults":
        _skip("fault rules given at start (--fault takes no sequence; the admin API's rules are "
              "shared by the replicas, and tested here)")
    if key == "max_upload_bytes":
        _skip("the object store takes a PUT of any size; the probe then refuses the file "
              "(tests/scale/test_deployment.py)")
    if key == "data_dir":
        _skip("restarts the embedded server on its data folder (tests/scale/test_failures.py "
              "restarts every process of a deployment)")
    if key.startswith(("max_head", "max_headers", "head_timeout", "max_connections")):
        _skip(f"{key} bounds one server's connections; in a deployment the balancer's do")
    _skip(f"{key} is a setting of the embedded server alone")


def _renderer_name(value: Any) -> str:
    if isinstance(value, RemoteStub):
        return "stub"
    if isinstance(value, FakeRenderer):
        if _same_settings(value, stub_renderer()):
            return "stub"
        _skip("a renderer set up in-process differently from the stub the workers run")
    if isinstance(value, str):
        return value
    _skip(f"the renderer {value!r} exists only in this process")


def _same_settings(a: FakeRenderer, b: FakeRenderer) -> bool:
    keys = ("steps", "step_s", "slow_steps", "slow_step_s", "output_bytes", "fail_text",
            "hold_text", "hold_s", "name")
    return all(getattr(a, k) == getattr(b, k) for k in keys) and a.voices() == b.voices()


_PACING = ("pacing set at run time reaches the replica it is sent to, not the workers "
           "(a deployment paces with --task-min-duration / --time-scale at start)")
def settings(overrides: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Serve and worker flags for ``overrides`` (a test whose override has none skips)."""
    api: list[str] = []
    worker: list[str] = []
    faults_on = bool(overrides.get("faults_enabled"))
    for key, value in sorted(overrides.items()):
        if key == "faults_enabled" or (key == "faults" and not faults_on):
            continue  # rules that are not enabled change nothing (as embedded)
        a, w = _flags(key, value)
        api += a
        worker += w
    return tuple(api), tuple(worker)


class DeploymentAdmin(SandboxAdmin):
    """The admin API of a deployment as one sandbox's tests see it, through the balancer: apps,
    tokens, tasks (only this sandbox's apps') and fault rules live in the shared database; the
    counts belong to each replica, so they are summed."""

    def __init__(self, url: str, token: str, replicas: Sequence[str], apps: set[str]) -> None:
        super().__init__(url, token)
        self._replicas = [SandboxAdmin(r, token) for r in replicas]
        self._apps = apps

    def close(self) -> None:
        for replica in self._replicas:
            replica.close()
        super().close()

    def add_fault(self, endpoint: str, *args: Any, **kwargs: Any) -> None:
        if endpoint in ("upload", "download"):
            _skip(f"a fault of the embedded object store ({endpoint}); a deployment's clients "
                  "upload and download straight to S3")
        super().add_fault(endpoint, *args, **kwargs)

    def stats(self) -> dict[str, Any]:
        total: dict[str, Any] = {}
        for replica in self._replicas:
            _add(total, replica.stats())
        return total

    def reset_stats(self) -> None:
        for replica in self._replicas:
            replica.reset_stats()

    def pacing(self) -> dict[str, float]:
        _skip(_PACING)

    def set_pacing(self, **changes: float) -> dict[str, float]:
        _skip(_PACING)

    def add_app(self, app_id: str | None = None, secret_key: str | None = None) -> tuple[str, str]:
        made = super().add_app(app_id, secret_key)
        self._apps.add(made[0])
        return made

    def invalidate_tokens(self, app_id: str | None = None) -> int:
        if app_id is not None:
            return super().invalidate_tokens(app_id)
        return sum(super(DeploymentAdmin, self).invalidate_tokens(a) for a in sorted(self._apps))

    def tasks(self) -> list[dict[str, Any]]:
        return [t for t in super().tasks() if t["app_id"] in self._apps]


def _add(total: dict[str, Any], part: Mapping[str, Any]) -> None:
    for key, value in part.items():
        if isinstance(value, Mapping):
            _add(total.setdefault(key, {}), value)
        else:
            total[key] = total.get(key, 0) + value


@dataclass
class Running:
    """One deployment and its balancer."""

    deployment: Deployment
    balancer: Balancer
    admin_on: bool

    def replicas(self) -> list[str]:
        return [p.url for p in self.deployment.apis()]

    def replicas_hostports(self) -> list[str]:
        return [u.removeprefix("http://") for u in self.replicas()]


@dataclass
class DeployedSandbox:
    """What the contract tests use of a ``Sandbox``, on a fresh app of a shared deployment."""

    running: Running
    app_id: str
    secret_key: str
    apps: set[str] = field(default_factory=set)
    _admin: DeploymentAdmin | None = None
    _first_request: int = 0

    def __post_init__(self) -> None:
        self._first_request = len(self.running.balancer.answered())

    @property
    def base_url(self) -> str:
        return self.running.balancer.url

    @property
    def admin_token(self) -> str:
        return self.running.deployment.admin_token

    @property
    def admin(self) -> DeploymentAdmin:
        if not self.running.admin_on:
            raise RuntimeError("the admin endpoints are off")
        if self._admin is None:
            self._admin = DeploymentAdmin(
                self.base_url, self.admin_token, self.running.replicas(), self.apps
            )
        return self._admin

    def replicas_used(self) -> set[str]:
        """The replicas that answered this sandbox's requests."""
        return set(self.running.balancer.answered()[self._first_request :])

    def stop(self) -> None:
        """End of the test: its requests went to every replica in turn."""
        if self._admin is not None:
            self._admin.close()
        answered = self.running.balancer.answered()[self._first_request :]
        if len(answered) >= 2:
            assert self.replicas_used() == set(self.running.replicas_hostports()), answered

    def __getattr__(self, name: str) -> NoReturn:
        _skip(f"sb.{name} is the embedded server's in-process state")


class Deployments:
    """Deployments by settings, started on first use and kept for the session."""

    def __init__(self, postgres: Postgres, s3: SeaweedS3, folders: pytest.TempPathFactory) -> None:
        self._postgres, self._s3, self._folders = postgres, s3, folders
        self._running: dict[tuple[tuple[str, ...], tuple[str, ...]], Running] = {}

    def sandbox(self, overrides: Mapping[str, Any]) -> DeployedSandbox:
        api_flags, worker_flags = settings({"renderer": "passthrough", **overrides})
        key = (api_flags, worker_flags)
        running = self._running.get(key) or self._start(api_flags, worker_flags)
        self._running[key] = running
        if not running.admin_on:  # no admin endpoints to add an app with: the default one
            d = running.deployment
            return DeployedSandbox(running, d.app_id, d.secret_key, {d.app_id})
        admin = SandboxAdmin(running.balancer.url, running.deployment.admin_token)
        try:
            admin.clear_faults()  # each sandbox starts with no faults and no counts
            for url in running.replicas():
                replica = SandboxAdmin(url, running.deployment.admin_token)
                replica.reset_stats()
                replica.close()
            app_id, secret = admin.add_app(unique_name("app"), secrets.token_hex(16))
        finally:
            admin.close()
        return DeployedSandbox(running, app_id, secret, {app_id})

    def _start(self, api_flags: tuple[str, ...], worker_flags: tuple[str, ...]) -> Running:
        bucket = self._s3.make_bucket(unique_name("contract") + "-test")
        admin_on = "--no-admin" not in api_flags
        deployment = Deployment(
            store_url=self._postgres.fresh_database(),
            blobs_url=f"s3://{bucket}/media",
            s3=self._s3,
            folder=self._folders.mktemp("contract-deploy"),
            renderer="stub",
            entry=(str(STUB_MAIN),),
        )
        balancer = Balancer([])
        # The replicas hand out URLs of the balancer (full_path, video_url), as behind a proxy.
        public = ("--public-url", balancer.url)
        deployment.api_args = (*public, *api_flags)
        deployment.worker_args = worker_flags
        deployment.start(apis=2, workers=2)  # (later flags win: --no-admin, --no-allow-...)
        running = Running(deployment, balancer, admin_on)
        balancer.upstreams = running.replicas_hostports()
        balancer.start()
        return running

    def close(self) -> None:
        for running in self._running.values():
            running.balancer.stop()
            running.deployment.stop_all()


def deployments_or_skip(request: pytest.FixtureRequest) -> Iterator[Deployments]:
    reason = why_not_nginx()
    if reason:
        _skip(reason)
    pool = Deployments(
        request.getfixturevalue("postgres"),
        request.getfixturevalue("s3"),
        request.getfixturevalue("tmp_path_factory"),
    )
    yield pool
    pool.close()


