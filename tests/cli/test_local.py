"""``--local``: the background local sandbox the commands share (no account, no network).

Real processes: the commands, and the server the first of them starts in the background. The
renderer is the fast passthrough one (CHANJING_LOCAL_RENDERER); ``bash scripts/demo`` runs the
real one.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import CLI, Env, popen


def _servers(local_dir: Path) -> list[int]:
    """The pids of the background servers of ``local_dir`` (from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if (b"chanjing_avatar.cli._local_server" in cmd and os.fsencode(local_dir) in cmd
                and state != "Z"):
            pids.append(int(entry.name))
    return pids


def _wait_gone(local_dir: Path, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while _servers(local_dir):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture
def local_dir(env: Env, tmp_path: Path) -> Iterator[Path]:
    # Under the runs' HOME, so that the output checks know the local sandbox's secrets.
    path = env.home / f"local-{tmp_path.name}"
    yield path
    # No orphan: whatever a test left running is stopped, and must stop.
    r = env.run("local", "stop", env=env.environ(CHANJING_LOCAL_DIR=str(path)))
    assert r.returncode == 0, r.stderr
    assert _wait_gone(path, 30), _servers(path)


@pytest.fixture
def local_env(env: Env, local_dir: Path) -> dict[str, str]:
    pytest.importorskip("skimage")
    return env.environ(
        CHANJING_LOCAL_DIR=str(local_dir),
        CHANJING_LOCAL_RENDERER="passthrough",
        CHANJING_OPENAPI_BASE_URL="http://127.0.0.1:9",  # --local must not need it
        CHANJING_OPENAPI_CREDENTIALS_DIR=str(local_dir.with_name(local_dir.name + "-nocreds")),
    )


def test_make_local_on_a_fresh_machine(env: Env, local_env: dict[str, str],
                                       local_dir: Path, tmp_path: Path) -> None:
    import av

    out = tmp_path / "demo.mp4"
    r = env.run("make", "--local", "--text", "你好，欢迎使用蝉镜数字人。", "-o", str(out),
                env=local_env, timeout=180)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # not a terminal: no notes, no renderer noise
    assert r.out.startswith(str(out))
    with av.open(str(out)) as f:
        kinds = {s.type for s in f.streams}
        assert next(f.decode(video=0)) is not None
    assert kinds == {"video", "audio"}

    # Step by step, one process each: the task outlives the process that created it.
    demo = local_dir / "demo" / "demo-face.mp4"
    assert demo.exists()
    r = env.run("create", "--local", "--video", str(demo), "--text", "Hello", env=local_env,
                timeout=120)
    assert r.returncode == 0, r.stderr
    task_id = r.out
    r = env.run("wait", "--local", task_id, "--json", env=local_env, timeout=120)
    assert r.returncode == 0, r.stderr
    out2 = tmp_path / "step.mp4"
    r = env.run("download", "--local", task_id, "-o", str(out2), env=local_env, timeout=120)
    assert r.returncode == 0 and out2.stat().st_size > 0, r.stderr


def test_local_bad_input_fails_before_starting(env: Env, local_env: dict[str, str],
                                               local_dir: Path, tmp_path: Path) -> None:
    r = env.run("make", "--local", "--video", str(tmp_path / "none.mp4"), "--text", "hi",
                "-o", str(tmp_path / "o.mp4"), env=local_env)
    assert r.returncode == 2 and "not found" in r.stderr
    assert not local_dir.exists()


def _server_state(local_dir: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((local_dir / "server.json").read_text())
    return data


def test_tasks_go_on_between_local_commands(env: Env, local_env: dict[str, str],
                                            local_dir: Path, tmp_path: Path) -> None:
    import httpx

    r = env.run("create", "--local", "--video", str(env.video), "--text", "Hello there",
                env=local_env, timeout=120)
    assert r.returncode == 0, r.stderr
    task_id = r.out
    assert len(_servers(local_dir)) == 1  # the server outlived the command
    assert (local_dir / "server.json").stat().st_mode & 0o777 == 0o600
    # No command runs meanwhile: the task still gets done, and status shows it.
    deadline = time.monotonic() + 90
    while True:
        r = env.run("status", "--local", task_id, "--json", env=local_env)
        assert r.returncode == 0, r.stderr
        task = r.json()
        assert "restart" not in str(task["msg"]), task  # type: ignore[index]
        if task["status"] == 20 or time.monotonic() > deadline:  # type: ignore[index]
            break
        time.sleep(0.5)
    assert task["status"] == 20 and task["progress"] == 100, task  # type: ignore[index]
    # The printed URL points at the running server.
    got = httpx.get(str(task["video_url"]), timeout=30)  # type: ignore[index]
    assert got.status_code == 200 and len(got.content) > 0
    r = env.run("local", "status", "--json", env=local_env)
    assert r.returncode == 0 and r.json()["running"] is True  # type: ignore[index]
    assert r.json()["pid"] == _servers(local_dir)[0], r.out  # type: ignore[index]


def test_two_local_commands_at_once_share_one_server(env: Env, local_env: dict[str, str],
                                                     local_dir: Path) -> None:
    procs = [popen([str(CLI), "voices", "--local", "--json"], env=local_env, cwd=env.home)
             for _ in range(3)]
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0 and json.loads(stdout), stderr
    assert _servers(local_dir) == [_server_state(local_dir)["pid"]]


def test_a_crashed_local_server_is_started_again(env: Env, local_env: dict[str, str],
                                                 local_dir: Path) -> None:
    r = env.run("voices", "--local", env=local_env, timeout=120)
    assert r.returncode == 0, r.stderr
    (first,) = _servers(local_dir)
    os.kill(first, signal.SIGKILL)
    assert _wait_gone(local_dir, 10)
    r = env.run("voices", "--local", "--json", env=local_env, timeout=120)
    assert r.returncode == 0 and r.json(), r.stderr
    (second,) = _servers(local_dir)
    assert second != first and _server_state(local_dir)["pid"] == second


def test_an_unused_local_server_stops_by_itself(env: Env, local_env: dict[str, str],
                                                local_dir: Path) -> None:
    quick = {**local_env, "CHANJING_LOCAL_IDLE": "2"}
    r = env.run("voices", "--local", env=quick, timeout=120)
    assert r.returncode == 0, r.stderr
    assert _servers(local_dir)
    assert _wait_gone(local_dir, 30), "the idle server did not stop"
    assert not (local_dir / "server.json").exists()
    r = env.run("local", "status", "--json", env=quick)
    assert r.returncode == 0 and r.json()["running"] is False, r.out  # type: ignore[index]


def test_local_stop(env: Env, local_env: dict[str, str], local_dir: Path) -> None:
    r = env.run("voices", "--local", env=local_env, timeout=120)
    assert r.returncode == 0, r.stderr
    (pid,) = _servers(local_dir)
    r = env.run("local", "stop", "--json", env=local_env)
    assert r.returncode == 0 and r.json() == {  # type: ignore[comparison-overlap]
        "stopped": True, "pid": pid, "data_dir": str(local_dir)}, r.out
    assert not _servers(local_dir)
    r = env.run("local", "status", env=local_env)
    assert r.returncode == 0 and r.out.startswith("not running"), r.out
