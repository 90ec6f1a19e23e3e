"""The seed's four scripts, run exactly as the seed's examples: `python skills/.../NAME ...`,
base URL and credentials folder from the environment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import REPO, VOICE_ZH, Env


def test_seed_example_tts(env: Env) -> None:
    # VIDEO_FILE_ID=$(python skills/chanjing-avatar/scripts/upload_file --service ... --file ...)
    r = env.script("upload_file", "--service", "lip_sync_video", "--file", str(env.video),
                   cwd=REPO)
    assert r.returncode == 0, r.stderr
    video_file_id = r.out
    assert video_file_id and len(r.stdout.splitlines()) == 1

    r = env.script("create_task", "--video-file-id", video_file_id,
                   "--text", "君不见黄河之水天上来", "--audio-man-id", VOICE_ZH, cwd=REPO)
    assert r.returncode == 0, r.stderr
    task_id = r.out
    assert len(r.stdout.splitlines()) == 1

    r = env.script("poll_task", "--id", task_id, cwd=REPO, allow_secret=True)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 1
    assert r.out.startswith(env.base_url) and task_id in r.out


def test_seed_example_audio_and_options(env: Env) -> None:
    v = env.script("upload_file", "--service", "lip_sync_video", "--file", str(env.video))
    a = env.script("upload_file", "--service", "lip_sync_audio", "--file", str(env.audio))
    assert v.returncode == 0 and a.returncode == 0, v.stderr + a.stderr
    r = env.script("create_task", "--video-file-id", v.out, "--audio-file-id", a.out,
                   "--screen-width", "640", "--screen-height", "360", "--model", "1",
                   "--volume", "80", "--backway", "2", "--drive-mode", "random")
    assert r.returncode == 0, r.stderr
    assert len(r.out) == 32


def test_get_upload_url_prints_json(env: Env) -> None:
    r = env.script("get_upload_url", "--service", "lip_sync_video", "--name", "1.mp4",
                   allow_secret=True)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert set(data) == {"sign_url", "mime_type", "file_id"}
    assert data["mime_type"] == "video/mp4" and "Signature=" in data["sign_url"]


def test_seed_scripts_errors(env: Env, tmp_path: Path) -> None:
    r = env.script("upload_file", "--service", "lip_sync_video",
                   "--file", str(tmp_path / "missing.mp4"))
    assert r.returncode == 2 and r.stdout == "" and "upload_file: error:" in r.stderr
    r = env.script("create_task", "--video-file-id", "abcdef", "--text", "hi")
    assert r.returncode == 2 and "--audio-man-id" in r.stderr
    r = env.script("create_task", "--video-file-id", "abcdef", "--text", "hi",
                   "--audio-man-id", VOICE_ZH, "--speed", "5")
    assert r.returncode == 2 and "speed" in r.stderr
    r = env.script("poll_task")
    assert r.returncode == 2
    environ = env.environ(CHANJING_OPENAPI_CREDENTIALS_DIR=str(tmp_path / "none"))
    r = env.script("poll_task", "--id", "0" * 32, env=environ)
    assert r.returncode == 3 and r.stdout == ""


def test_seed_scripts_are_executable() -> None:
    for name in ("get_upload_url", "upload_file", "create_task", "poll_task"):
        path = REPO / "skills" / "chanjing-avatar" / "scripts" / name
        assert os.access(path, os.X_OK), name
        assert path.read_text().startswith("#!/usr/bin/env python3")


def test_seed_script_with_a_python_that_lacks_the_package(env: Env) -> None:
    # `python skills/...` with a system python: the script re-runs itself with the checkout's venv.
    import shutil
    import subprocess
    import sys

    venv = REPO / ".venv"
    if Path(sys.prefix).resolve() != venv.resolve():
        pytest.skip("the tests do not run from this checkout's .venv")
    candidates = (shutil.which("python3"), "/usr/bin/python3", "/usr/local/bin/python3")
    system = next((p for p in candidates if p and Path(p).exists()
                   and subprocess.run([p, "-c", "import chanjing_avatar"],
                                      capture_output=True).returncode != 0), None)
    if system is None:
        pytest.skip("no python without the package on this machine")
    script = REPO / "skills" / "chanjing-avatar" / "scripts" / "get_upload_url"
    r = env.run("--service", "lip_sync_audio", "--name", "a.wav", exe=[system, str(script)],
                allow_secret=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["mime_type"] == "audio/wav"


def test_create_task_renders_at_the_source_video_size(env: Env, tmp_path: Path) -> None:
    from .conftest import write_mp4

    video = write_mp4(tmp_path / "small.mp4", 96)
    v = env.script("upload_file", "--service", "lip_sync_video", "--file", str(video))
    assert v.returncode == 0, v.stderr
    sized = {}
    for extra in ((), ("--video", str(video)), ("--screen-width", "640", "--screen-height",
                                                 "360")):
        r = env.script("create_task", "--video-file-id", v.out, "--text", "hi",
                       "--audio-man-id", VOICE_ZH, *extra)
        assert r.returncode == 0, r.stderr
        params = env.sb.store.get_task(r.out).params  # type: ignore[attr-defined]
        sized[extra[:1]] = (params["screen_width"], params["screen_height"])
    assert sized == {(): (96, 96), ("--video",): (96, 96), ("--screen-width",): (640, 360)}


def test_seed_script_errors_name_only_their_own_settings(env: Env) -> None:
    environ = env.environ(CHANJING_OPENAPI_BASE_URL="http://127.0.0.1:9")
    r = env.script("poll_task", "--id", "0" * 32, env=environ)
    assert r.returncode == 1 and r.stdout == "", r.stderr
    assert "CHANJING_OPENAPI_BASE_URL" in r.stderr and "--base-url" not in r.stderr, r.stderr
    for name in ("get_upload_url", "upload_file", "create_task", "poll_task"):
        r = env.script(name, "--help")
        assert r.returncode == 0 and "--base-url" not in r.stdout, (name, r.stdout)
