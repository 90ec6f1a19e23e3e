"""Every subcommand of the installed ``chanjing-avatar`` against the sandbox, with exit codes."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from .conftest import RENDERER, VOICE_EN, VOICE_ZH, Env

# -- auth ---------------------------------------------------------------------------------------


def test_auth_set_reads_secret_from_stdin_and_verifies(env: Env, tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    r = env.run("auth", "set", "--app-id", env.app_id, "--credentials-dir", str(creds),
                input=env.secret_key + "\n")
    assert r.returncode == 0, r.stderr
    path = creds / "credentials.json"
    data = json.loads(path.read_text())
    assert data["app_id"] == env.app_id and data["secret_key"] == env.secret_key
    assert data["access_token"] and data["expire_in"] > 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    env.tokens.add(data["access_token"])

    r = env.run("auth", "status", "--credentials-dir", str(creds), "--json")
    assert r.returncode == 0, r.stderr
    info = r.json()
    assert info["app_id"] == {"value": env.app_id, "source": f"file {path}"}
    assert info["secret_key"]["value"].endswith(f"({len(env.secret_key)} chars)")
    assert info["token"]["expires"] and info["base_url"]["source"].startswith("env ")

    r = env.run("auth", "token", "--credentials-dir", str(creds), allow_secret=True)
    assert r.returncode == 0 and r.out == json.loads(path.read_text())["access_token"]


def test_auth_set_refuses_a_bad_pair_and_writes_nothing(env: Env, tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    r = env.run("auth", "set", "--app-id", env.app_id, "--credentials-dir", str(creds),
                input="not-the-secret\n")
    assert r.returncode == 3, r.stderr
    assert not (creds / "credentials.json").exists()


def test_auth_status_without_credentials_is_exit_3(env: Env, tmp_path: Path) -> None:
    r = env.run("auth", "status", "--credentials-dir", str(tmp_path))
    assert r.returncode == 3
    assert "auth set" in r.stderr
    assert "app_id:" in r.stdout


# -- voices, upload -------------------------------------------------------------------------------


def test_voices_json_and_filters(env: Env) -> None:
    r = env.run("voices", "--json")
    assert r.returncode == 0, r.stderr
    ids = [v["id"] for v in r.json()]  # type: ignore[union-attr]
    assert VOICE_ZH in ids and VOICE_EN in ids
    r = env.run("voices", "--lang", "zh", "--gender", "female", "--search", "晓")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and lines[0].split("\t")[:2] == [VOICE_ZH, "晓晓"]  # pipe: TSV


def test_upload_prints_the_file_id(env: Env, video_file_id: str) -> None:
    assert len(video_file_id) >= 6 and "\n" not in video_file_id
    r = env.run("upload", str(env.audio), "--service", "lip_sync_audio", "--json")
    assert r.returncode == 0, r.stderr
    assert r.json()["status"] == 1  # type: ignore[index]


def test_upload_bad_input_is_exit_2(env: Env, tmp_path: Path) -> None:
    r = env.run("upload", str(tmp_path / "missing.mp4"), "--service", "lip_sync_video")
    assert r.returncode == 2 and "not found" in r.stderr
    wrong = tmp_path / "face.avi"
    wrong.write_bytes(b"x" * 10)
    r = env.run("upload", str(wrong), "--service", "lip_sync_video")
    assert r.returncode == 2 and ".avi" in r.stderr
    r = env.run("upload", str(env.video), "--service", "nope")
    assert r.returncode == 2 and "unknown service" in r.stderr


# -- create, status, list, wait, download -------------------------------------------------


def test_create_from_local_files_with_audio(env: Env) -> None:
    r = env.run("create", "--video", str(env.video), "--audio", str(env.audio), "--json")
    assert r.returncode == 0, r.stderr
    data = r.json()
    assert data["task_id"] and data["audio_file_id"]  # type: ignore[index]


def test_create_bad_input_is_exit_2(env: Env, video_file_id: str, tmp_path: Path) -> None:
    base = ["create", "--video-file-id", video_file_id]
    cases = [
        (["--text", "   ", "--voice", VOICE_ZH], "--text: must not be empty"),
        (["--text", "hi", "--voice", VOICE_ZH, "--speed", "3"], "--speed"),
        (["--text", "hi"], "--voice is required"),
        (["--text", "hi", "--voice", VOICE_ZH, "--audio-file-id", video_file_id], "not both"),
        (["--text-file", str(tmp_path / "nope.txt"), "--voice", VOICE_ZH], "not found"),
    ]
    for extra, expected in cases:
        r = env.run(*base, *extra)
        assert r.returncode == 2, (extra, r.stderr)
        assert expected in r.stderr, (extra, r.stderr)


def test_create_unknown_voice_is_exit_2(env: Env, video_file_id: str) -> None:
    r = env.run("create", "--video-file-id", video_file_id, "--text", "hi",
                "--voice", "f" * 32, "--verbose")
    assert r.returncode == 2, r.stderr
    assert "`chanjing-avatar voices`" in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_unknown_voice_is_found_before_the_video_is_uploaded(env: Env, tmp_path: Path) -> None:
    admin = env.sb.admin  # type: ignore[attr-defined]
    uploads, creates = admin.count("upload"), admin.count("lipsync_create")
    for command in (["create", "--video", str(env.video)],
                    ["make", "--video", str(env.video), "-o", str(tmp_path / "o.mp4")]):
        r = env.run(*command, "--text", "hi", "--voice", "f" * 32)
        assert r.returncode == 2, r.stderr
        assert r.stderr == (f"error: --voice {'f' * 32}: no such voice; "
                            "`chanjing-avatar voices` lists them\n")
    assert admin.count("upload") == uploads and admin.count("lipsync_create") == creates


def test_status_list_wait_download(env: Env, done_task: str, tmp_path: Path) -> None:
    r = env.run("status", done_task, "--json")
    assert r.returncode == 0, r.stderr
    task = r.json()
    assert task["status"] == 20 and task["status_name"] == "succeeded"  # type: ignore[index]
    r = env.run("status", done_task)
    assert "succeeded" in r.stdout

    r = env.run("list", "--page", "1", "--page-size", "2", "--json")
    assert r.returncode == 0, r.stderr
    page = r.json()
    assert page["page"] == 1 and len(page["tasks"]) <= 2  # type: ignore[index,arg-type]
    r = env.run("--json", "list", "--all")
    assert done_task in [t["id"] for t in r.json()["tasks"]]  # type: ignore[index]

    r = env.run("wait", done_task)
    assert r.returncode == 0 and "succeeded" in r.stdout

    out = tmp_path / "out.mp4"
    r = env.run("download", done_task, "-o", str(out), "--preview")
    assert r.returncode == 0, r.stderr
    assert r.out == str(out) and out.stat().st_size == env.video.stat().st_size
    assert out.with_suffix(".jpg").exists()
    r = env.run("download", done_task, "-o", str(out))
    assert r.returncode == 2 and "--overwrite" in r.stderr
    r = env.run("download", done_task, "-o", str(out), "--overwrite", "--json")
    assert r.returncode == 0 and r.json()["bytes"] == out.stat().st_size  # type: ignore[index]


def test_unknown_task_is_an_error(env: Env, tmp_path: Path) -> None:
    r = env.run("status", "0" * 32)
    assert r.returncode == 2 and "no such task" in r.stderr, r.stderr
    r = env.run("download", "0" * 32, "-o", str(tmp_path / "x.mp4"))
    assert r.returncode == 2 and not (tmp_path / "x.mp4").exists(), r.stderr
    assert "chanjing-avatar wait" not in r.stderr  # unknown, not unfinished


def test_failed_task_is_exit_1(env: Env, video_file_id: str, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    r = env.run("make", "--video", str(env.video), "--text", "FAIL", "--voice", VOICE_EN,
                "-o", str(out))
    assert r.returncode == 1 and "told to fail" in r.stderr
    assert not out.exists()


def test_billing_failure_is_exit_1(env: Env, video_file_id: str) -> None:
    env.sb.admin.add_fault("lipsync_create", "task_failure", times=1)  # type: ignore[attr-defined]
    r = env.run("create", "--video-file-id", video_file_id, "--text", "hi", "--voice", VOICE_EN)
    assert r.returncode == 0, r.stderr
    r = env.run("wait", r.out)
    assert r.returncode == 1 and "billing" in r.stderr


def test_wait_timeout_is_exit_4(env: Env, video_file_id: str) -> None:
    from .conftest import holding

    with holding():
        r = env.run("create", "--video-file-id", video_file_id, "--text", "HOLD", "--voice",
                    VOICE_EN)
        assert r.returncode == 0, r.stderr
        task_id = r.out
        r = env.run("wait", task_id, "--timeout", "0.5")
        assert r.returncode == 4 and "may still finish" in r.stderr, r.stderr
    r = env.run("wait", task_id, "--timeout", "60")
    assert r.returncode == 0, r.stderr


def test_make_timeout_is_exit_4_and_leaves_no_file(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    r = env.run("make", "--video", str(env.video), "--text", "SLOW", "--voice", VOICE_EN,
                "-o", str(out), "--timeout", "0.5")
    assert r.returncode == 4 and "may still finish" in r.stderr, r.stderr
    assert not out.exists() and not list(tmp_path.glob(".*.part"))


def test_outcome_unknown_is_exit_5(env: Env, video_file_id: str, tmp_path: Path) -> None:
    env.sb.admin.add_fault("lipsync_create", "drop", times=1)  # type: ignore[attr-defined]
    r = env.run("create", "--video-file-id", video_file_id, "--text", "hi", "--voice", VOICE_EN)
    assert r.returncode == 5, r.stderr
    assert "chanjing-avatar list" in r.stderr
    out = tmp_path / "out.mp4"
    env.sb.admin.add_fault("lipsync_create", "drop", times=1)  # type: ignore[attr-defined]
    r = env.run("make", "--video", str(env.video), "--text", "hi", "--voice", VOICE_EN,
                "-o", str(out))
    assert r.returncode == 5 and "chanjing-avatar list" in r.stderr, r.stderr
    assert not out.exists()


def test_server_error_is_exit_1(env: Env, video_file_id: str) -> None:
    env.sb.admin.add_fault("list_common_audio", "code:40002")  # type: ignore[attr-defined]
    r = env.run("voices")
    assert r.returncode == 1, r.stderr
    env.sb.admin.add_fault("lipsync_create", "code:50011", times=1)  # type: ignore[attr-defined]
    r = env.run("create", "--video-file-id", video_file_id, "--text", "hi", "--voice", VOICE_EN)
    assert r.returncode == 1, r.stderr


def test_broken_download_is_exit_1(env: Env, done_task: str, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    env.sb.admin.add_fault("download", "http:404", times=20)  # type: ignore[attr-defined]
    r = env.run("download", done_task, "-o", str(out))
    assert r.returncode == 1, r.stderr
    assert not out.exists()


# -- make -----------------------------------------------------------------------------------------


def test_make_one_command(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "out.mp4"
    text = "君不见黄河之水天上来，奔流到海不复回。"
    r = env.run("make", "--video", str(env.video), "--text", text, "--voice", VOICE_ZH,
                "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    data = r.json()
    assert data["path"] == str(out) and data["bytes"] == out.stat().st_size  # type: ignore[index]
    assert data["duration"] == 1.0  # type: ignore[index]
    assert RENDERER.texts[data["task_id"]] == text  # type: ignore[index]
    # Human output: path, duration, size; a long text from a file, untouched.
    text_file = tmp_path / "long.txt"
    text_file.write_text("长文本。" * 300, encoding="utf-8")
    out2 = tmp_path / "out2.mp4"
    r = env.run("make", "--video", str(env.video), "--text-file", str(text_file),
                "--voice", VOICE_ZH, "-o", str(out2))
    assert r.returncode == 0, r.stderr
    assert r.out.startswith(str(out2)) and "1.0 s" in r.out
    assert "长文本。" * 300 in RENDERER.texts.values()


def test_make_bad_input_leaves_no_file(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    cases = [
        (["--video", str(tmp_path / "missing.mp4"), "--text", "hi", "--voice", VOICE_EN], 2),
        (["--video", str(env.video), "--text", "", "--voice", VOICE_EN], 2),
        (["--video", str(env.video), "--text", "hi", "--voice", VOICE_EN, "--speed", "0.1"], 2),
        (["--video", str(env.video), "--text", "hi", "--voice", "f" * 32], 2),
        (["--video", str(env.audio), "--text", "hi", "--voice", VOICE_EN], 2),
    ]
    for extra, code in cases:
        r = env.run("make", *extra, "-o", str(out))
        assert r.returncode == code, (extra, r.stderr)
        assert not out.exists() and not list(tmp_path.glob(".*.part")), extra


def test_bad_and_missing_credentials_are_exit_3(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "credentials.json").write_text(
        json.dumps({"app_id": env.app_id, "secret_key": "wrong-secret-key"})
    )
    r = env.run("make", "--video", str(env.video), "--text", "hi", "--voice", VOICE_EN,
                "-o", str(out), "--credentials-dir", str(wrong), "--verbose")
    assert r.returncode == 3, r.stderr
    assert "wrong-secret-key" not in r.stdout + r.stderr
    corrupted = tmp_path / "corrupted"
    corrupted.mkdir()
    (corrupted / "credentials.json").write_text('{"app_id": "abc", "secret_key": ')
    r = env.run("voices", "--credentials-dir", str(corrupted))
    assert r.returncode == 3 and "not valid JSON" in r.stderr
    r = env.run("voices", "--credentials-dir", str(tmp_path / "empty"))
    assert r.returncode == 3 and "auth set" in r.stderr
    assert not out.exists()


def test_unreachable_server_is_exit_1(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    environ = env.environ(CHANJING_OPENAPI_BASE_URL="http://127.0.0.1:9")
    r = env.run("make", "--video", str(env.video), "--text", "hi", "--voice", VOICE_EN,
                "-o", str(out), env=environ, timeout=120)
    assert r.returncode == 1, r.stderr
    assert "127.0.0.1:9" in r.stderr or "network" in r.stderr
    assert not out.exists()


def test_usage_errors_are_one_line_exit_2(env: Env) -> None:
    for args in (["statu", "x"], ["upload"], ["list", "--page", "0"], ["make", "--bogus"]):
        r = env.run(*args)
        assert r.returncode == 2, (args, r.stderr)
    r = env.run()
    assert r.returncode == 0 and "Usage" in r.stdout  # a bare command asks for its help
    r = env.run("--help")
    assert r.returncode == 0 and "make" in r.stdout and "Exit codes" in r.stdout
    r = env.run("--version", exe=[sys.executable, "-m", "chanjing_avatar"])
    assert r.returncode == 0 and r.out.startswith("chanjing-avatar ")


@pytest.mark.usefixtures("as_background_job")
def test_ctrl_c_during_make_prints_the_resume_commands(env: Env, tmp_path: Path) -> None:
    import signal
    import time

    from .conftest import CLI, popen

    out = tmp_path / "out.mp4"
    before = {t["id"] for t in env.sb.admin.tasks()}  # type: ignore[attr-defined]
    proc = popen(
        [str(CLI), "make", "--video", str(env.video), "--text", "SLOW", "--voice", VOICE_EN,
         "-o", str(out)], env=env.environ(),
    )
    deadline = time.monotonic() + 60
    new: set[str] = set()
    while not new and time.monotonic() < deadline:
        time.sleep(0.2)
        new = {t["id"] for t in env.sb.admin.tasks()} - before  # type: ignore[attr-defined]
    assert new, "make never created its task"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    (task_id,) = new
    assert stdout == ""
    assert stderr.count("\n") == 1 and f"chanjing-avatar wait {task_id}" in stderr
    assert f"chanjing-avatar download {task_id} -o {out}" in stderr
    assert not out.exists()
    r = env.run("wait", task_id, "--timeout", "60")  # the task kept running
    assert r.returncode == 0, r.stderr


def _interrupt_wait(env: Env, video_file_id: str, *extra: str) -> tuple[str, int, str, str]:
    """Ctrl-C a `wait` of a fresh SLOW task (~4 s) once the wait has asked for its detail."""
    import signal
    import time

    from .conftest import CLI, catches_sigint, popen

    r = env.run("create", "--video-file-id", video_file_id, "--text", "SLOW", "--voice",
                VOICE_EN)
    assert r.returncode == 0, r.stderr
    task_id = r.out
    before = env.sb.admin.count("lipsync_detail")  # type: ignore[attr-defined]
    proc = popen([str(CLI), "wait", task_id, *extra], env=env.environ())
    deadline = time.monotonic() + 30
    while (env.sb.admin.count("lipsync_detail") == before  # type: ignore[attr-defined]
           or not catches_sigint(proc)):
        assert time.monotonic() < deadline and proc.poll() is None, "wait never started"
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    return task_id, proc.returncode, stdout, stderr


@pytest.mark.usefixtures("as_background_job")
def test_ctrl_c_during_wait_prints_the_resume_command(env: Env, video_file_id: str) -> None:
    for extra in ((), ("--callback-listen", "0")):
        task_id, code, stdout, stderr = _interrupt_wait(env, video_file_id, *extra)
        assert code == 130, (extra, stderr)
        assert stdout == "" and "Traceback" not in stderr, (extra, stderr)
        assert stderr.count("\n") == 1 and f"chanjing-avatar wait {task_id}" in stderr, stderr


def test_a_model_1_task_rendered_with_model_0_is_a_warning(env: Env, video_file_id: str,
                                                           tmp_path: Path) -> None:
    r = env.run("create", "--video-file-id", video_file_id, "--text", "FALLBACK", "--voice",
                VOICE_EN, "--model", "1")
    assert r.returncode == 0, r.stderr
    task_id = r.out
    warning = f"warning: task {task_id}: model 1 has no neural weights"
    for command in (["wait", task_id, "--timeout", "60"], ["status", task_id, "--json"]):
        r = env.run(*command)
        assert r.returncode == 0 and r.stderr.startswith(warning), (command, r.stderr)
    r = env.run("make", "--video", str(env.video), "--text", "FALLBACK", "--voice", VOICE_EN,
                "--model", "1", "-o", str(tmp_path / "m.mp4"))
    assert r.returncode == 0 and r.stderr.startswith("warning: task "), r.stderr
    assert "rendered with model 0" in r.stderr and r.stdout.startswith(str(tmp_path))


def test_bad_filters_and_pages_are_errors_not_empty_results(env: Env, done_task: str) -> None:
    for args, expected in (
        (["voices", "--gender", "robot"], "--gender robot: no voice has it"),
        (["voices", "--lang", "klingon"], "--lang klingon: no voice has it"),
        (["wait", done_task, "--timeout", "-5"], "--timeout"),
        (["list", "--page", "9999"], "--page 9999: no such page"),
    ):
        r = env.run(*args)
        assert r.returncode == 2 and r.stdout == "", (args, r.stderr)
        assert expected in r.stderr and r.stderr.count("\n") == 1, (args, r.stderr)
    r = env.run("voices", "--lang", "zh", "--gender", "female", "--json")
    assert r.returncode == 0 and r.json(), r.stderr


def test_list_all_json_has_the_documented_keys(env: Env, done_task: str) -> None:
    r = env.run("list", "--all", "--json")
    assert r.returncode == 0, r.stderr
    data = r.json()
    assert set(data) == {"tasks", "page", "page_size", "total_count", "total_page"}, data  # type: ignore[arg-type]
    assert done_task in {t["id"] for t in data["tasks"]}  # type: ignore[index]
    assert data["total_count"] == len(data["tasks"])  # type: ignore[index,arg-type]


def test_download_into_a_folder(env: Env, done_task: str, tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    r = env.run("download", done_task, "-o", f"{folder}/")  # made, like the library does
    assert r.returncode == 0, r.stderr
    assert (folder / f"{done_task}.mp4").stat().st_size > 0
    r = env.run("download", done_task, "-o", str(folder), "--overwrite")  # an existing folder
    assert r.returncode == 0 and r.out == str(folder / f"{done_task}.mp4"), r.stderr


def test_sandbox_serve_bad_settings_are_one_line_and_exit_2(env: Env, tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        data = str(tmp_path / "sb")
        for args, expected in (
            (["--port", str(port)], f"--port {port}: cannot listen on 127.0.0.1:{port}"),
            (["--port", "70000"], "--port"),
            (["--port", "0", "--renderer", "nope"], "--renderer: unknown renderer 'nope'"),
        ):
            r = env.run("sandbox", "serve", "--data-dir", data, *args, timeout=60)
            assert r.returncode == 2 and r.stdout == "", (args, r.stderr)
            assert r.stderr.startswith("error: ") and expected in r.stderr, (args, r.stderr)
            assert r.stderr.count("\n") == 1, (args, r.stderr)


def test_a_file_refused_by_the_content_check_is_bad_input_named_by_its_path(
        env: Env, tmp_path: Path) -> None:
    admin = env.sb.admin  # type: ignore[attr-defined]
    for command in (["upload", str(env.video), "--service", "lip_sync_video"],
                    ["create", "--video", str(env.video), "--text", "hi", "--voice", VOICE_EN],
                    ["make", "--video", str(env.video), "--text", "hi", "--voice", VOICE_EN,
                     "-o", str(tmp_path / "o.mp4")]):
        admin.add_fault("upload", "file_98", times=1)
        try:
            r = env.run(*command)
        finally:
            admin.clear_faults()
        assert r.returncode == 2, (command, r.stderr)
        assert r.stderr == (f"error: {env.video} was refused by the server's content check; "
                            "use another file\n"), (command, r.stderr)


def test_shared_options_before_or_after_the_command(env: Env, done_task: str,
                                                     tmp_path: Path) -> None:
    before = env.run("--json", "status", done_task)
    after = env.run("status", done_task, "--json")
    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    assert before.json() == after.json()
    dead = "http://127.0.0.1:9"
    r = env.run("--base-url", dead, "status", done_task)
    assert r.returncode == 1 and dead in r.stderr, r.stderr  # given before: used
    r = env.run("--base-url", dead, "status", done_task, "--base-url", env.base_url, "--json")
    assert r.returncode == 0 and r.json()["id"] == done_task, r.stderr  # given after: wins
    creds = tmp_path / "empty"
    r = env.run("--credentials-dir", str(creds), "--verbose", "status", done_task,
                env=env.environ(CHANJING_OPENAPI_CREDENTIALS_DIR=None))
    assert r.returncode == 3 and "auth set" in r.stderr, r.stderr
    r = env.run("--local", "local", "status")
    assert r.returncode == 2 and "--local does not apply" in r.stderr, r.stderr


def test_make_and_create_take_a_photo(env: Env, tmp_path: Path) -> None:
    from PIL import Image

    photo = tmp_path / "face.jpg"
    Image.new("RGB", (120, 90), (200, 150, 120)).save(photo)
    out = tmp_path / "photo.mp4"
    r = env.run("make", "--video", str(photo), "--text", "hi", "--voice", VOICE_EN,
                "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 0
    r = env.run("create", "--video", str(photo), "--text", "hi", "--voice", VOICE_EN, "--json")
    assert r.returncode == 0, r.stderr
    assert r.json()["task_id"]  # type: ignore[index]
