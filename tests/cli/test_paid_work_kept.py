"""A paid task is never lost: unwritable outputs are refused before paying, a failure after the
create names the task and the command that gets its video, SIGTERM acts like Ctrl-C, and an
interrupted download keeps what it needs to go on.

Real processes of the installed command, real signals, real read-only and full file systems
(tmpfs mounts: root only; skipped with the reason otherwise).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from .conftest import CLI, VOICE_EN, Env, default_signals

pytestmark = pytest.mark.timeout(180)


def _start(env: Env, *args: str, environ: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([str(CLI), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=environ or env.environ(), cwd=env.home,
                            preexec_fn=default_signals)


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def _task_ids(env: Env) -> set[str]:
    return {t["id"] for t in env.sb.admin.tasks()}  # type: ignore[attr-defined]


@contextlib.contextmanager
def _tmpfs(where: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"mount -t tmpfs refused: {p.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _new_tasks_after(env: Env, before: set[str], proc: subprocess.Popen[str]) -> set[str]:
    deadline = time.monotonic() + 60
    new: set[str] = set()
    while not new:
        assert time.monotonic() < deadline and proc.poll() is None, "no task was created"
        time.sleep(0.1)
        new = _task_ids(env) - before
    return new


# -- an output that cannot be written: refused before anything is uploaded or paid for -------------

def test_make_into_a_path_under_a_file_is_refused_before_uploading(env: Env,
                                                                  tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    uploads = env.sb.admin.count("create_upload_url")  # type: ignore[attr-defined]
    tasks = _task_ids(env)
    for target in (blocker / "out.mp4", blocker / "sub" / "out.mp4"):
        r = env.run("make", "--video", str(env.video), "--text", "hi", "--voice", VOICE_EN,
                    "-o", str(target))
        assert r.returncode == 2, r.stderr
        assert str(blocker) in r.stderr and ".part" not in r.stderr, r.stderr
    assert env.sb.admin.count("create_upload_url") == uploads  # type: ignore[attr-defined]
    assert _task_ids(env) == tasks


def test_make_and_download_into_a_read_only_mount_are_refused_first(
        env: Env, tmp_path: Path, done_task: str) -> None:
    with _tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
        uploads = env.sb.admin.count("create_upload_url")  # type: ignore[attr-defined]
        tasks = _task_ids(env)
        r = env.run("make", "--video", str(env.video), "--text", "hi", "--voice", VOICE_EN,
                    "-o", str(ro / "out.mp4"))
        assert r.returncode == 2, r.stderr
        line = _one_error_line(r.stderr)
        assert f"cannot write in {ro}" in line and ".part" not in line, line
        assert env.sb.admin.count("create_upload_url") == uploads  # type: ignore[attr-defined]
        assert _task_ids(env) == tasks  # nothing paid for
        r = env.run("download", done_task, "-o", str(ro / "sub" / "v.mp4"))
        assert r.returncode == 2 and f"cannot write in {ro}" in r.stderr, r.stderr


def test_disk_full_after_the_create_names_the_task_and_the_resume_command(
        env: Env, tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "full", "256k") as full:
        # Full to the last byte: a new (empty) file can still be made, no byte written.
        filler = full / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        out = full / "out.mp4"
        before = _task_ids(env)
        r = env.run("make", "--video", str(env.video), "--text", "hi", "--voice", VOICE_EN,
                    "-o", str(out))
        assert r.returncode == 1, r.stderr
        line = _one_error_line(r.stderr)
        (task_id,) = _task_ids(env) - before
        assert f"disk full at {out}" in line, line
        resume = f"chanjing-avatar download {task_id} -o {out}"
        assert f"task {task_id} was created" in line and resume in line, line
        assert not out.exists()
        # Room again: the printed command fetches the video; no second task.
        filler.unlink()
        r = env.run(*resume.split()[1:])
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == env.video.read_bytes()  # the stub renders the input
        assert _task_ids(env) - before == {task_id}


# -- SIGTERM is Ctrl-C ----------------------------------------------------------------------------

def test_sigterm_during_make_prints_the_task_and_how_to_resume(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    before = _task_ids(env)
    proc = _start(env, "make", "--video", str(env.video), "--text", "SLOW", "--voice", VOICE_EN,
                  "-o", str(out))
    (task_id,) = _new_tasks_after(env, before, proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, (proc.returncode, stderr)
    assert stdout == ""
    line = _one_error_line(stderr)
    assert f"chanjing-avatar wait {task_id}" in line, line
    assert f"chanjing-avatar download {task_id} -o {out}" in line, line
    assert not out.exists()


def test_sigterm_during_wait_prints_the_resume_command(env: Env, video_file_id: str) -> None:
    r = env.run("create", "--video-file-id", video_file_id, "--text", "SLOW", "--voice", VOICE_EN)
    assert r.returncode == 0, r.stderr
    task_id = r.out
    # The wait's first look at the task is held by the server: the signal comes meanwhile.
    env.sb.admin.add_fault("lipsync_detail", "delay:20", times=1)  # type: ignore[attr-defined]
    before = env.sb.admin.count("lipsync_detail")  # type: ignore[attr-defined]
    proc = _start(env, "wait", task_id)
    deadline = time.monotonic() + 30
    while env.sb.admin.count("lipsync_detail") == before:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline and proc.poll() is None, "wait never started"
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, (proc.returncode, stderr)
    assert f"chanjing-avatar wait {task_id}" in _one_error_line(stderr)


# -- Ctrl-C in upload and download ----------------------------------------------------------------

@pytest.mark.usefixtures("as_background_job")
def test_ctrl_c_during_upload_says_what_happened(env: Env) -> None:
    env.sb.admin.add_fault("upload", "delay:20", times=1)  # type: ignore[attr-defined]
    before = env.sb.admin.count("upload")  # type: ignore[attr-defined]
    proc = _start(env, "upload", str(env.video), "--service", "lip_sync_video")
    deadline = time.monotonic() + 30
    while env.sb.admin.count("upload") == before:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline and proc.poll() is None, "upload never started"
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    line = _one_error_line(stderr)
    assert f"upload of {env.video} did not finish" in line and "run the same command" in line
    assert stdout == ""


class _SlowStore:
    """Stands between the command and the sandbox's result files, trickling bytes out, so a
    download can be interrupted in the middle of its body. ``upstream`` is set once the sandbox
    (which names this address in its video URLs) runs."""

    def __init__(self, chunk: int = 16 * 1024, pause: float = 0.05) -> None:
        store = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                store.ranges.append(self.headers.get("range"))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("range", "if-range")}
                with httpx.stream("GET", store.upstream + self.path, headers=headers) as r:
                    self.send_response(r.status_code)
                    for k in ("content-type", "content-length", "content-range", "etag",
                              "last-modified", "accept-ranges"):
                        if k in r.headers:
                            self.send_header(k, r.headers[k])
                    self.end_headers()
                    with contextlib.suppress(OSError):
                        for block in r.iter_bytes(chunk):
                            self.wfile.write(block)
                            self.wfile.flush()
                            time.sleep(pause)

            def do_PUT(self) -> None:  # uploads pass straight through
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "content-md5")}
                r = httpx.put(store.upstream + self.path, content=body, headers=headers)
                self.send_response(r.status_code)
                for k in ("content-type", "etag"):
                    if k in r.headers:
                        self.send_header(k, r.headers[k])
                self.send_header("content-length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            def log_message(self, *a: object) -> None:
                pass

        self.upstream = ""
        self.ranges: list[str | None] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.usefixtures("as_background_job")
def test_ctrl_c_during_download_keeps_the_part_and_the_next_run_goes_on(tmp_path: Path) -> None:
    from batch.support import VOICE, fast_renderer, make_video
    from chanjing_avatar.sandbox import Sandbox, SandboxConfig

    size = 2 * 1024 * 1024
    proxy = _SlowStore()
    config = SandboxConfig(data_dir=tmp_path / "sb", renderer=fast_renderer(0.05, size),
                           admin=True, file_sync_delay_s=0.0, rate_limits_enabled=False,
                           public_url=proxy.url)
    try:
        with Sandbox(config) as sb:
            proxy.upstream = sb.base_url
            home = tmp_path / "home"
            home.mkdir()
            environ = {k: v for k, v in os.environ.items() if not k.startswith("CHANJING_")}
            environ.update(CHANJING_APP_ID=sb.app_id, CHANJING_SECRET_KEY=sb.secret_key,
                           CHANJING_OPENAPI_BASE_URL=sb.base_url, HOME=str(home),
                           CHANJING_OPENAPI_CREDENTIALS_DIR=str(home / "cred"))

            def cli(*args: str) -> subprocess.CompletedProcess[str]:
                return subprocess.run([str(CLI), *args], env=environ, capture_output=True,
                                      text=True, timeout=60)

            video = make_video(tmp_path / "v.mp4")
            run = cli("upload", str(video), "--service", "lip_sync_video")
            assert run.returncode == 0, run.stderr
            run = cli("create", "--video-file-id", run.stdout.strip(), "--text", "hi",
                      "--voice", VOICE)
            assert run.returncode == 0, run.stderr
            task_id = run.stdout.strip()
            run = cli("wait", task_id)
            assert run.returncode == 0, run.stderr
            out = tmp_path / "got" / "video.mp4"
            part = out.with_name(".video.mp4.part")
            proc = subprocess.Popen([str(CLI), "download", task_id, "-o", str(out)],
                                    env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, preexec_fn=default_signals)
            deadline = time.monotonic() + 30
            while not (part.exists() and part.stat().st_size >= 64 * 1024):
                assert time.monotonic() < deadline and proc.poll() is None, "no bytes came"
                time.sleep(0.02)
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=30)
            assert proc.returncode == 130, stderr
            line = _one_error_line(stderr)
            assert "which are kept" in line and f"download {task_id} -o {out}" in line, line
            kept = part.stat().st_size
            assert 0 < kept < size
            run = cli("--json", "download", task_id, "-o", str(out))
            assert run.returncode == 0, run.stderr
            result = json.loads(run.stdout)
            assert result["resumed_from"] >= kept, result
            assert out.stat().st_size == size and not part.exists()
            assert proxy.ranges[-1] == f"bytes={result['resumed_from']}-"
    finally:
        proxy.close()
