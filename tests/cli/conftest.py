"""CLI tests: the INSTALLED command run as a subprocess against a sandbox in this process.

The sandbox renders with a stub (copies the input video) so that the tests measure the CLI, not
the renderer; ``test_local.py`` runs the real embedded stack once. Every run is checked for a
traceback, for a one-line error on failure, and for secrets in its output.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from chanjing_avatar.render.base import VoiceInfo
from fake_renderer import FakeRenderer
from media_maker import make_video as write_mp4
from media_maker import make_wav as write_wav

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
CLI = BIN_DIR / "chanjing-avatar"
SCRIPTS = REPO / "skills" / "chanjing-avatar" / "scripts"

VOICE_ZH = "0" * 31 + "1"
VOICE_EN = "0" * 31 + "2"
# Query values that would be a signature or token if they ever reached the output.
SIGNED_QUERY = re.compile(r"(?:Signature|Expires|sig|token)=(?!\*\*\*)[^&\s\"']+", re.IGNORECASE)


def _voices() -> list[VoiceInfo]:
    return [
        VoiceInfo(id=VOICE_ZH, name="晓晓", gender="female", lang="zh", desc="测试"),
        VoiceInfo(id=VOICE_EN, name="Ava", gender="female", lang="en", desc="test"),
    ]


# The sandbox's renderer: copies the driving video; the text steers it (FAIL, SLOW ~4 s,
# FALLBACK, HOLD: see FakeRenderer); ``RENDERER.texts`` holds what each task was asked to speak.
RENDERER = FakeRenderer(_voices(), name="cli-test-stub", steps=2, step_s=0.05,
                        hold_text="HOLD", hold_s=60)


@contextmanager
def holding() -> Iterator[None]:
    """Tasks whose text says HOLD stay generating (at 0 %) until the block ends: a task that is
    surely still running when a command starts, however loaded the machine is."""
    RENDERER.gate.clear()
    try:
        yield
    finally:
        RENDERER.gate.set()


def default_signals() -> None:
    """Each child's SIGINT and SIGTERM back to their defaults before exec: the suite may run as a
    background job (`nohup … &` ignores SIGINT), and an ignored signal stays ignored in a child."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def popen(cmd: Sequence[str], **kw: object) -> subprocess.Popen[str]:
    """A child process (text pipes) that Ctrl-C and SIGTERM reach however the suite runs."""
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_signals, **kw)  # type: ignore[call-overload]


def catches_sigint(proc: subprocess.Popen[str]) -> bool:
    """The child has its SIGINT handler (Python installs it at start-up): a Ctrl-C sent before
    that would kill it outright, which would test nothing."""
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text()
    except OSError:
        return False
    caught = next(ln for ln in status.splitlines() if ln.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGINT - 1)))


@pytest.fixture
def as_background_job() -> Iterator[None]:
    """This test runs as under `nohup … &`: SIGINT ignored in the test process (children inherit
    that unless they are started with :func:`default_signals`)."""
    saved = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, saved)


@dataclass
class Result:
    args: Sequence[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def out(self) -> str:
        return self.stdout.strip()

    def json(self) -> object:
        return json.loads(self.stdout)


@dataclass
class Env:
    """A sandbox plus everything a CLI run needs to reach it."""

    sb: object
    base_url: str
    app_id: str
    secret_key: str
    creds_dir: Path
    home: Path
    video: Path
    audio: Path
    tokens: set[str]

    def environ(self, **extra: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHANJING_")}
        env.update(
            HOME=str(self.home),
            XDG_DATA_HOME=str(self.home / ".local" / "share"),
            LANG="C.UTF-8",
            PYTHONIOENCODING="utf-8",
            COLUMNS="200",
            CHANJING_OPENAPI_BASE_URL=self.base_url,
            CHANJING_OPENAPI_CREDENTIALS_DIR=str(self.creds_dir),
        )
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def _collect_tokens(self) -> None:
        for path in self.home.rglob("credentials*.json"):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
            for key in ("access_token", "secret_key"):
                if isinstance(data.get(key), str):
                    self.tokens.add(data[key])

    def check_output(self, r: Result, *, allow_secret: bool = False) -> None:
        text = r.stdout + r.stderr
        assert "Traceback" not in text, text
        if r.returncode != 0:
            lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
            assert lines, f"no error line for exit {r.returncode}"
            assert lines[0].startswith(("error:", "get_upload_url:", "upload_file:",
                                        "create_task:", "poll_task:")), lines
            extra = [ln for ln in lines[1:] if not ln.startswith("  detail:")]
            assert not extra, f"more than one error line: {lines}"
        if allow_secret:
            return
        self._collect_tokens()
        for secret in {self.secret_key, *self.tokens}:
            assert secret not in text, f"a secret leaked in {r.args}: {text}"
        assert not SIGNED_QUERY.search(text), f"a signed URL leaked in {r.args}: {text}"

    def run(self, *args: str, input: str | None = None, timeout: float = 60,
            allow_secret: bool = False, env: dict[str, str] | None = None,
            cwd: Path | None = None, exe: Sequence[str] | None = None) -> Result:
        cmd = [*(exe or [str(CLI)]), *args]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, encoding="utf-8", input=input,
            timeout=timeout, env=env or self.environ(), cwd=cwd or self.home,
            preexec_fn=default_signals,
        )
        r = Result(args, proc.returncode, proc.stdout, proc.stderr)
        self.check_output(r, allow_secret=allow_secret)
        return r

    def script(self, name: str, *args: str, **kw: object) -> Result:
        return self.run(*args, exe=[sys.executable, str(SCRIPTS / name)], **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if not CLI.exists():
        pytest.skip(f"{CLI} is not installed (pip install -e .)")
    sandbox = pytest.importorskip("chanjing_avatar.sandbox")
    root = tmp_path_factory.mktemp("cli")
    home = root / "home"
    creds = home / ".chanjing"
    creds.mkdir(parents=True)
    config = sandbox.SandboxConfig(
        data_dir=root / "sandbox",
        renderer=RENDERER,
        admin=True,
        file_sync_delay_s=0.0,
        rate_limits_enabled=False,
        callback_allow_private=True,  # the callback receivers listen on loopback
    )
    with sandbox.Sandbox(config) as sb:
        (creds / "credentials.json").write_text(
            json.dumps({"app_id": sb.app_id, "secret_key": sb.secret_key})
        )
        yield Env(
            sb=sb,
            base_url=sb.base_url,
            app_id=sb.app_id,
            secret_key=sb.secret_key,
            creds_dir=creds,
            home=home,
            video=write_mp4(root / "face.mp4"),
            audio=write_wav(root / "speech.wav"),
            tokens=set(),
        )


@pytest.fixture
def env(cli_env: Env) -> Iterator[Env]:
    yield cli_env
    cli_env.sb.admin.clear_faults()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def video_file_id(cli_env: Env) -> str:
    r = cli_env.run("upload", str(cli_env.video), "--service", "lip_sync_video")
    assert r.returncode == 0, r.stderr
    return r.out


@pytest.fixture(scope="session")
def done_task(cli_env: Env, video_file_id: str) -> str:
    """A finished task, for status / wait / download."""
    r = cli_env.run("create", "--video-file-id", video_file_id, "--text", "你好，世界",
                    "--voice", VOICE_ZH)
    assert r.returncode == 0, r.stderr
    task_id = r.out
    r = cli_env.run("wait", task_id, "--timeout", "60")
    assert r.returncode == 0, r.stderr
    return task_id
