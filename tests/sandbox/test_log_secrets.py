"""The log of ``sandbox serve`` never shows a callback URL's query string (its tokens)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from chanjing_avatar import _wire

from .api import Api, tts_body
from .receiver import Receiver


def test_serve_log_never_prints_callback_query_strings(tmp_path: Path, tiny_video: Path) -> None:
    receiver = Receiver()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chanjing_avatar", "sandbox", "serve", "--port", "0",
         "--data-dir", str(tmp_path / "data"), "--renderer", "passthrough", "--json",
         "--sync-delay", "0", "--allow-private-callbacks", "--access-log"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    secret = "cb-secret-0123456789"
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        api = Api(cast(Any, SimpleNamespace(**info)))
        api.login()
        video = api.ready_file("lip_sync_video", tiny_video)
        voice = api.get(_wire.PATH_LIST_COMMON_AUDIO)["data"]["list"][0]["id"]
        api.create(tts_body(video, voice, callback=f"{receiver.url}?token={secret}"))
        assert receiver.wait(1)[0]["code"] == 0
        api.close()
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        receiver.close()
    assert "/open/v1/video_lip_sync/create" in err  # the log is on
    assert secret not in err and "token=" not in err, err
