"""A real load balancer in front of API replicas: Debian's nginx, round-robin per request, in a
temp folder on a loopback port (what a team puts in front of ``sandbox serve``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .services import free_port, stop, wait_port

_CONF = """\
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
{user}
events {{ worker_connections 512; }}
http {{
    log_format upstream '$upstream_addr $status $request_method $uri';
    access_log {folder}/access.log upstream;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    client_max_body_size 0;
    # The API's token travels in an "access_token" header, which nginx drops by default.
    underscores_in_headers on;
    upstream api {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 300s;
            # Only a refused connection moves a request on: a POST that reached a replica is
            # never sent twice (nginx's default for non-idempotent requests).
            proxy_next_upstream error;
        }}
    }}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
    )


def why_not_nginx() -> str | None:
    if nginx_binary() is None:
        return "nginx not installed (scripts/setup --dev installs Debian's nginx-light as root)"
    return None


@dataclass
class Balancer:
    """nginx round-robin over ``upstreams`` (host:port); ``url`` is what clients use."""

    upstreams: list[str]
    port: int = field(default_factory=free_port)
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lb-")))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Balancer:
        binary = nginx_binary()
        assert binary is not None, why_not_nginx()
        servers = "\n".join(f"        server {u} max_fails=0;" for u in self.upstreams)
        user = "user root;" if os.geteuid() == 0 else ""  # workers may read this temp folder
        conf = self.folder / "nginx.conf"
        text = _CONF.format(folder=self.folder, port=self.port, servers=servers, user=user)
        conf.write_text(text)
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf), "-p", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "stderr.log").open("ab"),
        )
        wait_port("127.0.0.1", self.port, 20, self.proc)
        return self

    def answered(self) -> list[str]:
        """The replica (host:port) that answered each request so far, in order (nginx's log)."""
        log = self.folder / "access.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [line.split()[0] for line in lines if line and line[0] != "-"]

    def upstreams_used(self) -> set[str]:
        return set(self.answered())

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, grace=5.0)
        shutil.rmtree(self.folder, ignore_errors=True)
