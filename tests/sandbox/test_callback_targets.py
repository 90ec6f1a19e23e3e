"""Callback URLs on a shared sandbox: no loopback/private/link-local targets unless allowed,
never the sandbox's own admin paths, and one slow target cannot hold up callbacks to another."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chanjing_avatar import _wire
from chanjing_avatar.sandbox import CallbackPolicy
from chanjing_avatar.sandbox.callbacks import CallbackSender

from .api import Api, tts_body
from .conftest import VOICE, Factory
from .receiver import Receiver


def _create(api: Api, video: Path, callback: str) -> dict[str, Any]:
    video_id = api.ready_file("lip_sync_video", video)
    return api.post(_wire.PATH_LIPSYNC_CREATE, tts_body(video_id, VOICE, callback=callback))


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/hook",
        "http://localhost:{port}/hook",
        "http://[::1]:{port}/hook",
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:{port}/hook",
    ],
)
def test_private_targets_are_refused_by_default(
    sandbox_factory: Factory, stub: Any, tiny_video: Path, target: str
) -> None:
    receiver = Receiver()
    sb = sandbox_factory(renderer=stub, callback_allow_private=False)
    api = Api(sb)
    api.login()
    try:
        port = receiver.url.rsplit(":", 1)[1].split("/")[0]
        answer = _create(api, tiny_video, target.format(port=port))
        assert answer["code"] == _wire.Code.PARAM_ERROR, answer
        assert "callback" in answer["msg"] and "private" in answer["msg"]
        time.sleep(0.3)
        assert receiver.bodies == []
    finally:
        api.close()
        receiver.close()


def test_a_name_resolving_to_a_private_address_is_refused_before_the_post() -> None:
    """A host name passes the text check; the attempt resolves it and refuses."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 80)}
    except OSError:
        pytest.skip(f"this machine's name {name!r} does not resolve")
    if any(ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses):
        pytest.skip(f"this machine's name resolves to a public address {addresses}")
    receiver = Receiver()
    sender = CallbackSender(CallbackPolicy(attempts=1), lambda s: s, allow_private=False)
    outcomes: list[str] = []
    done = threading.Event()
    sender._on_outcome = lambda task, outcome: (outcomes.append(outcome), done.set())
    try:
        port = receiver.url.rsplit(":", 1)[1].split("/")[0]
        sender.send("t1", f"http://{name}:{port}/hook", {"x": 1})
        assert done.wait(10)
        assert outcomes == ["refused"]
        assert receiver.bodies == []
    finally:
        sender.close()
        receiver.close()


@pytest.mark.parametrize(
    "path",
    [
        "/_sandbox/tokens/invalidate",
        "//_sandbox/tokens/invalidate",
        "/%5Fsandbox/tokens/invalidate",
        "/_sandbox",
    ],
)
def test_callbacks_never_reach_the_admin_paths(
    sandbox_factory: Factory, stub: Any, tiny_video: Path, path: str
) -> None:
    """Even with private targets allowed: a tenant cannot invalidate every tenant's tokens."""
    sb = sandbox_factory(renderer=stub, callback_allow_private=True)
    api = Api(sb)
    api.login()
    other = Api(sb, *sb.admin.add_app())
    other.login()
    try:
        answer = _create(api, tiny_video, sb.base_url + path)
        assert answer["code"] == _wire.Code.PARAM_ERROR, answer
        assert "admin" in answer["msg"]
        time.sleep(0.3)
        # The other tenant's token still works.
        assert other.post(_wire.PATH_LIPSYNC_LIST, {})["code"] == 0
    finally:
        api.close()
        other.close()


def test_allowed_private_target_still_gets_its_callback(
    sandbox_factory: Factory, stub: Any, tiny_video: Path
) -> None:
    receiver = Receiver()
    sb = sandbox_factory(renderer=stub, callback_allow_private=True)
    api = Api(sb)
    api.login()
    try:
        answer = _create(api, tiny_video, receiver.url)
        assert answer["code"] == 0
        assert receiver.wait(1)[0]["data"]["id"] == answer["data"]
    finally:
        api.close()
        receiver.close()


class _Held:
    """A receiver whose answers wait until released: a slow tenant's target."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.arrived = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.arrived += 1
                outer.release.wait(30)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/slow"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def test_a_slow_target_does_not_delay_callbacks_to_another() -> None:
    slow, fast = _Held(), Receiver()
    sender = CallbackSender(
        CallbackPolicy(attempts=1, timeout_s=30, senders=4), lambda s: s, allow_private=True
    )
    try:
        for n in range(12):  # more than every sender: a backlog on the slow target
            sender.send(f"slow-{n}", slow.url, {"n": n})
        deadline = time.monotonic() + 10
        while slow.arrived < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        sender.send("fast", fast.url, {"fast": True})
        # Arrives while every slow answer is still held.
        assert fast.wait(1, timeout=10) == [{"fast": True}]
        assert slow.arrived <= 2, "one target took more than half the senders"
    finally:
        slow.close()
        sender.close()
        fast.close()
