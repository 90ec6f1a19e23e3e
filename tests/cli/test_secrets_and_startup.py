"""No secret in any output (every run is checked by ``Env.run``; these add the hard cases), and a
fast ``--help``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import CLI, VOICE_EN, Env

HEAVY = ("fastapi", "uvicorn", "starlette", "av", "numpy", "skimage", "pydantic", "httpx",
         "asyncio", "anyio", "sqlite3", "chanjing_avatar.render", "chanjing_avatar.sandbox",
         "chanjing_avatar._models", "chanjing_avatar._client", "chanjing_avatar._async_client",
         "chanjing_avatar.batch", "chanjing_avatar.callback", "mcp", "chanjing_avatar.mcp")


def test_no_secret_in_verbose_failures(env: Env, video_file_id: str, tmp_path: Path) -> None:
    # A refused upload (the PUT's signed URL is in play), a refused token, a dropped create, a
    # gateway page: all with --verbose, all checked for the secret, tokens and signatures.
    env.sb.admin.add_fault("upload", "http:403", times=5)  # type: ignore[attr-defined]
    r = env.run("upload", str(env.video), "--service", "lip_sync_video", "--verbose")
    assert r.returncode != 0
    env.sb.admin.clear_faults()  # type: ignore[attr-defined]

    env.sb.admin.add_fault("lipsync_detail", "http:502", times=20)  # type: ignore[attr-defined]
    r = env.run("status", "0" * 32, "--verbose", "--json")
    assert r.returncode == 1
    env.sb.admin.clear_faults()  # type: ignore[attr-defined]

    env.sb.admin.add_fault("*", "invalidate_token", times=3)  # type: ignore[attr-defined]
    r = env.run("voices", "--verbose", "--json")
    env.sb.admin.clear_faults()  # type: ignore[attr-defined]

    r = env.run("auth", "status", "--verbose")
    assert r.returncode == 0
    r = env.run("--verbose", "auth", "status", "--check", "--json")
    assert r.returncode == 0

    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "credentials.json").write_text(json.dumps(
        {"app_id": env.app_id, "secret_key": "s3cr3t-wrong-key", "access_token": "tok-abc-123456"}
    ))
    r = env.run("status", "0" * 32, "--credentials-dir", str(wrong), "-v")
    assert r.returncode == 3
    assert "s3cr3t-wrong-key" not in r.stderr and "tok-abc-123456" not in r.stderr
    r = env.run("auth", "status", "--credentials-dir", str(wrong), "-v")
    assert "s3cr3t-wrong-key" not in r.stdout and "tok-abc-123456" not in r.stdout

    r = env.run("make", "--video", str(env.video), "--text", "hi", "--voice", VOICE_EN,
                "-o", str(tmp_path / "o.mp4"), "--verbose", "--json")
    assert r.returncode == 0, r.stderr


def test_help_imports_nothing_heavy() -> None:
    # The subcommands' help too: the commands import what they use inside their functions.
    # (typer itself imports pydantic to build a subcommand's parameters: allowed there.)
    for args in (["--help"], ["make", "--help"], ["wait", "--help"], ["batch", "--help"],
                 ["callback", "serve", "--help"], ["mcp", "--help"]):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "chanjing_avatar", *args],
            capture_output=True, text=True, check=True,
        )
        loaded = {ln.rsplit("|", 1)[1].strip() for ln in proc.stderr.splitlines() if "|" in ln}
        forbidden = HEAVY if args == ["--help"] else tuple(h for h in HEAVY if h != "pydantic")
        heavy = sorted(m for m in loaded for h in forbidden if m == h or m.startswith(h + "."))
        assert not heavy, (args, heavy)
    assert CLI.exists()
