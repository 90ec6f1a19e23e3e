"""``wait``/``make --callback-listen``: the sandbox POSTs the task's callback to the URL given at
create time; the command's own receiver confirms it and ends the wait long before the slow
safety-net poll (60 s by default) would have."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from .conftest import VOICE_EN, Env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _details(env: Env) -> int:
    return int(env.sb.admin.count("lipsync_detail"))  # type: ignore[attr-defined]


def test_wait_ends_on_the_callback(env: Env, video_file_id: str, tmp_path: Path) -> None:
    from .conftest import holding

    port = _free_port()
    with holding():
        r = env.run("create", "--video-file-id", video_file_id, "--text", "HOLD SLOW",
                    "--voice", VOICE_EN, "--callback-url", f"http://127.0.0.1:{port}/cb")
        assert r.returncode == 0, r.stderr
        task_id = r.out

        # Not finished yet: download says what to do, and writes nothing.
        out = tmp_path / "early.mp4"
        r = env.run("download", task_id, "-o", str(out))
        assert r.returncode == 2, r.stderr
        assert "no video yet" in r.stderr and f"chanjing-avatar wait {task_id}" in r.stderr
        assert not out.exists() and not list(tmp_path.glob(".*.part"))
    # Released, it renders for ~4 s more.

    before = _details(env)
    started = time.monotonic()
    r = env.run("wait", task_id, "--callback-listen", str(port), "--json")  # safety poll: 60 s
    elapsed = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    assert r.json()["status"] == 20  # type: ignore[index]
    # The SLOW task renders in ~4 s; only the callback can have ended the wait this soon.
    assert elapsed < 30, elapsed
    # The first look, the receiver's confirmation, the waiter's look after it: no polling.
    assert _details(env) - before <= 4, _details(env) - before


def test_wait_without_a_callback_falls_back_to_the_safety_poll(env: Env,
                                                               video_file_id: str) -> None:
    from .conftest import holding

    # Created without a callback URL: a "lost" callback. The safety poll still finishes the wait.
    with holding():
        r = env.run("create", "--video-file-id", video_file_id, "--text", "HOLD SLOW",
                    "--voice", VOICE_EN)
        assert r.returncode == 0, r.stderr
        task_id = r.out
        r = env.run("wait", task_id, "--callback-listen", "127.0.0.1:0", "--safety-poll",
                    "0.1", "--timeout", "0.5")
        assert r.returncode == 4 and "may still finish" in r.stderr, r.stderr
    # Released, it takes ~4 s more: the next wait polls more than once.
    before = _details(env)
    r = env.run("wait", task_id, "--callback-listen", "0", "--safety-poll", "1")
    assert r.returncode == 0 and "succeeded" in r.stdout, r.stderr
    assert _details(env) - before >= 2  # polled, at the safety-net rate


def test_make_with_the_receiver(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    before = _details(env)
    started = time.monotonic()
    # Port 0: a free one; the callback URL sent with the create is derived from it.
    r = env.run("make", "--video", str(env.video), "--text", "SLOW", "--voice", VOICE_EN,
                "-o", str(out), "--callback-listen", "127.0.0.1:0", "--json")
    elapsed = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    data = r.json()
    assert data["path"] == str(out) and data["bytes"] == out.stat().st_size  # type: ignore[index]
    assert data["duration"] == 1.0  # type: ignore[index]
    assert elapsed < 30, elapsed
    assert _details(env) - before <= 4, _details(env) - before


def test_make_with_the_receiver_reports_a_failed_task(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    r = env.run("make", "--video", str(env.video), "--text", "FAIL", "--voice", VOICE_EN,
                "-o", str(out), "--callback-listen", "0")
    assert r.returncode == 1 and "told to fail" in r.stderr, r.stderr
    assert not out.exists()


def test_callback_listen_bad_input_is_exit_2(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    make = ["make", "--video", str(env.video), "--text", "hi", "--voice", VOICE_EN, "-o", str(out)]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cases = [
            (["wait", "0" * 32, "--callback-listen", f"127.0.0.1:{port}"], "cannot listen"),
            ([*make, "--callback-listen", f"127.0.0.1:{port}"], "cannot listen"),
            (["wait", "0" * 32, "--callback-listen", "nope"], "[HOST:]PORT"),
            (["wait", "0" * 32, "--callback-listen", "70000"], "0-65535"),
            (["wait", "0" * 32, "--safety-poll", "5"], "--callback-listen"),
            ([*make, "--callback-listen", "0.0.0.0:0"], "--callback-url"),
        ]
        for args, expected in cases:
            before = len(env.sb.admin.tasks())  # type: ignore[attr-defined]
            r = env.run(*args)
            assert r.returncode == 2, (args, r.stderr)
            assert expected in r.stderr, (args, r.stderr)
            assert len(env.sb.admin.tasks()) == before, args  # type: ignore[attr-defined]
    assert not out.exists()
