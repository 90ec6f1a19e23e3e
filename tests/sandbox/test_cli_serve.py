"""``chanjing-avatar sandbox serve``: starts, prints working credentials, stops on SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from chanjing_avatar import _wire


def test_serve_prints_working_credentials(tmp_path: Path) -> None:
    env = {**os.environ, "CHANJING_SANDBOX_SECRET_KEY": "s3cret-from-env"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chanjing_avatar",
            "sandbox",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
            "--app-id",
            "cli-app",
            "--renderer",
            "passthrough",
            "--json",
            "--access-log",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        info = json.loads(line)
        assert info["base_url"].startswith("http://127.0.0.1:")
        assert (info["app_id"], info["secret_key"]) == ("cli-app", "s3cret-from-env")
        answer = httpx.post(
            info["base_url"] + _wire.PATH_ACCESS_TOKEN,
            json={"app_id": "cli-app", "secret_key": "s3cret-from-env"},
        ).json()
        assert answer["code"] == 0
        token = answer["data"]["access_token"]
        upload = httpx.get(
            info["base_url"] + _wire.PATH_CREATE_UPLOAD_URL,
            params={"service": "lip_sync_video", "name": "a.mp4"},
            headers={"access_token": token},
        ).json()["data"]
        assert (
            httpx.put(
                upload["sign_url"], content=b"x", headers={"Content-Type": "text/plain"}
            ).status_code
            == 403
        )
        assert httpx.get(info["base_url"] + "/_sandbox/stats").status_code == 404
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode in (0, 130), err  # 130: the conventional exit after SIGINT
    # The access log names the requests but never the secrets in headers or signed URLs.
    assert "/open/v1/access_token" in err
    for secret in ("s3cret-from-env", token, "Signature="):
        assert secret not in err
