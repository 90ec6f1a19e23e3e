"""Every component on its own host: network namespaces joined by a bridge, so no process can lean
on sharing localhost (or a folder) with another. PostgreSQL and the object store on one host, two
API replicas on two more, two workers on two more; the test talks to them from outside."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from .deploy import DeployedApi, Deployment, audio_body
from .services import Postgres, SeaweedS3, why_not_postgres, why_not_seaweedfs

SUBNET = "10.213.77"  # ours alone: only inside the namespaces made here


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass
class Hosts:
    """Namespaces joined by a bridge that lives in its own namespace (the root one only gets a
    leg to reach them): nothing here touches the machine's own network setup."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    made: list[str] = field(default_factory=list)
    count: int = 0

    @property
    def switch(self) -> str:
        return f"sw{self.tag}"

    def __post_init__(self) -> None:
        _ip("netns", "add", self.switch)
        self.made.append(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        # The test's own leg, from the root namespace.
        self.client_address = self._leg(None)

    def _leg(self, ns: str | None) -> str:
        self.count += 1
        n = self.count
        inner, outer = f"h{self.tag}{n}", f"s{self.tag}{n}"
        address = f"{SUBNET}.{n + 1}"
        _ip("link", "add", inner, "type", "veth", "peer", "name", outer)
        _ip("link", "set", outer, "netns", self.switch)
        _ip("-n", self.switch, "link", "set", outer, "master", "br0")
        _ip("-n", self.switch, "link", "set", outer, "up")
        if ns is not None:
            _ip("link", "set", inner, "netns", ns)
        where = ["-n", ns] if ns else []
        _ip(*where, "addr", "add", f"{address}/24", "dev", inner)
        _ip(*where, "link", "set", inner, "up")
        if ns is not None:
            _ip(*where, "link", "set", "lo", "up")
        return address

    def host(self) -> tuple[tuple[str, ...], str]:
        """A new host: (command prefix to run there, its address)."""
        ns = f"n{self.tag}{self.count + 1}"
        _ip("netns", "add", ns)
        self.made.append(ns)
        return ("ip", "netns", "exec", ns), self._leg(ns)

    def remove(self) -> None:
        subprocess.run(["ip", "link", "del", f"h{self.tag}1"], capture_output=True)
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is missing"
    return why_not_postgres() or why_not_seaweedfs()


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    made = Hosts()
    yield made
    made.remove()


@pytest.mark.slow
def test_every_component_on_its_own_host(
    hosts: Hosts, tmp_path: Path, tiny_video: Path, tiny_audio: Path
) -> None:
    db_prefix, db_address = hosts.host()
    pg = Postgres.create(host=db_address, prefix=db_prefix)
    s3 = SeaweedS3.create(host=db_address, prefix=db_prefix)
    deployment: Deployment | None = None
    try:
        pg.start()
        s3.start()
        bucket = s3.make_bucket("netns-media")
        deployment = Deployment(
            store_url=pg.url(), blobs_url=f"s3://{bucket}/m", s3=s3, folder=tmp_path
        )
        for _ in range(2):
            prefix, address = hosts.host()
            deployment.start_api(prefix=list(prefix), host=address)
        for _ in range(2):
            prefix, _address = hosts.host()
            deployment.start_worker(prefix=list(prefix))
        # Reached from outside over the bridge, alternating between the two replica hosts.
        assert {httpx.URL(p.url).host for p in deployment.apis()} <= {
            f"{SUBNET}.{n}" for n in range(2, 20)
        }
        api = DeployedApi(deployment)
        try:
            api.login()
            video = api.ready_file("lip_sync_video", tiny_video)
            audio = api.ready_file("lip_sync_audio", tiny_audio)
            task_ids = [api.create(audio_body(video, audio)) for _ in range(4)]
            for task_id in task_ids:
                done = api.wait_task(task_id, timeout=120)
                assert done["status"] == 20, done
                assert httpx.get(done["video_url"]).status_code == 200
            assert len(api.replicas_used) == 2
        finally:
            api.close()
        worker_logs = [p.log.read_text() for p in deployment.procs if p.role == "worker"]
        assert any("job render" in log for log in worker_logs)
        assert all(proc.alive() for proc in deployment.procs)
    finally:
        if deployment is not None:
            deployment.stop_all()
        s3.destroy()
        pg.destroy()
